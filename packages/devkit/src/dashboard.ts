// The stand-in dashboard of `make run`: one line per thing a dashboard engineer would show, from the
// messages the gateway publishes (telemetry batches, events, state).

interface BatchObservation {
  code: string;
  value: number | string | null;
  unit: string;
  status: string;
  source?: string;
}

interface BatchRecord {
  deviceId: string;
  seq: number;
  capturedAt: string;
  flags?: string[];
  observations: BatchObservation[];
}

function time(iso: string | undefined): string {
  return typeof iso === 'string' ? iso.slice(11, 19) : '--:--:--';
}

function observationText(o: BatchObservation): string {
  const name = o.source ?? o.code;
  const value = o.value === null ? '--' : String(o.value);
  const unit = o.unit === '1' ? '' : ` ${o.unit}`;
  const status = o.status === 'valid' ? '' : ` (${o.status})`;
  return `${name} ${value}${unit}${status}`;
}

/**
 * The lines of one telemetry batch: a header, then one line per record with its values (at most
 * `maxRecords`; the rest counted). A payload that is not a batch gives one line saying so.
 */
export function batchLines(payload: Buffer, maxRecords = 3): string[] {
  let batch: {
    firstSeq?: number;
    lastSeq?: number;
    count?: number;
    records?: BatchRecord[];
    recordsGzip?: string;
  };
  try {
    batch = JSON.parse(payload.toString('utf8'));
  } catch {
    return ['dashboard: a telemetry message that is not JSON'];
  }
  const lines = [`dashboard: batch seq ${batch.firstSeq}-${batch.lastSeq} (${batch.count} records)`];
  if (batch.recordsGzip !== undefined) return [...lines, 'dashboard:   (records gzip-compressed)'];
  const records = batch.records ?? [];
  for (const r of records.slice(0, maxRecords)) {
    const flags = r.flags && r.flags.length > 0 ? ` [${r.flags.join(', ')}]` : '';
    lines.push(
      `dashboard:   ${time(r.capturedAt)} ${r.deviceId} #${r.seq}: ${r.observations.map(observationText).join(', ')}${flags}`,
    );
  }
  if (records.length > maxRecords) lines.push(`dashboard:   … and ${records.length - maxRecords} more`);
  return lines;
}

/** One line for a gateway event: its type, and the device or figures it is about. */
export function eventLine(payload: Buffer): string {
  try {
    const event = JSON.parse(payload.toString('utf8')) as {
      type: string;
      at: string;
      detail: Record<string, unknown>;
    };
    const detail = Object.entries(event.detail)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    return `dashboard: event ${time(event.at)} ${event.type}${detail ? ` ${detail}` : ''}`;
  } catch {
    return 'dashboard: an event message that is not JSON';
  }
}

/** One line for the gateway's state message: backlog, last window, adapters. */
export function stateLine(payload: Buffer): string {
  try {
    const { state } = JSON.parse(payload.toString('utf8')) as {
      state: {
        backlog: { records: number };
        lastWindow: { outcome: string; endedBy?: string; records: number; errorCode?: string } | null;
        adapters: { deviceId: string; state: string; stored: number }[];
      };
    };
    const w = state.lastWindow;
    const last = w
      ? `${w.endedBy ?? w.outcome}, ${w.records} records${w.errorCode ? `, ${w.errorCode}` : ''}`
      : 'none';
    const adapters = state.adapters.map((a) => `${a.deviceId} ${a.state} (${a.stored} stored)`).join(', ');
    return `dashboard: state: backlog ${state.backlog.records} records; last window ${last}; ${adapters || 'no adapters'}`;
  } catch {
    return 'dashboard: a state message that is not JSON';
  }
}
