import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSerialNumber, readSerialNumber } from '@attache/gateway';
import t from 'tap';
import {
  formatClaimStatus,
  formatProvisioning,
  type ProvisioningState,
  readProvisioning,
} from '../src/provisioning.js';

const now = Date.parse('2026-11-24T08:00:00Z');
const provisioned: ProvisioningState = {
  state: 'provisioned',
  at: '2026-11-24T06:40:12.345Z',
  message: 'provisioned from the boot partition; the bundle was removed from it',
  gatewayId: 'ward-3-gw-1',
  credential: 'device',
  certificate: { subject: 'CN=ward-3-gw-1', notAfter: 'Nov 22 06:00:00 2036 GMT', sha256: 'AB:CD' },
  errors: [],
};

t.test('a provisioned box names its certificate and when it ends', async (t) => {
  t.same(formatProvisioning(provisioned, now), [
    'provisioning: provisioned at 2026-11-24T06:40:12.345Z (device certificate)',
    '  certificate CN=ward-3-gw-1, valid until Nov 22 06:00:00 2036 GMT',
  ]);
  const soon = {
    ...provisioned,
    certificate: { subject: 'CN=gw', notAfter: 'Dec  4 08:00:00 2026 GMT', sha256: '' },
  };
  t.match(formatProvisioning(soon, now)[1], /EXPIRES in 10 d \(Dec {2}4 08:00:00 2026 GMT\): renew it/);
  const gone = {
    ...provisioned,
    certificate: { subject: 'CN=gw', notAfter: 'Nov  1 00:00:00 2026 GMT', sha256: '' },
  };
  t.match(formatProvisioning(gone, now)[1], /EXPIRED on .*the uplink cannot connect/);
  const odd = { ...provisioned, certificate: { subject: 'CN=gw', notAfter: 'someday', sha256: '' } };
  t.match(formatProvisioning(odd, now)[1], /end date unreadable \(someday\)/);
});

t.test('a refused bundle lists every problem; no bundle says what to put where', async (t) => {
  const failed: ProvisioningState = {
    ...provisioned,
    state: 'failed',
    certificate: null,
    errors: ['attache/device.key is missing', 'attache/config.json: /gateway/id: is required'],
  };
  t.same(formatProvisioning(failed, now), [
    'provisioning: FAILED at 2026-11-24T06:40:12.345Z: the bundle stays on the boot partition (attache/RESULT.txt)',
    '  attache/device.key is missing',
    '  attache/config.json: /gateway/id: is required',
  ]);
  t.same(formatProvisioning({ ...failed, state: 'unprovisioned', message: 'no bundle' }, now), [
    'provisioning: NOT PROVISIONED: no bundle',
  ]);
});

t.test('the state file: none is not an appliance; a damaged one is reported, never thrown', async (t) => {
  const dir = t.testdir({ 'junk.json': '{"state":', 'other.json': '{"state":"maybe"}' });
  t.equal(await readProvisioning(join(dir, 'none.json')), null);
  const junk = await readProvisioning(join(dir, 'junk.json'));
  t.match(junk, { state: 'unreadable', message: /is not valid JSON/ });
  t.same(formatProvisioning(junk as ProvisioningState), [`provisioning: state unknown: ${junk?.message}`]);
  t.match(await readProvisioning(join(dir, 'other.json')), {
    state: 'unreadable',
    message: /no known state/,
  });
  t.match(await readProvisioning(dir), { state: 'unreadable', message: /cannot be read \(EISDIR\)/ });
  const file = join(dir, 'ok.json');
  await writeFile(file, JSON.stringify(provisioned));
  t.same(await readProvisioning(file), provisioned);
});

t.test(
  'provisioning by claim: each state is one clear line, with the reason when there is one',
  async (t) => {
    const at = '2026-12-04T20:00:00.000Z';
    const base = { at, thingName: null, certificateId: null, reason: null } as const;
    t.same(formatClaimStatus({ state: 'unprovisioned', templateName: 'attache-fleet' }), [
      'fleet provisioning: NOT PROVISIONED yet: the next window provisions this box by claim (template attache-fleet); readings are cached meanwhile',
    ]);
    t.same(formatClaimStatus({ ...base, state: 'provisioning', step: 'key' }), [
      `fleet provisioning: PROVISIONING since ${at} (last step done: key)`,
    ]);
    t.same(
      formatClaimStatus({
        ...base,
        state: 'provisioning',
        step: 'certificate',
        reason: 'not connected within 40000 ms; retried in the next window',
      }),
      [
        `fleet provisioning: PROVISIONING since ${at} (last step done: certificate)`,
        '  not connected within 40000 ms; retried in the next window',
      ],
    );
    t.same(
      formatClaimStatus({
        ...base,
        state: 'provisioned',
        step: 'registered',
        thingName: 'attache-1',
        certificateId: 'ab',
      }),
      [`fleet provisioning: provisioned as attache-1 at ${at} (certificate ab)`],
    );
    t.same(formatClaimStatus({ ...base, state: 'provisioned', step: 'registered' }), [
      `fleet provisioning: provisioned as ? at ${at} (certificate kept)`,
    ]);
    t.same(
      formatClaimStatus({
        ...base,
        state: 'refused',
        step: 'certificate',
        reason: 'RegisterThing refused: x',
      }),
      [`fleet provisioning: REFUSED at ${at}: RegisterThing refused: x; retried in the next window`],
    );
    t.same(formatClaimStatus({ ...base, state: 'refused', step: 'started' }), [
      `fleet provisioning: REFUSED at ${at}: no reason given; retried in the next window`,
    ]);
  },
);

t.test('the serial number: the device tree, /proc/cpuinfo, or $ATTACHE_SERIAL_NUMBER', async (t) => {
  t.equal(parseSerialNumber('10000000a1b2c3d4\0'), '10000000a1b2c3d4', 'device-tree string');
  t.equal(
    parseSerialNumber(
      'processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000a1b2c3d4\nModel\t\t: Raspberry Pi 4\n',
    ),
    '10000000a1b2c3d4',
    '/proc/cpuinfo',
  );
  t.equal(parseSerialNumber('processor\t: 0\nmodel name\t: x86\n'), null, 'a PC has none');
  t.equal(parseSerialNumber(''), null);
  t.equal(parseSerialNumber('../../etc'), null, 'only letters and digits');
  t.equal(await readSerialNumber({ ATTACHE_SERIAL_NUMBER: 'abc123' }), 'abc123');
  const fromBoard = await readSerialNumber({});
  t.ok(fromBoard === null || /^[0-9A-Za-z]+$/.test(fromBoard), 'this machine: its serial or none');
});

t.test('a claim bundle: the claim is named, without end-date warnings, as it serves only once', async (t) => {
  t.same(
    formatProvisioning(
      {
        ...provisioned,
        credential: 'claim',
        certificate: { subject: 'CN=attache-claim', notAfter: 'Nov 25 06:00:00 2026 GMT', sha256: 'AB' },
      },
      now,
    ),
    [
      'provisioning: provisioned at 2026-11-24T06:40:12.345Z (claim certificate)',
      '  claim CN=attache-claim, used only until the box has provisioned itself',
    ],
  );
});
