// The de-identification of free text (packages/normalizer, FreeTextDeidentifier): µs per text for a
// typical lab comment, a typical alarm text, and the worst inputs we know of at the 4 KiB a text is
// read to. Nothing is asserted. `node bench/free-text.mjs`.
import { FreeTextDeidentifier } from '@attache/normalizer';

const fmt = (n, digits = 1) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const known = ['QUIMBY', 'HORTENSE', 'MRN-448812', 'WELBY', 'MARCUS', '12 ELM STREET', '555-0100'];
const cases = [
  ['lab comment (62 chars)', 'Critical K 6.8 called to Dr Welby by J. Smith RN at 10:30, read back'],
  ['alarm text (20 chars)', '***SpO2 LOW 84 < 90'],
  ['4 KiB of "Dr "', 'Dr '.repeat(1400)],
  ['4 KiB of "1-"', '1-'.repeat(2048)],
  ['4 KiB of words', 'patient seen by nurse Kelly today '.repeat(120)],
];
for (const [name, text] of cases) {
  const step = new FreeTextDeidentifier(known);
  const rounds = Math.max(200, Math.floor(2_000_000 / text.length));
  for (let i = 0; i < 100; i++) step.clean(text);
  const start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) step.clean(text);
  const us = Number(process.hrtime.bigint() - start) / 1000 / rounds;
  console.log(`${name}: ${fmt(us)} µs per text (${fmt(rounds, 0)} rounds)`);
}
