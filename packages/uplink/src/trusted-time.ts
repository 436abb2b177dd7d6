import { readFile } from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import type { UplinkConfig } from '@attache/core';
import { GatewayError, monotonicMs } from '@attache/core';
import { checkResidency } from './residency.js';
import { brokerCaFile, tlsPolicy } from './tls-policy.js';
import { explainTlsError } from './tls-probe.js';

/** The time as the endpoint told it, against this gateway's clocks at the same moment. */
export interface TrustedTime {
  /** The endpoint's time (ms since the epoch) at `monotonicMs`. */
  trueMs: number;
  /** This gateway's wall clock at the same moment. */
  systemMs: number;
  /** Core's `monotonicMs()` (time since boot) at that moment. */
  monotonicMs: number;
  /** `trueMs − systemMs`: how far the local clock is off (positive: it is behind). */
  offsetMs: number;
  /** ± bound of `trueMs`: half the `Date` header's 1 s resolution plus half the round trip. */
  uncertaintyMs: number;
  /** Where the time came from (event.schema.json `clock.corrected` detail `source`). */
  source: 'broker-date';
}

/** Options of {@link fetchTrustedTime}. */
export interface FetchTrustedTimeOptions {
  /** Default: `config.trustedTime.timeoutMs`. */
  timeoutMs?: number;
}

/**
 * The URL asked for the time: `trustedTime.url`, or the endpoint on port 8443, where AWS IoT Core
 * answers HTTPS with X.509 client authentication (443 would need the `x-amzn-http-ca` ALPN).
 */
export function trustedTimeUrl(config: UplinkConfig): URL {
  return new URL(config.trustedTime?.url ?? `https://${config.endpoint}:8443/`);
}

interface Answer {
  date: string | undefined;
  validFrom: number;
  validTo: number;
  sentMono: number;
  sentWall: number;
  receivedMono: number;
}

const connectError = (message: string, cause?: unknown) =>
  new GatewayError('ATTACHE_UPLINK_CONNECT', message, cause === undefined ? {} : { cause });

/** One GET over verified TLS; resolves the Date header and the peer certificate's validity. */
async function ask(config: UplinkConfig, url: URL, timeoutMs: number): Promise<Answer> {
  // node:https (and its HTTP stack) only when the clock is checked: not in an idle gateway.
  const { request } = await import('node:https');
  const caFile = brokerCaFile({ caFile: config.caFile, endpoint: url.hostname });
  const [cert, key, ca] = await Promise.all([
    readFile(config.certFile).catch(() => undefined),
    readFile(config.keyFile).catch(() => undefined),
    caFile === undefined ? undefined : readFile(caFile).catch(() => undefined),
  ]);
  const policy = tlsPolicy(config);
  const sentMono = monotonicMs();
  const sentWall = Date.now();
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'GET',
      ...(cert && key ? { cert, key } : {}),
      ...(ca ? { ca } : {}),
      minVersion: policy.minVersion,
      ...(policy.ciphers ? { ciphers: policy.ciphers } : {}),
      agent: false,
      timeout: timeoutMs,
    });
    req.once('response', (res) => {
      const receivedMono = monotonicMs();
      const peer = (res.socket as TLSSocket).getPeerCertificate();
      res.resume();
      req.destroy();
      resolve({
        date: res.headers.date,
        validFrom: Date.parse(peer.valid_from),
        validTo: Date.parse(peer.valid_to),
        sentMono,
        sentWall,
        receivedMono,
      });
    });
    req.once('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.once('error', (err: NodeJS.ErrnoException) =>
      reject(connectError(`no trusted time from ${url.host}: ${explainTlsError(err)}`, err)),
    );
    req.end();
  });
}

/**
 * Asks the endpoint itself for the time: an HTTPS GET to {@link trustedTimeUrl} verified with the
 * uplink's CA (client certificate sent), reading the response's `Date` header (any status). The
 * URL's host passes the data-residency check first. Resolves the endpoint's time against the local
 * clocks; rejects `ATTACHE_UPLINK_CONNECT` when the host is refused, TLS fails (a clock so wrong that
 * the certificate is not yet valid is named), the answer has no `Date`, the `Date` lies outside the
 * endpoint certificate's validity (not plausible), or nothing answers within the timeout.
 */
export async function fetchTrustedTime(
  config: UplinkConfig,
  options: FetchTrustedTimeOptions = {},
): Promise<TrustedTime> {
  const url = trustedTimeUrl(config);
  checkResidency({ ...config, endpoint: url.hostname });
  const answer = await ask(config, url, options.timeoutMs ?? config.trustedTime?.timeoutMs ?? 10_000);
  const dateMs = answer.date === undefined ? Number.NaN : Date.parse(answer.date);
  if (Number.isNaN(dateMs)) throw connectError(`no trusted time from ${url.host}: no valid Date header`);
  // The certificate the endpoint just proved it holds bounds its own clock.
  if (dateMs + 1000 < answer.validFrom || dateMs > answer.validTo) {
    throw connectError(
      `no trusted time from ${url.host}: its Date (${answer.date}) lies outside its own certificate's validity`,
    );
  }
  // The server stamped its second somewhere between our send and receive: take the middle of both.
  const halfTrip = (answer.receivedMono - answer.sentMono) / 2;
  const mono = answer.sentMono + halfTrip;
  const trueMs = dateMs + 500;
  const systemMs = Math.round(answer.sentWall + halfTrip);
  return {
    trueMs,
    systemMs,
    monotonicMs: mono,
    offsetMs: trueMs - systemMs,
    uncertaintyMs: Math.ceil(500 + halfTrip),
    source: 'broker-date',
  };
}
