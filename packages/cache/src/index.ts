export { LevelCache, type LevelCacheOptions } from './level-cache.js';
