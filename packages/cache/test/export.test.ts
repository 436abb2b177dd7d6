import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ExportSigningKey,
  exportDataKey,
  exportRecords,
  importExport,
  LevelCache,
  loadOrCreateSigningKey,
  readExportManifest,
  restoreExport,
  streamExport,
} from '@attache/cache';
import type { AttacheRecord } from '@attache/core';
import t, { type Test } from 'tap';
import { draft, tempKeyring } from './fixtures/helpers.js';

function pems(type: 'ec' | 'rsa') {
  const pair =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

let caches = 0;

async function filled(t: Test, count: number): Promise<LevelCache> {
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({ path: join(t.testdir(), `cache-${caches++}`), keyring });
  await cache.open();
  t.teardown(() => cache.close());
  await Promise.all(Array.from({ length: count }, (_, n) => cache.append(draft(n))));
  return cache;
}

let gatewayKey: ExportSigningKey;
t.before(async () => {
  gatewayKey = await loadOrCreateSigningKey(join(t.testdir(), 'keys', 'export-signing.key'));
});

async function imported(
  file: string,
  privateKey: string,
  trustedSigners: (string | KeyObject)[] = [gatewayKey.publicKey],
): Promise<AttacheRecord[]> {
  const out: AttacheRecord[] = [];
  await importExport(file, {
    privateKey,
    trustedSigners,
    onRecords: async (records) => void out.push(...records),
  });
  return out;
}

for (const type of ['ec', 'rsa'] as const) {
  t.test(`${type}: export, then import on another machine, round trip`, async (t) => {
    const cache = await filled(t, 2500);
    const { publicPem, privatePem } = pems(type);
    const out = join(t.testdir(), 'usb.attache-export');
    const since = new Date(Date.UTC(2026, 10, 1) + 100 * 1000);
    const until = new Date(Date.UTC(2026, 10, 1) + 2200 * 1000);
    const manifest = await exportRecords(cache, {
      out,
      recipient: publicPem,
      signingKey: gatewayKey,
      since,
      until,
    });
    t.match(manifest, { records: 2100, firstSeq: 101, lastSeq: 2200, gatewayId: 'gw-ward4' });
    t.equal((await cache.stats()).records, 2500, 'exporting deletes nothing');

    const { manifest: read } = await readExportManifest(out);
    t.same(read, manifest, 'the manifest is readable without the key');
    const file = await readFile(out);
    t.notOk(file.includes('spo2-bed7') || file.includes('MDC_PULS'), 'no record content in clear');

    const records = await imported(out, privatePem);
    t.same(
      records.map((r) => r.seq),
      Array.from({ length: 2100 }, (_, i) => 101 + i),
      'every record in the range, in seq order',
    );
    t.equal(records[0]?.observations[0]?.value, 100);

    const other = await filled(t, 0);
    await other.restore(records);
    t.match(await other.stats(), { records: 2100, firstSeq: 101, lastSeq: 2200, nextSeq: 2201 });
    t.same(
      await other.restore(records.slice(0, 10)),
      { stored: 0, skipped: 10 },
      'importing twice adds nothing',
    );
  });
}

t.test('a wrong key, an altered or truncated file is refused before any record is handed over', async (t) => {
  const cache = await filled(t, 300);
  const { publicPem, privatePem } = pems('ec');
  const out = join(t.testdir(), 'usb.attache-export');
  await exportRecords(cache, { out, recipient: publicPem, signingKey: gatewayKey });
  await t.rejects(imported(out, pems('ec').privatePem), { code: 'ATTACHE_CACHE_KEY' }, 'another EC key');
  const original = await readFile(out);
  const altered = Buffer.from(original);
  altered[altered.length - 5] ^= 1;
  await writeFile(out, altered);
  const handed: AttacheRecord[] = [];
  await t.rejects(
    importExport(out, {
      privateKey: privatePem,
      trustedSigners: [gatewayKey.publicKey],
      onRecords: async (r) => void handed.push(...r),
    }),
    { code: 'ATTACHE_MALFORMED' },
    'a flipped byte',
  );
  t.equal(handed.length, 0, 'no record handed over');
  await writeFile(out, original.subarray(0, original.length - 100));
  await t.rejects(imported(out, privatePem), { code: 'ATTACHE_MALFORMED' }, 'truncated');
  await writeFile(out, 'hello\n');
  await t.rejects(readExportManifest(out), { code: 'ATTACHE_MALFORMED' }, 'not an export');
  await t.rejects(
    exportRecords(cache, { out, recipient: 'not a key', signingKey: gatewayKey, overwrite: true }),
    { code: 'ATTACHE_CACHE_KEY' },
  );
  const small = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey;
  await t.rejects(
    exportRecords(cache, { out, recipient: small, signingKey: gatewayKey, overwrite: true }),
    { code: 'ATTACHE_CACHE_KEY' },
    'P-384 refused',
  );
});

t.test('an empty selection gives an empty, valid export', async (t) => {
  const cache = await filled(t, 5);
  const { publicPem, privatePem } = pems('ec');
  const out = join(t.testdir(), 'empty.attache-export');
  const manifest = await exportRecords(cache, {
    out,
    recipient: publicPem,
    signingKey: gatewayKey,
    since: new Date(Date.UTC(2030, 0, 1)),
  });
  t.match(manifest, { records: 0, firstSeq: null, lastSeq: null, gatewayId: null });
  t.same(await imported(out, privatePem), []);
});

/**
 * What an attacker who holds only the recipient's public key (it is on every gateway) can write:
 * a well-formed export of made-up readings, sealed for the recipient. Before exports were signed,
 * import stored it and its readings went up as real.
 */
async function forgedExport(out: string, recipientPem: string, signingKey?: ExportSigningKey): Promise<void> {
  const attacker = signingKey ?? (await loadOrCreateSigningKey(`${out}.attacker.key`));
  const spo2 = draft(0).observations[0];
  const record = { ...draft(0), seq: 1, observations: [{ ...spo2, value: 12 }] };
  const source = {
    read: async ({ afterSeq }: { afterSeq: number }) =>
      afterSeq === 0 ? [{ seq: 1, json: JSON.stringify(record) }] : [],
  };
  await exportRecords(source, { out, recipient: recipientPem, signingKey: attacker, overwrite: true });
}

t.test(
  'forged, re-signed, unsigned and truncated exports are refused before any record is handed over',
  async (t) => {
    const cache = await filled(t, 20);
    const { publicPem, privatePem } = pems('ec');
    const dir = t.testdir();
    const handed: AttacheRecord[] = [];
    const importInto = (file: string) =>
      importExport(file, {
        privateKey: privatePem,
        trustedSigners: [gatewayKey.publicKey],
        onRecords: async (r) => void handed.push(...r),
      });

    const forged = join(dir, 'forged.attache');
    await forgedExport(forged, publicPem);
    await t.rejects(
      importInto(forged),
      { code: 'ATTACHE_SIGNATURE' },
      'made with the recipient public key only',
    );

    const genuine = join(dir, 'genuine.attache');
    await exportRecords(cache, { out: genuine, recipient: publicPem, signingKey: gatewayKey });
    const lines = (await readFile(genuine)).toString('latin1').split('\n');
    const manifest = JSON.parse(lines[0] ?? '') as Record<string, unknown>;

    // The attacker edits the signed manifest (a record count, say) and keeps the gateway's signature.
    const edited = join(dir, 'edited.attache');
    await writeFile(
      edited,
      [JSON.stringify({ ...manifest, records: 21 }), ...lines.slice(1)].join('\n'),
      'latin1',
    );
    await t.rejects(
      importInto(edited),
      { code: 'ATTACHE_SIGNATURE' },
      'manifest altered under the signature',
    );

    // ... or replaces the body, fixes the manifest's hashes and signs it again with a key of their own,
    // naming that key as the signer.
    const attacker = await loadOrCreateSigningKey(join(dir, 'attacker.key'));
    const resigned = join(dir, 'resigned.attache');
    const own = {
      ...manifest,
      signer: {
        publicKey: attacker.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        keySha256: attacker.fingerprint,
      },
    };
    const line = JSON.stringify(own);
    const signature = sign('sha256', Buffer.from(line), attacker.privateKey).toString('base64');
    await writeFile(resigned, [line, signature, ...lines.slice(2)].join('\n'), 'latin1');
    await t.rejects(importInto(resigned), { code: 'ATTACHE_SIGNATURE' }, 're-signed with another key');

    // A version 2 manifest that names no signer.
    const { signer: _s, ...anonymous } = manifest;
    const nameless = join(dir, 'nameless.attache');
    await writeFile(nameless, [JSON.stringify(anonymous), ...lines.slice(1)].join('\n'), 'latin1');
    await t.rejects(importInto(nameless), { code: 'ATTACHE_SIGNATURE' }, 'no signer named');

    // An unsigned export of the old format (version 1).
    const unsigned = join(dir, 'v1.attache');
    const { signer: _, ...v1 } = { ...manifest, version: 1 } as Record<string, unknown>;
    await writeFile(unsigned, [JSON.stringify(v1), ...lines.slice(2)].join('\n'), 'latin1');
    await t.rejects(importInto(unsigned), { code: 'ATTACHE_SIGNATURE' }, 'unsigned (version 1)');

    const truncated = join(dir, 'truncated.attache');
    await writeFile(truncated, lines[0] ?? '');
    await t.rejects(importInto(truncated), { code: 'ATTACHE_MALFORMED' }, 'cut after the manifest');
    t.equal(handed.length, 0, 'no record handed over by any of them');

    t.equal((await imported(genuine, privatePem)).length, 20, 'the genuine export still imports');
  },
);

t.test('a trusted other gateway key is accepted; no signer given is refused', async (t) => {
  const cache = await filled(t, 3);
  const { publicPem, privatePem } = pems('ec');
  const other = await loadOrCreateSigningKey(join(t.testdir(), 'other.key'));
  const out = join(t.testdir(), 'other.attache');
  await exportRecords(cache, { out, recipient: publicPem, signingKey: other });
  await t.rejects(imported(out, privatePem), { code: 'ATTACHE_SIGNATURE' }, 'only this gateway trusted');
  t.equal((await imported(out, privatePem, [gatewayKey.publicKey, other.publicKey])).length, 3);
  const pem = other.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  t.equal((await imported(out, privatePem, [pem])).length, 3, 'a PEM signer');
  await t.rejects(imported(out, privatePem, ['junk']), { code: 'ATTACHE_CACHE_KEY' });
  await t.rejects(
    imported(out, privatePem, [publicPem]).then(() => undefined),
    { code: 'ATTACHE_SIGNATURE' },
  );
});

t.test('export refuses to overwrite unless told', async (t) => {
  const cache = await filled(t, 2);
  const { publicPem } = pems('rsa');
  const out = join(t.testdir(), 'exists.attache');
  await writeFile(out, 'keep me');
  await t.rejects(exportRecords(cache, { out, recipient: publicPem, signingKey: gatewayKey }), {
    code: 'ATTACHE_FILE_EXISTS',
  });
  t.equal(await readFile(out, 'utf8'), 'keep me', 'the file is left as it was');
  const manifest = await exportRecords(cache, {
    out,
    recipient: publicPem,
    signingKey: gatewayKey,
    overwrite: true,
  });
  t.equal(manifest.records, 2);
  t.equal((await stat(out)).mode & 0o777, 0o600, 'owner-only');
});

t.test('the export-signing key file: created owner-only, refused when loose or not P-256', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'keys', 'signing.key');
  const key = await loadOrCreateSigningKey(path);
  t.equal((await stat(path)).mode & 0o777, 0o600);
  t.equal((await stat(join(dir, 'keys'))).mode & 0o777, 0o700);
  t.equal((await loadOrCreateSigningKey(path)).fingerprint, key.fingerprint, 'loaded again, same key');
  const loose = join(dir, 'loose.key');
  await writeFile(loose, await readFile(path), { mode: 0o644 });
  await t.rejects(loadOrCreateSigningKey(loose), { code: 'ATTACHE_CACHE_KEY' }, 'mode 644');
  const rsa = join(dir, 'rsa.key');
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  await writeFile(rsa, pem, { mode: 0o600 });
  await t.rejects(loadOrCreateSigningKey(rsa), { code: 'ATTACHE_CACHE_KEY' }, 'RSA');
  const junk = join(dir, 'junk.key');
  await writeFile(junk, 'junk', { mode: 0o600 });
  await t.rejects(loadOrCreateSigningKey(junk), { code: 'ATTACHE_CACHE_KEY' }, 'not PEM');
  await t.rejects(loadOrCreateSigningKey(join(path, 'below-a-file')), { code: 'ATTACHE_CACHE_KEY' });
});

