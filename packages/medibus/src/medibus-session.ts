import type { ByteLink, InstrumentIdentity, MedibusPoll, SessionContext } from '@attache/core';
import { GatewayError } from '@attache/core';
import { PolledSession, type Request } from '@attache/polled';
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

interface Pending extends Request {
  command: number;
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
export class MedibusSession extends PolledSession<FrameEvent, Pending> {
  readonly #ask: MedibusPoll['ask'];
  readonly #stored: Stored = {};
  #instrument: InstrumentIdentity | undefined;

  constructor(link: ByteLink, ctx: SessionContext, poll: MedibusPoll) {
    super(link, ctx, poll, {
      framer: new MedibusFramer(),
      cutOff: 'message cut off by the link closing',
      restarting: 'initializing again',
    });
    this.#ask = poll.ask;
    this.start();
  }

  protected onFrame(event: FrameEvent): void {
    const { report } = this.ctx;
    if (!event.ok) {
      report.malformed(new Error(event.reason), event.bytes, 'MEDIBUS message discarded');
      // A corrupt reply is a missing one: ask again now rather than wait for the timeout.
      if (this.pending !== undefined && event.reason === 'bad checksum') this.retry();
      return;
    }
    report.frame();
    const message = event.message;
    if (message.kind === 'command') {
      // The device's own command (ICC, NOP, …): the protocol wants it echoed.
      this.link.write(encodeReply(message.command));
      return;
    }
    const pending = this.pending;
    if (pending === undefined || pending.command !== message.command) {
      report.log.debug({ command: name(message.command) }, 'reply to no pending request ignored');
      return;
    }
    this.settle(pending);
    pending.onReply(message);
  }

  /** Sends `command` and waits for its reply (one request at a time). */
  #request(command: number, onReply: (reply: MedibusMessage) => void): void {
    this.request({ what: name(command), frame: encodeCommand(command), command, onReply });
  }

  protected notAnswering(what: string): Error {
    return new GatewayError(
      'ATTACHE_TIMEOUT',
      `MEDIBUS device did not answer request ${what} (${this.poll.retries + 1} tries)`,
    );
  }

  /** ICC, then the identification; then the polls start. */
  protected start(): void {
    this.#request(Command.icc, () => {
      this.#request(Command.identify, (reply) => {
        const identity = parseIdentity(reply.data);
        this.#instrument = Object.keys(identity).length > 0 ? identity : undefined;
        this.startCycles();
        this.cycle();
      });
    });
  }

  protected keepAlive(then: () => void): void {
    this.#request(Command.nop, then);
  }

  protected ask(then: () => void): void {
    const cycle: CycleData = { observations: [], raw: [] };
    const commands = this.#commands();
    const next = (i: number): void => {
      const command = commands[i];
      if (command === undefined) {
        this.#deliver(cycle);
        then();
        return;
      }
      this.#request(command, (reply) => {
        const problem = collect(cycle, reply);
        if (problem !== undefined)
          this.ctx.report.malformed(new Error(problem), reply.length, 'MEDIBUS reply refused');
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
    const asked = this.#ask.flatMap((ask) =>
      ask === 'alarm-limits' ? [Command.lowLimits, Command.highLimits] : [ASK[ask]],
    );
    const measured = (c: number) => c === Command.measurements || c === Command.measurementsCp2;
    return [...asked.filter((c) => !measured(c)), ...asked.filter(measured)];
  }

  #deliver(cycle: CycleData): void {
    const { clock, deviceId } = this.ctx;
    const base = {
      deviceId,
      receivedAt: clock.now(),
      monotonicMs: clock.monotonicMs(),
      ...(this.#instrument === undefined ? {} : { instrument: this.#instrument }),
    };
    for (const out of readings(base, cycle, this.#stored)) this.#store(out);
  }

  #store(out: Outgoing): void {
    const { remember } = out;
    this.store(out.reading, remember && (() => remember(this.#stored)));
  }
}
