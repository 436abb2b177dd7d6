// The outbox against a simple model: any sequence of appends (one by one, or a message's all or
// none, maybe sent twice; dropping the oldest at the bound),
// reads and pages, removes (also while a read runs), expiry, quarantine, restore and reopen leaves
// exactly the records the model holds, with the counters the model has. The remove path that
// deletes the keys of records whose sizes were noted by a read, without an iterator (ReadSizes),
// must never count a record twice nor miss one.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CacheKeyring, LevelCache } from '@attache/cache';
import type { AttacheRecord } from '@attache/core';
import { fuzzParameters } from '@attache/devkit';
import fc from 'fast-check';
import { Level } from 'level';
import t from 'tap';
import { draft, tempKeyring } from './fixtures/helpers.js';

const maxRecords = 10;
const maxAgeMs = 60_000;
/** `draft(n)` is captured n seconds after this. */
const base = Date.UTC(2026, 10, 1);
const seqKey = (seq: number): string => String(seq).padStart(16, '0');
const everything = { afterSeq: 0, limit: 1000, maxBytes: 1e9 };

interface Model {
  /** Stored seq -> the n of the draft it was appended from. */
  stored: Map<number, number>;
  nextSeq: number;
  dropped: number;
  quarantined: number;
  /** The next draft's n: captured times grow with seqs. */
  n: number;
  /** Every record read so far, by seq: what a restore brings back. */
  seen: Map<number, AttacheRecord>;
}

interface Real {
  cache: LevelCache;
  readonly path: string;
  readonly keyring: CacheKeyring;
}

const open = async (path: string, keyring: CacheKeyring): Promise<LevelCache> => {
  const cache = new LevelCache({
    path,
    keyring,
    limits: { maxRecords, maxBytes: 1e12, maxAgeMs, whenFull: 'drop-oldest' },
  });
  await cache.open();
  return cache;
};

/** The stored seqs after `afterSeq` a read of `limit` records returns, in order. */
function expectedRead(model: Model, afterSeq: number, limit: number): number[] {
  return [...model.stored.keys()]
    .filter((seq) => seq > afterSeq)
    .sort((a, b) => a - b)
    .slice(0, limit);
}

/** Checks what a read returned against the model, and keeps the records for restores. */
function checkRead(model: Model, records: AttacheRecord[], expected: number[], what: string): void {
  const seqs = records.map((r) => r.seq);
  if (JSON.stringify(seqs) !== JSON.stringify(expected)) {
    throw new Error(`${what} returned ${JSON.stringify(seqs)}, the model ${JSON.stringify(expected)}`);
  }
  for (const record of records) {
    const n = record.observations[0]?.value;
    if (n !== model.stored.get(record.seq)) throw new Error(`seq ${record.seq} holds reading ${n}`);
    model.seen.set(record.seq, record);
  }
}

function removeFromModel(model: Model, firstSeq: number, lastSeq: number): void {
  for (const seq of [...model.stored.keys()]) {
    if (seq >= firstSeq && seq <= lastSeq) model.stored.delete(seq);
  }
}

class Append implements fc.AsyncCommand<Model, Real> {
  constructor(readonly count: number) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const ns = Array.from({ length: this.count }, (_, i) => model.n + i);
    model.n += this.count;
    await Promise.all(ns.map((n) => real.cache.append(draft(n))));
    for (const n of ns) {
      // Drop-oldest: the oldest stored records make room for each one.
      while (model.stored.size + 1 > maxRecords) {
        const oldest = Math.min(...model.stored.keys());
        model.stored.delete(oldest);
        model.dropped++;
      }
      model.stored.set(model.nextSeq++, n);
    }
  }
  toString = () => `append(${this.count})`;
}

/** The records of one device message, all or none, maybe sent twice: the re-send stores nothing. */
class AppendAll implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly count: number,
    readonly resend: boolean,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const ns = Array.from({ length: this.count }, (_, i) => model.n + i);
    model.n += this.count;
    const idempotencyKeys = ns.map((n) => `message-${ns[0]}:${n}`);
    const records = await real.cache.appendAll(
      ns.map((n) => draft(n)),
      { idempotencyKeys },
    );
    if (records.some((r) => r === undefined)) throw new Error('a new message was taken for a re-send');
    if (this.resend) {
      const again = await real.cache.appendAll(
        ns.map((n) => draft(n)),
        { idempotencyKeys },
      );
      if (again.some((r) => r !== undefined)) throw new Error('a re-sent message was stored again');
    }
    for (const n of ns) {
      while (model.stored.size + 1 > maxRecords) {
        const oldest = Math.min(...model.stored.keys());
        model.stored.delete(oldest);
        model.dropped++;
      }
      model.stored.set(model.nextSeq++, n);
    }
  }
  toString = () => `appendAll(${this.count}${this.resend ? ', sent twice' : ''})`;
}

