import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import {
  type AttacheConfig,
  type ConfigIssue,
  type DeviceConfig,
  devicePatternProblem,
  type RegexLineFormat,
} from '@attache/core';

/** A serial port path as a device names it: the path and where it is in the config. */
interface PortAt {
  path: string;
  at: string;
}

/** The serial port of a device (rs232 port, Modbus RTU bus), or undefined for network devices. */
function serialPortOf(device: DeviceConfig, i: number): PortAt | undefined {
  if (device.adapter === 'rs232') return { path: device.port.path, at: `/devices/${i}/port/path` };
  if (device.adapter === 'modbus' && device.bus.transport === 'rtu') {
    return { path: device.bus.path, at: `/devices/${i}/bus/path` };
  }
  return undefined;
}

/** Windows port names (`COM3`): a config written on a laptop. */
const windowsPort = /^(?:\\\\\.\\)?COM\d+$/i;

/** Why `path` is not a device path, from its form alone; undefined when it may be one. */
function portPathProblem(path: string): string | undefined {
  if (windowsPort.test(path)) {
    return `${path} is a Windows port name: on the gateway serial ports are /dev/… (attache ports lists them)`;
  }
  if (!isAbsolute(path)) {
    return `${path} is not a device path: name it in full, e.g. /dev/${path.replace(/^\/*/, '')} (attache ports lists them)`;
  }
  return undefined;
}

/** The regex-line format of a device, if it has one, with its path in the config. */
function regexFormatOf(device: DeviceConfig, i: number): { format: RegexLineFormat; at: string } | undefined {
  if (device.adapter === 'modbus' || device.format.kind !== 'regex-line') return undefined;
  return { format: device.format, at: `/devices/${i}/format` };
}

/**
 * Problems of a regex-line pattern: it must compile and be one V8's linear-time engine can run, and
 * every group `fields` names must be in it.
 */
function checkPattern(format: RegexLineFormat, at: string, issues: ConfigIssue[]): void {
  const problem = devicePatternProblem(format.pattern);
  if (problem !== undefined) {
    issues.push({ path: `${at}/pattern`, message: problem });
    return;
  }
  const pattern = new RegExp(format.pattern);
  // A pattern's named groups are the keys of `groups` of any match, matched or not: `(?<a>x)|` on ''.
  const groups = new Set(Object.keys(new RegExp(`${pattern.source}|`).exec('')?.groups ?? {}));
  for (const name of Object.keys(format.fields)) {
    if (!groups.has(name)) {
      issues.push({
        path: `${at}/fields/${name}`,
        message: `the pattern has no group named "${name}" (write (?<${name}>…)): this field would never be read`,
      });
    }
  }
}

/** Problems of a device's `capture`: it needs files up, and its patterns must compile and be linear. */
function checkCapture(config: AttacheConfig, device: DeviceConfig, i: number, issues: ConfigIssue[]): void {
  if (device.adapter === 'modbus' || device.capture === undefined) return;
  const { capture } = device;
  const at = `/devices/${i}/capture`;
  if (config.files === undefined || config.uplink === undefined) {
    issues.push({
      path: at,
      message: `capture stores files in files up: configure ${config.files === undefined ? '`files`' : '`uplink`'} too`,
    });
  } else if (capture.maxBytes > config.files.maxFileBytes) {
    issues.push({
      path: `${at}/maxBytes`,
      message: `larger than files.maxFileBytes (${config.files.maxFileBytes}): such a file would be refused`,
    });
  }
  for (const key of ['start', 'end'] as const) {
    const source = capture[key];
    if (source === undefined) continue;
    const problem = devicePatternProblem(source);
    if (problem !== undefined) issues.push({ path: `${at}/${key}`, message: problem });
  }
}

/**
 * What the schema cannot say about the devices, from the config alone: ids are unique; a serial port
 * is opened by one device only (Modbus RTU devices share theirs as one bus); two devices do not listen
 * on one TCP port; serial port paths are device paths; regex-line patterns compile and have the
 * groups their `fields` name; a `capture` has files up configured; every pattern compiles and runs
 * in linear time. Each issue's `path` is a JSON pointer into the config.
 */
export function checkDevices(config: AttacheConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const ids = new Map<string, number>();
  const ports = new Map<string, { i: number; adapter: string }>();
  const listeners: { host: string; port: number; i: number }[] = [];
  for (const [i, device] of config.devices.entries()) {
    const first = ids.get(device.id);
    if (first === undefined) ids.set(device.id, i);
    else {
      issues.push({
        path: `/devices/${i}/id`,
        message: `"${device.id}" is already the id of /devices/${first}: their readings would merge under one id`,
      });
    }
    const port = serialPortOf(device, i);
    if (port !== undefined) {
      const problem = portPathProblem(port.path);
      if (problem !== undefined) issues.push({ path: port.at, message: problem });
      const other = ports.get(port.path);
      if (other === undefined) ports.set(port.path, { i, adapter: device.adapter });
      else if (other.adapter !== 'modbus' || device.adapter !== 'modbus') {
        issues.push({
          path: port.at,
          message: `${port.path} is already the port of /devices/${other.i}: a serial port can be opened by one device only`,
        });
      }
    }
    if (device.adapter === 'ethernet' && device.endpoint.mode === 'listen') {
      // No host: every address, which takes the port on each specific one too.
      const { host = '*', port } = device.endpoint;
      const other = listeners.find(
        (l) => l.port === port && (l.host === host || l.host === '*' || host === '*'),
      );
      if (other !== undefined) {
        issues.push({
          path: `/devices/${i}/endpoint/port`,
          message: `/devices/${other.i} already listens on port ${port}`,
        });
      } else listeners.push({ host, port, i });
    }
    const regex = regexFormatOf(device, i);
    if (regex !== undefined) checkPattern(regex.format, regex.at, issues);
    checkCapture(config, device, i, issues);
  }
  return issues;
}

