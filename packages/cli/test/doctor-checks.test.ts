// The doctor's checks in-process, for the outcomes the end-to-end test (test/doctor.test.ts) does not
// reach on a healthy machine: certificate dates, window schedules, the summary and exit status.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type AttacheConfig, validateConfig } from '@attache/core';
import { createTestPki } from '@attache/devkit';
import t from 'tap';
import { type CheckResult, exitStatus, formatResults } from '../src/doctor/check.js';
import { windowAllowed } from '../src/doctor/doctor.js';
import { checkCertificate, checkClock, checkDisk, readSmallFile } from '../src/doctor/system.js';

function config(dir: string, extra: Record<string, unknown> = {}): AttacheConfig {
  return validateConfig({
    version: 1,
    gateway: { id: 'gw-1', dataDir: join(dir, 'data'), clockSyncFile: join(dir, 'synced') },
    devices: [
      {
        id: 'd',
        adapter: 'rs232',
        port: { path: '/dev/null' },
        format: { kind: 'kv-line', fields: { X: { code: 'X', unit: '1' } } },
      },
    ],
    ...extra,
  });
}

t.test(
  'certificate dates: valid, ending within 30 days, expired, not yet valid (a clock behind)',
  async (t) => {
    const dir = t.testdir();
    const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-1' });
    const cfg = config(dir, {
      uplink: { endpoint: 'localhost', certFile: pki.clientCertFile, keyFile: pki.clientKeyFile },
    });
    const cert = new X509Certificate(await readFile(pki.clientCertFile));
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    const dates = async (now: number) =>
      (await checkCertificate(cfg, now)).find((r) => r.check === 'certificate dates');
    t.match(await dates(from + 1000), { status: 'ok' });
    t.match(await dates(to - 5 * 86_400_000), { status: 'warn', detail: /ends in 5 days/ });
    t.match(await dates(to + 1000), { status: 'fail', detail: /expired/ });
    t.match(await dates(from - 1000), { status: 'fail', detail: /not valid yet/, action: /clock/ });
    const noKey = config(dir, {
      uplink: { endpoint: 'localhost', certFile: pki.clientCertFile, keyFile: pki.caFile },
    });
    t.match((await checkCertificate(noKey, from + 1000))[0], {
      status: 'fail',
      detail: /cannot be read as a PEM private key/,
    });
    const noCert = config(dir, {
      uplink: { endpoint: 'localhost', certFile: pki.clientKeyFile, keyFile: pki.clientKeyFile },
    });
    t.match(await checkCertificate(noCert, from), [
      { status: 'fail', detail: /not a PEM certificate|cannot be read/ },
    ]);
    t.match(await checkCertificate(config(dir), from), [{ status: 'ok', detail: 'no uplink configured' }]);
    for (const certFile of [
      join(dir, 'missing.crt'),
      '/run/credentials/attache.service/uplink_missing.crt',
    ]) {
      const missing = config(dir, {
        uplink: { endpoint: 'localhost', certFile, keyFile: pki.clientKeyFile },
      });
      t.match(await checkCertificate(missing, from), [{ status: 'fail' }], `${certFile}: said, not thrown`);
    }
  },
);

t.test('clock and disk', async (t) => {
  const dir = t.testdir({ synced: '' });
  t.match(await checkClock(config(dir), 0), { status: 'ok', detail: /synchronized/ });
  t.match(await checkClock(config(join(dir, 'elsewhere')), 0), { status: 'warn' });
  t.match(
    await checkDisk(config(dir)),
    { check: 'disk', detail: /MiB free/ },
    'the nearest existing directory',
  );
});

t.test('the endpoint is checked only when a window is allowed now', async (t) => {
  const dir = t.testdir();
  const at = (h: number) => new Date(2026, 5, 15, h, 10).getTime();
  const uplink = (window: Record<string, unknown>) =>
    config(dir, { uplink: { endpoint: 'x', certFile: 'c', keyFile: 'k', window } });
  t.notOk(windowAllowed(config(dir), at(2)), 'no uplink');
  t.ok(windowAllowed(uplink({}), at(2)), 'no schedule: any time');
  t.ok(windowAllowed(uplink({ schedules: ['02:00-02:20'] }), at(2)), 'inside the slot');
  t.notOk(windowAllowed(uplink({ schedules: ['02:00-02:20'] }), at(3)), 'outside it');
  t.ok(windowAllowed(uplink({ schedules: ['02:00-02:20'], everySeconds: 60 }), at(3)), 'an interval too');
});

t.test('the exit status is the worst result; the text has each action under its check', async (t) => {
  const r = (status: CheckResult['status']): CheckResult => ({
    check: 'c',
    status,
    detail: 'd',
    action: 'a',
  });
  t.equal(exitStatus([]), 0);
  t.equal(exitStatus([r('ok'), r('ok')]), 0);
  t.equal(exitStatus([r('ok'), r('warn')]), 1);
  t.equal(exitStatus([r('fail'), r('warn')]), 2);
  t.equal(formatResults([r('warn')]), 'WARN  c: d\n      -> a\n1 checks: 0 OK, 1 WARN, 0 FAIL');
});

t.test(
  'the doctor reads only a regular, small file where the config names a certificate or key',
  async (t) => {
    const dir = t.testdir({ 'small.pem': 'not a key', 'large.pem': Buffer.alloc(2048, 0x41) });
    t.same(await readSmallFile(join(dir, 'small.pem')), Buffer.from('not a key'));
    await t.rejects(readSmallFile(join(dir, 'large.pem'), 1024), /larger than 1024 bytes/);
    await t.rejects(readSmallFile('/dev/zero'), /not a regular file/);
    await t.rejects(readSmallFile(dir), /not a regular file/);
    const fifo = join(dir, 'fifo');
    await promisify(execFile)('mkfifo', [fifo]);
    await t.rejects(readSmallFile(fifo), /not a regular file/, 'a FIFO nobody writes does not stall it');
    const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-1' });
    for (const certFile of ['/dev/zero', fifo]) {
      const hostile = config(dir, {
        uplink: { endpoint: 'localhost', certFile, keyFile: pki.clientKeyFile },
      });
      t.match(
        await checkCertificate(hostile, Date.now()),
        [{ status: 'fail', detail: /cannot be read/ }],
        certFile,
      );
    }
  },
);
