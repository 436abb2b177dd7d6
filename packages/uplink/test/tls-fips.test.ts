// uplink.fipsOnly's TLS posture against a broker that offers only TLS 1.0/1.1: Debian's mosquitto
// with an OpenSSL config capped at TLS 1.1 (mosquitto's own `tls_version` only sets a minimum).
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { getFreePort, isListening } from '@attache/devkit';
import { IotCoreUplink, tlsPolicy } from '@attache/uplink';
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

/** A mosquitto with the fixture's PKI that negotiates TLS 1.0-1.1 only. */
async function legacyBroker(t: Teardown, fixture: BrokerFixture): Promise<number> {
  const port = await getFreePort();
  const opensslConf = join(fixture.dir, 'tls11-openssl.cnf');
  await writeFile(
    opensslConf,
    [
      'openssl_conf = conf',
      '[conf]',
      'ssl_conf = ssl',
      '[ssl]',
      'system_default = sd',
      '[sd]',
      'MinProtocol = TLSv1',
      'MaxProtocol = TLSv1.1',
      'CipherString = DEFAULT@SECLEVEL=0',
      '',
    ].join('\n'),
  );
  const conf = join(fixture.dir, 'tls11-mosquitto.conf');
  const { pki } = fixture;
  const lines = [
    `listener ${port} 127.0.0.1`,
    `cafile ${pki.caFile}`,
    `certfile ${pki.serverCertFile}`,
    `keyfile ${pki.serverKeyFile}`,
    'tls_version tlsv1.1',
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
  for (let i = 0; i < 100 && !(await isListening(port)); i++) await new Promise((r) => setTimeout(r, 50));
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

t.test('the policy: FIPS suites and aws-crt TLSv1_2_2025_07 only with fipsOnly', async (t) => {
  t.match(tlsPolicy({ fipsOnly: true }), { minVersion: 'TLSv1.2', crtCipherPreference: 'TLSv1_2_2025_07' });
  t.notMatch(tlsPolicy({ fipsOnly: true }).ciphers, /CBC|SHA:|CHACHA/i, 'no CBC, no ChaCha20');
  t.same(tlsPolicy({ fipsOnly: false }), {
    minVersion: 'TLSv1.2',
    ciphers: undefined,
    crtCipherPreference: 'Default',
  });
});

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

t.test('the MQTT connection itself refuses TLS 1.1 under fipsOnly, not only the probe', async (t) => {
  const fixture = await startBroker();
  t.teardown(fixture.cleanup);
  const legacy = await legacyBroker(t, fixture);

  const fips = await window(fixture, await splitRelay(t, fixture.broker.port, legacy), true);
  t.equal(fips.result.outcome, 'failed', 'the probe passed (TLS 1.2 broker), the connection failed');
  t.equal(fips.result.error?.code, 'ATTACHE_UPLINK_CONNECT');
  t.match(fips.result.error?.message, /connection failed: AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE/);
  t.equal(fips.kept, 4, 'every record kept');

  // The contrast that makes the check above mean something: aws-crt's default policy takes TLS 1.1.
  const plain = await window(fixture, await splitRelay(t, fixture.broker.port, legacy), false);
  t.equal(plain.result.outcome, 'drained', 'without fipsOnly, aws-crt uploads over TLS 1.1');
  t.equal(plain.kept, 0);
});
