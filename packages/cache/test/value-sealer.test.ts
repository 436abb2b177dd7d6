import { randomBytes } from 'node:crypto';
import t from 'tap';
import { levelKey, ValueSealer } from '../src/value-sealer.js';

function keyring(currentId: string, keys: Record<string, Buffer>) {
  return { currentId, indexId: 'k1', key: (id: string) => keys[id] };
}

const k1 = randomBytes(32);
const k2 = randomBytes(32);

t.test('values sealed under an older key still open after a rotation, every time', async (t) => {
  const old = new ValueSealer(keyring('k1', { k1 }));
  const key = levelKey('outbox', '0000000000000001');
  const sealed = old.seal(key, '{"seq":1}');
  const rotated = new ValueSealer(keyring('k2', { k1, k2 }));
  t.equal(rotated.open(key, sealed)?.toString(), '{"seq":1}');
  t.equal(rotated.open(key, sealed)?.toString(), '{"seq":1}', 'and again, with the key made once');
  t.equal(rotated.open(key, rotated.seal(key, 'new'))?.toString(), 'new', 'the current key as well');
});

t.test('a value fails to open under a key the keyring lacks, another LevelDB key, or altered', async (t) => {
  const sealer = new ValueSealer(keyring('k1', { k1 }));
  const key = levelKey('outbox', '0000000000000001');
  const sealed = sealer.seal(key, 'reading');
  t.equal(
    new ValueSealer(keyring('k2', { k1: k2, k2 })).open(key, sealed),
    undefined,
    'another key under the same id',
  );
  t.equal(
    new ValueSealer(keyring('k3', { k1, k3: k2 })).open(
      key,
      new ValueSealer(keyring('k9', { k1, k9: k2 })).seal(key, 'x'),
    ),
    undefined,
    'unknown key id',
  );
  t.equal(sealer.open(levelKey('outbox', '0000000000000002'), sealed), undefined, 'moved to another key');
  const altered = Buffer.from(sealed);
  altered[altered.length - 1] = (altered.at(-1) ?? 0) ^ 1;
  t.equal(sealer.open(key, altered), undefined, 'altered');
  t.equal(sealer.open(key, Buffer.from('not sealed')), undefined, 'not a sealed value');
});

t.test('a state key longer than the scratch buffer seals and opens', async (t) => {
  const sealer = new ValueSealer(keyring('k1', { k1 }));
  const key = levelKey('state', 'x'.repeat(600));
  t.equal(sealer.open(key, sealer.seal(key, 'long'))?.toString(), 'long');
  t.equal(sealer.open(levelKey('state', 'y'.repeat(600)), sealer.seal(key, 'long')), undefined);
});

t.test('what prepare() makes ahead seals and keys exactly as what is made at the call', async (t) => {
  const sealer = new ValueSealer(keyring('k1', { k1 }));
  const fresh = new ValueSealer(keyring('k1', { k1 }));
  const key = levelKey('outbox', '0000000000000001');
  const ivs = new Set<string>();
  const ivOf = (sealed: Buffer) => sealed.subarray(4, 16).toString('hex'); // after the header `1, 2, "k1"`
  for (let round = 0; round < 3; round++) {
    sealer.prepare();
    sealer.prepare(); // a second call before use makes nothing more
    // The prepared cipher, then one made at the call: both open, each under its own fresh IV.
    for (const text of [`{"seq":${round}}`, 'second']) {
      const sealed = sealer.seal(key, text);
      t.equal(sealer.open(key, sealed)?.toString(), text);
      t.equal(fresh.open(key, sealed)?.toString(), text, 'another sealer with the same keys opens it');
      ivs.add(ivOf(sealed));
    }
    // Two prepared HMACs, then one made at the call: the same table keys as a sealer that prepared none.
    for (const id of ['MRN-1', 'idempotency:pump-1:hl7:ab', 'MRN-1']) {
      t.equal(sealer.tokenKey(id), fresh.tokenKey(id), `the table key of ${id}`);
    }
  }
  t.equal(ivs.size, 6, 'every seal has its own IV');
});
