import type { ConfigIssue, DeviceConfig, ModbusBus, ModbusProfile, ModbusRegister } from '@attache/core';
import { isBitTable, type ModbusTable, registerCount, resolveRef } from './register-map.js';

/** The parts of the config the Modbus check reads. */
export interface ModbusConfigParts {
  devices: readonly DeviceConfig[];
  modbusProfiles: Record<string, ModbusProfile>;
}

/** The key devices on one bus share: `rtu:<path>` or `tcp://host:port`. */
export function busKey(bus: ModbusBus): string {
  return bus.transport === 'rtu' ? `rtu:${bus.path}` : `tcp://${bus.host}:${bus.port}`;
}

function serialSettings(bus: ModbusBus): string {
  return bus.transport === 'rtu' ? `${bus.baudRate} ${bus.dataBits}${bus.parity[0]}${bus.stopBits}` : '';
}

/** The register's table, or an issue when its `ref` is unusable. */
function tableOf(register: ModbusRegister, path: string, issues: ConfigIssue[]): ModbusTable | undefined {
  if (register.ref === undefined) return register.table;
  const at = resolveRef(register.ref);
  if (at === undefined) {
    issues.push({
      path: `${path}/ref`,
      message: `${register.ref} is not a 1-based reference (40001 is the first)`,
    });
  }
  return at?.table;
}

function checkRegister(register: ModbusRegister, path: string, issues: ConfigIssue[]): void {
  const table = tableOf(register, path, issues);
  if (table !== undefined && isBitTable(table) !== (register.type === 'bool')) {
    const message = isBitTable(table)
      ? `a ${table} holds one bit: use type bool`
      : `type bool is for coils and discrete inputs; in a ${table} use bit or a number type`;
    issues.push({ path: `${path}/type`, message });
  }
  if (register.bit !== undefined && register.type !== 'bit') {
    issues.push({ path: `${path}/bit`, message: 'only a register of type bit takes "bit"' });
  }
  if (register.length !== undefined && register.type !== 'string') {
    issues.push({ path: `${path}/length`, message: 'only a register of type string takes "length"' });
  }
  if (register.questionableWhenNonZero && register.type === 'string') {
    issues.push({
      path: `${path}/questionableWhenNonZero`,
      message: 'a string register cannot be an alarm word',
    });
  }
  const start = register.ref === undefined ? register.address : resolveRef(register.ref)?.address;
  if (start !== undefined && (register.type !== 'string' || register.length !== undefined)) {
    const last = start + registerCount(register.type, register.length) - 1;
    if (last > 65535) {
      const field = register.ref === undefined ? 'address' : 'ref';
      issues.push({ path: `${path}/${field}`, message: `the value runs past address 65535 (to ${last})` });
    }
  }
}

function checkProfile(name: string, profile: ModbusProfile, issues: ConfigIssue[]): void {
  const seen = new Set<string>();
  profile.registers.forEach((register, j) => {
    const path = `/modbusProfiles/${name}/registers/${j}`;
    if (seen.has(register.name)) {
      issues.push({ path: `${path}/name`, message: `${register.name} is used twice in this profile` });
    }
    seen.add(register.name);
    checkRegister(register, path, issues);
  });
}

/**
 * What the JSON schema cannot check in the Modbus parts of a config (with the schema's defaults
 * applied): every device's profile exists; devices sharing a serial path agree on its settings; every
 * register's `ref` is 1-based, its type fits its table, it ends at or before address 65535, it takes
 * `bit`/`length` only where they apply, and its name is unique in its profile. Returns every problem
 * with its JSON Pointer; [] when the Modbus devices can run. Only profiles devices use are checked.
 */
export function checkModbusConfig(config: ModbusConfigParts): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const used = new Set<string>();
  const buses = new Map<string, { settings: string; id: string }>();
  config.devices.forEach((device, i) => {
    if (device.adapter !== 'modbus') return;
    if (!Object.hasOwn(config.modbusProfiles, device.profile)) {
      issues.push({
        path: `/devices/${i}/profile`,
        message: `no profile ${device.profile} in modbusProfiles`,
      });
    } else used.add(device.profile);
    const key = busKey(device.bus);
    const first = buses.get(key);
    if (first === undefined) buses.set(key, { settings: serialSettings(device.bus), id: device.id });
    else if (first.settings !== serialSettings(device.bus)) {
      const message = `serial settings differ from device ${first.id} on the same line (${first.settings})`;
      issues.push({ path: `/devices/${i}/bus`, message });
    }
  });
  for (const name of used) {
    const profile = config.modbusProfiles[name];
    if (profile !== undefined) checkProfile(name, profile, issues);
  }
  return issues;
}
