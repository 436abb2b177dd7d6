import { createConnection } from 'node:net';
import { GatewayError } from '@attache/core';
import { rejected } from './job-status-error.js';
import type { ReleaseInstallAnswer, ReleaseInstallRequest } from './root-release-install.js';

/**
 * Asks the root release installer listening on the Unix socket `socket` to install `bundle`: sends
 * the request line and the bundle's bytes, half-closes, and resolves with the installer's answer
 * once it has closed the connection. Resolves `{ ok: true, … }` once installed and switched to.
 * Rejects JobStatusError REJECTED when the installer refused the release (its reason), GatewayError
 * ATTACHE_JOBS_UNAVAILABLE when it could not be asked or did not finish (the job stays IN_PROGRESS
 * and is asked again in a later window).
 */
export function askReleaseInstaller(
  socket: string,
  request: ReleaseInstallRequest,
  bundle: Buffer,
  timeoutMs = 600_000,
): Promise<Extract<ReleaseInstallAnswer, { ok: true }>> {
  return new Promise((resolve, reject) => {
    const connection = createConnection(socket);
    let answer = '';
    let failure: Error | undefined;
    connection.setTimeout(timeoutMs, () => {
      failure = new Error(`no answer within ${timeoutMs} ms`);
      connection.destroy();
    });
    connection.on('connect', () => {
      connection.write(`${JSON.stringify(request)}\n`);
      connection.end(bundle);
    });
    connection.setEncoding('utf8').on('data', (text: string) => {
      answer += text;
    });
    // The installer may answer (a refusal) before it read the whole bundle: a write cut short is no failure.
    connection.on('error', (err) => {
      failure ??= err;
    });
    connection.on('close', () => {
      const line = answer.split('\n')[0] ?? '';
      let parsed: ReleaseInstallAnswer | undefined;
      try {
        parsed = JSON.parse(line) as ReleaseInstallAnswer;
      } catch {}
      if (parsed?.ok === true) return resolve(parsed);
      if (parsed?.ok === false && parsed.retry !== true) {
        return reject(
          rejected(parsed.code as never, `the root installer refused the release: ${parsed.reason}`),
        );
      }
      const why =
        parsed?.ok === false
          ? parsed.reason
          : (failure?.message ?? 'it closed the connection without an answer');
      reject(
        new GatewayError(
          'ATTACHE_JOBS_UNAVAILABLE',
          `the root release installer (${socket}) did not install the release: ${why}`,
          {
            ...(failure ? { cause: failure } : {}),
          },
        ),
      );
    });
  });
}
