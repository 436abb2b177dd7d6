// Software updates in the service: an install root laid out like the image's /opt/attache
// (releases/<version>, `current`), releases whose bin.js runs the built gateway (or exits 1), their
// bundles, and a supervisor that plays systemd for `attache run`: the rollback guard and the switch
// back before every start (ExecStartPre=), the gateway started from `current`, started again when
// it exits; and the root release installer listening on its socket as attache-release-install.socket
// does (socat in its place: one installer process per connection, the connection its stdin and stdout).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { bin } from './stack.js';

const run = promisify(execFile);

/** The guard the unit runs before each start. */
export const guardScript = fileURLToPath(
  new URL('../../image-build/overlay/usr/local/lib/attache/attache-release-guard', import.meta.url),
);
/** The root half of a rollback, which the unit runs as root after the guard. */
export const switchBackScript = fileURLToPath(
  new URL('../../image-build/overlay/usr/local/lib/attache/attache-release-switch-back', import.meta.url),
);
/** The root release installer's entry point (the image ships it bundled). */
export const installerEntry = fileURLToPath(
  new URL('../../packages/jobs/dist/release-install-main.js', import.meta.url),
);

/** Runs the unit's two ExecStartPre= steps: the guard, then the switch back (as this test's user). */
export async function beforeStart(root: string, trialFile: string): Promise<string[]> {
  const guard = await run(guardScript, [root, trialFile, '3']);
  const back = await run(switchBackScript, [root, trialFile, userInfo().username]);
  return [guard.stdout.trim(), back.stdout.trim()].filter((l) => l !== '');
}

/** The root release installer of an install root, listening on a socket (what the unit's socket does). */
export class InstallerSocket {
  readonly socket: string;
  readonly #child: ChildProcess;

  private constructor(socket: string, child: ChildProcess) {
    this.socket = socket;
    this.#child = child;
  }

  /**
   * Listens on `<dir>/install.sock`; each connection runs the installer on `root` and `store` with
   * the job-signing key `keyFile` and the provisioning record `provisioningFile`.
   */
  static async start(options: {
    dir: string;
    root: string;
    store: string;
    keyFile: string;
    provisioningFile: string;
  }): Promise<InstallerSocket> {
    const socket = join(options.dir, 'install.sock');
    const command = [
      process.execPath,
      installerEntry,
      `--root=${options.root}`,
      `--store=${options.store}`,
      `--key=${options.keyFile}`,
      `--provisioning=${options.provisioningFile}`,
    ].join(' ');
    const child = spawn('socat', ['-t', '600', `UNIX-LISTEN:${socket},fork,mode=0600`, `EXEC:${command}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const deadline = Date.now() + 30_000;
    while (
      !(await stat(socket).then(
        (info) => info.isSocket(),
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error('the installer socket did not appear');
      await new Promise((r) => setTimeout(r, 20));
    }
    return new InstallerSocket(socket, child);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGTERM');
    await exited;
  }
}

/** `attache run`'s exit status for "start me again" (packages/cli/src/release-trial-check.ts). */
export const exitRestart = 75;

/**
 * A release tree: `packages/cli/dist/bin.js` runs the built gateway (`working`) or exits 1 at once
 * (`broken`: a release that cannot even start).
 */
export async function releaseTree(dir: string, version: string, kind: 'working' | 'broken'): Promise<string> {
  const tree = join(dir, `tree-${version}`);
  await mkdir(join(tree, 'packages', 'cli', 'dist'), { recursive: true });
  const code =
    kind === 'working'
      ? `await import(${JSON.stringify(pathToFileURL(bin).href)});\n`
      : `console.error('release ${version}: cannot start');\nprocess.exit(1);\n`;
  await writeFile(join(tree, 'packages', 'cli', 'dist', 'bin.js'), code);
  await writeFile(join(tree, 'package.json'), JSON.stringify({ name: 'attache', version, type: 'module' }));
  return tree;
}

/** The tar.gz bundle of a release tree, as a software-update job delivers it. */
export async function bundleOf(tree: string): Promise<Buffer> {
  const file = `${tree}.tar.gz`;
  await run('tar', ['-czf', file, '-C', tree, '.']);
  return readFile(file);
}

/** An install root with `version` installed (as the image stages it) and `current` naming it. */
export async function installRoot(dir: string, version: string): Promise<string> {
  const root = join(dir, 'opt-attache');
  const tree = await releaseTree(dir, version, 'working');
  await mkdir(join(root, 'releases'), { recursive: true });
  await run('cp', ['-r', tree, join(root, 'releases', version)]);
  await writeFile(join(root, 'releases', version, '.release.json'), JSON.stringify({ version }));
  await symlink(join('releases', version), join(root, 'current'));
  return root;
}

/** One start of the supervised gateway. */
export interface SupervisedStart {
  /** What `current` named when it was started. */
  release: string;
  child: ChildProcess;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Plays systemd's attache.service: guard, start from `current`, start again on every exit. */
export class ReleaseSupervisor {
  readonly starts: SupervisedStart[] = [];
  readonly guardOutput: string[] = [];
  readonly #root: string;
  readonly #trialFile: string;
  readonly #configPath: string;
  readonly #installer: string | undefined;
  #stopped = false;
  #loop: Promise<void> | undefined;

  /** `installer`: the root release installer's socket (`ATTACHE_RELEASE_INSTALLER`). */
  constructor(options: { root: string; trialFile: string; configPath: string; installer?: string }) {
    this.#root = options.root;
    this.#trialFile = options.trialFile;
    this.#configPath = options.configPath;
    this.#installer = options.installer;
  }

  /** Starts the loop: each start waits for the previous process to exit (as Restart=always does). */
  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        this.guardOutput.push(...(await beforeStart(this.#root, this.#trialFile)));
        const release = await readlink(join(this.#root, 'current'));
        const code = await this.#startOnce(release).exited;
        // 78 (invalid config) is not restarted by the unit either.
        if (code === 78) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  }

  #startOnce(release: string): SupervisedStart {
    const entry = join(this.#root, 'current', 'packages', 'cli', 'dist', 'bin.js');
    const child = spawn(process.execPath, [entry, 'run', '--config', this.#configPath], {
      env: {
        ...process.env,
        ATTACHE_INSTALL_ROOT: this.#root,
        ...(this.#installer === undefined ? {} : { ATTACHE_RELEASE_INSTALLER: this.#installer }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: Record<string, unknown>[] = [];
    let rest = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line));
    });
    child.stderr?.pipe(process.stderr);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const start = { release, child, logs, exited };
    this.starts.push(start);
    return start;
  }

  /**
   * Resolves with the first start from the `after`-th on whose log has a line matching `match`,
   * waiting up to `timeoutMs`.
   */
  async waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    after = 0,
    timeoutMs = 30_000,
  ): Promise<SupervisedStart> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.starts.slice(after).find((s) => s.logs.some(match));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no such log line within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the loop and the running gateway. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const last = this.starts.at(-1);
    if (last && last.child.exitCode === null && last.child.signalCode === null) last.child.kill('SIGTERM');
    await this.#loop;
  }
}
