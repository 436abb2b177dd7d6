// The page pipe between the gateway and the window process: frames arrive whole and in order however
// the pipe cuts them, a page is matched to its IPC reply by its frame's number, the window reuses a
// page's buffer only once it was released, and a drain through the forked window process sends every
// record once, in order, with its pages on the pipe.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { type AttacheRecord, nullLogger, type RecordDraft, validateConfig } from '@attache/core';
import { createTestPki, startMosquitto, subscribeTopic, uplinkSettings } from '@attache/devkit';
import t from 'tap';
import { openCache } from '../dist/open-cache.js';
import { PageFrameReader, PageFrameWriter } from '../dist/page-pipe.js';
import { WindowRunner } from '../dist/window-runner.js';

const gatewayId = 'gw-pipe';

let released = 0;
function page(n: number, text: string) {
  return { firstSeq: n, lastSeq: n, count: 1, json: Buffer.from(text), release: () => released++ };
}

t.test('a frame goes to the pipe as one write, its length and its bytes together', async (t) => {
  const writes: number[][] = [];
  const pipe = new Writable({
    writev(chunks, done) {
      writes.push(chunks.map(({ chunk }) => (chunk as Buffer).length));
      done();
    },
    write(chunk: Buffer, _encoding, done) {
      writes.push([chunk.length]);
      done();
    },
  });
  const writer = new PageFrameWriter(pipe);
  const frame = (n: number, text: string) => ({ firstSeq: n, lastSeq: n, count: 1, json: Buffer.from(text) });
  writer.write(frame(1, '{"a":1}'));
  writer.write(frame(2, 'x'.repeat(70_000)));
  await new Promise((resolve) => setImmediate(resolve));
  t.same(
    writes,
    [
      [4, 7],
      [4, 70_000],
    ],
    'one system call per frame, the window woken once for it',
  );
});

t.test('frames cut anywhere by the pipe arrive whole, each matched to its reply by number', async (t) => {
  const pipe = new PassThrough();
  const written: Buffer[] = [];
  pipe.on('data', (chunk: Buffer) => written.push(chunk));
  const writer = new PageFrameWriter(pipe);
  const texts = ['{"a":1}', '{"b":"ü"}', 'x'.repeat(70_000), '{"c":3}'];
  const piped = texts.map((text, n) => writer.write(page(n + 1, text)));
  t.same(
    piped.map((p) => p.frame),
    [0, 1, 2, 3],
    'numbered in the order written',
  );
  const reader = new PageFrameReader();
  // A reply may come before its frame: the last one is asked for before any byte arrived.
  const last = reader.take(piped[3] as NonNullable<(typeof piped)[3]>);
  await new Promise((resolve) => setImmediate(resolve));
  const all = Buffer.concat(written);
  t.equal(released, 4, 'each page released once the pipe took its bytes (the cache reuses its buffer)');
  t.equal(
    all.length,
    texts.reduce((n, text) => n + 4 + Buffer.byteLength(text), 0),
    'a length before each page',
  );
  // Cut in pieces of 1, 2, 3, … bytes, then the rest: a length and a frame split anywhere.
  let at = 0;
  for (let size = 1; at < all.length && size < 400; size++) {
    reader.feed(all.subarray(at, at + size));
    at += size;
  }
  reader.feed(all.subarray(at));
  const pages = await Promise.all(piped.slice(0, 3).map((p) => reader.take(p)));
  t.same(
    pages.map((p) => Buffer.from(p.json).toString()),
    texts.slice(0, 3),
  );
  t.match(await last, { firstSeq: 4, lastSeq: 4, count: 1 });
  t.equal(Buffer.from((await last).json).toString(), '{"c":3}');
});

