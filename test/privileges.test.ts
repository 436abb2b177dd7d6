// The privilege model on a real gateway: the service runs as an unprivileged user (here `nobody`,
// through setpriv), the technician's commands as root under umask 077, as on the appliance. Before
// commands switched to the data directory's owner, `cache rotate-key` left the key file root's
// (0600) and `status` left LevelDB's CURRENT unreadable: the service then failed with EACCES.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readdir, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { bin, type CommandResult, Stack, type StatusJson } from './helpers/stack.js';

// The processes this test starts run partly as other users: tap's per-process hooks (process info
// and coverage, which it adds to every child's NODE_OPTIONS) would write into the repository's .tap
// as those users and fail. They are not this test's subject: its children run without them.
const withoutTapHooks = ['env', '-u', 'NODE_OPTIONS', '-u', 'NODE_V8_COVERAGE'];

const service = 65534; // nobody
const stranger = 4242; // another local user, no passwd entry needed
const root = process.getuid?.() === 0;

/** `attache <args>` as root under umask 077, as a technician's shell on the appliance runs it. */
function asRoot(stack: Stack, ...args: string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      'sh',
      [
        '-c',
        'umask 077 && exec "$@"',
        'sh',
        ...withoutTapHooks,
        process.execPath,
        bin,
        ...args,
        '--config',
        stack.configPath,
      ],
      { timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) || 1 : 0, stdout, stderr }),
    );
  });
}

/** Polls `attache status --json` (as root) until the backlog holds `records`. */
async function backlogReaches(stack: Stack, records: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { code, stdout, stderr } = await asRoot(stack, 'status', '--json');
    if (code !== 0) throw new Error(`attache status failed: ${stderr}`);
    if ((JSON.parse(stdout) as StatusJson).backlog.records === records) return;
    if (Date.now() > deadline) throw new Error(`the backlog never reached ${records}: ${stdout}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Every path under `dir` whose owner is not `uid`. */
async function notOwnedBy(dir: string, uid: number): Promise<string[]> {
  const wrong: string[] = [];
  for (const entry of await readdir(dir, { recursive: true })) {
    const path = join(dir, entry);
    if ((await lstat(path)).uid !== uid) wrong.push(entry);
  }
  return wrong;
}

/** Connects to the control socket as `uid`; resolves with the error code, or 'connected'. */
function connectAs(uid: number, socket: string): Promise<string> {
  const script = `require('node:net').createConnection(${JSON.stringify(socket)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); });`;
  return new Promise((resolve) => {
    execFile(
      withoutTapHooks[0] as string,
      [...withoutTapHooks.slice(1), process.execPath, '-e', script],
      { uid, gid: uid },
      (_err, stdout) => resolve(stdout.trim()),
    );
  });
}

t.test(
  'commands run as root under umask 077 leave nothing the unprivileged service cannot read',
  { skip: root ? false : 'needs root: the service runs as another user and the commands as root' },
  async (t) => {
    const stack = await Stack.start(t);
    const data = join(stack.dir, 'data');
    await mkdir(data, { mode: 0o700 });
    // The service's files are its own, as tmpfiles.d and attache-provision leave them on the appliance.
    for (const path of [data, join(stack.dir, 'pki'), stack.configPath]) await chown(path, service, service);
    for (const entry of await readdir(join(stack.dir, 'pki'), { recursive: true })) {
      await chown(join(stack.dir, 'pki', entry), service, service);
    }
    await chmod(stack.dir, 0o755);
    await chown(await realpath(stack.pty.gatewayPath), service, service);
    const asService = [
      ...withoutTapHooks,
      'setpriv',
      `--reuid=${service}`,
      `--regid=${service}`,
      '--clear-groups',
    ];

    const gateway = stack.startGateway(asService);
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    for (let i = 0; i < 5; i++) await stack.device.sendReading();
    await backlogReaches(stack, 5);

    const socket = join(data, 'attache.sock');
    await chmod(data, 0o711); // let others reach the socket: its own mode must refuse them
    t.equal(await connectAs(stranger, socket), 'EACCES', 'another local user cannot talk to the gateway');
    t.equal(await connectAs(service, socket), 'connected', "the service's user can");
    await chmod(data, 0o700);

    const recipient = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = join(stack.dir, 'recipient.pub.pem');
    const priv = join(stack.dir, 'recipient.pem');
    await writeFile(pub, recipient.publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(priv, recipient.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const out = join(stack.dir, 'usb.attache');
    const running = await asRoot(stack, 'cache', 'export', '--out', out, '--recipient', pub);
    t.equal(running.code, 0, `export through the running gateway: ${running.stderr}`);
    t.equal((await lstat(out)).uid, 0, 'the export file is the invoking user’s (root may write a USB stick)');
    await gateway.stop();

    for (const args of [
      ['status', '--json'],
      ['cache', 'export', '--out', out, '--recipient', pub, '--force'],
      ['cache', 'import', out, '--key', priv],
      ['cache', 'signing-key'],
      ['cache', 'rotate-key'],
      ['files', 'list'],
      ['files', 'export', '--out', join(stack.dir, 'usb-files')],
      ['status'],
    ]) {
      const result = await asRoot(stack, ...args);
      t.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    }
    t.same(await notOwnedBy(data, service), [], "every file in the data dir is still the service's");

    const restarted = stack.startGateway(asService);
    await restarted.waitForLog((l) => l.msg === 'gateway started');
    await stack.device.sendReading();
    await backlogReaches(stack, 6);
    t.pass('the service starts, reads its backlog and stores new readings');
    t.notOk(
      restarted.logs.some((l) => l.level === 'fatal' || l.level === 60),
      'no fatal error on the restarted service',
    );
  },
);
