import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig } from '@attache/core';
import { createTestPki } from '@attache/devkit';
import t from 'tap';
import { checkConfigFiles, checkDevices } from '../src/config-check.js';

const kv = { kind: 'kv-line', fields: { HR: { code: 'X', unit: '/min' } } };
const profiles = {
  fridge: {
    registers: [{ name: 't', table: 'holding-register', address: 0, type: 'int16', code: 'T', unit: 'Cel' }],
  },
};

function config(devices: unknown[], extra: Record<string, unknown> = {}) {
  return validateConfig({ version: 1, gateway: { id: 'gw-1' }, modbusProfiles: profiles, devices, ...extra });
}

t.test('two devices with one id, or one serial port, or one listening port are refused', async (t) => {
  const issues = checkDevices(
    config([
      { id: 'a', adapter: 'rs232', port: { path: '/dev/ttyS0' }, format: kv },
      { id: 'a', adapter: 'rs232', port: { path: '/dev/ttyS1' }, format: kv },
      { id: 'b', adapter: 'rs232', port: { path: '/dev/ttyS0' }, format: kv },
      { id: 'm1', adapter: 'modbus', bus: { transport: 'rtu', path: '/dev/ttyS5' }, profile: 'fridge' },
      { id: 'm2', adapter: 'modbus', bus: { transport: 'rtu', path: '/dev/ttyS5' }, profile: 'fridge' },
      { id: 'm3', adapter: 'modbus', bus: { transport: 'rtu', path: '/dev/ttyS1' }, profile: 'fridge' },
      {
        id: 'l1',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', port: 2575, allow: ['10.0.0.0/8'] },
        format: { kind: 'hl7-mllp' },
      },
      {
        id: 'l2',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', host: '10.0.0.2', port: 2575, allow: ['10.0.0.0/8'] },
        format: { kind: 'hl7-mllp' },
      },
      {
        id: 'l3',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', port: 2576, allow: ['10.0.0.0/8'] },
        format: { kind: 'hl7-mllp' },
      },
      {
        id: 'c1',
        adapter: 'ethernet',
        endpoint: { mode: 'connect', host: 'x', port: 2575 },
        format: { kind: 'hl7-mllp' },
      },
      ...['10.0.0.3', '10.0.0.4', undefined].map((host, n) => ({
        id: `h${n}`,
        adapter: 'ethernet',
        endpoint: { mode: 'listen', ...(host ? { host } : {}), port: 2577, allow: ['10.0.0.0/8'] },
        format: { kind: 'hl7-mllp' },
      })),
    ]),
  );
  t.match(issues, [
    { path: '/devices/1/id', message: /"a" is already the id of \/devices\/0: their readings would merge/ },
    { path: '/devices/2/port/path', message: /\/dev\/ttyS0 is already the port of \/devices\/0/ },
    { path: '/devices/5/bus/path', message: /\/dev\/ttyS1 is already the port of \/devices\/1/ },
    { path: '/devices/7/endpoint/port', message: '/devices/6 already listens on port 2575' },
    { path: '/devices/12/endpoint/port', message: '/devices/10 already listens on port 2577' },
  ]);
  t.equal(
    issues.length,
    5,
    'Modbus RTU devices share their bus; two addresses may each have the port; a connecting device listens on nothing',
  );
});

t.test('serial port paths must be device paths', async (t) => {
  const issues = checkDevices(
    config([
      { id: 'a', adapter: 'rs232', port: { path: 'ttyUSB0' }, format: kv },
      { id: 'b', adapter: 'rs232', port: { path: 'COM3' }, format: kv },
      { id: 'c', adapter: 'modbus', bus: { transport: 'rtu', path: 'dev/ttyS0' }, profile: 'fridge' },
      { id: 'd', adapter: 'rs232', port: { path: '/dev/serial/by-id/usb-FTDI-if00-port0' }, format: kv },
    ]),
  );
  t.match(issues, [
    {
      path: '/devices/0/port/path',
      message: 'ttyUSB0 is not a device path: name it in full, e.g. /dev/ttyUSB0',
    },
    { path: '/devices/1/port/path', message: /COM3 is a Windows port name/ },
    { path: '/devices/2/bus/path', message: /dev\/ttyS0 is not a device path/ },
  ]);
  t.equal(issues.length, 3);
});

t.test('a regex-line pattern must compile and hold the groups its fields name', async (t) => {
  const issues = checkDevices(
    config([
      {
        id: 'a',
        adapter: 'rs232',
        port: { path: '/dev/ttyS0' },
        format: {
          kind: 'regex-line',
          pattern: '^SpO2=(?<spo2>\\d+',
          fields: { spo2: { code: 'X', unit: '%' } },
        },
      },
      {
        id: 'b',
        adapter: 'ethernet',
        endpoint: { mode: 'connect', host: 'x', port: 1 },
        format: {
          kind: 'regex-line',
          pattern: '^SpO2=(?<spo2>\\d+)|PR=(?<pr>\\d+)$',
          fields: {
            spo2: { code: 'X', unit: '%' },
            pr: { code: 'Y', unit: '/min' },
            hr: { code: 'Z', unit: '/min' },
          },
        },
      },
      {
        id: 'c',
        adapter: 'rs232',
        port: { path: '/dev/ttyS1' },
        format: { kind: 'regex-line', pattern: '^\\d+$', fields: { v: { code: 'X', unit: '1' } } },
      },
      {
        id: 'd',
        adapter: 'rs232',
        port: { path: '/dev/ttyS2' },
        format: {
          kind: 'regex-line',
          pattern: '^(?<v>\\d+)(?= mmHg)',
          fields: { v: { code: 'X', unit: '1' } },
        },
      },
    ]),
  );
  t.match(issues, [
    { path: '/devices/0/format/pattern', message: /^not a valid regular expression: / },
    { path: '/devices/1/format/fields/hr', message: /the pattern has no group named "hr"/ },
    { path: '/devices/2/format/fields/v', message: /no group named "v"/ },
    { path: '/devices/3/format/pattern', message: /^cannot be matched in linear time: .*look-arounds/ },
  ]);
  t.equal(issues.length, 4);
});

