import type { Logger } from '@attache/core';

/**
 * The log of ENQs answered busy because the gateway cannot store: the first of a streak at warn,
 * the rest at debug (an analyzer asks again every 10 s or so), and its end at info.
 */
export class BusyLog {
  #streak = 0;

  /** An ENQ was answered NAK (busy). */
  refused(log: Logger): void {
    this.#streak++;
    if (this.#streak === 1) {
      log.warn({}, 'ASTM ENQ answered busy: the cache refuses readings, the analyzer keeps its data');
    } else log.debug({ busyAnswers: this.#streak }, 'ASTM ENQ answered busy again');
  }

  /** A transfer was accepted. */
  accepted(log: Logger): void {
    if (this.#streak > 0) log.info({ busyAnswers: this.#streak }, 'ASTM transfers accepted again');
    this.#streak = 0;
  }
}
