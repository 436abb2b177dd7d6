export { checkConfigUnits } from './check-units.js';
export { FreeTextDeidentifier, MAX_FREE_TEXT, REDACTED } from './deidentify.js';
export { ReadingNormalizer, type ReadingNormalizerOptions } from './reading-normalizer.js';
export { type ClockSource, SystemClock, type SystemClockOptions } from './system-clock.js';
export { isUcum, ucumProblem } from './ucum.js';
