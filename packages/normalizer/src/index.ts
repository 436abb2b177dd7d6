export { ReadingNormalizer, type ReadingNormalizerOptions } from './reading-normalizer.js';
export { type ClockSource, SystemClock, type SystemClockOptions } from './system-clock.js';
