// The disk's ceiling for one durable write at a time: append ~500 bytes to a file and fdatasync it,
// one after the other, as a cache that synced every reading alone would. Prints writes/s and the
// latency of one write + fdatasync. `node bench/peers/fsync-probe.mjs [dir] [count]`; dir defaults to
// the system's temporary directory (use the disk the cache lives on).
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function fsyncCeiling(parent = tmpdir(), count = 2000) {
  const dir = mkdtempSync(join(parent, 'attache-fsync-'));
  const file = await open(join(dir, 'probe'), 'a');
  const record = Buffer.alloc(500, 0x61);
  const times = [];
  try {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      await file.write(record);
      await file.datasync();
      times.push(performance.now() - start);
    }
    const seconds = (performance.now() - t0) / 1000;
    times.sort((a, b) => a - b);
    return {
      perSecond: count / seconds,
      p50: times[Math.floor(count / 2)],
      p99: times[Math.floor(count * 0.99)],
    };
  } finally {
    await file.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await fsyncCeiling(process.argv[2], Number(process.argv[3] ?? 2000));
  console.log(
    `fsync ceiling: ${Math.round(r.perSecond).toLocaleString('en-US')} writes/s; write + fdatasync p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`,
  );
}
