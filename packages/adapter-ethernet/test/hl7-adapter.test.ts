import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EthernetAdapter } from '@attache/adapter-ethernet';
import { type DeviceReading, GatewayError, type ReadingSink } from '@attache/core';
import { getFreePort, MllpSenderSimulator, oruR01Message, parseMllpAck } from '@attache/devkit';
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

async function startAdapter(t: Test, sink: ReadingSink, endpoint: Record<string, unknown> = {}, format = {}) {
  const port = await getFreePort();
  const entries: Entry[] = [];
  const device = ethernetDevice({
    endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.0/8'], ...endpoint },
    format: { kind: 'hl7-mllp', maxMessageBytes: 4096, ...format },
  });
  const adapter = new EthernetAdapter({ ...withDriver(device), sink, logger: recordingLogger(entries) });
  await adapter.start();
  t.teardown(() => adapter.stop());
  return { adapter, port, entries };
}

function sender(t: Test, port: number, options = {}): MllpSenderSimulator {
  const s = new MllpSenderSimulator({ port, ackTimeoutMs: 5000, ...options });
  t.teardown(() => s.close());
  return s;
}

const storing = () => {
  const readings: DeviceReading[] = [];
  const sink: ReadingSink = async (reading) => {
    readings.push(reading);
  };
  return { readings, sink };
};

t.test("Debian's mllp_send gets one AA per message, each echoing its control id", async (t) => {
  const { readings, sink } = storing();
  const { adapter, port } = await startAdapter(t, sink);
  const file = join(t.testdir(), 'messages.hl7');
  const ids = ['MSG-A1', 'MSG-A2', 'MSG-A3'];
  await writeFile(file, Buffer.concat(ids.map((id) => encodeMllp(vitalSigns(id)))));
  const child = spawn('/usr/bin/mllp_send', ['-p', String(port), '-f', file, '127.0.0.1']);
  let stdout = '';
  child.stdout.setEncoding('latin1').on('data', (d: string) => {
    stdout += d;
  });
  const code = await new Promise((resolve) => child.once('exit', resolve));
  t.equal(code, 0, 'mllp_send exits 0');
  const acks = stdout.split('\n').filter((line) => line.includes('MSA'));
  t.same(
    acks.map((a) => parseMllpAck(a)),
    ids.map((controlId) => ({ code: 'AA', controlId })),
  );
  t.match(
    acks[0],
    /MSH\|\^~\\&\|ATTACHE\|HOSP\|VSP\^080019FFFE134535\^EUI-64\|ICU\|\d{14}\|\|ACK\^R01\^ACK\|/,
  );
  t.equal(readings.length, 3);
  t.equal(readings[0]?.observations?.length, 7, 'seven values, headers skipped');
  t.match(adapter.status(), { state: 'connected', frames: 3, stored: 3, malformed: 0, refused: 0 });
});

t.test('split frames, slow senders and junk: every message stored and acknowledged once', async (t) => {
  const { readings, sink } = storing();
  const { adapter, port, entries } = await startAdapter(t, sink);
  const slow = sender(t, port, { chunkBytes: 7, chunkDelayMs: 1 });
  await slow.connect();
  await slow.sendRaw(Buffer.from([0x00, 0x01, 0xfe, 0x41]));
  for (const id of ['S1', 'S2', 'S3']) {
    const ack = await slow.send(vitalSigns(id));
    t.same([ack.code, ack.controlId, ack.attempts], ['AA', id, 1]);
  }
  t.equal(readings.length, 3);
  t.equal(adapter.status().junkBytes, 4, 'junk counted');
  t.ok(entries.some((e) => e.msg === 'junk bytes outside a frame discarded' && e.bytes === 4));
});

t.test(
  'AA only after the sink resolved; ACKs in message order though sinks resolve out of order',
  async (t) => {
    const pending: ((error?: Error) => void)[] = [];
    const sink: ReadingSink = () =>
      new Promise((resolve, reject) => pending.push((error) => (error ? reject(error) : resolve())));
    const { port } = await startAdapter(t, sink);
    const socket = await connectTo(port);
    t.teardown(() => socket.destroy());
    let received = '';
    socket.setEncoding('latin1').on('data', (d: string) => {
      received += d;
    });
    socket.write(Buffer.concat(['P1', 'P2', 'P3'].map((id) => encodeMllp(vitalSigns(id)))));
    await until(() => pending.length === 3, 'three sink calls');
    await new Promise((r) => setImmediate(r));
    t.equal(received, '', 'no ACK while nothing is stored');
    pending[2]?.();
    pending[1]?.(new GatewayError('ATTACHE_CACHE_FULL', 'full'));
    await new Promise((r) => setImmediate(r));
    t.equal(received, '', 'P2 and P3 wait for P1');
    pending[0]?.();
    await until(() => received.split('\x1c').length - 1 === 3, 'three ACKs');
    const acks = received.split('\x1c\r').filter(Boolean).map(parseMllpAck);
    t.same(acks, [
      { code: 'AA', controlId: 'P1' },
      { code: 'AR', controlId: 'P2' },
      { code: 'AA', controlId: 'P3' },
    ]);
    t.match(received, /ERR\|\|\|207\^Application internal error\^HL70357\|E\|\|\|\|the gateway cannot store/);
  },
);

