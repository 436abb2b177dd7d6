import type { AttacheRecord, BacklogStats, PageRoom, RecordPage } from '@attache/core';
import { type Backlog, type Database, lastSeqOf } from './database.js';
import { quarantineKey, type Suspect } from './quarantine.js';
import type { ReadSizes } from './read-sizes.js';
import { parseSeqKey, seqKey } from './seq-key.js';
import { levelKey, plainLength } from './value-sealer.js';

/** The plaintext of a sealed value as text; undefined when it fails authentication. */
function openText({ sealer }: Database, sublevel: Suspect['sublevel'], key: string, value: Buffer) {
  return sealer.open(levelKey(sublevel, key), value)?.toString('utf8');
}

/**
 * Most entries fetched from LevelDB in one step. classic-level keeps a step's entries (keys and
 * sealed values) in native memory until V8 collects the iterator, which in a long drain may wait for
 * a rare full GC: 64 entries (~20 KB) rather than a whole page's ~290 (~100 KB) per page read.
 */
const maxStep = 64;

/** The LevelDB prefix of the outbox's keys (see `levelKey`). */
const outboxPrefix = levelKey('outbox', '');
/** The end of the outbox's keys on the root: the prefix with its last `!` raised by one, as abstract-level's sublevel bounds it. */
const outboxEnd = levelKey('outbox', '').slice(0, -1) + String.fromCharCode('!'.charCodeAt(0) + 1);

/** Where `readRecords` puts each record it opened: its seq and its JSON, UTF-8. */
export type RecordSink = (seq: number, plain: Buffer) => void;

/**
 * Records with seq > `afterSeq` that pass authentication, handed to `sink` in seq order as each is
 * opened: at most `limit`, at most `maxBytes` of JSON (plus `separatorBytes` between two records)
 * but at least one. Resolves with how many and their bytes (separators included). Records that fail
 * are skipped and returned as `suspects`. The size of each record handed out is noted in `sizes`
 * (for `remove`). Entries are fetched from LevelDB in steps sized by `averageBytes` (the backlog's
 * mean JSON size) to fill `maxBytes`, at most `maxStep` at a time, and a record's size
 * is known from its sealed length before it is opened: a page reads and decrypts about what it hands out.
 */
export async function readRecords(
  database: Database,
  options: { afterSeq: number; limit: number; maxBytes: number },
  hints: { sizes: ReadSizes; averageBytes: number; separatorBytes: number },
  sink: RecordSink,
): Promise<{ count: number; bytes: number; suspects: Suspect[] }> {
  const { limit, maxBytes } = options;
  const { sizes, separatorBytes } = hints;
  const average = Math.max(1, hints.averageBytes) + separatorBytes;
  // Taken before the iterator (and its snapshot): sizes cleared after it are not noted.
  const generation = sizes.generation;
  const suspects: Suspect[] = [];
  let count = 0;
  let bytes = 0;
  // The root's entries, keys in their full LevelDB form (`!outbox!…`), which is what the AAD binds:
  // no sublevel iterator in between (an async step per fetch, a prefix cut off every key), no
  // prefix written into the AAD for each record. Only a suspect's key is cut to the sublevel's.
  const iterator = database.db.iterator({ gt: outboxPrefix + seqKey(options.afterSeq), lt: outboxEnd });
  // The step after the one being opened: what is left to fill, `bytes` and `count` counted as if
  // every entry fetched so far were handed out (0 when the page will be full without more).
  const stepAfter = (fetchedBytes: number, fetched: number) =>
    fetchedBytes >= maxBytes
      ? 0
      : Math.min(maxStep, limit - fetched, Math.ceil((maxBytes - fetchedBytes) / average) + 1);
  // The next step is asked of LevelDB (its own thread) before this one is opened (here): fetching
  // and deciphering overlap. At most one step is fetched ahead, and none once the page looks full.
  let ahead: Promise<[string, Buffer][]> | undefined = iterator.nextv(Math.max(1, stepAfter(0, 0)));
  try {
    while (ahead !== undefined) {
      const entries = await ahead;
      ahead = undefined;
      if (entries.length === 0) break;
      let fetchedBytes = bytes;
      for (const [, value] of entries) fetchedBytes += plainLength(value) + separatorBytes;
      const next = stepAfter(fetchedBytes, count + entries.length);
      if (next > 0) {
        ahead = iterator.nextv(next);
        ahead.catch(() => {}); // met by the await above, or dropped with the iterator
      }
      for (const [full, value] of entries) {
        const size = plainLength(value);
        const added = count > 0 ? size + separatorBytes : size;
        if (count > 0 && bytes + added > maxBytes) return { count, bytes, suspects };
        const plain = database.sealer.open(full, value);
        if (plain === undefined) {
          suspects.push({ sublevel: 'outbox', key: full.slice(outboxPrefix.length), value });
          continue;
        }
        bytes += added;
        count++;
        const seq = parseSeqKey(full.slice(outboxPrefix.length));
        sizes.note(seq, size, generation);
        sink(seq, plain);
        if (count >= limit) return { count, bytes, suspects };
      }
      // Records that failed authentication left room: fetch on when nothing was asked ahead.
      if (ahead === undefined && count < limit && bytes < maxBytes)
        ahead = iterator.nextv(stepAfter(bytes, count));
    }
  } finally {
    await iterator.close();
  }
  return { count, bytes, suspects };
}

