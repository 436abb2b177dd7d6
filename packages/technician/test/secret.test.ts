import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import t from 'tap';
import {
  loadOrCreateSecret,
  newSecret,
  readSecret,
  rotateSecret,
  secretMatches,
  technicianSecretPath,
} from '../src/index.js';

t.test('the secret is made once, owner-only, and read back the same', async (t) => {
  const path = technicianSecretPath(t.testdir());
  t.equal(await readSecret(path), undefined, 'no secret before the first start');
  const secret = await loadOrCreateSecret(path);
  t.match(secret, /^[A-HJKMNP-Z2-9]{4}(-[A-HJKMNP-Z2-9]{4}){3}$/, 'four groups of unambiguous symbols');
  t.equal(await loadOrCreateSecret(path), secret, 'a restart keeps it');
  t.equal((await stat(path)).mode & 0o777, 0o600, 'the file is 0600');
  t.equal((await stat(dirname(path))).mode & 0o777, 0o700, 'its directory is 0700');
});

t.test('rotating gives a new secret, still owner-only', async (t) => {
  const path = technicianSecretPath(t.testdir());
  const first = await loadOrCreateSecret(path);
  const second = await rotateSecret(path);
  t.not(second, first);
  t.equal(await readSecret(path), second);
  t.equal((await stat(path)).mode & 0o777, 0o600);
});

t.test('typing ignores case, dashes and spaces, nothing else', async (t) => {
  const secret = 'K7QD-2MXR-HV9A-TP4E';
  t.ok(secretMatches('k7qd 2mxr hv9a tp4e', secret));
  t.ok(secretMatches('K7QD2MXRHV9ATP4E', secret));
  t.notOk(secretMatches('K7QD-2MXR-HV9A-TP4F', secret));
  t.notOk(secretMatches('', secret));
  t.not(newSecret(), newSecret(), 'random each time');
});

t.test('a damaged secret file counts as no secret; an unreadable one is an error', async (t) => {
  const dir = t.testdir({ technician: { secret: 'short\n' }, blocked: { secret: {} } });
  t.equal(await readSecret(join(dir, 'technician', 'secret')), undefined);
  await t.rejects(readSecret(join(dir, 'blocked', 'secret')), { code: 'EISDIR' });
});
