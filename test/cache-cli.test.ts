// `attache cache export / import / rotate-key`: what a technician does with a USB stick when no
// network window is possible, and a key rotation, on a real gateway's cache.
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportRecords, loadOrCreateSigningKey } from '@attache/cache';
import t from 'tap';
import { attache, Stack } from './helpers/stack.js';

function keyPair(dir: string, name: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = join(dir, `${name}.pub.pem`);
  const priv = join(dir, `${name}.pem`);
  return {
    pub,
    priv,
    write: () =>
      Promise.all([
        writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' })),
        writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' })),
      ]),
  };
}

t.test(
  'export to a file (gateway running), import elsewhere, rotate the key: nothing lost, nothing in clear',
  async (t) => {
    const stack = await Stack.start(t);
    const recipient = keyPair(stack.dir, 'technician');
    const stranger = keyPair(stack.dir, 'stranger');
    await recipient.write();
    await stranger.write();
    // A signing key anyone may read (copied in carelessly): the gateway still starts and acquires,
    // says so, and exports are refused until the mode is fixed.
    const keys = join(stack.dir, 'data', 'keys');
    await mkdir(keys, { recursive: true, mode: 0o700 });
    const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await writeFile(join(keys, 'export-signing.key'), signing.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o644,
    });
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    t.ok(
      gateway.logs.some((l) => /export-signing key is unusable/.test(String(l.msg))),
      'said at start',
    );
    const loose = await stack.run(
      'cache',
      'export',
      '--out',
      join(stack.dir, 'x.attache'),
      '--recipient',
      recipient.pub,
    );
    t.match(
      loose.stderr,
      /ATTACHE_CACHE_KEY.*grants access to group or others/,
      'export refused, saying why',
    );
    await chmod(join(keys, 'export-signing.key'), 0o600);
    const total = 40;
    for (let i = 0; i < total; i++) await stack.device.sendReading();
    await stack.statusUntil((s) => s.backlog.records === total, 60_000);
    const out = join(stack.dir, 'ward4.attache');

    const running = await stack.run('cache', 'export', '--out', out, '--recipient', recipient.pub);
    t.equal(running.code, 0, `the running gateway exports through its control socket: ${running.stderr}`);
    t.match(running.stdout, `exported ${total} records (seq 1..${total})`);
    t.same(await readdir(join(stack.dir, 'data', 'exports')), [], 'nothing left staged in the data dir');
    const again = await stack.run('cache', 'export', '--out', out, '--recipient', recipient.pub);
    t.equal(again.code, 1, 'an existing file is not replaced');
    t.match(again.stderr, /ATTACHE_FILE_EXISTS.*--force/);
    const busyRotate = await stack.run('cache', 'rotate-key');
    t.equal(busyRotate.code, 1);
    t.match(busyRotate.stderr, /stop the service first/);
    await gateway.stop();

    const exported = await stack.run(
      'cache',
      'export',
      '--out',
      out,
      '--recipient',
      recipient.pub,
      '--force',
    );
    t.equal(exported.code, 0, exported.stderr);
    t.match(exported.stdout, `exported ${total} records (seq 1..${total})`);
    t.match(exported.stdout, 'they stay in the cache');
    const file = await readFile(out);
    t.notOk(file.includes('MDC_PULS_OXIM_SAT_O2'), 'no reading in clear in the file');
    const manifest = JSON.parse(file.subarray(0, file.indexOf(0x0a)).toString('utf8'));
    t.match(manifest, { records: total, firstSeq: 1, lastSeq: total }, 'a clear manifest line');

    const lines = await stack.run('cache', 'import', out, '--key', recipient.priv, '--stdout');
    t.equal(lines.code, 0, lines.stderr);
    const records = lines.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number });
    t.same(
      records.map((r) => r.seq),
      Array.from({ length: total }, (_, i) => i + 1),
      'every record, in order',
    );
    const wrong = await stack.run('cache', 'import', out, '--key', stranger.priv, '--stdout');
    t.equal(wrong.code, 1, 'another key cannot read it');
    t.match(wrong.stderr, /ATTACHE_CACHE_KEY/);

    // Another gateway box with the same id (a replacement) takes the records in, once it is told to
    // trust the first box's export-signing key; twice is harmless.
    const other = JSON.parse(await readFile(stack.configPath, 'utf8')) as { gateway: { dataDir: string } };
    other.gateway.dataDir = join(stack.dir, 'replacement');
    const otherConfig = join(stack.dir, 'replacement.json');
    await writeFile(otherConfig, JSON.stringify(other));
    const untrusted = await attache([
      'cache',
      'import',
      out,
      '--key',
      recipient.priv,
      '--config',
      otherConfig,
    ]);
    t.equal(untrusted.code, 1, "another box's export is refused until its signing key is given");
    t.match(untrusted.stderr, /ATTACHE_SIGNATURE.*--signer/);
    const signingKey = await stack.run('cache', 'signing-key');
    t.equal(signingKey.code, 0, signingKey.stderr);
    t.match(signingKey.stderr, /SHA-256 [0-9a-f]{64}/);
    const signer = join(stack.dir, 'ward4-signing.pub.pem');
    await writeFile(signer, signingKey.stdout);
    // A laptop with no gateway config opens it with the box's signing key.
    const laptop = ['--key', recipient.priv, '--stdout', '--config', join(stack.dir, 'no-such-config.json')];
    const onLaptop = await attache(['cache', 'import', out, ...laptop, '--signer', signer]);
    t.equal(onLaptop.code, 0, onLaptop.stderr);
    t.equal(onLaptop.stdout.trim().split('\n').length, total, 'every record printed');
    const unverified = await attache(['cache', 'import', out, ...laptop]);
    t.match(unverified.stderr, /ATTACHE_SIGNATURE/, 'never printed without a trusted signer');
    const trusted = ['--key', recipient.priv, '--signer', signer, '--config', otherConfig];
    const imported = await attache(['cache', 'import', out, ...trusted]);
    t.equal(imported.code, 0, imported.stderr);
    t.match(imported.stdout, `imported ${total} records (0 already waiting)`);
    const twice = await attache(['cache', 'import', out, ...trusted]);
    t.match(twice.stdout, `imported 0 records (${total} already waiting)`);

    // The attack: with only the technician's public key (it sits on every gateway), a crafted export
    // of one made-up SpO2 of 12 %, signed by a key of the attacker's own. Refused, nothing stored.
    const attackerKey = await loadOrCreateSigningKey(join(stack.dir, 'attacker.key'));
    const fake = {
      ...records[0],
      seq: total + 1,
      observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 12, unit: '%', status: 'valid' }],
    };
    const forged = join(stack.dir, 'forged.attache');
    await exportRecords(
      {
        read: async ({ afterSeq }) => (afterSeq === 0 ? [{ seq: fake.seq, json: JSON.stringify(fake) }] : []),
      },
      { out: forged, recipient: await readFile(recipient.pub, 'utf8'), signingKey: attackerKey },
    );
    const refused = await attache(['cache', 'import', forged, ...trusted]);
    t.equal(refused.code, 1, 'a forged export is refused');
    t.match(refused.stderr, /ATTACHE_SIGNATURE/);
    const stranger2 = { ...other, gateway: { ...other.gateway, id: 'gw-elsewhere' } };
    const strangerConfig = join(stack.dir, 'elsewhere.json');
    await writeFile(strangerConfig, JSON.stringify(stranger2));
    const wrongGateway = await attache([
      'cache',
      'import',
      out,
      '--key',
      recipient.priv,
      '--config',
      strangerConfig,
    ]);
    t.equal(wrongGateway.code, 1, 'records of one gateway never go into the cache of another');
    t.match(wrongGateway.stderr, 'seqs are per gateway');
    const badDate = await stack.run(
      'cache',
      'export',
      '--out',
      out,
      '--recipient',
      recipient.pub,
      '--since',
      'yesterday',
    );
    t.equal(badDate.code, 1);
    t.match(badDate.stderr, '--since must be a date or time');
    const status = await attache(['status', '--json', '--config', otherConfig]);
    t.equal(JSON.parse(status.stdout).backlog.records, total, 'the replacement holds the backlog');

    const rotated = await stack.run('cache', 'rotate-key');
    t.equal(rotated.code, 0, rotated.stderr);
    t.match(rotated.stdout, /new data key \S+ is current/);
    const restarted = stack.startGateway();
    await restarted.waitForLog((l) => l.msg === 'gateway started');
    for (let i = 0; i < 5; i++) await stack.device.sendReading();
    await stack.statusUntil((s) => s.backlog.records === total + 5, 60_000);
    const dashboard = await stack.subscribe();
    const sync = await stack.run('sync', '--json');
    t.equal(sync.code, 0, sync.stderr);
    t.equal(JSON.parse(sync.stdout).records, total + 5, 'old-key and new-key records all go up');
    await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000);
  },
);
