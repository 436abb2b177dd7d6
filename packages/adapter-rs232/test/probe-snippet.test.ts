import { heardKeys, type ProbeResult, probeConfigSnippet } from '@attache/adapter-rs232';
import { validateConfig } from '@attache/core';
import { parseKvLine, RegexLineParser } from '@attache/line-formats';
import t from 'tap';

function result(protocol: 'kv-line' | 'text-line' | 'astm', heard: string[]): ProbeResult {
  const score = {
    protocol,
    score: 1,
    bytes: 1,
    enq: 0,
    validFrames: 0,
    badFrames: 0,
    lines: 1,
    kvLines: 1,
    noise: 0,
  };
  const trial = {
    setting: { baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1 } as const,
    score,
    heard,
  };
  return { path: '/dev/ttyS0', best: trial, trials: [trial] };
}

/** The snippet as a device of a config that validates. */
function device(snippet: Record<string, unknown> | null) {
  return validateConfig({ version: 1, gateway: { id: 'gw' }, devices: [snippet] }).devices[0];
}

const masimo =
  '05/15/07 08:12:21 SN=0000070986 SPO2=098% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000800';

t.test('a kv-line suggestion holds the keys heard, known ones with their MDC codes', async (t) => {
  t.same(heardKeys([masimo, masimo.replace('SPO2=098%', 'SPO2=---%')]), {
    numbers: ['SPO2', 'BPM', 'PI', 'SPCO', 'SPMET', 'DESAT', 'PIDELTA', 'PVI'],
    statusWords: ['ALARM', 'EXC'],
    other: ['SN'],
    timestamp: 'MM/DD/YY HH:mm:ss',
  });
  const snippet = probeConfigSnippet(result('kv-line', [masimo]), 'spo2-bed3');
  const config = device(snippet);
  if (config?.adapter !== 'rs232' || config.format.kind !== 'kv-line') throw new Error('not kv-line');
  t.match(config.format.fields, {
    SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
    BPM: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
    PI: { code: 'MDC_PULS_OXIM_PERF_REL', mdc: 150448 },
    SPCO: { code: 'local-spco', system: 'LOCAL', unit: '1' },
    EXC: { type: 'hex' },
  });
  t.notOk('SN' in config.format.fields, 'the serial number is left out');
  t.equal(parseKvLine(masimo, config.format).deviceTime, '2007-05-15T08:12:21', 'it reads the line heard');

  const nonin = heardKeys(['SPO2=097 HR=072*', 'SPO2=--- HR=--- PID=MRN42']);
  t.same(nonin, { numbers: ['SPO2', 'HR'], statusWords: [], other: ['PID'] }, 'a glued * is a marker');
});

t.test('a plain-line suggestion matches the line heard, each number a group', async (t) => {
  const line = 'T=36.7C (probe 2) ok';
  const config = device(probeConfigSnippet(result('text-line', [line])));
  if (config?.adapter !== 'rs232' || config.format.kind !== 'regex-line') throw new Error('not regex-line');
  t.same(new RegexLineParser(config.format).parse(line).fields, [
    { name: 'v1', value: '36.7' },
    { name: 'v2', value: '2' },
  ]);
  t.same(Object.keys(config.format.fields), ['v1', 'v2']);
  t.same(device(probeConfigSnippet(result('astm', [])))?.adapter, 'rs232');
  t.equal(probeConfigSnippet({ path: '/dev/ttyS0', best: null, trials: [] }), null);
});
