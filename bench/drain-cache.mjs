// The gateway's side of a drain without the window process, for counting instructions: a LevelCache
// read page by page (`readPage`, pages of 126,000 bytes as the window asks for them) and each page
// removed once the next is read, as the window does after the broker's acknowledgement.
//
//   node bench/drain-cache.mjs fill DIR [records]    fills DIR with a backlog (drain.mjs's records)
//   node bench/drain-cache.mjs drain DIR             drains it, prints CPU µs per record
//
// Run the drain under callgrind on a copy of a filled DIR, once per checkout, and subtract a drain of
// an empty cache (its start): `valgrind --tool=callgrind node --v8-pool-size=1 --max-semi-space-size=1
// bench/drain-cache.mjs drain COPY`, with NODE_EXTRA_CA_CERTS unset. Nothing is asserted.
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { draft } from './drain-records.mjs';

const [mode, dir, count = '100000'] = process.argv.slice(2);
if ((mode !== 'fill' && mode !== 'drain') || !dir) {
  console.error('usage: node bench/drain-cache.mjs fill DIR [records] | drain DIR');
  process.exit(2);
}

const cache = new LevelCache({
  path: join(dir, 'cache'),
  keyring: await loadOrCreateKeyring(join(dir, 'keys', 'cache.key')),
});
await cache.open();
if (mode === 'fill') {
  const records = Number(count);
  for (let n = 0; n < records; n += 1000) {
    const group = [];
    for (let i = n; i < Math.min(records, n + 1000); i++) group.push(cache.append(draft(i)));
    await Promise.all(group);
  }
} else {
  await cache.beforeDrain();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  let afterSeq = 0;
  let records = 0;
  let removing = Promise.resolve();
  for (;;) {
    const page = await cache.readPage({
      afterSeq,
      limit: 1000,
      maxBytes: 126_000,
      room: { before: 3, after: 2 },
    });
    if (page === null) break;
    records += page.count;
    afterSeq = page.lastSeq;
    page.release?.();
    await removing;
    removing = cache.remove(page.firstSeq, page.lastSeq);
  }
  await removing;
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - t0) / 1000;
  const perRecord = records > 0 ? (used.user + used.system) / records : 0;
  console.log(
    `drained ${records} records in ${seconds.toFixed(2)} s, CPU ${perRecord.toFixed(2)} µs per record (this process, all threads)`,
  );
}
await cache.close();
