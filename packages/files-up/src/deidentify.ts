import { GatewayError } from '@attache/core';

/** Longest line de-identified; a longer line is cut there (the free-text rules bound their input too). */
const maxLineBytes = 4096;

/**
 * A text log (lines ending in LF, UTF-8 or ASCII) with `clean` applied to each line, as it streams:
 * names, identifiers, phone numbers, dates and e-mail addresses replaced by the free-text rules.
 * Line endings are kept. Rejects ATTACHE_MALFORMED at the first NUL byte: a file that is not text
 * cannot be de-identified and must not go up as it is.
 */
export async function* deidentifyTextLog(
  content: AsyncIterable<Uint8Array>,
  clean: (line: string) => string,
): AsyncIterable<Uint8Array> {
  let line: Buffer[] = [];
  let lineBytes = 0;
  const flush = (ending: string) => {
    const text = Buffer.concat(line).toString('utf8');
    line = [];
    lineBytes = 0;
    const cr = text.endsWith('\r');
    return Buffer.from(`${clean(cr ? text.slice(0, -1) : text)}${cr ? '\r' : ''}${ending}`, 'utf8');
  };
  for await (const chunk of content) {
    const bytes = Buffer.from(chunk);
    if (bytes.includes(0))
      throw new GatewayError('ATTACHE_MALFORMED', 'not a text log: it cannot be de-identified');
    const out: Buffer[] = [];
    let from = 0;
    while (from < bytes.length) {
      const lf = bytes.indexOf(0x0a, from);
      const to = lf === -1 ? bytes.length : lf;
      if (lineBytes < maxLineBytes) {
        const kept = bytes.subarray(from, Math.min(to, from + maxLineBytes - lineBytes));
        line.push(kept);
        lineBytes += kept.length;
      }
      if (lf === -1) break;
      out.push(flush('\n'));
      from = lf + 1;
    }
    if (out.length > 0) yield Buffer.concat(out);
  }
  if (lineBytes > 0) yield flush('');
}
