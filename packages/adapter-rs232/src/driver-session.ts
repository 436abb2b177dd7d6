import type { ByteLink, ProtocolDriver, ProtocolSession, SessionReport } from '@attache/core';
import { isGatewayError, systemClock } from '@attache/core';
import type { AdapterReport } from './adapter-report.js';
import type { SerialLink, SerialSession, SessionContext } from './session.js';

/** The adapter's side of a polled device's presence: answering or not while the port stays open. */
export type Presence = (answering: boolean) => void;

/** The open port as the link a protocol session writes to. */
function byteLink(port: SerialLink, name: string): ByteLink {
  return {
    name,
    get open() {
      return port.isOpen;
    },
    write: (bytes) => {
      if (!port.isOpen) return false;
      port.write(bytes);
      return true;
    },
    pause: () => void port.pause(),
    resume: () => void port.resume(),
    close: () => {
      if (port.isOpen) port.close();
    },
  };
}

/** The adapter's counters and log, as a protocol session reports to them. */
function sessionReport(report: AdapterReport, presence: Presence): SessionReport {
  return {
    counts: report.counts,
    log: report.log,
    frame: () => {
      report.counts.frames++;
    },
    stored: (n = 1) => {
      report.counts.stored += n;
    },
    malformed: (err, bytes, what) => report.malformed(err, bytes, what),
    refused: (err, n) => report.refused(err, n),
    unanswered: (what) => {
      report.counts.unanswered = (report.counts.unanswered ?? 0) + 1;
      report.log.debug({ request: what, unanswered: report.counts.unanswered }, 'request unanswered');
    },
    answering: (answering, err) => {
      if (!answering) {
        const message = err instanceof Error ? err.message : 'device not answering';
        report.lastError = { code: isGatewayError(err) ? err.code : 'ATTACHE_TIMEOUT', message };
      }
      presence(answering);
    },
  };
}

/**
 * Runs a `ProtocolDriver` (MEDIBUS, IntelliVue: devices that must be asked) on the ports the adapter
 * opens: one protocol session per port, fed the port's bytes and ended when the port closes.
 */
export class DriverSession implements SerialSession {
  readonly #ctx: SessionContext;
  readonly #driver: ProtocolDriver;
  readonly #report: SessionReport;
  readonly #sessions = new Set<ProtocolSession>();

  constructor(ctx: SessionContext, driver: ProtocolDriver, presence: Presence) {
    this.#ctx = ctx;
    this.#driver = driver;
    this.#report = sessionReport(ctx.report, presence);
  }

  attach(port: SerialLink): void {
    const { device, sink, refusing } = this.#ctx;
    const session = this.#driver.open(byteLink(port, device.port.path), {
      deviceId: device.id,
      sink,
      refusing,
      report: this.#report,
      clock: systemClock,
    });
    this.#sessions.add(session);
    port.on('data', (chunk: Buffer) => session.receive(chunk));
    port.once('close', () => {
      session.end();
      void session.drained().then(() => this.#sessions.delete(session));
    });
  }

  async drained(): Promise<void> {
    await Promise.all([...this.#sessions].map((s) => s.drained()));
  }

  close(): Promise<void> {
    return this.#driver.close();
  }
}
