// Files up: capture (hash + seal into the up store) and upload (credentials provider + S3 over HTTPS,
// SigV4, SHA-256 per request) of one large file (BENCH_MB, default 64 MiB, multipart in 8 MiB parts)
// and of many small files (BENCH_SMALL, default 200 files of 64 KiB, one PutObject each), against the
// emulators in a child process, so the CPU figures are the gateway's alone (process.cpuUsage of this
// process: user + system). Prints MiB/s and CPU ms per MiB for each. Run with TypeScript support for
// the emulators:
//   node --import @tapjs/typescript/import bench/files-up.mjs
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadOrCreateKeyring } from '@attache/cache';
import { createTestPki } from '@attache/devkit';
import { CredentialsProviderClient, FileUploader, S3UploadClient, UpStore } from '@attache/files-up';

const MiB = 1024 * 1024;
const thingName = 'gw-bench-files';

if (process.argv[2] === 'server') {
  const { CredentialsProviderEmulator, S3UploadEmulator } = await import(
    '../test/helpers/files-up-emulator.ts'
  );
  const pki = JSON.parse(process.argv[3]);
  const provider = await CredentialsProviderEmulator.start(pki);
  const s3 = await S3UploadEmulator.start(pki, provider);
  process.send({
    provider: provider.endpoint,
    alias: provider.roleAlias,
    s3: s3.endpoint,
    bucket: s3.bucket,
    region: s3.region,
  });
  // Stored objects are dropped: the bench measures the gateway, not the emulator's memory.
  setInterval(() => s3.objects.clear(), 1000);
  process.on('disconnect', () => process.exit(0));
} else {
  const bigBytes = Number(process.env.BENCH_MB ?? 64) * MiB;
  const smallCount = Number(process.env.BENCH_SMALL ?? 200);
  const dir = await mkdtemp(join(tmpdir(), 'attache-bench-files-'));
  try {
    const pki = await createTestPki(join(dir, 'pki'), { thingName });
    const child = fork(fileURLToPath(import.meta.url), ['server', JSON.stringify(pki)], {
      execArgv: process.execArgv,
      stdio: 'inherit',
    });
    const ends = await new Promise((resolve) => child.once('message', resolve));
    const [cert, key, ca] = await Promise.all(
      [pki.clientCertFile, pki.clientKeyFile, pki.caFile].map((f) => readFile(f)),
    );
    const store = new UpStore({
      path: join(dir, 'files-up'),
      keyring: await loadOrCreateKeyring(join(dir, 'key')),
    });
    await store.open();
    const credentials = new CredentialsProviderClient({
      endpoint: ends.provider,
      roleAlias: ends.alias,
      thingName,
      cert,
      key,
      ca,
    });
    const s3 = new S3UploadClient({
      region: ends.region,
      bucket: ends.bucket,
      endpoint: ends.s3,
      ca,
      credentials: () => credentials.credentials(),
    });
    const uploader = new FileUploader({ store, s3, prefix: thingName });
    const measure = async (what, bytes, fn) => {
      const cpu = process.cpuUsage();
      const started = process.hrtime.bigint();
      await fn();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const used = process.cpuUsage(cpu);
      const cpuMs = (used.user + used.system) / 1000;
      const mib = bytes / MiB;
      console.log(
        `${what.padEnd(44)} ${(mib / seconds).toFixed(1).padStart(7)} MiB/s  ${(cpuMs / mib).toFixed(1).padStart(6)} ms CPU/MiB  (${mib.toFixed(1)} MiB in ${seconds.toFixed(2)} s)`,
      );
    };
    console.log(
      `load average before: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    const big = randomBytes(bigBytes);
    await measure(`capture ${bigBytes / MiB} MiB file (hash + seal + fsync)`, bigBytes, async () => {
      async function* chunks() {
        for (let i = 0; i < big.length; i += 64 * 1024) yield big.subarray(i, i + 64 * 1024);
      }
      await store.capture(chunks(), { source: 'bench', deviceId: 'd', name: 'big.bin' });
    });
    await measure(`upload ${bigBytes / MiB} MiB (multipart, 8 MiB parts)`, bigBytes, async () => {
      const report = await uploader.upload();
      if (report.uploaded !== 1) throw new Error(`upload failed: ${JSON.stringify(report)}`);
    });
    const small = Array.from({ length: smallCount }, () => randomBytes(64 * 1024));
    await measure(`capture ${smallCount} × 64 KiB`, smallCount * 64 * 1024, async () => {
      for (const file of small) await store.capture(file, { source: 'bench', deviceId: 'd', name: 's' });
    });
    await measure(`upload ${smallCount} × 64 KiB (PutObject each)`, smallCount * 64 * 1024, async () => {
      const report = await uploader.upload();
      if (report.uploaded !== smallCount) throw new Error(`upload failed: ${JSON.stringify(report)}`);
    });
    console.log(
      `load average after: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    child.disconnect();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