t.test('an export read once: its head, its bytes, and the steps of an import apart', async (t) => {
  const cache = await filled(t, 1500);
  const { publicPem, privatePem } = pems('ec');
  const dir = t.testdir();
  const out = join(dir, 'usb.attache');
  await exportRecords(cache, { out, recipient: publicPem, signingKey: gatewayKey });
  const { read, bytes } = await streamExport(out);
  t.same(read, await readExportManifest(out), 'the head as read from the file');
  const chunks: Buffer[] = [];
  for await (const chunk of bytes) chunks.push(chunk);
  const copy = join(dir, 'copy.attache');
  await writeFile(copy, Buffer.concat(chunks));
  t.same(await readFile(copy), await readFile(out), 'every byte, once');
  t.throws(() => exportDataKey(read, { privateKey: privatePem, trustedSigners: [] }), {
    code: 'ATTACHE_SIGNATURE',
  });
  const key = exportDataKey(read, { privateKey: privatePem, trustedSigners: [gatewayKey.publicKey] });
  let restored = 0;
  await restoreExport(copy, read, key, async (records) => {
    restored += records.length;
  });
  t.equal(restored, 1500, 'the copy restores with the data key alone');

  await t.rejects(streamExport(join(dir, 'missing')), { code: 'ATTACHE_CACHE_WRITE' }, 'no file');
  await writeFile(join(dir, 'hello'), 'hello\nworld\n');
  await t.rejects(streamExport(join(dir, 'hello')), { code: 'ATTACHE_MALFORMED' }, 'not an export');
  await writeFile(join(dir, 'long'), Buffer.alloc(200_000, 0x20));
  await t.rejects(streamExport(join(dir, 'long')), { code: 'ATTACHE_MALFORMED' }, 'no head in 64 KiB');
});
