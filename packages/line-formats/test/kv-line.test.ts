import { readFileSync } from 'node:fs';
import { type KvLineFormat, validateConfig } from '@attache/core';
import { LineFramer, parseKvLine } from '@attache/line-formats';
import t from 'tap';

/** The lines of a constructed sample (in fixtures/, byte for byte), without CR LF. */
function sampleLines(name: string): string[] {
  const text = readFileSync(new URL(`fixtures/${name}.bin`, import.meta.url)).toString('latin1');
  return text.split('\r\n').filter((line) => line.length > 0);
}

function format(extra: Partial<KvLineFormat> = {}): KvLineFormat {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw' },
    devices: [
      {
        id: 'dev',
        adapter: 'rs232',
        port: { path: '/dev/null' },
        format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } }, ...extra },
      },
    ],
  });
  const device = config.devices[0];
  if (device?.adapter !== 'rs232' || device.format.kind !== 'kv-line')
    throw new Error('not a kv-line device');
  return device.format;
}

t.test('Nonin real-time sample lines', async (t) => {
  const lines = sampleLines('serial_nonin_ascii_realtime');
  t.same(
    lines.map((line) => parseKvLine(line, format())),
    [
      {
        fields: [
          { name: 'SPO2', value: '097' },
          { name: 'HR', value: '072' },
        ],
        markers: [],
      },
      {
        fields: [
          { name: 'SPO2', value: '097' },
          { name: 'HR', value: '073' },
        ],
        markers: [],
      },
      {
        fields: [
          { name: 'SPO2', value: '---' },
          { name: 'HR', value: '---' },
        ],
        markers: [],
      },
      {
        fields: [
          { name: 'SPO2', value: '096' },
          { name: 'HR', value: '071' },
        ],
        markers: ['*'],
      },
    ],
    'dashes kept as sent; the glued event marker split off',
  );
  t.same(parseKvLine('SPO2=097 HR=072 F', format()).markers, ['F'], 'a bare token is a marker');
});

t.test('Nonin 9847 timestamped sample lines', async (t) => {
  const lines = sampleLines('serial_nonin_9847_timestamped');
  t.same(
    lines.map((line) => parseKvLine(line, format({ timestamp: 'HH:mm:ss' }))),
    [
      {
        fields: [
          { name: 'SPO2', value: '098' },
          { name: 'HR', value: '064' },
        ],
        markers: [],
        deviceTime: '14:02:11',
      },
      {
        fields: [
          { name: 'SPO2', value: '098' },
          { name: 'HR', value: '064' },
        ],
        markers: ['B'],
        deviceTime: '14:02:12',
      },
      {
        fields: [
          { name: 'SPO2', value: '---' },
          { name: 'HR', value: '---' },
        ],
        markers: [],
        deviceTime: '14:02:13',
      },
    ],
  );
});

t.test('Masimo ASCII 1 no-data sample line', async (t) => {
  const [line] = sampleLines('serial_masimo_radical7_ascii1_nodata');
  const parsed = parseKvLine(line ?? '', format({ timestamp: 'MM/DD/YY HH:mm:ss' }));
  t.equal(parsed.deviceTime, '2007-05-15T08:12:21');
  t.same(
    parsed.fields.map((f) => `${f.name}=${f.value}`),
    [
      'SN=0000070986',
      'SPO2=---%',
      'BPM=---',
      'PI=--.--%',
      'SPCO=--.-%',
      'SPMET=--.-%',
      'DESAT=--',
      'PIDELTA=+--',
      'PVI=---',
      'ALARM=0000',
      'EXC=000000',
    ],
    'every key is kept, in order, values as sent',
  );
  t.same(parsed.markers, []);
});

t.test('date layouts', async (t) => {
  const at = (timestamp: KvLineFormat['timestamp'], line: string) =>
    parseKvLine(line, format({ timestamp })).deviceTime;
  t.equal(at('DD/MM/YY HH:mm:ss', '15/05/07 08:12:21 SPO2=098%'), '2007-05-15T08:12:21');
  t.equal(at('YY/MM/DD HH:mm:ss', '24/02/29 23:59:59 SPO2=098%'), '2024-02-29T23:59:59', 'a leap day');
  t.equal(
    at('MM/DD/YY HH:mm:ss', '12/31/99 00:00:00\tSPO2=098%'),
    '2099-12-31T00:00:00',
    'tab separates too',
  );
});

