#!/usr/bin/env node
// udev-lint.mjs FILE...: a strict syntax check of udev rules files, for hosts whose udevadm has no
// `verify` (it came with systemd 253; Debian 12 ships 252). Follows udev(7): one rule per line
// (backslash continues a line), comma-separated `KEY[{attr}] OP "value"` pairs, match keys only with
// == and !=, assignment keys only with = += -= :=, known keys and builtins, quoted values, GOTO
// targets that exist, SYMLINK names that are relative, valid MODE, and known $/% substitutions.
// Prints `file:line: problem` per error; exits 1 when there is any.
import { readFileSync } from 'node:fs';

/** Writes a line to stdout (a command-line tool: its output is the report). */
const say = (line) => process.stdout.write(`${line}\n`);
/** Writes a line to stderr. */
const complain = (line) => process.stderr.write(`${line}\n`);

const matchOps = new Set(['==', '!=']);
const assignOps = new Set(['=', '+=', '-=', ':=']);
// key -> [may match, may assign (or 'plain': only "="), attribute: 'required' | 'optional' | 'none']
const keys = {
  ACTION: [true, false, 'none'],
  DEVPATH: [true, false, 'none'],
  KERNEL: [true, false, 'none'],
  KERNELS: [true, false, 'none'],
  SUBSYSTEM: [true, false, 'none'],
  SUBSYSTEMS: [true, false, 'none'],
  DRIVER: [true, false, 'none'],
  DRIVERS: [true, false, 'none'],
  ATTRS: [true, false, 'required'],
  TAGS: [true, false, 'none'],
  CONST: [true, false, 'required'],
  TEST: [true, false, 'optional'],
  // IMPORT and PROGRAM run something and match on its success; udev(7) writes them with "=".
  PROGRAM: [true, 'plain', 'none'],
  RESULT: [true, false, 'none'],
  NAME: [true, true, 'none'],
  SYMLINK: [true, true, 'none'],
  TAG: [true, true, 'none'],
  ENV: [true, true, 'required'],
  ATTR: [true, true, 'required'],
  SYSCTL: [true, true, 'required'],
  OWNER: [false, true, 'none'],
  GROUP: [false, true, 'none'],
  MODE: [false, true, 'none'],
  SECLABEL: [false, true, 'required'],
  RUN: [false, true, 'optional'],
  LABEL: [false, true, 'none'],
  GOTO: [false, true, 'none'],
  IMPORT: [false, 'plain', 'required'],
  OPTIONS: [false, true, 'none'],
};
const importTypes = new Set(['program', 'builtin', 'file', 'db', 'cmdline', 'parent']);
const runTypes = new Set(['program', 'builtin']);
const builtins = new Set([
  'blkid',
  'btrfs',
  'hwdb',
  'input_id',
  'keyboard',
  'kmod',
  'net_id',
  'net_setup_link',
  'path_id',
  'uaccess',
  'usb_id',
]);
const dollar = new Set([
  'kernel',
  'number',
  'devpath',
  'id',
  'driver',
  'attr',
  'env',
  'major',
  'minor',
  'result',
  'parent',
  'name',
  'links',
  'root',
  'sys',
  'devnode',
]);
const percent = new Set(['k', 'n', 'p', 'b', 'd', 's', 'E', 'M', 'm', 'c', 'P', 'N', 'r', 'S', 'D', '%']);
const pairPattern = /^([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/;

function checkSubstitutions(raw, problems) {
  // $$ and %% are a literal $ and %.
  const value = raw.replace(/\$\$|%%/g, '');
  for (const m of value.matchAll(/\$(\w+)|\$\{|%(.)/g)) {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: udev text, not a template
    if (m[0] === '${') problems.push('"${" is not a udev substitution (use $env{NAME})');
    else if (m[1] !== undefined && !dollar.has(m[1])) problems.push(`unknown substitution $${m[1]}`);
    else if (m[2] !== undefined && !percent.has(m[2])) problems.push(`unknown substitution %${m[2]}`);
  }
  for (const m of value.matchAll(/\$(attr|env)(\{[^}]*\})?/g)) {
    if (!m[2] || m[2] === '{}') problems.push(`$${m[1]} needs a {name}`);
  }
}

function checkPair(key, attr, op, value, problems) {
  const spec = keys[key];
  if (!spec) return problems.push(`unknown key ${key}`);
  const [canMatch, canAssign, attrRule] = spec;
  if (matchOps.has(op) && !canMatch) problems.push(`${key} cannot be matched (${op})`);
  if (assignOps.has(op) && !canAssign) problems.push(`${key} cannot be assigned (${op})`);
  if (canAssign === 'plain' && op !== '=' && !matchOps.has(op)) problems.push(`${key} takes "=", not ${op}`);
  if (attrRule === 'required' && !attr) problems.push(`${key} needs {attribute}`);
  if (attrRule === 'none' && attr !== undefined) problems.push(`${key} takes no {attribute}`);
  if (key === 'IMPORT' && !importTypes.has(attr)) problems.push(`IMPORT{${attr}}: unknown type`);
  if (key === 'RUN' && attr !== undefined && !runTypes.has(attr)) problems.push(`RUN{${attr}}: unknown type`);
  if ((key === 'IMPORT' || key === 'RUN') && attr === 'builtin' && !builtins.has(value.split(/\s+/)[0])) {
    problems.push(`unknown builtin "${value}"`);
  }
  if (key === 'MODE' && !/^0?[0-7]{3,4}$/.test(value)) problems.push(`MODE "${value}" is not octal`);
  if (key === 'SYMLINK' && assignOps.has(op) && value.split(/\s+/).some((n) => n.startsWith('/'))) {
    problems.push('SYMLINK names are relative to /dev');
  }
  if ((key === 'LABEL' || key === 'GOTO') && !/^[\w.-]+$/.test(value))
    problems.push(`${key} "${value}" is not a label`);
  if (
    key === 'ACTION' &&
    !/^(add|remove|change|move|online|offline|bind|unbind)([|](add|remove|change|move|online|offline|bind|unbind))*$/.test(
      value,
    )
  ) {
    problems.push(`ACTION "${value}" is not an action`);
  }
  checkSubstitutions(value, problems);
}

/** Checks one rules file's text; returns `{ line, message }` problems. */
export function lintRules(text) {
  const problems = [];
  const labels = new Map();
  const gotos = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i];
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i];
    line = line.trim();
    if (line === '' || line.startsWith('#')) continue;
    const found = [];
    let rest = line;
    while (rest.length > 0) {
      const m = pairPattern.exec(rest);
      if (!m) {
        found.push(`cannot parse "${rest.slice(0, 40)}" (KEY OP "value" pairs separated by commas)`);
        break;
      }
      const [all, key, attr, op, value, comma] = m;
      checkPair(key, attr, op, value, found);
      if (key === 'LABEL') {
        if (labels.has(value)) found.push(`LABEL "${value}" defined twice`);
        labels.set(value, lineNo);
      }
      if (key === 'GOTO') gotos.push({ value, lineNo });
      rest = rest.slice(all.length).trim();
      if (comma === ',' && rest === '') found.push('trailing comma');
    }
    for (const message of found) problems.push({ line: lineNo, message });
  }
  for (const { value, lineNo } of gotos) {
    if (!labels.has(value)) problems.push({ line: lineNo, message: `GOTO "${value}" has no LABEL` });
  }
  return problems;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    complain('usage: udev-lint.mjs FILE...');
    process.exit(2);
  }
  let failed = false;
  for (const file of files) {
    for (const { line, message } of lintRules(readFileSync(file, 'utf8'))) {
      say(`${file}:${line}: ${message}`);
      failed = true;
    }
  }
  process.exit(failed ? 1 : 0);
}
