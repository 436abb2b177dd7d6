// The appliance image's cheap checks (issue 8), run in CI: shellcheck on the build scripts,
// systemd-analyze verify on the units, a strict syntax check of the udev rules, the linux-arm64
// prebuilds of every native module, and sd_notify through systemd-notify. A missing tool fails its
// test with what to install; nothing is skipped. The image build and boot test are `make image` and
// `make image-test` (image-build/README.md).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SystemdNotifier } from '@attache/gateway';
import t, { type Test } from 'tap';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('..', import.meta.url));
const imageBuild = join(repo, 'image-build');
const overlay = join(imageBuild, 'overlay');
const unitDir = join(overlay, 'usr/lib/systemd/system');

/** Runs a command; resolves with its exit code and output instead of rejecting. */
async function attempt(file: string, args: string[], env?: NodeJS.ProcessEnv) {
  try {
    const { stdout, stderr } = await run(file, args, { env, maxBuffer: 1 << 24 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') return { code: -1, output: `${file} is not installed` };
    return { code: Number(e.code), output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function requireTool(t: Test, tool: string, pkg: string): Promise<boolean> {
  const found = await attempt('sh', ['-c', `command -v ${tool}`]);
  if (found.code !== 0) t.fail(`${tool} is not installed: apt-get install ${pkg} (make deps installs it)`);
  return found.code === 0;
}

t.test('shellcheck: the build and on-box scripts are clean', async (t) => {
  if (!(await requireTool(t, 'shellcheck', 'shellcheck'))) return;
  const scripts = [
    ...(await readdir(imageBuild)).filter((f) => f.endsWith('.sh')).map((f) => join(imageBuild, f)),
    join(overlay, 'usr/local/sbin/attache-provision'),
    join(overlay, 'usr/local/sbin/attache-hotplug'),
    join(overlay, 'usr/local/lib/attache/attache-release-guard'),
    join(overlay, 'usr/local/lib/attache/attache-release-switch-back'),
    join(overlay, 'usr/local/lib/attache/attache-code-cache-refresh'),
  ];
  t.ok(scripts.length >= 7, `${scripts.length} scripts`);
  const result = await attempt('shellcheck', ['-x', '-P', 'SCRIPTDIR', ...scripts]);
  t.equal(result.code, 0, result.output || 'shellcheck: no findings');
});

// Executables the units run that exist only in the image (Debian packages rootfs.sh installs): verify
// runs against /bin/true for them, and the test checks that their package is in the image's list.
const imageOnly: Record<string, string> = {
  '/usr/bin/ssh-keygen': 'openssh-server',
  '/usr/sbin/nft': 'nftables',
  '/usr/bin/systemctl': 'systemd',
};
/** Programs of Debian's essential packages, which every Debian system (the image too) has. */
const essential: Record<string, string> = { '/usr/bin/test': 'coreutils', '/usr/bin/setpriv': 'util-linux' };
// Keys newer than Debian 12's systemd 252 (RestartSteps/RestartMaxDelaySec: systemd 254); the image
// runs 257, where make image-test verifies the installed units without this allowance.
const newerKeys = ['RestartSteps', 'RestartMaxDelaySec'];

t.test('systemd-analyze verify: the units are valid', async (t) => {
  if (!(await requireTool(t, 'systemd-analyze', 'systemd'))) return;
  const dir = await mkdtemp(join(tmpdir(), 'attache-units-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const rootfsScript = await readFile(join(imageBuild, 'rootfs.sh'), 'utf8');
  const units = await readdir(unitDir);
  for (const unit of units) {
    let text = await readFile(join(unitDir, unit), 'utf8');
    text = text.replace(/^(Exec\w+=[-@:+!]*)(\/\S+)/gm, (_all, prefix: string, path: string) => {
      if (path.startsWith('/usr/local/')) return prefix + join(overlay, path);
      if (path === '/usr/bin/node') return prefix + process.execPath;
      if (essential[path]) return prefix + path;
      const pkg = imageOnly[path];
      t.ok(pkg, `${unit}: ${path} is known`);
      t.match(
        rootfsScript,
        new RegExp(`\\b${pkg}\\b`),
        `${unit}: ${path} comes with ${pkg}, which the image installs`,
      );
      return `${prefix}/bin/true`;
    });
    await writeFile(join(dir, unit), text);
  }
  // A template is verified through an instance, as udev (or the socket, for each connection) starts it.
  await cp(join(dir, 'attache-hotplug@.service'), join(dir, 'attache-hotplug@ttyUSB0.service'));
  await cp(join(dir, 'attache-release-install@.service'), join(dir, 'attache-release-install@0.service'));
  const targets = units
    .filter((u) => !u.endsWith('@.service'))
    .concat('attache-hotplug@ttyUSB0.service', 'attache-release-install@0.service');
  const result = await attempt('systemd-analyze', [
    'verify',
    '--man=no',
    '--generators=no',
    ...targets.map((u) => join(dir, u)),
  ]);
  const problems = result.output
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter(
      (l) =>
        !newerKeys.some((k) => l.includes(`Unknown key '${k}'`) || l.includes(`Unknown key name '${k}'`)),
    );
  t.equal(result.code, 0, 'systemd-analyze verify exits 0');
  t.same(problems, [], 'no warnings beyond the keys newer than the host systemd');
  t.match(
    await readFile(join(unitDir, 'attache.service'), 'utf8'),
    /^Type=notify$/m,
    'attache.service is Type=notify',
  );
});

// systemd-analyze security's exposure (0 = locked down, 10 = unrestricted), measured offline on the
// unit files with the host's systemd; make image-test measures it again with the image's own.
const exposureLimits: Record<string, number> = {
  'attache.service': 2.0,
  'attache-provision.service': 5.0,
  'attache-hotplug@.service': 5.0,
  'attache-ssh-hostkeys.service': 5.0,
  'attache-firewall.service': 2.0,
  'attache-firewall-reload.service': 5.0,
  'attache-console.service': 2.0,
  'attache-code-cache.service': 2.0,
  'attache-code-cache-refresh.service': 2.0,
  'attache-release-install@.service': 2.0,
};

t.test('systemd-analyze security: the units of attache <= 2.0, every root helper <= 5.0', async (t) => {
  if (!(await requireTool(t, 'systemd-analyze', 'systemd'))) return;
  const services = (await readdir(unitDir)).filter((u) => u.endsWith('.service'));
  t.same(Object.keys(exposureLimits).sort(), services.sort(), 'every service has a limit');
  for (const [unit, limit] of Object.entries(exposureLimits)) {
    const result = await attempt('systemd-analyze', [
      'security',
      '--offline=true',
      '--no-pager',
      join(unitDir, unit),
    ]);
    const score = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(result.output)?.[1]);
    t.ok(score <= limit, `${unit}: ${score} (limit ${limit})`);
  }
});

// What runs the release's code: /opt/attache (where `current` leads), /usr/local/bin/attache (a
// symlink into it) and every unit's bin.js. Releases are root's now (the root release installer
// installs them), but a unit root starts by itself still runs none: it would run whatever release
// `current` names at that moment.
const releaseCode = /\/opt\/attache\b|\/usr\/local\/bin\/attache\b|\bbin\.js\b/;
// The one root command that may run a release: only one that is root's alone, checked component by
// component first (test/code-cache-refresh.test.ts).
const rootsAloneCheck = '/usr/local/lib/attache/attache-code-cache-refresh';
// Root commands that name /opt/attache to manage it, never to run what is there: the root release
// installer (the image's own bundle, run by Debian's Node) and the switch back of a rollback.
const installer = '/usr/bin/node /usr/local/lib/attache/attache-release-install.mjs ';
const switchBack = '/usr/local/lib/attache/attache-release-switch-back';

interface UnitCommand {
  unit: string;
  key: string;
  line: string;
  /** Runs as root: the unit names no other User=, or the line's `+`/`!` prefix restores root. */
  root: boolean;
  /** The unit's AmbientCapabilities= (what a command of another user starts with). */
  ambient: string[];
}

/** Every command line of every unit, with whom it runs as. */
async function unitCommands(): Promise<UnitCommand[]> {
  const commands: UnitCommand[] = [];
  for (const unit of await readdir(unitDir)) {
    const text = await readFile(join(unitDir, unit), 'utf8');
    const user = /^User=(.*)$/m.exec(text)?.[1]?.trim() ?? '';
    const ambient = (/^AmbientCapabilities=(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/).filter(Boolean);
    for (const [, key, prefix, line] of text.matchAll(/^(Exec\w+)=([-@:+!]*)(.*)$/gm)) {
      const root = user === '' || user === 'root' || /[+!]/.test(prefix as string);
      commands.push({ unit, key: key as string, line: line as string, root, ambient });
    }
  }
  return commands;
}

t.test("no root unit runs the release's code, which attache can change", async (t) => {
  const commands = await unitCommands();
  t.ok(commands.length >= 12, `${commands.length} command lines`);
  const rootScripts = new Set<string>();
  const managers = new Set<string>();
  for (const { unit, key, line, root, ambient } of commands) {
    const program = line.split(/\s+/)[0] as string;
    if (root && program === rootsAloneCheck) t.pass(`${unit} ${key}: only a release of root's alone`);
    if (root && (line.startsWith(installer) || program === switchBack)) {
      t.notMatch(
        line,
        /\/usr\/local\/bin\/attache\b|\bbin\.js\b/,
        `${unit} ${key}: manages releases, runs none`,
      );
      managers.add(line.startsWith(installer) ? installer.trim() : program);
    } else if (root && program !== rootsAloneCheck) {
      t.notMatch(line, releaseCode, `${unit} ${key} runs as root and names no release code: ${line}`);
      if (program.startsWith('/usr/local/')) rootScripts.add(program);
    }
    // A capability for the service's user (nft's CAP_NET_ADMIN) never reaches the release's code.
    if (!root && ambient.length > 0 && releaseCode.test(line)) {
      t.match(
        line,
        /^\/usr\/bin\/setpriv --inh-caps=-all --ambient-caps=-all -- /,
        `${unit} ${key}: the release's code starts without the unit's ambient capabilities`,
      );
    }
  }
  t.same(
    [...rootScripts].sort(),
    ['/usr/local/sbin/attache-provision'],
    'the scripts root units run (besides the check and the release managers)',
  );
  t.same(
    [...managers].sort(),
    [installer.trim(), switchBack].sort(),
    'the installer and the switch back run as root',
  );
  // The switch back runs no program from the install root: it reads links and renames one.
  const back = (await readFile(join(overlay, switchBack), 'utf8'))
    .split('\n')
    .filter((l) => !/^\s*#/.test(l));
  for (const l of back.filter((l) => l.includes('$root'))) {
    t.match(
      l,
      /^\s*(current=\$\(readlink "\$root\/current"\)|previous=\$\(readlink "\$root\/previous"\)|link=\$root\/\.current\.switch-back\.\$\$|if \[ "\$ok" != yes \] \|\| \[ ! -d "\$root\/\$previous" \]|if ! \{ ln -sfn "\$previous" "\$link" && mv -T "\$link" "\$root\/current"; \}; then|sync "\$root"|.*say ".*"|root=\$\{1:\?.*\})/,
      `${switchBack}: only reads and switches links: ${l.trim()}`,
    );
  }
  t.match(
    back.join('\n'),
    /setpriv --reuid="\$user" --regid="\$user" --clear-groups --inh-caps=-all -- head -c 4096/,
    "the service's marker is read with the service's rights",
  );
  // A root script runs the release's code only as attache, through setpriv.
  for (const script of rootScripts) {
    const text = await readFile(join(overlay, script), 'utf8');
    t.match(
      text,
      /^as_attache\(\) \{\n {2}setpriv --reuid=attache --regid=attache --init-groups --inh-caps=-all --no-new-privs -- "\$@"\n\}$/m,
      `${script}: as_attache runs a command as attache`,
    );
    const code = text.split('\n').filter((l) => !/^\s*#/.test(l) && releaseCode.test(l));
    t.ok(code.length > 0, `${script} runs release code: ${code.length} lines`);
    for (const l of code) {
      t.match(l, /\bas_attache \/usr\/local\/bin\/attache /, `${script}: as attache: ${l.trim()}`);
    }
  }
  // apt runs its hooks as root.
  const hook = await readFile(join(overlay, 'etc/apt/apt.conf.d/80attache-code-cache'), 'utf8');
  const hookLines = hook.split('\n').filter((l) => !l.startsWith('//'));
  t.same(
    hookLines.filter((l) => releaseCode.test(l)),
    [],
    "apt's hook only starts the refresh unit",
  );
});

t.test('udev rules: strict syntax check', async (t) => {
  const lint = join(repo, 'udev-rules/udev-lint.mjs');
  const rules = (await readdir(join(repo, 'udev-rules'))).filter((f) => f.endsWith('.rules'));
  t.ok(rules.length > 0, 'there are rules files');
  const ours = await attempt(process.execPath, [lint, ...rules.map((f) => join(repo, 'udev-rules', f))]);
  t.equal(ours.code, 0, ours.output || 'our rules pass');

  const dir = t.testdir({
    'bad.rules': [
      'KERNEL="ttyUSB0", SYMLINK+="/dev/x"',
      'GOTO="nowhere"',
      'SUBSYSTEM=="tty" GROUP="dialout"',
      'MODE=="0660", IMPORT{builtin}="no_such_builtin"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell-style substitution udev does not know
      'ENV{X}="$env{}", SYMLINK+="a-${X}",',
      '',
    ].join('\n'),
  });
  const bad = await attempt(process.execPath, [lint, join(dir, 'bad.rules')]);
  t.equal(bad.code, 1, 'a broken file fails');
  for (const problem of [
    'bad.rules:1: KERNEL cannot be assigned',
    'bad.rules:1: SYMLINK names are relative to /dev',
    'bad.rules:2: GOTO "nowhere" has no LABEL',
    'bad.rules:3: cannot parse',
    'bad.rules:4: MODE cannot be matched',
    'bad.rules:4: unknown builtin',
    'bad.rules:5: $env needs a {name}',
    'bad.rules:5: "${" is not a udev substitution',
    'bad.rules:5: trailing comma',
  ]) {
    t.match(bad.output, problem, problem);
  }

  // The parser must not reject real rules: every rules file udev itself ships passes.
  if (!(await requireTool(t, 'udevadm', 'udev'))) return;
  const system = (await readdir('/lib/udev/rules.d')).filter((f) => f.endsWith('.rules'));
  const real = await attempt(process.execPath, [lint, ...system.map((f) => join('/lib/udev/rules.d', f))]);
  t.equal(
    real.code,
    0,
    `${system.length} rules files of this host's udev pass${real.output ? `: ${real.output}` : ''}`,
  );
  const verify = await attempt('udevadm', ['verify', '--help']);
  if (verify.code === 0) {
    const result = await attempt('udevadm', ['verify', ...rules.map((f) => join(repo, 'udev-rules', f))]);
    t.equal(result.code, 0, result.output || 'udevadm verify passes');
  } else {
    t.comment('this udevadm has no verify (systemd < 253): the strict parser above is the check');
  }
});

t.test("apt's hook after every dpkg run starts the code cache refresh and never fails apt", async (t) => {
  if (!(await requireTool(t, 'apt-config', 'apt'))) return;
  const conf = join(overlay, 'etc/apt/apt.conf.d/80attache-code-cache');
  const dump = await attempt('apt-config', ['-c', conf, 'dump', 'DPkg::Post-Invoke']);
  t.equal(dump.code, 0, 'apt reads the file');
  const hook = /^DPkg::Post-Invoke:: "(.*attache-code-cache-refresh\.service.*)";$/m.exec(dump.output)?.[1];
  t.equal(
    hook,
    'systemctl --no-block start attache-code-cache-refresh.service >/dev/null 2>&1 || true',
    'it starts the refresh without waiting for it',
  );
  // Here systemd does not run (or has no such unit), as in the image build's chroot: apt goes on.
  const ran = await attempt('sh', ['-c', hook ?? 'false']);
  t.equal(ran.code, 0, 'exit 0 where the unit cannot be started');
});

t.test('native modules: the production tree carries linux-arm64 prebuilds', async (t) => {
  const check = join(imageBuild, 'check-prebuilds.mjs');
  const result = await attempt(process.execPath, [check, join(repo, 'node_modules'), 'linux', 'arm64']);
  t.equal(result.code, 0, result.output);
  for (const name of ['classic-level', '@serialport/bindings-cpp', 'aws-crt']) {
    t.match(result.output, new RegExp(`^ok ${name} \\S*linux-arm64\\S*\\.node$`, 'm'), `${name} has one`);
  }

  // Pruning as the image build does keeps exactly the arm64 glibc binaries, and the check still passes.
  const dir = await mkdtemp(join(tmpdir(), 'attache-prebuilds-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const name of ['classic-level', '@serialport/bindings-cpp', 'aws-crt']) {
    await cp(join(repo, 'node_modules', name), join(dir, name), { recursive: true });
  }
  const pruned = await attempt(process.execPath, [
    join(imageBuild, 'prune-prebuilds.mjs'),
    dir,
    'linux',
    'arm64',
  ]);
  t.equal(pruned.code, 0, pruned.output);
  const left = (await attempt('find', [dir, '-name', '*.node'])).output.trim().split('\n').sort();
  t.equal(left.length, 3, `three binaries left: ${left.join(', ')}`);
  t.ok(
    left.every((f) => /linux-arm64(-glibc)?\//.test(f) && !f.includes('.musl.')),
    'all of them linux-arm64 glibc',
  );
  t.equal((await attempt(process.execPath, [check, dir])).code, 0, 'the pruned tree passes the check');

  // A native module without an arm64 build fails the check, by name.
  await rm(join(dir, 'classic-level/prebuilds/linux-arm64'), { recursive: true });
  const missing = await attempt(process.execPath, [check, dir]);
  t.equal(missing.code, 1, 'fails');
  t.match(missing.output, /^missing classic-level: no linux-arm64 glibc prebuild$/m);
});

/** A unix datagram socket standing in for systemd's notify socket; one line per datagram. */
async function notifySocket(t: Test, path: string): Promise<{ messages: string[]; next(): Promise<string> }> {
  const script = [
    'import socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.bind(sys.argv[1])',
    'print("listening", flush=True)',
    // recv() takes no ancillary data, so the kernel closes the barrier fd systemd-notify sends,
    // which is what systemd does once it has processed the message.
    'while True: print(s.recv(4096).decode().replace("\\n", " ").strip(), flush=True)',
  ].join('\n');
  const child: ChildProcess = spawn('python3', ['-c', script, path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    child.kill();
  });
  const messages: string[] = [];
  const waiters: Array<() => void> = [];
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the notify socket stand-in exited (${code})`)));
    lines.once('line', () => resolve());
  });
  lines.on('line', (line) => {
    // systemd-notify follows each message with BARRIER=1 and waits until that fd is closed.
    if (line === 'BARRIER=1') return;
    messages.push(line);
    waiters.shift()?.();
  });
  let read = 0;
  return {
    messages,
    next: async () => {
      if (read >= messages.length) await new Promise<void>((resolve) => waiters.push(resolve));
      return messages[read++] as string;
    },
  };
}

t.test('sd_notify through systemd-notify: ready, status, stopping, watchdog', async (t) => {
  if (!(await requireTool(t, 'systemd-notify', 'systemd'))) return;
  if (!(await requireTool(t, 'python3', 'python3'))) return;
  // A short path: unix socket paths are limited to 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'attache-notify-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socket = await notifySocket(t, join(dir, 'notify.sock'));
  const warnings: unknown[] = [];
  const logger = {
    fatal: () => {},
    error: () => {},
    warn: (b: unknown) => warnings.push(b),
    info: () => {},
    debug: () => {},
    trace: () => {},
    child: () => logger,
    isLevelEnabled: () => true,
  };
  const env = { ...process.env, NOTIFY_SOCKET: join(dir, 'notify.sock'), WATCHDOG_USEC: '400000' };
  const notifier = new SystemdNotifier({ env, pid: 4242, logger });
  t.ok(notifier.enabled);
  t.equal(notifier.watchdogIntervalMs, 200, 'pings at half of WATCHDOG_USEC');

  t.equal(await notifier.ready(), true, 'ready() resolves true once sent');
  const ready = await socket.next();
  t.match(ready, /READY=1/);
  t.match(ready, /MAINPID=4242/, 'announces the gateway as the main process (--pid)');

  t.equal(await notifier.status('running'), false, 'the STATUS= line ready() sent is not sent again');
  t.equal(await notifier.status('1/2 devices connected, backlog 12 records'), true);
  t.match(await socket.next(), /STATUS=1\/2 devices connected, backlog 12 records/);
  t.equal(await notifier.status('1/2 devices connected, backlog 12 records'), false, 'unchanged: not sent');

  t.equal(notifier.startWatchdog(), true, 'the watchdog starts');
  t.equal(notifier.startWatchdog(), true, 'starting it twice keeps one timer');
  t.match(await socket.next(), /WATCHDOG=1/);
  t.match(await socket.next(), /WATCHDOG=1/, 'and pings again');
  notifier.stopWatchdog();
  t.equal(await notifier.stopping(), true);
  let last = await socket.next();
  while (!last.includes('STOPPING')) last = await socket.next();
  t.match(last, /STOPPING=1/);
  t.same(warnings, [], 'nothing logged');

  const broken = new SystemdNotifier({ env, command: join(dir, 'no-such-systemd-notify'), logger });
  t.equal(await broken.ready(), false, 'a failing systemd-notify resolves false');
  t.equal(warnings.length, 1, 'and is logged');
});

t.test('attache run under systemd: READY=1 with a STATUS= line of devices and backlog', async (t) => {
  if (!(await requireTool(t, 'systemd-notify', 'systemd'))) return;
  if (!(await requireTool(t, 'python3', 'python3'))) return;
  const dir = await mkdtemp(join(tmpdir(), 'attache-status-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socket = await notifySocket(t, join(dir, 'notify.sock'));
  const config = join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-status', dataDir: join(dir, 'data') },
      devices: [
        {
          id: 'spo2-bed1',
          adapter: 'rs232',
          port: { path: join(dir, 'unplugged') },
          format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
        },
      ],
    }),
  );
  const gateway = spawn(
    process.execPath,
    [join(repo, 'packages/cli/dist/bin.js'), 'run', '--config', config],
    {
      stdio: 'ignore',
      env: { ...process.env, NOTIFY_SOCKET: join(dir, 'notify.sock') },
    },
  );
  t.teardown(() => gateway.kill('SIGKILL'));
  let ready = await socket.next();
  while (!ready.includes('READY=1')) ready = await socket.next();
  t.match(ready, /STATUS=0\/1 devices connected, backlog 0 records/, 'what systemctl status shows');
  gateway.kill('SIGTERM');
});

t.test('sd_notify: nothing is sent outside systemd or for another watchdog pid', async (t) => {
  const outside = new SystemdNotifier({ env: {}, command: '/nonexistent' });
  t.equal(outside.enabled, false);
  t.equal(outside.watchdogIntervalMs, null);
  t.equal(await outside.ready(), false, 'no NOTIFY_SOCKET: not sent (and nothing spawned)');
  t.equal(outside.startWatchdog(), false, 'no watchdog');
  const other = new SystemdNotifier({
    env: { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1' },
    pid: 2,
  });
  t.equal(other.watchdogIntervalMs, null, 'WATCHDOG_PID names another process');
  const defaults = new SystemdNotifier();
  t.equal(defaults.enabled, Boolean(process.env.NOTIFY_SOCKET), 'reads process.env by default');
});

t.test('provisioning: the bundle config is pointed at the appliance paths and still validates', async (t) => {
  const dir = t.testdir({
    'config.json': JSON.stringify({
      version: 1,
      gateway: { id: 'gw-7', dataDir: '/somewhere/else' },
      devices: [
        {
          id: 'spo2-bed1',
          adapter: 'rs232',
          port: { path: '/dev/attache/ftdi-A10K1-if00' },
          format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
        },
      ],
      uplink: {
        endpoint: 'example.iot.eu-west-1.amazonaws.com',
        certFile: 'device.crt',
        keyFile: 'device.key',
      },
    }),
  });
  const helper = join(overlay, 'usr/local/lib/attache/provision.mjs');
  const out = join(dir, 'out.json');
  const rewritten = await attempt(process.execPath, [
    helper,
    'config',
    join(dir, 'config.json'),
    out,
    'device',
    'ca',
  ]);
  t.equal(rewritten.code, 0, rewritten.output);
  t.equal(rewritten.output.trim(), 'gw-7', 'prints the gateway id');
  const config = JSON.parse(await readFile(out, 'utf8'));
  t.equal(config.gateway.dataDir, '/var/lib/attache/gateway');
  t.equal(config.uplink.certFile, '/run/credentials/attache.service/uplink_device.crt');
  t.equal(config.uplink.keyFile, '/run/credentials/attache.service/uplink_device.key');
  t.equal(config.uplink.caFile, '/run/credentials/attache.service/uplink_ca.pem');
  const cli = join(repo, 'packages/cli/dist/bin.js');
  const outside = await attempt(process.execPath, [cli, 'config', 'validate', '--config', out]);
  t.equal(outside.code, 78, 'outside the service, its credentials do not exist: the check says so');
  t.match(
    outside.output,
    'uplink_device.key: file not found (systemd provides it only while the service runs)',
  );

  // attache-provision validates offline (openssl checks the bundle's files): the service's files
  // are warnings there, every other problem still refuses the bundle.
  const offline = await attempt(process.execPath, [cli, 'config', 'validate', '--offline', '--config', out]);
  t.equal(offline.code, 0, offline.output);
  t.match(offline.output, 'uplink_device.key: file not found');

  await writeFile(join(dir, 'broken.json'), '{ not json');
  const broken = await attempt(process.execPath, [helper, 'config', join(dir, 'broken.json'), out, 'device']);
  t.equal(broken.code, 1);
  t.match(broken.output, /not valid JSON/);

  const state = join(dir, 'provisioning.json');
  await mkdir(dir, { recursive: true });
  const wrote = await attempt('sh', [
    '-c',
    'umask 077 && exec "$@"',
    'sh',
    process.execPath,
    helper,
    'state',
    state,
    'failed',
    'provisioning failed',
    'errors=a\nb',
  ]);
  t.equal(wrote.code, 0, wrote.output);
  const report = JSON.parse(await readFile(state, 'utf8'));
  t.match(report, { state: 'failed', message: 'provisioning failed', errors: ['a', 'b'], certificate: null });
  t.match(report.at, /^\d{4}-\d\d-\d\dT/);
  t.equal(
    (await stat(state)).mode & 0o777,
    0o644,
    "readable by the service's user under the unit's umask 077",
  );

  // The thing and its groups as provisioned, for the root release installer.
  await writeFile(join(dir, 'groups.json'), JSON.stringify({ jobs: { thingGroups: ['ward4', 'icu', 7] } }));
  const groups = await attempt(process.execPath, [helper, 'groups', join(dir, 'groups.json')]);
  t.equal(groups.output, 'ward4,icu\n', "the config's thing groups");
  await writeFile(join(dir, 'none.json'), '{}');
  t.equal((await attempt(process.execPath, [helper, 'groups', join(dir, 'none.json')])).output, '\n');
  await attempt(process.execPath, [
    helper,
    'state',
    state,
    'provisioned',
    'ok',
    'gatewayId=gw-7',
    'thingGroups=ward4,icu',
  ]);
  t.match(JSON.parse(await readFile(state, 'utf8')), { gatewayId: 'gw-7', thingGroups: ['ward4', 'icu'] });
});

t.test(
  'provisioning: the result on the card names the technician page, and its secret is made for it',
  async (t) => {
    const base = {
      version: 1,
      gateway: { id: 'gw-7', dataDir: join(t.testdirName, 'data') },
      devices: [
        {
          id: 'spo2-bed1',
          adapter: 'rs232',
          port: { path: '/dev/attache/ftdi-A10K1-if00' },
          format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
        },
      ],
    };
    const dir = t.testdir({
      'page.json': JSON.stringify({
        ...base,
        technician: { listen: ['no-such0', 'lo', '169.254.7.1', 'fe80::1'], port: 8090 },
      }),
      'off.json': JSON.stringify(base),
    });
    const helper = join(overlay, 'usr/local/lib/attache/provision.mjs');
    const page = await attempt(process.execPath, [helper, 'page', join(dir, 'page.json')]);
    t.equal(page.code, 0, page.output);
    t.same(page.output.trim().split('\n'), [
      'http://<no-such0 address>:8090/ (no-such0 has no address yet)',
      'http://127.0.0.1:8090/ (lo)',
      'http://169.254.7.1:8090/',
      'http://[fe80::1]:8090/',
    ]);
    // attache-provision.service allows only AF_UNIX sockets: reading the interfaces (a netlink
    // socket) fails there, as this preload makes it fail here.
    await writeFile(
      join(dir, 'no-netlink.cjs'),
      "require('node:os').networkInterfaces = () => { throw new Error('uv_interface_addresses returned Unknown system error 97'); };\n",
    );
    const sandboxed = await attempt(process.execPath, [
      '--require',
      join(dir, 'no-netlink.cjs'),
      helper,
      'page',
      join(dir, 'page.json'),
    ]);
    t.equal(sandboxed.code, 0, sandboxed.output);
    t.same(
      sandboxed.output.trim().split('\n'),
      [
        'http://<no-such0 address>:8090/ (no-such0 has no address yet)',
        'http://<lo address>:8090/ (lo has no address yet)',
        'http://169.254.7.1:8090/',
        'http://[fe80::1]:8090/',
      ],
      'the page is still listed where the interfaces cannot be read',
    );
    const off = await attempt(process.execPath, [helper, 'page', join(dir, 'off.json')]);
    t.same([off.code, off.output], [0, ''], 'nothing when the page is off: no result file is written');
    // attache-provision then asks the CLI for the secret, as here: made when there is none, 0600.
    const cli = join(repo, 'packages/cli/dist/bin.js');
    const secret = await attempt(process.execPath, [
      cli,
      'technician',
      'secret',
      '--config',
      join(dir, 'page.json'),
    ]);
    t.equal(secret.code, 0, secret.output);
    t.match(secret.output.trim(), /^[A-Z0-9]{4}(-[A-Z0-9]{4}){3}$/);
    const file = join(dir, 'data', 'technician', 'secret');
    t.equal((await readFile(file, 'utf8')).trim(), secret.output.trim());
    t.equal((await stat(file)).mode & 0o777, 0o600);
  },
);

t.test(
  'provisioning: a claim bundle is the same for the fleet; each box names itself by its serial',
  async (t) => {
    const base = {
      version: 1,
      gateway: { id: 'attache-{serial}' },
      devices: [
        {
          id: 'spo2-bed1',
          adapter: 'rs232',
          port: { path: '/dev/attache/ftdi-A10K1-if00' },
          format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
        },
      ],
      uplink: {
        endpoint: 'example.iot.eu-west-1.amazonaws.com',
        certFile: 'unused.crt',
        keyFile: 'unused.key',
        provisioning: {
          claimCertFile: 'claim.crt',
          claimKeyFile: 'claim.key',
          templateName: 'attache-fleet',
        },
      },
      jobs: { publicKeyFile: 'jobs.pem' },
    };
    const dir = t.testdir({
      'config.json': JSON.stringify(base),
      'fixed-id.json': JSON.stringify({ ...base, gateway: { id: 'gw-7' } }),
      'no-template.json': JSON.stringify({ ...base, uplink: { ...base.uplink, provisioning: undefined } }),
      'no-jobs.json': JSON.stringify({ ...base, jobs: undefined }),
    });
    const helper = join(overlay, 'usr/local/lib/attache/provision.mjs');
    const out = join(dir, 'out.json');
    const rewrite = (file: string, serial: string, ...flags: string[]) =>
      attempt(process.execPath, [helper, 'config', join(dir, file), out, 'claim', ...flags], {
        ...process.env,
        ATTACHE_SERIAL_NUMBER: serial,
      });
    const rewritten = await rewrite('config.json', '10000000a1b2c3d4', 'jobs-key', 'export-key');
    t.equal(rewritten.code, 0, rewritten.output);
    t.equal(rewritten.output.trim(), 'attache-10000000a1b2c3d4', 'the gateway id is the serial number');
    const config = JSON.parse(await readFile(out, 'utf8'));
    t.match(config.uplink, {
      certFile: '/var/lib/attache/gateway/identity/device.crt',
      keyFile: '/var/lib/attache/gateway/identity/device.key',
      provisioning: {
        claimCertFile: '/var/lib/attache/gateway/identity/claim.crt',
        claimKeyFile: '/var/lib/attache/gateway/identity/claim.key',
        templateName: 'attache-fleet',
      },
    });
    t.equal(config.jobs.publicKeyFile, '/var/lib/attache/trust/jobs-signing.pem');
    t.equal(config.cache.exportRecipientFile, '/var/lib/attache/trust/export-recipient.pem');
    const cli = join(repo, 'packages/cli/dist/bin.js');
    // As attache-provision checks it: offline, the files it names exist only on the box.
    const valid = await attempt(process.execPath, [cli, 'config', 'validate', '--offline', '--config', out]);
    t.equal(valid.code, 0, valid.output);

    const other = await rewrite('config.json', '10000000ffff0002');
    t.equal(other.output.trim(), 'attache-10000000ffff0002', 'another box, another thing, same bundle');
    const refusals: [string, string, RegExp][] = [
      ['fixed-id.json', '1', /gateway\.id must contain \{serial\}/],
      ['no-template.json', '1', /needs uplink\.provisioning/],
      ['config.json', 'not a serial!', /no serial number/],
    ];
    for (const [file, serial, reason] of refusals) {
      const refused = await rewrite(file, serial);
      t.equal(refused.code, 1, file);
      t.match(refused.output, reason);
    }
    const noJobs = await rewrite('no-jobs.json', '1', 'jobs-key');
    t.match(noJobs.output, /jobs-signing\.pem is in the bundle but the config has no "jobs" section/);
  },
);

t.test('the unit lets the service rewrite its config but not the trust anchors', async (t) => {
  const unit = await readFile(join(unitDir, 'attache.service'), 'utf8');
  const writable = /^ReadWritePaths=(.*)$/m.exec(unit)?.[1]?.split(/\s+/) ?? [];
  t.ok(/^ProtectSystem=strict$/m.test(unit));
  t.ok(writable.includes('/var/lib/attache/config'), 'config-update jobs can write the config folder');
  t.notOk(
    writable.some((p) => '/var/lib/attache/trust'.startsWith(p)),
    'the trust anchors are outside every writable path',
  );
  const tmpfiles = await readFile(join(overlay, 'usr/lib/tmpfiles.d/attache.conf'), 'utf8');
  t.match(tmpfiles, /^d \/var\/lib\/attache\/config +0700 attache +attache/m);
  t.match(tmpfiles, /^d \/var\/lib\/attache\/trust +0755 root +root/m);
  t.match(tmpfiles, /^d \/var\/lib\/attache\/gateway\/identity +0700 attache +attache/m);
});

t.test(
  "software updates: the service cannot write the releases; root installs them with the image's code",
  async (t) => {
    const service = await readFile(join(unitDir, 'attache.service'), 'utf8');
    const writable = /^ReadWritePaths=(.*)$/m.exec(service)?.[1]?.split(/\s+/) ?? [];
    t.notOk(
      writable.some((p) => '/opt/attache'.startsWith(p) || '/usr/local/lib/attache/releases'.startsWith(p)),
      'neither /opt/attache nor the release store is writable by the service',
    );
    const socket = await readFile(join(unitDir, 'attache-release-install.socket'), 'utf8');
    const listen = /^ListenStream=(.*)$/m.exec(socket)?.[1];
    t.match(
      service,
      new RegExp(`^Environment=.*\\bATTACHE_RELEASE_INSTALLER=${listen}\\b`, 'm'),
      'the service asks on that socket',
    );
    t.match(socket, /^SocketUser=root$/m);
    t.match(socket, /^SocketGroup=attache$/m);
    t.match(socket, /^SocketMode=0660$/m, 'only root and attache may connect');
    t.match(socket, /^Accept=yes$/m);
    t.match(socket, /^MaxConnections=1$/m, 'one install at a time');
    const instance = await readFile(join(unitDir, 'attache-release-install@.service'), 'utf8');
    t.match(instance, /^StandardInput=socket$/m);
    t.match(instance, /^ReadWritePaths=\/opt\/attache \/usr\/local\/lib\/attache\/releases$/m);
    t.match(instance, /^CapabilityBoundingSet=$/m, 'root without capabilities');
    const tmpfiles = await readFile(join(overlay, 'usr/lib/tmpfiles.d/attache.conf'), 'utf8');
    t.match(tmpfiles, /^z \/opt\/attache +0755 root +root/m);
    t.match(tmpfiles, /^z \/opt\/attache\/releases +0755 root +root/m);
    t.match(tmpfiles, /^z \/usr\/local\/lib\/attache\/releases +0755 root +root/m);
    t.notMatch(
      tmpfiles,
      /^\w \/(opt|usr)\/\S* +\d+ attache/m,
      "nothing under /opt or /usr is the service user's",
    );
    // The image build makes the installer and puts it outside every release.
    t.match(
      await readFile(join(imageBuild, 'stage-app.sh'), 'utf8'),
      /scripts\/bundle-installer\.mjs" "\$dest\/attache-release-install\.mjs"/,
    );
    const customize = await readFile(join(imageBuild, 'customize.sh'), 'utf8');
    t.match(
      customize,
      /mv "\$root\/opt\/attache\/attache-release-install\.mjs" "\$root\/usr\/local\/lib\/attache\/attache-release-install\.mjs"/,
    );
    t.match(customize, /systemctl enable [^\n]*\\\n[^\n]*\battache-release-install\.socket\b/);
    // Root runs it: it loads nothing at run time but Node's own modules and starts no program.
    const dir = await mkdtemp(join(tmpdir(), 'attache-installer-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const built = await attempt(process.execPath, [
      join(repo, 'scripts/bundle-installer.mjs'),
      join(dir, 'i.mjs'),
    ]);
    t.equal(built.code, 0, built.output);
    t.match(
      built.output,
      /imports only node:crypto node:fs node:fs\/promises node:path node:util node:zlib$/m,
    );
    const code = await readFile(join(dir, 'i.mjs'), 'utf8');
    t.notMatch(code, /child_process|\bimport\(|\brequire\(/, 'no child process, no code loaded at run time');
  },
);
