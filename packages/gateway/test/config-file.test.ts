import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GatewayError } from '@attache/core';
import t from 'tap';
import { loadConfig } from '../src/config-file.js';

const valid = {
  version: 1,
  gateway: { id: 'gw-1', dataDir: '/srv/attache' },
  devices: [
    {
      id: 'd',
      adapter: 'rs232',
      port: { path: '/dev/ttyUSB0' },
      format: { kind: 'kv-line', fields: { HR: { code: 'X', unit: '/min' } } },
    },
  ],
};

t.test('a valid file loads with defaults; ATTACHE_DATA overrides the data dir', async (t) => {
  const dir = t.testdir({ 'config.json': JSON.stringify(valid) });
  const config = await loadConfig(join(dir, 'config.json'), {});
  t.equal(config.gateway.dataDir, '/srv/attache');
  t.match(config.devices[0], { adapter: 'rs232', port: { baudRate: 9600 } });
  const moved = await loadConfig(join(dir, 'config.json'), { ATTACHE_DATA: '/data/elsewhere' });
  t.equal(moved.gateway.dataDir, '/data/elsewhere');
});

t.test('a missing, unreadable or broken file is an invalid config with a reason', async (t) => {
  const dir = t.testdir({
    'broken.json': '{"version":',
    'bad.json': JSON.stringify({ ...valid, version: 3 }),
  });
  const missing = (await loadConfig(join(dir, 'nope.json'), {}).catch((e) => e)) as GatewayError;
  t.equal(missing.code, 'ATTACHE_CONFIG_INVALID');
  t.same(missing.issues, [{ path: '/', message: 'file not found' }]);
  const folder = (await loadConfig(dir, {}).catch((e) => e)) as GatewayError;
  t.same(folder.issues, [{ path: '/', message: 'file not readable' }]);
  const broken = (await loadConfig(join(dir, 'broken.json'), {}).catch((e) => e)) as GatewayError;
  t.match(broken.issues[0]?.message, /^not valid JSON/);
  const bad = (await loadConfig(join(dir, 'bad.json'), {}).catch((e) => e)) as GatewayError;
  t.same(bad.issues, [{ path: '/version', message: 'must be 1' }]);
  await writeFile(join(dir, 'ok.json'), JSON.stringify(valid));
  t.resolves(loadConfig(join(dir, 'ok.json'), {}));
});

t.test('a Modbus device naming a missing profile is refused with its path', async (t) => {
  const dir = t.testdir({
    'config.json': JSON.stringify({
      version: 1,
      gateway: { id: 'gw' },
      devices: [
        { id: 'fridge', adapter: 'modbus', bus: { transport: 'tcp', host: '127.0.0.1' }, profile: 'nope' },
      ],
    }),
  });
  await t.rejects(loadConfig(join(dir, 'config.json'), {}), {
    code: 'ATTACHE_CONFIG_INVALID',
    issues: [{ path: '/devices/0/profile' }],
  });
});
