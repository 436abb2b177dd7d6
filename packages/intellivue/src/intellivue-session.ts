import type { AlarmDraft, ByteLink, DeviceReading, IntelliVuePoll, SessionContext } from '@attache/core';
import { GatewayError } from '@attache/core';
import { PolledSession, type Request } from '@attache/polled';
import { encodeFrame, type FrameEvent, IntelliVueFramer } from './frame.js';
import { type PollContent, pollContent } from './observations.js';
import {
  associationRequest,
  Cmd,
  classify,
  type DataPdu,
  MDS_CREATE,
  mdsCreateResult,
  PolledObject,
  pollRequest,
  type Received,
  RoType,
  releaseResponse,
} from './pdu.js';

/** What the session waits for. */
interface Pending extends Request {
  /** True when `received` completes the wait. */
  accept: (received: Received) => boolean;
}

/**
 * One Data Export conversation with an IntelliVue monitor on an open link. It sends an Association
 * Request, answers the monitor's MDS Create Event Report with its result, then every `poll.periodMs`
 * sends one extended poll request per `poll.ask` entry (numerics, alerts) and hands the cycle's
 * readings to the sink; between cycles an MDS poll keeps the association alive when the period is
 * longer than half the link timeout. A request without a valid reply is sent again up to
 * `poll.retries` times; then the monitor is reported as not answering and a new association is
 * requested every `poll.linkTimeoutMs`. A Release Request is answered and an abort taken; both
 * lead to a new association.
 */
export class IntelliVueSession extends PolledSession<FrameEvent, Pending> {
  readonly #ask: IntelliVuePoll['ask'];
  #invokeId = 0;
  #pollNumber = 0;
  /** The alarm set last stored, to send an alarm event only on a change. */
  #storedAlarms: string | undefined;

  constructor(link: ByteLink, ctx: SessionContext, poll: IntelliVuePoll) {
    super(link, ctx, poll, {
      framer: new IntelliVueFramer(),
      cutOff: 'frame cut off by the link closing',
      restarting: 'associating again',
    });
    this.#ask = poll.ask;
    this.start();
  }

  protected onFrame(event: FrameEvent): void {
    const { report } = this.ctx;
    if (!event.ok) {
      report.malformed(new Error(event.reason), event.bytes, 'IntelliVue frame discarded');
      if (this.pending !== undefined && event.reason === 'bad FCS') this.retry();
      return;
    }
    let received: Received;
    try {
      received = classify(event.pdu);
    } catch (err) {
      report.malformed(err, event.pdu.length, 'IntelliVue PDU discarded');
      return;
    }
    report.frame();
    if (received.kind === 'finish' || received.kind === 'abort') {
      this.#dropped(received.kind);
      return;
    }
    const pending = this.pending;
    if (pending === undefined || !pending.accept(received)) {
      report.log.debug({ kind: received.kind }, 'PDU outside a pending request ignored');
      return;
    }
    this.settle(pending);
  }

