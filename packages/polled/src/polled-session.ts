import type { ByteLink, ClockTimer, DeviceReading, ProtocolSession, SessionContext } from '@attache/core';

/** The timing of a polled conversation, as each polled protocol's `poll` configures it. */
export interface PolledTiming {
  /** Time from the start of one poll cycle to the start of the next. */
  periodMs: number;
  /** Time a request waits for its reply before it counts as unanswered. */
  replyTimeoutMs: number;
  /** How many times an unanswered request is sent again before the device counts as lost. */
  retries: number;
  /** The link timeout: a keep-alive goes out after half of it, a lost device is asked again after all of it. */
  linkTimeoutMs: number;
}

/** A protocol's framer: splits received bytes into frame events; `reset` returns the bytes it dropped. */
export interface Framer<E> {
  push(chunk: Buffer, emit: (event: E) => void): void;
  reset(): number;
}

/** The one request in flight. Protocols extend it with what they need to match its reply. */
export interface Request {
  /** Names the request in the `unanswered` counter and in logs. */
  what: string;
  /** The bytes written to the link, again on each retry. */
  frame: Buffer;
  tries: number;
  timer: ClockTimer;
}

/** What differs between polled protocols in the shared machinery. */
export interface PolledSessionOptions<E> {
  framer: Framer<E>;
  /** The malformed reason counted when the link ends in the middle of a frame. */
  cutOff: string;
  /** What the session does after the device stopped answering, for the log ("initializing again"). */
  restarting: string;
}

const NO_TIMER: ClockTimer = { cancel: () => undefined };

/**
 * The machinery of a session that polls a device which says nothing until asked: one request in
 * flight with its reply timer, retried up to `retries` times, each timeout counted `unanswered`; the
 * device reported not answering after the last try and answering again at its next valid reply, with
 * {@link start} run again every `linkTimeoutMs` in between; a poll cycle every `periodMs` with a
 * keep-alive whenever the link would otherwise stay silent for half the link timeout, a cycle skipped
 * while the previous one is still being stored; sink calls that {@link drained} waits for; and
 * {@link end}, which stops every timer and counts a frame the link cut off. Every rule of the protocol
 * itself (what is sent, which reply matches, what a reply holds) stays in the subclass.
 */
export abstract class PolledSession<E, R extends Request = Request> implements ProtocolSession {
  protected readonly link: ByteLink;
  protected readonly ctx: SessionContext;
  protected readonly poll: PolledTiming;
  /** The request in flight, if any. */
  protected pending: R | undefined;
  /** True once the conversation is set up and polls may run. */
  protected ready = false;
  readonly #framer: Framer<E>;
  readonly #cutOff: string;
  readonly #restarting: string;
  readonly #inflight = new Set<Promise<void>>();
  #timer: ClockTimer | undefined;
  #ended = false;
  #answering = true;
  #nextCycleAt = 0;

  constructor(link: ByteLink, ctx: SessionContext, poll: PolledTiming, options: PolledSessionOptions<E>) {
    this.link = link;
    this.ctx = ctx;
    this.poll = poll;
    this.#framer = options.framer;
    this.#cutOff = options.cutOff;
    this.#restarting = options.restarting;
  }

