import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Letters and digits a technician reads off a screen and types without mistaking one for another
 * (no 0/O, 1/I/L): 31 symbols, so 16 of them hold 79 bits.
 */
const alphabet = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const length = 16;

/** Where the technician secret of a gateway with data directory `dataDir` lives. */
export function technicianSecretPath(dataDir: string): string {
  return join(dataDir, 'technician', 'secret');
}

/** A new secret, shown as four groups of four: `K7QD-2MXR-HV9A-TP4E`. */
export function newSecret(): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return (out.match(/.{4}/g) as string[]).join('-');
}

/** What a typed secret is compared as: upper case, without the dashes and spaces people add or drop. */
function canonical(secret: string): string {
  return secret.toUpperCase().replace(/[\s-]/g, '');
}

/** The SHA-256 of the canonical form: sessions remember it, so a rotated secret ends them. */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(canonical(secret)).digest();
}

/** True when `typed` is `secret` (in constant time: both are hashed to 32 bytes first). */
export function secretMatches(typed: string, secret: string): boolean {
  return timingSafeEqual(secretDigest(typed), secretDigest(secret));
}

/** Writes `secret` to `path` mode 0600 (directory 0700) atomically: a reader sees the old or the new one. */
async function writeSecret(path: string, secret: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await chmod(dirname(path), 0o700);
  const temporary = `${path}.${process.pid}.tmp`;
  const file = await open(temporary, 'w', 0o600);
  try {
    await file.writeFile(`${secret}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path).catch(async (err: unknown) => {
    await rm(temporary, { force: true });
    throw err;
  });
}

/** The secret at `path`, undefined when there is none yet (or the file holds no secret). */
export async function readSecret(path: string): Promise<string | undefined> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return canonical(text).length === length ? text : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The secret at `path`, created (mode 0600) when there is none. */
export async function loadOrCreateSecret(path: string): Promise<string> {
  const existing = await readSecret(path);
  if (existing !== undefined) return existing;
  const secret = newSecret();
  await writeSecret(path, secret);
  return secret;
}

/** Replaces the secret at `path` with a new one and returns it: every session made with the old one ends. */
export async function rotateSecret(path: string): Promise<string> {
  const secret = newSecret();
  await writeSecret(path, secret);
  return secret;
}
