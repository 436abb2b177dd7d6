import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EthernetAdapter } from '@attache/adapter-ethernet';
import { type Clock, type DeviceReading, ManualClock, type ReadingSink } from '@attache/core';
import { getFreePort, MllpSenderSimulator, parseMllpAck } from '@attache/devkit';
import { encodeMllp } from '@attache/hl7';
import t, { type Test } from 'tap';
import {
  closed,
  connectTo,
  type Entry,
  ethernetDevice,
  recordingLogger,
  until,
  vitalSigns,
  withDriver,
} from './helpers.js';

const MiB = 1024 * 1024;

// tap runs this file without --expose-gc; jest-leak-detector gets a gc() at run time the same way.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * What the process holds on to (V8 heap plus Buffers) after a full GC: garbage not counted. Twice:
 * V8 frees dead Buffers on a background thread, finished by the next GC.
 */
function liveBytes(): number {
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

function storing(delayMs = 0) {
  const readings: DeviceReading[] = [];
  const sink: ReadingSink = async (reading) => {
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    readings.push(reading);
  };
  return { readings, sink };
}

async function startAdapter(
  t: Test,
  sink: ReadingSink,
  endpoint: Record<string, unknown> = {},
  format: Record<string, unknown> = {},
  clock?: Clock,
) {
  const port = await getFreePort();
  const entries: Entry[] = [];
  const device = ethernetDevice({
    endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.0/8'], ...endpoint },
    format: { kind: 'hl7-mllp', ...format },
  });
  const adapter = new EthernetAdapter({
    ...withDriver(device),
    sink,
    logger: recordingLogger(entries),
    ...(clock === undefined ? {} : { clock }),
  });
  await adapter.start();
  t.teardown(() => adapter.stop());
  return { adapter, port, entries };
}

/** A peer's raw socket, its errors ignored, everything it receives collected as latin1 text. */
async function rawPeer(t: Test, port: number) {
  const socket = await connectTo(port);
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  let received = '';
  socket.setEncoding('latin1').on('data', (d: string) => {
    received += d;
  });
  return { socket, received: () => received };
}

async function validMessageGetsAa(t: Test, port: number, controlId: string) {
  const sender = new MllpSenderSimulator({ port, ackTimeoutMs: 5000, resend: false });
  t.teardown(() => sender.close());
  const ack = await sender.send(vitalSigns(controlId));
  t.same([ack.code, ack.controlId], ['AA', controlId], `a new connection gets AA for ${controlId}`);
}

/**
 * Writes `chunk` `count` times as fast as the socket accepts it (waiting for 'drain', so the flood
 * sits in the kernel, not in our process). Resolves with the bytes written once all were flushed or
 * the socket closed.
 */
async function pour(socket: Socket, chunk: Buffer, count: number, each = () => {}): Promise<number> {
  let written = 0;
  for (let i = 0; i < count; i++) {
    if (socket.destroyed || socket.writableEnded) return written;
    written += chunk.length;
    each();
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.once('drain', done).once('close', done);
      });
    }
  }
  return written;
}

t.test('a peer that half-closes right after its message still gets the AA, stored once', async (t) => {
  const { readings, sink } = storing(200);
  const { adapter, port } = await startAdapter(t, sink);
  const { socket, received } = await rawPeer(t, port);
  const sentAt = Date.now();
  socket.end(encodeMllp(vitalSigns('HALF-1')));
  await closed(socket);
  t.ok(Date.now() - sentAt >= 190, 'the sink was still storing when our FIN arrived');
  t.equal(received().split('\x1c\r').length - 1, 1, 'exactly one ACK');
  t.same(parseMllpAck(received()), { code: 'AA', controlId: 'HALF-1' }, 'AA with MSA-2 = its MSH-10');
  t.equal(readings.length, 1, 'stored once');
  t.match(adapter.status(), { frames: 1, stored: 1, malformed: 0, junkBytes: 0 });
  await until(() => adapter.status().connections === 0, 'the gateway closed its side after the ACK');
});

t.test('a peer that vanishes mid-frame: nothing stored, the partial frame counted and logged', async (t) => {
  const { readings, sink } = storing();
  const { adapter, port, entries } = await startAdapter(t, sink);
  const frame = encodeMllp(vitalSigns('LOST-1'));
  const half = frame.subarray(0, Math.floor(frame.length / 2));

  const fin = await rawPeer(t, port);
  fin.socket.write(half, () => fin.socket.destroy());
  await until(
    () => adapter.status().connectionsAccepted === 1 && adapter.status().connections === 0,
    'the first peer gone',
  );
  t.match(adapter.status(), { state: 'connected', frames: 0, stored: 0, junkBytes: half.length - 1 });
  t.ok(
    entries.some((e) => e.msg === 'junk bytes outside a frame discarded' && e.bytes === half.length - 1),
    'the partial frame (without its VT) is logged as discarded',
  );
  t.ok(entries.some((e) => e.msg === 'connection closed'));

  const rst = await rawPeer(t, port);
  rst.socket.write(half, () => rst.socket.resetAndDestroy());
  await until(
    () => adapter.status().connectionsAccepted === 2 && adapter.status().connections === 0,
    'the reset peer gone',
  );
  t.equal(
    entries.filter((e) => e.msg === 'connection closed').length,
    2,
    'the reset one is logged closed too',
  );
  t.match(adapter.status(), { state: 'connected', frames: 0, stored: 0, malformed: 0 });

  await validMessageGetsAa(t, port, 'AFTER-LOST');
  t.same(
    readings.map((r) => r.raw.toString('latin1').split('|')[9]),
    ['AFTER-LOST'],
    'only the complete message was stored',
  );
});