/**
 * Page buffers kept for reuse: a page's buffer comes back when its reader releases the page
 * (`RecordPage.release`: its bytes were written to the window's pipe, or its batch handed to the
 * MQTT client), so a drain does not leave one ~128 KB buffer per page for the GC.
 */
export class PageBuffers {
  readonly #free: Buffer[] = [];

  /** A buffer of at least `size` bytes: a free one when one is large enough, else a new one. */
  take(size: number): Buffer {
    const index = this.#free.findIndex((b) => b.length >= size);
    if (index >= 0) return this.#free.splice(index, 1)[0] as Buffer;
    // Rounded up so that the next pages, a little longer, fit in it too.
    return Buffer.allocUnsafeSlow(Math.ceil(size / pageStep) * pageStep);
  }

  /** Takes `buffer` back (at most {@link maxFreePages} are kept). */
  give(buffer: Buffer): void {
    if (this.#free.length < maxFreePages) this.#free.push(buffer);
  }
}

/** Page buffers are a multiple of this. */
const pageStep = 16 * 1024;
/** Free page buffers kept: one being written, one read ahead, one being read. */
const maxFreePages = 4;

/**
 * Builds a page as `readRecords` opens its records: each record's JSON is copied into the one
 * buffer as soon as it is opened (joined by commas), so no record's plaintext outlives its turn.
 * With `room`, the buffer keeps that many bytes before and after the JSON, filled with spaces: the
 * buffer is not zeroed (a new one from Node, or one of an earlier page) and crosses to the window
 * process, so no byte of it is left as it was found. With `buffers`, the page's buffer is taken from
 * them and given back when the page is released.
 */
export class PageBuilder {
  #json: Buffer;
  readonly #after: number;
  readonly #buffers: PageBuffers | undefined;
  #at: number;
  #firstSeq = 0;
  #lastSeq = 0;
  #count = 0;

  /** `capacity`: the bytes of JSON expected (the buffer grows past it when needed). */
  constructor(capacity: number, room: PageRoom = { before: 0, after: 0 }, buffers?: PageBuffers) {
    this.#after = room.after;
    this.#buffers = buffers;
    this.#json = this.#take(Math.max(64, Math.ceil(capacity)) + room.before + room.after);
    this.#json.fill(0x20, 0, room.before);
    this.#at = room.before;
  }