t.test('garbage gets AE and the connection survives; a sink MALFORMED is AE; wrong version AR', async (t) => {
  const sink: ReadingSink = async (reading) => {
    if (reading.observations?.length === 0 && reading.event === undefined) {
      throw new GatewayError('ATTACHE_MALFORMED', 'no observations');
    }
  };
  const { adapter, port, entries } = await startAdapter(t, sink);
  const s = sender(t, port, { resend: false });
  await s.connect();
  await s.sendRaw(encodeMllp(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00])));
  const garbage = parseMllpAck(await s.nextAck());
  t.same(garbage, { code: 'AE', controlId: '' }, 'AE with an empty MSA-2');
  const notNumeric = await s.send('MSH|^~\\&|M|F|G|H|20260101||ORU^R01|N1|P|2.6\rOBX|1|NM|X^Y^L|1|abc');
  t.equal(notNumeric.code, 'AE');
  t.match(notNumeric.text, 'ERR||OBX^1^5|102^Data type error^HL70357|E||||OBX 1: OBX-5 not numeric');
  const empty = await s.send('MSH|^~\\&|M|F|G|H|20260101||ORU^R01|E1|P|2.6\rOBR|1');
  t.same([empty.code, empty.controlId], ['AE', 'E1'], 'the sink said malformed');
  const old = await s.send('MSH|^~\\&|M|F|G|H|20260101||ORU^R01|V1|P|2.1');
  t.match(old, { code: 'AR', controlId: 'V1', text: /203\^Unsupported version id/ });
  const good = await s.send(vitalSigns('G1'));
  t.same([good.code, good.controlId], ['AA', 'G1'], 'the same connection still works');
  t.match(adapter.status(), { frames: 5, stored: 1, malformed: 3, refused: 1, connections: 1 });
  t.notOk(JSON.stringify(entries).includes('SMITHERSON'), 'no patient data in the logs');
});

t.test('an oversize frame closes the connection; the device reconnects and goes on', async (t) => {
  const { readings, sink } = storing();
  const { adapter, port, entries } = await startAdapter(t, sink, {}, { maxMessageBytes: 2048 });
  const socket = await connectTo(port);
  socket.on('error', () => {});
  socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.alloc(5000, 0x41)]));
  await closed(socket);
  t.match(adapter.status(), { malformed: 1, frames: 1, lastError: { code: 'ATTACHE_MALFORMED' } });
  t.ok(entries.some((e) => e.reason === 'frame larger than maxMessageBytes; connection closed'));
  const s = sender(t, port);
  t.equal((await s.send(vitalSigns('after'))).code, 'AA');
  t.equal(readings.length, 1);
});

t.test('an incoming ACK is not acknowledged', async (t) => {
  const { readings, sink } = storing();
  const { port, entries } = await startAdapter(t, sink);
  const s = sender(t, port);
  await s.connect();
  await s.sendRaw(encodeMllp('MSH|^~\\&|M|F|G|H|20260101||ACK^R01|A1|P|2.6\rMSA|AA|X'));
  const ack = await s.send(vitalSigns('after-ack'));
  t.equal(ack.controlId, 'after-ack', 'the next ACK is for the next message');
  t.equal(readings.length, 1);
  t.ok(entries.some((e) => e.msg === 'message not acknowledged'));
});

t.test('20 connections at once, each waiting for its ACKs: all stored, none lost', async (t) => {
  const { readings, sink } = storing();
  const { adapter, port } = await startAdapter(t, sink);
  const senders = Array.from({ length: 20 }, () => sender(t, port));
  await Promise.all(
    senders.map(async (s, i) => {
      for (let n = 0; n < 10; n++) {
        const id = `C${i}-${n}`;
        const ack = await s.send(
          oruR01Message({
            controlId: id,
            observations: [{ type: 'NM', code: 'SEQ^seq^L', path: '1', value: String(n) }],
          }),
        );
        if (ack.code !== 'AA' || ack.controlId !== id) throw new Error(`bad ACK for ${id}`);
      }
    }),
  );
  t.equal(readings.length, 200);
  t.match(adapter.status(), { stored: 200, connections: 20, connectionsAccepted: 20 });
  for (const s of senders) await s.close();
  await until(() => adapter.status().connections === 0, 'connections closed');
});

t.test('stop() waits for the sink calls in flight and writes their ACKs first', async (t) => {
  let release: () => void = () => {};
  const sink: ReadingSink = () => new Promise((resolve) => (release = resolve));
  const { adapter, port } = await startAdapter(t, sink);
  const s = sender(t, port, { resend: false });
  const acked = s.send(vitalSigns('inflight'));
  await until(() => adapter.status().frames === 1, 'the message arrived');
  const stopping = adapter.stop();
  release();
  await stopping;
  t.same((await acked).code, 'AA', 'the ACK went out before the connection closed');
  t.equal(adapter.status().state, 'stopped');
});
