// `attache firewall`: the appliance's nftables ruleset made from the config, checked by Debian's nft
// (`nft -c`, in an unprivileged network namespace: nothing is applied to this machine).
import { execFile, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { attache } from './helpers/stack.js';

const run = promisify(execFile);
const namespacesWork = spawnSync('unshare', ['-rn', 'true']).status === 0;
// Debian's nftables (make deps installs it): without it every check below fails saying so.
const nftInstalled = spawnSync('sh', ['-c', 'command -v nft']).status === 0;
t.ok(nftInstalled, 'nft is installed (apt-get install nftables; make deps does it)');

const monitors = {
  id: 'icu-monitors',
  adapter: 'ethernet',
  endpoint: { mode: 'listen', port: 2575, allow: ['10.30.0.0/24', 'fd00:30::/64', '::ffff:10.31.0.9'] },
  format: { kind: 'hl7-mllp' },
};
const analyzer = {
  id: 'chemistry-1',
  adapter: 'ethernet',
  endpoint: { mode: 'connect', host: '10.30.1.20', port: 5001 },
  format: { kind: 'astm' },
};

async function configFile(dir: string, extra: Record<string, unknown>): Promise<string> {
  const path = join(dir, 'config.json');
  const config = { version: 1, gateway: { id: 'gw-1' }, devices: [monitors, analyzer], ...extra };
  await writeFile(path, JSON.stringify(config));
  return path;
}

/** `nft -c -f` as root of a fresh network namespace; exit code and output. */
async function nftCheck(file: string) {
  try {
    await run('unshare', ['-rn', 'nft', '-c', '-f', file]);
    return { code: 0, output: '' };
  } catch (err) {
    const e = err as { code: number | string; stderr?: string };
    return { code: e.code, output: e.stderr ?? '' };
  }
}

t.test(
  'listeners only from their allow-lists, SSH only from the management network; nft accepts it',
  async (t) => {
    const dir = t.testdir();
    const config = await configFile(dir, { firewall: { sshFrom: ['10.50.0.0/24', 'fd00:50::/64'] } });
    const out = join(dir, 'attache.nft');
    const made = await attache(['firewall', '--config', config, '--output', out]);
    t.equal(made.code, 0, made.stderr);
    t.equal(made.stdout, '', 'written to the file only');
    const ruleset = await readFile(out, 'utf8');
    t.match(ruleset, /policy drop;/, 'inbound is dropped by default');
    t.match(ruleset, 'tcp dport 2575 ip saddr { 10.30.0.0/24, 10.31.0.9 } accept');
    t.match(ruleset, 'tcp dport 2575 ip6 saddr { fd00:30::/64 } accept');
    t.match(ruleset, 'tcp dport 22 ip saddr { 10.50.0.0/24 } accept');
    t.match(ruleset, 'tcp dport 22 ip6 saddr { fd00:50::/64 } accept');
    t.notMatch(ruleset, /dport 5001/, 'a device the gateway connects to needs no inbound rule');
    t.equal((ruleset.match(/ accept comment/g) ?? []).length, 6, 'DHCP, DHCPv6, 2 device rules, 2 SSH rules');
    const check = await nftCheck(out);
    t.equal(check.code, 0, check.output || 'nft -c: valid');
  },
);

t.test('the technician page only on its interfaces and addresses, DHCP on the USB link', async (t) => {
  const dir = t.testdir();
  const config = await configFile(dir, {
    technician: { listen: ['usb0', '169.254.7.1', 'fe80::1%usb0'], port: 8080 },
  });
  const made = await attache(['firewall', '--print', '--config', config]);
  t.equal(made.code, 0, made.stderr);
  t.match(made.stdout, 'iifname "usb0" tcp dport 8080 accept comment "technician page"');
  t.match(made.stdout, 'iifname "usb0" udp dport 67 accept');
  t.match(made.stdout, 'ip daddr 169.254.7.1 tcp dport 8080 accept');
  t.match(made.stdout, 'ip6 daddr fe80::1 tcp dport 8080 accept');
  t.equal((made.stdout.match(/dport 8080/g) ?? []).length, 3, 'nowhere else');
  await writeFile(join(dir, 'attache.nft'), made.stdout);
  const check = await nftCheck(join(dir, 'attache.nft'));
  t.equal(check.code, 0, check.output || 'nft -c: valid');
});

t.test('without firewall.sshFrom, SSH is closed to the network', async (t) => {
  const dir = t.testdir();
  const config = await configFile(dir, {});
  const made = await attache(['firewall', '--print', '--config', config]);
  t.equal(made.code, 0, made.stderr);
  t.notMatch(made.stdout, /dport 22/);
  await writeFile(join(dir, 'attache.nft'), made.stdout);
  t.equal((await nftCheck(join(dir, 'attache.nft'))).code, 0);
});

t.test('an entry that is no address is refused with its path; nothing is printed', async (t) => {
  const dir = t.testdir();
  const bad = { ...monitors, endpoint: { ...monitors.endpoint, allow: ['10.30.0.0/24', '10.30.0.0/40'] } };
  const path = join(dir, 'config.json');
  const write = (firewall: Record<string, unknown>) =>
    writeFile(path, JSON.stringify({ version: 1, gateway: { id: 'gw-1' }, devices: [bad], firewall }));
  // The schema checks sshFrom; the device's allow-list is checked where it is parsed.
  await write({ sshFrom: ['1.2.3.4.5'] });
  const schema = await attache(['firewall', '--print', '--config', path]);
  t.equal(schema.code, 78);
  t.equal(schema.stdout, '');
  t.match(schema.stderr, '/firewall/sshFrom/0');
  await write({ sshFrom: ['10.50.0.0/24'] });
  const made = await attache(['firewall', '--print', '--config', path]);
  t.equal(made.code, 78);
  t.equal(made.stdout, '');
  t.match(made.stderr, '/devices/0/endpoint/allow/1: not an IP address or CIDR range');
});

// Two network namespaces joined by a veth pair: the box (10.9.0.1, the ruleset loaded, socat
// listening on the device port and on 22) and the LAN (10.9.0.2 and 10.9.0.3). Each connection
// prints "open" or "dropped" (a dropped SYN gets no answer: socat gives up after 1 s).
const packetScript = `
set -e
ip link set lo up
unshare -n sleep 60 >/dev/null 2>&1 & lan=$!
pids=$lan
while [ "$(readlink /proc/$lan/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do sleep 0.02; done
ip link add box0 type veth peer name lan0 netns $lan
ip addr add 10.9.0.1/24 dev box0
ip link set box0 up
nsenter -t $lan -n sh -c 'ip link set lo up; ip addr add 10.9.0.2/24 dev lan0; ip addr add 10.9.0.3/24 dev lan0; ip link set lan0 up'
nft -f "$1"
for port in 2575 22 8080; do
  socat TCP-LISTEN:$port,bind=10.9.0.1,fork,reuseaddr SYSTEM:'echo open' >/dev/null 2>&1 &
  pids="$pids $!"
done
for port in 2575 22 8080; do
  until ss -Hltn "sport = :$port" | grep -q .; do sleep 0.02; done
done
try() { nsenter -t $lan -n socat -u TCP:10.9.0.1:$2,bind=$1,connect-timeout=1 - 2>/dev/null || echo dropped; }
echo "device-from-allowed $(try 10.9.0.2 2575)"
echo "device-from-other $(try 10.9.0.3 2575)"
echo "ssh-from-management $(try 10.9.0.3 22)"
echo "ssh-from-other $(try 10.9.0.2 22)"
echo "unlisted-port $(try 10.9.0.2 8080)"
kill $pids
`;

t.test(
  'the ruleset filters for real: a device port and SSH only from their sources, nothing else',
  { skip: namespacesWork ? false : 'unprivileged user and network namespaces (unshare -rn) unavailable' },
  async (t) => {
    const dir = t.testdir();
    const device = { ...monitors, endpoint: { mode: 'listen', port: 2575, allow: ['10.9.0.2'] } };
    const path = join(dir, 'config.json');
    const config = {
      version: 1,
      gateway: { id: 'gw-1' },
      devices: [device],
      firewall: { sshFrom: ['10.9.0.3/32'] },
    };
    await writeFile(path, JSON.stringify(config));
    const ruleset = join(dir, 'attache.nft');
    t.equal((await attache(['firewall', '--config', path, '--output', ruleset])).code, 0);
    const { stdout } = await run('unshare', ['-rn', 'sh', '-c', packetScript, 'sh', ruleset], {
      timeout: 60_000,
    });
    const outcome = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ')),
    );
    t.same(outcome, {
      'device-from-allowed': 'open',
      'device-from-other': 'dropped',
      'ssh-from-management': 'open',
      'ssh-from-other': 'dropped',
      'unlisted-port': 'dropped',
    });
  },
);

