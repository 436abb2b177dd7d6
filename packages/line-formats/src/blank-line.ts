// Oximeters and monitors separate readings with empty lines (CR LF CR LF), and a device that ends
// its lines with CR LF on a port configured for LF leaves a lone CR: neither is a reading.
const blank = /^[\t\r\n ]*$/;

/**
 * True when a line (without its delimiter) holds nothing but spaces, tabs, CR or LF: every line
 * transport skips it before parsing, without counting it as a frame or as malformed.
 */
export function isBlankLine(line: string): boolean {
  return blank.test(line);
}
