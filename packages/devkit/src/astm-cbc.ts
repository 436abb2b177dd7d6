// A constructed complete blood count (CBC) message in ASTM E1394 records, for the analyzer simulator.
/** CBC tests: code, unit (UCUM), reference range, typical value, decimals. */
const CBC_TESTS: ReadonlyArray<readonly [string, string, number, number, number, number]> = [
  ['WBC', '10*3/uL', 4.0, 10.0, 7.2, 2],
  ['RBC', '10*6/uL', 4.2, 5.4, 4.71, 2],
  ['HGB', 'g/dL', 12.0, 16.0, 13.9, 1],
  ['HCT', '%', 37.0, 47.0, 41.3, 1],
  ['MCV', 'fL', 80.0, 100.0, 87.7, 1],
  ['MCH', 'pg', 27.0, 33.0, 29.5, 1],
  ['MCHC', 'g/dL', 32.0, 36.0, 33.7, 1],
  ['PLT', '10*3/uL', 150, 400, 251, 0],
  ['RDW-SD', 'fL', 39.0, 46.0, 42.1, 1],
  ['RDW-CV', '%', 11.5, 14.5, 13.0, 1],
  ['PDW', 'fL', 9.0, 17.0, 11.8, 1],
  ['MPV', 'fL', 9.4, 12.4, 10.3, 1],
  ['P-LCR', '%', 13.0, 43.0, 27.5, 1],
  ['PCT', '%', 0.17, 0.35, 0.26, 2],
  ['NEUT#', '10*3/uL', 1.8, 7.7, 4.21, 2],
  ['LYMPH#', '10*3/uL', 1.0, 4.8, 2.15, 2],
  ['MONO#', '10*3/uL', 0.2, 1.0, 0.52, 2],
  ['EO#', '10*3/uL', 0.0, 0.5, 0.21, 2],
  ['BASO#', '10*3/uL', 0.0, 0.2, 0.05, 2],
  ['NEUT%', '%', 40.0, 74.0, 58.5, 1],
  ['LYMPH%', '%', 19.0, 48.0, 29.9, 1],
  ['MONO%', '%', 3.4, 9.0, 7.2, 1],
  ['EO%', '%', 0.0, 7.0, 2.9, 1],
  ['BASO%', '%', 0.0, 1.5, 0.7, 1],
  ['IG#', '10*3/uL', 0.0, 0.09, 0.02, 2],
  ['IG%', '%', 0.0, 0.6, 0.3, 1],
  ['NRBC#', '10*3/uL', 0.0, 0.01, 0.0, 2],
  ['NRBC%', '/100{WBCs}', 0.0, 0.2, 0.0, 1],
];

/** Options of {@link cbcMessage}. */
export interface CbcMessageOptions {
  /** R records to write. Default 25. */
  count?: number;
  /** H.2: field, repeat, component and escape delimiters. Default `|\\^&`. */
  delimiters?: string;
}

/**
 * A constructed hematology (CBC) result message: H, one P with a fake patient ID, one O, `count` R
 * records (WBC, RBC, HGB, … with realistic values, UCUM units, reference ranges and N/H/L flags;
 * beyond the 28 known codes they repeat with a `-2`, `-3` suffix), and `L|1|N`; records without CR.
 * Delimiter characters inside values are written as escape sequences.
 * @throws TypeError when `count` is not an integer ≥ 0 or `delimiters` is not four distinct
 * printable ASCII characters other than letters, digits and space.
 */
export function cbcMessage(options: CbcMessageOptions = {}): string[] {
  const { count = 25, delimiters = '|\\^&' } = options;
  if (!Number.isInteger(count) || count < 0) throw new TypeError('"count" must be an integer ≥ 0');
  if (!/^[!-/:-@[-`{-~]{4}$/.test(delimiters) || new Set(delimiters).size !== 4) {
    throw new TypeError('"delimiters" must be four distinct printable characters, no letter, digit or space');
  }
  const [f, r, c, e] = [...delimiters] as [string, string, string, string];
  const codes = new Map([
    [e, 'E'],
    [f, 'F'],
    [c, 'S'],
    [r, 'R'],
  ]);
  const esc = (v: string): string =>
    [...v].map((ch) => (codes.has(ch) ? `${e}${codes.get(ch)}${e}` : ch)).join('');
  const records = [
    `H${delimiters}${f}${f}${f}XN-550${c}00-24${c}22723${f.repeat(7)}P${f}E1394-97${f}20240627135000`,
    `P${f}1${f}${f}SIM-000123`,
    `O${f}1${f}SMP0001${f}${f}${c}${c}${c}CBC${f}R${f.repeat(20)}F`,
  ];
  for (let i = 0; i < count; i++) {
    const test = CBC_TESTS[i % CBC_TESTS.length] as (typeof CBC_TESTS)[number];
    const [name, unit, low, high, typical, decimals] = test;
    const round = Math.floor(i / CBC_TESTS.length);
    const code = round === 0 ? name : `${name}-${round + 1}`;
    // Every 7th result out of range, alternating high and low, to carry H and L flags.
    const value = i % 7 === 3 ? (i % 14 === 3 ? high * 1.2 : low * 0.8) : typical;
    const flag = value > high ? 'H' : value < low ? 'L' : 'N';
    const range = `${low.toFixed(decimals)}-${high.toFixed(decimals)}`;
    records.push(
      [
        `R`,
        `${i + 1}`,
        `${c}${c}${c}${esc(code)}`,
        value.toFixed(decimals),
        esc(unit),
        range,
        flag,
        '',
        'F',
      ].join(f),
    );
  }
  records.push(`L${f}1${f}N`);
  return records;
}
