import type { Logger } from '@attache/core';
import type { TokenEntry } from './database.js';
import type { DatabaseSession } from './database-session.js';
import { newPatientToken } from './patient-token.js';
import { logQuarantined } from './quarantine.js';
import { getSealed, putSealed } from './sealed-store.js';
import type { ValueSealer } from './value-sealer.js';

/** How many patients' tokens are kept in memory (the most recently used). */
const recentTokenLimit = 1024;

/** Options of {@link TokenTable}. */
export interface TokenTableOptions {
  session: DatabaseSession;
  sealer: ValueSealer;
  log: Logger;
  /** Throws ATTACHE_CACHE_CLOSED unless the cache is open. */
  assertOpen: () => void;
}

/**
 * The patient token table: identifier → random token, sealed under the HMAC of the identifier,
 * with the most recently used tokens in memory (most readings are of a patient already seen).
 */
export class TokenTable {
  readonly #options: TokenTableOptions;
  readonly #calls = new Map<string, Promise<string>>();
  /** Recently used tokens by table key (the HMAC, never the identifier), in use order. */
  readonly #recent = new Map<string, string>();

  /** Assigns the options; no I/O. */
  constructor(options: TokenTableOptions) {
    this.#options = options;
  }

  /**
   * The patient's token (see LevelCache.token); concurrent calls for one id share one. A token in
   * memory is handed out at once: no call to share, no read.
   */
  token(patientId: string): Promise<string> {
    const call = this.#calls.get(patientId);
    if (call !== undefined) return call;
    const { sealer, assertOpen } = this.#options;
    let key: string;
    try {
      assertOpen();
      key = sealer.tokenKey(patientId);
    } catch (err) {
      return Promise.reject(err);
    }
    const recent = this.#recent.get(key);
    if (recent !== undefined) return Promise.resolve(this.#remember(key, recent));
    const read = this.#tokenOf(key).finally(() => this.#calls.delete(patientId));
    this.#calls.set(patientId, read);
    return read;
  }

  /** The token stored under table `key`, or a new one stored now. */
  async #tokenOf(key: string): Promise<string> {
    const { session, log } = this.#options;
    const found = await session.read((database) => getSealed<TokenEntry>(database, 'tokens', key));
    if (found.value) return this.#remember(key, found.value.token);
    const entry: TokenEntry = { token: newPatientToken(), createdAt: new Date().toISOString() };
    await session.write((database) =>
      session.guard(putSealed(database, 'tokens', key, entry, found.suspect), 'patient token'),
    );
    if (found.suspect) logQuarantined(log, found.suspect, 'a new token was issued');
    return this.#remember(key, entry.token);
  }

  /** Keeps the token among the 1,024 most recently used (a Map in use order). */
  #remember(key: string, token: string): string {
    this.#recent.delete(key);
    this.#recent.set(key, token);
    if (this.#recent.size > recentTokenLimit) {
      this.#recent.delete(this.#recent.keys().next().value as string);
    }
    return token;
  }
}
