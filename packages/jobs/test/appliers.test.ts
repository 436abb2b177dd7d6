import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nullLogger, validateConfig } from '@attache/core';
import {
  type ApplyContext,
  type ConfigUpdateJob,
  ConfigUpdater,
  ReleaseInstaller,
  type SoftwareUpdateJob,
} from '@attache/jobs';
import t from 'tap';

const artifact = { content: '', sha256: '0'.repeat(64), size: 0 };

function context<D extends ConfigUpdateJob | SoftwareUpdateJob>(
  document: D,
  content: Buffer,
  resumed = false,
): ApplyContext<D> {
  return {
    jobId: 'j',
    executionNumber: 1,
    document,
    content,
    resumed,
    signal: new AbortController().signal,
    log: nullLogger,
  };
}

const base = {
  version: 1,
  gateway: { id: 'gw-1', dataDir: '/var/lib/attache' },
  devices: [
    {
      id: 'd',
      adapter: 'rs232',
      port: { path: '/dev/ttyUSB0' },
      format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
    },
  ],
};

t.test('config update: a merge patch, then a crash after the write resumes without rewriting', async (t) => {
  const dir = t.testdir();
  const configPath = join(dir, 'config.json');
  const original = `${JSON.stringify(base, null, 2)}\n`;
  await writeFile(configPath, original);
  t.doesNotThrow(() => validateConfig(base), 'the base config is valid');
  let restarts = 0;
  const updater = new ConfigUpdater({
    configPath,
    validate: validateConfig,
    restart: async () => {
      restarts++;
    },
    healthCheck: async () => ({ healthy: true }),
  });
  const doc: ConfigUpdateJob = {
    schemaVersion: 2,
    manifest: '{}',
    signature: 'x',
    operation: 'config-update',
    mode: 'merge-patch',
    artifact,
  };
  const patch = Buffer.from(JSON.stringify({ log: { level: 'debug' } }));
  t.same(await updater.apply(context(doc, patch)), { config: 'applied' });
  const patched = await readFile(configPath, 'utf8');
  t.equal(JSON.parse(patched).log.level, 'debug');
  t.equal(await readFile(`${configPath}.prev`, 'utf8'), original);
  t.equal(restarts, 1);
  // The process died after the rename: the job is resumed on the new file.
  await updater.apply(context(doc, patch, true));
  t.equal(await readFile(configPath, 'utf8'), patched, 'the file is unchanged');
  t.equal(await readFile(`${configPath}.prev`, 'utf8'), original, '.prev still holds the old config');
  t.equal(restarts, 1, 'no second restart: the gateway already runs on it');
  await t.rejects(updater.apply(context(doc, Buffer.from('{not json'))), {
    status: 'REJECTED',
    message: /not valid JSON/,
  });
  t.throws(() => new ConfigUpdater({ configPath: '' } as never), TypeError);
});

t.test('software update: an unreadable bundle is REJECTED, an unhealthy first install FAILED', async (t) => {
  const root = t.testdir();
  const doc: SoftwareUpdateJob = {
    schemaVersion: 2,
    manifest: '{}',
    signature: 'x',
    operation: 'software-update',
    version: '1.0.0',
    artifact,
  };
  let healthy = false;
  const installer = new ReleaseInstaller({
    root,
    restart: async () => undefined,
    healthCheck: async () => ({ healthy, reason: 'no window succeeded' }),
  });
  await t.rejects(installer.apply(context(doc, Buffer.from('not a tar.gz'))), {
    status: 'REJECTED',
    message: /cannot be unpacked/,
  });
  t.same(await readdir(join(root, 'releases')), [], 'nothing half-unpacked is left');
  t.equal(await installer.current(), undefined);
  await mkdir(join(root, 'tree'));
  await writeFile(join(root, 'tree', 'bin.js'), '');
  execFileSync('tar', ['-czf', join(root, 'b.tgz'), '-C', join(root, 'tree'), '.']);
  const bundle = await readFile(join(root, 'b.tgz'));
  await t.rejects(installer.apply(context(doc, bundle)), {
    status: 'FAILED',
    message: /there is no previous release/,
  });
  healthy = true;
  t.same(
    await installer.apply(context(doc, bundle, true)),
    { version: '1.0.0' },
    'resumed, it only checks health',
  );
  t.equal(await readlink(join(root, 'current')), 'releases/1.0.0');
  t.throws(() => new ReleaseInstaller({ root: '' } as never), TypeError);
});
