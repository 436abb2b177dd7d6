import type {
  ByteLink,
  ClockTimer,
  InstrumentIdentity,
  MedibusPoll,
  ProtocolSession,
  SessionContext,
} from '@attache/core';
import { GatewayError } from '@attache/core';
import { parseIdentity } from './blocks.js';
import { type CycleData, collect, type Outgoing, readings, type Stored } from './cycle.js';
import {
  Command,
  encodeCommand,
  encodeReply,
  type FrameEvent,
  MedibusFramer,
  type MedibusMessage,
} from './frame.js';

/** The request of each `poll.ask` entry. */
const ASK: Record<MedibusPoll['ask'][number], number> = {
  measurements: Command.measurements,
  'measurements-cp2': Command.measurementsCp2,
  alarms: Command.alarms,
  settings: Command.settings,
  'alarm-limits': Command.lowLimits,
  text: Command.text,
};

interface Pending {
  command: number;
  tries: number;
  timer: ClockTimer;
  onReply: (reply: MedibusMessage) => void;
}

const name = (command: number) => `0x${command.toString(16).padStart(2, '0')}`;

/**
 * One MEDIBUS conversation on an open link. It initializes communication (ICC), asks the device's
 * identification, then every `poll.periodMs` sends the requests of `poll.ask` one at a time and hands
 * the cycle's readings to the sink; it sends a NOP whenever it would otherwise stay silent for half
 * the link timeout, and echoes every command the device sends. A request without a valid reply is
 * sent again up to `poll.retries` times; then the device is reported as not answering and ICC is
 * sent again every `poll.linkTimeoutMs` until it answers.
 */
export class MedibusSession implements ProtocolSession {
  readonly #link: ByteLink;
  readonly #ctx: SessionContext;
  readonly #poll: MedibusPoll;
  readonly #framer = new MedibusFramer();
  readonly #inflight = new Set<Promise<void>>();
  readonly #stored: Stored = {};
  #pending: Pending | undefined;
  #timer: ClockTimer | undefined;
  #ended = false;
  #answering = true;
  #ready = false;
  #nextCycleAt = 0;
  #instrument: InstrumentIdentity | undefined;

  constructor(link: ByteLink, ctx: SessionContext, poll: MedibusPoll) {
    this.#link = link;
    this.#ctx = ctx;
    this.#poll = poll;
    this.#initialize();
  }

  receive(chunk: Buffer): void {
    if (this.#ended) return;
    this.#framer.push(chunk, (event) => this.#onFrame(event));
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#timer?.cancel();
    this.#pending?.timer.cancel();
    this.#pending = undefined;
    const cut = this.#framer.reset();
    if (cut > 0) this.#ctx.report.malformed(new Error('message cut off by the link closing'), cut);
  }

  async drained(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
  }

  #onFrame(event: FrameEvent): void {
    const { report } = this.#ctx;
    if (!event.ok) {
      report.malformed(new Error(event.reason), event.bytes, 'MEDIBUS message discarded');
      // A corrupt reply is a missing one: ask again now rather than wait for the timeout.
      if (this.#pending !== undefined && event.reason === 'bad checksum') this.#retry();
      return;
    }
    report.frame();
    const message = event.message;
    if (message.kind === 'command') {
      // The device's own command (ICC, NOP, …): the protocol wants it echoed.
      this.#link.write(encodeReply(message.command));
      return;
    }
    const pending = this.#pending;
    if (pending === undefined || pending.command !== message.command) {
      report.log.debug({ command: name(message.command) }, 'reply to no pending request ignored');
      return;
    }
    pending.timer.cancel();
    this.#pending = undefined;
    if (!this.#answering) {
      this.#answering = true;
      report.log.info('device answering again');
      report.answering?.(true);
    }
    pending.onReply(message);
  }

  /** Sends `command` and waits for its reply (one request at a time). */
  #request(command: number, onReply: (reply: MedibusMessage) => void): void {
    const pending: Pending = { command, tries: 0, timer: { cancel: () => undefined }, onReply };
    this.#pending = pending;
    this.#send(pending);
  }

