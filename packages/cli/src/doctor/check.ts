/** How one doctor check came out. */
export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One line of `attache doctor`: what was checked, how it came out, and what to do about it. */
export interface CheckResult {
  /** What was checked, e.g. `config`, `file uplink.certFile`, `port spo2-bed1`. */
  check: string;
  status: CheckStatus;
  /** What was found. Never readings, patient data or key material. */
  detail: string;
  /** What to do (warn and fail). */
  action?: string;
}

export const ok = (check: string, detail: string): CheckResult => ({ check, status: 'ok', detail });
export const warn = (check: string, detail: string, action: string): CheckResult => ({
  check,
  status: 'warn',
  detail,
  action,
});
export const fail = (check: string, detail: string, action: string): CheckResult => ({
  check,
  status: 'fail',
  detail,
  action,
});

const rank: Record<CheckStatus, number> = { ok: 0, warn: 1, fail: 2 };

/** The exit status of a doctor run: 0 all OK, 1 a warning at worst, 2 a failure. */
export function exitStatus(results: readonly CheckResult[]): number {
  return Math.max(0, ...results.map((r) => rank[r.status]));
}

/** Text for a terminal: one line per check, its action indented under it, then a summary. */
export function formatResults(results: readonly CheckResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.status.toUpperCase().padEnd(4)}  ${r.check}: ${r.detail}`);
    if (r.action) lines.push(`      -> ${r.action}`);
  }
  const count = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  lines.push(`${results.length} checks: ${count('ok')} OK, ${count('warn')} WARN, ${count('fail')} FAIL`);
  return lines.join('\n');
}
