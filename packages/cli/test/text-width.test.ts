import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import t from 'tap';
import textWidth from '../src/text-width.js';

type StringWidth = (
  text: string,
  options?: { ambiguousIsNarrow?: boolean; countAnsiEscapeCodes?: boolean },
) => number;

// The two string-width versions the help layout would use: yargs' own and cliui's.
const fromYargs = createRequire(createRequire(import.meta.url).resolve('yargs'));
const versions: [string, StringWidth][] = await Promise.all(
  [fromYargs.resolve('string-width'), createRequire(import.meta.url).resolve('string-width')].map(
    async (path) =>
      [path, (await import(pathToFileURL(path).href)).default as StringWidth] as [string, StringWidth],
  ),
);

// Text as the commands' descriptions and a terminal's help have it: ASCII, accented letters and the
// punctuation our messages use, CJK, combining marks, controls, zero-width characters, ANSI colours.
const pieces = [
  ...'abcXYZ019 -_./:,;()[]<>|'.split(''),
  'ä',
  'é',
  'e\u0301',
  '–',
  '—',
  '…',
  '₂',
  '≥',
  '→',
  'µ',
  '中',
  'ｱ',
  '한',
  '\t',
  '\u0007',
  '\u200b',
  '\u00ad',
  '\u001b[31m',
  '\u001b[0m',
];
const text = fc.array(fc.constantFrom(...pieces), { maxLength: 40 }).map((p) => p.join(''));

t.test('the same widths as string-width for the text of the help', async (t) => {
  t.ok(versions.length === 2);
  for (const [path, stringWidth] of versions) {
    fc.assert(
      fc.property(text, fc.boolean(), fc.boolean(), (s, ambiguousIsNarrow, countAnsiEscapeCodes) => {
        const options = { ambiguousIsNarrow, countAnsiEscapeCodes };
        return textWidth(s, options) === stringWidth(s, options);
      }),
      { numRuns: 2000 },
    );
    t.pass(path);
  }
});

t.test(
  'printable ASCII is its length; wide, zero-width and coloured text as a terminal shows it',
  async (t) => {
    t.equal(textWidth('attache status --json'), 21);
    t.equal(textWidth('中文'), 4);
    t.equal(textWidth('\u001b[31mred\u001b[0m'), 3);
    t.equal(textWidth('\u001b[31mred\u001b[0m', { countAnsiEscapeCodes: true }), 10); // ESC itself takes no column
    t.equal(textWidth('…', { ambiguousIsNarrow: false }), 2);
    t.equal(textWidth(''), 0);
    t.equal(textWidth(42), 0);
  },
);
