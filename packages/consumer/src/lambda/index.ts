// The ingest Lambda: `handler` is the entry point (Node.js 20+, ESM), configured by its environment.
import { createIngestHandler, type S3Notification } from './ingest-handler.js';
import { S3ObjectStore } from './s3-object-store.js';

export {
  createIngestHandler,
  type IngestHandlerOptions,
  type IngestSummary,
  type S3Notification,
} from './ingest-handler.js';
export { ObjectStateStore } from './object-state-store.js';
export { type ObjectStore, S3ObjectStore, type S3ObjectStoreOptions } from './s3-object-store.js';

let ingest: ((event: S3Notification) => Promise<unknown>) | undefined;

/**
 * AWS Lambda entry point for S3 `ObjectCreated` notifications of the ingest bucket (prefixes
 * `telemetry/`, `events/`, `state/`). Environment: `INGEST_BUCKET`, `AWS_REGION` and the function's
 * credentials (set by Lambda); `GAP_WAIT_MS` (default a day).
 */
export async function handler(event: S3Notification): Promise<unknown> {
  if (!ingest) {
    const env = process.env;
    ingest = createIngestHandler({
      objects: new S3ObjectStore({
        bucket: env.INGEST_BUCKET ?? '',
        region: env.AWS_REGION ?? '',
        credentials: {
          accessKeyId: env.AWS_ACCESS_KEY_ID ?? '',
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '',
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        },
        ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT } : {}),
      }),
      ...(env.GAP_WAIT_MS ? { gapWaitMs: Number(env.GAP_WAIT_MS) } : {}),
      log: (line) => process.stdout.write(`${JSON.stringify(line)}\n`),
    });
  }
  return ingest(event);
}
