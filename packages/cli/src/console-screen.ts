// The HDMI console's status screen (tty1): what a technician standing at the box reads without a
// laptop. Never a reading or patient data.
import type { networkInterfaces } from 'node:os';
import type { AttacheConfig } from '@attache/core';
import type { GatewayStatus } from '@attache/gateway';
import { hostHeader, resolveListen } from '@attache/technician';

/** What the screen shows. */
export interface ConsoleFacts {
  config: AttacheConfig;
  /** The running gateway's status; undefined when it does not answer. */
  status: GatewayStatus | undefined;
  /** The provisioning state in words (`provisioned`, …), when the box has one. */
  provisioning: string | undefined;
  /** The technician secret, when the page is on. */
  secret: string | undefined;
  interfaces: ReturnType<typeof networkInterfaces>;
  now: Date;
}

/** The box's addresses, by interface (loopback left out). */
function addresses(interfaces: ConsoleFacts['interfaces']): string[] {
  return Object.entries(interfaces)
    .filter(([name]) => name !== 'lo')
    .map(([name, infos]) => `${name} ${(infos ?? []).map((i) => i.address).join(', ')}`);
}

/** The screen's lines. */
export function consoleScreen(facts: ConsoleFacts): string[] {
  const { config, status } = facts;
  const lines = [`Attaché gateway ${config.gateway.id}        ${facts.now.toISOString().slice(0, 19)}Z`, ''];
  lines.push(`Provisioning: ${facts.provisioning ?? 'no provisioning record'}`);
  if (!status) {
    lines.push('Gateway: NOT RUNNING (journalctl -u attache says why)');
  } else {
    lines.push(`Gateway: running since ${status.startedAt ?? '?'}`);
    lines.push(`Backlog: ${status.backlog.records} records${status.cache.full ? ' (cache FULL)' : ''}`);
    const w = status.lastWindow;
    lines.push(`Last window: ${w ? `${w.outcome} at ${w.closedAt}, ${w.records} records` : 'none yet'}`);
    lines.push('', 'Devices:');
    for (const a of status.adapters) {
      const error = a.lastError ? `  last error: ${a.lastError.message}` : '';
      lines.push(`  ${a.deviceId}  ${a.state} since ${a.since}  stored ${a.stored}${error}`);
    }
    if (status.adapters.length === 0) lines.push('  none configured');
  }
  lines.push('', 'Addresses:', ...addresses(facts.interfaces).map((a) => `  ${a}`));
  lines.push('', ...technicianLines(facts));
  return lines;
}

function technicianLines(facts: ConsoleFacts): string[] {
  const page = facts.config.technician;
  if (!page) return ['Technician page: off (add a "technician" section to the config to turn it on)'];
  const urls = resolveListen(page.listen, facts.interfaces)
    .filter((a) => a.family === 4)
    .map((a) => `http://${hostHeader(a, page.port)}/`);
  return [
    `Technician page: plug a laptop into ${page.listen.join(' or ')} and open`,
    ...(urls.length > 0 ? urls.map((u) => `  ${u}`) : ['  (no address yet: is the cable plugged in?)']),
    `Box secret: ${facts.secret ?? '(not made yet: the gateway makes it when it starts)'}`,
  ];
}
