import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const log = fileURLToPath(new URL('../dist/log.js', import.meta.url));

/** Runs a script that logs through createLogger in its own process; resolves its stdout and stderr. */
function logged(level: string, fd: 1 | 2): Promise<{ stdout: string; stderr: string }> {
  const script = `
    const { createLogger } = await import(${JSON.stringify(log)});
    const log = createLogger(${JSON.stringify(level)}, { pretty: false, fd: ${fd} });
    const err = Object.assign(new Error('no such file'), { code: 'ENOENT' });
    log.warn({ err }, 'trusted time unavailable');
    log.error({ err }, 'window failed');
    log.warn({ path: '/x' }, 'no error here');
    log.warn('a plain warning');`;
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], (err, stdout, stderr) =>
      err ? reject(err) : resolve({ stdout, stderr }),
    ),
  );
}

const lines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

t.test('a warning carries its error without the stack unless the level is debug', async (t) => {
  const info = lines((await logged('info', 1)).stdout);
  t.same(
    info[0].err,
    { type: 'Error', message: 'no such file', code: 'ENOENT' },
    'warn: type, code, message',
  );
  t.match(info[1].err.stack, /^Error: no such file\n\s+at /, 'an error keeps its stack');
  t.match(info[2], { path: '/x', msg: 'no error here' });
  t.match(info[3], { msg: 'a plain warning' });
  const debug = lines((await logged('debug', 1)).stdout);
  t.match(debug[0].err.stack, /^Error: no such file/, 'at debug, warnings keep their stack');
});

t.test('fd 2: every line goes to stderr, none to stdout', async (t) => {
  const { stdout, stderr } = await logged('info', 2);
  t.equal(stdout, '');
  t.equal(lines(stderr).length, 4);
});
