// `attache config validate` and `attache run` share one check: what one refuses, the other refuses,
// with the same path for each problem.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTestPki } from '@attache/devkit';
import t from 'tap';
import { attache } from './helpers/stack.js';

const kv = { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } };

/** The `  path: message` lines of an invalid-config report. */
function issueLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('  /'));
}

t.test('validate and run refuse the same problems, each with its path', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'config.json');
  await writeFile(
    path,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-1', dataDir: join(dir, 'data') },
      devices: [
        { id: 'spo2', adapter: 'rs232', port: { path: 'ttyUSB0' }, format: kv },
        { id: 'spo2', adapter: 'rs232', port: { path: 'COM3' }, format: kv },
        {
          id: 'lab',
          adapter: 'rs232',
          port: { path: '/dev/ttyS9' },
          format: { kind: 'regex-line', pattern: '^(?<v>\\d+', fields: { v: { code: 'X', unit: '1' } } },
        },
      ],
    }),
  );
  const validate = await attache(['config', 'validate', '--config', path]);
  const run = await attache(['run', '--config', path]);
  for (const [name, result] of Object.entries({ validate, run })) {
    t.equal(result.code, 78, `${name}: exit 78`);
    t.equal(result.stdout, '', `${name}: nothing starts, nothing is called valid`);
  }
  t.match(issueLines(validate.stderr), [
    '  /devices/0/port/path: ttyUSB0 is not a device path: name it in full, e.g. /dev/ttyUSB0 (attache ports lists them)',
    '  /devices/1/id: "spo2" is already the id of /devices/0: their readings would merge under one id',
    '  /devices/1/port/path: COM3 is a Windows port name: on the gateway serial ports are /dev/… (attache ports lists them)',
    // After the colon, V8's own words (which a Node release may change).
    /^ {2}\/devices\/2\/format\/pattern: not a valid regular expression: Invalid regular expression: /,
  ]);
  t.equal(issueLines(validate.stderr).length, 4, 'those four, nothing else');
  t.same(issueLines(run.stderr), issueLines(validate.stderr), 'run names exactly the same problems');
});

t.test('missing key files and a port that is no device: errors here, warnings with --offline', async (t) => {
  const dir = t.testdir();
  const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-1' });
  const path = join(dir, 'config.json');
  await writeFile(
    path,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-1', dataDir: join(dir, 'data') },
      devices: [{ id: 'spo2', adapter: 'rs232', port: { path: '/etc/passwd' }, format: kv }],
      uplink: { endpoint: 'localhost', certFile: pki.clientCertFile, keyFile: join(dir, 'gone.key') },
      jobs: { publicKeyFile: join(dir, 'jobs.pub') },
    }),
  );
  const expected = [
    `  /uplink/keyFile: ${join(dir, 'gone.key')}: file not found`,
    `  /jobs/publicKeyFile: ${join(dir, 'jobs.pub')}: file not found`,
    '  /devices/0/port/path: /etc/passwd is not a device (a serial port is a character device)',
  ];
  const validate = await attache(['config', 'validate', '--config', path]);
  const run = await attache(['run', '--config', path]);
  t.equal(validate.code, 78, 'on the box: an error');
  t.same(issueLines(validate.stderr), expected);
  t.equal(run.code, 78, 'run refuses it too: every window would fail');
  t.same(issueLines(run.stderr), expected);

  const offline = await attache(['config', 'validate', '--offline', '--config', path]);
  t.equal(offline.code, 0, 'checked elsewhere (--offline): valid');
  t.match(offline.stdout, /is valid: gateway gw-1, 1 devices/);
  t.same(
    offline.stderr.trim().split('\n'),
    expected.map((l) => l.replace(/^ {2}/, 'warning: ')),
    'each file problem is still named, as a warning',
  );
});
