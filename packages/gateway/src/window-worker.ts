// The window process: forked by the gateway for one connectivity window, so that the AWS CRT (TLS,
// MQTT, its threads and ~10 MB of RSS) lives only while a window is open and a fault in it cannot
// stop the acquisition of readings. It sees the gateway's cache (and its state, shadow settings and
// events) over IPC; the window itself is a WindowProcess (window-process.ts).

import { PageFrameReader } from './page-pipe.js';
import { WindowProcess } from './window-process.js';
import type { FromWindow, ToWindow } from './window-protocol.js';

const windowProcess = new WindowProcess({
  send: (message: FromWindow, sent?: () => void) => {
    if (sent) process.send?.(message, () => sent());
    else process.send?.(message);
  },
  exit: (code) => process.exit(code),
  pagePipe: () => PageFrameReader.open(4),
});

process.on('uncaughtException', (err) => windowProcess.failed(err));
process.on('unhandledRejection', (err) => windowProcess.failed(err));
// Ctrl-C (the terminal signals the whole process group) and `systemctl stop` (SIGTERM to every
// process of the unit) reach this process too: the window ends as interrupted, like an abort from
// the gateway, and reports; unacknowledged records stay in the cache.
process.on('SIGINT', () => windowProcess.abort());
process.on('SIGTERM', () => windowProcess.abort());
process.on('message', (message: ToWindow) => windowProcess.receive(message));
// The gateway went away: end the window; unacknowledged records are still in its cache.
process.on('disconnect', () => process.exit(1));
