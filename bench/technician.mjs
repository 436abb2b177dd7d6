// RSS of `attache run` (as installed, through the binary's shebang flags) with one oximeter on a pty
// sending a line a second: the technician page off, on and idle, and on with a browser logged in
// and streaming readings (Debian's chromium through playwright-core). Nothing is asserted.
//   node bench/technician.mjs
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFreePort, LineDeviceSimulator, openPtyPair, profileFormat } from '@attache/devkit';
import { chromium } from 'playwright-core';

const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'attache-bench-tech-'));
const settleMs = 15_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function rss(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** The median of 5 samples a second apart, after `settleMs`. */
async function settledRss(pid) {
  await sleep(settleMs);
  const samples = [];
  for (let i = 0; i < 5; i++) {
    samples.push(await rss(pid));
    await sleep(1000);
  }
  return samples.sort((a, b) => a - b)[2];
}

async function measure(name, page, browse) {
  const run = join(dir, name);
  const pty = await openPtyPair(join(run, 'pty'));
  const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin', intervalMs: 1000 });
  await device.open();
  device.start();
  const port = await getFreePort();
  const configPath = join(run, 'config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-bench', dataDir: join(run, 'data') },
      devices: [
        {
          id: 'spo2-bed7',
          adapter: 'rs232',
          port: { path: pty.gatewayPath },
          format: profileFormat('nonin'),
        },
      ],
      ...(page ? { technician: { listen: ['127.0.0.1'], port } } : {}),
    }),
  );
  const secret = spawnSync(process.execPath, [bin, 'technician', 'secret', '--config', configPath])
    .stdout.toString()
    .trim();
  const child = spawn(bin, ['run', '--config', configPath], { stdio: 'ignore' });
  await sleep(3000);
  let browser;
  if (browse) {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    const tab = await browser.newPage();
    await tab.goto(`http://127.0.0.1:${port}/`);
    await tab.fill('#name', 'bench');
    await tab.fill('#secret', secret);
    await tab.press('#secret', 'Enter');
    await tab.waitForSelector('#readings-spo2-bed7 td');
  }
  const figure = await settledRss(child.pid);
  await browser?.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  device.stop();
  await device.close();
  await pty.close();
  return figure;
}

try {
  const off = await measure('off', false, false);
  const idle = await measure('idle', true, false);
  const browsing = await measure('browser', true, true);
  console.log(
    `technician page, attache run (shebang flags), 1 oximeter at 1 line/s, median VmRSS after ${settleMs / 1000} s:`,
  );
  console.log(`  page off: ${off.toFixed(1)} MB`);
  console.log(`  page on, idle: ${idle.toFixed(1)} MB (+${(idle - off).toFixed(1)} MB)`);
  console.log(
    `  page on, a browser logged in, readings streaming: ${browsing.toFixed(1)} MB (+${(browsing - off).toFixed(1)} MB)`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
