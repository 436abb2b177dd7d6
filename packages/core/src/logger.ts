/** A log method: pino's calling convention, `log.info({ err }, 'message')` or `log.info('message')`. */
export interface LogFn {
  (bindings: object, message?: string): void;
  (message: string): void;
}

/**
 * The logger components receive through their options (a pino logger fits). Library packages never
 * create loggers or write to the console. Never pass patient data or key material in bindings.
 */
export interface Logger {
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled(level: string): boolean;
}

const discard: LogFn = () => {};

/** A logger that drops everything. */
export const nullLogger: Logger = {
  fatal: discard,
  error: discard,
  warn: discard,
  info: discard,
  debug: discard,
  trace: discard,
  child: () => nullLogger,
  isLevelEnabled: () => false,
};
