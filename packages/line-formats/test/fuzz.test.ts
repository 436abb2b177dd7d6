import { readFileSync } from 'node:fs';
import type { KvLineFormat } from '@attache/core';
import { isGatewayError } from '@attache/core';
import { FuzzMeter, fuzzParameters, type Mutation, mutate } from '@attache/devkit';
import { parseKvLine, RegexLineParser } from '@attache/line-formats';
import fc from 'fast-check';
import t from 'tap';

// Seeds: the lines of the constructed Nonin and Masimo samples.
const lines = [
  'serial_nonin_9847_timestamped.bin',
  'serial_nonin_ascii_realtime.bin',
  'serial_masimo_radical7_ascii1_nodata.bin',
]
  .flatMap((name) =>
    readFileSync(new URL(`./fixtures/${name}`, import.meta.url))
      .toString('latin1')
      .split(/\r?\n/),
  )
  .filter((line) => line !== '')
  .map((line) => Buffer.from(line, 'latin1'));
const mutation = fc.tuple(fc.nat(), fc.nat(), fc.nat(255)) as fc.Arbitrary<Mutation>;
const field = {
  code: 'X',
  unit: '%',
  system: 'MDC',
  type: 'number',
  questionableWhenNonZero: false,
} as const;
const layouts: (KvLineFormat['timestamp'] | undefined)[] = [
  undefined,
  'HH:mm:ss',
  'MM/DD/YY HH:mm:ss',
  'DD/MM/YY HH:mm:ss',
];

/** Runs `parse`; only a GatewayError ATTACHE_MALFORMED may come out of it. */
function refusedOrParsed(parse: () => unknown): void {
  try {
    parse();
  } catch (err) {
    if (!isGatewayError(err, 'ATTACHE_MALFORMED')) throw err;
  }
}

t.test('kv-line and regex-line take any line: parsed or ATTACHE_MALFORMED, in bounded time', async (t) => {
  const kv = new FuzzMeter('kv-line');
  const rx = new FuzzMeter('regex-line');
  const regex = new RegexLineParser({
    kind: 'regex-line',
    pattern: '^(?<time>\\S+ \\S+) SpO2 (?<spo2>\\d+|-+)( PR (?<pr>\\d+))?$',
    timestamp: 'DD/MM/YY HH:mm:ss',
    fields: { spo2: field },
    minFields: 1,
  });
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(
        fc.constantFrom(...lines),
        fc.array(mutation, { maxLength: 10 }),
        fc.constantFrom(...layouts),
        (seed, muts, layout) => {
          const line = mutate(seed, muts).toString('latin1');
          const format: KvLineFormat = {
            kind: 'kv-line',
            fields: { SPO2: field, HR: field },
            flags: { '*': 'event' },
            minFields: 1,
            ...(layout === undefined ? {} : { timestamp: layout }),
          };
          kv.run(() => refusedOrParsed(() => parseKvLine(line, format)));
          rx.run(() => refusedOrParsed(() => regex.parse(line)));
        },
      ),
      fuzzParameters(500),
    ),
  );
  t.comment(kv.summary());
  t.comment(rx.summary());
});
