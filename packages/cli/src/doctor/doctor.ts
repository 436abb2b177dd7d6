import { userInfo } from 'node:os';
import { type AttacheConfig, isGatewayError } from '@attache/core';
import { configAdvice, controlRequest, gatewayPaths, loadConfig } from '@attache/gateway/client';
import { currentOrNextSlot, parseSlot, probeTls } from '@attache/uplink/policy';
import { type CheckResult, fail, ok, warn } from './check.js';
import { checkFiles, lookUpUser, type ServiceUser } from './files.js';
import { checkPorts } from './ports.js';
import { selfTest } from './self-test.js';
import { checkCertificate, checkClock, checkDisk } from './system.js';

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  configPath: string;
  /** The user the service runs as; default `attache`, or the current user when there is none. */
  user?: string;
  /** true: check the endpoint now; false: never; undefined: when a window is allowed now. */
  network?: boolean;
  now?: number;
}

/** May the box connect now? Only schedules restrict it: outside every slot, no. */
export function windowAllowed(config: AttacheConfig, now: number): boolean {
  const window = config.uplink?.window;
  if (!window) return false;
  const anyTime = window.everySeconds > 0 || window.alwaysConnected || window.onNetworkUp || window.button;
  if (anyTime || window.schedules.length === 0) return true;
  const slot = currentOrNextSlot(window.schedules.map(parseSlot), now);
  return slot !== null && slot.startMs <= now;
}

async function serviceUser(name: string | undefined): Promise<ServiceUser> {
  const found = await lookUpUser(name ?? 'attache');
  if (found) return found;
  const self = userInfo().username;
  return (
    (await lookUpUser(self)) ?? {
      name: self,
      uid: process.getuid?.() ?? 0,
      gids: process.getgroups?.() ?? [],
    }
  );
}

async function checkEndpoint(
  config: AttacheConfig,
  options: DoctorOptions,
  now: number,
): Promise<CheckResult> {
  const uplink = config.uplink;
  if (!uplink) return ok('endpoint', 'no uplink configured');
  if (options.network === false) return ok('endpoint', 'not checked (--no-network)');
  if (options.network === undefined && !windowAllowed(config, now)) {
    return ok('endpoint', 'not checked: outside the window schedules (--network checks it now)');
  }
  try {
    const probe = await probeTls(uplink, 10_000);
    return ok(
      'endpoint',
      `${uplink.endpoint}:${uplink.port} answers with TLS 1.2+, its certificate valid until ${new Date(probe.notAfterMs).toISOString()}`,
    );
  } catch (err) {
    const reason = isGatewayError(err) ? err.message : String(err);
    return fail(
      'endpoint',
      `${uplink.endpoint}:${uplink.port}: ${reason}`,
      'check the network, the firewall upstream, uplink.endpoint and uplink.caFile',
    );
  }
}

/** Runs every check, in order; never throws for what it finds. */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const now = options.now ?? Date.now();
  let config: AttacheConfig;
  try {
    config = await loadConfig(options.configPath);
  } catch (err) {
    const issues = isGatewayError(err, 'ATTACHE_CONFIG_INVALID') ? err.issues : [];
    const first = issues
      .slice(0, 3)
      .map((i) => `${i.path || '/'} ${i.message}`)
      .join('; ');
    const detail = issues.length > 0 ? `${issues.length} problem(s): ${first}` : 'cannot be read';
    return [
      fail(
        'config',
        `${options.configPath}: ${detail}`,
        `attache config validate --config ${options.configPath} lists every problem`,
      ),
      ...selfTest(),
    ];
  }
  const results: CheckResult[] = [
    ok(
      'config',
      `${options.configPath} is valid: gateway ${config.gateway.id}, ${config.devices.length} devices`,
    ),
  ];
  for (const advice of configAdvice(config))
    results.push(warn('config', `${advice.path}: ${advice.message}`, 'see the message'));
  const running = await controlRequest(gatewayPaths(config).socket, 'status', 3000).then(
    () => true,
    () => false,
  );
  results.push(
    running
      ? ok('gateway', 'running (its control socket answers)')
      : warn(
          'gateway',
          'not running',
          'systemctl start attache (journalctl -u attache -p warning says why it stopped)',
        ),
  );
  results.push(...(await checkFiles(config, options.configPath, await serviceUser(options.user))));
  results.push(...(await checkCertificate(config, now)));
  results.push(await checkClock(config, now));
  results.push(...(await checkPorts(config, running)));
  results.push(await checkDisk(config));
  results.push(await checkEndpoint(config, options, now));
  results.push(...selfTest());
  return results;
}
