export type { CacheHealth, CacheLimits } from './bounds.js';
export { type CacheKeyring, loadOrCreateKeyring, rotateKeyring } from './keyring.js';
export { LevelCache, type LevelCacheOptions } from './level-cache.js';
