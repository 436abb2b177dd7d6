import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MedibusDeviceSimulator, openPtyPair } from '@attache/devkit';
import t, { type Test } from 'tap';
import { attache, recordsOf, Stack } from './helpers/stack.js';

interface Vent {
  id: string;
  sim: MedibusDeviceSimulator;
  device: Record<string, unknown>;
}

/** A simulated ventilator on its own socat pty, and its config entry (short poll period: a fast test). */
async function ventilator(t: Test, stack: Stack, id: string, poll: Record<string, unknown>): Promise<Vent> {
  const pty = await openPtyPair(join(stack.dir, `pty-${id}`));
  const sim = new MedibusDeviceSimulator({ path: pty.devicePath, identity: `0161'Evita-${id}'04.20` });
  await sim.open();
  t.teardown(async () => {
    await sim.close();
    await pty.close();
  });
  const device = {
    id,
    adapter: 'rs232',
    port: { path: pty.gatewayPath, baudRate: 19200, parity: 'even', reconnectMs: 200 },
    format: {
      kind: 'medibus',
      poll: { periodMs: 100, replyTimeoutMs: 1000, retries: 1, linkTimeoutMs: 600, ...poll },
    },
  };
  return { id, sim, device };
}

type Obs = { code: string; value: unknown; unit: string | null; mdc?: number };

const expectedUnits: Record<string, [string, number, number]> = {
  MDC_PRESS_AWAY_INSP_PEAK: ['mbar', 151817, 0x7d],
  MDC_PRESS_AWAY_END_EXP_POS: ['mbar', 151976, 0x78],
  MDC_VOL_AWAY_TIDAL: ['mL', 151868, 0x88],
  MDC_VOL_MINUTE_AWAY: ['L/min', 151880, 0xb8],
  MDC_RESP_RATE: ['/min', 151562, 0xd6],
  MDC_CONC_AWAY_O2_INSP: ['%', 152196, 0xf0],
};

t.test(
  'two ventilators on two ports: N poll cycles give N sets on the broker, corrupt replies are counted and never stored',
  async (t) => {
    const stack = await Stack.start(t);
    const n = 6;
    const a = await ventilator(t, stack, 'vent-a', { ask: ['measurements', 'alarms'] });
    (a.device.format as Record<string, unknown>).freeText = true;
    // An alarm phrase naming someone: kept (free text is on) but de-identified before it is stored.
    a.sim.alarms = [{ priority: 20, code: 0x2a, text: 'Dr Jones 40' }];
    const b = await ventilator(t, stack, 'vent-b', { ask: ['measurements'] });
    for (const v of [a, b]) v.sim.measurementLimit = n;
    b.sim.faults.corruptMeasurements = [1, 3];
    await stack.writeConfig({ ...stack.config(), devices: [a.device, b.device] });
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    const status = await stack.statusUntil((s) =>
      s.adapters.every((d) => d.stored >= n + (d.deviceId === 'vent-b' ? -2 : 1)),
    );
    const [sa, sb] = status.adapters;
    t.equal(sa?.stored, n + 1, 'device a: every reply stored, and its alarm event');
    t.equal(sb?.stored, n - 2, 'device b: the two corrupt replies are not stored');
    t.equal(sb?.malformed, 2, 'device b: the two corrupt replies are counted');
    t.same(b.sim.corrupted.length, 2);

    const dashboard = await stack.subscribe();
    const sync = await stack.run('sync', '--json');
    t.equal(sync.code, 0);
    const records = recordsOf(await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000));
    for (const v of [a, b]) {
      const mine = records.filter((r) => r.deviceId === v.id && r.event === undefined);
      const sent = v.sim.sentMeasurements.filter((_, i) => !v.sim.corrupted.includes(i));
      t.equal(mine.length, sent.length, `${v.id}: one record per good reply`);
      mine.forEach((r, i) => {
        t.equal(r.protocol, 'medibus');
        t.same(r.instrument, { name: `Evita-${v.id}`, version: '04.20' });
        const obs = r.observations as Obs[];
        for (const [code, [unit, mdc, device]] of Object.entries(expectedUnits)) {
          const o = obs.find((x) => x.code === code);
          t.same(
            [o?.unit, o?.mdc, o?.value],
            [unit, mdc, Number(sent[i]?.get(device))],
            `${v.id} record ${i + 1}: ${code}`,
          );
        }
        t.same(
          obs.find((x) => x.code === 'CP1:05'),
          {
            code: 'CP1:05',
            system: 'LOCAL',
            value: 1.5,
            unit: '1',
            status: 'valid',
            source: 'CP1:05',
          },
          'an unknown code is kept as the device code',
        );
      });
    }
    const alarm = records.find(
      (r) => r.deviceId === 'vent-a' && (r.event as { type?: string })?.type === 'alarm',
    );
    const alarms = alarm?.alarms as { code: string; priority: string; text?: string; deviceCode: unknown }[];
    t.same(
      alarms?.map((x) => [x.code, x.priority, x.deviceCode]),
      [['MEDIBUS-2A', 'high', { code: '2A', system: 'MEDIBUS' }]],
      'the alarm arrives as an event with its code and priority',
    );
    t.match(alarms?.[0]?.text, /40/, 'the alarm text is kept with free text on');
    t.notMatch(JSON.stringify(records), /Jones/, 'the name in the alarm text never leaves the gateway');
    t.notMatch(JSON.stringify(gateway.logs), /Jones/, 'nor reaches the log');
    t.equal(gateway.child.exitCode, null, 'the gateway is still running');
  },
);

