import type { AdapterStatus, ReadingSink, SinkRefusing } from './contract.js';
import type { Logger } from './logger.js';

/** A pending timer of a {@link Clock}. */
export interface ClockTimer {
  /** Cancels the timer; a no-op once it fired. */
  cancel(): void;
}

/**
 * Time as protocol sessions, pollers, back-offs and rate-limited logs see it. Production code uses
 * {@link systemClock}; tests pass a clock they advance by hand, so nothing waits a real interval.
 */
export interface Clock {
  /** Wall-clock time, ms since the epoch (`Date.now()`). */
  now(): number;
  /** CLOCK_MONOTONIC time, ms since boot (see `monotonicMs`). */
  monotonicMs(): number;
  /** Calls `fn` once after `ms`. The timer never keeps the process alive. */
  setTimeout(fn: () => void, ms: number): ClockTimer;
}

/**
 * A byte link a transport opened for one session: a serial port, one accepted or dialled TCP
 * connection. The transport owns opening, reconnecting and back-off; the session only reads and writes.
 */
export interface ByteLink {
  /** Where the bytes come from, for logs (`/dev/ttyUSB0`, `10.0.0.5:40112`). Never patient data. */
  readonly name: string;
  /** False once the link closed: writes are then dropped. */
  readonly open: boolean;
  /** Queues bytes to the device. Returns false (and drops them) when the link is closed. */
  write(bytes: Buffer): boolean;
  /** Stops delivering received bytes until `resume()` (back-pressure while a message is stored). */
  pause(): void;
  resume(): void;
  /** Closes the link; the transport decides whether to reconnect. */
  close(): void;
}

/** Counters of one device, one meaning each; `AdapterStatus` shows them. */
export type SessionCounts = Pick<AdapterStatus, 'frames' | 'stored' | 'malformed' | 'refused'>;

/**
 * What a session reports to its adapter. `frames` counts the protocol's units (an ASTM message, a
 * line, an HL7 message, a poll reply), the same for every transport.
 */
export interface SessionReport {
  readonly counts: SessionCounts;
  /** The device's log (a child logger with `deviceId`): reasons and lengths only, never a frame's content. */
  readonly log: Logger;
  /** A protocol unit arrived. */
  frame(): void;
  /** `n` readings were durably stored. */
  stored(n?: number): void;
  /** A unit was refused as malformed; `bytes` is its length. */
  malformed(err: unknown, bytes: number | undefined, what?: string): void;
  /** The sink rejected `n` readings (the device was told to keep them, where its protocol can). */
  refused(err: unknown, n?: number): void;
  /**
   * `bytes` arrived outside any protocol unit (before an MLLP start byte) and were discarded.
   * Optional: a report without it does not count junk.
   */
  junk?(bytes: number): void;
  /**
   * A polled device left a request unanswered (no valid reply in time; `what` names the request).
   * Optional: transports that show no such counter leave it out.
   */
  unanswered?(what: string): void;
  /**
   * A polled device stopped answering (`err` says why) or answers again (`err` undefined), while its
   * link stays open: the transport shows the device as disconnected or connected. Optional.
   */
  answering?(answering: boolean, err?: unknown): void;
}

/** What a transport hands a protocol session. */
export interface SessionContext {
  deviceId: string;
  sink: ReadingSink;
  /** True while the sink would refuse every reading: protocols that can say "busy" say it first. */
  refusing: SinkRefusing;
  report: SessionReport;
  clock: Clock;
}

/**
 * One protocol conversation on one open link: it frames the received bytes, answers the device as its
 * protocol requires (ACK only after the sink resolved, NAK or AE on refusal), asks a polled device for
 * data, and hands readings to the sink in the order the device sent them. A new link gets a new session.
 */
export interface ProtocolSession {
  /** Bytes the link received. Never throws: bad bytes are counted, logged and refused in the protocol's terms. */
  receive(chunk: Buffer): void;
  /**
   * The link closed or broke. The session stops its timers; a message cut off is the device's to re-send
   * (it was never acknowledged). Readings already handed to the sink are still awaited by `drained()`.
   */
  end(): void;
  /** Resolves once every reading handed to the sink so far has settled. */
  drained(): Promise<void>;
}

/**
 * A protocol as a transport sees it: one per configured device, opening a session for each link.
 * `close()` releases what the driver holds for the device (files, timers) after its last session drained.
 */
export interface ProtocolDriver {
  /** The record's `protocol` (`astm`, `hl7-mllp`, `kv-line`, `medibus`, …). */
  readonly protocol: string;
  open(link: ByteLink, context: SessionContext): ProtocolSession;
  close(): Promise<void>;
}
