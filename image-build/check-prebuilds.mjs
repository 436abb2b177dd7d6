#!/usr/bin/env node
// check-prebuilds.mjs NODE_MODULES [OS CPU]: exits 1 unless every native module of the tree carries
// a prebuilt binary for OS-CPU (default linux arm64, glibc), and unless the modules the gateway
// cannot run without (classic-level, @serialport/bindings-cpp, aws-crt) are among them.
// Prints one line per native module: `ok name path` or `missing name`.
import { isTargetBinary, nativeModules } from './native-modules.mjs';

/** Writes a line to stdout (a command-line tool: its output is the report). */
const say = (line) => process.stdout.write(`${line}\n`);
/** Writes a line to stderr. */
const complain = (line) => process.stderr.write(`${line}\n`);

const [nodeModules, os = 'linux', cpu = 'arm64'] = process.argv.slice(2);
if (!nodeModules) {
  complain('usage: check-prebuilds.mjs NODE_MODULES [OS CPU]');
  process.exit(2);
}
const required = ['classic-level', '@serialport/bindings-cpp', 'aws-crt'];
const modules = nativeModules(nodeModules);
let failed = false;
for (const name of required) {
  if (!modules.some((m) => m.name === name || m.name.endsWith(`/node_modules/${name}`))) {
    say(`missing ${name} (not installed)`);
    failed = true;
  }
}
for (const mod of modules) {
  const binary = mod.binaries.find((b) => isTargetBinary(b, os, cpu));
  if (binary) {
    say(`ok ${mod.name} ${binary}`);
  } else {
    say(`missing ${mod.name}: no ${os}-${cpu} glibc prebuild`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
