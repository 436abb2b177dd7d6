// Helper of attache-provision (JSON work the shell should not do by hand).
//   provision.mjs config IN OUT KIND [ca] [jobs-key] [export-key]   rewrites the data directory and
//       the uplink, claim and trust-anchor file paths of a config to where the appliance keeps them;
//       with KIND `claim`, replaces `{serial}` in gateway.id by the board's serial number; prints the
//       gateway id.
//   provision.mjs groups CONFIG   prints the config's jobs.thingGroups, comma-separated.
//   provision.mjs state FILE STATE MESSAGE [KEY=VALUE...]   writes the provisioning state file.
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

const credentials = '/run/credentials/attache.service';
const identity = '/var/lib/attache/gateway/identity';
const trust = '/var/lib/attache/trust';
const [command, ...args] = process.argv.slice(2);

/** The board's serial number (as the gateway reads it): $ATTACHE_SERIAL_NUMBER, the device tree, /proc/cpuinfo. */
function serialNumber() {
  const read = (file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const cpuinfo = /^Serial\s*:\s*([0-9A-Za-z]+)\s*$/m.exec(read('/proc/cpuinfo'))?.[1];
  const tree = read('/sys/firmware/devicetree/base/serial-number').replace(/\0/g, '').trim();
  const serial = process.env.ATTACHE_SERIAL_NUMBER || tree || cpuinfo || '';
  return /^[0-9A-Za-z]{1,64}$/.test(serial) ? serial : '';
}

/** A claim bundle: the box's own key and certificate are made by the gateway, beside the claim. */
function claimPaths(config) {
  const provisioning = config.uplink?.provisioning;
  if (typeof provisioning !== 'object' || provisioning === null) {
    throw new Error('a claim bundle needs uplink.provisioning with the templateName');
  }
  const id = String(config.gateway.id ?? '');
  if (!id.includes('{serial}')) {
    throw new Error(
      'with a claim, gateway.id must contain {serial} (e.g. "attache-{serial}"): each box is its own thing',
    );
  }
  const serial = serialNumber();
  if (!serial) throw new Error('this box has no serial number for gateway.id');
  config.gateway.id = id.replaceAll('{serial}', serial);
  config.uplink.certFile = `${identity}/device.crt`;
  config.uplink.keyFile = `${identity}/device.key`;
  provisioning.claimCertFile = `${identity}/claim.crt`;
  provisioning.claimKeyFile = `${identity}/claim.key`;
}

/** The public keys of the bundle's trust-anchor slots, root-owned in the trust folder. */
function trustPaths(config, flags) {
  if (flags.includes('jobs-key')) {
    if (typeof config.jobs !== 'object' || config.jobs === null) {
      throw new Error('jobs-signing.pem is in the bundle but the config has no "jobs" section');
    }
    config.jobs.publicKeyFile = `${trust}/jobs-signing.pem`;
  }
  if (flags.includes('export-key')) {
    config.cache = { ...config.cache, exportRecipientFile: `${trust}/export-recipient.pem` };
  }
}

function rewriteConfig([input, output, kind, ...flags]) {
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
    if (kind === 'claim') claimPaths(config);
    else {
      config.uplink.certFile = `${credentials}/uplink_${kind}.crt`;
      config.uplink.keyFile = `${credentials}/uplink_${kind}.key`;
    }
    if (flags.includes('ca')) config.uplink.caFile = `${credentials}/uplink_ca.pem`;
  } else if (kind === 'claim') {
    throw new Error('a claim bundle needs an "uplink" section');
  }
  trustPaths(config, flags);
  writeFileSync(output, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  process.stdout.write(`${config.gateway.id ?? ''}\n`);
}

/** The config's AWS IoT thing groups (jobs.thingGroups), comma-separated (group names hold no comma). */
function thingGroups([input]) {
  const groups = JSON.parse(readFileSync(input, 'utf8')).jobs?.thingGroups;
  process.stdout.write(
    `${Array.isArray(groups) ? groups.filter((g) => typeof g === 'string').join(',') : ''}\n`,
  );
}

function writeState([file, state, message, ...pairs]) {
  const extra = Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
  const { gatewayId, credential, subject, notAfter, sha256, errors, thingGroups } = extra;
  const report = {
    state,
    at: new Date().toISOString(),
    message,
    gatewayId: gatewayId || null,
    // The thing and its groups as provisioned: the root release installer accepts a software update
    // signed for them only (the config is the service's to change; this file is root's).
    thingGroups: thingGroups ? thingGroups.split(',').filter(Boolean) : [],
    credential: credential || null,
    certificate: subject ? { subject, notAfter, sha256 } : null,
    errors: errors ? errors.split('\n').filter(Boolean) : [],
  };
  writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  // Readable by the service's user, whose `attache status` shows it: the unit's UMask=0077 would
  // leave it 0600 (it holds no secret: ids, a certificate's subject and fingerprint, errors).
  chmodSync(`${file}.tmp`, 0o644);
  renameSync(`${file}.tmp`, file);
}

/**
 * The addresses of this box's interfaces; none where they cannot be read: attache-provision.service
 * allows only AF_UNIX sockets, and reading them takes a netlink socket (EAFNOSUPPORT).
 */
function interfacesNow() {
  try {
    return networkInterfaces();
  } catch {
    return {};
  }
}

/**
 * The technician page's addresses from a config, one URL a line (nothing when the page is off): an
 * address as it is, an interface by the addresses it has now, or a placeholder when it has none yet.
 */
function pageAddresses([file]) {
  const page = JSON.parse(readFileSync(file, 'utf8')).technician;
  if (!page || !Array.isArray(page.listen)) return;
  const port = page.port ?? 8080;
  const url = (host) => `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  const interfaces = interfacesNow();
  for (const entry of page.listen) {
    if (isIP(entry)) {
      process.stdout.write(`${url(entry)}\n`);
      continue;
    }
    const addresses = (interfaces[entry] ?? []).filter((a) => a.family === 'IPv4');
    if (addresses.length === 0)
      process.stdout.write(`${url(`<${entry} address>`)} (${entry} has no address yet)\n`);
    for (const a of addresses) process.stdout.write(`${url(a.address)} (${entry})\n`);
  }
}

try {
  if (command === 'config') rewriteConfig(args);
  else if (command === 'page') pageAddresses(args);
  else if (command === 'state') writeState(args);
  else if (command === 'groups') thingGroups(args);
  else throw new Error(`unknown command ${command}`);
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
