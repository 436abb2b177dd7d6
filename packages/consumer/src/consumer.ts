import { ConsumerError } from './errors.js';
import {
  addToRanges,
  advance,
  type BootCorrection,
  emptyState,
  type GatewayState,
  inRanges,
  isGatewayState,
  refreshGaps,
  rememberBoot,
  settle,
} from './gateway-state.js';
import type { AttacheRecord, BatchMessage } from './generated/batch.js';
import type { GatewayEvent, GatewayStateMessage } from './generated/uplink-messages.js';
import { type NamedObservation, nameObservation } from './names.js';
import { type ParsedMessage, parseMessage } from './parse.js';
import { MemoryStateStore, type StateStore } from './state-store.js';
import { type TimeSource, timeOf } from './time.js';

export interface ConsumerOptions {
  /** Where dedupe state lives between messages and restarts. Default: a new MemoryStateStore. */
  store?: StateStore;
  /** The consumer's clock in ms since the epoch (inject one in tests). Default `Date.now`. */
  now?: () => number;
  /**
   * How long a gap waits before it is reported, in ms. A window's batches may be acknowledged out of
   * order and a broken window re-sends at the next one: wait at least the longest time between two
   * windows of a gateway. Default 86 400 000 (a day).
   */
  gapWaitMs?: number;
  /** Most open gaps kept per gateway; past it the oldest is reported `abandoned` and settled. Default 1000. */
  maxGaps?: number;
  /** Refuse a compressed batch that inflates past this many bytes. Default 16 MiB. */
  maxInflatedBytes?: number;
}

/** One record, delivered once. */
export interface ConsumedRecord {
  gatewayId: string;
  seq: number;
  deviceId: string;
  /** `device-event`: the record carries a device event (`record.event`: ADT, alarm, host query). */
  kind: 'reading' | 'device-event';
  /** True for a device alarm (HL7 ORU^R40): the alarm and the value that raised it are in `observations`. */
  alarm: boolean;
  /** The best known capture time (RFC 3339), and how far to trust it. */
  time: string;
  timeSource: TimeSource;
  observations: NamedObservation[];
  /** The record as the gateway sent it. */
  record: AttacheRecord;
}

/** One gateway event, delivered once. */
export interface ConsumedEvent {
  gatewayId: string;
  time: string;
  timeSource: TimeSource;
  event: GatewayEvent;
}

/**
 * A range of seqs that did not arrive within `gapWaitMs`. `dropped`: the gateway's
 * `cache.records-dropped` events account for it; settled. `not-yet-uploaded`: nothing explains it
 * yet; still open (its records are delivered if they come, or it is reported `dropped` later).
 * `abandoned`: more than `maxGaps` gaps were open; settled unexplained.
 */
export interface GapReport {
  gatewayId: string;
  from: number;
  to: number;
  status: 'dropped' | 'not-yet-uploaded' | 'abandoned';
  /** When the gap was first seen (ms, the consumer's clock). */
  since: number;
}

/** Records already delivered with an unknown time whose boot has now been corrected: re-time them. */
export interface Retime {
  gatewayId: string;
  bootId: string;
  correction: BootCorrection;
  /**
   * The delivered records concerned, as [from, to] seq ranges. Ranges may also cover records that
   * were delivered with `timeSource: 'device'` (past 64 ranges per boot, neighbours are joined):
   * re-time only records whose stored `timeSource` is `unknown`.
   */
  seqRanges: [number, number][];
}

/** What one message (or a sweep) yields. Nothing is settled until `commit()` resolves. */
export interface Delivery {
  kind: ParsedMessage['kind'] | 'sweep';
  gatewayId: string;
  /** New records, in seq order; duplicates left out. */
  records: ConsumedRecord[];
  /** New gateway events; duplicates left out. */
  events: ConsumedEvent[];
  /** The state message, for kind `state` (state messages are snapshots: no dedupe). */
  state?: GatewayStateMessage;
  /** Records and events left out as already delivered. */
  duplicates: number;
  gaps: GapReport[];
  retimes: Retime[];
  /**
   * Records the new dedupe state. Call it after storing the delivery; rejects with
   * ATTACHE_CONSUMER_CONFLICT when another worker committed for this gateway in between (process the
   * message again: what that worker stored is left out as duplicates).
   */
  commit(): Promise<void>;
}

