import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { formatProvisioning, type ProvisioningState, readProvisioning } from '../src/provisioning.js';

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
