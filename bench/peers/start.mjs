// Command start: the wall time of `attache status`, `attache modbus read` and `attache config
// validate` as whole processes, taking turns with a bare `node -e 0` and `mbpoll` reading the same
// register from the same pymodbus server. Prints medians and ratios to bare Node as JSON lines.
// `node bench/peers/start.mjs [rounds]`
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startModbusServer } from '@attache/devkit';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));
const rounds = Number(process.argv[2] ?? 15);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = await mkdtemp(join(tmpdir(), 'attache-peer-start-'));
const server = await startModbusServer({
  transport: 'tcp',
  units: { 1: [{ table: 'hr', address: 0, type: 'uint16', value: 42 }] },
});
try {
  const configPath = join(dir, 'config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-start', dataDir: join(dir, 'data') },
      devices: [
        {
          id: 'spo2',
          adapter: 'rs232',
          port: { path: '/dev/null' },
          format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
        },
      ],
    }),
  );
  const bus = `tcp://127.0.0.1:${server.port}`;
  const commands = {
    'node -e 0': [process.execPath, ['-e', '0']],
    'attache status': [bin, ['status', '--config', configPath]],
    'attache config validate': [bin, ['config', 'validate', '--config', configPath]],
    'attache modbus read': [bin, ['modbus', 'read', '--bus', bus, '--ref', '40001']],
    'mbpoll (one read)': [
      'mbpoll',
      ['-m', 'tcp', '-p', String(server.port), '-0', '-1', '-r', '0', '-c', '1', '127.0.0.1'],
    ],
  };
  const times = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, [file, args]] of Object.entries(commands)) {
      const t0 = performance.now();
      await run(file, args);
      times[name].push(performance.now() - t0);
    }
  }
  const bare = median(times['node -e 0']);
  for (const [name, list] of Object.entries(times)) {
    const ms = median(list);
    console.log(
      JSON.stringify({
        command: name,
        medianMs: Number(ms.toFixed(1)),
        ratioToBareNode: Number((ms / bare).toFixed(2)),
      }),
    );
  }
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
