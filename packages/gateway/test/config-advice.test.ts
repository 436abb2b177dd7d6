import { validateConfig } from '@attache/core';
import t from 'tap';
import { configAdvice } from '../src/config-advice.js';

const kv = { kind: 'kv-line', fields: { HR: { code: 'X', unit: '/min' } } };

t.test('ports named by plug-in order get a warning; stable names and TCP devices do not', async (t) => {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw-1' },
    modbusProfiles: {
      fridge: {
        registers: [
          { name: 't', table: 'holding-register', address: 0, type: 'int16', code: 'MDC_TEMP', unit: 'Cel' },
        ],
      },
    },
    devices: [
      { id: 'a', adapter: 'rs232', port: { path: '/dev/ttyUSB0' }, format: kv },
      {
        id: 'b',
        adapter: 'rs232',
        port: { path: '/dev/serial/by-id/usb-FTDI_FT232R_A10K1-if00-port0' },
        format: kv,
      },
      { id: 'c', adapter: 'rs232', port: { path: '/dev/ttyACM3' }, format: kv },
      {
        id: 'd',
        adapter: 'modbus',
        bus: { transport: 'rtu', path: '/dev/ttyUSB1' },
        unitId: 1,
        profile: 'fridge',
      },
      {
        id: 'e',
        adapter: 'modbus',
        bus: { transport: 'tcp', host: '10.0.0.5' },
        unitId: 1,
        profile: 'fridge',
      },
    ],
  });
  const advice = configAdvice(config);
  t.same(
    advice.map((a) => a.path),
    ['/devices/0/port/path', '/devices/2/port/path', '/devices/3/bus/path'],
  );
  t.match(
    advice[0]?.message,
    /\/dev\/ttyUSB0 can name another device after a replug or a reboot: use its \/dev\/serial\/by-id\//,
  );
});