class Read implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly afterSeq: number,
    readonly limit: number,
    readonly paged: boolean,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const options = { afterSeq: this.afterSeq, limit: this.limit, maxBytes: 1e9 };
    const expected = expectedRead(model, this.afterSeq, this.limit);
    if (!this.paged) {
      const records = await real.cache.read(options);
      checkRead(
        model,
        records.map((r) => JSON.parse(r.json) as AttacheRecord),
        expected,
        String(this),
      );
      return;
    }
    const page = await real.cache.readPage(options);
    const records =
      page === null ? [] : (JSON.parse(`[${Buffer.from(page.json).toString('utf8')}]`) as AttacheRecord[]);
    page?.release?.();
    checkRead(model, records, expected, String(this));
  }
  toString = () => `${this.paged ? 'readPage' : 'read'}(after ${this.afterSeq}, limit ${this.limit})`;
}

class Remove implements fc.AsyncCommand<Model, Real> {
  constructor(
    /** Ranges removed at once (they share writes), as first seq and span. */
    readonly ranges: [number, number][],
    /** Run beside a read (or a page) of the same records, which may note their sizes after the remove. */
    readonly besideRead: 'none' | 'read' | 'page',
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const [firstSeq, span] = this.ranges[0] as [number, number];
    const options = { afterSeq: firstSeq - 1, limit: span + 2, maxBytes: 1e9 };
    const read =
      this.besideRead === 'read'
        ? real.cache.read(options)
        : this.besideRead === 'page'
          ? real.cache.readPage(options).then((page) => page?.release?.())
          : undefined;
    await Promise.all([...this.ranges.map(([first, span]) => real.cache.remove(first, first + span)), read]);
    for (const [first, span] of this.ranges) removeFromModel(model, first, first + span);
  }
  toString = () =>
    `remove(${this.ranges.map(([first, span]) => `${first}..${first + span}`).join(', ')}; beside ${this.besideRead})`;
}

class Expire implements fc.AsyncCommand<Model, Real> {
  /** Expires the drafts with n < `younger`. */
  constructor(readonly younger: number) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const { dropped } = await real.cache.expire(base + this.younger * 1000 + maxAgeMs);
    let expected = 0;
    for (const [seq, n] of model.stored) {
      if (n < this.younger) {
        model.stored.delete(seq);
        expected++;
      }
    }
    model.dropped += expected;
    if (dropped !== expected) throw new Error(`expire dropped ${dropped}, the model ${expected}`);
  }
  toString = () => `expire(n < ${this.younger})`;
}

class Restore implements fc.AsyncCommand<Model, Real> {
  constructor(readonly picks: number[]) {}
  check = (model: Readonly<Model>) => model.seen.size > 0;
  async run(model: Model, real: Real): Promise<void> {
    const seen = [...model.seen.values()];
    const records = this.picks.map((i) => seen[i % seen.length] as AttacheRecord);
    const { stored, skipped } = await real.cache.restore(records);
    let expected = 0;
    for (const record of records) {
      if (model.stored.has(record.seq)) continue;
      model.stored.set(record.seq, record.observations[0]?.value as number);
      model.nextSeq = Math.max(model.nextSeq, record.seq + 1);
      expected++;
    }
    if (stored !== expected || skipped !== records.length - expected) {
      throw new Error(`restore stored ${stored} and skipped ${skipped}, the model stored ${expected}`);
    }
  }
  toString = () => `restore(${this.picks.length} of the records read)`;
}

