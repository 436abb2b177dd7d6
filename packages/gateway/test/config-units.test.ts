import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../src/config-file.js';

t.test('a unit that is not UCUM is refused at config time, with the UCUM spelling', async (t) => {
  const dir = t.testdir({
    'config.json': JSON.stringify({
      version: 1,
      gateway: { id: 'gw-1' },
      devices: [
        {
          id: 'ox',
          adapter: 'rs232',
          port: { path: '/dev/attache/ox' },
          format: {
            kind: 'kv-line',
            fields: { SPO2: { code: 'S', unit: 'percent' }, HR: { code: 'H', unit: 'bpm' } },
          },
        },
      ],
    }),
  });
  await t.rejects(loadConfig(join(dir, 'config.json'), {}), {
    code: 'ATTACHE_CONFIG_INVALID',
    issues: [
      { path: '/devices/0/format/fields/SPO2/unit', message: '"percent" is not a UCUM unit: write "%"' },
      { path: '/devices/0/format/fields/HR/unit', message: '"bpm" is not a UCUM unit: write "/min"' },
    ],
  });
});
