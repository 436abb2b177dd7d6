import { monotonicMs } from './clock.js';
import type { Clock, ClockTimer } from './session.js';

interface Pending {
  at: number;
  order: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A {@link Clock} that moves only when told: tests advance it and the timers due fire in time order,
 * so a poll every second or a 30 s back-off is checked without waiting for it.
 */
export class ManualClock implements Clock {
  #wall: number;
  #mono: number;
  #order = 0;
  #pending: Pending[] = [];

  constructor(options: { now?: number; monotonicMs?: number } = {}) {
    this.#wall = options.now ?? Date.now();
    this.#mono = options.monotonicMs ?? monotonicMs();
  }

  now(): number {
    return this.#wall;
  }

  monotonicMs(): number {
    return this.#mono;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const entry: Pending = { at: this.#mono + Math.max(0, ms), order: this.#order++, fn, cancelled: false };
    this.#pending.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.#pending.filter((p) => !p.cancelled).length;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way (timers they set included),
   * each at its own time. Awaits the microtasks each timer starts, so promise chains it begins settle.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#mono + ms;
    for (;;) {
      this.#pending = this.#pending.filter((p) => !p.cancelled);
      const next = this.#pending
        .filter((p) => p.at <= end)
        .sort((a, b) => a.at - b.at || a.order - b.order)[0];
      if (!next) break;
      this.#step(next.at - this.#mono);
      next.cancelled = true;
      next.fn();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.#step(end - this.#mono);
  }

  #step(ms: number): void {
    this.#mono += ms;
    this.#wall += ms;
  }
}
