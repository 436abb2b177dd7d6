import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import { verifySignature } from '@attache/jobs';
import { type CheckResult, fail, ok } from './check.js';

// Known-answer tests of the algorithms the box relies on, through the calls the product makes: the
// cache seals with node:crypto's aes-256-gcm and HMAC-SHA-256, records and artifacts are hashed with
// SHA-256, job artifacts are verified with @attache/jobs' verifySignature (ECDSA P-256).

/** NIST GCM test case 16 (AES-256, 96-bit IV, with AAD), from the GCM specification's appendix B. */
const gcm = {
  key: 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308',
  iv: 'cafebabefacedbaddecaf888',
  aad: 'feedfacedeadbeeffeedfacedeadbeefabaddad2',
  plain:
    'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
  cipher:
    '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
  tag: '76fc6ece0f4e1768cddf8853bb2d551b',
};

function aesGcm(): boolean {
  const h = (s: string) => Buffer.from(s, 'hex');
  const cipher = createCipheriv('aes-256-gcm', h(gcm.key), h(gcm.iv)).setAAD(h(gcm.aad));
  const sealed = Buffer.concat([cipher.update(h(gcm.plain)), cipher.final()]);
  if (sealed.toString('hex') !== gcm.cipher || cipher.getAuthTag().toString('hex') !== gcm.tag) return false;
  const decipher = createDecipheriv('aes-256-gcm', h(gcm.key), h(gcm.iv)).setAAD(h(gcm.aad));
  decipher.setAuthTag(h(gcm.tag));
  const opened = Buffer.concat([decipher.update(sealed), decipher.final()]);
  // A changed tag must be refused: authentication is what the cache relies on.
  const forged = createDecipheriv('aes-256-gcm', h(gcm.key), h(gcm.iv)).setAAD(h(gcm.aad));
  forged.setAuthTag(Buffer.alloc(16));
  forged.update(sealed);
  try {
    forged.final();
    return false;
  } catch {
    return opened.toString('hex') === gcm.plain;
  }
}

/** FIPS 180-2's "abc". */
const sha256 = () =>
  createHash('sha256').update('abc').digest('hex') ===
  'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

/** RFC 4231 test case 2 (HMAC-SHA-256, key "Jefe"). */
const hmac = () =>
  createHmac('sha256', 'Jefe').update('what do ya want for nothing?').digest('hex') ===
  '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';

/** RFC 6979 A.2.5: the P-256 key and its signature of "sample" with SHA-256 (r‖s). */
const p256 = {
  publicKey: [
    '-----BEGIN PUBLIC KEY-----',
    'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7',
    'Yfps5mliLmDyn7Z5A/4QCLi8maQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==',
    '-----END PUBLIC KEY-----',
  ].join('\n'),
  signature: '79SLKqy2qP0RQN2c1F6B1p0sh3tWqvmRw00OqE6vNxb3yxyULWV8QdQ2x6G24p9l8+kA27mv9AZNxKsvhDrNqA==',
};

function ecdsa(): boolean {
  const sample = Buffer.from('sample');
  return (
    verifySignature(sample, p256.signature, p256.publicKey) &&
    !verifySignature(Buffer.from('samplf'), p256.signature, p256.publicKey)
  );
}

/** Runs every known-answer test; one result each. */
export function selfTest(): CheckResult[] {
  const tests: [string, () => boolean][] = [
    ['AES-256-GCM (NIST GCM test case 16, and a forged tag refused)', aesGcm],
    ['SHA-256 (FIPS 180-2 "abc")', sha256],
    ['HMAC-SHA-256 (RFC 4231 case 2)', hmac],
    ['ECDSA P-256 verify (RFC 6979 A.2.5, and a changed message refused)', ecdsa],
  ];
  return tests.map(([name, run]) => {
    let passed = false;
    try {
      passed = run();
    } catch {
      passed = false;
    }
    return passed
      ? ok('self-test', `${name}: known answer`)
      : fail(
          'self-test',
          `${name}: WRONG ANSWER`,
          'the crypto library is broken: reinstall the release; do not upload',
        );
  });
}
