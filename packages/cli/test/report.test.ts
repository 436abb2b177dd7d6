import type { AdapterStatus, WindowResult } from '@attache/core';
import type { GatewayStatus } from '@attache/gateway';
import t from 'tap';
import { formatIssues, formatStatus, formatWindow } from '../src/report.js';

const window: WindowResult = {
  openedAt: '2026-11-24T02:00:00.000Z',
  closedAt: '2026-11-24T02:00:12.500Z',
  outcome: 'failed',
  records: 1200,
  messages: 3,
  bytes: 350_000,
  firstSeq: 1,
  lastSeq: 1200,
  error: { code: 'ATTACHE_UPLINK_PUBLISH', message: 'connection lost' },
};

t.test('an interrupted window, and one whose jobs could not be set up', async (t) => {
  const { error: _error, ...ok } = window;
  t.equal(
    formatWindow({ ...ok, outcome: 'deadline', endedBy: 'interrupted', trigger: 'schedule' }),
    'window [schedule] interrupted (the gateway was stopping; the rest goes next time) after 12.5 s: 1200 records in 3 messages, 341.8 KiB (seq 1–1200)',
  );
  t.equal(
    formatWindow({
      ...ok,
      outcome: 'drained',
      endedBy: 'drained',
      jobsError: { code: 'ATTACHE_JOBS_UNAVAILABLE', message: 'jobs not taken in this window: ENOENT' },
    }),
    'window drained after 12.5 s: 1200 records in 3 messages, 341.8 KiB (seq 1–1200)\n  jobs ATTACHE_JOBS_UNAVAILABLE: jobs not taken in this window: ENOENT',
  );
});

t.test('a window reads as one line plus its error', async (t) => {
  t.equal(
    formatWindow(window),
    'window failed after 12.5 s: 1200 records in 3 messages, 341.8 KiB (seq 1–1200)\n  error ATTACHE_UPLINK_PUBLISH: connection lost',
  );
  t.equal(
    formatWindow({
      ...window,
      outcome: 'drained',
      records: 0,
      messages: 0,
      bytes: 0,
      firstSeq: null,
      lastSeq: null,
      error: undefined,
    }),
    'window drained after 12.5 s: 0 records in 0 messages, 0 B',
  );
});

t.test('status shows backlog, uplink, last window and each adapter', async (t) => {
  const now = Date.parse('2026-11-24T03:00:00.000Z');
  const status: GatewayStatus = {
    gatewayId: 'gw-1',
    running: true,
    startedAt: '2026-11-24T01:00:00.000Z',
    backlog: {
      records: 42,
      bytes: 5 * 1024 * 1024,
      firstSeq: 7,
      lastSeq: 48,
      oldestCapturedAt: '2026-11-24T02:15:00.000Z',
      nextSeq: 49,
    },
    cache: { dropped: 0, quarantined: 0, full: false, lastCompactionAt: null },
    lastWindow: window,
    uplink: { configured: true, windowOpen: true, everySeconds: 3600 },
    adapters: [
      {
        deviceId: 'spo2-bed7',
        adapter: 'rs232',
        state: 'connected',
        since: '2026-11-24T02:59:30.000Z',
        frames: 10,
        stored: 8,
        malformed: 2,
        refused: 0,
        lastError: { code: 'ATTACHE_MALFORMED', message: 'x' },
      },
    ],
  };
  const text = formatStatus(status, now);
  t.match(text, 'gateway gw-1: running since 2026-11-24T01:00:00.000Z');
  t.match(text, 'backlog: 42 records, 5.0 MiB, oldest 45 min; next seq 49');
  t.match(text, 'uplink: windows every 3600 s, a window is open now');
  t.notMatch(text, 'cache:', 'nothing said about the cache while it is healthy');
  t.notMatch(text, 'files up', 'nothing about files up without it');
  t.match(
    formatStatus(
      {
        ...status,
        files: {
          captured: 4,
          duplicates: 1,
          uploaded: 2,
          refused: 1,
          dropped: 0,
          waiting: 2,
          waitingBytes: 2048,
        },
      },
      now,
    ),
    'files up: 2 waiting (2048 bytes); captured 4, uploaded 2, refused 1, dropped 0, duplicates 1',
  );
  const sick = formatStatus(
    {
      ...status,
      cache: {
        dropped: 12,
        quarantined: 3,
        full: true,
        lastCompactionAt: new Date(now - 7_200_000).toISOString(),
      },
    },
    now,
  );
  t.match(sick, 'cache: FULL, new readings are refused');
  t.match(sick, 'cache: 12 records dropped by its bounds');
  t.match(sick, 'cache: 3 values quarantined: failed authentication');
  t.match(sick, 'cache: last compacted 2 h ago');
  t.match(text, 'last window failed');
  t.match(
    text,
    'spo2-bed7 (rs232): connected for 30 s; 10 frames, 8 stored, 2 malformed, 0 refused, last error ATTACHE_MALFORMED',
  );
  const polled = formatStatus(
    { ...status, adapters: [{ ...(status.adapters[0] as AdapterStatus), unanswered: 3 }] },
    now,
  );
  t.match(polled, '0 refused, 3 unanswered, last error', 'a polled device shows its unanswered requests');
  const stopped = formatStatus(
    {
      ...status,
      running: false,
      lastWindow: null,
      uplink: { configured: false, windowOpen: false, everySeconds: null },
    },
    now,
  );
  t.match(stopped, 'not running');
  t.match(stopped, 'uplink: not configured');
  t.match(stopped, 'last window: none yet');
  t.notMatch(stopped, 'adapters:');
  t.match(
    formatStatus(
      {
        ...status,
        uplink: { configured: true, windowOpen: false, everySeconds: null },
        backlog: { ...status.backlog, oldestCapturedAt: null },
      },
      now,
    ),
    /on demand\n.*\n?/,
  );
  t.match(
    formatStatus(
      { ...status, backlog: { ...status.backlog, oldestCapturedAt: '2026-11-20T03:00:00.000Z' } },
      now,
    ),
    'oldest 4 d',
  );
  t.match(
    formatStatus(
      { ...status, backlog: { ...status.backlog, oldestCapturedAt: '2026-11-23T01:00:00.000Z', bytes: 100 } },
      now,
    ),
    '100 B, oldest 26 h',
  );
});

t.test('config problems are listed one per line with their path', async (t) => {
  t.equal(
    formatIssues('/etc/attache/config.json', [
      { path: '/gateway/id', message: 'is required' },
      { path: '/devices/0/port/baudRate', message: 'must be one of 9600' },
    ]),
    'attache: config /etc/attache/config.json is invalid:\n  /gateway/id: is required\n  /devices/0/port/baudRate: must be one of 9600',
  );
});
