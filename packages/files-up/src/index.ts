export { chunkBytes, openBlob, readSealed, SealedWriter, sealBlob } from './sealed-file.js';
export {
  type CapturedFile,
  type CaptureResult,
  type CaptureSource,
  UpStore,
  type UpStoreCounts,
  type UpStoreEvent,
  type UpStoreLimits,
  type UpStoreOptions,
} from './up-store.js';