t.test(
  'a capture needs files up, fits files.maxFileBytes, and its patterns compile and are linear',
  async (t) => {
    const files = {
      maxFileBytes: 2048,
      upload: { credentialsEndpoint: 'c.example', roleAlias: 'r', bucket: 'bkt', region: 'eu-west-1' },
    };
    const uplink = {
      endpoint: 'iot.example',
      certFile: '/c',
      keyFile: '/k',
      caFile: '/ca',
    };
    const serial = (i: number, capture: Record<string, unknown>) => ({
      id: `s${i}`,
      adapter: 'rs232',
      port: { path: `/dev/ttyS${i}` },
      format: kv,
      capture,
    });
    const full = checkDevices(
      config(
        [
          serial(0, { start: '^BEGIN', end: '^END', maxBytes: 1024 }),
          serial(1, { start: '^BEGIN', maxBytes: 4096 }),
          serial(2, { start: '(?<=x)y', end: '(', maxBytes: 1024 }),
          {
            id: 'tcp',
            adapter: 'ethernet',
            endpoint: { mode: 'connect', host: 'x', port: 1 },
            format: { kind: 'hl7-mllp' },
            capture: { start: '(\\w)\\1', mode: 'instead', maxBytes: 1024 },
          },
        ],
        { files, uplink },
      ),
    );
    t.match(full, [
      { path: '/devices/1/capture/maxBytes', message: /larger than files.maxFileBytes \(2048\)/ },
      { path: '/devices/2/capture/start', message: /^cannot be matched in linear time: / },
      { path: '/devices/2/capture/end', message: /^not a valid regular expression: / },
      { path: '/devices/3/capture/start', message: /^cannot be matched in linear time: / },
    ]);
    t.equal(full.length, 4);
    t.match(checkDevices(config([serial(0, { start: '^B' })], { uplink })), [
      { path: '/devices/0/capture', message: /configure `files` too/ },
    ]);
    t.match(checkDevices(config([serial(0, { start: '^B' })], { files })), [
      { path: '/devices/0/capture', message: /configure `uplink` too/ },
    ]);
  },
);

t.test('the files a config names must be readable and hold what they should', async (t) => {
  const dir = t.testdir({ folder: {}, 'junk.pem': 'not pem' });
  const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-1' });
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'jobs.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  mkdirSync(join(dir, 'data'));
  const uplink = {
    endpoint: 'localhost',
    certFile: pki.clientCertFile,
    keyFile: pki.clientKeyFile,
    caFile: pki.caFile,
  };
  const good = config([{ id: 'a', adapter: 'rs232', port: { path: '/dev/null' }, format: kv }], {
    uplink,
    jobs: { publicKeyFile: join(dir, 'jobs.pub') },
    cache: { exportRecipientFile: join(dir, 'jobs.pub') },
  });
  t.same(await checkConfigFiles(good), [], 'real files, and /dev/null is a character device');

  const bad = config(
    [
      { id: 'a', adapter: 'rs232', port: { path: '/etc/hostname' }, format: kv },
      { id: 'b', adapter: 'rs232', port: { path: join(dir, 'unplugged') }, format: kv },
      { id: 'c', adapter: 'rs232', port: { path: 'ttyUSB0' }, format: kv },
    ],
    {
      uplink: {
        ...uplink,
        certFile: pki.clientKeyFile,
        keyFile: join(dir, 'folder'),
        caFile: '/run/credentials/attache.service/uplink_ca.pem',
        routes: [
          {
            name: 'r',
            endpoint: 'x',
            certFile: join(dir, 'junk.pem'),
            keyFile: join(dir, 'junk.pem'),
            devices: ['a'],
          },
        ],
      },
      jobs: { publicKeyFile: join(dir, 'missing.pub'), caFile: join(dir, 'junk.pem') },
      cache: { exportRecipientFile: join(dir, 'junk.pem') },
    },
  );
  t.match(await checkConfigFiles(bad), [
    { path: '/uplink/certFile', message: `${pki.clientKeyFile} is not a PEM certificate` },
    { path: '/uplink/keyFile', message: `${join(dir, 'folder')}: is a directory` },
    {
      path: '/uplink/caFile',
      message:
        '/run/credentials/attache.service/uplink_ca.pem: file not found (systemd provides it only while the service runs)',
    },
    { path: '/uplink/routes/0/certFile', message: /junk.pem is not a PEM certificate$/ },
    {
      path: '/uplink/routes/0/keyFile',
      message: /junk.pem is not a PEM private key \(or it is encrypted\)$/,
    },
    { path: '/jobs/publicKeyFile', message: `${join(dir, 'missing.pub')}: file not found` },
    { path: '/jobs/caFile', message: /junk.pem is not a PEM CA bundle$/ },
    { path: '/cache/exportRecipientFile', message: /junk.pem is not a PEM public key$/ },
    {
      path: '/devices/0/port/path',
      message: '/etc/hostname is not a device (a serial port is a character device)',
    },
  ]);
  t.equal((await checkConfigFiles(bad)).length, 9, 'an unplugged port (not there yet) is no problem');
});
