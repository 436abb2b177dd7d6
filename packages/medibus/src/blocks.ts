import type { AlarmDraft } from '@attache/core';
import { hexCode } from './codes.js';

/** One fixed-width block: a code (two hex digits) and its text. */
export interface Block {
  code: number;
  text: string;
}

/**
 * Splits reply data into `width`-character blocks of two hex digits and a value (measured data and
 * alarm limits: 6 characters; settings: 7). A trailing partial block or a code that is not hex makes
 * the whole reply malformed (returns undefined): a device that sends it is not speaking MEDIBUS.
 */
export function splitBlocks(data: Buffer, width: number): Block[] | undefined {
  if (data.length % width !== 0) return undefined;
  const text = data.toString('latin1');
  const blocks: Block[] = [];
  for (let i = 0; i < text.length; i += width) {
    const hex = text.slice(i, i + 2);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    blocks.push({ code: Number.parseInt(hex, 16), text: text.slice(i + 2, i + width) });
  }
  return blocks;
}

/** Width of one alarm: priority (1), code (2 hex digits), alarm phrase (12). */
const ALARM_WIDTH = 15;

/** The MEDIBUS priority scale (1 lowest … 31 highest) in the record's three levels. */
function priority(byte: number): AlarmDraft['priority'] {
  const n = byte - 0x30;
  if (n >= 16) return 'high';
  if (n >= 8) return 'medium';
  return n >= 1 ? 'low' : 'info';
}

/** Current alarms, or undefined when the reply does not split into alarm blocks. */
export function parseAlarms(data: Buffer): AlarmDraft[] | undefined {
  if (data.length % ALARM_WIDTH !== 0) return undefined;
  const alarms: AlarmDraft[] = [];
  for (let i = 0; i < data.length; i += ALARM_WIDTH) {
    const hex = data.toString('latin1', i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    const code = `MEDIBUS-${hexCode(Number.parseInt(hex, 16))}`;
    const text = data.toString('latin1', i + 3, i + ALARM_WIDTH).trim();
    alarms.push({
      code,
      system: 'LOCAL',
      origin: 'vendor',
      priority: priority(data[i] as number),
      deviceCode: { code: hex.toUpperCase(), system: 'MEDIBUS' },
      ...(text === '' ? {} : { text }),
    });
  }
  return alarms;
}

/** Text messages: code (2 hex digits), length (one character, `0` + n), the text, an optional ETX. */
export function parseTexts(data: Buffer): Block[] | undefined {
  const texts: Block[] = [];
  let i = 0;
  while (i < data.length) {
    const hex = data.toString('latin1', i, i + 2);
    const length = (data[i + 2] ?? 0) - 0x30;
    if (!/^[0-9A-Fa-f]{2}$/.test(hex) || length < 0 || i + 3 + length > data.length) return undefined;
    texts.push({
      code: Number.parseInt(hex, 16),
      text: data.toString('latin1', i + 3, i + 3 + length).trim(),
    });
    i += 3 + length;
    if (data[i] === 0x03) i++;
  }
  return texts;
}

/** The identification reply: `<id>'<name>'<version>`, control characters removed, at most 64 each. */
export function parseIdentity(data: Buffer): { name?: string; version?: string } {
  const text = data.toString('latin1').replace(/[^\x20-\x7e]/g, '');
  const match = /^[^']*'([^']*)'(.*)$/.exec(text);
  const name = (match?.[1] ?? text).trim().slice(0, 64);
  const version = (match?.[2] ?? '').replace(/'/g, '').trim().slice(0, 64);
  return { ...(name === '' ? {} : { name }), ...(version === '' ? {} : { version }) };
}
