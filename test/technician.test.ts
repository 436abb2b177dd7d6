// End-to-end: `attache run` with the technician page on, a simulated oximeter on a socat pty, the
// broker: a technician logs in with the box secret, sees the device and its live readings, and opens
// a window that uploads them.

import { getFreePort } from '@attache/devkit';
import t from 'tap';
import { Stack } from './helpers/stack.js';
import { TechnicianClient } from './helpers/technician-client.js';

t.test('log in with the box secret, see live readings, open a window', async (t) => {
  const stack = await Stack.start(t);
  const port = await getFreePort();
  await stack.writeConfig({ ...stack.config(), technician: { listen: ['127.0.0.1'], port } });
  const shown = await stack.run('technician', 'secret');
  t.equal(shown.code, 0, shown.stderr);
  const secret = shown.stdout.trim();
  const telemetry = await stack.subscribe();
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'technician page listening');
  await gateway.waitForLog((l) => l.msg === 'gateway started');

  const page = new TechnicianClient(port);
  t.equal((await page.login('Dana (biomed)', 'AAAA-BBBB-CCCC-DDDD')).status, 401, 'a wrong secret');
  t.equal((await page.login('Dana (biomed)', secret)).status, 200);
  const status = await page.call('GET', '/api/status');
  t.match(status.json, { gatewayId: 'gw-e2e-1', adapters: [{ deviceId: 'spo2-bed7', adapter: 'rs232' }] });

  const events = await page.events();
  t.teardown(() => events.close());
  t.equal(events.status, 200);
  const sentAt = Date.now();
  const line = await stack.device.sendReading();
  const reading = await events.next();
  t.comment(`reading shown ${Date.now() - sentAt} ms after the device sent it`);
  const [spo2] = /SPO2=(\d+|---)/.exec(line)?.slice(1) ?? [];
  t.match(reading, {
    deviceId: 'spo2-bed7',
    observations: [
      {
        code: 'MDC_PULS_OXIM_SAT_O2',
        system: 'MDC',
        unit: '%',
        value: spo2 === '---' ? null : Number(spo2),
      },
      { code: 'MDC_PULS_OXIM_PULS_RATE', unit: '/min' },
    ],
  });
  t.same(Object.keys(reading).sort(), ['capturedAt', 'deviceId', 'observations'], 'nothing but the reading');

  const after = await page.call('GET', '/api/status');
  const device = (after.json.adapters as Record<string, unknown>[])[0];
  t.match(device, { state: 'connected', lastReadingAt: reading.capturedAt });

  const window = await page.call('POST', '/api/window', {});
  t.match(window.json, { outcome: 'drained' });
  t.ok((window.json.records as number) >= 1, 'the reading went up');
  await telemetry.waitFor(1, 30_000);

  await page.call('POST', '/api/logout', {});
  t.equal((await page.call('GET', '/api/status')).status, 401, 'logged out');
  const actions = gateway.logs.filter((l) => l.msg === 'technician action').map((l) => [l.who, l.action]);
  t.same(actions, [
    ['Dana (biomed)', 'login'],
    ['Dana (biomed)', 'window.open'],
    ['Dana (biomed)', 'logout'],
  ]);
  const text = JSON.stringify(gateway.logs);
  t.notMatch(text, secret, 'the secret is not logged');
  t.notMatch(text, /MDC_PULS_OXIM_SAT_O2/, 'no reading is logged');
});

t.test('without a technician section nothing listens, and rotating the secret says so', async (t) => {
  const stack = await Stack.start(t);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  t.notOk(gateway.logs.some((l) => l.msg === 'technician page listening'));
  const first = await stack.run('technician', 'secret');
  const rotated = await stack.run('technician', 'rotate-secret');
  t.equal(rotated.code, 0, rotated.stderr);
  t.not(rotated.stdout.trim(), first.stdout.trim(), 'a new secret');
  t.match(rotated.stderr, /every technician page session made with the old secret has ended/);
  t.match(rotated.stderr, /the technician page is off/);
});
