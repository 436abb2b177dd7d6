import type {
  ByteLink,
  IntelliVueFormat,
  ProtocolDriver,
  ProtocolSession,
  SessionContext,
} from '@attache/core';
import { IntelliVueSession } from './intellivue-session.js';

/** Options of {@link IntelliVueDriver}. */
export interface IntelliVueDriverOptions {
  /** The device's `format`, with the schema's defaults applied. */
  format: IntelliVueFormat;
}

/** The IntelliVue Data Export protocol for one monitor: an {@link IntelliVueSession} per opened link. */
export class IntelliVueDriver implements ProtocolDriver {
  readonly protocol = 'intellivue';
  readonly #format: IntelliVueFormat;

  constructor(options: IntelliVueDriverOptions) {
    this.#format = options.format;
  }

  open(link: ByteLink, context: SessionContext): ProtocolSession {
    return new IntelliVueSession(link, context, this.#format.poll);
  }

  /** Nothing is held beyond the sessions, which stop when their link ends. */
  async close(): Promise<void> {}
}
