// End-to-end: `attache status` reports the appliance's provisioning state, as written by the image's
// own first-boot helper (image-build/overlay/usr/local/lib/attache/provision.mjs), also when the
// gateway cannot run because provisioning failed.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { attache, Stack } from './helpers/stack.js';

const helper = fileURLToPath(
  new URL('../image-build/overlay/usr/local/lib/attache/provision.mjs', import.meta.url),
);
const writeState = (file: string, ...args: string[]) =>
  promisify(execFile)(process.execPath, [helper, 'state', file, ...args]);

t.test('a provisioned gateway shows its provisioning and certificate in status', async (t) => {
  const stack = await Stack.start(t);
  const file = join(stack.dir, 'provisioning.json');
  await writeState(
    file,
    'provisioned',
    'provisioned from the boot partition; the bundle was removed from it',
    'gatewayId=gw-e2e-1',
    'credential=device',
    'subject=CN=gw-e2e-1',
    'notAfter=Nov 22 06:00:00 2036 GMT',
    'sha256=AB:CD',
  );
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const env = { ATTACHE_PROVISIONING_FILE: file };
  const text = await attache(['status', '--config', stack.configPath], env);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /running since/);
  t.match(text.stdout, /provisioning: provisioned at \S+ \(device certificate\)/);
  t.match(text.stdout, /certificate CN=gw-e2e-1, valid until Nov 22 06:00:00 2036 GMT/);
  const json = JSON.parse((await attache(['status', '--json', '--config', stack.configPath], env)).stdout);
  t.match(json.provisioning, {
    state: 'provisioned',
    gatewayId: 'gw-e2e-1',
    certificate: { sha256: 'AB:CD' },
  });
  const plain = JSON.parse((await stack.run('status', '--json')).stdout);
  t.notOk('provisioning' in plain, 'no state file (not an appliance): nothing about provisioning');
});

t.test('a refused bundle: status prints why, though there is no config to run', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'provisioning.json');
  await writeState(
    file,
    'failed',
    'provisioning failed; the bundle stays on the boot partition',
    'errors=attache/device.key is missing\nattache/device.crt is not a PEM certificate\n',
  );
  const result = await attache(['status', '--config', join(dir, 'config.json')], {
    ATTACHE_PROVISIONING_FILE: file,
  });
  t.equal(result.code, 78, 'the config problem still fails the command');
  t.match(result.stdout, /provisioning: FAILED at .*attache\/RESULT\.txt/);
  t.match(
    result.stdout,
    /\n {2}attache\/device\.key is missing\n {2}attache\/device\.crt is not a PEM certificate/,
  );
  t.match(result.stderr, /config .*config\.json is invalid:\n {2}\/: file not found/);
});
