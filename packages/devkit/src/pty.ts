import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GatewayError } from '@attache/core';

/** Two connected pseudo-terminals made by socat: bytes written to one end are read at the other. */
export interface PtyPair {
  /** The end the gateway opens (`<dir>/gateway`, a symlink to a /dev/pts node). */
  gatewayPath: string;
  /** The end a simulated device writes to (`<dir>/device`). */
  devicePath: string;
  /** Stops socat (SIGTERM): both ends vanish, as with a USB adapter unplugged. Resolves once it exited. */
  close(): Promise<void>;
}

/** How long socat may take to create the pair, ms. */
const startTimeoutMs = 30_000;

/**
 * Starts `socat -d -d pty,raw,echo=0,link=<dir>/gateway pty,raw,echo=0,link=<dir>/device` (creating
 * `dir` if needed). Resolves once both links exist. Rejects with a GatewayError `ATTACHE_TIMEOUT`
 * when they do not appear within 30 s, or with the spawn error when socat cannot run.
 * Ptys ignore parity and data bits, and modem lines (DTR/RTS) fail.
 */
export async function openPtyPair(dir: string): Promise<PtyPair> {
  await mkdir(dir, { recursive: true });
  const gatewayPath = join(dir, 'gateway');
  const devicePath = join(dir, 'device');
  const socat = spawn(
    'socat',
    ['-d', '-d', `pty,raw,echo=0,link=${gatewayPath}`, `pty,raw,echo=0,link=${devicePath}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  // socat logs to stderr; read it so a full pipe never blocks it.
  socat.stderr.resume();
  // A socat that could not be spawned emits 'error' and no 'exit'.
  const exited = new Promise<void>((resolve) => {
    socat.once('exit', () => resolve());
    socat.once('error', () => resolve());
  });
  const close = async (): Promise<void> => {
    if (socat.exitCode === null && socat.signalCode === null) socat.kill('SIGTERM');
    await exited;
  };
  await new Promise<void>((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (existsSync(gatewayPath) && existsSync(devicePath)) done();
      else if (Date.now() - started > startTimeoutMs) {
        done(new GatewayError('ATTACHE_TIMEOUT', `socat did not create the pty pair in ${dir} within 30 s`));
      }
    }, 10);
    const onExit = (code: number | null) =>
      done(new Error(`socat exited (code ${code}) before the ptys existed`));
    const onError = (err: Error) => done(err);
    socat.once('exit', onExit);
    socat.once('error', onError);
    function done(err?: Error): void {
      clearInterval(timer);
      socat.off('exit', onExit);
      socat.off('error', onError);
      if (err === undefined) resolve();
      else reject(err);
    }
  }).catch(async (err: unknown) => {
    await close();
    throw err;
  });
  return { gatewayPath, devicePath, close };
}