/** Most seq ranges kept per boot awaiting a correction; past it neighbours are joined. */
const MAX_UNTIMED_RANGES = 64;

function addUntimed(ranges: [number, number][], seq: number): void {
  addToRanges(ranges, seq, seq);
  if (ranges.length > MAX_UNTIMED_RANGES) {
    const [first, second] = ranges.splice(0, 2) as [[number, number], [number, number]];
    ranges.unshift([first[0], second[1]]);
  }
}

/** Most event ids kept above the floor per gateway. */
const RECENT_EVENTS = 256;

/**
 * Turns the messages of a fleet into records delivered exactly once, per gateway and seq.
 * `receive` + `commit` for a store-then-commit pipeline (a Lambda); `ingest` when commit-at-once is fine.
 */
export class MessageConsumer {
  readonly #store: StateStore;
  readonly #now: () => number;
  readonly #gapWaitMs: number;
  readonly #maxGaps: number;
  readonly #maxInflatedBytes: number | undefined;

  constructor(options: ConsumerOptions = {}) {
    const { gapWaitMs = 86_400_000, maxGaps = 1000 } = options;
    if (!(gapWaitMs >= 0)) throw new TypeError('"gapWaitMs" must be 0 or more');
    if (!(Number.isInteger(maxGaps) && maxGaps >= 1)) throw new TypeError('"maxGaps" must be an integer ≥ 1');
    this.#store = options.store ?? new MemoryStateStore();
    this.#now = options.now ?? Date.now;
    this.#gapWaitMs = gapWaitMs;
    this.#maxGaps = maxGaps;
    this.#maxInflatedBytes = options.maxInflatedBytes;
  }

