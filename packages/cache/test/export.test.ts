import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportRecords, importExport, LevelCache, readExportManifest } from '@attache/cache';
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

async function imported(file: string, privateKey: string): Promise<AttacheRecord[]> {
  const out: AttacheRecord[] = [];
  await importExport(file, { privateKey, onRecords: async (records) => void out.push(...records) });
  return out;
}

for (const type of ['ec', 'rsa'] as const) {
  t.test(`${type}: export, then import on another machine, round trip`, async (t) => {
    const cache = await filled(t, 2500);
    const { publicPem, privatePem } = pems(type);
    const out = join(t.testdir(), 'usb.attache-export');
    const since = new Date(Date.UTC(2026, 10, 1) + 100 * 1000);
    const until = new Date(Date.UTC(2026, 10, 1) + 2200 * 1000);
    const manifest = await exportRecords(cache, { out, recipient: publicPem, since, until });
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
  await exportRecords(cache, { out, recipient: publicPem });
  await t.rejects(imported(out, pems('ec').privatePem), { code: 'ATTACHE_CACHE_KEY' }, 'another EC key');
  const original = await readFile(out);
  const altered = Buffer.from(original);
  altered[altered.length - 5] ^= 1;
  await writeFile(out, altered);
  const handed: AttacheRecord[] = [];
  await t.rejects(
    importExport(out, { privateKey: privatePem, onRecords: async (r) => void handed.push(...r) }),
    { code: 'ATTACHE_MALFORMED' },
    'a flipped byte',
  );
  t.equal(handed.length, 0, 'no record handed over');
  await writeFile(out, original.subarray(0, original.length - 100));
  await t.rejects(imported(out, privatePem), { code: 'ATTACHE_MALFORMED' }, 'truncated');
  await writeFile(out, 'hello\n');
  await t.rejects(readExportManifest(out), { code: 'ATTACHE_MALFORMED' }, 'not an export');
  await t.rejects(exportRecords(cache, { out, recipient: 'not a key' }), { code: 'ATTACHE_CACHE_KEY' });
  const small = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey;
  await t.rejects(
    exportRecords(cache, { out, recipient: small }),
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
    since: new Date(Date.UTC(2030, 0, 1)),
  });
  t.match(manifest, { records: 0, firstSeq: null, lastSeq: null, gatewayId: null });
  t.same(await imported(out, privatePem), []);
});
