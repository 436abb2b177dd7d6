import type { UplinkConfig } from '@attache/core';

/** The TLS settings of the probe (Node's OpenSSL) and of the MQTT connection (aws-crt's s2n). */
export interface TlsPolicy {
  /** The lowest TLS version the probe and the trusted-time request accept. */
  minVersion: 'TLSv1.2';
  /** OpenSSL cipher list for Node's TLS; undefined: Node's defaults. */
  ciphers: string | undefined;
  /**
   * aws-crt `TlsCipherPreference` of the MQTT connection: `Default` (aws-crt's default policy, which
   * also accepts TLS 1.0/1.1) or `TLSv1_2_2025_07` (TLS 1.2-1.3, no CBC, FIPS-compliant per aws-crt).
   */
  crtCipherPreference: 'Default' | 'TLSv1_2_2025_07';
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
 * The TLS policy for `config`: with `fipsOnly`, TLS 1.2 or later with FIPS-approved suites only, on
 * both the probe and the connection; otherwise TLS 1.2 or later on the probe and aws-crt's default.
 * This is a FIPS posture, not a FIPS-validated module: see the README, "FIPS".
 */
export function tlsPolicy(config: Pick<UplinkConfig, 'fipsOnly'>): TlsPolicy {
  return config.fipsOnly
    ? { minVersion: 'TLSv1.2', ciphers: fipsCiphers, crtCipherPreference: 'TLSv1_2_2025_07' }
    : { minVersion: 'TLSv1.2', ciphers: undefined, crtCipherPreference: 'Default' };
}
