// The root release installer and the root half of a rollback, run as on the appliance: in a private
// mount namespace laid out as the box (nothing of this machine changes): an `attache` user in a
// bind-mounted /etc/passwd and /etc/group; /opt/attache, /usr/local/lib/attache and /var/lib/attache
// on tmpfs, root's, with the image's release 1.0.0, the root-owned job-signing key and provisioning
// record; the installer the image ships (scripts/bundle-installer.mjs, built here) listening on a
// socket only root and attache's group may use, one installer per connection with the connection
// as its stdin and stdout, as attache-release-install.socket starts it (systemd-socket-activate
// --accept --inetd). The service's side is attache: it sends the request and the bundle's bytes
// (socat), and writes the trial marker the switch back reads.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { signJobDocument } from '@attache/jobs';
import t, { type Test } from 'tap';
import { canUnshareMounts, freeId, runFile as run } from './helpers/run-file.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const overlay = join(repo, 'image-build/overlay');
const thing = 'gw-box-1';
const now = Date.now();

const mountNamespaces = await canUnshareMounts();
const skip = !mountNamespaces
  ? 'needs root (the installer runs as root, the service as attache) and mount namespaces'
  : process.execPath !== '/usr/bin/node'
    ? `the box's Node is /usr/bin/node, not ${process.execPath}`
    : false;

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** One ustar header block (GNU tar will not write a `..` member). */
function header(name: string, type: string, size: number, link = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(type, 156, 'latin1');
  h.write(link, 157, 100);
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A release bundle; `extra` adds an entry of another type (a symlink, a path with `..`). */
function bundle(version: string, extra?: { name: string; type: string; link?: string }): Buffer {
  const bin = Buffer.from(`console.log('release ${version} ran as uid ' + process.getuid());\n`);
  const parts = [
    header('./packages/cli/dist/', '5', 0),
    header('./packages/cli/dist/bin.js', '0', bin.length),
    bin,
    Buffer.alloc(512 - bin.length),
    header('./packages/cli/dist/cli.cjs', '0', 0),
  ];
  if (extra) parts.push(header(extra.name, extra.type, 0, extra.link));
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

/** The bytes attache sends: the request line (the signed manifest), then the bundle. */
function request(
  version: string,
  content: Buffer,
  options: { signWith?: typeof privateKey; target?: string; expiresAt?: number; sent?: Buffer } = {},
): Buffer {
  const document = signJobDocument(
    {
      schemaVersion: 2,
      operation: 'software-update',
      version,
      artifact: { sha256: sha256(content), size: content.length, url: 'https://example.invalid/b.tgz' },
    },
    options.signWith ?? privateKey,
    { target: { thing: options.target ?? thing }, expiresAt: new Date(options.expiresAt ?? now + 3_600_000) },
  );
  const line = {
    jobId: `sw-${version}`,
    executionNumber: 1,
    manifest: document.manifest,
    signature: document.signature,
  };
  return Buffer.concat([Buffer.from(`${JSON.stringify(line)}\n`), options.sent ?? content]);
}

// The box, then the test's steps ($w/steps), in a clean environment (not this test runner's,
// whose NODE_OPTIONS hooks every Node).
const boxScript = `
set -e
w=$1 overlay=$2
mount --make-rprivate /
mount --bind "$w/passwd" /etc/passwd
mount --bind "$w/group" /etc/group
mount -t tmpfs -o mode=0755 tmpfs /opt
mount -t tmpfs -o mode=0755 tmpfs /usr/local/lib
mount -t tmpfs -o mode=0755 tmpfs /var/lib
lib=/usr/local/lib/attache
mkdir -p $lib/releases/1.0.0/packages/cli/dist /opt/attache/releases /var/lib/attache/trust /var/lib/attache/gateway/jobs
printf '// release 1.0.0\\n' > $lib/releases/1.0.0/packages/cli/dist/bin.js
printf '{"version":"1.0.0","installedAt":"image"}\\n' > $lib/releases/1.0.0/.release.json
cp "$w/attache-release-install.mjs" "$overlay/usr/local/lib/attache/attache-release-switch-back" \\
  "$overlay/usr/local/lib/attache/attache-code-cache-refresh" $lib/
ln -s $lib/releases/1.0.0 /opt/attache/releases/1.0.0
ln -s releases/1.0.0 /opt/attache/current
cp "$w/jobs-signing.pem" /var/lib/attache/trust/jobs-signing.pem
printf '{"state":"provisioned","gatewayId":"${thing}"}\\n' > /var/lib/attache/provisioning.json
chmod -R go-w /opt /usr/local/lib /var/lib/attache
chown -R attache:attache /var/lib/attache/gateway
chmod 0700 /var/lib/attache/gateway
mkdir -m 0750 "$w/run" && chgrp attache "$w/run"
sock=$w/run/release-install.sock
systemd-socket-activate --listen=$sock --accept --inetd \\
  /usr/bin/node $lib/attache-release-install.mjs </dev/null >/dev/null 2>"$w/installer.log" &
installer=$!
while [ ! -S $sock ]; do sleep 0.05; done
chgrp attache $sock
chmod 0660 $sock
# ask FILE: attache sends FILE on the socket and prints the answer.
ask() { setpriv --reuid=attache --regid=attache --init-groups -- socat -t 600 - UNIX-CONNECT:$sock < "$1"; echo; }
as_attache() { setpriv --reuid=attache --regid=attache --init-groups -- "$@"; }
state() { find /opt/attache $lib/releases -printf '%p %u:%g %m %l\\n' | sort; }
set +e
. "$w/steps"
kill $installer
`;

async function box(
  t: Test,
  steps: string,
  files: Record<string, Buffer> = {},
): Promise<{ out: string; log: string }> {
  const w = await mkdtemp(join(tmpdir(), 'attache-release-install-'));
  t.teardown(() => rm(w, { recursive: true, force: true }));
  await chmod(w, 0o755);
  const id = await freeId();
  await writeFile(
    join(w, 'passwd'),
    `${await readFile('/etc/passwd', 'utf8')}attache:x:${id}:${id}:Attache gateway:/var/lib/attache/gateway:/usr/sbin/nologin\n`,
  );
  await writeFile(join(w, 'group'), `${await readFile('/etc/group', 'utf8')}attache:x:${id}:\n`);
  await writeFile(join(w, 'jobs-signing.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  const built = await run(process.execPath, [
    join(repo, 'scripts/bundle-installer.mjs'),
    join(w, 'attache-release-install.mjs'),
  ]);
  t.equal(built.code, 0, built.stderr || "the image's installer is built");
  for (const [name, content] of Object.entries(files))
    await writeFile(join(w, name), content, { mode: 0o644 });
  await writeFile(join(w, 'steps'), steps);
  const ran = await run('unshare', [
    '-m',
    'env',
    '-i',
    `PATH=${process.env.PATH}`,
    'LANG=C.UTF-8',
    'sh',
    '-c',
    boxScript,
    'sh',
    w,
    overlay,
  ]);
  t.equal(ran.code, 0, ran.stderr || 'the namespace ran');
  return { out: ran.stdout, log: await readFile(join(w, 'installer.log'), 'utf8').catch(() => '') };
}

/** The answers printed between `== NAME` lines. */
function sections(out: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const part of out.split(/^== /m).slice(1)) {
    const newline = part.indexOf('\n');
    found[part.slice(0, newline)] = part.slice(newline + 1);
  }
  return found;
}

/** The installer's answer printed in a section; what was printed instead when it is no answer. */
function answerIn(section: string | undefined): Record<string, unknown> {
  try {
    return JSON.parse(section ?? '') as Record<string, unknown>;
  } catch {
    return { noAnswer: section };
  }
}

t.test(
  'attache asks, root installs the signed release root-owned and switches current',
  { skip },
  async (t) => {
    const content = bundle('1.1.0');
    const { out, log } = await box(
      t,
      `
echo "== answer"; ask "$w/good"
echo "== tree"; stat -c '%U:%G %a %n' $lib/releases/1.1.0 $lib/releases/1.1.0/packages/cli/dist/bin.js /opt/attache /opt/attache/releases
echo "== links"; readlink /opt/attache/current /opt/attache/previous /opt/attache/releases/1.1.0
echo "== refresh"; $lib/attache-code-cache-refresh /opt/attache /usr/bin/node
echo "== attache"
as_attache touch /opt/attache/x 2>&1 | sed 's/.*Permission denied.*/denied/'
as_attache ln -sfn /tmp /opt/attache/current 2>&1 | sed 's/.*Permission denied.*/denied/'
as_attache touch $lib/releases/1.1.0/packages/cli/dist/bin.js 2>&1 | sed 's/.*Permission denied.*/denied/'
echo "== again"; ask "$w/good"
`,
      { good: request('1.1.0', content) },
    );
    const s = sections(out);
    t.same(answerIn(s.answer), {
      ok: true,
      version: '1.1.0',
      release: 'releases/1.1.0',
      previous: 'releases/1.0.0',
    });
    t.match(
      s.tree,
      /^root:root 755 \/usr\/local\/lib\/attache\/releases\/1\.1\.0$/m,
      "the release is root's",
    );
    t.match(s.tree, /^root:root 644 .*\/1\.1\.0\/packages\/cli\/dist\/bin\.js$/m, "its files root's, 0644");
    t.match(s.tree, /^root:root 755 \/opt\/attache$/m);
    t.match(s.tree, /^root:root 755 \/opt\/attache\/releases$/m);
    t.equal(
      s.links,
      'releases/1.1.0\nreleases/1.0.0\n/usr/local/lib/attache/releases/1.1.0\n',
      'current, previous, the link',
    );
    t.match(
      s.refresh,
      /is root's alone: making its code cache with \/usr\/bin\/node .*\nrelease 1\.1\.0 ran as uid 0\n/,
      "the code cache refresh takes the installed release as root's alone (and current leads to it)",
    );
    t.equal(
      s.attache,
      'denied\ndenied\ndenied\n',
      'attache can change neither /opt/attache, current nor the release',
    );
    t.match(answerIn(s.again), { ok: true, note: 'already running' });
    t.match(log, /job sw-1\.1\.0 \(execution 1\): release 1\.1\.0, signature verified/);
    t.match(log, /release 1\.1\.0 installed \(2 files, \d+ bytes\) and switched to, from releases\/1\.0\.0/);
  },
);

t.test('what attache may send wrong is refused, and nothing changes', { skip }, async (t) => {
  const good = bundle('1.1.0');
  const other = bundle('1.1.1');
  const { privateKey: strangerKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const half = good.length >> 1;
  // The bytes change while root copies them (the service swapping its staged file mid-way): the
  // hash is of root's own copy, so it no longer matches. Same size, same signed manifest.
  const swapped = Buffer.concat([good.subarray(0, half), Buffer.alloc(good.length - half, 7)]);
  const cases: Record<string, Buffer> = {
    signature: request('1.1.0', good, { signWith: strangerKey }),
    thing: request('1.1.0', good, { target: 'gw-other' }),
    expired: request('1.1.0', good, { expiresAt: now - 60_000 }),
    downgrade: request('0.9.0', bundle('0.9.0')),
    symlink: request(
      '1.1.0',
      bundle('1.1.0', { name: './packages/cli/dist/cli.mjs', type: '2', link: '/tmp/evil.mjs' }),
    ),
    traversal: request('1.1.0', bundle('1.1.0', { name: './../../../../etc/cron.d/evil', type: '0' })),
    swapped: request('1.1.0', good, { sent: swapped }),
    other: request('1.1.0', good, { sent: other.subarray(0, Math.min(other.length, good.length)) }),
  };
  const steps = Object.keys(cases)
    .map((name) => `echo "== ${name}"; ask "$w/${name}"`)
    .join('\n');
  const { out } = await box(
    t,
    `state > "$w/before"\n${steps}\necho "== changed"; state | diff "$w/before" - && echo none\n`,
    cases,
  );
  const s = sections(out);
  const expected: Record<string, RegExp> = {
    signature: /^ATTACHE_SIGNATURE: bad signature/,
    thing: /^ATTACHE_JOB_REFUSED: the job is signed for thing gw-other, not for this gateway \(gw-box-1\)/,
    expired: /^ATTACHE_JOB_REFUSED: the job expired/,
    downgrade: /^ATTACHE_JOB_REFUSED: downgrade refused: 0\.9\.0 is older than the running 1\.0\.0/,
    symlink: /^ATTACHE_UNSAFE_FILE: .*a symlink \("\.\/packages\/cli\/dist\/cli\.mjs"\)/,
    traversal: /^ATTACHE_UNSAFE_FILE: .*a path leading out of the release/,
    swapped: /^ATTACHE_MALFORMED: wrong hash/,
    other: /^ATTACHE_MALFORMED: wrong (hash|size)/,
  };
  for (const [name, reason] of Object.entries(expected)) {
    const answer = answerIn(s[name]);
    t.equal(answer.ok, false, `${name}: refused`);
    t.match(`${answer.code}: ${answer.reason}`, reason, name);
  }
  t.equal(
    s.changed,
    'none\n',
    'the install root and the release store are as they were: nothing left behind',
  );
});

t.test(
  'the installer refuses to work from a key or record attache could have written',
  { skip },
  async (t) => {
    const { out } = await box(
      t,
      `chown attache /var/lib/attache/trust/jobs-signing.pem
echo "== key"; ask "$w/good"
chown root /var/lib/attache/trust/jobs-signing.pem; chown attache /var/lib/attache
echo "== record"; ask "$w/good"
echo "== current"; readlink /opt/attache/current
`,
      { good: request('1.1.0', bundle('1.1.0')) },
    );
    const s = sections(out);
    t.match(answerIn(s.key), { ok: false, reason: /jobs-signing\.pem must be owned by uid 0/ });
    t.match(answerIn(s.record), {
      ok: false,
      reason: /\/var\/lib\/attache must be owned by uid 0/,
    });
    t.equal(s.current, 'releases/1.0.0\n', 'nothing installed');
  },
);

t.test(
  'rollback: root switches back to its own previous, reading the marker as attache',
  { skip },
  async (t) => {
    const marker = (previous: string) =>
      `state=rolled-back\njob_id=sw-1.1.0\nexecution_number=1\nversion=1.1.0\nrelease=releases/1.1.0\nprevious=${previous}\nattempts=3\nreason=x\n`;
    const { out } = await box(
      t,
      `
ask "$w/good" >/dev/null
trial=/var/lib/attache/gateway/jobs/release-trial
back() { $lib/attache-release-switch-back /opt/attache $trial attache; readlink /opt/attache/current; }
# A marker that is a symlink to a file only root may read: attache's rights cannot read it.
printf '%s' "$(cat "$w/forged")" > /var/lib/attache/root-only && chmod 0600 /var/lib/attache/root-only
as_attache ln -s /var/lib/attache/root-only $trial
echo "== symlink"; back
as_attache rm $trial
# A trial still on: nothing to do.
as_attache sh -c "sed 's/^state=.*/state=trial/' '$w/forged' > $trial"
echo "== trial"; back
# Rolled back, naming another "previous": root takes its own.
as_attache cp "$w/forged" $trial
echo "== forged"; back
echo "== again"; back
`,
      { good: request('1.1.0', bundle('1.1.0')), forged: Buffer.from(marker('../../../tmp/evil')) },
    );
    const s = sections(out);
    t.equal(
      s.symlink,
      'releases/1.1.0\n',
      "a marker attache cannot read as itself changes nothing (root's file stays unread)",
    );
    t.equal(s.trial, 'releases/1.1.0\n', 'a trial still on is left to the guard');
    t.equal(
      s.forged,
      'attache-release-switch-back: releases/1.1.0 was rolled back: current is releases/1.0.0 again\nreleases/1.0.0\n',
      "switched back to root's previous, not the marker's",
    );
    t.equal(s.again, 'releases/1.0.0\n', 'once switched back, nothing more');
  },
);

t.test('rollback: a previous link that names no other release is left alone', { skip }, async (t) => {
  const { out } = await box(
    t,
    `
ask "$w/good" >/dev/null
trial=/var/lib/attache/gateway/jobs/release-trial
as_attache cp "$w/marker" $trial
back() { $lib/attache-release-switch-back /opt/attache $trial attache; readlink /opt/attache/current; }
ln -sfn ../../etc /opt/attache/previous
echo "== outside"; back
ln -sfn releases/9.9.9 /opt/attache/previous
echo "== missing"; back
rm /opt/attache/previous
echo "== none"; back
`,
    {
      good: request('1.1.0', bundle('1.1.0')),
      marker: Buffer.from('state=rolled-back\nrelease=releases/1.1.0\nprevious=releases/1.0.0\n'),
    },
  );
  const s = sections(out);
  t.match(
    s.outside,
    /previous \(\.\.\/\.\.\/etc\) names no other release: left as it is\nreleases\/1\.1\.0\n$/,
  );
  t.match(
    s.missing,
    /previous \(releases\/9\.9\.9\) names no other release: left as it is\nreleases\/1\.1\.0\n$/,
  );
  t.match(s.none, /has no previous release\nreleases\/1\.1\.0\n$/);
});
