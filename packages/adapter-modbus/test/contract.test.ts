import { createModbusAdapters } from '@attache/adapter-modbus';
import { adapterContractSuite } from '@attache/adapter-test-suite';
import { startModbusServer } from '@attache/devkit';
import t from 'tap';
import { profileOf, tcpDevice } from './fixtures/helpers.js';
import { smallCase } from './fixtures/registers.js';

// The adapter contract on a real Modbus TCP peer (pymodbus): a polled adapter, so readings come on
// its own schedule rather than when the test sends.
adapterContractSuite(t, {
  supports: { push: false, reconnect: true },
  rig: async (t, sink) => {
    const one = smallCase;
    let server = await startModbusServer({ transport: 'tcp', units: { 1: [one.server] } });
    const port = server.port;
    t.teardown(() => server.stop());
    const [adapter] = createModbusAdapters({
      devices: [tcpDevice('fridge-1', port)],
      profiles: profileOf([one.register]),
      sink,
    });
    if (adapter === undefined) throw new Error('no adapter');
    return {
      adapter,
      send: async () => {},
      // The device powers off (its connection drops, nothing listens), then is back on its port.
      breakLink: () => server.stop(),
      restoreLink: async () => {
        server = await startModbusServer({ transport: 'tcp', port, units: { 1: [one.server] } });
      },
    };
  },
});