// attache-firewall.service as systemd starts it: each ExecStart= line under util-linux's setpriv with
// the unit's User= (attache; `nobody` here), CapabilityBoundingSet=, AmbientCapabilities=,
// NoNewPrivileges= and UMask=, in a fresh network namespace. `make image-test` runs the unit under
// the image's own systemd.
const repo = fileURLToPath(new URL('..', import.meta.url));
const unitFile = join(repo, 'image-build/overlay/usr/lib/systemd/system/attache-firewall.service');
const isRoot = process.getuid?.() === 0;
const nobody = 65534;
const namespacesAsRoot = isRoot && spawnSync('unshare', ['-n', 'true']).status === 0;

interface UnitLine {
  prefix: string;
  argv: string[];
}

/** The unit's ExecStart= lines, with the appliance's paths moved into `dir` and this repository. */
function execStarts(unit: string, dir: string): UnitLine[] {
  const paths: [string, string][] = [
    ['/usr/bin/node', process.execPath],
    ['/opt/attache/current', repo.replace(/\/$/, '')],
    ['/var/lib/attache/config/config.json', join(dir, 'config.json')],
    ['/run/attache-firewall', join(dir, 'run')],
  ];
  return [...unit.matchAll(/^ExecStart=([-@:+!]*)(.*)$/gm)].map(([, prefix, line]) => ({
    prefix: prefix as string,
    argv: (line as string).split(/\s+/).map((arg) => {
      const moved = paths.find(([from]) => arg === from || arg.startsWith(`${from}/`));
      return moved ? moved[1] + arg.slice(moved[0].length) : arg;
    }),
  }));
}

