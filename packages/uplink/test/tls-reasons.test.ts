import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestPki, startMosquitto, type TestPki } from '@attache/devkit';
import { IotCoreUplink } from '@attache/uplink';
import t from 'tap';
import {
  exitWhenComplete,
  gatewayId,
  MemoryOutbox,
  startBroker,
  uplinkConfig,
} from './fixtures/uplink-fixtures.js';

const run = promisify(execFile);
exitWhenComplete(t);

/** Openssl's YYMMDDHHMMSSZ. */
const asn1 = (ms: number) => `${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`;

/** A server certificate from the PKI's CA for `san`, valid from `notBeforeMs` (openssl ca). */
async function serverCert(pki: TestPki, name: string, san: string, notBeforeMs: number): Promise<TestPki> {
  const dir = pki.dir;
  const conf = join(dir, `${name}.cnf`);
  await writeFile(
    conf,
    [
      '[ca]',
      'default_ca = d',
      '[d]',
      `database = ${dir}/${name}.index`,
      `new_certs_dir = ${dir}`,
      `serial = ${dir}/${name}.serial`,
      'default_md = sha256',
      'policy = p',
      '[p]',
      'commonName = supplied',
      '[x]',
      'basicConstraints = critical,CA:FALSE',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = ${san}`,
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, `${name}.index`), '');
  await writeFile(join(dir, `${name}.serial`), '1000\n');
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const crt = join(dir, `${name}.crt`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-new', ...ec, '-keyout', key, '-out', csr, '-subj', '/CN=broker']);
  await run('openssl', [
    'ca',
    '-batch',
    '-config',
    conf,
    '-cert',
    pki.caFile,
    '-keyfile',
    join(dir, 'ca.key'),
    '-in',
    csr,
    '-out',
    crt,
    '-notext',
    '-extensions',
    'x',
    '-startdate',
    asn1(notBeforeMs),
    '-enddate',
    asn1(notBeforeMs + 86_400_000 * 30),
  ]);
  return { ...pki, serverCertFile: crt, serverKeyFile: key };
}

async function brokerWith(
  t: { teardown(fn: () => unknown): void },
  name: string,
  san: string,
  notBeforeMs: number,
) {
  const fixture = await startBroker();
  t.teardown(fixture.cleanup);
  const pki = await serverCert(fixture.pki, name, san, notBeforeMs);
  const broker = await startMosquitto({ dir: join(fixture.dir, name), pki });
  t.teardown(broker.stop);
  return { ...fixture, broker };
}

async function failedWindow(
  config: Parameters<typeof uplinkConfig>[1],
  fixture: Awaited<ReturnType<typeof brokerWith>>,
) {
  const outbox = new MemoryOutbox();
  outbox.add(5);
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, config) });
  const result = await uplink.openWindow(outbox);
  return { result, kept: outbox.seqs().length };
}

t.test('a broker certificate for another host name fails at once, naming the host name', async (t) => {
  const fixture = await brokerWith(t, 'other-host', 'DNS:broker.example.org', Date.now() - 3_600_000);
  const { result, kept } = await failedWindow({}, fixture);
  t.equal(result.outcome, 'failed');
  t.equal(result.error?.code, 'ATTACHE_UPLINK_CONNECT');
  t.match(result.error?.message, /not issued for this host name.*ERR_TLS_CERT_ALTNAME_INVALID/);
  t.ok(Date.parse(result.closedAt) - Date.parse(result.openedAt) < 10_000, 'no 10-30 s wait for the SDK');
  t.equal(kept, 5, 'every record kept');
});

t.test('a broker certificate not yet valid by our clock is reported as a wrong clock', async (t) => {
  const fixture = await brokerWith(t, 'future', 'DNS:localhost', Date.now() + 86_400_000);
  const { result } = await failedWindow({}, fixture);
  t.equal(result.error?.code, 'ATTACHE_UPLINK_CONNECT');
  t.match(result.error?.message, /system clock is wrong.*CERT_NOT_YET_VALID/);
});

t.test('a CA that did not sign the broker certificate fails at once, naming uplink.caFile', async (t) => {
  const fixture = await brokerWith(t, 'good', 'DNS:localhost', Date.now() - 3_600_000);
  const rogue = await createTestPki(join(fixture.dir, 'rogue'), { thingName: gatewayId });
  const { result, kept } = await failedWindow({ caFile: rogue.caFile }, fixture);
  t.equal(result.error?.code, 'ATTACHE_UPLINK_CONNECT');
  t.match(result.error?.message, /uplink\.caFile/);
  t.equal(kept, 5);
});

t.test("a gateway certificate the broker does not trust fails with the broker's refusal", async (t) => {
  // TLS 1.3: the broker judges our certificate after the handshake, so the probe waits for its
  // verdict (a session ticket when it accepted it, as for every window of the other tests).
  const fixture = await startBroker();
  t.teardown(fixture.cleanup);
  const rogue = await createTestPki(join(fixture.dir, 'rogue'), { thingName: gatewayId });
  const config = { certFile: rogue.clientCertFile, keyFile: rogue.clientKeyFile };
  const { result, kept } = await failedWindow(config, fixture);
  t.equal(result.outcome, 'failed');
  t.equal(result.error?.code, 'ATTACHE_UPLINK_CONNECT');
  t.match(result.error?.message, /refused this gateway's certificate.*registered and active/s);
  t.equal(kept, 5, 'every record kept');
});

t.test('an endpoint outside the allowed regions is refused before any connection', async (t) => {
  const outbox = new MemoryOutbox();
  outbox.add(3);
  // Port 1 would fail with ECONNREFUSED if anything tried to connect: the residency check comes first.
  const base = { port: 1, certFile: '/nonexistent', keyFile: '/nonexistent', caFile: '/nonexistent' };
  const fixture = { broker: { host: 'x', port: 1 }, pki: {} } as never;
  const cases = [
    {
      endpoint: 'abc123-ats.iot.us-east-1.amazonaws.com',
      allowedRegions: ['eu-central-1'],
      why: /region us-east-1/,
    },
    { endpoint: 'localhost', allowedRegions: ['eu-central-1'], why: /no AWS region/ },
    { endpoint: 'abc123-ats.iot.eu-central-1.amazonaws.com', fipsOnly: true, why: /fipsOnly/ },
  ];
  for (const { why, ...config } of cases) {
    const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, { ...base, ...config }) });
    const result = await uplink.openWindow(outbox);
    t.equal(result.error?.code, 'ATTACHE_UPLINK_CONNECT', config.endpoint);
    t.match(result.error?.message, /refused/);
    t.match(result.error?.message, why);
  }
  t.equal(outbox.seqs().length, 3, 'nothing sent');
});