t.test('a buffer is reused only after its page was released', async (t) => {
  const reader = new PageFrameReader();
  const frame = (text: string) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(text.length);
    return Buffer.concat([head, Buffer.from(text)]);
  };
  const meta = (n: number) => ({ firstSeq: n + 1, lastSeq: n + 1, count: 1, frame: n });
  reader.feed(frame('a'.repeat(1000)));
  const first = await reader.take(meta(0));
  reader.feed(frame('b'.repeat(900)));
  const second = await reader.take(meta(1));
  t.not(second.json.buffer, first.json.buffer, 'a page still held keeps its buffer');
  t.equal(Buffer.from(first.json).toString(), 'a'.repeat(1000), 'and its bytes');
  first.release?.();
  first.release?.(); // twice: still one buffer in the pool
  reader.feed(frame('c'.repeat(800)));
  const third = await reader.take(meta(2));
  t.equal(third.json.buffer, first.json.buffer, 'the released buffer takes the next page');
  t.equal(Buffer.from(third.json).toString(), 'c'.repeat(800));
  reader.feed(frame('d'.repeat(10)));
  const fourth = await reader.take(meta(3));
  t.not(fourth.json.buffer, first.json.buffer, 'released once, reused once');
  t.equal(Buffer.from(second.json).toString(), 'b'.repeat(900), 'the pages still held are untouched');
});

t.test('a pipe that ends fails the pages still awaited, and those asked for later', async (t) => {
  const reader = new PageFrameReader();
  const waiting = reader.take({ firstSeq: 1, lastSeq: 1, count: 1, frame: 0 });
  reader.feed(Buffer.from([0, 0, 1])); // part of a length, then the end
  reader.end(new Error('EPIPE'));
  await t.rejects(waiting, { code: 'ATTACHE_INTERNAL', message: /page pipe.*EPIPE/ });
  await t.rejects(reader.take({ firstSeq: 2, lastSeq: 2, count: 1, frame: 1 }), { code: 'ATTACHE_INTERNAL' });
  reader.end(); // again: no effect
});

function draft(n: number): RecordDraft {
  return {
    gatewayId,
    deviceId: `spo2-bed${n % 4}`,
    adapter: 'rs232',
    protocol: 'kv-line',
    capturedAt: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
    clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: n },
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 90 + (n % 10), unit: '%', status: 'valid' },
    ],
  };
}

t.test(
  'a drain through the forked window process: pages on the pipe, every record once, in order',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'attache-pipe-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const pki = await createTestPki(join(dir, 'pki'), { thingName: gatewayId });
    const broker = await startMosquitto({ dir: join(dir, 'broker'), pki });
    t.teardown(() => broker.stop());
    const received = await subscribeTopic({ broker, pki, topic: `dt/attache/${gatewayId}/telemetry` });
    t.teardown(() => received.stop());
    const config = validateConfig({
      version: 1,
      gateway: { id: gatewayId, dataDir: join(dir, 'data') },
      devices: [
        { id: 'spo2-bed1', adapter: 'rs232', port: { path: '/dev/ttyS0' }, format: { kind: 'astm' } },
      ],
      // Small messages: many pages, so the window's buffers are taken, released and reused many times.
      uplink: { ...uplinkSettings(broker, pki), maxMessageBytes: 4096, trustedTime: { enabled: false } },
      log: { level: 'warn' },
    });
    const cache = await openCache(config, nullLogger);
    t.teardown(() => cache.close());
    await Promise.all(Array.from({ length: 600 }, (_, n) => cache.append(draft(n + 1))));
    const stored = await cache.read({ afterSeq: 0, limit: 600, maxBytes: 1e9 });
    const window = await new WindowRunner({ config, cache, logger: nullLogger }).run();
    t.match(window, { outcome: 'drained', records: 600, firstSeq: 1, lastSeq: 600 });
    t.ok(window.messages > 20, `${window.messages} messages`);
    const messages = await received.waitFor(window.messages, 30_000);
    const records = messages.flatMap(
      (m) => (JSON.parse(m.toString()) as { records: AttacheRecord[] }).records,
    );
    t.same(
      records.map((r) => JSON.stringify(r)),
      stored.map((r) => r.json),
      'every record as stored, once, in order',
    );
    t.equal((await cache.stats()).records, 0, 'the cache is empty');
  },
);
