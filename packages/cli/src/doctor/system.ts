import { createPrivateKey, X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AttacheConfig } from '@attache/core';
import { type CheckResult, fail, ok, warn } from './check.js';

const dayMs = 86_400_000;

/** The most a certificate or key file the doctor reads may hold: PEM files are a few KiB. */
const credentialLimit = 1024 * 1024;

/**
 * Reads `path` when it is a regular file of at most {@link credentialLimit} bytes: the doctor runs as
 * root, and on the appliance the service may rewrite the config that names the file, so a name such
 * as `/dev/zero` or a FIFO must fail the check, not fill memory or stall the command.
 */
export async function readSmallFile(path: string, limit = credentialLimit): Promise<Buffer> {
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await file.stat();
    if (!info.isFile()) throw new Error(`${path} is not a regular file`);
    if (info.size > limit) throw new Error(`${path} is larger than ${limit} bytes`);
    const buffer = Buffer.alloc(info.size);
    let filled = 0;
    for (let n = -1; n !== 0 && filled < buffer.length; filled += n) {
      ({ bytesRead: n } = await file.read(buffer, filled, buffer.length - filled, filled));
    }
    return buffer.subarray(0, filled);
  } finally {
    await file.close();
  }
}

/**
 * Reads a file the config names ({@link readSmallFile}); a credential systemd hands the service
 * (LoadCredential=uplink:…) is read from where it is kept when the service is not running to provide it.
 */
async function readCredential(path: string): Promise<Buffer> {
  try {
    return await readSmallFile(path);
  } catch (err) {
    const kept = /^\/run\/credentials\/attache\.service\/uplink_([^/]+)$/.exec(path)?.[1];
    if (kept === undefined) throw err;
    return readSmallFile(`/var/lib/attache/credentials/${kept}`);
  }
}

/** The uplink certificate and key: they belong together, and the certificate is valid now and for 30 days. */
export async function checkCertificate(config: AttacheConfig, now: number): Promise<CheckResult[]> {
  const uplink = config.uplink;
  if (!uplink) return [ok('certificate', 'no uplink configured')];
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(await readCredential(uplink.certFile));
  } catch {
    return [
      fail(
        'certificate',
        'uplink.certFile cannot be read as a PEM certificate',
        'provision the device certificate again',
      ),
    ];
  }
  const results: CheckResult[] = [];
  try {
    const key = createPrivateKey(await readCredential(uplink.keyFile));
    results.push(
      cert.checkPrivateKey(key)
        ? ok('certificate and key', 'the key belongs to the certificate')
        : fail(
            'certificate and key',
            'uplink.keyFile is not the key of uplink.certFile',
            'provision the matching certificate and key',
          ),
    );
  } catch {
    results.push(
      fail(
        'certificate and key',
        'uplink.keyFile cannot be read as a PEM private key',
        'provision the key again (unencrypted PEM)',
      ),
    );
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  const dates = `valid ${new Date(from).toISOString()} to ${new Date(to).toISOString()}`;
  if (now < from) {
    results.push(
      fail(
        'certificate dates',
        `${dates}: not valid yet`,
        'the clock is behind: let it synchronize (a window with network), or check the certificate',
      ),
    );
  } else if (now > to) {
    results.push(
      fail('certificate dates', `${dates}: expired`, 'issue and provision a new device certificate'),
    );
  } else if (to - now < 30 * dayMs) {
    results.push(
      warn(
        'certificate dates',
        `${dates}: ends in ${Math.floor((to - now) / dayMs)} days`,
        'issue and provision a new device certificate soon',
      ),
    );
  } else results.push(ok('certificate dates', dates));
  return results;
}

/** Whether the clock is synchronized (the gateway's clockSyncFile). */
export async function checkClock(config: AttacheConfig, now: number): Promise<CheckResult> {
  const synced = await access(config.gateway.clockSyncFile).then(
    () => true,
    () => false,
  );
  const at = new Date(now).toISOString();
  return synced
    ? ok('clock', `synchronized (${at})`)
    : warn(
        'clock',
        `not synchronized since boot (${at}); readings keep their uncertain time`,
        'it synchronizes in a window with network (systemd-timesyncd); check NTP is reachable then',
      );
}

/** Free space where the data directory is. */
export async function checkDisk(config: AttacheConfig): Promise<CheckResult> {
  // The data directory, or the nearest directory above it when it is not created yet.
  let dir = config.gateway.dataDir;
  let fs = await statfs(dir).catch(() => undefined);
  while (fs === undefined && dirname(dir) !== dir) {
    dir = dirname(dir);
    fs = await statfs(dir).catch(() => undefined);
  }
  if (fs === undefined) return warn('disk', 'cannot be measured', 'check the data partition is mounted');
  const free = fs.bavail * fs.bsize;
  const share = fs.blocks > 0 ? fs.bavail / fs.blocks : 0;
  const detail = `${(free / 1048576).toFixed(0)} MiB free (${(share * 100).toFixed(0)} %)`;
  const action = 'free space on the data partition; readings are refused when it is full';
  if (free < 64 * 1048576) return fail('disk', detail, action);
  if (share < 0.1) return warn('disk', detail, action);
  return ok('disk', detail);
}