class Reopen implements fc.AsyncCommand<Model, Real> {
  /** With `corrupt`, a flipped byte in the value of the stored record with that index, which the next read quarantines. */
  constructor(readonly corrupt: number | undefined) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    await real.cache.close();
    const seqs = [...model.stored.keys()].sort((a, b) => a - b);
    const victim = this.corrupt === undefined ? undefined : seqs[this.corrupt % Math.max(1, seqs.length)];
    if (victim !== undefined) {
      const db = new Level(real.path);
      try {
        const outbox = db.sublevel<string, Buffer>('outbox', { valueEncoding: 'buffer' });
        const value = Buffer.from((await outbox.get(seqKey(victim))) as Buffer);
        value[value.length - 1] = (value.at(-1) ?? 0) ^ 0x01;
        await outbox.put(seqKey(victim), value);
      } finally {
        await db.close();
      }
    }
    real.cache = await open(real.path, real.keyring);
    if (victim === undefined) return;
    model.stored.delete(victim);
    model.quarantined++;
    // The read passes over the victim and moves it to quarantine.
    const records = await real.cache.read({ afterSeq: victim - 1, limit: 1, maxBytes: 1e9 });
    const expected = expectedRead(model, victim - 1, 1);
    checkRead(
      model,
      records.map((r) => JSON.parse(r.json) as AttacheRecord),
      expected,
      String(this),
    );
  }
  toString = () => (this.corrupt === undefined ? 'reopen' : `reopen with record #${this.corrupt} corrupted`);
}

/** Everything stored is what the model holds, and the counters agree with it. */
async function checkAll(model: Model, real: Real): Promise<void> {
  const stats = await real.cache.stats();
  const records = await real.cache.read(everything);
  checkRead(
    model,
    records.map((r) => JSON.parse(r.json) as AttacheRecord),
    expectedRead(model, 0, 1000),
    'the final read',
  );
  const bytes = records.reduce((sum, r) => sum + Buffer.byteLength(r.json), 0);
  const health = await real.cache.health();
  const got = { records: stats.records, bytes: stats.bytes, nextSeq: stats.nextSeq, dropped: health.dropped };
  const want = { records: model.stored.size, bytes, nextSeq: model.nextSeq, dropped: model.dropped };
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`counters ${JSON.stringify(got)}, the model ${JSON.stringify(want)}`);
  }
  const quarantined = await real.cache.quarantineCount();
  if (quarantined !== model.quarantined) {
    throw new Error(`${quarantined} quarantined, the model ${model.quarantined}`);
  }
}

class Check implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  run = checkAll;
  toString = () => 'check';
}

const seq = fc.integer({ min: 1, max: 40 });
const commands = [
  fc.integer({ min: 1, max: 6 }).map((count) => new Append(count)),
  fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.boolean())
    .map(([count, resend]) => new AppendAll(count, resend)),
  fc
    .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 8 }), fc.boolean())
    .map(([after, limit, paged]) => new Read(after, limit, paged)),
  fc
    .tuple(
      fc.array(fc.tuple(seq, fc.integer({ min: 0, max: 8 })), { minLength: 1, maxLength: 4 }),
      fc.constantFrom('none', 'read', 'page') as fc.Arbitrary<'none' | 'read' | 'page'>,
    )
    .map(([ranges, beside]) => new Remove(ranges, beside)),
  fc.integer({ min: 0, max: 40 }).map((younger) => new Expire(younger)),
  fc.array(fc.nat(), { minLength: 1, maxLength: 6 }).map((picks) => new Restore(picks)),
  fc.option(fc.nat(), { nil: undefined, freq: 2 }).map((corrupt) => new Reopen(corrupt)),
  fc.constant(new Check()),
];

t.test(
  'any sequence of outbox operations leaves what the model holds, counted as the model counts',
  async (t) => {
    const { keyring } = await tempKeyring(t);
    const root = await mkdtemp(join(tmpdir(), 'attache-outbox-model-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 24 }), async (cmds) => {
        const path = join(root, String(runs++));
        const real: Real = { cache: await open(path, keyring), path, keyring };
        const model: Model = {
          stored: new Map(),
          nextSeq: 1,
          dropped: 0,
          quarantined: 0,
          n: 0,
          seen: new Map(),
        };
        try {
          await fc.asyncModelRun(() => ({ model, real }), cmds);
          await checkAll(model, real);
        } finally {
          await real.cache.close();
          await rm(path, { recursive: true, force: true });
        }
      }),
      fuzzParameters(100),
    );
    t.pass(`${runs} sequences`);
  },
);
