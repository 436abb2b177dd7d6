import { spawn } from 'node:child_process';
import type { Logger } from '@attache/core';

/** A hook command: program and arguments (no shell), with a timeout. */
export interface HookConfig {
  command: [string, ...string[]] | string[];
  /** Killed with SIGKILL after this long. */
  timeoutSeconds: number;
}

/** How a hook ended. */
export interface HookResult {
  ok: boolean;
  /** Exit code, or null when killed or not started. */
  code: number | null;
  timedOut: boolean;
  /** Why it failed to start (e.g. ENOENT), when it did not. */
  startError?: string;
}

/**
 * How long a hook's output may stay open after the hook itself exited before the window goes on: a
 * hook that leaves a process running in the background (`ifup … &`) would otherwise hold the window
 * for as long as that process keeps the hook's stdout or stderr open.
 */
export const hookOutputGraceMs = 200;

/**
 * Runs `hook` to completion (stdout and stderr go to the log at debug, at most 2 KB) and resolves how
 * it ended; never rejects. `name` (e.g. `pre-hook`) labels its log lines. The hook runs in a process
 * group of its own: at its timeout the whole group is killed, so a process it started cannot outlive
 * it and hold the window. A hook that exits on its own resolves once its output is closed, or
 * {@link hookOutputGraceMs} after its exit if a process it left running still holds it (that process
 * is left alone, its output read and dropped).
 */
export function runHook(hook: HookConfig, name: string, log: Logger): Promise<HookResult> {
  const [program, ...args] = hook.command;
  return new Promise((resolve) => {
    if (program === undefined)
      return resolve({ ok: false, code: null, timedOut: false, startError: 'empty command' });
    let output = '';
    let timedOut = false;
    let done = false;
    let grace: NodeJS.Timeout | undefined;
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-2048);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, () => child.kill('SIGKILL'));
    }, hook.timeoutSeconds * 1000);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done = true;
      log.warn({ hook: name, code: err.code }, 'hook could not start');
      resolve({ ok: false, code: null, timedOut: false, startError: err.code ?? err.message });
    });
    const finish = (code: number | null, outputOpen: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(grace);
      if (outputOpen) {
        for (const stream of [child.stdout, child.stderr]) {
          stream.removeListener('data', collect);
          stream.resume();
        }
        log.info({ hook: name }, 'hook exited and left a process running that holds its output');
      }
      const result: HookResult = { ok: code === 0 && !timedOut, code, timedOut };
      if (log.isLevelEnabled('debug') && output) log.debug({ hook: name, output }, 'hook output');
      if (result.ok) log.info({ hook: name }, 'hook done');
      else
        log.warn(
          { hook: name, exitCode: code, timedOut },
          timedOut ? 'hook timed out: killed' : 'hook failed',
        );
      resolve(result);
    };
    child.once('exit', (code) => {
      grace = setTimeout(() => finish(code, true), hookOutputGraceMs);
    });
    child.once('close', (code) => finish(code, false));
  });
}

/** SIGKILL to the process group `pid` leads; `fallback` when there is none (already gone). */
function killGroup(pid: number | undefined, fallback: () => void): void {
  try {
    if (pid === undefined) throw new Error('no pid');
    process.kill(-pid, 'SIGKILL');
  } catch {
    fallback();
  }
}
