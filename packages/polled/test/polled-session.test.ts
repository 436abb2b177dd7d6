import type { ByteLink, SessionContext, SessionReport } from '@attache/core';
import { ManualClock, nullLogger } from '@attache/core';
import t from 'tap';
import { type Framer, PolledSession, type PolledTiming, type Request } from '../src/index.js';

/** Every received chunk is one frame. */
class ChunkFramer implements Framer<Buffer> {
  push(chunk: Buffer, emit: (event: Buffer) => void): void {
    emit(chunk);
  }
  reset(): number {
    return 0;
  }
}

/** The smallest polled protocol: a request is one letter, its reply echoes it; a cycle is one request. */
class EchoSession extends PolledSession<Buffer, Request & { then: () => void }> {
  constructor(link: ByteLink, ctx: SessionContext, poll: PolledTiming) {
    super(link, ctx, poll, { framer: new ChunkFramer(), cutOff: 'cut off', restarting: 'starting again' });
    this.start();
  }
  protected onFrame(event: Buffer): void {
    const pending = this.pending;
    if (pending === undefined || !event.equals(pending.frame)) return;
    this.settle(pending);
    pending.then();
  }
  protected start(): void {
    this.startCycles();
    this.cycle();
  }
  protected notAnswering(what: string): Error {
    return new Error(`${what} unanswered`);
  }
  protected keepAlive(then: () => void): void {
    this.request({ what: 'keep-alive', frame: Buffer.from('K'), then });
  }
  protected ask(then: () => void): void {
    this.request({ what: 'ask', frame: Buffer.from('A'), then });
  }
}

t.test('a cycle that ran late does not make the next ones pile up', async (t) => {
  const clock = new ManualClock();
  const t0 = clock.monotonicMs();
  const writes: number[] = [];
  let drop = 0;
  let unanswered = 0;
  let session: EchoSession | undefined;
  const link: ByteLink = {
    name: 'memory',
    open: true,
    write(bytes) {
      writes.push(clock.monotonicMs() - t0);
      if (drop > 0) drop--;
      else queueMicrotask(() => session?.receive(bytes));
      return true;
    },
    pause: () => undefined,
    resume: () => undefined,
    close: () => undefined,
  };
  const report: SessionReport = {
    counts: { frames: 0, stored: 0, malformed: 0, refused: 0 },
    log: nullLogger,
    frame: () => undefined,
    stored: () => undefined,
    malformed: () => undefined,
    refused: () => undefined,
    unanswered: () => {
      unanswered++;
    },
  };
  const ctx: SessionContext = {
    deviceId: 'dev-1',
    sink: async () => undefined,
    refusing: () => false,
    report,
    clock,
  };
  session = new EchoSession(link, ctx, {
    periodMs: 100,
    replyTimeoutMs: 250,
    retries: 2,
    linkTimeoutMs: 10_000,
  });
  await clock.advance(50);
  t.same(writes, [0], 'the first cycle at once');
  drop = 1;
  await clock.advance(399);
  t.equal(unanswered, 1, 'the second cycle waited for a retry');
  t.same(writes, [0, 100, 350, 350], 'the retry, then the late cycle once, not once per missed period');
  await clock.advance(101);
  t.same(writes, [0, 100, 350, 350, 450, 550], 'then one cycle per period again');
  session.end();
});
