import type { CodedObservation, ModbusChangeFilter } from '@attache/core';

type Snapshot = Map<string, { value: CodedObservation['value']; status: CodedObservation['status'] }>;

function key(o: CodedObservation): string {
  return `${o.source ?? ''}@${o.path ?? ''}`;
}

/**
 * Decides which polls to store under `changesOnly`: a poll is stored when a numeric value moved by
 * more than `deadband` from the last stored one, any other value or status changed, or
 * `heartbeatSeconds` passed since the last stored poll. Times are monotonic ms.
 */
export class ChangeFilter {
  readonly #deadband: number;
  readonly #heartbeatMs: number;
  #last: Snapshot | undefined;
  #lastAt = 0;

  constructor(options: ModbusChangeFilter) {
    this.#deadband = options.deadband;
    this.#heartbeatMs = options.heartbeatSeconds * 1000;
  }

  /** True when the poll should be stored; it then becomes the reference for the next ones. */
  accept(observations: readonly CodedObservation[], nowMs: number): boolean {
    if (
      this.#last !== undefined &&
      nowMs - this.#lastAt < this.#heartbeatMs &&
      !this.#changed(observations)
    ) {
      return false;
    }
    this.#last = new Map(observations.map((o) => [key(o), { value: o.value, status: o.status }]));
    this.#lastAt = nowMs;
    return true;
  }

  /** Forgets the reference (its store failed), so that the next poll is stored. */
  reset(): void {
    this.#last = undefined;
  }

  #changed(observations: readonly CodedObservation[]): boolean {
    const last = this.#last;
    if (last === undefined || last.size !== observations.length) return true;
    return observations.some((o) => {
      const before = last.get(key(o));
      if (before === undefined || before.status !== o.status) return true;
      if (typeof o.value === 'number' && typeof before.value === 'number') {
        return Math.abs(o.value - before.value) > this.#deadband;
      }
      return o.value !== before.value;
    });
  }
}
