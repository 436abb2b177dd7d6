/** Records end in CR; LF is tolerated, and empty records are dropped. */
const separator = /[\r\n]+/;

/**
 * The text of one ASTM message as its frames arrive, split into records frame by frame: each frame's
 * text is split once, so a message costs time linear in its length however many frames carry it
 * (re-splitting the whole message on every frame was quadratic: 78 s of CPU for 1 MB).
 */
export class MessageRecords {
  /** Complete records, in order. */
  #records: string[] = [];
  /** The pieces of the record still open (the text after the last CR); none is empty. */
  #open: string[] = [];
  #texts: string[] = [];
  #length = 0;

  /** Characters of message text so far. */
  get length(): number {
    return this.#length;
  }

  /** Adds the text of one accepted frame. */
  add(text: string): void {
    this.#texts.push(text);
    this.#length += text.length;
    apply(this.#records, this.#open, text);
  }

  /**
   * Whether the message would end with an L (terminator) record once `text` is added: its last
   * non-empty record starts with `L`. Costs the length of `text`.
   */
  endsWithTerminatorAfter(text: string): boolean {
    const parts = text.split(separator);
    for (let i = parts.length - 1; i >= 1; i--) {
      const part = parts[i] as string;
      if (part !== '') return part[0] === 'L';
    }
    const last = this.#open[0] ?? (parts[0] || this.#records.at(-1));
    return last?.[0] === 'L';
  }

  /** The message's text and records, with `text` (a final frame not added) appended. */
  contents(text = ''): { text: string; records: string[] } {
    const records = [...this.#records];
    const open = [...this.#open];
    apply(records, open, text);
    if (open.length > 0) records.push(open.join(''));
    return { text: this.#texts.join('') + text, records };
  }
}

/** Splits `text` onto `records` (complete) and `open` (the pieces of the record still open). */
function apply(records: string[], open: string[], text: string): void {
  if (text === '') return;
  const [first = '', ...rest] = text.split(separator);
  if (first !== '') open.push(first);
  const last = rest.pop();
  if (last === undefined) return;
  if (open.length > 0) records.push(open.join(''));
  open.length = 0;
  for (const record of rest) if (record !== '') records.push(record);
  if (last !== '') open.push(last);
}
