import { validateConfig } from '@attache/core';
import type { GatewayStatus } from '@attache/gateway';
import t from 'tap';
import { consoleScreen } from '../src/console-screen.js';

const config = (extra: Record<string, unknown> = {}) =>
  validateConfig({
    version: 1,
    gateway: { id: 'gw-7', dataDir: '/var/lib/attache/gateway' },
    devices: [
      {
        id: 'spo2-bed7',
        adapter: 'rs232',
        port: { path: '/dev/attache/bed7' },
        format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
      },
    ],
    ...extra,
  });

const status: GatewayStatus = {
  gatewayId: 'gw-7',
  running: true,
  startedAt: '2026-12-04T10:00:00.000Z',
  backlog: { records: 12, bytes: 3000, firstSeq: 1, lastSeq: 12, oldestCapturedAt: null, nextSeq: 13 },
  cache: { full: true, dropped: 0, quarantined: 0, lastCompactionAt: null },
  lastWindow: null,
  uplink: { configured: false, windowOpen: false, everySeconds: null },
  adapters: [
    {
      deviceId: 'spo2-bed7',
      adapter: 'rs232',
      state: 'disconnected',
      since: '2026-12-04T10:01:00.000Z',
      frames: 0,
      stored: 0,
      malformed: 0,
      refused: 0,
      lastError: { code: 'ATTACHE_PORT_NOT_OPEN', message: 'no such port /dev/attache/bed7' },
    },
  ],
};

const usb0 = [
  { address: '169.254.7.1', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: null },
  { address: 'fe80::1', netmask: 'ffff::', family: 'IPv6', mac: '', internal: false, cidr: null, scopeid: 3 },
] as NonNullable<ReturnType<typeof import('node:os').networkInterfaces>[string]>;

t.test(
  'a running gateway with the page on: devices, backlog, addresses, the URL and the secret',
  async (t) => {
    const text = consoleScreen({
      config: config({ technician: { listen: ['usb0'] } }),
      status,
      provisioning: 'provisioned',
      secret: 'K7QD-2MXR-HV9A-TP4E',
      interfaces: { lo: [], usb0 },
      now: new Date('2026-12-04T10:05:00Z'),
    }).join('\n');
    t.match(text, 'Attaché gateway gw-7        2026-12-04T10:05:00Z');
    t.match(text, 'Provisioning: provisioned');
    t.match(text, 'Backlog: 12 records (cache FULL)');
    t.match(text, 'Last window: none yet');
    t.match(
      text,
      'spo2-bed7  disconnected since 2026-12-04T10:01:00.000Z  stored 0  last error: no such port',
    );
    t.match(text, 'usb0 169.254.7.1, fe80::1');
    t.notMatch(text, /\blo\b/, 'loopback is not an address to reach');
    t.match(text, 'Technician page: plug a laptop into usb0 and open\n  http://169.254.7.1:8080/');
    t.match(text, 'Box secret: K7QD-2MXR-HV9A-TP4E');
  },
);

t.test('not running, no devices, the page off or without an address yet', async (t) => {
  const stopped = consoleScreen({
    config: config(),
    status: undefined,
    provisioning: undefined,
    secret: undefined,
    interfaces: {},
    now: new Date(),
  }).join('\n');
  t.match(stopped, 'Provisioning: no provisioning record');
  t.match(stopped, 'Gateway: NOT RUNNING');
  t.match(stopped, 'Technician page: off');
  const idle = consoleScreen({
    config: config({ technician: { listen: ['usb0'] } }),
    status: {
      ...status,
      adapters: [],
      lastWindow: {
        openedAt: 'a',
        closedAt: 'b',
        outcome: 'drained',
        records: 3,
        messages: 1,
        bytes: 9,
        firstSeq: 1,
        lastSeq: 3,
      },
    },
    provisioning: undefined,
    secret: undefined,
    interfaces: {},
    now: new Date(),
  }).join('\n');
  t.match(idle, 'Last window: drained at b, 3 records');
  t.match(idle, '  none configured');
  t.match(idle, '(no address yet: is the cable plugged in?)');
  t.match(idle, 'Box secret: (not made yet');
});
