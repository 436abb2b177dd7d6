/// <reference lib="dom" />
// The technician page in a real browser (Debian's chromium, driven by playwright-core) against a
// real `attache run` fed by simulated oximeters on socat ptys: log in by keyboard, see a reading
// appear, probe and attach a second device (a bad config refused at its field first), open a window.
// ATTACHE_SCREENSHOTS=DIR saves a screenshot of each screen there (docs/technician.md's).
import { spawnSync } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { getFreePort, LineDeviceSimulator, openPtyPair } from '@attache/devkit';
import { chromium, type Page } from 'playwright-core';
import t from 'tap';
import { Stack } from './helpers/stack.js';

const executablePath = spawnSync('sh', ['-c', 'command -v chromium']).stdout.toString().trim();
t.ok(executablePath, 'chromium is installed (apt-get install chromium; make deps does it)');

const shots = process.env.ATTACHE_SCREENSHOTS;
/** A screenshot of the section holding `selector` (the visible page without one). */
async function shot(page: Page, name: string, selector?: string): Promise<void> {
  if (!shots) return;
  const path = join(shots, `technician-${name}.png`);
  if (selector === undefined) await page.screenshot({ path });
  else await page.locator(selector).screenshot({ path });
}

/** WCAG 2 contrast ratio of two `rgb(r, g, b)` colours. */
function contrast(a: string, b: string): number {
  const luminance = (rgb: string) => {
    const [r, g, bl] = (rgb.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

t.test('a technician in a browser: login, live reading, attach a device, a window', async (t) => {
  const stack = await Stack.start(t);
  const port = await getFreePort();
  await stack.writeConfig({ ...stack.config(), technician: { listen: ['127.0.0.1'], port } });
  const secret = (await stack.run('technician', 'secret')).stdout.trim();
  const pty = await openPtyPair(join(stack.dir, 'pty2'));
  const second = new LineDeviceSimulator({
    path: pty.devicePath,
    profile: 'nonin',
    intervalMs: 100,
    seed: 7,
  });
  await second.open();
  second.start();
  const gateway = stack.startGateway();
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  t.teardown(async () => {
    await browser.close();
    await second.close();
    await pty.close();
  });
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const page = await browser.newPage({ viewport: { width: 900, height: 820 } });
  await page.goto(`http://127.0.0.1:${port}/`);

  // Keyboard only: the name field has the focus; Tab to the secret; Enter logs in.
  await page.waitForSelector('#login:not([hidden])');
  await shot(page, 'login');
  await page.keyboard.type('Dana (biomed)');
  await page.keyboard.press('Tab');
  await page.keyboard.type(secret.toLowerCase());
  await page.keyboard.press('Enter');
  await page.waitForSelector('#app:not([hidden])');
  t.match(await page.textContent('#message'), 'Logged in as Dana (biomed).');
  await page.waitForSelector('#devices td.connected');

  const line = await stack.device.sendReading();
  const sentAt = Date.now();
  const spo2 = /SPO2=(\d+|---)/.exec(line)?.[1] as string;
  const shown = spo2 === '---' ? '—' : String(Number(spo2));
  await page.waitForSelector(`#readings-spo2-bed7 td:text-is("${shown}")`, { timeout: 10_000 });
  const latency = Date.now() - sentAt;
  t.ok(latency < 2000, `the reading is on the page ${latency} ms after the device sent it (under 2 s)`);
  t.match(await page.textContent('#readings-spo2-bed7'), /SpO₂.*MDC_PULS_OXIM_SAT_O2 \(MDC\)/);
  await page.waitForSelector('#devices td:nth-child(4):not(:text-is("—"))');
  await shot(page, 'readings');

  // Every control is reached by Tab, and shows where the focus is.
  const reached = new Set<string>();
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('Tab');
    reached.add(await page.evaluate(() => document.activeElement?.id ?? ''));
  }
  for (const id of [
    'open-window',
    'list-ports',
    'probe-path',
    'load-config',
    'config',
    'check-config',
    'apply-config',
  ]) {
    t.ok(reached.has(id), `#${id} is reached by keyboard`);
  }
  await page.focus('#open-window');
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Tab');
  const outline = await page.$eval('#open-window', (el) => getComputedStyle(el).outlineStyle);
  t.equal(outline, 'solid', 'the focused button has a visible outline');

  // WCAG AA: 4.5:1 for text against its background.
  const pairs = await page.evaluate(() =>
    ['body', '#open-window', 'td.connected', 'th', 'dt', 'p'].map((sel) => {
      const el = document.querySelector(sel) as Element;
      const style = getComputedStyle(el);
      let bg = style.backgroundColor;
      for (let p = el.parentElement; bg === 'rgba(0, 0, 0, 0)' && p; p = p.parentElement)
        bg = getComputedStyle(p).backgroundColor;
      return [sel, style.color, bg === 'rgba(0, 0, 0, 0)' ? 'rgb(255, 255, 255)' : bg] as const;
    }),
  );
  for (const [sel, fg, bg] of pairs)
    t.ok(contrast(fg, bg) >= 4.5, `${sel}: ${fg} on ${bg} is at least 4.5:1`);

  // Attach a second device: probe it, add the suggestion, a bad baud rate is refused at its field.
  await page.fill('#probe-path', await realpath(pty.gatewayPath));
  await page.fill('#probe-seconds', '3');
  await page.click('#probe-form button');
  await page.waitForSelector('#add-suggested:not([hidden])', { timeout: 30_000 });
  t.match(await page.textContent('#probe'), /KEY=VALUE lines at \d+ [78][NE]1; keys heard: SPO2 HR/);
  await page.click('#add-suggested');
  await page.waitForSelector('#message:text("The suggested device was added")');
  const config = JSON.parse(await page.inputValue('#config'));
  const added = config.devices[1];
  added.id = 'spo2-bed8';
  added.port = { path: pty.gatewayPath, baudRate: 12345 };
  await page.fill('#config', JSON.stringify(config, null, 2));
  await page.click('#apply-config');
  await page.waitForSelector('#config-issues li');
  t.match(await page.textContent('#config-issues'), /\/devices\/1\/port\/baudRate: must be one of/);
  t.match(await page.textContent('#config-result'), /Not applied: the config has problems/);
  await shot(page, 'attach', 'section[aria-labelledby="attach-heading"]');
  await shot(page, 'config', 'section[aria-labelledby="config-heading"]');
  added.port = { path: pty.gatewayPath };
  await page.fill('#config', JSON.stringify(config, null, 2));
  await page.click('#apply-config');
  await page.waitForSelector('#config-result:text("Applied")', { timeout: 30_000 });
  await page.waitForSelector('#readings-spo2-bed8 td');

  // A window now: the backlog goes up and the page says so.
  await page.click('#open-window');
  await page.waitForSelector('#window-result:text("Window drained")', { timeout: 60_000 });
  await shot(page, 'window', 'section[aria-labelledby="gateway-heading"]');
  const actions = gateway.logs.filter((l) => l.msg === 'technician action').map((l) => l.action);
  t.same(actions, ['login', 'probe', 'config.apply', 'config.apply', 'window.open']);
});
