import {
  AdapterBase,
  type AdapterStatus,
  DeviceReport,
  GatewayError,
  ManualClock,
  nullLogger,
  type SessionReport,
} from '@attache/core';
import t from 'tap';

/** The smallest adapter: its link opens on start and closes on stop; the report is what its sessions get. */
class LinkAdapter extends AdapterBase {
  constructor() {
    super({ deviceId: 'vent', adapter: 'rs232', log: nullLogger, clock: new ManualClock() });
  }
  get sessionReport(): SessionReport {
    return this.sessionContext(async () => undefined).report;
  }
  async start(): Promise<void> {
    this.setState('connected');
  }
  async stop(): Promise<void> {
    this.setState('stopped');
  }
}

t.test('unanswered requests are counted, absent from the status until the first', async (t) => {
  const adapter = new LinkAdapter();
  await adapter.start();
  t.notOk('unanswered' in adapter.status(), 'a device that is never polled shows no unanswered count');
  adapter.sessionReport.unanswered?.('measurements');
  adapter.sessionReport.unanswered?.('alarms');
  t.equal(adapter.status().unanswered, 2);
});

t.test(
  'a device that stops answering shows disconnected with why, and connected when it answers',
  async (t) => {
    const adapter = new LinkAdapter();
    const states: AdapterStatus[] = [];
    adapter.on('state', (s) => states.push(s));
    await adapter.start();
    const report = adapter.sessionReport;
    report.answering?.(false, new GatewayError('ATTACHE_TIMEOUT', 'no reply to measurements (2 tries)'));
    t.match(adapter.status(), {
      state: 'disconnected',
      lastError: { code: 'ATTACHE_TIMEOUT', message: 'no reply to measurements (2 tries)' },
    });
    report.answering?.(true);
    t.equal(adapter.status().state, 'connected');
    t.same(
      states.map((s) => s.state),
      ['connected', 'disconnected', 'connected'],
      'each change is an event, so the gateway journals device.lost and device.connected',
    );
    t.equal(adapter.status().lastError?.code, 'ATTACHE_TIMEOUT', 'the last error stays for the technician');
  },
);

t.test('only a connected device can be lost, only a lost one found again', async (t) => {
  const adapter = new LinkAdapter();
  const report = adapter.sessionReport;
  report.answering?.(false);
  t.equal(adapter.status().state, 'stopped', 'a stopped adapter stays stopped');
  report.answering?.(true);
  t.equal(adapter.status().state, 'stopped');
  await adapter.start();
  report.answering?.(true);
  t.equal(adapter.status().state, 'connected', 'answering while connected changes nothing');
});

t.test('silence without a GatewayError is a timeout with a plain message', async (t) => {
  const told: boolean[] = [];
  const report = new DeviceReport(nullLogger, new ManualClock(), (answering) => told.push(answering));
  report.answering(false, 'gone quiet');
  t.same(report.lastError, { code: 'ATTACHE_TIMEOUT', message: 'device not answering' });
  report.answering(false, new Error('no reply'));
  t.same(report.lastError, { code: 'ATTACHE_TIMEOUT', message: 'no reply' });
  report.answering(true);
  t.same(told, [false, false, true]);
  const alone = new DeviceReport(nullLogger, new ManualClock());
  alone.answering(false);
  t.equal(alone.lastError?.code, 'ATTACHE_TIMEOUT', 'a report without an adapter keeps the error');
});
