#!/usr/bin/env node
// prune-prebuilds.mjs NODE_MODULES OS CPU: deletes every native binary that is not for OS-CPU
// (glibc) and the directories that leaves empty; aws-crt alone ships 39 MB for 7 platforms.
import { readdirSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isTargetBinary, nativeModules } from './native-modules.mjs';

/** Writes a line to stdout (a command-line tool: its output is the report). */
const say = (line) => process.stdout.write(`${line}\n`);
/** Writes a line to stderr. */
const complain = (line) => process.stderr.write(`${line}\n`);

const [nodeModules, os, cpu] = process.argv.slice(2);
if (!nodeModules || !os || !cpu) {
  complain('usage: prune-prebuilds.mjs NODE_MODULES OS CPU');
  process.exit(2);
}
let removed = 0;
for (const mod of nativeModules(nodeModules)) {
  for (const binary of mod.binaries) {
    if (isTargetBinary(binary, os, cpu)) continue;
    const path = join(mod.dir, binary);
    rmSync(path);
    removed++;
    let dir = dirname(path);
    while (dir !== mod.dir && readdirSync(dir).length === 0) {
      rmdirSync(dir);
      dir = dirname(dir);
    }
  }
}
say(`    pruned ${removed} native binaries not built for ${os}-${cpu}`);
