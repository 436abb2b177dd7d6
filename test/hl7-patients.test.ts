import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkBatch } from '@attache/core';
import { getFreePort } from '@attache/devkit';
import { encodeMllp } from '@attache/hl7';
import t from 'tap';
import { recordsOf, Stack } from './helpers/stack.js';

const secrets = ['MRN-50111', 'MRN-50222', 'ALDERTON', 'BRIGHTWELL', 'ACC-7781', 'ACC-7782'];

/** An analyser's batch: two patients (PATIENT_RESULT groups) in one ORU^R01, each with an order. */
function twoPatients(controlId: string): string {
  return [
    `MSH|^~\\&|CHEM^080019FFFE134599^EUI-64|LAB|LIS|HOSP|20261205120501||ORU^R01^ORU_R01|${controlId}|P|2.5`,
    'PID|1||MRN-50111^^^HOSP^MR||ALDERTON^MAY||19520101|F',
    'ORC|RE|ACC-7781',
    'OBR|1|ACC-7781^LIS|ACC-7781^LAB|CHEM^Chemistry^L|||20261205110000',
    'OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|||||F',
    'OBX|2|NM|2160-0^Creatinine^LN||88|umol/L|||||F',
    'PID|2||MRN-50222^^^HOSP^MR||BRIGHTWELL^TOM||19610202|M',
    'ORC|RE|ACC-7782',
    'OBR|1|ACC-7782^LIS|ACC-7782^LAB|CHEM^Chemistry^L|||20261205113000',
    'OBX|1|NM|2345-7^Glucose^LN||7.9|mmol/L|||||F',
  ].join('\r');
}

function mllpSend(port: number, file: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    execFile('/usr/bin/mllp_send', ['-p', String(port), '-f', file, '127.0.0.1'], (err, stdout) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout }),
    );
  });
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

t.test('mllp_send sends a two-patient ORU^R01: two readings, two tokens, each stored once', async (t) => {
  const stack = await Stack.start(t);
  const port = await getFreePort();
  const config = stack.config();
  config.devices = [
    {
      id: 'chem-analyser',
      adapter: 'ethernet',
      endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
      format: { kind: 'hl7-mllp' },
    },
  ];
  await stack.writeConfig(config);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');

  const file = join(stack.dir, 'batch.hl7');
  await writeFile(file, encodeMllp(twoPatients('BATCH-1')));
  const first = await mllpSend(port, file);
  t.equal(first.code, 0, 'mllp_send exits 0');
  t.match(first.stdout, /MSA\|AA\|BATCH-1/, 'one AA for the message, once both readings are stored');
  const resent = await mllpSend(port, file);
  t.match(resent.stdout, /MSA\|AA\|BATCH-1/, 'the re-sent message is acknowledged again');

  // Results before the first PID of a message with several patients belong to no one: AE, located.
  const stray = twoPatients('BATCH-2').replace(
    '\rPID|1|',
    '\rOBX|1|NM|2345-7^Glucose^LN||6.1|mmol/L|||||F\rPID|1|',
  );
  await writeFile(file, encodeMllp(stray));
  const refused = await mllpSend(port, file);
  t.match(refused.stdout, /MSA\|AE\|BATCH-2/, 'the ambiguous message gets AE');
  t.match(refused.stdout, /ERR\|\|2\|100\^/, 'located at the stray segment, code 100');

  const status = await stack.statusUntil((s) => (s.adapters[0]?.malformed ?? 0) >= 1);
  t.same(
    [status.adapters[0]?.frames, status.adapters[0]?.stored, status.backlog.records],
    [3, 4, 2],
    'three messages; the readings of two acknowledged (as for any re-send); two in the cache',
  );
  for (const path of await filesUnder(join(stack.dir, 'data'))) {
    const bytes = await readFile(path);
    for (const secret of secrets) if (bytes.includes(secret)) t.fail(`${secret} found in ${path}`);
  }

  const dashboard = await stack.subscribe();
  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0);
  const messages = await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000);
  for (const m of messages)
    t.same(checkBatch(JSON.parse(m.toString('utf8'))), [], 'batch matches its schema');
  const wire = Buffer.concat(messages).toString('utf8');
  for (const secret of secrets) t.notMatch(wire, secret, `${secret} never reaches the broker`);
  const records = recordsOf(messages) as {
    observations: { code: string; value: unknown }[];
    patient?: { token: string };
    instrument?: { eui64?: string };
  }[];
  t.same(
    records.map((r) => r.observations.map((o) => [o.code, o.value])),
    [
      [
        ['2345-7', 5.4],
        ['2160-0', 88],
      ],
      [['2345-7', 7.9]],
    ],
    "each patient's results in its own record",
  );
  const tokens = records.map((r) => r.patient?.token);
  t.match(tokens, [/^pt_[a-z2-7]{26}$/, /^pt_[a-z2-7]{26}$/]);
  t.not(tokens[0], tokens[1], 'two patients, two tokens');
  t.same(
    records.map((r) => r.instrument?.eui64),
    ['080019FFFE134599', '080019FFFE134599'],
  );
  const logText = JSON.stringify(gateway.logs);
  for (const secret of secrets) t.notMatch(logText, secret, `${secret} is not in the gateway's logs`);
});