  receive(chunk: Buffer): void {
    if (this.#ended) return;
    this.#framer.push(chunk, (event) => this.onFrame(event));
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#timer?.cancel();
    this.abandon();
    const cut = this.#framer.reset();
    if (cut > 0) this.ctx.report.malformed(new Error(this.#cutOff), cut);
  }

  async drained(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
  }

  /** One event of the framer. */
  protected abstract onFrame(event: E): void;

  /** Sets the conversation up (first, and again every `linkTimeoutMs` while the device is lost). */
  protected abstract start(): void;

  /** The error reported when `what` went unanswered after the last try. */
  protected abstract notAnswering(what: string): Error;

  /** Sends a keep-alive request, then `then`. */
  protected abstract keepAlive(then: () => void): void;

  /** One poll cycle's requests; stores what they bring, then `then`. */
  protected abstract ask(then: () => void): void;

  /** Makes `fields` the request in flight and writes its frame (unless `sendNow` is false: then only waits). */
  protected request(fields: Omit<R, 'tries' | 'timer'>, sendNow = true): void {
    const pending = { ...fields, tries: 0, timer: NO_TIMER } as R;
    this.pending = pending;
    if (sendNow) this.#send(pending);
    else pending.timer = this.#replyTimer();
  }

  /** The reply to `pending` came: its timer stops, and a device that was lost answers again. */
  protected settle(pending: R): void {
    pending.timer.cancel();
    // The reply's handler may have started the next request already.
    if (this.pending === pending) this.pending = undefined;
    if (!this.#answering) {
      this.#answering = true;
      this.ctx.report.log.info('device answering again');
      this.ctx.report.answering?.(true);
    }
  }

  /** A reply that goes on in further parts: waits for the next with a fresh timer. */
  protected rearm(pending: R): void {
    pending.timer.cancel();
    pending.timer = this.#replyTimer();
  }

  /** Drops the request in flight without a retry. */
  protected abandon(): void {
    this.pending?.timer.cancel();
    this.pending = undefined;
  }

  /** Sends the request in flight again (a missing or corrupt reply), or reports it lost after the last try. */
  protected retry(): void {
    const pending = this.pending as R;
    pending.timer.cancel();
    pending.tries++;
    if (pending.tries <= this.poll.retries) {
      this.#send(pending);
      return;
    }
    this.pending = undefined;
    this.lost(pending.what);
  }

  /** `what` went unanswered: polls stop, the device is reported not answering, {@link start} runs again later. */
  protected lost(what: string): void {
    this.ready = false;
    if (this.#answering) {
      this.#answering = false;
      const err = this.notAnswering(what);
      this.ctx.report.log.warn({ err }, `device not answering, ${this.#restarting}`);
      this.ctx.report.answering?.(false, err);
    }
    this.wait(this.poll.linkTimeoutMs, () => this.start());
  }

  /** Runs `fn` after `ms`, unless the session ended; replaces the previous wait. */
  protected wait(ms: number, fn: () => void): void {
    this.#timer?.cancel();
    this.#timer = this.ctx.clock.setTimeout(() => {
      if (!this.#ended) fn();
    }, ms);
  }

  /** The conversation is set up: polls may run, the first one due now. */
  protected startCycles(): void {
    this.ready = true;
    this.#nextCycleAt = this.ctx.clock.monotonicMs();
  }

  /** Idle until the next cycle, with a keep-alive whenever half the link timeout passes first. */
  protected idle(): void {
    const keepAlive = Math.floor(this.poll.linkTimeoutMs / 2);
    const untilCycle = this.#nextCycleAt - this.ctx.clock.monotonicMs();
    if (untilCycle <= keepAlive) {
      this.wait(Math.max(0, untilCycle), () => this.cycle());
      return;
    }
    this.wait(keepAlive, () => this.keepAlive(() => this.idle()));
  }

  /** One poll cycle, unless the conversation is not set up. */
  protected cycle(): void {
    if (!this.ready) return;
    this.#nextCycleAt += this.poll.periodMs;
    const now = this.ctx.clock.monotonicMs();
    // A cycle that ran late does not make the next ones pile up.
    if (this.#nextCycleAt < now) this.#nextCycleAt = now + this.poll.periodMs;
    if (this.#inflight.size > 0) {
      // The previous cycle is still being stored: keep the link alive and ask again next cycle.
      this.ctx.report.log.debug('previous poll still being stored, cycle skipped');
      this.keepAlive(() => this.idle());
      return;
    }
    this.ask(() => this.idle());
  }

  /** Hands `reading` to the sink; `remember` runs once it is stored. */
  protected store(reading: DeviceReading, remember?: () => void): void {
    const { sink, report } = this.ctx;
    const done = sink(reading).then(
      () => {
        report.stored(1);
        remember?.();
      },
      (err: unknown) => report.refused(err),
    );
    this.#inflight.add(done);
    void done.finally(() => this.#inflight.delete(done));
  }

  #send(pending: R): void {
    pending.timer = this.#replyTimer();
    this.link.write(pending.frame);
  }

  #replyTimer(): ClockTimer {
    return this.ctx.clock.setTimeout(() => this.#timedOut(), this.poll.replyTimeoutMs);
  }

  #timedOut(): void {
    const pending = this.pending;
    if (pending === undefined || this.#ended) return;
    this.ctx.report.unanswered?.(pending.what);
    this.retry();
  }
}
