// Helper of attache-provision (JSON work the shell should not do by hand).
//   provision.mjs config IN OUT KIND [ca] [DIR]   rewrites the data directory and the uplink file paths
//       of a config to where the appliance keeps them (DIR: where the service finds the credentials,
//       default systemd's credentials directory); prints the gateway id.
//   provision.mjs state FILE STATE MESSAGE [KEY=VALUE...]   writes the provisioning state file.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const serviceCredentials = '/run/credentials/attache.service';
const [command, ...args] = process.argv.slice(2);

function rewriteConfig([input, output, kind, ca, credentials = serviceCredentials]) {
  let config;
  try {
    config = JSON.parse(readFileSync(input, 'utf8'));
  } catch (err) {
    throw new Error(`not valid JSON (${err.message})`);
  }
  if (typeof config !== 'object' || config === null || typeof config.gateway !== 'object') {
    throw new Error('no "gateway" object');
  }
  config.gateway.dataDir = '/var/lib/attache/gateway';
  if (config.uplink && typeof config.uplink === 'object') {
    config.uplink.certFile = `${credentials}/uplink_${kind}.crt`;
    config.uplink.keyFile = `${credentials}/uplink_${kind}.key`;
    if (ca) config.uplink.caFile = `${credentials}/uplink_ca.pem`;
  }
  writeFileSync(output, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o640 });
  process.stdout.write(`${config.gateway.id ?? ''}\n`);
}

function writeState([file, state, message, ...pairs]) {
  const extra = Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
  const { gatewayId, credential, subject, notAfter, sha256, errors } = extra;
  const report = {
    state,
    at: new Date().toISOString(),
    message,
    gatewayId: gatewayId || null,
    credential: credential || null,
    certificate: subject ? { subject, notAfter, sha256 } : null,
    errors: errors ? errors.split('\n').filter(Boolean) : [],
  };
  writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`, { mode: 0o644 });
  renameSync(`${file}.tmp`, file);
}

try {
  if (command === 'config') rewriteConfig(args);
  else if (command === 'state') writeState(args);
  else throw new Error(`unknown command ${command}`);
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