  /** The monitor released or aborted the association: answer a release, then associate again. */
  #dropped(kind: 'finish' | 'abort'): void {
    this.ctx.report.log.info(
      { kind },
      kind === 'finish' ? 'monitor released the association' : 'monitor aborted the association',
    );
    if (kind === 'finish') this.link.write(encodeFrame(releaseResponse()));
    this.abandon();
    this.ready = false;
    this.wait(this.poll.replyTimeoutMs, () => this.start());
  }

  /** Sends `pdu` (unless `sendNow` is false: then only waits) and waits for what `accept` takes. */
  #request(what: string, pdu: Buffer, accept: (received: Received) => boolean, sendNow = true): void {
    this.request({ what, frame: encodeFrame(pdu), accept }, sendNow);
  }

  protected notAnswering(what: string): Error {
    return new GatewayError(
      'ATTACHE_TIMEOUT',
      `IntelliVue monitor did not answer the ${what} (${this.poll.retries + 1} tries)`,
    );
  }

  /** Requests the association; the monitor's accept leads to its MDS create. */
  protected start(): void {
    this.#request('association request', associationRequest(), (received) => {
      if (received.kind === 'refuse') {
        this.ctx.report.log.warn('monitor refused the association');
        this.pending = undefined;
        this.lost('association request');
        return true;
      }
      if (received.kind !== 'accept') return false;
      this.#awaitMdsCreate();
      return true;
    });
  }

  /** After the association: the monitor reports its MDS; the answer starts the polls. */
  #awaitMdsCreate(): void {
    // Nothing is sent while waiting for the monitor; a retry asks for the association again, which
    // the monitor answers with a new accept and MDS create.
    this.#request(
      'MDS create event',
      associationRequest(),
      (received) => {
        const data = received.kind === 'data' ? received.data : undefined;
        if (data?.roType !== RoType.invoke || data.command !== Cmd.confirmedEventReport) return false;
        const managedObject = data.body.bytes(6);
        data.body.u32(); // event time
        if (data.body.u16() !== MDS_CREATE) return false;
        this.link.write(encodeFrame(mdsCreateResult(data.invokeId, managedObject)));
        this.startCycles();
        this.wait(0, () => this.cycle());
        return true;
      },
      false,
    );
  }

  protected keepAlive(then: () => void): void {
    this.#pollObjects('keep-alive poll', PolledObject.mds, then);
  }

  /** One extended poll of `objectType`, its linked parts collected, then `done`. */
  #pollObjects(what: string, objectType: number, done: (parts: DataPdu[]) => void): void {
    this.#invokeId = (this.#invokeId + 1) & 0xffff;
    const invokeId = this.#invokeId;
    this.#pollNumber = (this.#pollNumber + 1) & 0xffff;
    const parts: DataPdu[] = [];
    this.#request(what, pollRequest(invokeId, this.#pollNumber, objectType), (received) => {
      const data = received.kind === 'data' ? received.data : undefined;
      if (data === undefined || data.invokeId !== invokeId) return false;
      if (data.roType === RoType.error) {
        this.ctx.report.malformed(
          new Error(`monitor refused the ${what} (error ${data.command})`),
          undefined,
        );
      } else parts.push(data);
      const last = data.roType !== RoType.linkedResult || data.linkedState === 3;
      if (!last) {
        this.#continue(what);
        return false;
      }
      this.pending = undefined;
      done(parts);
      return true;
    });
  }

  /** A linked reply goes on: wait for its next part with a fresh timer. */
  #continue(what: string): void {
    this.rearm(this.pending as Pending);
    this.ctx.report.log.trace({ what }, 'linked reply part');
  }

  protected ask(then: () => void): void {
    const content: PollContent = { observations: [], alarms: [] };
    // Numerics last: their result is then stored without waiting for the alerts poll.
    const asks = [...this.#ask].sort((a, b) => Number(a === 'numerics') - Number(b === 'numerics'));
    let alertsAsked = false;
    const next = (): void => {
      const ask = asks.shift();
      if (ask === undefined) {
        this.#deliver(content, alertsAsked);
        then();
        return;
      }
      alertsAsked ||= ask === 'alerts';
      this.#pollObjects(`${ask} poll`, PolledObject[ask], (parts) => {
        for (const part of parts) this.#collect(part, content);
        next();
      });
    };
    next();
  }

  #collect(part: DataPdu, content: PollContent): void {
    const before = { observations: content.observations.length, alarms: content.alarms.length };
    try {
      pollContent(part.body, content);
    } catch (err) {
      content.observations.length = before.observations;
      content.alarms.length = before.alarms;
      this.ctx.report.malformed(err, undefined, 'IntelliVue poll result refused');
    }
  }

  #deliver(content: PollContent, alertsAsked: boolean): void {
    const { clock, deviceId } = this.ctx;
    const base: DeviceReading = {
      deviceId,
      adapter: 'rs232',
      protocol: 'intellivue',
      receivedAt: clock.now(),
      monotonicMs: clock.monotonicMs(),
      fields: [],
      markers: [],
      raw: Buffer.alloc(0),
      observations: [],
    };
    if (content.observations.length > 0) this.store({ ...base, observations: content.observations });
    if (!alertsAsked) return;
    const key = alarmKey(content.alarms);
    if (key === this.#storedAlarms) return;
    const active = content.alarms.length;
    this.store(
      {
        ...base,
        event: { type: 'alarm', detail: { active } },
        ...(active > 0 ? { alarms: content.alarms } : {}),
      },
      () => {
        this.#storedAlarms = key;
      },
    );
  }
}

function alarmKey(alarms: AlarmDraft[]): string {
  return alarms.map((a) => `${a.code}/${a.parameter?.code}/${a.priority}`).join(',');
}
