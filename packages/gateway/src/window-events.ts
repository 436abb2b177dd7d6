import { access, readFile } from 'node:fs/promises';
import type { LevelCache } from '@attache/cache';
import {
  type AdapterStatus,
  type GatewayEvent,
  type Logger,
  monotonicMs,
  type UplinkConfig,
} from '@attache/core';
import {
  fetchTrustedTime,
  type JsonObject,
  type PendingEvent,
  type TrustedTime,
} from '@attache/uplink/policy';

/** The journal's one state value: its pending events, last id and reported drops, in one synced write. */
const journalKey = 'events.journal';
/** Where releases before the one-value journal kept the pending list and the last id (two writes). */
const legacyPendingKey = 'events.pending';
const legacyLastIdKey = 'events.nextId';
/** Most events kept while no window opens; the oldest go first (a count of dropped events is logged). */
const maxPending = 1000;

/** The event types of event.schema.json. */
export type GatewayEventType = GatewayEvent['type'];

/** The clock provenance of an event, as records carry it. */
export interface ClockStamp {
  synchronized: boolean;
  bootId: string;
  monotonicMs: number;
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** Reads this boot's id and whether the clock is synchronized (the timesyncd file exists). */
export class ClockWatch {
  readonly #syncFile: string;
  #bootId: string | undefined;
  /** The wall clock and monotonic time last seen while unsynchronized, in this boot. */
  #unsynced: { wallMs: number; mono: number } | undefined;

  /** The offset last recorded from a trusted time in this boot. */
  #trustedOffsetMs: number | undefined;

  constructor(syncFile: string) {
    this.#syncFile = syncFile;
  }

  async stamp(): Promise<ClockStamp> {
    this.#bootId ??= (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    const mono = monotonicMs();
    const synchronized = await exists(this.#syncFile);
    if (!synchronized) this.#unsynced = { wallMs: Date.now(), mono };
    return { synchronized, bootId: this.#bootId, monotonicMs: mono };
  }

  /**
   * When the clock was seen unsynchronized in this boot and is synchronized now: the correction
   * (this boot's monotonic time ↔ true time, and the step from the old wall clock), once.
   */
  async correction(): Promise<JsonObject | null> {
    const before = this.#unsynced;
    const now = await this.stamp();
    if (!before || !now.synchronized) return null;
    this.#unsynced = undefined;
    const trueMs = Date.now();
    const systemMs = before.wallMs + (now.monotonicMs - before.mono);
    return {
      bootId: now.bootId,
      monotonicMs: now.monotonicMs,
      trueTime: new Date(trueMs).toISOString(),
      systemTime: new Date(systemMs).toISOString(),
      offsetMs: Math.round(trueMs - systemMs),
      source: 'timesyncd',
    };
  }

  /**
   * The `clock.corrected` detail for a time learnt from the endpoint, when this clock is off by more
   * than `maxOffsetMs` and the offset moved by more than that since the last one recorded in this
   * boot (a clock the gateway cannot set is reported once, not every window); else null.
   */
  async trustedCorrection(time: TrustedTime, maxOffsetMs: number): Promise<JsonObject | null> {
    const { bootId } = await this.stamp();
    if (Math.abs(time.offsetMs) <= maxOffsetMs) return null;
    const last = this.#trustedOffsetMs;
    if (last !== undefined && Math.abs(time.offsetMs - last) <= maxOffsetMs) return null;
    this.#trustedOffsetMs = time.offsetMs;
    return {
      bootId,
      monotonicMs: time.monotonicMs,
      trueTime: new Date(time.trueMs).toISOString(),
      systemTime: new Date(time.systemMs).toISOString(),
      offsetMs: time.offsetMs,
      source: time.source,
    };
  }
}

/**
 * Before a window connects: asks the endpoint for the time (`uplink.trustedTime`) and records
 * `clock.corrected` when this gateway's clock is off by more than `trustedTime.maxOffsetMs`. Never
 * rejects: a failure is logged, and a clock so wrong that TLS fails is reported by the window itself.
 */
export async function checkTrustedTime(
  uplink: UplinkConfig,
  clock: ClockWatch,
  journal: EventJournal,
  log: Logger,
): Promise<void> {
  if (!uplink.trustedTime.enabled) return;
  try {
    const time = await fetchTrustedTime(uplink);
    log.info(
      { offsetMs: time.offsetMs, uncertaintyMs: time.uncertaintyMs },
      'trusted time from the endpoint',
    );
    const detail = await clock.trustedCorrection(time, uplink.trustedTime.maxOffsetMs);
    if (detail) await journal.add('clock.corrected', detail);
  } catch (err) {
    log.warn({ err }, 'no trusted time from the endpoint');
  }
}

/** What the journal keeps in the cache's state, as one value. */
interface JournalState {
  /** The id given to the last event; never given again. */
  lastId: number;
  /** Events waiting for upload, oldest first. */
  pending: PendingEvent[];
  /**
   * The cache's drop counter (`health().dropped`) as far as `cache.records-dropped` events reported
   * it. Absent after an upgrade from the two-write journal: drops before it cannot be told apart.
   */
  reportedDrops?: number;
}

/**
 * Gateway events (event.schema.json) kept in the cache's state until the broker acknowledged them,
 * so that they survive restarts and arrive with the next window. The pending list, the last id and
 * the reported drops are one value written in one synced write: a crash keeps all of the old state
 * or all of the new, so an id is never given twice and a drop never reported twice.
 */
export class EventJournal {
  readonly #cache: LevelCache;
  readonly #gatewayId: string;
  readonly #clock: ClockWatch;
  readonly #log: Logger;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: { cache: LevelCache; gatewayId: string; clock: ClockWatch; logger: Logger }) {
    this.#cache = options.cache;
    this.#gatewayId = options.gatewayId;
    this.#clock = options.clock;
    this.#log = options.logger;
  }

  /** Records one event durably. Never rejects (a failure is logged). */
  add(type: GatewayEventType, detail: JsonObject): Promise<void> {
    return this.#serial(async () => {
      const state = await this.#load();
      await this.#save(await this.#append(state, type, detail));
    });
  }

