import type {
  DeviceConfig,
  DeviceReading,
  KvLineFormat,
  Logger,
  Observation,
  PatientTokenizer,
  RecordDraft,
  RegexLineFormat,
} from '@attache/core';
import { GatewayError, nullLogger } from '@attache/core';
import { CodedMapper, type CodeMaps } from './coded.js';
import { FreeTextDeidentifier } from './deidentify.js';
import { isoTime } from './iso-time.js';
import type { ClockSource } from './system-clock.js';
import { hasQuestionableBits, mapValue } from './values.js';

/** Formats whose readings are key/value fields mapped by an allow-list. */
type FieldFormat = KvLineFormat | RegexLineFormat;

/** An identifier as sent, or undefined when empty or dashes (the device has none assigned). */
function identifier(value: string | undefined): string | undefined {
  return value === undefined || /^[-\s]*$/.test(value) ? undefined : value;
}

function fieldFormat(device: DeviceConfig): FieldFormat | undefined {
  if (device.adapter === 'modbus') return undefined;
  const { format } = device;
  return format.kind === 'kv-line' || format.kind === 'regex-line' ? format : undefined;
}

function codeMaps(device: DeviceConfig): CodeMaps {
  if (device.adapter !== 'modbus' && 'codes' in device.format) {
    return { codes: device.format.codes, units: device.format.units };
  }
  return { codes: {}, units: {} };
}

/** Whether the device's config keeps free text (ASTM `comments`, HL7, MEDIBUS and IntelliVue `freeText`); off by default. */
function keepsFreeText(device: DeviceConfig): boolean {
  if (device.adapter === 'modbus') return false;
  const { format } = device;
  if (format.kind === 'astm') return format.comments;
  return 'freeText' in format && format.freeText;
}

/** Options of {@link ReadingNormalizer}. */
export interface ReadingNormalizerOptions {
  /** The `gatewayId` of every record (the AWS IoT thing name). */
  gatewayId: string;
  /** The configured devices, with the schema's defaults applied; readings are matched by `deviceId`. */
  devices: DeviceConfig[];
  /** Replaces a patient identifier by its token. */
  tokenizer: PatientTokenizer;
  /** Gives each record's clock provenance. */
  clock: ClockSource;
  /** Default `nullLogger`. */
  logger?: Logger;
}

