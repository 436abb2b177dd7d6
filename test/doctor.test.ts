// `attache doctor` end to end with the built CLI: a running gateway with a device on a pty and a
// mutual-TLS broker (all OK, no patient data in the output), then what a technician meets: a key that
// is not the certificate's, a port another program holds, files the service user cannot read.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { getFreePort, profileFormat } from '@attache/devkit';
import t from 'tap';
import { attache, Stack } from './helpers/stack.js';

const run = promisify(execFile);

interface DoctorJson {
  status: number;
  results: { check: string; status: 'ok' | 'warn' | 'fail'; detail: string; action?: string }[];
}

const find = (json: DoctorJson, check: string) => json.results.filter((r) => r.check === check);

t.test('a healthy running box: every check OK or explained, no patient data printed', async (t) => {
  const stack = await Stack.start(t);
  const config = stack.config() as { devices: Record<string, unknown>[] };
  const device = config.devices[0] as { format: Record<string, unknown> };
  device.format = { ...profileFormat('nonin'), patientIdField: 'PID' };
  const hl7Port = await getFreePort();
  config.devices.push({
    id: 'monitors',
    adapter: 'ethernet',
    endpoint: { mode: 'listen', port: hl7Port, allow: ['127.0.0.1'] },
    format: { kind: 'hl7-mllp' },
  });
  await stack.writeConfig(config);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  await stack.device.sendRaw('SPO2=97 HR=072 PID=MRN-448812\r\n');
  await stack.statusUntil((s) => s.backlog.records === 1);

  const text = await stack.run('doctor', '--network');
  const json = await stack.run('doctor', '--network', '--json');
  for (const out of [text, json]) {
    t.notMatch(out.stdout + out.stderr, /MRN-448812|448812/, 'no patient id');
    t.notMatch(out.stdout, /BEGIN (EC |RSA )?PRIVATE KEY/, 'no key material');
  }
  const report = JSON.parse(json.stdout) as DoctorJson;
  t.match(find(report, 'config'), [{ status: 'ok' }]);
  t.match(find(report, 'gateway'), [{ status: 'ok', detail: /running/ }]);
  t.match(find(report, 'certificate and key'), [{ status: 'ok' }]);
  t.match(find(report, 'certificate dates'), [{ status: 'ok' }]);
  t.match(find(report, 'port spo2-bed7'), [{ status: 'ok', detail: /held by the gateway/ }]);
  t.match(find(report, 'port monitors'), [{ status: 'ok', detail: `TCP ${hl7Port}, held by the gateway` }]);
  t.match(find(report, 'endpoint'), [{ status: 'ok', detail: /TLS 1\.2\+/ }]);
  t.equal(find(report, 'self-test').length, 4);
  t.ok(
    find(report, 'self-test').every((r) => r.status === 'ok'),
    'AES-GCM, SHA-256, HMAC, ECDSA known answers',
  );
  // The clock check depends on this machine's timesyncd: OK or WARN, never FAIL.
  t.notOk(
    report.results.some((r) => r.status === 'fail'),
    JSON.stringify(report.results.filter((r) => r.status === 'fail')),
  );
  t.equal(json.code, report.status, 'exit status = the worst result');
  t.match(text.stdout, /^OK {4}config: /m);
  t.match(text.stdout, /\d+ checks: \d+ OK, \d+ WARN, 0 FAIL/);
});

