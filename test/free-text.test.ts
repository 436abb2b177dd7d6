// End-to-end: free text that names people, from an HL7 monitor and an ASTM analyzer, through a real
// `attache run` to a real mosquitto. Off by default: none of it leaves. On: only de-identified.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkBatch } from '@attache/core';
import { getFreePort, MllpSenderSimulator } from '@attache/devkit';
import t, { type Test } from 'tap';
import { astmRig } from './helpers/astm-rig.js';
import { recordsOf, Stack } from './helpers/stack.js';

const secrets = [
  'QUIMBY',
  'Quimby',
  'HORTENSE',
  'Hortense',
  'Hattie',
  'WELBY',
  'Welby',
  'Kelly',
  'Kildare',
  'KILDARE',
  'CASEY',
  'Casey',
  '448812',
  '555-0100',
  '555-0199',
  '19470312',
  '1947',
  'hq@example.org',
];

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Fails for each secret found in the cache's files, the broker's messages or the gateway's log. */
async function assertNoSecrets(t: Test, where: { dataDir: string; wire: string; logs: string }) {
  // The cache's files hold ciphertext and hex HMAC keys, where a 4-digit string like 1947 turns up by
  // chance in about one run in fifty: there, only secrets of 6 or more characters are looked for.
  const distinctive = secrets.filter((secret) => secret.length >= 6);
  for (const file of await filesUnder(where.dataDir)) {
    const bytes = await readFile(file);
    for (const secret of distinctive) if (bytes.includes(secret)) t.fail(`${secret} found in ${file}`);
  }
  for (const secret of secrets) {
    t.notMatch(where.wire, secret, `${secret} never reaches the broker`);
    t.notMatch(where.logs, secret, `${secret} is not in the gateway's log`);
  }
}

/** An ORU^R01 that names people in every people field and in every kind of free text. */
function monitorMessage(controlId: string): string {
  return [
    `MSH|^~\\&|MON^080019FFFE134535^EUI-64|ICU|GW|HOSP|20260101120000||ORU^R01^ORU_R01|${controlId}|P|2.6`,
    'PID|1||MRN-448812^^^HOSP^MR||QUIMBY^HORTENSE||19470312|F|||||555-0100^^^hq@example.org',
    'PV1|1|I|ICU^7^1||||W1^WELBY^MARCUS|C1^CASEY^BEN|K1^KILDARE^JAMES',
    'ORC|RE',
    'OBR|1|||182777000^monitoring of patient^SCT|||20260101115900',
    'NTE|1||Order note: Hortense Quimby, family (Hattie) at 555-0199',
    'OBX|1|NM|0002-4bb8^SpO2^MDIL|1.2.1.1|84|0004-0220^%^MDIL|||||R',
    'NTE|1||probe re-sited by nurse Kelly, Dr Welby aware',
    'OBX|2|TX|NOTE^note^L|1.9.1.1|seen by Dr Casey, MRN 448812||||||F',
    'OBX|3|FT|NOTE^note^L|1.9.1.2|family: Hattie Quimby||||||F',
    'OBX|4|ST|NOTE^note^L|1.9.1.3|operator KILDARE||||||F',
    'OBX|5|TX|0002-d006^MDIL-ALERT^MDIL|1.2.1.1|***SpO2 LOW 84 < 90 QUIMBY||||||F',
  ].join('\r');
}

interface Rec {
  deviceId: string;
  notes?: string[];
  observations: { code: string; value: unknown; comments?: string[]; deviceCode?: unknown; mdc?: number }[];
  alarms?: {
    code: string;
    text?: string;
    priority?: string;
    limits?: unknown;
    parameter?: { value: unknown };
  }[];
  event?: { type: string };
}

