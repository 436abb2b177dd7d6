import type { ByteLink, MedibusFormat, ProtocolDriver, ProtocolSession, SessionContext } from '@attache/core';
import { MedibusSession } from './medibus-session.js';

/** Options of {@link MedibusDriver}. */
export interface MedibusDriverOptions {
  /** The device's `format`, with the schema's defaults applied. */
  format: MedibusFormat;
}

/** The MEDIBUS protocol for one configured device: a {@link MedibusSession} per opened link. */
export class MedibusDriver implements ProtocolDriver {
  readonly protocol = 'medibus';
  readonly #format: MedibusFormat;

  constructor(options: MedibusDriverOptions) {
    this.#format = options.format;
  }

  open(link: ByteLink, context: SessionContext): ProtocolSession {
    return new MedibusSession(link, context, this.#format.poll);
  }

  /** Nothing is held beyond the sessions, which stop when their link ends. */
  async close(): Promise<void> {}
}
