// The gateway's side of the technician page's actions, on real files and socat ptys; the gateway's
// reload and health are stand-ins that record what they were asked (the gateway itself is in
// test/technician.test.ts).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AttacheConfig, validateConfig } from '@attache/core';
import { type LogEntry, openPtyPair, recordingLogger } from '@attache/devkit';
import t from 'tap';
import { ConfigApplier, checkCandidate, probePort } from '../src/technician-actions.js';
import { startTechnicianPage } from '../src/technician-host.js';

const raw = (dataDir: string, extra: Record<string, unknown> = {}) => ({
  version: 1,
  gateway: { id: 'gw-1', dataDir },
  devices: [
    {
      id: 'spo2-bed7',
      adapter: 'rs232',
      port: { path: '/dev/null' },
      format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
    },
  ],
  ...extra,
});

t.test('a probe says why a port cannot be heard, and what was not recognized', async (t) => {
  const dir = t.testdir();
  const missing = await probePort(join(dir, 'nothing'), 2, () => undefined);
  t.match(missing, { recognized: null, suggested: null, problem: /does not exist/ });
  const pty = await openPtyPair(join(dir, 'pty'));
  t.teardown(() => pty.close());
  const progress: unknown[] = [];
  const silent = await probePort(pty.gatewayPath, 2, (p) => progress.push(p));
  t.match(silent, { recognized: null, setting: null, keys: [], suggested: null });
  t.ok(progress.length > 1, 'each setting reported as it was done');
  t.match(progress[0], { bytes: 0, lines: 0, keyValueLines: 0 });
});

t.test('a plain text line is recognized but its pattern is not shown (it may name a patient)', async (t) => {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const { createWriteStream } = await import('node:fs');
  const out = createWriteStream(pty.devicePath);
  t.teardown(() => out.destroy());
  const timer = setInterval(() => out.write('DOE JOHN 120 80 72\r\n'), 50);
  t.teardown(() => clearInterval(timer));
  const result = await probePort(pty.gatewayPath, 2, () => undefined);
  t.match(result, { recognized: /plain text lines/, suggested: null, keys: [] });
  t.notMatch(JSON.stringify(result), /DOE/);
});

t.test('a candidate config may not change the identity or data directory', async (t) => {
  const dir = t.testdir();
  const running = validateConfig(raw(dir));
  const moved = await checkCandidate(
    { ...raw(join(dir, 'other')), gateway: { id: 'gw-2', dataDir: join(dir, 'other') } },
    running,
  );
  t.match(moved, { valid: false, issues: [{ path: '/gateway/id' }, { path: '/gateway/dataDir' }] });
  const notJson = await checkCandidate('x', running);
  t.match(notJson, { valid: false, issues: [{ path: '/' }] });
  t.match(await checkCandidate(raw(dir), running), { valid: true, issues: [] });
});

t.test('apply: refused, rolled back when unhealthy, applied; never two at once', async (t) => {
  const dir = t.testdir();
  const configPath = join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify(raw(dir)));
  let config: AttacheConfig = validateConfig(raw(dir));
  const reloads: string[] = [];
  let healthy = false;
  let release: () => void = () => undefined;
  let hold = false;
  const applier = new ConfigApplier({
    config: () => config,
    configPath,
    reload: async () => {
      reloads.push(JSON.parse(await readFile(configPath, 'utf8')).log?.level ?? 'default');
      if (hold) await new Promise<void>((r) => (release = r));
    },
    health: async () =>
      healthy ? { healthy: true } : { healthy: false, reason: 'adapter spo2-bed8 failed' },
    logger: recordingLogger([]),
  });
  t.match(await applier.current(), { gateway: { id: 'gw-1' } });
  const invalid = await applier.apply({ ...raw(dir), log: { level: 'loud' } });
  t.match(invalid, { applied: false, issues: [{ path: '/log/level' }], reason: /nothing changed/ });
  t.same(reloads, [], 'nothing reloaded');
  const unhealthy = await applier.apply({ ...raw(dir), log: { level: 'debug' } });
  t.match(unhealthy, {
    applied: false,
    reason: /unhealthy on the new config: adapter spo2-bed8 failed; rolled back/,
  });
  t.same(reloads, ['debug', 'default'], 'reloaded on the new config, then on the previous one');
  t.equal(JSON.parse(await readFile(configPath, 'utf8')).log, undefined, 'the previous file is back');
  healthy = true;
  hold = true;
  const first = applier.apply({ ...raw(dir), log: { level: 'warn' } });
  while (reloads.length < 3) await new Promise((r) => setImmediate(r));
  t.match(await applier.apply(raw(dir)), { applied: false, reason: 'another config is being applied' });
  release();
  t.same(await first, { applied: true, issues: [] });
  config = validateConfig({ ...raw(dir), log: { level: 'warn' } });
  const bare = new ConfigApplier({
    config: () => config,
    configPath: undefined,
    reload: async () => undefined,
    health: async () => ({ healthy: true }),
    logger: recordingLogger([]),
  });
  t.match(await bare.apply(raw(dir)), { applied: false, reason: 'this gateway runs without a config file' });
  t.match(await bare.current(), { log: { level: 'warn' } }, 'the running config when there is no file');
});

t.test('a page that cannot start is logged and left off; acquisition goes on', async (t) => {
  const dir = t.testdir({ 'not-a-dir': 'x' });
  const config = validateConfig(
    raw(join(dir, 'not-a-dir'), { technician: { listen: ['127.0.0.1'], port: 1 } }),
  );
  const logs: LogEntry[] = [];
  const page = await startTechnicianPage(config, recordingLogger(logs), {
    status: () => Promise.reject(new Error('unused')),
    sync: () => Promise.reject(new Error('unused')),
    stored: new Set(),
    stageExport: () => Promise.reject(new Error('unused')),
    target: {
      config: () => config,
      configPath: undefined,
      reload: async () => undefined,
      health: async () => ({ healthy: true }),
      logger: recordingLogger([]),
    },
  });
  t.equal(page, undefined);
  t.ok(logs.some((l) => l.msg === 'the technician page could not start: it stays off'));
  t.equal(
    await startTechnicianPage(validateConfig(raw(dir)), recordingLogger([]), {} as never),
    undefined,
    'off when not configured',
  );
});
