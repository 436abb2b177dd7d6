import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readJobSigningKey } from '../src/window-jobs.js';

const root = process.getuid?.() === 0;
const pem = '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n';

t.test(
  'the job-signing key is used only when the service cannot replace it',
  { skip: root ? false : 'needs root: the key must be root-owned, and chown needs root' },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'attache-jobkey-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const keys = join(dir, 'etc');
    await mkdir(keys, { mode: 0o755 });
    await chmod(keys, 0o755);
    const key = join(keys, 'jobs.pub.pem');
    await writeFile(key, pem, { mode: 0o644 });
    t.equal(await readJobSigningKey(key), pem, 'root-owned, 0644, in a root-owned 0755 directory');

    await chmod(key, 0o664);
    await t.rejects(
      readJobSigningKey(key),
      { code: 'ATTACHE_CONFIG_INVALID', message: /mode 664/ },
      'group-writable',
    );
    await chmod(key, 0o644);
    await chown(key, 65534, 65534);
    await t.rejects(
      readJobSigningKey(key),
      { code: 'ATTACHE_CONFIG_INVALID', issues: [{ path: '/jobs/publicKeyFile' }] },
      "owned by another user (the service's): it could write a key of its own",
    );
    await chown(key, 0, 0);
    await chown(keys, 65534, 65534);
    await t.rejects(
      readJobSigningKey(key),
      { message: /its directory/ },
      'in a directory the service owns: it could swap the file',
    );
    await chown(keys, 0, 0);
    await chmod(keys, 0o777);
    await t.rejects(
      readJobSigningKey(key),
      { message: /its directory .* mode 777/ },
      'in a world-writable directory',
    );
  },
);
