import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadOrCreateKeyring } from '@attache/cache';
import {
  type ByteLink,
  ManualClock,
  type ProtocolDriver,
  type ProtocolSession,
  type SessionContext,
  type SessionReport,
} from '@attache/core';
import { type LogEntry, openPtyPair, recordingLogger } from '@attache/devkit';
import { CaptureDriver, type CaptureDriverOptions, UpStore } from '@attache/files-up';
import { SerialPort } from 'serialport';
import t, { type Test } from 'tap';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The device's own protocol as the capture sees it: a driver that keeps every byte it was given. */
class KeepingDriver implements ProtocolDriver {
  readonly protocol = 'kv-line';
  readonly received: Buffer[] = [];
  closed = false;
  open(): ProtocolSession {
    return {
      receive: (chunk) => {
        this.received.push(Buffer.from(chunk));
      },
      end: () => undefined,
      drained: async () => undefined,
    };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A real serial port on a socat pty, the device's end written by the test; the session gets its bytes. */
async function rig(t: Test, options: Omit<CaptureDriverOptions, 'store'>) {
  const dir = t.testdir();
  const store = new UpStore({
    path: join(dir, 'files-up'),
    keyring: await loadOrCreateKeyring(join(dir, 'key')),
  });
  await store.open();
  const pty = await openPtyPair(join(dir, 'pty'));
  const port = new SerialPort({ path: pty.gatewayPath, baudRate: 115200, autoOpen: false });
  const device = new SerialPort({ path: pty.devicePath, baudRate: 115200, autoOpen: false });
  await Promise.all(
    [port, device].map((p) => new Promise<void>((ok, fail) => p.open((e) => (e ? fail(e) : ok())))),
  );
  t.teardown(async () => {
    for (const p of [port, device]) if (p.isOpen) await new Promise((ok) => p.close(ok));
    await pty.close();
  });
  const link: ByteLink = {
    name: pty.gatewayPath,
    get open() {
      return port.isOpen;
    },
    write: (bytes) => port.write(bytes),
    pause: () => port.pause(),
    resume: () => port.resume(),
    close: () => port.close(),
  };
  const entries: LogEntry[] = [];
  const clock = new ManualClock();
  const report: SessionReport = {
    counts: { frames: 0, stored: 0, malformed: 0, refused: 0 },
    log: recordingLogger(entries, { deviceId: 'vent-1' }),
    frame: () => undefined,
    stored: () => undefined,
    malformed: () => undefined,
    refused: () => undefined,
  };
  const context: SessionContext = {
    deviceId: 'vent-1',
    sink: async () => undefined,
    refusing: () => false,
    report,
    clock,
  };
  const driver = new CaptureDriver({ store, ...options });
  const session = driver.open(link, context);
  let received = 0;
  port.on('data', (chunk: Buffer) => {
    received += chunk.length;
    session.receive(chunk);
  });
  /** The device prints `bytes`; resolves once the gateway's port read them all. */
  const print = async (bytes: Buffer) => {
    const target = received + bytes.length;
    device.write(bytes);
    await new Promise<void>((ok) => {
      const check = () => (received >= target ? ok() : setImmediate(check));
      check();
    });
  };
  return { store, driver, session, print, clock, entries };
}

const readingLines = Buffer.from('HR=72\r\nSPO2=98\r\n');
const log = Buffer.from(
  `${[
    '=== ERROR LOG BEGIN ===',
    ...Array.from({ length: 300 }, (_, i) => `0${i} E42 occlusion pump 2`),
    '=== ERROR LOG END ===',
  ].join('\r\n')}\r\n`,
);

t.test('a log printed on the port between start and end lines becomes one byte-identical file', async (t) => {
  const inner = new KeepingDriver();
  const { store, driver, session, print } = await rig(t, {
    inner,
    start: /^=== ERROR LOG BEGIN ===$/,
    end: /^=== ERROR LOG END ===$/,
  });
  t.equal(driver.protocol, 'kv-line', 'the wrapper speaks as the device driver');
  await print(readingLines);
  await print(log);
  await print(readingLines);
  await session.drained();
  const [file] = await store.list();
  t.match(file, { sha256: sha(log), size: log.length, deviceId: 'vent-1', source: /^serial:/ });
  if (file) t.ok((await store.read(file)).equals(log), 'byte-identical');
  t.ok(
    Buffer.concat(inner.received).equals(Buffer.concat([readingLines, log, readingLines])),
    'the inner driver got every byte',
  );
  await driver.close();
  t.ok(inner.closed);
});

t.test('an idle gap ends a log without an end line; the same log printed again is stored once', async (t) => {
  const { store, session, print, clock } = await rig(t, { start: /^=== ERROR LOG BEGIN/, idleMs: 2000 });
  await print(readingLines);
  await print(log);
  clock.advance(1999);
  t.same(await store.list(), [], 'not yet: the device may still be printing');
  clock.advance(1);
  await session.drained();
  t.equal((await store.list()).length, 1);
  await print(log);
  clock.advance(2000);
  await session.drained();
  t.equal((await store.list()).length, 1, 'stored once');
  t.equal(store.counts.duplicates, 1);
});

t.test('maxBytes ends a log; a link closed mid-log keeps what came', async (t) => {
  const { store, session, print, entries } = await rig(t, { start: /BEGIN/, idleMs: 0, maxBytes: 1000 });
  await print(log);
  await session.drained();
  const [file] = await store.list();
  t.equal(file?.size, 1000);
  if (file) t.ok((await store.read(file)).equals(log.subarray(0, 1000)), 'the first maxBytes bytes');
  await print(Buffer.from('BEGIN again\npartial line'));
  session.end();
  await session.drained();
  const files = await store.list();
  t.equal(files.length, 2);
  t.ok(entries.some((e) => e.msg === 'file captured' && e.reason === 'link-closed'));
  t.notOk(JSON.stringify(entries).includes('occlusion'), 'no content in the log');
});

t.test('a very long line and bytes that are not text neither crash nor slow the capture', async (t) => {
  const { store, session, print, clock } = await rig(t, { start: /^START/, end: /^END/ });
  const junk = Buffer.alloc(200_000, 0xff);
  await print(Buffer.concat([junk, Buffer.from('\nSTART\n'), junk, Buffer.from('\nEND\n')]));
  clock.advance(10_000);
  await session.drained();
  const [file] = await store.list();
  t.equal(file?.size, 'START\n'.length + junk.length + '\nEND\n'.length);
  t.throws(() => new CaptureDriver({ store, start: 'x' as never }), TypeError);
  t.throws(() => new CaptureDriver({ store, start: /x/, maxBytes: 0 }), TypeError);
});
