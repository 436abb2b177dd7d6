import { batchLines, eventLine, stateLine } from '@attache/devkit';
import t from 'tap';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

t.test('a batch shows the values of its first records, flags and statuses included', async (t) => {
  const record = (seq: number, value: number | null) => ({
    deviceId: 'spo2-bed1',
    seq,
    capturedAt: '2026-12-04T08:12:21.000Z',
    observations: [
      {
        code: 'MDC_PULS_OXIM_SAT_O2',
        source: 'SPO2',
        value,
        unit: '%',
        status: value === null ? 'unavailable' : 'valid',
      },
      { code: 'local-exc', value: '000800', unit: '1', status: 'valid' },
    ],
    ...(seq === 1 ? { flags: ['event'] } : {}),
  });
  t.same(
    batchLines(
      json({
        firstSeq: 1,
        lastSeq: 4,
        count: 4,
        records: [1, 2, 3, 4].map((s) => record(s, s === 2 ? null : 97)),
      }),
    ),
    [
      'dashboard: batch seq 1-4 (4 records)',
      'dashboard:   08:12:21 spo2-bed1 #1: SPO2 97 %, local-exc 000800 [event]',
      'dashboard:   08:12:21 spo2-bed1 #2: SPO2 -- % (unavailable), local-exc 000800',
      'dashboard:   08:12:21 spo2-bed1 #3: SPO2 97 %, local-exc 000800',
      'dashboard:   … and 1 more',
    ],
  );
  t.same(batchLines(json({ firstSeq: 5, lastSeq: 5, count: 1, recordsGzip: 'H4sI' })), [
    'dashboard: batch seq 5-5 (1 records)',
    'dashboard:   (records gzip-compressed)',
  ]);
  t.same(batchLines(Buffer.from('{')), ['dashboard: a telemetry message that is not JSON']);
});

t.test('an event and a state message are one line each', async (t) => {
  t.equal(
    eventLine(
      json({
        type: 'device.lost',
        at: '2026-12-04T08:12:21Z',
        detail: { deviceId: 'd', lastErrorCode: 'ATTACHE_PORT_NOT_OPEN' },
      }),
    ),
    'dashboard: event 08:12:21 device.lost deviceId=d lastErrorCode=ATTACHE_PORT_NOT_OPEN',
  );
  t.equal(
    eventLine(json({ type: 'cache.full', at: '2026-12-04T08:12:21Z', detail: {} })),
    'dashboard: event 08:12:21 cache.full',
  );
  t.equal(eventLine(Buffer.from('x')), 'dashboard: an event message that is not JSON');
  const state = (lastWindow: unknown, adapters: unknown[]) =>
    json({ state: { backlog: { records: 3 }, lastWindow, adapters } });
  t.equal(
    stateLine(
      state({ outcome: 'failed', endedBy: 'failed', records: 0, errorCode: 'ATTACHE_UPLINK_CONNECT' }, [
        { deviceId: 'd', state: 'connected', stored: 3 },
      ]),
    ),
    'dashboard: state: backlog 3 records; last window failed, 0 records, ATTACHE_UPLINK_CONNECT; d connected (3 stored)',
  );
  t.equal(stateLine(state(null, [])), 'dashboard: state: backlog 3 records; last window none; no adapters');
  t.equal(stateLine(Buffer.from('x')), 'dashboard: a state message that is not JSON');
});