  /** Parses, validates and dedupes one message; see Delivery. Rejects with a ConsumerError. */
  async receive(payload: Uint8Array | string | object, topic?: string): Promise<Delivery> {
    const parsed = await parseMessage(payload, {
      ...(topic === undefined ? {} : { topic }),
      ...(this.#maxInflatedBytes === undefined ? {} : { maxInflatedBytes: this.#maxInflatedBytes }),
    });
    const { state, version } = await this.#load(parsed.gatewayId);
    const delivery = this.#emptyDelivery(parsed.kind, parsed.gatewayId, state, version);
    if (parsed.kind === 'telemetry') this.#records(state, parsed.batch, delivery);
    else if (parsed.kind === 'event') this.#event(state, parsed.event, delivery);
    else {
      delivery.state = parsed.state;
      // The cache's drop count ever, also in every state message: a drop the gateway's event missed
      // (dropped just before it stopped) still explains its gap.
      state.droppedTotal = Math.max(state.droppedTotal, parsed.state.state.cache.dropped);
    }
    delivery.gaps.push(...this.#reviewGaps(state, parsed.gatewayId));
    return delivery;
  }

  /** `receive` then `commit`, processing the message again on a conflict (up to 5 times). */
  async ingest(payload: Uint8Array | string | object, topic?: string): Promise<Delivery> {
    for (let attempt = 1; ; attempt++) {
      const delivery = await this.receive(payload, topic);
      try {
        await delivery.commit();
        return delivery;
      } catch (err) {
        if (attempt >= 5 || !(err instanceof ConsumerError && err.code === 'ATTACHE_CONSUMER_CONFLICT'))
          throw err;
      }
    }
  }

  /**
   * Reviews the open gaps of gateways that sent nothing lately (all in the store when `gatewayIds` is
   * not given): one Delivery of kind `sweep` per gateway with gaps to report. Run it periodically.
   */
  async sweep(gatewayIds?: string[]): Promise<Delivery[]> {
    const out: Delivery[] = [];
    for (const gatewayId of gatewayIds ?? (await this.#store.list())) {
      const { state, version } = await this.#load(gatewayId);
      const delivery = this.#emptyDelivery('sweep', gatewayId, state, version);
      delivery.gaps.push(...this.#reviewGaps(state, gatewayId));
      if (delivery.gaps.length > 0) out.push(delivery);
    }
    return out;
  }

  async #load(gatewayId: string): Promise<{ state: GatewayState; version: number }> {
    const stored = await this.#store.get(gatewayId);
    if (!stored) return { state: emptyState(), version: 0 };
    if (!isGatewayState(stored.state)) {
      throw new ConsumerError(
        'ATTACHE_CONSUMER_STORE',
        `the stored state of ${gatewayId} is not dedupe state`,
      );
    }
    return stored;
  }

  #emptyDelivery(kind: Delivery['kind'], gatewayId: string, state: GatewayState, version: number): Delivery {
    const store = this.#store;
    return {
      kind,
      gatewayId,
      records: [],
      events: [],
      duplicates: 0,
      gaps: [],
      retimes: [],
      async commit() {
        if (!(await store.put(gatewayId, state, version))) {
          throw new ConsumerError('ATTACHE_CONSUMER_CONFLICT', `the state of ${gatewayId} changed meanwhile`);
        }
      },
    };
  }

  #records(state: GatewayState, batch: BatchMessage, delivery: Delivery): void {
    for (const record of batch.records) {
      if (record.seq <= state.watermark || inRanges(state.above, record.seq)) {
        delivery.duplicates++;
        continue;
      }
      addToRanges(state.above, record.seq, record.seq);
      const { bootId } = record.clock;
      const timed = timeOf(record.capturedAt, record.clock, state.boots[bootId]);
      if (timed.timeSource === 'unknown') {
        state.untimed[bootId] ??= [];
        addUntimed(state.untimed[bootId], record.seq);
      }
      delivery.records.push({
        gatewayId: record.gatewayId,
        seq: record.seq,
        deviceId: record.deviceId,
        kind: record.event ? 'device-event' : 'reading',
        alarm: record.event?.type === 'hl7.oru-r40',
        ...timed,
        observations: record.observations.map(nameObservation),
        record,
      });
    }
    advance(state);
    refreshGaps(state, this.#now());
  }

  #event(state: GatewayState, event: GatewayEvent, delivery: Delivery): void {
    if (event.eventId <= state.eventFloor || state.recentEvents.includes(event.eventId)) {
      delivery.duplicates++;
      return;
    }
    state.recentEvents.push(event.eventId);
    state.recentEvents.sort((a, b) => a - b);
    while (state.recentEvents.length > RECENT_EVENTS) state.eventFloor = state.recentEvents.shift() as number;
    const { detail } = event;
    if (event.type === 'cache.records-dropped')
      state.droppedTotal = Math.max(state.droppedTotal, detail.total ?? 0);
    if (
      event.type === 'clock.corrected' &&
      detail.bootId &&
      detail.trueTime &&
      detail.monotonicMs !== undefined
    ) {
      const correction = { monotonicMs: detail.monotonicMs, trueTime: detail.trueTime };
      rememberBoot(state, detail.bootId, correction);
      const untimed = state.untimed[detail.bootId];
      if (untimed) {
        delivery.retimes.push({
          gatewayId: event.gatewayId,
          bootId: detail.bootId,
          correction,
          seqRanges: untimed,
        });
        delete state.untimed[detail.bootId];
      }
    }
    delivery.events.push({
      gatewayId: event.gatewayId,
      ...timeOf(event.at, event.clock, state.boots[event.clock.bootId]),
      event,
    });
  }

  /** Reports the gaps that waited long enough, in seq order, settling those the drops account for. */
  #reviewGaps(state: GatewayState, gatewayId: string): GapReport[] {
    const now = this.#now();
    const reports: GapReport[] = [];
    while (state.gaps.length > this.#maxGaps) {
      const oldest = state.gaps.shift() as NonNullable<GatewayState['gaps'][number]>;
      reports.push({ gatewayId, from: oldest.from, to: oldest.to, status: 'abandoned', since: oldest.since });
      settle(state, oldest.from, oldest.to);
    }
    for (const gap of [...state.gaps]) {
      if (now - gap.since < this.#gapWaitMs) continue;
      const budget = state.droppedTotal - state.droppedExplained;
      const dropped = Math.min(budget, gap.to - gap.from + 1);
      if (dropped > 0) {
        const to = gap.from + dropped - 1;
        reports.push({ gatewayId, from: gap.from, to, status: 'dropped', since: gap.since });
        state.droppedExplained += dropped;
        settle(state, gap.from, to);
        gap.from = to + 1;
      }
      if (gap.from <= gap.to && !gap.reported) {
        reports.push({ gatewayId, from: gap.from, to: gap.to, status: 'not-yet-uploaded', since: gap.since });
        gap.reported = true;
      }
    }
    refreshGaps(state, now);
    return reports;
  }
}
