/** The second the cached prefix is of, in ms since the epoch / 1,000 (floored); NaN when none. */
let cachedSecond = Number.NaN;
/** `YYYY-MM-DDTHH:MM:SS.` of `cachedSecond`. */
let cachedPrefix = '';

/**
 * `new Date(ms).toISOString()`, the same string (and the same RangeError for a time it cannot
 * show), made from the previous call's date and time when `ms` falls in the same second: readings
 * arrive many a second, and `Date#toISOString` costs a few µs each (its calendar arithmetic).
 */
export function isoTime(ms: number): string {
  if (Number.isInteger(ms)) {
    const second = Math.floor(ms / 1000);
    if (second === cachedSecond) {
      const milli = ms - second * 1000;
      return `${cachedPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
    }
  }
  const text = new Date(ms).toISOString();
  // Only the common form (years 0000 to 9999, whole ms) is cached; any other is made each time.
  if (text.length === 24 && Number.isInteger(ms)) {
    cachedSecond = Math.floor(ms / 1000);
    cachedPrefix = text.slice(0, 20);
  }
  return text;
}
