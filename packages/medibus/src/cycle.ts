import type { AlarmDraft, CodedObservation, DeviceReading, InstrumentIdentity } from '@attache/core';
import { type Block, parseAlarms, parseTexts, splitBlocks } from './blocks.js';
import { hexCode, measurement } from './codes.js';
import { Command, type MedibusMessage } from './frame.js';

/** What one poll cycle collected from the replies. */
export interface CycleData {
  observations: CodedObservation[];
  /** Settings and alarm limits by key (`setting:01`, `low:7D`, `high:7D`), when asked. */
  settings?: Record<string, string>;
  alarms?: AlarmDraft[];
  texts?: Block[];
  /** Reply bytes, for `raw`. */
  raw: Buffer[];
}

/** Takes one reply into the cycle; returns a reason when the reply's data is malformed. */
export function collect(cycle: CycleData, reply: MedibusMessage): string | undefined {
  const { command, data } = reply;
  if (command === Command.measurements || command === Command.measurementsCp2) {
    const blocks = splitBlocks(data, 6);
    if (blocks === undefined) return 'measured data not in 6-character blocks';
    const page = command === Command.measurements ? 1 : 2;
    for (const b of blocks) cycle.observations.push(measurement(page, b.code, b.text));
  } else if (
    command === Command.settings ||
    command === Command.lowLimits ||
    command === Command.highLimits
  ) {
    const settings = command === Command.settings;
    const blocks = splitBlocks(data, settings ? 7 : 6);
    if (blocks === undefined) return 'settings not in fixed-width blocks';
    const prefix = settings ? 'setting' : command === Command.lowLimits ? 'low' : 'high';
    cycle.settings ??= {};
    for (const b of blocks) cycle.settings[`${prefix}:${hexCode(b.code)}`] = b.text.trim();
  } else if (command === Command.alarms) {
    const alarms = parseAlarms(data);
    if (alarms === undefined) return 'alarms not in 15-character blocks';
    cycle.alarms = alarms;
  } else if (command === Command.text) {
    const texts = parseTexts(data);
    if (texts === undefined) return 'text messages malformed';
    cycle.texts = texts;
  }
  cycle.raw.push(data);
  return undefined;
}

/** A reading's frame: everything but what the cycle adds. */
export type ReadingBase = Pick<DeviceReading, 'deviceId' | 'receivedAt' | 'monotonicMs'> & {
  instrument?: InstrumentIdentity;
};

function reading(base: ReadingBase, raw: Buffer, rest: Partial<DeviceReading>): DeviceReading {
  return {
    ...base,
    adapter: 'rs232',
    protocol: 'medibus',
    fields: [],
    markers: [],
    raw,
    observations: [],
    ...rest,
  };
}

/** What the device reported last and was stored, to send events only on a change. */
export interface Stored {
  settings?: string;
  alarms?: string;
  texts?: string;
}

/** One reading to store, and what to remember once it is stored. */
export interface Outgoing {
  reading: DeviceReading;
  remember?: (stored: Stored) => void;
}

/**
 * The cycle's readings: the measured values (every cycle), then the settings, the alarms and the
 * text messages as events when they differ from what was last stored.
 */
export function readings(base: ReadingBase, cycle: CycleData, stored: Stored): Outgoing[] {
  const raw = Buffer.concat(cycle.raw);
  const out: Outgoing[] = [];
  if (cycle.observations.length > 0)
    out.push({ reading: reading(base, raw, { observations: cycle.observations }) });
  if (cycle.settings !== undefined) {
    const key = JSON.stringify(cycle.settings);
    if (key !== stored.settings) {
      const detail = cycle.settings;
      out.push({
        reading: reading(base, raw, { event: { type: 'medibus.settings', detail } }),
        remember: (s) => {
          s.settings = key;
        },
      });
    }
  }
  if (cycle.alarms !== undefined) {
    const key = cycle.alarms.map((a) => `${a.code}/${a.priority}`).join(',');
    if (key !== stored.alarms) {
      const active = cycle.alarms.length;
      out.push({
        reading: reading(base, raw, {
          event: { type: 'alarm', detail: { active } },
          ...(active > 0 ? { alarms: cycle.alarms } : {}),
        }),
        remember: (s) => {
          s.alarms = key;
        },
      });
    }
  }
  if (cycle.texts !== undefined) {
    const key = cycle.texts.map((t) => hexCode(t.code)).join(',');
    if (key !== stored.texts) {
      const notes = cycle.texts.map((t) => t.text).filter((t) => t !== '');
      out.push({
        reading: reading(base, raw, {
          event: { type: 'medibus.text', detail: { codes: key } },
          ...(notes.length > 0 ? { notes } : {}),
        }),
        remember: (s) => {
          s.texts = key;
        },
      });
    }
  }
  return out;
}
