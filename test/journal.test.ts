// `attache run` under systemd: stdout is the journal ($JOURNAL_STREAM names it), and every line carries
// its syslog priority for journald to file it under (journalctl -p warning finds the warnings).
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { bin } from './helpers/stack.js';

t.test('the gateway writes <priority> before each JSON line when stdout is the journal', async (t) => {
  // A short path: the control socket's path must fit in 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'attache-journal-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-journal', dataDir: join(dir, 'data') },
      devices: [
        {
          id: 'spo2-bed1',
          adapter: 'rs232',
          port: { path: join(dir, 'unplugged') },
          format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
        },
      ],
    }),
  );
  const journal = join(dir, 'journal');
  const fd = openSync(journal, 'w');
  const { dev, ino } = fstatSync(fd);
  const child = spawn(process.execPath, [bin, 'run', '--config', config], {
    stdio: ['ignore', fd, 'ignore'],
    env: { ...process.env, JOURNAL_STREAM: `${dev}:${ino}` },
  });
  closeSync(fd);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(() => child.kill('SIGKILL'));
  let text = '';
  for (const deadline = Date.now() + 30_000; !text.includes('will retry') && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 50));
    text = await readFile(journal, 'utf8');
  }
  child.kill('SIGTERM');
  await exited;
  const lines = (await readFile(journal, 'utf8')).trimEnd().split('\n');
  const entries = lines.map((line) => ({ prefix: line.slice(0, 3), json: JSON.parse(line.slice(3)) }));
  t.ok(entries.length > 2, `${entries.length} lines`);
  t.ok(
    entries.every(
      (e) => e.prefix === `<${({ 30: 6, 40: 4, 50: 3, 60: 2 } as Record<number, number>)[e.json.level]}>`,
    ),
    'every line carries the priority of its level',
  );
  t.ok(entries.some((e) => e.prefix === '<4>' && e.json.msg === 'serial port unavailable, will retry'));
  t.ok(entries.some((e) => e.prefix === '<6>' && e.json.msg === 'gateway started'));
});
