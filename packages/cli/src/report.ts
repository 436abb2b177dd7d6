import type { AdapterStatus, ConfigIssue, WindowResult } from '@attache/core';
import type { GatewayStatus } from '@attache/gateway/client';
import {
  type ClaimStatus,
  formatClaimStatus,
  formatProvisioning,
  type ProvisioningState,
} from './provisioning.js';

function age(iso: string | null, now: number): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** What the gateway records beyond core's WindowResult (see WindowRecord); absent in old results. */
type WindowDetails = WindowResult & {
  endedBy?: string;
  trigger?: string;
  events?: number;
  jobsError?: { code: string; message: string };
  hooks?: { pre?: { ok: boolean; timedOut: boolean }; post?: { ok: boolean; timedOut: boolean } };
};

function hookText(name: string, h: { ok: boolean; timedOut: boolean } | undefined): string[] {
  if (!h || h.ok) return [];
  return [`  ${name} ${h.timedOut ? 'timed out' : 'failed'}`];
}

/** One paragraph on a window's outcome, as `attache sync` prints it. */
export function formatWindow(w: WindowDetails): string {
  const seconds = ((Date.parse(w.closedAt) - Date.parse(w.openedAt)) / 1000).toFixed(1);
  const range = w.firstSeq === null ? '' : ` (seq ${w.firstSeq}–${w.lastSeq})`;
  const interrupted = w.endedBy === 'interrupted';
  const outcome = interrupted ? 'interrupted (the gateway was stopping; the rest goes next time)' : w.outcome;
  const ended = !interrupted && w.endedBy && w.endedBy !== w.outcome ? ` (${w.endedBy})` : '';
  const trigger = w.trigger ? ` [${w.trigger}]` : '';
  const events = w.events ? `, ${w.events} events` : '';
  const lines = [
    `window${trigger} ${outcome}${ended} after ${seconds} s: ${w.records} records in ${w.messages} messages, ${bytes(w.bytes)}${range}${events}`,
  ];
  if (w.error) lines.push(`  error ${w.error.code}: ${w.error.message}`);
  if (w.jobsError) lines.push(`  jobs ${w.jobsError.code}: ${w.jobsError.message}`);
  lines.push(...hookText('pre-hook', w.hooks?.pre), ...hookText('post-hook', w.hooks?.post));
  return lines.join('\n');
}

function formatAdapter(a: AdapterStatus, now: number): string {
  const err = a.lastError ? `, last error ${a.lastError.code}` : '';
  // Polled devices (MEDIBUS, IntelliVue) also count the requests they left unanswered.
  const unanswered = a.unanswered === undefined ? '' : `, ${a.unanswered} unanswered`;
  return `  ${a.deviceId} (${a.adapter}): ${a.state} for ${age(a.since, now)}; ${a.frames} frames, ${a.stored} stored, ${a.malformed} malformed, ${a.refused} refused${unanswered}${err}`;
}

/** The text form of `attache status` (with the appliance's provisioning state when there is one). */
export function formatStatus(
  s: GatewayStatus & { provisioning?: ProvisioningState; fleetProvisioning?: ClaimStatus },
  now = Date.now(),
): string {
  const b = s.backlog;
  const lines = [
    `gateway ${s.gatewayId}: ${s.running ? `running since ${s.startedAt}` : 'not running'}`,
    ...(s.provisioning ? formatProvisioning(s.provisioning, now) : []),
    ...(s.fleetProvisioning ? formatClaimStatus(s.fleetProvisioning) : []),
    `backlog: ${b.records} records, ${bytes(b.bytes)}, oldest ${age(b.oldestCapturedAt, now)}; next seq ${b.nextSeq}`,
    ...Object.entries(s.routes ?? {}).map(
      ([name, r]) =>
        `  route ${name}: ${r.records} records, ${bytes(r.bytes)}, oldest ${age(r.oldestCapturedAt, now)}`,
    ),
  ];
  const c = s.cache;
  if (c.full) lines.push('cache: FULL, new readings are refused (or the oldest dropped, per cache.whenFull)');
  if (c.dropped > 0) lines.push(`cache: ${c.dropped} records dropped by its bounds (never uploaded)`);
  if (c.quarantined > 0) {
    lines.push(
      `cache: ${c.quarantined} values quarantined: failed authentication (tampered or unknown key); never uploaded`,
    );
  }
  if (c.lastCompactionAt) lines.push(`cache: last compacted ${age(c.lastCompactionAt, now)} ago`);
  if (!s.uplink.configured) lines.push('uplink: not configured');
  else {
    const policies =
      s.uplink.policies ?? (s.uplink.everySeconds ? [`interval ${s.uplink.everySeconds} s`] : []);
    const named = policies
      .filter((p) => p !== 'manual')
      .map((p) => p.replace(/^interval (\d+ s)$/, 'every $1'));
    const when = named.length > 0 ? named.join(', ') : 'on demand';
    lines.push(`uplink: windows ${when}${s.uplink.windowOpen ? ', a window is open now' : ''}`);
  }
  lines.push(s.lastWindow ? `last ${formatWindow(s.lastWindow)}` : 'last window: none yet');
  if (s.files) {
    const f = s.files;
    lines.push(
      `files up: ${f.waiting} waiting (${f.waitingBytes} bytes); captured ${f.captured}, uploaded ${f.uploaded}, refused ${f.refused}, dropped ${f.dropped}, duplicates ${f.duplicates}`,
    );
  }
  if (s.running) {
    lines.push('adapters:');
    lines.push(...s.adapters.map((a) => formatAdapter(a, now)));
  }
  return lines.join('\n');
}

/** The lines printed for an invalid config. */
export function formatIssues(path: string, issues: ConfigIssue[]): string {
  return [`attache: config ${path} is invalid:`, ...issues.map((i) => `  ${i.path}: ${i.message}`)].join(
    '\n',
  );
}
