import type { AttacheConfig, ConfigIssue } from '@attache/core';
import { ucumProblem } from './ucum.js';

/** A key as a JSON Pointer segment (`K/uL` → `K~1uL`). */
function segment(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

function check(issues: ConfigIssue[], path: string, unit: string | undefined): void {
  if (unit === undefined) return;
  const message = ucumProblem(unit);
  if (message !== undefined) issues.push({ path, message });
}

/**
 * Every unit a config sets must be UCUM: field and code mappings, the UCUM side of `units` maps,
 * and Modbus register units. One issue per unit that is not, with the UCUM spelling when known
 * (`bpm` → `/min`, `percent` → `%`).
 */
export function checkConfigUnits(config: AttacheConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [i, device] of config.devices.entries()) {
    if (device.adapter === 'modbus') continue;
    const { format } = device;
    const base = `/devices/${i}/format`;
    if (format.kind === 'kv-line' || format.kind === 'regex-line') {
      for (const [key, mapping] of Object.entries(format.fields))
        check(issues, `${base}/fields/${segment(key)}/unit`, mapping.unit);
    } else {
      for (const [key, mapping] of Object.entries(format.codes))
        check(issues, `${base}/codes/${segment(key)}/unit`, mapping.unit);
      for (const [key, unit] of Object.entries(format.units))
        check(issues, `${base}/units/${segment(key)}`, unit);
    }
  }
  for (const [name, profile] of Object.entries(config.modbusProfiles ?? {})) {
    for (const [i, register] of profile.registers.entries())
      check(issues, `/modbusProfiles/${segment(name)}/registers/${i}/unit`, register.unit);
  }
  return issues;
}
