// Parts of the gateway crash harness (test/crash-gateway.test.ts): HL7 senders that remember which
// messages the gateway acknowledged (AA), and a check of a stopped gateway's cache against them.
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { GatewayError } from '@attache/core';
import { MllpSenderSimulator, oruR01Message, pcd01VitalSigns } from '@attache/devkit';

/** The patient every message is about: none of it may reach the disk in clear. */
export const crashPatient = { mrn: 'MRN-CRASH-55120', name: 'ZELLWEGER^PERPETUA', birthDate: '19380217' };

/** The distinctive number message `n` of sender `sender` carries in its SEQ observation. */
export function messageValue(sender: number, n: number): number {
  return 61_000_000 + sender * 100_000 + n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A monitor sending PCD-01 messages one at a time, each waiting for its ACK; a message whose
 * connection broke before its ACK is sent again (reconnecting every 50 ms) until acknowledged, as
 * HL7 senders do. `acked` lists, in order, the messages that got AA.
 */
export class RecordingMllpSender {
  readonly index: number;
  /** Message numbers acknowledged with AA, in order. */
  readonly acked: number[] = [];
  /** ACKs other than AA, as `n code`. */
  readonly rejected: string[] = [];
  /** Messages whose connection broke before their ACK (a kill), so they were sent again. */
  interrupted = 0;
  readonly #sender: MllpSenderSimulator;
  #stopped = false;
  #aborted = false;
  #loop: Promise<void> = Promise.resolve();

  constructor(index: number, port: number) {
    this.index = index;
    this.#sender = new MllpSenderSimulator({ port, resend: false, ackTimeoutMs: 30_000 });
  }

  /** Starts sending message 0, 1, 2… */
  start(): void {
    this.#loop = this.#run();
  }

  /** Lets the message in flight finish (acknowledged), then stops; rejects if the loop failed. */
  async stop(): Promise<void> {
    this.#stopped = true;
    try {
      await this.#loop;
    } finally {
      await this.#sender.close();
    }
  }

  /** Stops at once (teardown after a failure): the message in flight is abandoned. */
  async abort(): Promise<void> {
    this.#stopped = true;
    this.#aborted = true;
    await this.#sender.close();
    await this.#loop.catch(() => undefined);
  }

  async #run(): Promise<void> {
    for (let n = 0; !this.#stopped; n++) {
      const code = await this.#deliver(n);
      if (code === undefined) return;
      if (code === 'AA') this.acked.push(n);
      else this.rejected.push(`${n} ${code}`);
    }
  }

  /** Sends message `n` until an ACK comes back; undefined when aborted first. */
  async #deliver(n: number): Promise<string | undefined> {
    const seq = { type: 'NM', code: 'SEQ^test sequence^LOCAL', path: '9.9.9.9' };
    const message = oruR01Message({
      controlId: `S${this.index}-${n}`,
      patient: crashPatient,
      observations: [
        ...pcd01VitalSigns({ systolic: 118, diastolic: 77, mean: 91, spo2: 96, pulse: 64 }),
        { ...seq, value: String(messageValue(this.index, n)) },
      ],
    });
    for (let attempt = 0; !this.#aborted; attempt++) {
      if (attempt === 1) this.interrupted++;
      try {
        return (await this.#sender.send(message)).code;
      } catch (err) {
        // No ACK within 30 s from a live gateway is a failure; a refused or broken connection is a kill.
        if (err instanceof GatewayError && err.code === 'ATTACHE_TIMEOUT') throw err;
        await sleep(50);
      }
    }
    return undefined;
  }
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** A record of the harness: its seq, and which sender's message `n` it holds (from its SEQ value). */
interface Found {
  seq: number;
  sender: number;
  n: number;
}

/** Every record of a stopped gateway's cache, decrypted with its key, and how many failed authentication. */
async function readCache(
  cachePath: string,
  keyPath: string,
  deviceId: string | undefined,
): Promise<{ found: Found[]; quarantined: number }> {
  const cache = new LevelCache({ path: cachePath, keyring: await loadOrCreateKeyring(keyPath) });
  await cache.open();
  try {
    const found: Found[] = [];
    for (let afterSeq = 0; ; ) {
      const page = await cache.read({ afterSeq, limit: 2000, maxBytes: 8e6 });
      if (page.length === 0) break;
      for (const { seq, json } of page) {
        const record = JSON.parse(json) as {
          deviceId: string;
          observations: { code: string; value: unknown }[];
        };
        if (deviceId !== undefined && record.deviceId !== deviceId) continue;
        const value = Number(record.observations.find((o) => o.code === 'SEQ')?.value) - messageValue(0, 0);
        found.push({ seq, sender: Math.floor(value / 100_000), n: value % 100_000 });
      }
      afterSeq = page.at(-1)?.seq ?? afterSeq;
    }
    return { found, quarantined: await cache.quarantineCount() };
  } finally {
    await cache.close();
  }
}

/**
 * What is wrong with a stopped gateway's cache given what each sender saw acknowledged ([] when
 * nothing): every acknowledged message must be there exactly once, each sender's messages in the
 * order sent, and every value must decrypt. Messages stored but not yet acknowledged may be there.
 * With `deviceId`, the records of other devices are passed over.
 */
export async function checkCache(
  cachePath: string,
  keyPath: string,
  acked: number[][],
  deviceId?: string,
): Promise<{ problems: string[]; records: number }> {
  if (!(await exists(keyPath))) {
    const any = acked.some((a) => a.length > 0);
    return { problems: any ? ['messages were acknowledged but there is no key file'] : [], records: 0 };
  }
  const { found, quarantined } = await readCache(cachePath, keyPath, deviceId);
  const problems: string[] = [];
  if (quarantined > 0) problems.push(`${quarantined} values failed authentication`);
  const last = new Map<number, number>();
  const stored = new Set<string>();
  for (const { seq, sender, n } of found) {
    if (!Number.isInteger(sender) || sender < 0 || sender >= acked.length) {
      problems.push(`seq ${seq} holds no message of a sender`);
      continue;
    }
    const previous = last.get(sender) ?? -1;
    if (n <= previous) problems.push(`seq ${seq}: sender ${sender} message ${n} after message ${previous}`);
    last.set(sender, n);
    stored.add(`${sender}:${n}`);
  }
  acked.forEach((ns, sender) => {
    const lost = ns.filter((n) => !stored.has(`${sender}:${n}`));
    if (lost.length > 0)
      problems.push(`sender ${sender}: ${lost.length} acknowledged messages lost, first ${lost[0]}`);
  });
  return { problems, records: found.length };
}

/** The needles found (as `needle in file`) in any file under `dir`, as bytes. */
export async function grepFiles(dir: string, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const content = await readFile(file);
    for (const needle of needles) if (content.includes(needle)) found.push(`${needle} in ${file}`);
  }
  return found;
}
