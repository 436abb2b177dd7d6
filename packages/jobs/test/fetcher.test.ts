import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { FileStore } from '@attache/cache';
import { createTestPki } from '@attache/devkit';
import { HttpsFetcher } from '@attache/jobs';
import t, { type Test } from 'tap';

type Responder = (range: string | undefined, res: import('node:http').ServerResponse) => void;

async function setup(t: Test) {
  const dir = t.testdir();
  const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-1' });
  let respond: Responder = (_r, res) => res.writeHead(404).end();
  const server: Server = createServer(
    { cert: await readFile(pki.serverCertFile), key: await readFile(pki.serverKeyFile) },
    (req, res) => respond(req.headers.range, res),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const store = new FileStore({ path: join(dir, 'store') });
  await store.open();
  const url = `https://localhost:${(server.address() as AddressInfo).port}/a`;
  const fetcher = new HttpsFetcher({ ca: await readFile(pki.caFile), flushBytes: 1024 });
  return { store, url, fetcher, on: (r: Responder) => (respond = r) };
}

const content = randomBytes(10_000);
const expected = { sha256: createHash('sha256').update(content).digest('hex'), size: content.length };

t.test('a server that ignores Range restarts the file from its first byte', async (t) => {
  const { store, url, fetcher, on } = await setup(t);
  const partial = await store.openPartial(expected);
  await partial.write(content.subarray(0, 3000));
  const ranges: (string | undefined)[] = [];
  on((range, res) => {
    ranges.push(range);
    res.writeHead(200, { 'content-length': String(content.length) }).end(content);
  });
  await fetcher.fetchInto(url, partial);
  t.same(ranges, ['bytes=3000-'], 'it asked for the rest');
  t.equal((await partial.complete()).size, content.length, 'and the whole file is right');
});

t.test('HTTP errors and cut connections keep the bytes held', async (t) => {
  const { store, url, fetcher, on } = await setup(t);
  const partial = await store.openPartial(expected);
  on((_range, res) => res.writeHead(503).end());
  await t.rejects(fetcher.fetchInto(url, partial), { code: 'ATTACHE_UPLINK_PUBLISH', message: /HTTP 503/ });
  on((_range, res) => {
    res.writeHead(200, { 'content-length': String(content.length) });
    res.write(content.subarray(0, 4000), () => setTimeout(() => res.socket?.destroy(), 30));
  });
  await t.rejects(fetcher.fetchInto(url, partial), {
    code: 'ATTACHE_UPLINK_PUBLISH',
    message: /interrupted/,
  });
  t.equal(partial.received, 4000, 'what arrived is held');
});

t.test('a file longer than announced, or shorter than held, is REJECTED and discarded', async (t) => {
  const { store, url, fetcher, on } = await setup(t);
  const partial = await store.openPartial(expected);
  on((_range, res) =>
    res.writeHead(200, { 'content-length': '12000' }).end(Buffer.concat([content, randomBytes(2000)])),
  );
  await t.rejects(fetcher.fetchInto(url, partial), {
    status: 'REJECTED',
    message: /longer than the announced/,
  });
  t.equal(partial.received, 0);
  await partial.write(content.subarray(0, 5000));
  on((_range, res) => res.writeHead(416).end());
  await t.rejects(fetcher.fetchInto(url, partial), {
    status: 'REJECTED',
    message: /shorter than the 5000 bytes held/,
  });
  t.equal(partial.received, 0);
});

t.test('the end of the window stops a download', async (t) => {
  const { store, url, fetcher, on } = await setup(t);
  const partial = await store.openPartial(expected);
  const window = new AbortController();
  on((_range, res) => {
    res.writeHead(200, { 'content-length': String(content.length) });
    res.write(content.subarray(0, 2048), () => window.abort());
  });
  await t.rejects(fetcher.fetchInto(url, partial, window.signal), { code: 'ATTACHE_CANCELED' });
  const before = new AbortController();
  before.abort();
  await t.rejects(fetcher.fetchInto(url, partial, before.signal), { code: 'ATTACHE_CANCELED' });
});

t.test(
  'a download server offering only TLS 1.1 is refused, even with a lowered process default',
  async (t) => {
    const dir = t.testdir();
    const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-1' });
    const server: Server = createServer(
      {
        cert: await readFile(pki.serverCertFile),
        key: await readFile(pki.serverKeyFile),
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      },
      (_req, res) => res.writeHead(200, { 'content-length': String(content.length) }).end(content),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.teardown(() => server.close());
    // As under NODE_OPTIONS="--tls-min-v1.0 --tls-cipher-list=DEFAULT@SECLEVEL=0": not inherited.
    const previous = { min: tls.DEFAULT_MIN_VERSION, ciphers: tls.DEFAULT_CIPHERS };
    tls.DEFAULT_MIN_VERSION = 'TLSv1';
    tls.DEFAULT_CIPHERS = 'DEFAULT@SECLEVEL=0';
    t.teardown(() => {
      tls.DEFAULT_MIN_VERSION = previous.min;
      tls.DEFAULT_CIPHERS = previous.ciphers;
    });
    const store = new FileStore({ path: join(dir, 'store') });
    await store.open();
    const partial = await store.openPartial(expected);
    const fetcher = new HttpsFetcher({ ca: await readFile(pki.caFile), flushBytes: 1024 });
    const url = `https://localhost:${(server.address() as AddressInfo).port}/a`;
    await t.rejects(fetcher.fetchInto(url, partial), { code: 'ATTACHE_UPLINK_PUBLISH' });
    t.equal(partial.received, 0, 'nothing taken from it');
  },
);
