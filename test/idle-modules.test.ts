// `attache run` with one serial device and nothing else configured (no uplink, technician page or
// files up) loads only the code it runs: the jobs agent, the uplink's MQTT client, files up, the
// technician page and the export writer are imported at first use, never at idle (bench/README.md,
// "Idle RSS"), and none of core's validators stays in require's cache (the config's is compiled
// outside it and let go after use). A module loader hook lists every ES module the process loads,
// and a preloaded script the CommonJS ones (`require.cache`) when it exits.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { bin } from './helpers/stack.js';

t.test('an idle gateway without uplink, page or files up loads none of their code', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'attache-idle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const loaded = join(dir, 'loaded.txt');
  await writeFile(
    join(dir, 'hook.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(loaded)}, url + '\\n');
  return next(url, context);
}
`,
  );
  const required = join(dir, 'required.txt');
  await writeFile(
    join(dir, 'required.cjs'),
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(required)}, Object.keys(require.cache).join('\\n')));\n`,
  );
  await writeFile(
    join(dir, 'register.mjs'),
    "import { register } from 'node:module';\nregister('./hook.mjs', import.meta.url);\n",
  );
  const config = join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-idle', dataDir: join(dir, 'data') },
      devices: [
        {
          id: 'spo2-bed1',
          adapter: 'rs232',
          port: { path: join(dir, 'unplugged') },
          format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
        },
      ],
    }),
  );
  const register = pathToFileURL(join(dir, 'register.mjs')).href;
  const child = spawn(
    process.execPath,
    ['--import', register, '--require', join(dir, 'required.cjs'), bin, 'run', '--config', config],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('"running"')) resolve();
    });
    child.once('exit', () => resolve());
  });
  t.match(out, /"msg":"running"/, 'the gateway started');
  child.kill('SIGTERM');
  await exited;
  const urls = [
    ...(await readFile(loaded, 'utf8')).trimEnd().split('\n'),
    ...(await readFile(required, 'utf8')).split('\n'),
  ];
  const loads = (path: string) => urls.some((url) => url.includes(path));
  t.ok(loads('/gateway/dist/gateway.js'), 'the gateway itself is loaded (the hook sees it)');
  t.ok(loads('/adapter-rs232/dist/'), 'the serial adapter is loaded');
  t.ok(loads('/pino/lib/'), "pino's CommonJS modules are loaded (the preload sees require's cache)");
  for (const path of [
    '/jobs/dist/index.js',
    '/jobs/dist/jobs-agent.js',
    '/gateway/dist/window-jobs.js',
    '/gateway/dist/window-process.js',
    '/uplink/dist/index.js',
    'aws-iot-device-sdk-v2',
    'aws-crt',
    '/files-up/dist/',
    '/technician/dist/',
    '/cli/dist/technician-host.js',
    '/gateway/dist/export-service.js',
    '/astm/dist/index.js',
    '/hl7/dist/',
    '/consumer/dist/',
    'serialport/dist/index.js',
    'node:https',
    'node:tls',
    '/core/generated/config-validator.cjs',
    '/core/generated/batch-validator.cjs',
    '/core/generated/uplink-message-validators.cjs',
    // `run --config X` starts its handler without the command parser (packages/cli/src/commands/direct.ts).
    '/node_modules/yargs/',
    '/node_modules/yargs-parser/',
  ]) {
    t.notOk(loads(path), `${path} is not loaded`);
  }
});