t.test('a 100 MiB flood of junk and oversize frames: memory stays bounded, AA afterwards', async (t) => {
  const { readings, sink } = storing();
  const maxMessageBytes = MiB;
  // The clock stands still during the flood, however long it takes on a loaded machine: the junk
  // is logged once (the rate limit itself is tested on its own below).
  const { adapter, port, entries } = await startAdapter(t, sink, {}, { maxMessageBytes }, new ManualClock());
  // Junk: anything but VT (which would open a frame) and CR/LF (ignored between frames, not counted).
  const junk = Buffer.from(
    randomBytes(MiB / 2).map((b) => (b === 0x0b || b === 0x0d || b === 0x0a ? 0x00 : b)),
  );
  const body = Buffer.alloc(MiB / 2, 0x41);
  const connections = 4;
  const chunksEach = 25; // per connection: 12.5 MiB junk, then a frame offering 12.5 MiB
  const before = liveBytes();
  let peak = before;
  // Sampled every 8 MiB written (a sample costs two full GCs): as many samples however slow the machine.
  let chunks = 0;
  const sample = () => {
    if (++chunks % 16 === 0) peak = Math.max(peak, liveBytes());
  };
  const started = Date.now();
  const written = await Promise.all(
    Array.from({ length: connections }, async () => {
      const { socket } = await rawPeer(t, port);
      const junkBytes = await pour(socket, junk, chunksEach, sample);
      await pour(socket, Buffer.from([0x0b]), 1);
      await pour(socket, body, chunksEach, sample);
      await Promise.race([closed(socket), new Promise((r) => socket.write(Buffer.alloc(0), r))]);
      return junkBytes;
    }),
  );
  peak = Math.max(peak, liveBytes());
  const growth = peak - before;
  t.comment(
    `flood: ${Date.now() - started} ms, live memory grew by ${(growth / MiB).toFixed(1)} MiB at most`,
  );
  t.same(written, Array(connections).fill(chunksEach * junk.length), 'all junk was written');
  t.ok(growth < 16 * MiB, 'live memory grew by less than 16 MiB');
  await until(() => adapter.status().connections === 0, 'every flooding connection closed by the gateway');
  t.match(adapter.status(), {
    junkBytes: connections * chunksEach * junk.length,
    malformed: connections,
    frames: connections,
    stored: 0,
  });
  t.equal(
    entries.filter((e) => e.reason === 'frame larger than maxMessageBytes; connection closed').length,
    connections,
  );
  t.equal(readings.length, 0, 'nothing stored from the flood');
  const junkLines = entries.filter((e) => e.msg === 'junk bytes outside a frame discarded').length;
  t.equal(junkLines, 1, 'the junk is logged once, not for every read');
  await validMessageGetsAa(t, port, 'AFTER-FLOOD');
  t.equal(readings.length, 1);
});

t.test('junk is logged at most every 10 s, each line with the bytes since the last one', async (t) => {
  const { sink } = storing();
  const clock = new ManualClock();
  const { adapter, port, entries } = await startAdapter(t, sink, {}, {}, clock);
  const { socket } = await rawPeer(t, port);
  const junkLines = () => entries.filter((e) => e.msg === 'junk bytes outside a frame discarded');
  const send = async (bytes: number, total: number) => {
    socket.write(Buffer.alloc(bytes, 0x41));
    await until(() => adapter.status().junkBytes === total, `${total} junk bytes counted`);
  };
  await send(100, 100);
  t.match(junkLines(), [{ bytes: 100, junkBytes: 100 }], 'the first junk is logged at once');
  await clock.advance(9_999);
  await send(50, 150);
  t.equal(junkLines().length, 1, '10 s have not passed: counted, not logged');
  await clock.advance(1);
  await send(25, 175);
  t.match(junkLines(), [{ bytes: 100 }, { bytes: 75, junkBytes: 175 }], 'then one line for all since');
});

t.test('a peer not on the allow-list that floods is closed at once; none of its data is read', async (t) => {
  const { readings, sink } = storing();
  const { adapter, port, entries } = await startAdapter(t, sink, { allow: ['10.9.9.0/24'] });
  const { socket, received } = await rawPeer(t, port);
  const messages = Buffer.concat(Array.from({ length: 64 }, (_, i) => encodeMllp(vitalSigns(`X${i}`))));
  const offered = 400 * messages.length;
  const written = await pour(socket, messages, 400);
  const timeout = new Promise<string>((r) => setTimeout(r, 2000, 'still open').unref());
  t.equal(await Promise.race([closed(socket).then(() => 'closed'), timeout]), 'closed', 'closed at once');
  t.ok(written < offered / 4, `the gateway stopped the flood early (${written} of ${offered} bytes taken)`);
  t.equal(received(), '', 'no ACK');
  t.match(adapter.status(), {
    connectionsRefused: 1,
    connectionsAccepted: 0,
    connections: 0,
    frames: 0,
    junkBytes: 0,
  });
  t.equal(readings.length, 0);
  t.ok(entries.some((e) => e.msg === 'connection refused' && e.reason === 'peer not on the allow-list'));
});
