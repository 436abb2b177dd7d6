// The power-cut disk of test/power-cut.test.ts: test/fixtures/powercut-fs.py (FUSE, Debian's
// python3-pyfuse3) mounted over a backing directory. Only fsynced file data and fsynced directory
// entries survive `cut()`, which unmounts it (every process using it must be dead first); `on()`
// mounts it again from what survived.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fsScript = fileURLToPath(new URL('../fixtures/powercut-fs.py', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why a power-cut disk cannot run here, or undefined when it can (root, /dev/fuse, python3-pyfuse3). */
export function powerCutUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting FUSE needs root';
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import pyfuse3, trio'], { stdio: 'ignore' });
  } catch {
    return "Debian's python3-pyfuse3 is not installed";
  }
  try {
    execFileSync('test', ['-c', '/dev/fuse']);
  } catch {
    return 'there is no /dev/fuse';
  }
  return undefined;
}

async function mounted(path: string): Promise<boolean> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  return mounts.split('\n').some((line) => line.split(' ')[1] === path);
}

/** A FUSE mount at `mountpoint` that loses what was not made durable when its power is cut. */
export class PowerCutDisk {
  readonly backing: string;
  readonly mountpoint: string;
  #daemon: ChildProcess | undefined;
  #exited: Promise<number | null> = Promise.resolve(null);
  #stderr = '';

  constructor(dir: string) {
    this.backing = join(dir, 'backing');
    this.mountpoint = join(dir, 'mnt');
  }

  /** Mounts the disk with what survived; resolves once it is mounted. */
  async on(): Promise<void> {
    await mkdir(this.backing, { recursive: true });
    await mkdir(this.mountpoint, { recursive: true });
    const daemon = spawn('/usr/bin/python3', [fsScript, this.backing, this.mountpoint], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#daemon = daemon;
    this.#stderr = '';
    daemon.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    this.#exited = new Promise((resolve) => daemon.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (!(await mounted(this.mountpoint))) {
      if (daemon.exitCode !== null || Date.now() > deadline) {
        throw new Error(`the power-cut filesystem did not mount: ${this.#stderr}`);
      }
      await sleep(20);
    }
  }

  /**
   * The power cut: unmounts (every process using the disk must be dead) and waits for the
   * filesystem to write what was durable back to the backing directory.
   */
  async cut(): Promise<void> {
    if (!this.#daemon) return;
    for (let attempt = 0; await mounted(this.mountpoint); attempt++) {
      try {
        execFileSync('umount', [this.mountpoint], { stdio: 'pipe' });
      } catch (err) {
        // EBUSY while the kernel still closes a killed process's files.
        if (attempt >= 100) throw err;
        await sleep(50);
      }
    }
    const code = await this.#exited;
    this.#daemon = undefined;
    if (code !== 0) throw new Error(`the power-cut filesystem failed (${code}): ${this.#stderr}`);
  }

  /** Teardown: unmounts whatever the state. */
  async stop(): Promise<void> {
    if (await mounted(this.mountpoint)) execFileSync('umount', ['-l', this.mountpoint]);
    this.#daemon?.kill('SIGKILL');
    await this.#exited;
  }
}
