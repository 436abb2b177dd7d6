/**
 * Stable error codes of @attache/consumer. Branch on `err.code`, never on the message: codes stay
 * stable across releases, messages may change.
 */
export type ConsumerErrorCode =
  /** The payload is not JSON, or its `recordsGzip` is not base64 gzip, or it inflates past the limit. */
  | 'ATTACHE_CONSUMER_MALFORMED'
  /** The message's `schemaVersion` is one this release does not know: upgrade @attache/consumer. */
  | 'ATTACHE_CONSUMER_VERSION'
  /** The message breaks its JSON Schema or the batch contract; `issues` lists every problem. */
  | 'ATTACHE_CONSUMER_INVALID'
  /** The gateway's dedupe state changed between read and commit (another worker): process the message again. */
  | 'ATTACHE_CONSUMER_CONFLICT'
  /** The state store holds something that is not dedupe state of a known version. */
  | 'ATTACHE_CONSUMER_STORE';

/** One problem found in a message: a JSON pointer into it and what is wrong there. */
export interface MessageIssue {
  path: string;
  message: string;
}

/** The one error class @attache/consumer throws (programmer mistakes throw TypeError). */
export class ConsumerError extends Error {
  readonly code: ConsumerErrorCode;
  /** For ATTACHE_CONSUMER_INVALID: every problem found. */
  readonly issues: MessageIssue[];

  constructor(
    code: ConsumerErrorCode,
    message: string,
    options: { issues?: MessageIssue[]; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConsumerError';
    this.code = code;
    this.issues = options.issues ?? [];
  }
}

/** True when `err` is a ConsumerError (optionally with `code`). */
export function isConsumerError(err: unknown, code?: ConsumerErrorCode): err is ConsumerError {
  return err instanceof ConsumerError && (code === undefined || err.code === code);
}
