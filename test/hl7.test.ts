import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkBatch } from '@attache/core';
import {
  getFreePort,
  MllpSenderSimulator,
  type OruObservation,
  oruR01Message,
  pcd01VitalSigns,
} from '@attache/devkit';
import { encodeMllp } from '@attache/hl7';
import t from 'tap';
import { type GatewayProcess, recordsOf, Stack } from './helpers/stack.js';

const mrn = 'MRN-99817';
const name = 'QUIMBY^HORTENSE';
const secrets = [mrn, 'QUIMBY', 'HORTENSE', '19470312'];

/** PCD-01 vital signs (headers, NIBP sys/dia/mean, SpO2, pulse) and a sequence number. */
function vitals(seq: number): OruObservation[] {
  return [
    ...pcd01VitalSigns({ systolic: 121, diastolic: 79, mean: 93, spo2: 97, pulse: 72 }),
    { type: 'NM', code: 'SEQ^test sequence^LOCAL', path: '9.9.9.9', value: String(seq) },
  ];
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

t.test(
  'PCD-01 over MLLP into a real gateway: killed before an ACK, the sender re-sends and nothing is lost',
  async (t) => {
    const stack = await Stack.start(t);
    const port = await getFreePort();
    const config = stack.config() as Record<string, unknown>;
    config.devices = [
      {
        id: 'monitor-bed7',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
        format: { kind: 'hl7-mllp' },
      },
    ];
    await stack.writeConfig(config);
    let gateway: GatewayProcess = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');

    const sender = new MllpSenderSimulator({
      port,
      reconnectMs: 100,
      maxAttempts: 200,
      ackTimeoutMs: 15_000,
    });
    t.teardown(() => sender.close());
    const total = 60;
    const killAt = `SEQ-${30}`;
    let restarted: Promise<void> | undefined;
    const logs: Record<string, unknown>[][] = [gateway.logs];
    sender.on('sent', (controlId) => {
      if (controlId !== killAt || restarted !== undefined) return;
      // SIGKILL right after the frame went out: the gateway cannot have stored and ACKed it yet.
      gateway.child.kill('SIGKILL');
      restarted = gateway.exited.then(() => {
        gateway = stack.startGateway();
        logs.push(gateway.logs);
      });
    });
    const acks = [];
    for (let seq = 0; seq < total; seq++) {
      acks.push(
        await sender.send(
          oruR01Message({
            controlId: `SEQ-${seq}`,
            patient: { mrn, name, birthDate: '19470312' },
            observations: vitals(seq),
          }),
        ),
      );
    }
    t.ok(restarted !== undefined, 'the gateway was killed mid-stream');
    t.same(
      acks.map((a) => [a.code, a.controlId]),
      Array.from({ length: total }, (_, seq) => ['AA', `SEQ-${seq}`]),
      'every message got one AA echoing its control id',
    );
    t.ok(sender.resent >= 1, 'the message in flight at the kill was sent again');

    await sender.sendRaw(Buffer.from('\x0bnot hl7 at all\x1c\r'));
    t.match(await sender.nextAck(), /MSA\|AE\|/, 'garbage gets AE');
    const after = await sender.send(oruR01Message({ controlId: 'SEQ-after', observations: vitals(total) }));
    t.equal(after.code, 'AA', 'and the connection survives');

    // Debian's mllp_send (python3-hl7), a sender that is not ours, into the same gateway.
    const byMllpSend = [total + 1, total + 2];
    const file = join(stack.dir, 'from-mllp-send.hl7');
    await writeFile(
      file,
      Buffer.concat(
        byMllpSend.map((seq) =>
          encodeMllp(
            oruR01Message({
              controlId: `MS-${seq}`,
              patient: { mrn, name, birthDate: '19470312' },
              observations: vitals(seq),
            }),
          ),
        ),
      ),
    );
    const mllpSend = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile('/usr/bin/mllp_send', ['-p', String(port), '-f', file, '127.0.0.1'], (err, stdout) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout }),
      );
    });
    t.equal(mllpSend.code, 0, 'mllp_send exits 0');
    t.same(
      mllpSend.stdout.match(/MSA\|A.\|[^|\r]*/g),
      byMllpSend.map((seq) => `MSA|AA|MS-${seq}`),
      'mllp_send gets one AA per message, echoing its control id',
    );

    const status = await stack.statusUntil(
      (s) => (s.adapters[0]?.stored ?? 0) >= 3 && s.backlog.records >= total - 30,
    );
    t.equal(status.adapters[0]?.state, 'connected');
    const cacheFiles = await filesUnder(join(stack.dir, 'data'));
    t.ok(
      cacheFiles.some((f) => f.endsWith('.log') || f.endsWith('.ldb')),
      'LevelDB files exist',
    );
    for (const file of cacheFiles) {
      const bytes = await readFile(file);
      for (const secret of secrets) {
        if (bytes.includes(secret)) t.fail(`${secret} found in ${file}`);
      }
    }
    t.pass('no patient name, MRN or birth date in any cache file');

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
    for (const secret of secrets) t.notMatch(wire, secret, `${secret} never reaches the broker`);
    const records = recordsOf(messages) as {
      observations: { code: string; mdc?: number; value: unknown; unit: string; path?: string }[];
      patient?: { token: string };
      instrument?: { eui64?: string };
      protocol: string;
    }[];
    const seqs = new Set(records.map((r) => r.observations.find((o) => o.code === 'SEQ')?.value));
    const missing = Array.from({ length: total + 3 }, (_, i) => i).filter((i) => !seqs.has(i));
    t.same(missing, [], 'every message is in the cache, those from mllp_send too');
    t.equal(records.length, total + 3, 'each exactly once: a re-sent message is recognised by its key');
    const first = records[0];
    t.same(
      first?.observations.map((o) => [o.code, o.mdc, o.value, o.unit, o.path]),
      [
        ['MDC_PRESS_BLD_NONINV_SYS', 150021, 121, 'mm[Hg]', '1.1.1.1'],
        ['MDC_PRESS_BLD_NONINV_DIA', 150022, 79, 'mm[Hg]', '1.1.1.2'],
        ['MDC_PRESS_BLD_NONINV_MEAN', 150023, 93, 'mm[Hg]', '1.1.1.3'],
        ['MDC_PULS_OXIM_SAT_O2', 150456, 97, '%', '1.2.1.1'],
        ['MDC_PULS_OXIM_PULS_RATE', 149530, 72, '/min', '1.2.1.2'],
        ['SEQ', undefined, 0, '1', '9.9.9.9'],
      ],
      'MDC codes, UCUM units, containment paths; headers are not readings',
    );
    t.equal(first?.protocol, 'hl7-mllp');
    t.equal(first?.instrument?.eui64, '080019FFFE134535');
    const tokens = new Set(records.filter((r) => r.patient).map((r) => r.patient?.token));
    t.equal(tokens.size, 1, 'one patient, one token');
    t.match([...tokens][0], /^pt_[a-z2-7]{26}$/);
    const logText = JSON.stringify(logs.flat());
    for (const secret of secrets) t.notMatch(logText, secret, `${secret} is not in the gateway's logs`);
  },
);
