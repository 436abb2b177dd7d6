import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayError } from '@attache/core';
import { loadConfig } from '@attache/gateway/client';
import t from 'tap';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

function config(schedules: string[]) {
  return {
    version: 1,
    gateway: { id: 'gw-1', dataDir: '/srv/attache' },
    devices: [
      {
        id: 'd',
        adapter: 'rs232',
        port: { path: '/dev/serial/by-id/usb-x' },
        format: { kind: 'kv-line', fields: { HR: { code: 'X', unit: '/min' } } },
      },
    ],
    uplink: {
      endpoint: 'localhost',
      certFile: '/etc/attache/cert.pem',
      keyFile: '/etc/attache/key.pem',
      caFile: '/etc/attache/ca.pem',
      window: { schedules },
    },
  };
}

function cli(...args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (err, _stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stderr });
    });
  });
}

t.test('an empty window slot is refused with its path, by the loader and by config validate', async (t) => {
  const dir = t.testdir({
    'empty.json': JSON.stringify(config(['01:00-02:00', '08:00-08:00'])),
    'ok.json': JSON.stringify(config(['22:00-02:00'])),
  });
  const refused = (await loadConfig(join(dir, 'empty.json'), {}).catch((e) => e)) as GatewayError;
  t.equal(refused.code, 'ATTACHE_CONFIG_INVALID');
  t.same(refused.issues, [
    {
      path: '/uplink/window/schedules/1',
      message: 'not a daily slot HH:MM-HH:MM with an end other than its start',
    },
  ]);
  t.same((await loadConfig(join(dir, 'ok.json'), {})).uplink?.window.schedules, ['22:00-02:00']);

  const validate = await cli('config', 'validate', '--config', join(dir, 'empty.json'));
  t.equal(validate.code, 78, 'the config error status, which systemd does not restart');
  t.match(validate.stderr, /\/uplink\/window\/schedules\/1: not a daily slot/);
  t.notMatch(validate.stderr, /TypeError/);
});
