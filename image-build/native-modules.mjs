// Finds the native modules of a node_modules tree and their prebuilt binaries per platform.
// Shared by prune-prebuilds.mjs (image build) and check-prebuilds.mjs (image build and CI).
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';

function walk(dir, onFile) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, onFile);
    else if (entry.isFile()) onFile(path);
  }
}

/** Package directories under a node_modules tree (scoped and nested ones included). */
function packageDirs(nodeModules) {
  const dirs = [];
  for (const entry of readdirSync(nodeModules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const path = join(nodeModules, entry.name);
    if (entry.name.startsWith('@')) {
      for (const scoped of readdirSync(path, { withFileTypes: true })) {
        if (scoped.isDirectory()) dirs.push(join(path, scoped.name));
      }
    } else {
      dirs.push(path);
    }
  }
  return dirs.flatMap((dir) => {
    const nested = join(dir, 'node_modules');
    return existsDir(nested) ? [dir, ...packageDirs(nested)] : [dir];
  });
}

function existsDir(path) {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * True when a binary is built for `os`-`cpu` with glibc: it sits in a directory named `os-cpu`
 * (prebuildify: prebuilds/linux-arm64/) or `os-cpu-glibc` (aws-crt: dist/bin/linux-arm64-glibc/),
 * and is not the musl variant.
 */
export function isTargetBinary(path, os, cpu) {
  const dir = basename(dirname(path));
  const target = `${os}-${cpu}`;
  return (dir === target || dir === `${target}-glibc`) && !basename(path).includes('.musl.');
}

/**
 * Every native module of the tree: packages with a binding.gyp, a prebuilds/ directory or a .node
 * file (outside their own node_modules), each with its .node binaries (paths relative to the package).
 */
export function nativeModules(nodeModules) {
  const found = [];
  for (const dir of packageDirs(nodeModules)) {
    const binaries = [];
    const scan = (path) => {
      if (path.endsWith('.node')) binaries.push(relative(dir, path));
    };
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules') continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, scan);
      else scan(path);
    }
    const gyp = existsDir(join(dir, 'prebuilds')) || readdirSync(dir).includes('binding.gyp');
    if (binaries.length > 0 || gyp) {
      found.push({ name: relative(nodeModules, dir).split(sep).join('/'), dir, binaries });
    }
  }
  return found;
}