t.test(
  'a wrong key, a port held by another program, a file root left behind: FAIL with what to do',
  async (t) => {
    const stack = await Stack.start(t);
    // Another program holds the gateway's serial port.
    const holder: ChildProcess = spawn('sh', ['-c', `exec 3<>${stack.pty.gatewayPath}; exec sleep 60`], {
      stdio: 'ignore',
    });
    t.teardown(() => holder.kill('SIGKILL'));
    // The key of another certificate.
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const keyFile = join(stack.dir, 'stranger.key');
    await writeFile(keyFile, stranger.export({ type: 'pkcs8', format: 'pem' }));
    const config = stack.config() as {
      uplink: Record<string, unknown>;
      gateway: { dataDir: string };
      devices: Record<string, unknown>[];
      jobs?: Record<string, unknown>;
    };
    config.uplink.keyFile = keyFile;
    config.uplink.caFile = join(stack.dir, 'no-such-ca.pem');
    // A credential systemd hands the service only while it runs.
    config.jobs = { publicKeyFile: '/run/credentials/attache.service/uplink_jobs.pem' };
    // Another program listens on a device's port; a serial adapter is unplugged.
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    t.teardown(() => squatter.close());
    const squatted = (squatter.address() as AddressInfo).port;
    config.devices.push(
      {
        id: 'monitors',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', port: squatted, allow: ['127.0.0.1'] },
        format: { kind: 'hl7-mllp' },
      },
      {
        id: 'unplugged',
        adapter: 'rs232',
        port: { path: join(stack.dir, 'no-such-tty') },
        format: profileFormat('nonin'),
      },
    );
    await stack.writeConfig(config);
    // The data directory belongs to the service user (nobody here), but a file in it only root can
    // read (as `attache status` run by root under umask 077 left LevelDB's CURRENT).
    const nobody = Number((await run('id', ['-u', 'nobody'])).stdout.trim());
    const cache = join(config.gateway.dataDir, 'cache');
    await mkdir(cache, { recursive: true, mode: 0o755 });
    await chown(config.gateway.dataDir, nobody, nobody);
    await chown(cache, nobody, nobody);
    await writeFile(join(cache, 'CURRENT'), 'MANIFEST-000001\n', { mode: 0o600 });
    await chmod(stack.dir, 0o755);
    await until(async () =>
      (await stack.run('doctor', '--no-network', '--json')).stdout.includes('held by pid'),
    );

    const result = await stack.run('doctor', '--no-network', '--json', '--user', 'nobody');
    t.equal(result.code, 2, 'exit 2: something failed');
    const report = JSON.parse(result.stdout) as DoctorJson;
    t.match(find(report, 'certificate and key'), [
      { status: 'fail', detail: /not the key of/, action: /provision the matching/ },
    ]);
    t.match(find(report, 'port spo2-bed7'), [
      { status: 'fail', detail: /held by pid \d+ \(sleep 60\)/, action: /stop that program/ },
    ]);
    t.match(find(report, 'data directory'), [
      { status: 'fail', detail: /CURRENT/, action: /chown -R nobody/ },
    ]);
    t.match(find(report, 'endpoint'), [{ status: 'ok', detail: /not checked/ }]);
    t.match(find(report, 'port monitors'), [
      { status: 'fail', detail: new RegExp(`TCP ${squatted} is held by pid ${process.pid} `) },
    ]);
    t.match(find(report, 'port unplugged'), [
      { status: 'fail', detail: /is not present/, action: /plug the adapter in/ },
    ]);
    t.match(find(report, 'file uplink.caFile'), [{ status: 'fail', detail: 'does not exist' }]);
    t.match(find(report, 'file jobs.publicKeyFile'), [
      { status: 'warn', detail: /only while attache.service runs/ },
    ]);
    t.match(find(report, 'gateway'), [{ status: 'warn', detail: 'not running' }]);
  },
);

t.test('an invalid config: FAIL, and the self-test still runs', async (t) => {
  const dir = t.testdir({ 'config.json': JSON.stringify({ version: 1, gateway: {}, devices: [] }) });
  const result = await attache(['doctor', '--config', join(dir, 'config.json')]);
  t.equal(result.code, 2);
  t.match(result.stdout, /^FAIL {2}config: .*problem/m);
  t.match(result.stdout, /-> attache config validate/);
  t.match(result.stdout, /OK {4}self-test: SHA-256/);
});

async function until(done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await done()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}
