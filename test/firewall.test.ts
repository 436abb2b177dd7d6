// `attache firewall`: the appliance's nftables ruleset made from the config, checked by Debian's nft
// (`nft -c`, in an unprivileged network namespace: nothing is applied to this machine).
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { attache } from './helpers/stack.js';

const run = promisify(execFile);

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
  const config = {
    version: 1,
    gateway: { id: 'gw-1' },
    devices: [bad],
    firewall: { sshFrom: ['1.2.3.4.5'] },
  };
  await writeFile(path, JSON.stringify(config));
  const made = await attache(['firewall', '--print', '--config', path]);
  t.equal(made.code, 78);
  t.equal(made.stdout, '');
  t.match(made.stderr, '/devices/0/endpoint/allow/1');
  t.match(made.stderr, '/firewall/sshFrom/0');
});
