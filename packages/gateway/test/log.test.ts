// Log lines reach journald with their priority (`journalctl -p err` finds errors), and systemd's
// STATUS= line says what a technician needs at a glance.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createLogger, isJournalStream, syslogPriority } from '../src/log.js';
import { type GatewayStatus, statusLine } from '../src/status.js';

function journalFile(t: Test, dir: string, name: string) {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  t.teardown(() => closeSync(fd));
  const stat = fstatSync(fd);
  return { path, fd, stream: `${stat.dev}:${stat.ino}` };
}

t.test('on the journal, each line carries its syslog priority', async (t) => {
  const { path, fd, stream } = journalFile(t, t.testdir(), 'journal');
  const previous = process.env.JOURNAL_STREAM;
  process.env.JOURNAL_STREAM = stream;
  t.teardown(() => {
    if (previous === undefined) delete process.env.JOURNAL_STREAM;
    else process.env.JOURNAL_STREAM = previous;
  });
  t.ok(isJournalStream(fd), "systemd's JOURNAL_STREAM names this file");
  const log = createLogger('trace', { pretty: false, fd });
  log.fatal('f');
  log.error({ err: new Error('boom') }, 'e');
  log.warn('w');
  log.info('i');
  log.debug('d');
  log.trace('t');
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
  t.same(
    lines.map((l) => l.slice(0, 3)),
    ['<2>', '<3>', '<4>', '<6>', '<7>', '<7>'],
  );
  t.same(
    lines.map((l) => JSON.parse(l.slice(3)).msg),
    ['f', 'e', 'w', 'i', 'd', 't'],
    'after the prefix, the JSON line as before',
  );
});

t.test('redirected elsewhere, lines stay plain JSON', async (t) => {
  const dir = t.testdir();
  const other = journalFile(t, dir, 'other');
  const { path, fd, stream } = journalFile(t, dir, 'journal');
  t.notOk(isJournalStream(fd, {}), 'no JOURNAL_STREAM');
  t.notOk(isJournalStream(fd, { JOURNAL_STREAM: other.stream }), 'another stream');
  t.notOk(isJournalStream(fd, { JOURNAL_STREAM: 'garbage' }));
  t.notOk(isJournalStream(9999, { JOURNAL_STREAM: stream }), 'a closed descriptor');
  createLogger('info', { pretty: false, journal: false, fd }).error('e');
  t.equal(JSON.parse(readFileSync(path, 'utf8')).msg, 'e');
  t.equal(syslogPriority(45), 4, 'a custom level between warn and error counts as warn');
});

t.test('STATUS=: devices connected, backlog, a full cache, the last window', async (t) => {
  const adapter = (deviceId: string, state: 'connected' | 'disconnected') => ({
    deviceId,
    adapter: 'rs232' as const,
    state,
    since: '2026-11-24T02:59:30.000Z',
    frames: 0,
    stored: 0,
    malformed: 0,
    refused: 0,
  });
  const status: GatewayStatus = {
    gatewayId: 'gw-1',
    running: true,
    startedAt: '2026-11-24T01:00:00.000Z',
    backlog: { records: 1234, bytes: 1, firstSeq: 1, lastSeq: 1234, oldestCapturedAt: null, nextSeq: 1235 },
    cache: { dropped: 0, quarantined: 0, full: false, lastCompactionAt: null },
    lastWindow: null,
    uplink: { configured: true, windowOpen: false, everySeconds: null },
    adapters: [adapter('spo2-bed1', 'connected'), adapter('spo2-bed2', 'disconnected')],
  };
  t.equal(statusLine(status), '1/2 devices connected, backlog 1234 records');
  const full = {
    ...status,
    cache: { ...status.cache, full: true },
    lastWindow: {
      openedAt: '2026-11-24T02:00:00.000Z',
      closedAt: '2026-11-24T02:00:12.000Z',
      outcome: 'drained' as const,
      records: 5,
      messages: 1,
      bytes: 10,
      firstSeq: 1,
      lastSeq: 5,
    },
  };
  t.equal(
    statusLine(full),
    '1/2 devices connected, backlog 1234 records, cache FULL, last window drained 2026-11-24T02:00:12.000Z',
  );
});
