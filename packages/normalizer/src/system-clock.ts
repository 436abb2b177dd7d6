import { readFileSync, statSync } from 'node:fs';
import type { ClockProvenance } from '@attache/core';
import { monotonicMs } from '@attache/core';

/** Tells how far a reading's wall-clock time can be trusted. */
export interface ClockSource {
  /** The provenance of a reading captured at `monotonicMs` (CLOCK_MONOTONIC, ms since boot). */
  provenance(monotonicMs: number): ClockProvenance;
}

/** Options of {@link SystemClock}. */
export interface SystemClockOptions {
  /** A file whose existence means the clock is synchronized (`/run/systemd/timesync/synchronized`). */
  syncFile: string;
  /** Default `/proc/sys/kernel/random/boot_id`. */
  bootIdFile?: string;
}

/** How long a look at the sync file stays valid, ms. */
const syncCheckMs = 1000;
const bootIdPattern = /^[0-9a-f-]{36}$/;

/**
 * The Linux system clock: the boot id is read once (on first use), `synchronized` is whether the
 * sync file exists, looked at no more than once per second. `provenance()` throws the file system
 * error when the boot id file cannot be read, and a TypeError when it holds no boot id.
 */
export class SystemClock implements ClockSource {
  readonly #syncFile: string;
  readonly #bootIdFile: string;
  #bootId: string | undefined;
  #synchronized = false;
  #checkedAt = Number.NEGATIVE_INFINITY;

  constructor(options: SystemClockOptions) {
    this.#syncFile = options.syncFile;
    this.#bootIdFile = options.bootIdFile ?? '/proc/sys/kernel/random/boot_id';
  }

  provenance(monotonicMs: number): ClockProvenance {
    return { synchronized: this.#isSynchronized(), bootId: this.#readBootId(), monotonicMs };
  }

  #readBootId(): string {
    if (this.#bootId === undefined) {
      const bootId = readFileSync(this.#bootIdFile, 'ascii').trim();
      if (!bootIdPattern.test(bootId))
        throw new TypeError(`"bootIdFile" ${this.#bootIdFile} holds no boot id`);
      this.#bootId = bootId;
    }
    return this.#bootId;
  }

  #isSynchronized(): boolean {
    const now = monotonicMs();
    if (now - this.#checkedAt >= syncCheckMs) {
      this.#synchronized = statSync(this.#syncFile, { throwIfNoEntry: false }) !== undefined;
      this.#checkedAt = now;
    }
    return this.#synchronized;
  }
}