t.test('a silent ventilator is reported lost, initialized again, and recovered', async (t) => {
  const stack = await Stack.start(t);
  const v = await ventilator(t, stack, 'vent-s', {});
  await stack.writeConfig({ ...stack.config(), devices: [v.device] });
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  await stack.statusUntil((s) => (s.adapters[0]?.stored ?? 0) >= 3);
  v.sim.faults.silent = true;
  const lost = await stack.statusUntil((s) => s.adapters[0]?.state === 'disconnected');
  t.ok(
    ((lost.adapters[0] as { unanswered?: number }).unanswered ?? 0) >= 2,
    'the missing replies are counted',
  );
  await gateway.waitForLog((l) => l.msg === 'gateway event' && l.type === 'device.lost');
  const icc = v.sim.seen('Q');
  await stack.statusUntil(() => v.sim.seen('Q') > icc);
  t.pass('communication is initialized again while the device is silent');
  const stored = lost.adapters[0]?.stored ?? 0;
  v.sim.faults.silent = false;
  const back = await stack.statusUntil(
    (s) => s.adapters[0]?.state === 'connected' && (s.adapters[0]?.stored ?? 0) > stored,
  );
  t.ok(back, 'readings flow again');
  await gateway.waitForLog((l) => l.msg === 'device answering again');
  t.ok(
    gateway.logs.some((l) => l.msg === 'device not answering, initializing again' && l.deviceId === 'vent-s'),
    'the loss is logged with the device',
  );
  t.equal(gateway.child.exitCode, null);
});

t.test('probe --ask finds a MEDIBUS device by its answer and suggests a valid config', async (t) => {
  const dir = t.testdir();
  const pty = await openPtyPair(join(dir, 'pty'));
  const sim = new MedibusDeviceSimulator({ path: pty.devicePath });
  await sim.open();
  t.teardown(async () => {
    await sim.close();
    await pty.close();
  });
  const result = await attache(['probe', pty.gatewayPath, '--ask', '--json']);
  t.equal(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout);
  t.same(out.snippet, {
    id: 'device-1',
    adapter: 'rs232',
    port: { path: pty.gatewayPath, baudRate: 19200, dataBits: 8, parity: 'even', stopBits: 1 },
    format: { kind: 'medibus' },
  });
  t.equal(sim.seen('Q'), 1, 'one ICC was sent');
  const config = join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({ version: 1, gateway: { id: 'gw-probe' }, devices: [out.snippet] }),
  );
  const valid = await attache(['config', 'validate', '--config', config]);
  t.equal(valid.code, 0, `the suggestion is a valid device: ${valid.stderr}`);
  const text = await attache(['probe', pty.gatewayPath, '--ask']);
  t.match(text.stdout, /Dräger MEDIBUS answered on .* at 19200 baud 8E1/);
});
