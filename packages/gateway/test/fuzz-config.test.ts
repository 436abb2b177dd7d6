import { isGatewayError } from '@attache/core';
import { FuzzMeter, fuzzParameters, type Mutation, mutate } from '@attache/devkit';
import fc from 'fast-check';
import t from 'tap';
import { checkConfig } from '../src/config-file.js';

// Seed: a config with a device of each adapter kind, a Modbus profile, routes and window schedules.
const seed = {
  version: 1,
  gateway: { id: 'gw-1', dataDir: '/srv/attache' },
  devices: [
    {
      id: 'spo2',
      adapter: 'rs232',
      port: { path: '/dev/serial/by-id/usb-x' },
      format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
    },
    {
      id: 'mon',
      adapter: 'ethernet',
      endpoint: { mode: 'listen', host: '0.0.0.0', port: 2575, allow: ['10.0.0.0/8'] },
      format: { kind: 'hl7-mllp' },
    },
    { id: 'fridge', adapter: 'modbus', bus: { transport: 'tcp', host: '10.0.0.5' }, unitId: 1, profile: 'p' },
  ],
  modbusProfiles: {
    p: { registers: [{ name: 't', type: 'int16', ref: '30001', code: 'T', unit: 'Cel', scale: 0.1 }] },
  },
  uplink: {
    endpoint: 'example-ats.iot.eu-west-1.amazonaws.com',
    certFile: '/etc/attache/cert.pem',
    keyFile: '/etc/attache/key.pem',
    caFile: '/etc/attache/ca.pem',
    window: { schedules: ['01:00-02:00', '22:00-23:30'] },
  },
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `value` with the node at `path` (indices into each level's keys, modulo their count) replaced. */
function replaceAt(value: Json, path: number[], replacement: Json): Json {
  if (path.length === 0 || value === null || typeof value !== 'object') return replacement;
  const keys = Object.keys(value);
  if (keys.length === 0) return replacement;
  const key = keys[(path[0] as number) % keys.length] as string;
  const copy: Record<string, Json> | Json[] = Array.isArray(value) ? [...value] : { ...value };
  (copy as Record<string, Json>)[key] = replaceAt(
    (value as Record<string, Json>)[key] as Json,
    path.slice(1),
    replacement,
  );
  return copy as Json;
}

/** Only an ATTACHE_CONFIG_INVALID with every issue's path may come out of the check. */
function checked(parsed: unknown): boolean {
  try {
    checkConfig(parsed);
    return true;
  } catch (err) {
    return (
      isGatewayError(err, 'ATTACHE_CONFIG_INVALID') &&
      err.issues.length > 0 &&
      err.issues.every((i) => i.path.startsWith('/') && i.message !== '')
    );
  }
}

t.test('the config check turns any config into a config or ATTACHE_CONFIG_INVALID with paths', async (t) => {
  t.doesNotThrow(() => checkConfig(seed), 'the seed is valid');
  const meter = new FuzzMeter('config structure');
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 7 }), fc.jsonValue({ maxDepth: 3 }), (path, replacement) =>
        meter.run(() => checked(replaceAt(seed as unknown as Json, path, replacement as Json))),
      ),
      fuzzParameters(400),
    ),
  );
  t.comment(meter.summary());
  const text = new FuzzMeter('config text');
  const bytes = Buffer.from(JSON.stringify(seed));
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat(255)) as fc.Arbitrary<Mutation>, { maxLength: 6 }),
        (muts) =>
          text.run(() => {
            let parsed: unknown;
            try {
              parsed = JSON.parse(mutate(bytes, muts).toString('utf8'));
            } catch {
              return true; // loadConfig reports bad JSON itself
            }
            return checked(parsed);
          }),
      ),
      fuzzParameters(400),
    ),
  );
  t.comment(text.summary());
});
