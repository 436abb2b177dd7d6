import type { Logger } from '@attache/core';
import { type DestinationStream, pino } from 'pino';

/** Options of {@link createLogger}. */
export interface LogOptions {
  /** Pretty-print (development only). Default: when the destination is a terminal. */
  pretty?: boolean;
  /** 1 (stdout, the default) or 2: stderr, for a command whose stdout is its answer (`sync --json`). */
  fd?: 1 | 2;
}

/** pino's level number of `warn`: this level and those below it lose their stack traces. */
const warnLevel = 40;

/** An error as a warning shows it: its type, code and message, without the stack. */
class Stackless {
  readonly type: string;
  readonly message: string;
  readonly code?: string;

  constructor(err: Error) {
    this.type = err.name;
    this.message = err.message;
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined) this.code = code;
  }
}

/** pino's error serializer, except for a warning's error (already without its stack). */
function serializeErr(err: unknown): unknown {
  return err instanceof Stackless ? { ...err } : pino.stdSerializers.err(err as Error);
}

/**
 * The one root logger: JSON lines to stdout (or stderr), written synchronously so a power cut loses
 * no line (pino's async buffering would); pretty-printed when the destination is a terminal. Key
 * material and file paths of credentials are redacted wherever they appear in bindings. An `err` of
 * a warning (or info) line carries no stack unless the level is `debug` or finer: a warning is for
 * the technician, the stack for whoever debugs; errors and fatals keep theirs.
 */
export function createLogger(level: string, options: LogOptions | boolean = {}): Logger {
  const { pretty: asked, fd = 1 } = typeof options === 'boolean' ? { pretty: options } : options;
  const pretty = asked ?? (fd === 1 ? process.stdout : process.stderr).isTTY === true;
  const settings = {
    level,
    base: { pid: process.pid },
    redact: {
      paths: [
        'keyFile',
        'certFile',
        'caFile',
        '*.keyFile',
        '*.certFile',
        '*.caFile',
        'patientId',
        '*.patientId',
      ],
      censor: '[redacted]',
    },
    serializers: { err: serializeErr },
    hooks: {
      logMethod(this: pino.Logger, args: Parameters<pino.LogFn>, method: pino.LogFn, lineLevel: number) {
        const [first] = args;
        if (
          lineLevel <= warnLevel &&
          !this.isLevelEnabled('debug') &&
          typeof first === 'object' &&
          first !== null &&
          'err' in first
        ) {
          const { err } = first as { err: unknown };
          if (err instanceof Error) args[0] = { ...first, err: new Stackless(err) };
        }
        return method.apply(this, args as never);
      },
    },
  };
  if (pretty) {
    return pino({ ...settings, transport: { target: 'pino-pretty', options: { destination: fd } } });
  }
  const destination: DestinationStream = pino.destination({ dest: fd, sync: true });
  return pino(settings, destination);
}
