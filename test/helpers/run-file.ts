import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/** How a program ran: its exit code (1 when it could not start or was killed) and its output. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file` with `args` (no shell), up to 2 minutes; never rejects. */
export function runFile(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: 120_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Whether this process may make private mount namespaces (root, and `unshare -m` allowed). */
export async function canUnshareMounts(): Promise<boolean> {
  return process.getuid?.() === 0 && (await runFile('unshare', ['-m', 'true'])).code === 0;
}

/** A uid and gid that this machine's user database does not use, for `attache`. */
export async function freeId(): Promise<number> {
  const used = new Set(
    [await readFile('/etc/passwd', 'utf8'), await readFile('/etc/group', 'utf8')]
      .join('\n')
      .split('\n')
      .map((line) => Number(line.split(':')[2])),
  );
  let id = 61000;
  while (used.has(id)) id++;
  return id;
}
