import { ConsumerError, type MessageIssue } from './errors.js';
import type { AttacheRecord, BatchMessage } from './generated/batch.js';
import type {
  CompressedBatchMessage,
  GatewayEvent,
  GatewayStateMessage,
} from './generated/uplink-messages.js';
import {
  validateBatch,
  validateCompressedBatch,
  validateEvent,
  validateState,
} from './generated/validators.js';

/** The `schemaVersion`s this release reads. A message of any other version is refused (ATTACHE_CONSUMER_VERSION). */
export const SUPPORTED_SCHEMA_VERSIONS: readonly number[] = [1];

/** A decoded, validated message. Telemetry is always given with its records, compressed or not. */
export type ParsedMessage =
  | { kind: 'telemetry'; gatewayId: string; batch: BatchMessage; compressed: boolean }
  | { kind: 'event'; gatewayId: string; event: GatewayEvent }
  | { kind: 'state'; gatewayId: string; state: GatewayStateMessage };

export interface ParseOptions {
  /**
   * The MQTT topic the message came on (`dt/attache/<thing>/<telemetry|events|state>`, or the Basic
   * Ingest form `$aws/rules/<rule>/dt/attache/<thing>/telemetry`). When given, its thing must be the
   * message's `gatewayId` and its last level names the kind. Without it the kind is read from the payload.
   */
  topic?: string;
  /** Refuse a compressed batch whose records inflate past this many bytes. Default 16 MiB. */
  maxInflatedBytes?: number;
}

type Validator = ((value: unknown) => boolean) & {
  errors?: { instancePath: string; message?: string }[] | null;
};

const kinds = { telemetry: 'telemetry', events: 'event', state: 'state' } as const;
const TOPIC = /^(?:\$aws\/rules\/[^/]+\/)?dt\/attache\/([^/]+)\/(telemetry|events|state)$/;

function check(validate: Validator, value: unknown, what: string): void {
  if (validate(value)) return;
  const issues: MessageIssue[] = (validate.errors ?? []).map((e) => ({
    path: e.instancePath || '/',
    message: e.message ?? 'is invalid',
  }));
  throw new ConsumerError('ATTACHE_CONSUMER_INVALID', `${what} does not match its schema`, { issues });
}

function decodeJson(payload: Uint8Array | string): unknown {
  try {
    const text =
      typeof payload === 'string' ? payload : new TextDecoder('utf-8', { fatal: true }).decode(payload);
    return JSON.parse(text);
  } catch (cause) {
    throw new ConsumerError('ATTACHE_CONSUMER_MALFORMED', 'the payload is not UTF-8 JSON', { cause });
  }
}

/** base64 → gunzip → JSON, refusing more than `limit` inflated bytes (a gzip bomb costs nothing more). */
async function inflateRecords(recordsGzip: string, limit: number): Promise<unknown> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Uint8Array.from(atob(recordsGzip), (c) => c.charCodeAt(0));
  } catch (cause) {
    throw new ConsumerError('ATTACHE_CONSUMER_MALFORMED', 'recordsGzip is not base64', { cause });
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > limit) {
        throw new ConsumerError('ATTACHE_CONSUMER_MALFORMED', `recordsGzip inflates past ${limit} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (cause) {
    if (cause instanceof ConsumerError) throw cause;
    throw new ConsumerError('ATTACHE_CONSUMER_MALFORMED', 'recordsGzip is not valid gzip', { cause });
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return decodeJson(all);
}

function kindOf(value: Record<string, unknown>, topic: string | undefined): ParsedMessage['kind'] {
  if (topic !== undefined) {
    const m = TOPIC.exec(topic);
    if (!m)
      throw new ConsumerError('ATTACHE_CONSUMER_INVALID', `topic ${topic} is not an Attaché data topic`);
    if (m[1] !== value.gatewayId) {
      throw new ConsumerError(
        'ATTACHE_CONSUMER_INVALID',
        `topic ${topic} is not the topic of gateway in the message`,
        {
          issues: [{ path: '/gatewayId', message: 'differs from the thing in the topic' }],
        },
      );
    }
    return kinds[m[2] as keyof typeof kinds];
  }
  if ('records' in value || 'recordsGzip' in value) return 'telemetry';
  if ('eventId' in value) return 'event';
  return 'state';
}

/** The batch contract beyond the schema: one gateway, seqs ascending within [firstSeq, lastSeq], count right. */
function checkBatchContract(batch: BatchMessage): void {
  const issues: MessageIssue[] = [];
  if (batch.count !== batch.records.length)
    issues.push({ path: '/count', message: 'differs from the number of records' });
  let previous = batch.firstSeq - 1;
  batch.records.forEach((r: AttacheRecord, i: number) => {
    if (r.gatewayId !== batch.gatewayId)
      issues.push({ path: `/records/${i}/gatewayId`, message: 'is not the batch gateway' });
    if (r.seq <= previous || r.seq > batch.lastSeq) {
      issues.push({ path: `/records/${i}/seq`, message: 'is out of order or outside firstSeq..lastSeq' });
    }
    previous = r.seq;
  });
  if (issues.length > 0)
    throw new ConsumerError('ATTACHE_CONSUMER_INVALID', 'the batch breaks its contract', { issues });
}

/**
 * Decodes and validates one message (a Buffer/Uint8Array or string of JSON as it came off the
 * broker or out of S3, or the already-parsed object an IoT rule hands a Lambda). Rejects with
 * ConsumerError ATTACHE_CONSUMER_MALFORMED, _VERSION or _INVALID; never returns a partly valid message.
 */
export async function parseMessage(
  payload: Uint8Array | string | object,
  options: ParseOptions = {},
): Promise<ParsedMessage> {
  const value =
    typeof payload === 'string' || payload instanceof Uint8Array
      ? decodeJson(payload)
      : structuredClone(payload);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConsumerError('ATTACHE_CONSUMER_INVALID', 'the message is not a JSON object');
  }
  const message = value as Record<string, unknown>;
  if (!SUPPORTED_SCHEMA_VERSIONS.includes(message.schemaVersion as number)) {
    throw new ConsumerError(
      'ATTACHE_CONSUMER_VERSION',
      `schemaVersion ${JSON.stringify(message.schemaVersion)} is not one this consumer reads (${SUPPORTED_SCHEMA_VERSIONS.join(', ')})`,
    );
  }
  const kind = kindOf(message, options.topic);
  const gatewayId = String(message.gatewayId);
  if (kind === 'event') {
    check(validateEvent as Validator, message, 'the event');
    return { kind, gatewayId, event: message as unknown as GatewayEvent };
  }
  if (kind === 'state') {
    check(validateState as Validator, message, 'the state message');
    return { kind, gatewayId, state: message as unknown as GatewayStateMessage };
  }
  let batch: BatchMessage;
  const compressed = 'recordsGzip' in message;
  if (compressed) {
    check(validateCompressedBatch as Validator, message, 'the compressed batch');
    const { encoding: _encoding, recordsGzip, ...envelope } = message as unknown as CompressedBatchMessage;
    const records = await inflateRecords(recordsGzip, options.maxInflatedBytes ?? 16 * 1024 * 1024);
    batch = { ...envelope, records } as BatchMessage;
  } else {
    batch = message as unknown as BatchMessage;
  }
  check(validateBatch as Validator, batch, 'the batch');
  checkBatchContract(batch);
  return { kind, gatewayId, batch, compressed };
}