/** setpriv's arguments that give a line the credentials systemd gives it. */
function credentials(unit: string, line: UnitLine): string[] {
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1]?.trim() ?? '';
  const caps = (key: string) =>
    value(key)
      .split(/\s+/)
      .filter(Boolean)
      .map((c) => c.replace(/^CAP_/, '').toLowerCase());
  const args = [
    `--bounding-set=-all${caps('CapabilityBoundingSet')
      .map((c) => `,+${c}`)
      .join('')}`,
  ];
  const user = value('User');
  if (user !== '' && user !== 'root' && !/[+!]/.test(line.prefix)) {
    const ambient = caps('AmbientCapabilities');
    const set = ambient.length > 0 ? ambient.map((c) => `+${c}`).join(',') : '-all';
    args.push(
      `--reuid=${nobody}`,
      `--regid=${nobody}`,
      '--clear-groups',
      `--inh-caps=${set}`,
      `--ambient-caps=${set}`,
    );
  } else {
    args.push('--inh-caps=-all');
  }
  if (value('NoNewPrivileges') === 'yes') args.push('--no-new-privs');
  return args;
}

const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** Runs `lines` one after the other as the unit would, then `after` as root, in one network namespace. */
async function asTheUnit(unit: string, lines: UnitLine[], after: string, env: NodeJS.ProcessEnv = {}) {
  const commands = lines.map((line) =>
    ['setpriv', ...credentials(unit, line), '--', ...line.argv].map(shellQuote).join(' '),
  );
  const script = ['set -e', `umask ${/^UMask=(\d+)$/m.exec(unit)?.[1] ?? '0022'}`, ...commands, after].join(
    '\n',
  );
  try {
    const { stdout, stderr } = await run('unshare', ['-n', 'sh', '-c', script], {
      env: { ...process.env, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number | string; stdout?: string; stderr?: string };
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

t.test(
  "the unit makes the ruleset as the service's user without capabilities; nft loads it with CAP_NET_ADMIN only",
  { skip: namespacesAsRoot ? false : 'needs root (setpriv to another user) and network namespaces' },
  async (t) => {
    const unit = await readFile(unitFile, 'utf8');
    // Outside the repository: `nobody` must be able to enter it (the runtime directory is the user's).
    const dir = await mkdtemp(join(tmpdir(), 'attache-firewall-unit-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await chmod(dir, 0o755);
    await configFile(dir, { firewall: { sshFrom: ['10.50.0.0/24'] } });
    await chown(join(dir, 'config.json'), nobody, nobody);
    // RuntimeDirectory=: the unit's user's.
    const owner = /^User=(?!root$)\S+$/m.test(unit) ? nobody : 0;
    await mkdir(join(dir, 'run'), { mode: 0o755 });
    await chown(join(dir, 'run'), owner, owner);
    // What the release's code runs with: its uid and effective capabilities, on stderr.
    await writeFile(
      join(dir, 'probe.cjs'),
      [
        "const status = require('node:fs').readFileSync('/proc/self/status', 'utf8');",
        'const eff = /^CapEff:\\s*(\\w+)$/m.exec(status)[1];',
        "process.stderr.write('release code: uid ' + process.getuid() + ' CapEff: ' + eff + '\\n');",
        '',
      ].join('\n'),
    );
    const lines = execStarts(unit, dir);
    t.equal(lines.length, 2, 'two commands: make the ruleset, load it');
    const ran = await asTheUnit(unit, lines, 'nft list table inet attache', {
      NODE_OPTIONS: `--require=${join(dir, 'probe.cjs')}`,
    });
    t.equal(ran.code, 0, ran.stderr || 'both commands exit 0');
    t.match(
      ran.stderr,
      /^release code: uid 65534 CapEff: 0+$/m,
      "attache firewall runs as the unit's user, without capabilities",
    );
    t.match(
      ran.stdout,
      /tcp dport 22 ip saddr 10\.50\.0\.0\/24 accept/,
      'nft loaded the table from the config',
    );
    const ruleset = await stat(join(dir, 'run', 'attache.nft'));
    t.same([ruleset.uid, ruleset.mode & 0o777], [nobody, 0o600], "the ruleset is the user's, 0600");

    // The user chooses the ruleset (it could already, through the config): nft reads it, and an
    // `include` in it, with that user's file permissions only. As root (the unit before), nft
    // opened the file and printed its first line into the journal with its parse error.
    await writeFile(join(dir, 'root-only'), 'root-only-secret\n', { mode: 0o600 });
    await writeFile(join(dir, 'run', 'attache.nft'), `include "${join(dir, 'root-only')}"\n`);
    const load = lines[1] as UnitLine;
    t.notMatch(load.argv.join(' '), /node|bin\.js/, 'the second command is nft alone');
    const included = await asTheUnit(unit, [load], 'true');
    t.not(included.code, 0, 'nft refuses the ruleset');
    t.match(included.stderr, /Permission denied/, 'it cannot open the file');
    t.notMatch(included.stdout + included.stderr, /root-only-secret/, 'nothing of the file is shown');
  },
);
