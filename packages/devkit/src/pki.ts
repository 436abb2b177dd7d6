import { execFile } from 'node:child_process';
import { access, chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The files of a throw-away PKI for a local mutual-TLS broker. All paths are absolute PEM files. */
export interface TestPki {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** The gateway's certificate: CN = the thing name. */
  clientCertFile: string;
  clientKeyFile: string;
  /**
   * A second client, CN = `dashboard`: the cloud side (the dashboard stand-in and the AWS service
   * emulators). The test broker's ACL grants it every topic.
   */
  subscriberCertFile: string;
  subscriberKeyFile: string;
}

/** Options of {@link createTestPki}. */
export interface TestPkiOptions {
  /** The CN of the client certificate (the gateway's AWS IoT thing name). */
  thingName: string;
}

const leafExtensions = {
  server:
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
  client:
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
} as const;

function pkiPaths(dir: string): TestPki {
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
    subscriberCertFile: join(dir, 'subscriber.crt'),
    subscriberKeyFile: join(dir, 'subscriber.key'),
  };
}

async function allExist(files: string[]): Promise<boolean> {
  try {
    await Promise.all(files.map((f) => access(f)));
    return true;
  } catch {
    return false;
  }
}

/** An EC P-256 key and a certificate for `cn` signed by the CA in `dir`. */
async function issue(
  dir: string,
  name: string,
  cn: string,
  kind: keyof typeof leafExtensions,
): Promise<void> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-new', ...newKey, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  await chmod(key, 0o600);
  await writeFile(ext, leafExtensions[kind]);
  const serial = `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    join(dir, 'ca.crt'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-set_serial',
    serial,
    '-days',
    '825',
    '-sha256',
    '-extfile',
    ext,
    '-out',
    join(dir, `${name}.crt`),
  ]);
  await rm(csr);
  await rm(ext);
}

/**
 * Creates (with openssl) a CA, a server certificate for `localhost` / `127.0.0.1`, a client
 * certificate with CN = `thingName` and a subscriber certificate with CN = `dashboard`, all EC P-256,
 * in `dir` (created if missing). Keys are written with mode 0600. When every file is already in
 * `dir`, they are reused as they are. Rejects when openssl fails.
 */
export async function createTestPki(dir: string, options: TestPkiOptions): Promise<TestPki> {
  if (!/^[a-zA-Z0-9:_-]{1,64}$/.test(options.thingName)) {
    throw new TypeError('"thingName" must be 1-64 characters of a-z, A-Z, 0-9, ":", "_", "-"');
  }
  const pki = pkiPaths(dir);
  const { dir: _dir, ...files } = pki;
  if (await allExist(Object.values(files))) return pki;
  await mkdir(dir, { recursive: true });
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    pki.caFile,
    '-days',
    '3650',
    '-sha256',
    '-subj',
    '/CN=Attache Test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await chmod(join(dir, 'ca.key'), 0o600);
  await issue(dir, 'server', 'localhost', 'server');
  await issue(dir, 'client', options.thingName, 'client');
  await issue(dir, 'subscriber', 'dashboard', 'client');
  return pki;
}

/**
 * Issues another client certificate with CN = `cn` from `pki`'s CA, as `<name>.crt` / `<name>.key`
 * (mode 0600) in the PKI's folder, e.g. a second gateway or the fleet's claim. Rejects when openssl
 * fails or `cn` is not 1-64 characters of a-z, A-Z, 0-9, ":", "_", "-".
 */
export async function issueClientCertificate(
  pki: TestPki,
  name: string,
  cn: string,
): Promise<{ certFile: string; keyFile: string }> {
  if (!/^[a-zA-Z0-9:_-]{1,64}$/.test(cn) || !/^[a-z0-9-]{1,64}$/.test(name)) {
    throw new TypeError(
      '"cn" must be 1-64 characters of a-z, A-Z, 0-9, ":", "_", "-" and "name" of a-z, 0-9, "-"',
    );
  }
  await issue(pki.dir, name, cn, 'client');
  return { certFile: join(pki.dir, `${name}.crt`), keyFile: join(pki.dir, `${name}.key`) };
}
