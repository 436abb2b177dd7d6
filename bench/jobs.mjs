// Jobs artifact download benchmark: a signed artifact (BENCH_MB, default 64 MiB) fetched over HTTPS
// from a local server by the gateway's own ArtifactSource + HttpsFetcher into a FileStore (durable
// 256 KiB flushes), then its size, SHA-256 and ECDSA P-256 signature verified, as a job does before
// anything is applied. Prints MiB/s for the download alone and for download + verification, and the
// peak RSS. Usage: node bench/jobs.mjs
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '@attache/cache';
import { createTestPki } from '@attache/devkit';
import { ArtifactSource, HttpsFetcher } from '@attache/jobs';

const size = Number(process.env.BENCH_MB ?? 64) * 1024 * 1024;
const dir = await mkdtemp(join(tmpdir(), 'attache-bench-jobs-'));
try {
  const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-bench-1' });
  const content = randomBytes(size);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const server = createServer(
    { cert: await readFile(pki.serverCertFile), key: await readFile(pki.serverKeyFile) },
    (req, res) => {
      const from = Number(/^bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      res.writeHead(from > 0 ? 206 : 200, { 'content-length': String(size - from) });
      res.end(content.subarray(from));
    },
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://localhost:${server.address().port}/bundle.tar.gz`;
  const artifact = {
    url,
    size,
    sha256: createHash('sha256').update(content).digest('hex'),
    signature: sign('sha256', content, privateKey).toString('base64'),
  };
  const store = new FileStore({ path: join(dir, 'staging') });
  await store.open();
  const source = new ArtifactSource({
    store,
    fetcher: new HttpsFetcher({ ca: await readFile(pki.caFile) }),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  });
  let downloadedAt = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const verified = await source.obtain(artifact, 'bundle.tar.gz', undefined, (received) => {
    if (received === size) downloadedAt = performance.now();
  });
  const done = performance.now();
  const used = process.cpuUsage(cpu);
  server.close();
  if (!verified.equals(content)) throw new Error('the verified bytes differ from what was served');
  const mib = size / 1024 / 1024;
  const rate = (ms) => (mib / (ms / 1000)).toFixed(1);
  console.log(`jobs artifact download, ${mib} MiB over HTTPS (localhost), node ${process.version}`);
  console.log(
    `  download into the file store (durable 256 KiB flushes): ${rate(downloadedAt - started)} MiB/s`,
  );
  console.log(`  download + size, SHA-256 and signature checks: ${rate(done - started)} MiB/s`);
  console.log(
    `  CPU ${((used.user + used.system) / 1e6).toFixed(2)} s; peak RSS (with the bench's own copy and server) ${(process.resourceUsage().maxRSS / 1024).toFixed(1)} MB; load average ${loadavg()[0].toFixed(2)}`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
