// A small fleet day (bench/fleet-day.mjs has the full one): real caches and uplinks through the test
// mosquitto into @attache/consumer, with every fault of the day: broker restart mid-window, windows
// cut by their deadline, gateways killed mid-window, clocks unsynchronized then corrected, full
// caches dropping the oldest.
import t from 'tap';
import { runFleetDay } from '../bench/fleet-day.mjs';

t.test(
  'a fleet day: the consumer delivers exactly what the devices produced minus what was dropped',
  async (t) => {
    const day = await runFleetDay({ gateways: 6, records: 60, parallel: 6 });
    t.equal(day.produced, 6 * 60);
    t.ok(day.dropped > 0, `full caches dropped records (${day.dropped})`);
    t.equal(day.delivered, day.produced - day.reportedDropped, 'delivered = produced − reported dropped');
    t.ok(day.reportedDropped <= day.dropped, 'never more reported dropped than the gateways dropped');
    t.ok(day.inFlightAtRestart > 0, `the broker restarted under running windows (${day.inFlightAtRestart})`);
    t.ok((day.outcomes.deadline ?? 0) > 0, 'windows were cut by their deadline or a kill');
    t.same(day.findings, {
      duplicates: [],
      order: [],
      refused: [],
      missing: [],
      wrong: [],
      unexplained: [],
      clock: [],
    });
  },
);
