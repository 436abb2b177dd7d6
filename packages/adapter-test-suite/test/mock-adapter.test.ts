import { adapterContractSuite, MockAdapter } from '@attache/adapter-test-suite';
import t from 'tap';

adapterContractSuite(t, {
  supports: { push: true, reconnect: true },
  rig: async (_t, sink) => {
    const adapter = new MockAdapter({ deviceId: 'mock-1', sink });
    return {
      adapter,
      send: async () => adapter.send(),
      breakLink: async () => adapter.disconnect(),
      restoreLink: async () => adapter.connect(),
    };
  },
});

t.test('a reading sent while the link is down is not delivered', async (t) => {
  const readings: unknown[] = [];
  const adapter = new MockAdapter({
    deviceId: 'mock-2',
    sink: async (r) => {
      readings.push(r);
    },
  });
  adapter.send();
  t.equal(adapter.state, 'stopped');
  await adapter.start();
  t.equal(adapter.state, 'connected');
  adapter.disconnect();
  adapter.send();
  adapter.connect();
  adapter.send();
  await adapter.stop();
  t.equal(readings.length, 1);
  t.match(adapter.status(), { frames: 1, stored: 1, state: 'stopped' });
});
