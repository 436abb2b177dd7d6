// Parts of the crash and power-cut harnesses for serial devices: an ASTM analyzer that records which
// messages were fully ACKed, and a reader of a stopped gateway's whole cache.
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { AstmSenderSimulator, cbcMessage } from '@attache/devkit';

/** Message n of the analyzer carries this value in its first result. */
export const astmValue = (n: number) => 9_100_000 + n;

/** An analyzer sending one CBC message after another; one cut by a kill is sent again until ACKed. */
export class AstmLoop {
  /** Messages whose every frame was ACKed, in order. */
  readonly sent: number[] = [];
  resent = 0;
  readonly #sender: AstmSenderSimulator;
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();
  readonly #waiting: { count: number; resolve: () => void }[] = [];

  constructor(path: string) {
    this.#sender = new AstmSenderSimulator({ path, ackTimeoutMs: 1000, maxRetries: 1, busyRetryMs: 100 });
  }

  async start(): Promise<void> {
    await this.#sender.open();
    this.#loop = this.#run();
  }

  /** Resolves once `count` messages in all have had every frame ACKed. */
  whenSent(count: number): Promise<void> {
    if (this.sent.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push({ count, resolve }));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    await this.#sender.close();
  }

  async #run(): Promise<void> {
    for (let n = 0; !this.#stopped; ) {
      const records = cbcMessage({ count: 3 });
      // The first result's value identifies the message.
      const r = records.findIndex((rec) => rec.startsWith('R'));
      const fields = (records[r] as string).split('|');
      fields[3] = String(astmValue(n));
      records[r] = fields.join('|');
      const result = await this.#sender.send(records);
      if (result.status === 'sent') {
        this.sent.push(n++);
        for (const waiter of this.#waiting.filter((w) => this.sent.length >= w.count)) {
          this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
          waiter.resolve();
        }
      } else this.resent++;
    }
  }
}

export interface Stored {
  seq: number;
  deviceId: string;
  key: string;
  value: unknown;
}

/** Every record of a stopped gateway's cache, decrypted, and how many failed authentication. */
export async function readCache(
  path: string,
  keyPath: string,
): Promise<{ records: Stored[]; quarantined: number }> {
  const cache = new LevelCache({ path, keyring: await loadOrCreateKeyring(keyPath) });
  await cache.open();
  try {
    const records: Stored[] = [];
    for (let afterSeq = 0; ; ) {
      const page = await cache.read({ afterSeq, limit: 2000, maxBytes: 8e6 });
      if (page.length === 0) break;
      for (const { seq, json } of page) {
        const r = JSON.parse(json) as {
          deviceId: string;
          capturedAt: string;
          observations: { value: unknown }[];
        };
        const key = `${r.deviceId} ${r.capturedAt} ${JSON.stringify(r.observations)}`;
        records.push({ seq, deviceId: r.deviceId, key, value: r.observations[0]?.value });
      }
      afterSeq = page.at(-1)?.seq ?? afterSeq;
    }
    return { records, quarantined: await cache.quarantineCount() };
  } finally {
    await cache.close();
  }
}
