// End-to-end: any format on any transport. HL7 v2 over MLLP on a serial port (monitors and pumps that
// speak it over RS-232) and `kv-line` with a custom delimiter over TCP, each through a real
// `attache run`: a socat pty and a real TCP socket, records checked at the broker.
import { connect } from 'node:net';
import { join } from 'node:path';
import { checkBatch } from '@attache/core';
import { getFreePort, openPtyPair, oruR01Message, parseMllpAck, pcd01VitalSigns } from '@attache/devkit';
import { encodeMllp } from '@attache/hl7';
import t from 'tap';
import { RawInstrument } from './helpers/astm-rig.js';
import { recordsOf, Stack } from './helpers/stack.js';

const FS = 0x1c;

/** Syncs and returns the records that reached the broker. */
async function uploaded(stack: Stack): Promise<Record<string, unknown>[]> {
  const dashboard = await stack.subscribe();
  const sync = await stack.run('sync', '--json');
  if (sync.code !== 0) throw new Error(`attache sync failed: ${sync.stderr}`);
  const messages = await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000);
  for (const m of messages) {
    if (checkBatch(JSON.parse(m.toString('utf8'))).length > 0) throw new Error('a batch fails its schema');
  }
  return recordsOf(messages);
}

t.test(
  'HL7 over RS-232: each ORU^R01 stored, then AA on the serial line; no patient data leaves',
  async (t) => {
    const stack = await Stack.start(t);
    const pty = await openPtyPair(join(stack.dir, 'hl7'));
    t.teardown(() => pty.close());
    const config = stack.config() as Record<string, unknown>;
    config.devices = [
      {
        id: 'pump-bed3',
        adapter: 'rs232',
        port: { path: pty.gatewayPath, baudRate: 19200, reconnectMs: 200 },
        format: { kind: 'hl7-mllp' },
      },
    ];
    await stack.writeConfig(config);
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    const device = await RawInstrument.open(t, pty.devicePath);
    const acks: { code: string; controlId: string }[] = [];
    for (const seq of [1, 2]) {
      const seen = device.received.length;
      const message = oruR01Message({
        controlId: `RS-${seq}`,
        patient: { mrn: 'MRN-5531', name: 'PLUM^ADA', birthDate: '19520101' },
        observations: pcd01VitalSigns({
          systolic: 120 + seq,
          diastolic: 80,
          mean: 93,
          spo2: 97,
          pulse: 70 + seq,
        }),
      });
      // Junk before the frame (line noise on a serial cable) is counted, not acknowledged.
      await device.write(Buffer.concat([Buffer.from('~~'), encodeMllp(message)]));
      const deadline = Date.now() + 30_000;
      while (!device.received.slice(seen).includes(FS)) {
        if (Date.now() > deadline) throw new Error('no ACK on the serial line');
        await new Promise((r) => setTimeout(r, 20));
      }
      acks.push(parseMllpAck(Buffer.from(device.received.slice(seen)).toString('latin1')));
    }
    t.same(acks, [
      { code: 'AA', controlId: 'RS-1' },
      { code: 'AA', controlId: 'RS-2' },
    ]);
    const status = await stack.statusUntil((s) => s.backlog.records === 2);
    t.match(status.adapters[0], {
      deviceId: 'pump-bed3',
      state: 'connected',
      frames: 2,
      stored: 2,
      malformed: 0,
    });
    const records = (await uploaded(stack)) as {
      adapter: string;
      protocol: string;
      observations: { code: string; value: unknown }[];
    }[];
    t.same(
      records.map((r) => [r.adapter, r.protocol]),
      [
        ['rs232', 'hl7-mllp'],
        ['rs232', 'hl7-mllp'],
      ],
    );
    t.same(
      records.map((r) => r.observations.find((o) => o.code === 'MDC_PULS_OXIM_PULS_RATE')?.value),
      [71, 72],
    );
    const wire = JSON.stringify(records);
    for (const secret of ['MRN-5531', 'PLUM', '19520101']) t.notMatch(wire, secret, `${secret} never leaves`);
  },
);

t.test('kv-line over TCP with a custom delimiter and line bound, through the real gateway', async (t) => {
  const stack = await Stack.start(t);
  const port = await getFreePort();
  const config = stack.config() as Record<string, unknown> & { devices: Record<string, unknown>[] };
  const format = config.devices[0]?.format;
  config.devices = [
    {
      id: 'spo2-net',
      adapter: 'ethernet',
      endpoint: {
        mode: 'listen',
        host: '127.0.0.1',
        port,
        allow: ['127.0.0.1'],
        delimiter: '|',
        maxLineBytes: 64,
      },
      format,
    },
  ];
  await stack.writeConfig(config);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const socket = connect({ host: '127.0.0.1', port });
  t.teardown(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  // Two readings, split mid-line across writes, then a run longer than maxLineBytes.
  socket.write('SPO2=097 HR=07');
  socket.write(`2|SPO2=098 HR=073|${'X'.repeat(100)}|`);
  const status = await stack.statusUntil((s) => (s.adapters[0]?.frames ?? 0) >= 3);
  t.match(status.adapters[0], { deviceId: 'spo2-net', frames: 3, stored: 2, malformed: 1 });
  const records = (await uploaded(stack)) as {
    adapter: string;
    protocol: string;
    observations: { code: string; value: unknown }[];
  }[];
  t.same(
    records.map((r) => [r.adapter, r.protocol, r.observations.map((o) => o.value)]),
    [
      ['ethernet', 'kv-line', [97, 72]],
      ['ethernet', 'kv-line', [98, 73]],
    ],
  );
  const warning = await gateway.waitForLog(
    (l) => l.deviceId === 'spo2-net' && l.reason === 'line longer than maxLineBytes',
  );
  t.equal(warning.bytes, 100, 'the over-long run is logged by its length, never its content');
});
