import { fileURLToPath } from 'node:url';
import type { UplinkConfig } from '@attache/core';

/** The TLS settings of the probe (Node's OpenSSL) and of the MQTT connection (aws-crt's s2n). */
export interface TlsPolicy {
  /** The lowest TLS version the probe, the trusted-time request and artifact downloads accept. */
  minVersion: 'TLSv1.2';
  /** OpenSSL cipher list for Node's TLS; undefined: Node's defaults. */
  ciphers: string | undefined;
  /**
   * aws-crt `TlsCipherPreference` of the MQTT connection, with or without `fipsOnly`:
   * `TLSv1_2_2025_07` (TLS 1.2-1.3, ECDHE with AES-GCM, no CBC). aws-crt's `Default` also negotiates
   * TLS 1.0/1.1, and its `min_tls_version` is not reachable through the SDK's builder.
   */
  crtCipherPreference: 'TLSv1_2_2025_07';
}

// The suites of aws-crt's TLSv1_2_2025_07 that Node names: ECDHE with AES-GCM, and TLS 1.3 AES-GCM
// (no CBC, no ChaCha20-Poly1305, which FIPS 140 does not approve).
const fipsCiphers = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
].join(':');

/**
 * The TLS policy for `config`: TLS 1.2 or later on the probe and on the MQTT connection itself;
 * with `fipsOnly`, the probe also offers FIPS-approved suites only (the connection always does).
 * This is a FIPS posture, not a FIPS-validated module: see the README, "FIPS".
 */
export function tlsPolicy(config: Pick<UplinkConfig, 'fipsOnly'>): TlsPolicy {
  return {
    minVersion: 'TLSv1.2',
    ciphers: config.fipsOnly ? fipsCiphers : undefined,
    crtCipherPreference: 'TLSv1_2_2025_07',
  };
}

/**
 * Amazon Root CA 1 (RSA 2048) and Amazon Root CA 3 (ECC P-256), the roots of AWS IoT Core's ATS
 * endpoints, as committed in this package (`certs/amazon-root-cas.pem`, from Debian's
 * ca-certificates).
 */
export const amazonRootCasFile = fileURLToPath(new URL('../certs/amazon-root-cas.pem', import.meta.url));

/** True for a host name under `amazonaws.com` (AWS IoT Core's data endpoints, FIPS ones included). */
export function isAwsEndpoint(host: string): boolean {
  return /(^|\.)amazonaws\.com\.?$/i.test(host);
}

/**
 * The CA bundle the broker's certificate must chain to: `caFile` when configured; otherwise, for an
 * AWS endpoint, Amazon's roots only (a certificate from any other CA in the system store, mis-issued
 * or planted, is refused); otherwise undefined (the system store).
 */
export function brokerCaFile(config: Pick<UplinkConfig, 'caFile' | 'endpoint'>): string | undefined {
  if (config.caFile !== undefined) return config.caFile;
  return isAwsEndpoint(config.endpoint) ? amazonRootCasFile : undefined;
}