/** How many device and unit pairs are reported as not UCUM, at most, over the gateway's run. */
const maxUnitsReported = 256;
/** What a unit's spelling may look like to be logged. */
const unitLike = /^[A-Za-z0-9%/^.*()[\]{}_' -]{1,16}$/;

function malformed(message: string): GatewayError {
  return new GatewayError('ATTACHE_MALFORMED', message);
}

/**
 * Turns device readings into record drafts: allow-listed fields only, codes and units from the
 * device's config, patient identifiers tokenized, clock provenance attached.
 */
export class ReadingNormalizer {
  readonly #gatewayId: string;
  readonly #devices: Map<string, DeviceConfig>;
  readonly #tokenizer: PatientTokenizer;
  readonly #clock: ClockSource;
  readonly #log: Logger;
  /** Device and unit pairs already reported as not UCUM (bounded: a device cannot fill memory). */
  readonly #unitsReported = new Set<string>();

  constructor(options: ReadingNormalizerOptions) {
    this.#gatewayId = options.gatewayId;
    this.#devices = new Map(options.devices.map((device) => [device.id, device]));
    this.#tokenizer = options.tokenizer;
    this.#clock = options.clock;
    this.#log = (options.logger ?? nullLogger).child({ module: 'normalizer' });
  }

  /**
   * Resolves with the reading's record draft. Rejects with a GatewayError `ATTACHE_MALFORMED` for an
   * unknown device, fewer than `format.minFields` allow-listed fields, an allow-listed key sent twice,
   * or a value that does not fit its field's type; the message names the device and key, never a value.
   */
  async normalize(reading: DeviceReading): Promise<RecordDraft> {
    const device = this.#devices.get(reading.deviceId);
    if (device === undefined) throw malformed(`unknown device ${reading.deviceId}`);
    const format = fieldFormat(device);
    let observations: Observation[];
    let coded: CodedMapper | undefined;
    if (reading.observations !== undefined) {
      coded = new CodedMapper(codeMaps(device), reading, keepsFreeText(device));
      observations = reading.observations.flatMap((o) => coded?.observation(o) ?? []);
      this.#reportUnits(device.id, observations);
    } else if (format !== undefined) observations = this.#fields(device.id, format, reading);
    else throw malformed(`device ${device.id} sent a reading without observations`);
    const patientId = identifier(reading.patientId) ?? (format && this.#patientId(format, reading));
    const specimenId = identifier(reading.specimenId);
    const flags = format?.kind === 'kv-line' ? this.#flags(format, reading.markers) : [];
    const draft: RecordDraft = {
      gatewayId: this.#gatewayId,
      deviceId: device.id,
      adapter: reading.adapter,
      protocol: reading.protocol,
      capturedAt: isoTime(reading.receivedAt),
      clock: this.#clock.provenance(reading.monotonicMs),
      observations,
    };
    if (reading.deviceTime !== undefined) draft.deviceTime = reading.deviceTime;
    if (patientId !== undefined) draft.patient = { token: await this.#tokenizer.token(patientId) };
    if (specimenId !== undefined) {
      // A separate namespace: a specimen id that equals some patient's id must not share its token.
      draft.specimen = { token: await this.#tokenizer.token(`specimen:${specimenId}`) };
    }
    if (reading.instrument !== undefined) draft.instrument = reading.instrument;
    if (reading.event !== undefined) draft.event = reading.event;
    const notes = coded?.texts(reading.notes);
    if (notes !== undefined) draft.notes = notes;
    if (coded !== undefined && reading.alarms !== undefined && reading.alarms.length > 0)
      draft.alarms = reading.alarms.map((a) => (coded as CodedMapper).alarm(a));
    if (flags.length > 0) draft.flags = flags;
    if (device.rawFrames) draft.raw = reading.raw.toString('base64');
    this.#log.trace({ deviceId: device.id, observations: observations.length }, 'reading normalized');
    return draft;
  }

  /**
   * Says once per device and unit that a unit is not UCUM and is kept as the device spelled it, so the
   * technician can map it in the device's `units`. The unit is logged only when it looks like a unit
   * (short, no long run of digits): a unit field is device text and could carry an identifier.
   */
  #reportUnits(deviceId: string, observations: Observation[]): void {
    for (const { unit, deviceUnit, code } of observations) {
      if (unit !== null || deviceUnit === undefined || deviceUnit === '') continue;
      const key = `${deviceId}\0${deviceUnit}`;
      if (this.#unitsReported.has(key) || this.#unitsReported.size >= maxUnitsReported) continue;
      this.#unitsReported.add(key);
      const shown = unitLike.test(deviceUnit) && !/\d{5}/.test(deviceUnit);
      this.#log.warn(
        shown ? { deviceId, code, unit: deviceUnit } : { deviceId, code, unitLength: deviceUnit.length },
        "a unit that is not UCUM is kept as the device's (deviceUnit, unit null): map it under the device's units to convert it",
      );
    }
  }

  #fields(deviceId: string, format: FieldFormat, reading: DeviceReading): Observation[] {
    const { fields, patientIdField, minFields } = format;
    const seen = new Set<string>();
    const observations: Observation[] = [];
    const statusWords: boolean[] = [];
    let flagged = false;
    for (const field of reading.fields) {
      // Own keys only: a device sending `constructor=1` must not reach Object.prototype.
      const mapping = Object.hasOwn(fields, field.name) ? fields[field.name] : undefined;
      if (mapping === undefined || field.name === patientIdField) continue;
      const what = `device ${deviceId} field ${field.name}`;
      if (seen.has(field.name)) throw malformed(`${what} sent twice`);
      seen.add(field.name);
      const { value, status } = mapValue(field.value, mapping.type, what);
      observations.push({
        code: mapping.code,
        system: mapping.system,
        ...(mapping.mdc === undefined ? {} : { mdc: mapping.mdc }),
        // A `text` field is free text the config chose to keep: it passes the de-identification step.
        value:
          mapping.type === 'text' && typeof value === 'string' ? this.#clean(format, reading, value) : value,
        unit: mapping.unit,
        status,
        source: field.name,
      });
      const statusWord = mapping.questionableWhenNonZero || mapping.questionableMask !== undefined;
      statusWords.push(statusWord);
      flagged ||= statusWord && hasQuestionableBits(value, mapping.questionableMask);
    }
    if (observations.length < minFields) {
      throw malformed(`device ${deviceId} sent ${observations.length} known fields, fewer than ${minFields}`);
    }
    if (flagged) {
      observations.forEach((observation, i) => {
        if (!statusWords[i] && observation.status === 'valid') observation.status = 'questionable';
      });
    }
    return observations;
  }

  #clean(format: FieldFormat, reading: DeviceReading, text: string): string {
    const patientId = this.#patientId(format, reading);
    return new FreeTextDeidentifier(patientId === undefined ? [] : [patientId]).clean(text);
  }

  #patientId(format: FieldFormat, reading: DeviceReading): string | undefined {
    if (format.patientIdField === undefined) return undefined;
    return identifier(reading.fields.find((f) => f.name === format.patientIdField)?.value);
  }

  #flags(format: KvLineFormat, markers: string[]): string[] {
    const flags: string[] = [];
    for (const marker of markers) {
      const flag = Object.hasOwn(format.flags, marker) ? format.flags[marker] : undefined;
      if (flag !== undefined && !flags.includes(flag)) flags.push(flag);
    }
    return flags;
  }
}
