import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { nullLogger } from '@attache/core';
import t from 'tap';
import { ClockWatch, EventJournal } from '../src/window-events.js';

t.test('an event journal cut between its two writes never gives an event id twice', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'attache-events-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cache = new LevelCache({
    path: join(dir, 'cache'),
    keyring: await loadOrCreateKeyring(join(dir, 'key')),
  });
  await cache.open();
  t.teardown(() => cache.close());
  const journal = () =>
    new EventJournal({
      cache,
      gatewayId: 'gw-1',
      clock: new ClockWatch(join(dir, 'synced')),
      logger: nullLogger,
    });
  await journal().add('device.connected', { n: 1 });
  await journal().add('device.connected', { n: 2 });
  // A power cut after the pending list was written, before the next id: the list holds id 3.
  const pending = await cache.getState<{ eventId: number }[]>('events.pending');
  await cache.setState('events.pending', [...(pending ?? []), { ...pending?.[1], eventId: 3 }]);
  await journal().add('device.connected', { n: 4 });
  const ids = (await journal().pending()).map((e) => e.eventId);
  t.same(ids, [1, 2, 3, 4], 'the next event gets 4, not 3 again');
});
