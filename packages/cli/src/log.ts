import type { Logger } from '@attache/core';
import { pino } from 'pino';

/**
 * The one root logger: JSON lines to stdout, written synchronously so a power cut loses no line
 * (pino's async buffering would); pretty-printed when stdout is a terminal. Key material and file
 * paths of credentials are redacted wherever they appear in bindings.
 */
export function createLogger(level: string, pretty = process.stdout.isTTY === true): Logger {
  const options = {
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
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 1 } } });
  }
  return pino(options, pino.destination({ dest: 1, sync: true }));
}