t.test('bad input is ATTACHE_MALFORMED and the message carries no content', async (t) => {
  const cases: [string, string, Partial<KvLineFormat>][] = [
    ['no KEY=VALUE token', 'hello world', {}],
    ['empty line', '', {}],
    ['control byte', 'SPO2=097\x00 HR=072', {}],
    ['non-ASCII byte', 'SPO2=097 HR=0\xff2', {}],
    ['empty key', 'SPO2=097 =72', {}],
    ['month 13', '13/01/24 08:00:00 SPO2=097', { timestamp: 'MM/DD/YY HH:mm:ss' }],
    ['31 April', '04/31/24 08:00:00 SPO2=097', { timestamp: 'MM/DD/YY HH:mm:ss' }],
    ['29 Feb of a common year', '23/02/29 08:00:00 SPO2=097', { timestamp: 'YY/MM/DD HH:mm:ss' }],
    ['day 0', '00/01/24 08:00:00 SPO2=097', { timestamp: 'DD/MM/YY HH:mm:ss' }],
    ['25:00', '25:00:00 SPO2=097', { timestamp: 'HH:mm:ss' }],
    ['minute 60', '12:60:00 SPO2=097', { timestamp: 'HH:mm:ss' }],
    ['missing time', 'SPO2=097 HR=072', { timestamp: 'HH:mm:ss' }],
    ['missing date', '08:00:00 SPO2=097', { timestamp: 'MM/DD/YY HH:mm:ss' }],
    ['date without time', '01/02/24', { timestamp: 'MM/DD/YY HH:mm:ss' }],
  ];
  for (const [name, line, extra] of cases) {
    t.throws(() => parseKvLine(line, format(extra)), { code: 'ATTACHE_MALFORMED' }, name);
    try {
      parseKvLine(line, format(extra));
    } catch (err) {
      t.notMatch((err as Error).message, /hello|097|0\xff2/, `${name}: no content in the message`);
    }
  }
});

/** Feeds chunks to a framer and collects what it finds. */
function frame(chunks: (string | Buffer)[], maxLineBytes: number, delimiter: string | null = '\r\n') {
  const framer = new LineFramer({ ...(delimiter === null ? {} : { delimiter }), maxLineBytes });
  const events = [...chunks.flatMap((chunk) => framer.push(Buffer.from(chunk))), ...framer.end()];
  return {
    lines: events.flatMap((e) => (e.type === 'line' ? [e.line.toString('latin1')] : [])),
    overlong: events.flatMap((e) => (e.type === 'overlong' ? [e.bytes] : [])),
    incomplete: events.flatMap((e) => (e.type === 'incomplete' ? [e.bytes] : [])),
  };
}

t.test('LineFramer splits on the delimiter across chunks', async (t) => {
  const out = frame(['SPO2=097 HR', '=072\r', '\nSPO2=098 HR=073\r\nSPO2=0', '99 HR=074\r\n'], 32);
  t.same(out.lines, ['SPO2=097 HR=072', 'SPO2=098 HR=073', 'SPO2=099 HR=074']);
  t.same(out.overlong, []);
  t.same(out.incomplete, []);
  const single = frame(['a=1\nb=2\n'], 16, '\n');
  t.same(single.lines, ['a=1', 'b=2'], 'a one-byte delimiter');
});

t.test('LineFramer discards over-long runs and resyncs at the next delimiter', async (t) => {
  const long = 'X'.repeat(100);
  const inOneChunk = frame([`${long}\r\nSPO2=097\r\n`], 16);
  t.same(inOneChunk.lines, ['SPO2=097']);
  t.same(inOneChunk.overlong, [100], 'one event with the length');
  const noDelimiter = frame([long.slice(0, 40), long.slice(40), 'YY\r', '\nSPO2=098\r\n'], 16);
  t.same(noDelimiter.lines, ['SPO2=098'], 'the rest of the run up to the delimiter is dropped too');
  t.equal(noDelimiter.overlong.length, 1, 'one event per run');
  t.ok((noDelimiter.overlong[0] ?? 0) > 16);
  const exact = frame([`${'Y'.repeat(16)}\r\n`, `${'Z'.repeat(17)}\r\n`], 16);
  t.same(exact.lines, ['Y'.repeat(16)], 'maxLineBytes is kept, one more byte is not');
  t.same(exact.overlong, [17]);
});

t.test('LineFramer reports an unterminated remainder instead of emitting it', async (t) => {
  const out = frame(['SPO2=097 HR=072\r\nSPO2=098 HR=07'], 64);
  t.same(out.lines, ['SPO2=097 HR=072'], 'a truncated line is not a reading');
  t.same(out.incomplete, [14]);
});

t.test('LineFramer without a delimiter ends a line at CR, LF or CR LF', async (t) => {
  const out = frame(['a=1\rb=2\nc=', '3\r', '\nd=4\n'], 16, null);
  t.same(
    out.lines.filter((l) => l !== ''),
    ['a=1', 'b=2', 'c=3', 'd=4'],
  );
  t.same(frame([`${'X'.repeat(20)}\nok\n`], 16, null).lines, ['ok'], 'bounded as well');
});

t.test('LineFramer rejects bad options with a TypeError', async (t) => {
  t.throws(() => new LineFramer({ delimiter: '', maxLineBytes: 10 }), TypeError);
  t.throws(() => new LineFramer({ delimiter: '\n', maxLineBytes: 0 }), TypeError);
  t.throws(() => new LineFramer({ delimiter: '\n', maxLineBytes: 1.5 }), TypeError);
});
