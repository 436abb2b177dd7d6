import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '@attache/core';

/** One logged-in technician. */
export interface Session {
  /** The name typed at login (who did what, in the log). */
  who: string;
  /** When the session ends (ms since the epoch). */
  expiresAt: number;
  /** The digest of the secret it was made with: a rotated secret ends it. */
  secretDigest: Buffer;
}

/** At most this many sessions are kept; a new login beyond it ends the oldest. */
const maxSessions = 16;

/**
 * The logged-in sessions, in memory only (a restart logs everyone out). Tokens are 256 random bits;
 * only their SHA-256 is kept, so a heap dump does not hold a usable cookie.
 */
export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #clock: Clock;
  #lifetimeMs: number;

  constructor(options: { clock: Clock; lifetimeMs: number }) {
    this.#clock = options.clock;
    this.#lifetimeMs = options.lifetimeMs;
  }

  /** Starts a session and returns its token (the cookie's value). */
  create(who: string, secretDigest: Buffer): string {
    const token = randomBytes(32).toString('base64url');
    if (this.#sessions.size >= maxSessions) {
      const oldest = this.#sessions.keys().next().value as string;
      this.#sessions.delete(oldest);
    }
    this.#sessions.set(hash(token), {
      who,
      expiresAt: this.#clock.now() + this.#lifetimeMs,
      secretDigest,
    });
    return token;
  }

  /** The live session of `token` made with the current secret; an expired or stale one is removed. */
  get(token: string | undefined, currentDigest: Buffer): Session | undefined {
    if (token === undefined) return undefined;
    const key = hash(token);
    const session = this.#sessions.get(key);
    if (!session) return undefined;
    if (session.expiresAt <= this.#clock.now() || !session.secretDigest.equals(currentDigest)) {
      this.#sessions.delete(key);
      return undefined;
    }
    return session;
  }

  delete(token: string | undefined): void {
    if (token !== undefined) this.#sessions.delete(hash(token));
  }

  /** How long sessions started from now on last (a config reload); running ones keep their end. */
  set lifetimeMs(ms: number) {
    this.#lifetimeMs = ms;
  }

  /** Seconds a new session lasts (the cookie's Max-Age). */
  get maxAgeSeconds(): number {
    return Math.floor(this.#lifetimeMs / 1000);
  }
}

function hash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** Failed logins allowed before the page makes the next one wait. */
const freeFailures = 5;
const firstLockMs = 30_000;
const maxLockMs = 15 * 60_000;

/**
 * Slows down guessing: after {@link freeFailures} failed logins in a row, no login is tried for 30 s,
 * doubling with each further failure up to 15 min; a successful login resets it. One limiter for
 * the whole page (not per address): on a point-to-point link there is one peer, and an attacker
 * changing addresses gains nothing. 79 bits of secret at that pace are out of reach.
 */
export class LoginLimiter {
  readonly #clock: Clock;
  #failures = 0;
  #lockedUntil = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Milliseconds until a login may be tried; 0 when it may be tried now. */
  waitMs(): number {
    return Math.max(0, this.#lockedUntil - this.#clock.now());
  }

  failed(): void {
    this.#failures += 1;
    if (this.#failures < freeFailures) return;
    const lock = Math.min(maxLockMs, firstLockMs * 2 ** (this.#failures - freeFailures));
    this.#lockedUntil = this.#clock.now() + lock;
  }

  succeeded(): void {
    this.#failures = 0;
    this.#lockedUntil = 0;
  }
}
