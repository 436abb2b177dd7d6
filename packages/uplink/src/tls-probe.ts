import { readFile } from 'node:fs/promises';
import type { PeerCertificate } from 'node:tls';
import type { UplinkConfig } from '@attache/core';
import { GatewayError } from '@attache/core';
import { brokerCaFile, tlsPolicy } from './tls-policy.js';

/** What a successful probe learnt about the broker's certificate. */
export interface ProbeResult {
  /** The broker certificate's notBefore: the true time is at least this (ms since the epoch). */
  notBeforeMs: number;
  notAfterMs: number;
}

/** Node's (OpenSSL's) verification codes, translated for an operator. */
const reasons: Record<string, string> = {
  CERT_NOT_YET_VALID:
    "the broker's certificate is not yet valid by this gateway's clock: the system clock is wrong (behind); synchronize it (NTP) — TLS cannot succeed until then",
  CERT_HAS_EXPIRED:
    "the broker's certificate has expired by this gateway's clock: either the clock is wrong (ahead) or the broker's certificate expired",
  ERR_TLS_CERT_ALTNAME_INVALID:
    "the broker's certificate is not issued for this host name: check uplink.endpoint (the wrong host name, or a man in the middle)",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    "the broker's certificate is not signed by a trusted CA: check uplink.caFile (wrong CA, or a man in the middle)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    "the broker's certificate is not signed by a trusted CA: check uplink.caFile (wrong CA, or a man in the middle)",
  SELF_SIGNED_CERT_IN_CHAIN:
    "the broker's certificate chain ends in an untrusted root: check uplink.caFile (wrong CA, or a man in the middle)",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the broker's certificate is self-signed and not trusted: check uplink.caFile",
};

const versionOrCipher =
  /unsupported protocol|wrong version number|protocol version|no protocols available|no shared cipher|no cipher|handshake failure/i;

/**
 * An operator's explanation of a TLS or connection error from Node (`err.code`, OpenSSL's text):
 * wrong CA, wrong host name, a clock outside the certificate's validity, our certificate refused,
 * no TLS version or cipher suite in common, unreachable.
 */
export function explainTlsError(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  const known = reasons[code];
  if (known) return `TLS failed: ${known} (${code})`;
  if (/alert (unknown ca|bad certificate|certificate unknown|certificate expired)/i.test(err.message)) {
    return `TLS failed: the broker refused this gateway's certificate (${err.message.replace(/^.*alert/i, 'alert')}): check uplink.certFile/keyFile and that the certificate is registered and active`;
  }
  if (versionOrCipher.test(err.message) || /UNSUPPORTED_PROTOCOL|VERSION/.test(code)) {
    return `TLS failed: the broker offers no TLS version or cipher suite this gateway accepts (TLS 1.2 or later; with uplink.fipsOnly, FIPS-approved AES-GCM suites only) (${code || err.message})`;
  }
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ENOTFOUND') {
    return `broker unreachable (${code})`;
  }
  return `TLS failed (${code || err.message})`;
}

function validity(cert: PeerCertificate): ProbeResult {
  return { notBeforeMs: Date.parse(cert.valid_from), notAfterMs: Date.parse(cert.valid_to) };
}

/** How long a probe waits after the handshake for the server's verdict on our certificate, without a ticket. */
const settleMs = 200;

/**
 * A TLS handshake with Node's own TLS (OpenSSL) and the uplink's certificate, key and CA, before
 * the SDK connects: it fails in milliseconds with a precise reason (wrong CA, wrong host name, a
 * clock outside the broker certificate's validity) where the SDK reports a generic negotiation
 * failure only after 10-30 s. Rejects `ATTACHE_UPLINK_CONNECT` with that reason; resolves the
 * broker certificate's validity. Never reads or logs key material beyond handing it to TLS.
 */
export async function probeTls(config: UplinkConfig, timeoutMs: number): Promise<ProbeResult> {
  const load = (path: string) => readFile(path);
  let files: Buffer[];
  try {
    files = await Promise.all([load(config.certFile), load(config.keyFile)]);
  } catch (err) {
    throw new GatewayError('ATTACHE_UPLINK_CONNECT', 'could not read the TLS certificate or key', {
      cause: err,
    });
  }
  const caFile = brokerCaFile(config);
  const ca = caFile === undefined ? undefined : await load(caFile).catch(() => undefined);
  const policy = tlsPolicy(config);
  // node:tls only when a probe runs: the gateway's main process imports this module for the health
  // check of a config update that changes the uplink, and an idle gateway without a window yet (or
  // without an uplink) need not keep it (~0.6 MB of the release's RSS; bench/README.md, "Idle RSS").
  const { connect } = await import('node:tls');
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: config.endpoint,
      port: config.port,
      servername: config.endpoint,
      cert: files[0],
      key: files[1],
      ...(ca ? { ca } : {}),
      // AWS IoT Core on port 443 selects MQTT by ALPN, as the SDK's builder does.
      ALPNProtocols: ['x-amzn-mqtt-ca'],
      minVersion: policy.minVersion,
      ...(policy.ciphers ? { ciphers: policy.ciphers } : {}),
      timeout: timeoutMs,
    });
    const fail = (err: NodeJS.ErrnoException): void => {
      socket.destroy();
      reject(new GatewayError('ATTACHE_UPLINK_CONNECT', explainTlsError(err), { cause: err }));
    };
    socket.once('secureConnect', () => {
      socket.off('error', fail);
      const cert = socket.getPeerCertificate();
      const accepted = (): void => {
        clearTimeout(settle);
        socket.destroy();
        resolve(validity(cert));
      };
      // Before TLS 1.3 the broker checked our certificate within the handshake. Under TLS 1.3 it
      // does so after it: an OpenSSL broker (mosquitto) then sends its session tickets when it
      // accepted the certificate, an alert when it refused it. One that sends no ticket is waited for briefly.
      const settle = setTimeout(accepted, socket.getProtocol() === 'TLSv1.3' ? settleMs : 0);
      socket.once('session', accepted);
      socket.once('error', (err) => {
        clearTimeout(settle);
        fail(err);
      });
    });
    socket.once('error', fail);
    socket.once('timeout', () =>
      fail(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' })),
    );
  });
}
