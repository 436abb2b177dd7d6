// attache-provision (image-build/overlay/usr/local/sbin), which the appliance runs as root at every
// boot: it runs the release's code (`attache config validate`, `attache technician secret`) only as
// the service's user, since the release is that user's to change (software updates). Run here as on
// the box, in a private mount namespace (nothing of this machine changes): an `attache` user in a
// bind-mounted /etc/passwd and /etc/group, /var/lib/attache on a tmpfs, the overlay's provision.mjs
// in /usr/local/lib/attache, and /usr/local/bin/attache a script that notes who runs it and what it
// sees, then starts this repository's CLI.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { canUnshareMounts, freeId, runFile as run } from './helpers/run-file.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const overlay = join(repo, 'image-build/overlay');

const mountNamespaces = await canUnshareMounts();

// In the namespace: the box's paths, the script as its unit runs it (umask 077, a clean environment:
// not this test runner's, whose NODE_OPTIONS hooks every Node), then what it left.
const boxScript = `
set -e
w=$1 overlay=$2 repo=$3
mount --make-rprivate /
mount --bind "$w/passwd" /etc/passwd
mount --bind "$w/group" /etc/group
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mkdir -m 0755 /var/lib/attache
mount -t tmpfs -o mode=0755 tmpfs /usr/local/lib
mkdir /usr/local/lib/attache
mount --bind "$overlay/usr/local/lib/attache" /usr/local/lib/attache
mount -t tmpfs -o mode=0755 tmpfs /usr/local/bin
ln -s "$w/attache" /usr/local/bin/attache
set +e
(umask 077 && env -i PATH="$PATH" LANG=C.UTF-8 ATTACHE_BOOT_DIR="$w/boot" "$overlay/usr/local/sbin/attache-provision")
echo "exit=$?"
stat -c '%U:%G %a %n' /var/lib/attache/config/config.json /var/lib/attache/credentials/device.key \\
  /var/lib/attache/gateway/technician/secret 2>&1
ls -a /var/lib/attache | grep -c '^\\.provision' || true
`;

// What /usr/local/bin/attache notes about each run, then the real CLI.
const wrapper = (w: string) => `#!/bin/sh
config=""
prev=""
for arg in "$@"; do [ "$prev" = --config ] && config=$arg; prev=$arg; done
{
  echo "run: uid=$(id -u) gid=$(id -g) $1 $2"
  echo "stage: $(stat -c '%U:%G %a' "$(dirname "$config")") config: $(stat -c '%U:%G %a' "$config")"
  echo "list: $(ls "$(dirname "$config")" 2>&1 | head -n 1)"
} >>${w}/calls
exec ${process.execPath} ${join(repo, 'packages/cli/dist/bin.js')} "$@"
`;

async function box(t: Test, config: Record<string, unknown>) {
  const w = await mkdtemp(join(tmpdir(), 'attache-provision-'));
  t.teardown(() => rm(w, { recursive: true, force: true }));
  await chmod(w, 0o755);
  const id = await freeId();
  await writeFile(
    join(w, 'passwd'),
    `${await readFile('/etc/passwd', 'utf8')}attache:x:${id}:${id}:Attache gateway:/var/lib/attache/gateway:/usr/sbin/nologin\n`,
  );
  await writeFile(join(w, 'group'), `${await readFile('/etc/group', 'utf8')}attache:x:${id}:\n`);
  await writeFile(join(w, 'attache'), wrapper(w), { mode: 0o755 });
  await writeFile(join(w, 'calls'), '', { mode: 0o666 });
  await chmod(join(w, 'calls'), 0o666);
  const bundle = join(w, 'boot', 'attache');
  await mkdir(bundle, { recursive: true });
  const made = await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=gw-7',
    '-keyout',
    join(bundle, 'device.key'),
    '-out',
    join(bundle, 'device.crt'),
  ]);
  t.equal(made.code, 0, made.stderr || 'a device certificate and key');
  await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
  const ran = await run('unshare', ['-m', 'sh', '-c', boxScript, 'sh', w, overlay, repo]);
  t.equal(ran.code, 0, ran.stderr || 'the namespace ran');
  const calls = await readFile(join(w, 'calls'), 'utf8');
  let result = '';
  try {
    result = await readFile(join(bundle, 'RESULT.txt'), 'utf8');
  } catch {}
  return { id, out: ran.stdout, calls, result };
}

const device = {
  id: 'spo2-bed1',
  adapter: 'rs232',
  port: { path: '/dev/attache/ftdi-A10K1-if00' },
  format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
};
const base = {
  version: 1,
  gateway: { id: 'gw-7' },
  devices: [device],
  uplink: { endpoint: 'example.iot.eu-west-1.amazonaws.com', certFile: 'device.crt', keyFile: 'device.key' },
};
// /usr/local/bin and /usr/local/lib are replaced in the namespace: Node must live elsewhere (Debian's).
const skip = !mountNamespaces
  ? 'needs root (setpriv to another user) and mount namespaces'
  : process.execPath.startsWith('/usr/local/')
    ? `Node is in /usr/local (${process.execPath}), which the test replaces`
    : false;

t.test("the release's commands run as attache; the box is provisioned", { skip }, async (t) => {
  const { id, out, calls, result } = await box(t, {
    ...base,
    technician: { listen: ['169.254.7.1'], port: 8090 },
  });
  t.match(out, /attache-provision: OK: gateway gw-7 provisioned/, 'provisioned');
  t.match(out, /^exit=0$/m);
  const runs = [...calls.matchAll(/^run: (.*)$/gm)].map((m) => m[1]);
  t.same(
    runs,
    [`uid=${id} gid=${id} config validate`, `uid=${id} gid=${id} technician secret`],
    'config validate and technician secret, both as attache, none as root',
  );
  t.match(
    calls,
    /^stage: root:attache 710 config: root:attache 640$/m,
    'attache reads the staged config through a stage it may only pass through',
  );
  t.match(calls, /^list: ls: cannot open directory .*Permission denied$/m, 'it cannot list the stage');
  t.match(out, `attache:attache 600 /var/lib/attache/config/config.json`, "the config is the service's");
  t.match(out, `root:root 600 /var/lib/attache/credentials/device.key`, 'the key stays root-only');
  t.match(
    out,
    `attache:attache 600 /var/lib/attache/gateway/technician/secret`,
    'the box secret is made as attache',
  );
  t.match(out, /^0$/m, 'no stage left');
  t.equal(result, '', 'no RESULT.txt of a failure');
});

t.test(
  "a config the release's check refuses (run as attache) keeps the bundle with its reasons",
  { skip },
  async (t) => {
    const { id, out, calls, result } = await box(t, {
      ...base,
      devices: [{ ...device, adapter: 'no-such-adapter' }],
    });
    t.match(out, /attache-provision: FAILED/);
    t.match(out, /^exit=1$/m);
    t.same(
      [...calls.matchAll(/^run: (.*)$/gm)].map((m) => m[1]),
      [`uid=${id} gid=${id} config validate`],
      'validated as attache; nothing else ran',
    );
    t.match(result, /Attache provisioning FAILED .*Nothing was changed on the gateway/);
    t.match(result, /devices\/0/, "the check's own reason");
    t.match(out, /config\/config\.json': No such file/, 'no config installed');
    t.notMatch(result, /EACCES/, 'nothing else went wrong');
    t.match(out, /^0$/m, 'no stage left');
  },
);
