export type { CacheHealth, CacheLimits } from './bounds.js';
export {
  type AppendOptions,
  defaultBlockCacheBytes,
  defaultWriteBufferBytes,
  type LevelCacheOptions,
} from './cache-options.js';
export {
  type ExportManifest,
  type ExportOptions,
  type ExportSource,
  exportDataKey,
  exportHead,
  exportRecords,
  type ImportOptions,
  importExport,
  type ReadManifest,
  readExportManifest,
  restoreExport,
  streamExport,
} from './export.js';
export type { ExportEncryption, ExportScheme } from './export-crypto.js';
export {
  type ExportSigner,
  type ExportSigningKey,
  loadOrCreateSigningKey,
  publicKeyFingerprint,
} from './export-signing.js';
export {
  type FileExpectation,
  FileStore,
  type FileStoreOptions,
  PartialFile,
  type StoredFile,
} from './file-store.js';
export { type CacheKeyring, loadOrCreateKeyring, readKeyring, rotateKeyring } from './keyring.js';
export { LevelCache } from './level-cache.js';
export { readStoredCache, type StoredCacheOptions, type StoredCacheView } from './stored-view.js';
