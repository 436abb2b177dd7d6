// The two ajv runtime helpers the generated validators (generated/validators.ts) call, as plain ESM
// so that the validators run in a browser and in a Lambda without ajv. Same behaviour as
// ajv/dist/runtime/ucs2length and ajv-formats' full `date-time` format (RFC 3339, time zone required).

/** Length of a string in Unicode code points (what JSON Schema's minLength/maxLength count). */
export function ucs2length(str: string): number {
  let length = 0;
  let pos = 0;
  while (pos < str.length) {
    length++;
    const value = str.charCodeAt(pos++);
    if (value >= 0xd800 && value <= 0xdbff && pos < str.length && (str.charCodeAt(pos) & 0xfc00) === 0xdc00)
      pos++;
  }
  return length;
}

const DATE = /^(\d\d\d\d)-(\d\d)-(\d\d)$/;
const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const TIME = /^(\d\d):(\d\d):(\d\d(?:\.\d+)?)(z|([+-])(\d\d)(?::?(\d\d))?)?$/i;

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function validDate(str: string): boolean {
  const m = DATE.exec(str);
  if (!m) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  return (
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= (month === 2 && isLeapYear(year) ? 29 : (DAYS[month] as number))
  );
}

function validTime(str: string): boolean {
  const m = TIME.exec(str);
  if (!m?.[4]) return false;
  const hr = Number(m[1]);
  const min = Number(m[2]);
  const sec = Number(m[3]);
  const sign = m[5] === '-' ? -1 : 1;
  const tzH = Number(m[6] ?? 0);
  const tzM = Number(m[7] ?? 0);
  if (tzH > 23 || tzM > 59) return false;
  if (hr <= 23 && min <= 59 && sec < 60) return true;
  // A leap second is valid only at 23:59:60 UTC.
  const utcMin = min - tzM * sign;
  const utcHr = hr - tzH * sign - (utcMin < 0 ? 1 : 0);
  return (utcHr === 23 || utcHr === -1) && (utcMin === 59 || utcMin === -1) && sec < 61;
}

/** JSON Schema `format: date-time` (RFC 3339 §5.6). */
export const dateTime = {
  validate(str: string): boolean {
    const parts = str.split(/t|\s/i);
    return parts.length === 2 && validDate(parts[0] as string) && validTime(parts[1] as string);
  },
};