  #send(pending: Pending): void {
    pending.timer = this.#ctx.clock.setTimeout(() => this.#timedOut(), this.#poll.replyTimeoutMs);
    this.#link.write(encodeCommand(pending.command));
  }

  #timedOut(): void {
    const pending = this.#pending;
    if (pending === undefined || this.#ended) return;
    this.#ctx.report.unanswered?.(name(pending.command));
    this.#retry();
  }

  #retry(): void {
    const pending = this.#pending as Pending;
    pending.timer.cancel();
    pending.tries++;
    if (pending.tries <= this.#poll.retries) {
      this.#send(pending);
      return;
    }
    this.#pending = undefined;
    this.#lost(pending.command);
  }

  #lost(command: number): void {
    this.#ready = false;
    if (this.#answering) {
      this.#answering = false;
      const err = new GatewayError(
        'ATTACHE_TIMEOUT',
        `MEDIBUS device did not answer request ${name(command)} (${this.#poll.retries + 1} tries)`,
      );
      this.#ctx.report.log.warn({ err }, 'device not answering, initializing again');
      this.#ctx.report.answering?.(false, err);
    }
    this.#wait(this.#poll.linkTimeoutMs, () => this.#initialize());
  }

  #wait(ms: number, fn: () => void): void {
    this.#timer?.cancel();
    this.#timer = this.#ctx.clock.setTimeout(() => {
      if (!this.#ended) fn();
    }, ms);
  }

  #initialize(): void {
    this.#request(Command.icc, () => {
      this.#request(Command.identify, (reply) => {
        const identity = parseIdentity(reply.data);
        this.#instrument = Object.keys(identity).length > 0 ? identity : undefined;
        this.#ready = true;
        this.#nextCycleAt = this.#ctx.clock.monotonicMs();
        this.#cycle();
      });
    });
  }

  /** Idle until the next cycle, with a NOP whenever half the link timeout passes first. */
  #idle(): void {
    const keepAlive = Math.floor(this.#poll.linkTimeoutMs / 2);
    const untilCycle = this.#nextCycleAt - this.#ctx.clock.monotonicMs();
    if (untilCycle <= keepAlive) {
      this.#wait(Math.max(0, untilCycle), () => this.#cycle());
      return;
    }
    this.#wait(keepAlive, () => this.#request(Command.nop, () => this.#idle()));
  }

  #cycle(): void {
    if (!this.#ready) return;
    this.#nextCycleAt += this.#poll.periodMs;
    const now = this.#ctx.clock.monotonicMs();
    // A cycle that ran late does not make the next ones pile up.
    if (this.#nextCycleAt < now) this.#nextCycleAt = now + this.#poll.periodMs;
    if (this.#inflight.size > 0) {
      // The previous cycle is still being stored: keep the link alive and ask again next cycle.
      this.#ctx.report.log.debug('previous poll still being stored, cycle skipped');
      this.#request(Command.nop, () => this.#idle());
      return;
    }
    const cycle: CycleData = { observations: [], raw: [] };
    const commands = this.#commands();
    const next = (i: number): void => {
      const command = commands[i];
      if (command === undefined) {
        this.#deliver(cycle);
        this.#idle();
        return;
      }
      this.#request(command, (reply) => {
        const problem = collect(cycle, reply);
        if (problem !== undefined)
          this.#ctx.report.malformed(new Error(problem), reply.length, 'MEDIBUS reply refused');
        next(i + 1);
      });
    };
    next(0);
  }

  /**
   * The cycle's requests: `poll.ask` in order, except that measured data comes last, so that its reply
   * is stored at once rather than after the other requests of the cycle.
   */
  #commands(): number[] {
    const asked = this.#poll.ask.flatMap((ask) =>
      ask === 'alarm-limits' ? [Command.lowLimits, Command.highLimits] : [ASK[ask]],
    );
    const measured = (c: number) => c === Command.measurements || c === Command.measurementsCp2;
    return [...asked.filter((c) => !measured(c)), ...asked.filter(measured)];
  }

  #deliver(cycle: CycleData): void {
    const { clock, deviceId } = this.#ctx;
    const base = {
      deviceId,
      receivedAt: clock.now(),
      monotonicMs: clock.monotonicMs(),
      ...(this.#instrument === undefined ? {} : { instrument: this.#instrument }),
    };
    for (const out of readings(base, cycle, this.#stored)) this.#store(out);
  }

  #store(out: Outgoing): void {
    const { sink, report } = this.#ctx;
    const done = sink(out.reading).then(
      () => {
        report.stored(1);
        out.remember?.(this.#stored);
      },
      (err: unknown) => report.refused(err),
    );
    this.#inflight.add(done);
    void done.finally(() => this.#inflight.delete(done));
  }
}
