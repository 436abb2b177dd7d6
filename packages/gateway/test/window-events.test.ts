import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { type AdapterStatus, nullLogger, type RecordDraft } from '@attache/core';
import t, { type Test } from 'tap';
import { ClockWatch, EventJournal, EventMonitor } from '../src/window-events.js';

/** A cache on disk in the test's directory, closed at teardown. */
async function openedCache(t: Test, dir: string, maxRecords = 1e9): Promise<LevelCache> {
  const cache = new LevelCache({
    path: join(dir, 'cache'),
    keyring: await loadOrCreateKeyring(join(dir, 'key')),
    limits: { maxRecords, maxBytes: 1e12, maxAgeMs: 0, whenFull: 'drop-oldest' },
  });
  await cache.open();
  t.teardown(() => cache.close());
  return cache;
}

function journalOf(cache: LevelCache, dir: string): EventJournal {
  return new EventJournal({
    cache,
    gatewayId: 'gw-1',
    clock: new ClockWatch(join(dir, 'synced')),
    logger: nullLogger,
  });
}

function draft(n: number): RecordDraft {
  return {
    gatewayId: 'gw-1',
    deviceId: 'spo2-bed7',
    adapter: 'rs232',
    protocol: 'kv-line',
    capturedAt: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
    clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: n },
    observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: n, unit: '%', status: 'valid' }],
  };
}

/**
 * `cache` whose state writes stop after `writes` of them, as a power cut would stop the process:
 * every later write is lost (rejects), reads still see what reached the disk.
 */
function cutAfter(cache: LevelCache, writes: number): LevelCache {
  let left = writes;
  return new Proxy(cache, {
    get(target, key) {
      if (key === 'setState') {
        return (k: string, v: unknown) =>
          left-- > 0 ? target.setState(k, v) : Promise.reject(new Error('power cut'));
      }
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

t.test('an event journal cut at any write never gives an acknowledged id again', async (t) => {
  for (let writes = 0; writes <= 3; writes++) {
    const dir = t.testdir();
    const cache = await openedCache(t, dir);
    const cut = journalOf(cutAfter(cache, writes), dir);
    await cut.add('device.connected', { n: 1 });
    await cut.add('device.connected', { n: 2 });
    // After the restart the window uploads what is pending, and the broker acknowledges it.
    const after = journalOf(cache, dir);
    const given = (await after.pending()).map((e) => e.eventId as number);
    await after.remove(given);
    await after.add('device.connected', { n: 3 });
    const next = (await after.pending()).map((e) => e.eventId as number);
    t.equal(next.length, 1, `cut after ${writes} writes: one event pending`);
    t.ok(
      (next[0] as number) > Math.max(0, ...given),
      `cut after ${writes} writes: the new id ${next[0]} is above every id given (${given})`,
    );
    await cache.close();
  }
});

t.test('a journal written by the two-write release is taken over without reusing an id', async (t) => {
  const dir = t.testdir();
  const cache = await openedCache(t, dir);
  // A power cut after the old pending list was written, before its counter: the list holds id 3.
  const old = (eventId: number) => ({ eventId, type: 'device.connected', detail: {} });
  await cache.setState('events.pending', [old(1), old(2), old(3)]);
  await cache.setState('events.nextId', 2);
  const journal = journalOf(cache, dir);
  await journal.add('device.connected', { n: 4 });
  t.same(
    (await journal.pending()).map((e) => e.eventId),
    [1, 2, 3, 4],
    'kept pending, the next event gets 4',
  );
  await journal.reportDrops(7);
  t.equal(
    (await journal.pending()).length,
    4,
    'drops before the upgrade cannot be told apart: none reported',
  );
});

t.test(
  'every cache drop is reported once: before the first poll, between polls, after the last',
  async (t) => {
    const dir = t.testdir();
    const cache = await openedCache(t, dir, 2);
    const monitor = (journal: EventJournal) => new EventMonitor({ journal, cache });
    const drops = async (journal: EventJournal) =>
      (await journal.pending())
        .filter((e) => e.type === 'cache.records-dropped')
        .map((e) => e.detail as { count: number; total: number });

    for (let n = 0; n < 3; n++) await cache.append(draft(n));
    const first = journalOf(cache, dir);
    const polls = monitor(first);
    await polls.poll();
    t.same(await drops(first), [{ count: 1, total: 1 }], 'a drop before the first poll');
    await polls.poll();
    t.equal((await drops(first)).length, 1, 'a poll with no new drop reports nothing');
    for (let n = 3; n < 5; n++) await cache.append(draft(n));
    await polls.poll();
    t.same((await drops(first)).at(-1), { count: 2, total: 3 }, 'drops between polls');

    // Drops after the last poll of one run are reported by the first poll of the next.
    await cache.append(draft(5));
    const next = journalOf(cache, dir);
    await monitor(next).poll();
    t.same(
      (await drops(next)).map((d) => d.count),
      [1, 2, 1],
      'each drop counted once, in order',
    );
  },
);

t.test('adapter states become device events: each change once, restarts and stops none', async (t) => {
  const dir = t.testdir();
  const cache = await openedCache(t, dir);
  const journal = journalOf(cache, dir);
  const monitor = new EventMonitor({ journal, cache });
  const state = (deviceId: string, s: AdapterStatus['state'], code?: string): AdapterStatus => ({
    deviceId,
    adapter: 'rs232',
    state: s,
    since: '2026-11-01T00:00:00.000Z',
    frames: 0,
    stored: 0,
    malformed: 0,
    refused: 0,
    ...(code ? { lastError: { code, message: 'm' } } : {}),
  });
  // A port that fails at start was never connected: not lost.
  monitor.deviceState(state('a', 'starting'));
  monitor.deviceState(state('a', 'disconnected', 'ATTACHE_PORT_NOT_OPEN'));
  monitor.deviceState(state('a', 'connected'));
  // A reload: stopped, starting, connected again, all while the device stayed.
  monitor.deviceState(state('a', 'stopped'));
  monitor.deviceState(state('a', 'starting'));
  monitor.deviceState(state('a', 'connected'));
  monitor.deviceState(state('b', 'connected'));
  monitor.deviceState(state('a', 'disconnected'));
  monitor.deviceState(state('b', 'disconnected', 'ATTACHE_PORT_NOT_OPEN'));
  monitor.deviceState(state('b', 'disconnected'));
  // The poll writes after the device events queued before it.
  await monitor.poll();
  t.same(
    (await journal.pending()).map((e) => [e.type, e.detail]),
    [
      ['device.connected', { deviceId: 'a', adapter: 'rs232' }],
      ['device.connected', { deviceId: 'b', adapter: 'rs232' }],
      ['device.lost', { deviceId: 'a', adapter: 'rs232' }],
      ['device.lost', { deviceId: 'b', adapter: 'rs232', lastErrorCode: 'ATTACHE_PORT_NOT_OPEN' }],
    ],
    'a connection each, then a loss each (with the error code when there is one)',
  );
});
