import type {
  Alarm,
  AlarmDraft,
  CodedObservation,
  CodeMapping,
  DeviceReading,
  Observation,
} from '@attache/core';
import { FreeTextDeidentifier } from './deidentify.js';
import { mdcReferenceId } from './mdc-terms.js';
import { isUcum } from './ucum.js';
import { toUcum } from './units.js';

/** The `codes` and `units` maps of a device whose protocol codes its own observations. */
export interface CodeMaps {
  codes: Record<string, CodeMapping>;
  units: Record<string, string>;
}

/**
 * Maps a reading's coded observations, notes and alarms. `scrub` is the de-identification step, or
 * undefined when the device's config keeps no free text: then comments, notes, free-text values and
 * alarm texts are left out.
 */
export class CodedMapper {
  readonly #maps: CodeMaps;
  readonly #scrub: FreeTextDeidentifier | undefined;

  constructor(maps: CodeMaps, reading: DeviceReading, freeText: boolean) {
    this.#maps = maps;
    if (freeText) {
      const known = [...(reading.people ?? [])];
      if (reading.patientId !== undefined) known.push(reading.patientId);
      if (reading.specimenId !== undefined) known.push(reading.specimenId);
      this.#scrub = new FreeTextDeidentifier(known);
    }
  }

  /** The observation, or undefined for a free-text value the config does not keep. */
  observation(o: CodedObservation): Observation | undefined {
    if (o.freeText === true && this.#scrub === undefined) return undefined;
    const { codes, units } = this.#maps;
    const mapping = Object.hasOwn(codes, o.code) ? codes[o.code] : undefined;
    const mdc = mapping === undefined ? o.mdc : mapping.mdc;
    const system = mapping?.system ?? o.system;
    const value = o.freeText === true && typeof o.value === 'string' ? this.#text(o.value) : o.value;
    const unit = mapping?.unit ?? toUcum(o.unit, units);
    const observation: Observation = {
      code: mapping?.code ?? mdcCode(o.code, system, mdc),
      system,
      value,
      unit: isUcum(unit) ? unit : null,
      status: o.status,
    };
    // Not UCUM and no map says what it is: kept as the device's, never passed off as UCUM.
    if (observation.unit === null) observation.deviceUnit = printable(o.unit);
    if (mdc !== undefined) observation.mdc = mdc;
    if (o.deviceCode !== undefined) observation.deviceCode = o.deviceCode;
    if (o.source !== undefined) observation.source = o.source;
    if (o.observedAt !== undefined) observation.observedAt = o.observedAt;
    if (o.referenceRange !== undefined) observation.referenceRange = o.referenceRange;
    if (o.abnormalFlags !== undefined && o.abnormalFlags.length > 0)
      observation.abnormalFlags = o.abnormalFlags;
    if (o.path !== undefined) observation.path = o.path;
    const comments = this.texts(o.comments);
    if (comments !== undefined) observation.comments = comments;
    return observation;
  }

  /** De-identified texts, or undefined when free text is off or there is none. */
  texts(texts: string[] | undefined): string[] | undefined {
    if (this.#scrub === undefined || texts === undefined) return undefined;
    const kept = texts.map((t) => this.#text(t)).filter((t) => t !== '');
    return kept.length > 0 ? kept : undefined;
  }

  alarm(draft: AlarmDraft): Alarm {
    const { parameter, text, ...rest } = draft;
    const alarm: Alarm = { ...rest, code: mdcCode(draft.code, draft.system, draft.mdc) };
    const mapped = parameter === undefined ? undefined : this.observation(parameter);
    if (mapped !== undefined) alarm.parameter = mapped;
    if (text !== undefined && this.#scrub !== undefined) {
      const kept = this.#text(text);
      if (kept !== '') alarm.text = kept;
    }
    return alarm;
  }

  #text(text: string): string {
    return (this.#scrub as FreeTextDeidentifier).clean(text).trim();
  }
}

/**
 * One code per quantity: an MDC code sent as a number or a vendor form (Philips MDIL) becomes its
 * reference id when the gateway knows it, else the decimal MDC code; other codes stay as sent.
 */
export function mdcCode(code: string, system: Observation['system'], mdc: number | undefined): string {
  if (system !== 'MDC' || mdc === undefined || code.startsWith('MDC_')) return code;
  return mdcReferenceId(mdc) ?? String(mdc);
}

/** The device's unit as stored: control characters replaced by U+FFFD, at most 32 characters. */
function printable(unit: string): string {
  let out = '';
  for (const ch of unit.trim().slice(0, 32)) {
    const c = ch.codePointAt(0) ?? 0;
    out += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? '\ufffd' : ch;
  }
  return out;
}