  /** Appends a record (a {@link RecordSink}). */
  readonly add: RecordSink = (seq, plain) => {
    const separator = this.#count > 0 ? 1 : 0;
    const needed = this.#at + separator + plain.length + this.#after;
    if (needed > this.#json.length) {
      const grown = this.#take(Math.max(needed, this.#json.length * 2));
      this.#json.copy(grown, 0, 0, this.#at);
      this.#buffers?.give(this.#json);
      this.#json = grown;
    }
    if (separator) this.#json[this.#at++] = 0x2c; // ','
    this.#at += plain.copy(this.#json, this.#at);
    if (this.#count === 0) this.#firstSeq = seq;
    this.#lastSeq = seq;
    this.#count++;
  };

  /** The page built; null when no record was added (its buffer then goes back at once). */
  page(): RecordPage | null {
    const buffers = this.#buffers;
    if (this.#count === 0) {
      buffers?.give(this.#json);
      return null;
    }
    const end = this.#at + this.#after;
    this.#json.fill(0x20, this.#at, end);
    const json = this.#json.subarray(0, end);
    const page: RecordPage = { firstSeq: this.#firstSeq, lastSeq: this.#lastSeq, count: this.#count, json };
    if (buffers) {
      const whole = this.#json;
      let released = false;
      page.release = () => {
        if (!released) buffers.give(whole);
        released = true;
      };
    }
    return page;
  }

  #take(size: number): Buffer {
    return this.#buffers ? this.#buffers.take(size) : Buffer.allocUnsafe(size);
  }
}

/** The first record of the outbox that passes authentication, and the records before it that fail. */
export async function firstRecord(
  database: Database,
): Promise<{ first: AttacheRecord | undefined; suspects: Suspect[] }> {
  const suspects: Suspect[] = [];
  for await (const [key, value] of database.outbox.iterator()) {
    const json = openText(database, 'outbox', key, value);
    if (json !== undefined) return { first: JSON.parse(json) as AttacheRecord, suspects };
    suspects.push({ sublevel: 'outbox', key, value });
  }
  return { first: undefined, suspects };
}

/** The stats of the outbox: `backlog`'s counters, the first and last seq, the oldest `capturedAt`. */
export async function backlogStats(
  database: Database,
  backlog: Backlog,
  first: AttacheRecord | undefined,
): Promise<BacklogStats> {
  const { nextSeq, records, bytes } = backlog;
  if (!first) return { records, bytes, firstSeq: null, lastSeq: null, oldestCapturedAt: null, nextSeq };
  const lastSeq = await lastSeqOf(database);
  return { records, bytes, firstSeq: first.seq, lastSeq, oldestCapturedAt: first.capturedAt, nextSeq };
}

/**
 * The JSON value sealed under `key` in `tokens` or `state`: `{ value }` when it passes
 * authentication, `{ suspect }` when it fails, `{}` when there is none.
 */
export async function getSealed<T>(
  database: Database,
  sublevel: 'tokens' | 'state',
  key: string,
): Promise<{ value?: T; suspect?: Suspect }> {
  const value = await database[sublevel].get(key);
  if (value === undefined) return {};
  const json = openText(database, sublevel, key, value);
  return json === undefined ? { suspect: { sublevel, key, value } } : { value: JSON.parse(json) as T };
}

/**
 * Seals `value` as JSON under `key` in `tokens` or `state` and writes it synced. `replaced`, a
 * suspect found under that key, moves to `quarantine` in the same batch.
 */
export function putSealed(
  database: Database,
  sublevel: 'tokens' | 'state',
  key: string,
  value: unknown,
  replaced?: Suspect,
): Promise<void> {
  const plain = Buffer.from(JSON.stringify(value), 'utf8');
  const batch = database.db.batch();
  batch.put(key, database.sealer.seal(levelKey(sublevel, key), plain), { sublevel: database[sublevel] });
  if (replaced) batch.put(quarantineKey(replaced), replaced.value, { sublevel: database.quarantine });
  return batch.write({ sync: true });
}
