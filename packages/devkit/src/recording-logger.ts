import type { Logger } from '@attache/core';

/** One recorded log call: the merged bindings and object, its level and message. */
export type LogEntry = Record<string, unknown> & { level: string; msg?: string };

/**
 * A pino-like logger for tests that records every call in `entries`, with its child bindings, so a
 * test can assert what a technician would read in the journal.
 */
export function recordingLogger(entries: LogEntry[], bindings: Record<string, unknown> = {}): Logger {
  const at =
    (level: string) =>
    (first: object | string, msg?: string): void => {
      entries.push(
        typeof first === 'string'
          ? { ...bindings, level, msg: first }
          : { ...bindings, ...first, level, msg },
      );
    };
  return {
    fatal: at('fatal'),
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    child: (more) => recordingLogger(entries, { ...bindings, ...more }),
    isLevelEnabled: () => true,
  };
}