/** What a file in the config must hold: its parser, and the words for the message. */
type FileKind = 'certificate' | 'private key' | 'public key' | 'CA bundle';

const parsers: Record<FileKind, (content: Buffer) => unknown> = {
  certificate: (content) => new X509Certificate(content),
  'CA bundle': (content) => new X509Certificate(content),
  'private key': (content) => createPrivateKey(content),
  'public key': (content) => createPublicKey(content),
};

/** The credential and key files a config names, with what each must hold. */
function filesOf(config: AttacheConfig): { path: string; at: string; kind: FileKind }[] {
  const files: { path: string | undefined; at: string; kind: FileKind }[] = [];
  const uplink = config.uplink;
  if (uplink) {
    const claim = uplink.provisioning;
    if (claim && !existsSync(uplink.certFile)) {
      // Not provisioned yet: the box makes its key and gets its certificate in its first window,
      // with the fleet's claim (deleted once provisioned, when certFile exists).
      files.push(
        { path: claim.claimCertFile, at: '/uplink/provisioning/claimCertFile', kind: 'certificate' },
        { path: claim.claimKeyFile, at: '/uplink/provisioning/claimKeyFile', kind: 'private key' },
      );
    } else {
      files.push(
        { path: uplink.certFile, at: '/uplink/certFile', kind: 'certificate' },
        { path: uplink.keyFile, at: '/uplink/keyFile', kind: 'private key' },
      );
    }
    files.push({ path: uplink.caFile, at: '/uplink/caFile', kind: 'CA bundle' });
    for (const [i, route] of uplink.routes.entries()) {
      files.push(
        { path: route.certFile, at: `/uplink/routes/${i}/certFile`, kind: 'certificate' },
        { path: route.keyFile, at: `/uplink/routes/${i}/keyFile`, kind: 'private key' },
        { path: route.caFile, at: `/uplink/routes/${i}/caFile`, kind: 'CA bundle' },
      );
    }
  }
  if (config.jobs) {
    files.push(
      { path: config.jobs.publicKeyFile, at: '/jobs/publicKeyFile', kind: 'public key' },
      { path: config.jobs.caFile, at: '/jobs/caFile', kind: 'CA bundle' },
    );
  }
  files.push({
    path: config.cache.exportRecipientFile,
    at: '/cache/exportRecipientFile',
    kind: 'public key',
  });
  return files.filter((f): f is { path: string; at: string; kind: FileKind } => f.path !== undefined);
}

/** systemd's LoadCredential directory: its files exist only while the service runs. */
const credentialsDir = '/run/credentials/';

function readProblem(err: NodeJS.ErrnoException, path: string): string {
  const why =
    err.code === 'ENOENT'
      ? 'file not found'
      : err.code === 'EACCES'
        ? `not readable by this user (uid ${process.getuid?.() ?? '?'})`
        : err.code === 'EISDIR'
          ? 'is a directory'
          : `cannot be read (${err.code ?? err.message})`;
  const hint = path.startsWith(credentialsDir) ? ' (systemd provides it only while the service runs)' : '';
  return `${path}: ${why}${hint}`;
}

async function checkFile(path: string, kind: FileKind): Promise<string | undefined> {
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (err) {
    return readProblem(err as NodeJS.ErrnoException, path);
  }
  try {
    parsers[kind](content);
    return undefined;
  } catch {
    // The parser's message may quote the content: it is not repeated.
    return `${path} is not a PEM ${kind}${kind === 'private key' ? ' (or it is encrypted)' : ''}`;
  }
}

/** A serial port path that exists must be a character device (a symlink to one counts). */
async function checkPortNode(port: PortAt): Promise<string | undefined> {
  try {
    const node = await stat(port.path);
    return node.isCharacterDevice()
      ? undefined
      : `${port.path} is not a device (a serial port is a character device)`;
  } catch {
    // Not there (yet): an unplugged adapter's port appears when it is plugged in.
    return undefined;
  }
}

/**
 * What only this machine can tell: every certificate, key and CA file the config names (uplink and
 * routes, the jobs key and CA, the export recipient key) can be read by this user and holds what it
 * should; a serial port path that exists is a character device. Each issue names its config path.
 */
export async function checkConfigFiles(config: AttacheConfig): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (const file of filesOf(config)) {
    const message = await checkFile(file.path, file.kind);
    if (message !== undefined) issues.push({ path: file.at, message });
  }
  for (const [i, device] of config.devices.entries()) {
    const port = serialPortOf(device, i);
    if (port === undefined || portPathProblem(port.path) !== undefined) continue;
    const message = await checkPortNode(port);
    if (message !== undefined) issues.push({ path: port.at, message });
  }
  return issues;
}
