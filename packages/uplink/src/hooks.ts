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
 * Runs `hook` to completion (stdout and stderr go to the log at debug, at most 2 KB) and resolves how
 * it ended; never rejects. `name` (e.g. `pre-hook`) labels its log lines.
 */
export function runHook(hook: HookConfig, name: string, log: Logger): Promise<HookResult> {
  const [program, ...args] = hook.command;
  return new Promise((resolve) => {
    if (program === undefined)
      return resolve({ ok: false, code: null, timedOut: false, startError: 'empty command' });
    let output = '';
    let timedOut = false;
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-2048);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, hook.timeoutSeconds * 1000);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      log.warn({ hook: name, code: err.code }, 'hook could not start');
      resolve({ ok: false, code: null, timedOut: false, startError: err.code ?? err.message });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const result: HookResult = { ok: code === 0 && !timedOut, code, timedOut };
      if (log.isLevelEnabled('debug') && output) log.debug({ hook: name, output }, 'hook output');
      if (result.ok) log.info({ hook: name }, 'hook done');
      else
        log.warn(
          { hook: name, exitCode: code, timedOut },
          timedOut ? 'hook timed out: killed' : 'hook failed',
        );
      resolve(result);
    });
  });
}