t.test(
  'HL7: free text naming people reaches the broker only de-identified, and not at all by default',
  async (t) => {
    const stack = await Stack.start(t);
    const [plainPort, textPort] = [await getFreePort(), await getFreePort()];
    const device = (id: string, port: number, format: Record<string, unknown>) => ({
      id,
      adapter: 'ethernet',
      endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
      format: { kind: 'hl7-mllp', ...format },
    });
    const config = stack.config() as Record<string, unknown>;
    config.devices = [device('mon-plain', plainPort, {}), device('mon-text', textPort, { freeText: true })];
    await stack.writeConfig(config);
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    for (const [port, id] of [
      [plainPort, 'P-1'],
      [textPort, 'T-1'],
    ] as const) {
      const sender = new MllpSenderSimulator({
        port,
        reconnectMs: 100,
        maxAttempts: 50,
        ackTimeoutMs: 10_000,
      });
      t.teardown(() => sender.close());
      t.equal((await sender.send(monitorMessage(id))).code, 'AA', `${id} is acknowledged`);
    }
    await stack.statusUntil((s) => s.backlog.records === 2);
    const dashboard = await stack.subscribe();
    const sync = await stack.run('sync', '--json');
    t.equal(sync.code, 0);
    const messages = await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000);
    t.same(
      messages.map((m) => checkBatch(JSON.parse(m.toString('utf8')))),
      messages.map(() => []),
      'batch matches its schema (each message)',
    );
    const wire = Buffer.concat(messages).toString('utf8');
    await assertNoSecrets(t, { dataDir: join(stack.dir, 'data'), wire, logs: JSON.stringify(gateway.logs) });

    const records = recordsOf(messages) as unknown as Rec[];
    const plain = records.find((r) => r.deviceId === 'mon-plain');
    const text = records.find((r) => r.deviceId === 'mon-text');
    t.same(
      plain?.observations.map((o) => [o.code, o.mdc, o.value, o.comments]),
      [['MDC_PULS_OXIM_SAT_O2', 150456, 84, undefined]],
      'off: only the numeric, MDIL converted to MDC, no comment and no text value',
    );
    t.same(plain?.observations[0]?.deviceCode, { code: '0002-4bb8', system: 'MDIL' });
    t.equal(plain?.notes, undefined, 'off: no notes');
    t.equal(plain?.event?.type, 'alarm');
    t.match(plain?.alarms, [
      { code: '0002-d006', priority: 'high', limits: { low: 90 }, parameter: { value: 84 } },
    ]);
    t.equal(plain?.alarms?.[0]?.text, undefined, 'off: the alarm keeps its coded parts, not its text');

    t.same(
      text?.notes,
      ['Order note: [redacted], family ([redacted]) at [redacted]'],
      'on: the NTE after OBR',
    );
    t.same(
      text?.observations.map((o) => [o.value, o.comments]),
      [
        [84, ['probe re-sited by nurse [redacted], Dr [redacted] aware']],
        // `MRN` is a word of the patient's id (`MRN-448812`): removed with it.
        ['seen by Dr [redacted], [redacted]', undefined],
        ['family: [redacted]', undefined],
        ['operator [redacted]', undefined],
      ],
      'on: the NTE after the OBX, and the TX, FT and ST values, de-identified',
    );
    t.equal(text?.alarms?.[0]?.text, '***SpO2 LOW 84 < 90 [redacted]', 'on: the alarm text keeps its phrase');
  },
);

for (const comments of [false, true]) {
  const what = comments ? 'only de-identified when turned on' : 'not at all by default';
  t.test(`ASTM: comments naming people reach the broker ${what}`, async (t) => {
    const rig = await astmRig(t, { format: comments ? { comments: true } : {} });
    const sender = await rig.sender();
    const message = [
      'H|\\^&|||SIM-CHEM^SN-7^1.2|||||||P|E1394-97|20240627140000',
      'P|1|MRN-448812||ID3|QUIMBY^HORTENSE||19470312|F||||555-0100|WELBY^MARCUS',
      'C|1|L|Family: Hattie, call 555-0199|G',
      `O|1|SPEC-9||^^^GLU${'|'.repeat(12)}CASEY^BEN`,
      'C|1|L|Drawn by nurse Kelly|G',
      'R|1|^^^GLU|5.4|mmol/L||N||F||KILDARE',
      'C|1|I|Critical called to Dr Welby by Kildare, read back|G',
      'L|1|N',
    ];
    t.equal((await sender.send(message)).status, 'sent');
    await rig.stack.statusUntil((s) => s.backlog.records === 1);
    const dashboard = await rig.stack.subscribe();
    const sync = await rig.stack.run('sync', '--json');
    const messages = await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000);
    const wire = Buffer.concat(messages).toString('utf8');
    await assertNoSecrets(t, {
      dataDir: join(rig.stack.dir, 'data'),
      wire,
      logs: JSON.stringify(rig.gateway.logs),
    });
    const records = recordsOf(messages) as unknown as Rec[];
    t.equal(records.length, 1, 'one record for the one order');
    const [record] = records;
    if (!comments) {
      t.equal(record?.notes, undefined, 'off: no notes');
      t.equal(record?.observations[0]?.comments, undefined, 'off: no result comment');
      return;
    }
    t.same(record?.notes, ['Family: [redacted], call [redacted]', 'Drawn by nurse [redacted]']);
    t.same(record?.observations[0]?.comments, ['Critical called to Dr [redacted] by [redacted], read back']);
  });
}
