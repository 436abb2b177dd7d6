// The gateway crash harness for the other adapter kinds (test/crash-gateway.test.ts does HL7): one
// real `attache run` reads an ASTM analyzer on a serial pty (the final frame is ACKed only after the
// synced write), a line device (Nonin SpO2, on the stack's pty) and a Modbus TCP fridge (Debian's
// pymodbus), and is killed with SIGKILL at random moments. After each kill the cache is opened with
// the gateway's key: every ASTM message whose transfer ended with every frame ACKed is there exactly
// once (an analyzer re-sends one cut by the kill; idempotency keys keep it single), and every line
// reading and polled Modbus value stored before the previous kill is still there, once. No window
// runs, so nothing leaves the cache. ATTACHE_CRASH_KILLS sets the kills (default 8), ATTACHE_CRASH_SEED
// the seed.
import { join } from 'node:path';
import { type ModbusServer, openPtyPair, startModbusServer } from '@attache/devkit';
import t from 'tap';
import { AstmLoop, astmValue, readCache } from './helpers/adapter-crash.js';
import { seededRandom } from './helpers/seeded-random.js';
import { type GatewayProcess, Stack } from './helpers/stack.js';

const kills = Number(process.env.ATTACHE_CRASH_KILLS ?? 8);
const seed = Number(process.env.ATTACHE_CRASH_SEED ?? Date.now() % 1_000_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started = (line: Record<string, unknown>) => line.msg === 'gateway started';
t.test(
  `ASTM, line and Modbus devices: a gateway SIGKILLed ${kills} times keeps every stored reading once`,
  async (t) => {
    t.comment(`seed ${seed} (ATTACHE_CRASH_SEED=${seed} replays this run's timing)`);
    const rand = seededRandom(seed);
    const stack = await Stack.start(t);
    const astmPty = await openPtyPair(join(stack.dir, 'astm'));
    t.teardown(() => astmPty.close());
    const modbus: ModbusServer = await startModbusServer({
      transport: 'tcp',
      units: { 1: [{ table: 'ir', address: 0, type: 'int16', value: 42 }] },
    });
    t.teardown(() => modbus.stop());
    const base = stack.config() as Record<string, unknown> & { devices: unknown[] };
    await stack.writeConfig({
      ...base,
      devices: [
        ...base.devices,
        {
          id: 'hema-crash',
          adapter: 'rs232',
          port: { path: astmPty.gatewayPath, reconnectMs: 100 },
          format: { kind: 'astm', receiverTimeoutMs: 2000 },
        },
        {
          id: 'fridge-crash',
          adapter: 'modbus',
          bus: { transport: 'tcp', host: '127.0.0.1', port: modbus.port },
          profile: 'fridge',
          pollIntervalMs: 100,
          timeoutMs: 500,
        },
      ],
      modbusProfiles: {
        fridge: {
          description: 'crash test',
          registers: [{ name: 't', ref: '30001', type: 'int16', code: 'LOCAL_T', unit: 'Cel' }],
        },
      },
    });
    const dataDir = join(stack.dir, 'data');
    const cachePath = join(dataDir, 'cache');
    const keyPath = join(dataDir, 'keys', 'cache.key');
    let gateway: GatewayProcess = stack.startGateway();
    await gateway.waitForLog(started, 60_000);
    const analyzer = new AstmLoop(astmPty.devicePath);
    await analyzer.start();
    t.teardown(() => analyzer.stop());
    stack.device.start();

    let previous = new Map<string, number>();
    let failures = 0;
    const byDevice = new Map<string, number>();
    for (let round = 1; round <= kills; round++) {
      if (rand() < 0.2) await sleep(Math.floor(rand() * 400));
      else {
        await gateway.waitForLog(started, 60_000);
        await sleep(300 + Math.floor(rand() * 700));
      }
      gateway.child.kill('SIGKILL');
      await gateway.exited;
      const sent = [...analyzer.sent];
      const { records, quarantined } = await readCache(cachePath, keyPath);
      const problems: string[] = [];
      if (quarantined > 0) problems.push(`${quarantined} values failed authentication`);
      const astm = records
        .filter((r) => r.deviceId === 'hema-crash')
        .map((r) => Number(r.value) - astmValue(0));
      const lost = sent.filter((n) => !astm.includes(n));
      if (lost.length > 0) problems.push(`ASTM: ${lost.length} acknowledged messages lost, first ${lost[0]}`);
      if (new Set(astm).size !== astm.length) problems.push('ASTM: a message is stored twice');
      const now = new Map<string, number>();
      for (const r of records) now.set(r.key, (now.get(r.key) ?? 0) + 1);
      const twice = [...now].filter(([, count]) => count > 1);
      if (twice.length > 0) problems.push(`${twice.length} readings stored twice, e.g. ${twice[0]?.[0]}`);
      const gone = [...previous.keys()].filter((key) => !now.has(key));
      if (gone.length > 0) problems.push(`${gone.length} readings stored before the last kill are gone`);
      previous = now;
      if (problems.length > 0) {
        failures++;
        t.fail(`round ${round}: ${problems.join('; ')}`);
      }
      gateway = stack.startGateway();
    }
    await gateway.waitForLog(started, 60_000);
    // On a busy machine the analyzer may not have finished a message between kills: the gateway
    // that runs now takes one (ACKed only once stored) before the end.
    await analyzer.whenSent(analyzer.sent.length + 1);
    await gateway.stop();
    const { records } = await readCache(cachePath, keyPath);
    for (const r of records) byDevice.set(r.deviceId, (byDevice.get(r.deviceId) ?? 0) + 1);
    t.equal(failures, 0, `after each of ${kills} kills every stored reading was there once`);
    t.ok(
      (byDevice.get('hema-crash') ?? 0) > 0,
      `ASTM messages stored (${analyzer.sent.length} ACKed, ${analyzer.resent} sent again)`,
    );
    t.ok((byDevice.get('spo2-bed7') ?? 0) > 0, `line readings stored (${byDevice.get('spo2-bed7')})`);
    t.ok((byDevice.get('fridge-crash') ?? 0) > 0, `Modbus polls stored (${byDevice.get('fridge-crash')})`);
  },
);
