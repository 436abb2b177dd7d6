import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IntelliVueMonitorSimulator, MedibusDeviceSimulator, openPtyPair } from '@attache/devkit';
import t, { type Test } from 'tap';
import { attache, recordsOf, Stack } from './helpers/stack.js';

/** A device simulator on its own socat pty. */
async function onPty<S extends { open(): Promise<void>; close(): Promise<void> }>(
  t: Test,
  dir: string,
  make: (path: string) => S,
): Promise<{ sim: S; path: string }> {
  const pty = await openPtyPair(dir);
  const sim = make(pty.devicePath);
  await sim.open();
  t.teardown(async () => {
    await sim.close();
    await pty.close();
  });
  return { sim, path: pty.gatewayPath };
}

// A short period keeps the test fast; a generous reply timeout keeps a loaded machine from turning a
// slow reply into a retry (MEDIBUS replies carry no sequence number to tell them apart).
const fastPoll = { periodMs: 100, replyTimeoutMs: 1000, retries: 1, linkTimeoutMs: 600 };

function monitorDevice(id: string, path: string, poll: Record<string, unknown> = {}) {
  return {
    id,
    adapter: 'rs232',
    port: { path, baudRate: 115200, reconnectMs: 200 },
    format: { kind: 'intellivue', poll: { ...fastPoll, ...poll } },
  };
}

type Obs = {
  code: string;
  value: unknown;
  unit: string | null;
  mdc?: number;
  deviceCode?: unknown;
  path?: string;
};

t.test(
  'a monitor and a ventilator on two ports: N polls give N sets on the broker; corrupt frames are counted and never stored',
  async (t) => {
    const stack = await Stack.start(t);
    const n = 6;
    const mon = await onPty(
      t,
      join(stack.dir, 'pty-mon'),
      (path) => new IntelliVueMonitorSimulator({ path }),
    );
    const vent = await onPty(t, join(stack.dir, 'pty-vent'), (path) => new MedibusDeviceSimulator({ path }));
    mon.sim.numericsLimit = n;
    mon.sim.faults.corruptNumerics = [2];
    vent.sim.measurementLimit = n;
    await stack.writeConfig({
      ...stack.config(),
      devices: [
        monitorDevice('mon-1', mon.path, { ask: ['numerics'] }),
        {
          id: 'vent-1',
          adapter: 'rs232',
          port: { path: vent.path, baudRate: 19200, parity: 'even', reconnectMs: 200 },
          format: { kind: 'medibus', poll: { ...fastPoll, ask: ['measurements'] } },
        },
      ],
    });
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    const status = await stack.statusUntil(
      (s) => (s.adapters[0]?.stored ?? 0) >= n - 1 && (s.adapters[1]?.stored ?? 0) >= n,
    );
    t.equal(status.adapters[0]?.stored, n - 1, 'monitor: the corrupt result is not stored');
    t.equal(status.adapters[0]?.malformed, 1, 'monitor: the corrupt frame is counted');
    t.equal(status.adapters[1]?.stored, n, 'ventilator: every reply stored');

    const dashboard = await stack.subscribe();
    const sync = await stack.run('sync', '--json');
    t.equal(sync.code, 0);
    const records = recordsOf(await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000));
    const monitor = records.filter((r) => r.deviceId === 'mon-1');
    const sent = mon.sim.sentNumerics.filter((_, i) => !mon.sim.corrupted.includes(i));
    t.equal(monitor.length, sent.length, 'one record per good poll result');
    monitor.forEach((r, i) => {
      t.equal(r.protocol, 'intellivue');
      const obs = r.observations as Obs[];
      const hr = obs.find((o) => o.code === 'MDC_ECG_HEART_RATE');
      t.same(
        [hr?.mdc, hr?.unit, hr?.value, hr?.deviceCode],
        [147842, '/min', sent[i]?.[0]?.value, { code: '0002-4182', system: 'MDIL' }],
        `record ${i + 1}: heart rate`,
      );
      const spo2 = obs.find((o) => o.code === 'MDC_PULS_OXIM_SAT_O2');
      t.same([spo2?.unit, spo2?.value], ['%', sent[i]?.[1]?.value]);
      const nibp = ['MDC_PRESS_BLD_NONINV_SYS', 'MDC_PRESS_BLD_NONINV_DIA', 'MDC_PRESS_BLD_NONINV_MEAN'].map(
        (code) => obs.find((o) => o.code === code),
      );
      t.same(
        nibp.map((o) => [o?.value, o?.unit]),
        [
          [120, 'mm[Hg]'],
          [80, 'mm[Hg]'],
          [93, 'mm[Hg]'],
        ],
      );
      const temp = obs.find((o) => o.mdc === 150344);
      t.same([temp?.unit, temp?.value], ['Cel', sent[i]?.[6]?.value]);
    });
    t.equal(
      records.filter((r) => r.deviceId === 'vent-1').length,
      n,
      'the ventilator’s sets arrive beside them',
    );
    t.equal(gateway.child.exitCode, null);
  },
);

t.test(
  'a silent monitor is reported lost, associated again, and recovered; an abort is survived',
  async (t) => {
    const stack = await Stack.start(t);
    const mon = await onPty(
      t,
      join(stack.dir, 'pty-mon'),
      (path) => new IntelliVueMonitorSimulator({ path }),
    );
    await stack.writeConfig({ ...stack.config(), devices: [monitorDevice('mon-s', mon.path)] });
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    await stack.statusUntil((s) => (s.adapters[0]?.stored ?? 0) >= 3);
    mon.sim.abort();
    await gateway.waitForLog((l) => l.msg === 'monitor aborted the association');
    await stack.statusUntil(() => mon.sim.associations >= 2);
    mon.sim.faults.silent = true;
    const lost = await stack.statusUntil((s) => s.adapters[0]?.state === 'disconnected');
    await gateway.waitForLog((l) => l.msg === 'gateway event' && l.type === 'device.lost');
    const associations = mon.sim.associations;
    await stack.statusUntil(() => mon.sim.associations > associations);
    t.pass('a new association is requested while the monitor is silent');
    mon.sim.faults.silent = false;
    const stored = lost.adapters[0]?.stored ?? 0;
    await stack.statusUntil(
      (s) => s.adapters[0]?.state === 'connected' && (s.adapters[0]?.stored ?? 0) > stored,
    );
    await gateway.waitForLog((l) => l.msg === 'device answering again');
    t.equal(gateway.child.exitCode, null);
  },
);

t.test('probe --ask finds an IntelliVue monitor by its association answer', async (t) => {
  const dir = t.testdir();
  const mon = await onPty(t, join(dir, 'pty'), (path) => new IntelliVueMonitorSimulator({ path }));
  const result = await attache(['probe', mon.path, '--ask', '--json']);
  t.equal(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout);
  t.same(out.snippet, {
    id: 'device-1',
    adapter: 'rs232',
    port: { path: mon.path, baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1 },
    format: { kind: 'intellivue' },
  });
  const config = join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({ version: 1, gateway: { id: 'gw-probe' }, devices: [out.snippet] }),
  );
  const valid = await attache(['config', 'validate', '--config', config]);
  t.equal(valid.code, 0, valid.stderr);
});
