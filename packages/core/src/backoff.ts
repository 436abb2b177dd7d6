/** A source of uniform random numbers in [0, 1), like `Math.random`; tests inject a fixed sequence. */
export type RandomSource = () => number;

/**
 * `ms` less a random part of up to `jitter` × `ms`: uniform in [ms × (1 − jitter), ms], so a bound
 * (e.g. "at most 30 s") still holds. `jitter` is 0–1; 0 returns `ms` unchanged.
 */
export function spread(ms: number, jitter: number, random: RandomSource = Math.random): number {
  if (jitter <= 0) return ms;
  return Math.round(ms * (1 - Math.min(1, jitter) * random()));
}

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** The first delay, ms. */
  initialMs: number;
  /** The longest delay, ms (before jitter, which only shortens). */
  maxMs: number;
  /**
   * Random spread of each delay, 0–1 (`spread`): with 0.2 a 10 s delay is drawn from 8–10 s, so a
   * fleet that lost its broker or a ward that lost power does not retry in lock-step. Default 0.
   */
  jitter?: number;
  /** Default `Math.random`. */
  random?: RandomSource;
}

/**
 * Exponential back-off with jitter, shared by every retry loop (serial and TCP reconnects, the Modbus
 * bus and silent units, the always-connected uplink): each `next()` returns the delay to wait now and
 * doubles the following one up to `maxMs`; `reset()` after a success.
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #jitter: number;
  readonly #random: RandomSource;
  #nextMs: number;

  constructor(options: BackoffOptions) {
    const { initialMs, maxMs, jitter = 0 } = options;
    if (!(initialMs > 0)) throw new TypeError('"initialMs" must be greater than 0');
    if (!(maxMs >= initialMs)) throw new TypeError('"maxMs" must be at least "initialMs"');
    if (!(jitter >= 0 && jitter <= 1)) throw new TypeError('"jitter" must be between 0 and 1');
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
    this.#jitter = jitter;
    this.#random = options.random ?? Math.random;
    this.#nextMs = initialMs;
  }

  /** The delay to wait now (jittered), ms; the next one doubles, up to `maxMs`. */
  next(): number {
    const delay = this.#nextMs;
    this.#nextMs = Math.min(delay * 2, this.#maxMs);
    return spread(delay, this.#jitter, this.#random);
  }

  /** Back to `initialMs`, after a success. */
  reset(): void {
    this.#nextMs = this.#initialMs;
  }
}
