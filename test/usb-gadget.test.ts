// The technician's USB link on the appliance: the USB-C port as an Ethernet gadget (usb0) with a
// link-local address and a DHCP lease for the laptop. Checked as files here (no Pi in CI): the
// kernel modules, the Pi's overlay, systemd-networkd's config, and the firewall made for `usb0`.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { attache } from './helpers/stack.js';

const overlay = fileURLToPath(new URL('../image-build/overlay/', import.meta.url));

/** An INI file (systemd's format) as section → key → values (a key may repeat). */
function ini(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = sections.get(section[1] as string) ?? new Map();
      sections.set(section[1] as string, current);
      continue;
    }
    const [key = '', ...rest] = line.split('=');
    current.set(key, [...(current.get(key) ?? []), rest.join('=')]);
  }
  return sections;
}

const ipv4 = (a: string) => a.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);

t.test('usb0 gets a link-local address and leases the laptop one, without a route or DNS', async (t) => {
  const net = ini(await readFile(join(overlay, 'etc/systemd/network/10-usb-gadget.network'), 'utf8'));
  t.same(net.get('Match')?.get('Name'), ['usb0']);
  const [address = '', prefix] = (net.get('Network')?.get('Address')?.[0] ?? '').split('/');
  t.equal(ipv4(address) >>> 16, ipv4('169.254.0.0') >>> 16, `${address} is link-local (169.254/16)`);
  t.notOk(/^169\.254\.(0|255)\./.test(address), 'not in the first or last /24, which RFC 3927 reserves');
  t.equal(prefix, '24');
  t.same(
    net.get('Network')?.get('ConfigureWithoutCarrier'),
    ['yes'],
    'the address is there before the cable',
  );
  t.same(net.get('Network')?.get('DHCPServer'), ['yes']);
  t.same(net.get('Network')?.get('IPForward'), ['no'], 'the laptop is never routed through the box');
  const dhcp = net.get('DHCPServer');
  t.same(
    [dhcp?.get('EmitRouter'), dhcp?.get('EmitDNS')],
    [['no'], ['no']],
    'the laptop keeps its own route and DNS',
  );
  const offset = Number(dhcp?.get('PoolOffset')?.[0]);
  const size = Number(dhcp?.get('PoolSize')?.[0]);
  const own = ipv4(address) & 0xff;
  t.ok(offset >= 1 && offset + size <= 255, 'the pool is inside the /24, without network and broadcast');
  t.ok(own < offset || own >= offset + size, 'the box keeps its own address out of the pool');
  t.same(net.get('Link')?.get('RequiredForOnline'), ['no'], 'boot never waits for a laptop');
  const wired = ini(await readFile(join(overlay, 'etc/systemd/network/20-wired.network'), 'utf8'));
  t.notOk(
    (wired.get('Match')?.get('Name')?.[0] ?? '')
      .split(/\s+/)
      .some((glob) => 'usb0'.startsWith(glob.replace('*', ''))),
    'the hospital-network config does not match usb0',
  );
});

t.test('the gadget drivers load at boot and the Pi firmware puts the port in peripheral mode', async (t) => {
  const modules = (await readFile(join(overlay, 'etc/modules-load.d/attache-usb-gadget.conf'), 'utf8'))
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
  t.same(modules, ['dwc2', 'g_ether']);
  const firmware = await readFile(join(overlay, 'etc/default/raspi-firmware-custom'), 'utf8');
  t.match(firmware, /^dtoverlay=dwc2,dr_mode=peripheral$/m);
  const customize = await readFile(
    fileURLToPath(new URL('../image-build/customize.sh', import.meta.url)),
    'utf8',
  );
  t.match(
    customize,
    /systemctl enable [^\n]*\\\n[^\n]*attache-console\.service/,
    'the console screen is enabled',
  );
});

t.test('a config listening on usb0: the firewall opens the page and DHCP there only', async (t) => {
  const dir = t.testdir();
  const config = join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-1' },
      devices: [
        {
          id: 'd',
          adapter: 'rs232',
          port: { path: '/dev/attache/d' },
          format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
        },
      ],
      technician: { listen: ['usb0'] },
    }),
  );
  const made = await attache(['firewall', '--print', '--config', config]);
  t.equal(made.code, 0, made.stderr);
  t.match(made.stdout, 'iifname "usb0" tcp dport 8080 accept');
  t.match(made.stdout, 'iifname "usb0" udp dport 67 accept');
  t.equal((made.stdout.match(/dport 67 accept/g) ?? []).length, 1, 'DHCP served on usb0 only');
});
