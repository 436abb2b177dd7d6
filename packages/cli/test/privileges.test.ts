import { chown, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { asDataDirOwner, becomeDataDirOwner } from '../src/privileges.js';

const root = process.getuid?.() === 0;

t.test('a directory of root, or a process that is not root: nothing changes', async (t) => {
  const dir = t.testdir();
  if (root) await chown(dir, 0, 0);
  t.equal(await becomeDataDirOwner(join(dir, 'not', 'yet', 'created')), undefined);
  t.equal(await asDataDirOwner(dir, async (owner) => owner), undefined);
  t.equal(process.geteuid?.(), process.getuid?.());
});

t.test(
  "as root, the data dir's owner writes what lands in it, and root is back afterwards",
  { skip: root ? false : 'needs root' },
  async (t) => {
    const data = join(t.testdir(), 'data');
    await mkdir(data, { mode: 0o700 });
    await chown(data, 65534, 65534);
    const file = join(data, 'written');
    const owner = await asDataDirOwner(join(data, 'cache'), async (owner) => {
      t.equal(process.geteuid?.(), 65534, 'effective uid of the owner inside');
      await writeFile(file, 'x', { mode: 0o600 });
      return owner;
    });
    t.same(owner, { uid: 65534, gid: 65534 }, 'the nearest existing ancestor decides');
    t.match(await stat(file), { uid: 65534, gid: 65534 });
    t.equal(process.geteuid?.(), 0, 'root again');
    await t.rejects(
      asDataDirOwner(data, async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    t.equal(process.geteuid?.(), 0, 'root again after a failure too');
  },
);
