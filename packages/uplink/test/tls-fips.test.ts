// The uplink's TLS floor (TLS 1.2, with or without uplink.fipsOnly) against a broker that offers only
// TLS 1.0/1.1: Debian's mosquitto with an OpenSSL config capped at TLS 1.1 (mosquitto's own
// `tls_version` only sets a minimum). Also: Amazon's roots pinned for AWS endpoints.
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { createTestPki, getFreePort, isListening } from '@attache/devkit';
import { amazonRootCasFile, brokerCaFile, IotCoreUplink, probeTls, tlsPolicy } from '@attache/uplink';
import t from 'tap';
import {
  type BrokerFixture,
  exitWhenComplete,
  gatewayId,
  MemoryOutbox,
  startBroker,
  uplinkConfig,
} from './fixtures/uplink-fixtures.js';

exitWhenComplete(t);

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A mosquitto with the fixture's PKI that negotiates TLS 1.0-1.1 only (with `max` 1.2: TLS 1.2 only). */
async function legacyBroker(
  t: Teardown,
  fixture: BrokerFixture,
  max: '1.1' | '1.2' = '1.1',
): Promise<number> {
  const port = await getFreePort();
  const opensslConf = join(fixture.dir, `tls${max}-openssl.cnf`);
  await writeFile(
    opensslConf,
    [
      'openssl_conf = conf',
      '[conf]',
      'ssl_conf = ssl',
      '[ssl]',
      'system_default = sd',
      '[sd]',
      `MinProtocol = ${max === '1.1' ? 'TLSv1' : 'TLSv1.2'}`,
      `MaxProtocol = TLSv${max}`,
      `CipherString = ${max === '1.1' ? 'DEFAULT@SECLEVEL=0' : 'DEFAULT'}`,
      '',
    ].join('\n'),
  );
  const conf = join(fixture.dir, `tls${max}-mosquitto.conf`);
  const { pki } = fixture;
  const lines = [
    `listener ${port} 127.0.0.1`,
    `cafile ${pki.caFile}`,
    `certfile ${pki.serverCertFile}`,
    `keyfile ${pki.serverKeyFile}`,
    `tls_version tlsv${max}`,
    'require_certificate true',
    'use_identity_as_username true',
    'allow_anonymous false',
    'persistence false',
    'log_dest none',
  ];
  if (process.getuid?.() === 0) lines.push(`user ${userInfo().username}`);
  await writeFile(conf, `${lines.join('\n')}\n`);
  const child: ChildProcess = spawn('mosquitto', ['-c', conf], {
    stdio: 'ignore',
    env: { ...process.env, OPENSSL_CONF: opensslConf },
  });
  t.teardown(() => child.kill('SIGKILL'));
  const deadline = Date.now() + 30_000;
  while (!(await isListening(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return port;
}

/**
 * A TCP relay: its first connection (the gateway's TLS probe) goes to `first`, every later one (the
 * SDK's MQTT connection) to `rest`, so that the SDK's own TLS settings face the legacy broker.
 */
async function splitRelay(t: Teardown, first: number, rest: number): Promise<number> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = connect(count++ === 0 ? first : rest, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

async function window(fixture: BrokerFixture, port: number, fipsOnly: boolean) {
  const outbox = new MemoryOutbox();
  outbox.add(4);
  // fipsOnly accepts a non-FIPS host name only when it is listed in allowedEndpoints.
  const config = uplinkConfig(fixture, {
    port,
    fipsOnly,
    allowedEndpoints: ['localhost'],
    shadowName: '',
    connectTimeoutMs: 40_000,
  });
  const result = await new IotCoreUplink({ gatewayId, config }).openWindow(outbox);
  return { result, kept: outbox.seqs().length };
}

t.test('the policy: TLS 1.2+ always, FIPS suites on the probe only with fipsOnly', async (t) => {
  t.match(tlsPolicy({ fipsOnly: true }), { minVersion: 'TLSv1.2', crtCipherPreference: 'TLSv1_2_2025_07' });
  t.notMatch(tlsPolicy({ fipsOnly: true }).ciphers, /CBC|SHA:|CHACHA/i, 'no CBC, no ChaCha20');
  t.same(tlsPolicy({ fipsOnly: false }), {
    minVersion: 'TLSv1.2',
    ciphers: undefined,
    crtCipherPreference: 'TLSv1_2_2025_07',
  });
});

t.test("an AWS endpoint is verified against Amazon's roots only, unless caFile says otherwise", async (t) => {
  const pem = await readFile(amazonRootCasFile, 'utf8');
  const certs = pem.split(/(?<=-----END CERTIFICATE-----\n)/).map((c) => new X509Certificate(c));
  t.same(
    certs.map((c) => [c.subject.replace(/\n/g, ', '), c.fingerprint256]),
    [
      [
        'C=US, O=Amazon, CN=Amazon Root CA 1',
        '8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E',
      ],
      [
        'C=US, O=Amazon, CN=Amazon Root CA 3',
        '18:CE:6C:FE:7B:F1:4E:60:B2:E3:47:B8:DF:E8:68:CB:31:D0:2E:BB:3A:DA:27:15:69:F5:03:43:B4:6D:B3:A4',
      ],
    ],
    'Amazon Root CA 1 (RSA) and 3 (ECC), as Debian ships them',
  );
  for (const host of ['abc123-ats.iot.eu-west-1.amazonaws.com', 'x.iot-fips.us-east-1.amazonaws.com']) {
    t.equal(brokerCaFile({ endpoint: host }), amazonRootCasFile, host);
  }
  t.equal(brokerCaFile({ endpoint: 'evil-amazonaws.com.example' }), undefined, 'a look-alike is not AWS');
  t.equal(brokerCaFile({ endpoint: 'broker.hospital.lan' }), undefined, 'elsewhere: the system store');
  t.equal(brokerCaFile({ endpoint: 'a.iot.eu-west-1.amazonaws.com', caFile: '/etc/ca.pem' }), '/etc/ca.pem');
});

t.test('a broker whose certificate does not chain to the pinned roots is refused', async (t) => {
  // The local broker's certificate is from the test CA: with Amazon's roots pinned it is untrusted.
  const fixture = await startBroker();
  t.teardown(fixture.cleanup);
  const config = uplinkConfig(fixture, { caFile: amazonRootCasFile });
  await t.rejects(probeTls(config, 5000), {
    code: 'ATTACHE_UPLINK_CONNECT',
    message: /trusted CA|untrusted root/,
  });
  await t.resolves(probeTls(uplinkConfig(fixture), 5000), 'with its own CA it passes');
});

t.test(
  'a TLS 1.2 broker: the probe passes at the handshake, and a certificate it refuses is named',
  async (t) => {
    // Before TLS 1.3 the broker judges our certificate within the handshake: no wait after it.
    const fixture = await startBroker();
    t.teardown(fixture.cleanup);
    const port = await legacyBroker(t, fixture, '1.2');
    const config = { ...uplinkConfig(fixture), port };
    await t.resolves(probeTls(config, 5000), 'our certificate accepted');
    const rogue = await createTestPki(join(fixture.dir, 'rogue'), { thingName: gatewayId });
    await t.rejects(
      probeTls({ ...config, certFile: rogue.clientCertFile, keyFile: rogue.clientKeyFile }, 5000),
      {
        code: 'ATTACHE_UPLINK_CONNECT',
        message: /refused this gateway's certificate/,
      },
    );
  },
);

t.test('a fipsOnly gateway refuses a broker offering only TLS 1.1, saying so', async (t) => {
  const fixture = await startBroker();
  t.teardown(fixture.cleanup);
  const legacy = await legacyBroker(t, fixture);
  const { result, kept } = await window(fixture, legacy, true);
  t.equal(result.outcome, 'failed');
  t.equal(result.error?.code, 'ATTACHE_UPLINK_CONNECT');
  t.match(result.error?.message, /no TLS version or cipher suite this gateway accepts/);
  t.equal(kept, 4, 'every record kept');
});

t.test(
  'the MQTT connection itself refuses TLS 1.1, with or without fipsOnly, not only the probe',
  async (t) => {
    const fixture = await startBroker();
    t.teardown(fixture.cleanup);
    const legacy = await legacyBroker(t, fixture);

    const fips = await window(fixture, await splitRelay(t, fixture.broker.port, legacy), true);
    t.equal(fips.result.outcome, 'failed', 'the probe passed (TLS 1.2 broker), the connection failed');
    t.equal(fips.result.error?.code, 'ATTACHE_UPLINK_CONNECT');
    t.match(fips.result.error?.message, /connection failed: AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE/);
    t.equal(fips.kept, 4, 'every record kept');

    // aws-crt's default policy takes TLS 1.1: the uplink never leaves it at that.
    const plain = await window(fixture, await splitRelay(t, fixture.broker.port, legacy), false);
    t.equal(plain.result.outcome, 'failed', 'without fipsOnly too');
    t.match(plain.result.error?.message, /connection failed: AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE/);
    t.equal(plain.kept, 4, 'every record kept');

    // The contrast that makes the checks above mean something: the same relay to a TLS 1.2 broker works.
    const modern = await window(
      fixture,
      await splitRelay(t, fixture.broker.port, fixture.broker.port),
      false,
    );
    t.equal(modern.result.outcome, 'drained');
    t.equal(modern.kept, 0);
  },
);
