import type { AttacheConfig, ConfigIssue } from '@attache/core';

/** One daily slot in local time, in minutes after midnight. `end < start` crosses midnight. */
export interface DailySlot {
  text: string;
  start: number;
  end: number;
}

/** An occurrence of a slot: absolute times in ms since the epoch. */
export interface SlotOccurrence {
  slot: DailySlot;
  startMs: number;
  endMs: number;
}

const slotPattern = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/;

/** Parses `HH:MM-HH:MM`; throws a TypeError naming `text` when malformed or empty (start = end). */
export function parseSlot(text: string): DailySlot {
  const m = slotPattern.exec(text);
  if (!m) throw new TypeError(`"${text}" is not a daily slot (HH:MM-HH:MM)`);
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (start === end) throw new TypeError(`"${text}" is an empty slot`);
  return { text, start, end };
}

/**
 * The problems of `uplink.window.schedules` the schema cannot see: a slot that starts when it ends
 * (`08:00-08:00`) is empty. Returns them with their path in the config; throws nothing.
 */
export function checkSchedules(config: AttacheConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  (config.uplink?.window.schedules ?? []).forEach((text, i) => {
    try {
      parseSlot(text);
    } catch {
      issues.push({
        path: `/uplink/window/schedules/${i}`,
        message: 'not a daily slot HH:MM-HH:MM with an end other than its start',
      });
    }
  });
  return issues;
}

/** The local-time occurrence of `slot` that starts on the day of `dayMs` (local midnight + offset). */
function occurrenceOn(slot: DailySlot, dayMs: number): SlotOccurrence {
  const start = new Date(dayMs);
  start.setHours(Math.floor(slot.start / 60), slot.start % 60, 0, 0);
  const end = new Date(dayMs);
  if (slot.end < slot.start) end.setDate(end.getDate() + 1);
  end.setHours(Math.floor(slot.end / 60), slot.end % 60, 0, 0);
  return { slot, startMs: start.getTime(), endMs: end.getTime() };
}

/**
 * The slot occurrence in progress at `nowMs`, else the next one to start (local time, so it follows
 * the system's time zone and DST). Null only for an empty list.
 */
export function currentOrNextSlot(slots: DailySlot[], nowMs: number): SlotOccurrence | null {
  let best: SlotOccurrence | null = null;
  for (const slot of slots) {
    for (const dayOffset of [-1, 0, 1]) {
      const day = new Date(nowMs);
      day.setDate(day.getDate() + dayOffset);
      const occ = occurrenceOn(slot, day.getTime());
      if (occ.endMs <= nowMs) continue;
      const key = Math.max(occ.startMs, nowMs);
      if (best === null || key < Math.max(best.startMs, nowMs)) best = occ;
    }
  }
  return best;
}
