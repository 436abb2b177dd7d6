import { createServer, type Server, type Socket } from 'node:net';
import { EthernetAdapter } from '@attache/adapter-ethernet';
import { adapterContractSuite } from '@attache/adapter-test-suite';
import { getFreePort } from '@attache/devkit';
import t from 'tap';
import { ethernetDevice, until, withDriver } from './helpers.js';

/** A device that listens on `port` (the gateway connects); the sockets it accepted. */
function listeningDevice(port: number): Promise<{ server: Server; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket));
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, sockets })));
}

// The adapter contract on a real TCP link: the gateway connects to a line device that listens; the
// device going away and coming back at the same port.
adapterContractSuite(t, {
  supports: { push: true, reconnect: true },
  rig: async (t, sink) => {
    const port = await getFreePort();
    let device = await listeningDevice(port);
    const stopDevice = async () => {
      for (const socket of device.sockets) socket.destroy();
      await new Promise((resolve) => device.server.close(resolve));
    };
    t.teardown(() => (device.server.listening ? stopDevice() : undefined));
    const config = ethernetDevice({
      endpoint: { mode: 'connect', host: '127.0.0.1', port, reconnectMs: 100 },
      format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
    });
    const adapter = new EthernetAdapter({ ...withDriver(config), sink });
    return {
      adapter,
      send: async () => {
        await until(() => device.sockets.length > 0, 'the gateway connected');
        const socket = device.sockets.at(-1) as Socket;
        await new Promise((resolve) => socket.write('SPO2=097\r\n', resolve));
      },
      breakLink: stopDevice,
      restoreLink: async () => {
        device = await listeningDevice(port);
      },
    };
  },
});