  /**
   * Records `cache.records-dropped` for the drops of `total` (the cache's drop counter, ever) not
   * reported yet, whenever they happened (before a start, after the last check before a stop), each
   * once. Writes nothing when there is nothing new. Never rejects (a failure is logged).
   */
  reportDrops(total: number): Promise<void> {
    return this.#serial(async () => {
      const state = await this.#load();
      const reported = state.reportedDrops ?? total;
      if (state.reportedDrops === total) return;
      const next = { ...state, reportedDrops: total };
      if (total <= reported) return this.#save(next);
      await this.#save(await this.#append(next, 'cache.records-dropped', { count: total - reported, total }));
    });
  }

  /** Events waiting for upload, oldest first. */
  async pending(): Promise<PendingEvent[]> {
    return (await this.#load()).pending;
  }

  /** Forgets the events the broker acknowledged. */
  remove(eventIds: number[]): Promise<void> {
    const ids = new Set(eventIds);
    return this.#serial(async () => {
      const state = await this.#load();
      await this.#save({ ...state, pending: state.pending.filter((e) => !ids.has(e.eventId)) });
    });
  }

  async #append(state: JournalState, type: GatewayEventType, detail: JsonObject): Promise<JournalState> {
    const eventId = state.lastId + 1;
    const event = {
      schemaVersion: 1,
      gatewayId: this.#gatewayId,
      eventId,
      type,
      at: new Date().toISOString(),
      clock: await this.#clock.stamp(),
      detail,
    };
    const pending = [...state.pending, event];
    const dropped = pending.length - maxPending;
    if (dropped > 0) this.#log.warn({ dropped }, 'too many events waiting: the oldest were dropped');
    this.#log.info({ type, eventId }, 'gateway event');
    return { ...state, lastId: eventId, pending: pending.slice(Math.max(0, dropped)) };
  }

  async #load(): Promise<JournalState> {
    const state = await this.#cache.getState<JournalState>(journalKey);
    if (state) return state;
    const pending = await this.#cache.getState<PendingEvent[]>(legacyPendingKey);
    const lastId = await this.#cache.getState<number>(legacyLastIdKey);
    if (pending === undefined && lastId === undefined) return { lastId: 0, pending: [], reportedDrops: 0 };
    // The two-write journal of earlier releases: its list may hold an id its counter does not show.
    const highest = Math.max(0, ...(pending ?? []).map((e) => Number(e.eventId) || 0));
    return { lastId: Math.max(lastId ?? 0, highest), pending: pending ?? [] };
  }

  #save(state: JournalState): Promise<void> {
    return this.#cache.setState(journalKey, state);
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#queue
      .then(fn)
      .catch((err: unknown) => this.#log.error({ err }, 'event journal failed'));
    this.#queue = run;
    return run;
  }
}

/**
 * Turns adapter and cache changes into events. Adapter changes arrive as they happen, from each
 * adapter's `state` event ({@link EventMonitor.deviceState}), so a link that drops and comes back
 * between two polls is reported twice, in order. The cache has no such event: it is polled
 * ({@link EventMonitor.poll}) for `cache.full`, and its drops are counted against what the journal
 * reported, so drops before the first poll (the last run's after its last poll) and after the last
 * are each reported once.
 */
export class EventMonitor {
  readonly #journal: EventJournal;
  readonly #cache: LevelCache;
  /** The devices whose last reported event was `device.connected`. */
  readonly #connected = new Set<string>();
  /** The journal writes of device events, so that a stop waits for them before the cache closes. */
  #writes: Promise<void> = Promise.resolve();
  #full = false;

  constructor(options: { journal: EventJournal; cache: LevelCache }) {
    this.#journal = options.journal;
    this.#cache = options.cache;
  }

  /**
   * An adapter's state changed (its `state` event): `connected` is reported when the device was not
   * reported connected, `disconnected` as `device.lost` when it was. `starting` and `stopped` (a
   * reload, a stop) report nothing, so a device connected across a reload is not reported again.
   * Never throws; the write is queued in order.
   */
  deviceState(status: AdapterStatus): void {
    const { deviceId } = status;
    const detail = { deviceId, adapter: status.adapter };
    if (status.state === 'connected' && !this.#connected.has(deviceId)) {
      this.#connected.add(deviceId);
      this.#write(this.#journal.add('device.connected', detail));
    } else if (status.state === 'disconnected' && this.#connected.delete(deviceId)) {
      const lost = status.lastError ? { ...detail, lastErrorCode: status.lastError.code } : detail;
      this.#write(this.#journal.add('device.lost', lost));
    }
  }

  /** Records what changed in the cache since the previous poll, after the device events queued. */
  async poll(): Promise<void> {
    await this.#writes;
    const health = await this.#cache.health();
    if (health.full && !this.#full) {
      const stats = await this.#cache.stats();
      await this.#journal.add('cache.full', { records: stats.records, bytes: stats.bytes });
    }
    this.#full = health.full;
    await this.#journal.reportDrops(health.dropped);
  }

  #write(added: Promise<void>): void {
    this.#writes = this.#writes.then(() => added);
  }
}
