import { fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { Logger } from '@attache/core';
import { type DestinationStream, pino } from 'pino';

/** Options of {@link createLogger}. */
export interface LogOptions {
  /** Pretty-print for a person (pino-pretty; development only). Default: the destination is a terminal. */
  pretty?: boolean;
  /**
   * Prefix each line with its syslog priority (`<3>` for error…) for journald, which strips it and
   * files the line under that priority (`journalctl -p err`). Default: stdout is the journal.
   */
  journal?: boolean;
  /** The file descriptor: 1 (stdout, the default); 2 for a command whose stdout is its answer (`sync --json`). */
  fd?: number;
}

/**
 * True when `fd` is connected to the journal: systemd sets `$JOURNAL_STREAM` to the device and inode
 * of the stream it connected stdout/stderr to (systemd.exec(5)); a redirected stdout no longer matches.
 */
export function isJournalStream(fd = 1, env: NodeJS.ProcessEnv = process.env): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!match) return false;
  try {
    const stat = fstatSync(fd, { bigint: true });
    return stat.dev === BigInt(match[1] as string) && stat.ino === BigInt(match[2] as string);
  } catch {
    return false;
  }
}

/** The syslog priority of a pino level: fatal 2 (crit), error 3, warn 4, info 6, debug/trace 7. */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

const levelField = /^\{"level":(\d+)/;

/** A synchronous destination that prefixes each pino JSON line with `<priority>`. */
function journalDestination(fd: number): DestinationStream {
  const out = pino.destination({ dest: fd, sync: true });
  return {
    write(line: string) {
      const level = Number(levelField.exec(line)?.[1] ?? 30);
      out.write(`<${syslogPriority(level)}>${line}`);
    },
  };
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
 * no line (pino's async buffering would); pretty-printed when the destination is a terminal; with a
 * `<priority>` prefix when the destination is the journal. Key
 * material and file paths of credentials are redacted wherever they appear in bindings. An `err` of
 * a warning (or info) line carries no stack unless the level is `debug` or finer: a warning is for
 * the technician, the stack for whoever debugs; errors and fatals keep theirs.
 */
export function createLogger(level: string, options: LogOptions | boolean = {}): Logger {
  const { pretty: asked, fd = 1, journal } = typeof options === 'boolean' ? { pretty: options } : options;
  const pretty = asked ?? isatty(fd);
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
  if (journal ?? isJournalStream(fd)) return pino(settings, journalDestination(fd));
  return pino(settings, pino.destination({ dest: fd, sync: true }));
}
