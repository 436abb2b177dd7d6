import { fstatSync } from 'node:fs';
import type { Logger } from '@attache/core';
import { type DestinationStream, pino } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Pretty-print for a person (pino-pretty). Default: stdout is a terminal. */
  pretty?: boolean;
  /**
   * Prefix each line with its syslog priority (`<3>` for error…) for journald, which strips it and
   * files the line under that priority (`journalctl -p err`). Default: stdout is the journal.
   */
  journal?: boolean;
  /** The file descriptor written to. Default 1 (stdout). */
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

/**
 * The one root logger: JSON lines to stdout, written synchronously so a power cut loses no line
 * (pino's async buffering would); pretty-printed when stdout is a terminal; with a `<priority>`
 * prefix when stdout is the journal. Key material and file paths of credentials are redacted
 * wherever they appear in bindings.
 */
export function createLogger(level: string, options: LoggerOptions = {}): Logger {
  const fd = options.fd ?? 1;
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
  };
  if (options.pretty ?? process.stdout.isTTY === true) {
    return pino({ ...settings, transport: { target: 'pino-pretty', options: { destination: fd } } });
  }
  if (options.journal ?? isJournalStream(fd)) return pino(settings, journalDestination(fd));
  return pino(settings, pino.destination({ dest: fd, sync: true }));
}
