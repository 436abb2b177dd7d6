// Builds the shipped release of the gateway from the compiled workspaces (run `npm run build`
// first): `node scripts/bundle.mjs OUT [--modules NODE_MODULES]`.
//
// Node spends most of a short command's start resolving, reading and compiling a few hundred small
// files (bench/README.md, "Command start"); esbuild puts them into a few ES modules, split so that
// what a command imports lazily is still loaded only when it runs. The tree OUT is laid out as a
// release (image-build/stage-app.sh adds its marker, software updates ship such a tree):
//
//   package.json                        the release's version
//   packages/cli/package.json           (CommonJS: the ES modules are .mjs)
//   packages/cli/dist/bin.js            `attache` (every unit and /usr/local/bin/attache start it by this path):
//                                       a small CommonJS script, which spares a command the ES module loader
//   packages/cli/dist/cli.cjs           the whole CLI as one CommonJS script, for V8's code cache (below)
//   packages/cli/dist/cli-<group>.cjs   the same with one command group only (config, status, modbus)
//   packages/cli/dist/cli.mjs           the CLI as ES modules (`attache run`, and any command without a cache)
//   packages/cli/dist/window-worker.mjs the window process (forked by path from the gateway)
//   packages/cli/dist/code-cache-seed.mjs  a cache with one record for `attache --write-code-cache`'s `status` run
//   packages/cli/dist/*.cjs             pino's worker threads (started by path: pino/docs/bundling.md)
//   packages/cli/dist/*-<hash>.mjs      the shared and lazily imported parts
//   packages/cli/generated/*.cjs        @attache/core's validators, one per schema, required at first use
//   packages/cli/assets/, certs/        files the code reads beside itself (the technician page, Amazon's root CAs)
//   packages/cli/THIRD-PARTY-LICENSES.txt
//   node_modules/                       only the native modules and what they require, as npm installed them
//
// A short command starts from cli.cjs, or `config`, `status` and `modbus` from their group's bundle
// (a smaller cache to deserialize), with V8's code cache of it (packages/cli/src/compiled-start.ts):
// V8 neither parses nor compiles what the cache holds, and one script costs none of the ES module
// loader's per-module work. The caches (`cli.cjs.<profile>.cache`) are made for the Node that runs
// them, on the box (`attache --write-code-cache`, image-build/README.md), never here; bin.js carries
// the SHA-256 of each bundle, so that a cache made from another bundle is never used. They also hold core's
// validators (required from the bundle, so that the cache holds their code too). Without a usable
// cache, and for `attache run` and `console`, bin.js imports the ES modules (cli.mjs) as before.
//
// The native modules' binaries stay outside the bundle: node-gyp-build and aws-crt find them from
// their own package directory (the files that load them are required from node_modules; in the
// CommonJS bundles, classic-level's loader and node-gyp-build are bundled and pointed at that
// directory). Every `new URL('…', import.meta.url)` in the output must name a file
// of the tree, or the build fails.

import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Writes a line to stdout (a build tool: its output is the report). */
const say = (line) => process.stdout.write(`${line}\n`);

/** Packages with a native binary, shipped as installed with what they require. */
export const nativePackages = ['classic-level', '@serialport/bindings-cpp', 'aws-crt'];
/**
 * The files of native packages that load their binary from their own directory (node-gyp-build):
 * kept in node_modules and required by path from the chunks, while the rest of the package's
 * JavaScript is bundled (for classic-level ~30 small files, abstract-level's and its helpers, that
 * every command opening the cache resolved and compiled one by one: bench/README.md, "Command start").
 * The CommonJS bundles carry classic-level's instead ({@link bundledLevelBinding}). aws-crt finds its
 * binary its own way and stays out of the bundle as a whole.
 */
const binaryLoaders = ['classic-level/binding.js', '@serialport/bindings-cpp/dist/serialport-bindings.js'];
const externalPackages = ['aws-crt'];

/** `attache`, a CommonJS script that starts cli.cjs or imports cli.mjs. */
const binEntry = 'packages/cli/dist/bin.js';
/** The ES modules: the CLI that bin.js imports, the window process the gateway forks by path. */
const esmEntries = {
  cli: 'packages/cli/dist/cli.js',
  'code-cache-seed': 'packages/cli/dist/code-cache-seed.js',
  'window-worker': 'packages/gateway/dist/window-worker.js',
};
/** The CLI as one CommonJS script (cli.cjs). */
const cliEntry = esmEntries.cli;
const pinoWorkers = {
  'thread-stream-worker': 'thread-stream/lib/worker.js',
  'pino-worker': 'pino/lib/worker.js',
  'pino-file': 'pino/file.js',
  'pino-pretty': 'pino-pretty/index.js',
};
/**
 * @attache/core's generated validators (CommonJS), which its validate.ts requires at first use by a
 * path relative to itself (`../generated/`): bundled one by one with ajv's runtime helpers to where
 * that path points from the chunks.
 */
const lazyValidators = 'packages/core/generated';
/** Files the code names relative to itself, copied to where the bundle's chunks find them. */
const besideCode = [
  ['packages/technician/assets', 'packages/cli/assets'],
  ['packages/uplink/certs', 'packages/cli/certs'],
];

/**
 * modbus-serial's index requires its serial port and serial server modules, and they require
 * serialport (with its native bindings) at their top: ~12 ms of every `attache modbus read`, over
 * TCP too. In the bundle, modbus-serial's `require('serialport')` gets a stand-in whose SerialPort
 * requires serialport the first time a port is made or listed (or any other property is read).
 */
const lazySerialport = {
  name: 'lazy-serialport',
  setup(b) {
    const modbusSerial = join(root, 'node_modules/modbus-serial');
    b.onResolve({ filter: /^serialport$/ }, (args) =>
      args.importer.startsWith(`${modbusSerial}/`)
        ? { path: 'serialport', namespace: 'lazy-serialport' }
        : undefined,
    );
    b.onLoad({ filter: /^serialport$/, namespace: 'lazy-serialport' }, () => ({
      resolveDir: modbusSerial,
      loader: 'js',
      contents: [
        'let serialport;',
        "const load = () => (serialport ??= require('serialport')).SerialPort;",
        'exports.SerialPort = new Proxy(function SerialPort() {}, {',
        '  construct: (_, args) => new (load())(...args),',
        '  get: (_, key) => load()[key],',
        '});',
      ].join('\n'),
    }));
  },
};

/**
 * Node's built-in modules that a short command seldom runs but that the modules on its path import
 * at their top (core's durable writes import node:crypto and node:fs/promises, the uplink's hooks
 * node:child_process, yargs node:assert): each costs its compile and run at every start (node:crypto
 * alone ~8 M instructions; bench/README.md, "Command start"). In cli.cjs each is a stand-in with one
 * getter per export (the names this Node's module has) that requires the module the first time an
 * export is read; esbuild's code reads an import's export where it is used, so a command that never
 * calls one never loads its module. The modules that every command loads anyway (fs, path, url,
 * util, events, stream and net, tty for stdout) are required as they are.
 */
export const lazyBuiltins = [
  'assert',
  'child_process',
  'crypto',
  'dgram',
  'dns/promises',
  'fs/promises',
  'http',
  'https',
  'os',
  'perf_hooks',
  'querystring',
  'stream/promises',
  'v8',
  'worker_threads',
];

/**
 * Exports of a lazy built-in module served by a module every command loads anyway, until the module
 * itself is loaded: the commands read their config with node:fs/promises' readFile and look at the
 * data directory with its stat, and node:fs's callback functions, promisified, give the same results
 * and the same errors (test/release-bundle.test.ts) without loading node:fs/promises and what it
 * requires (its FileHandle, directory, watcher and readline modules: ~5 M instructions).
 */
const servedMeanwhile = {
  'fs/promises': {
    readFile: "require('node:util').promisify(require('node:fs').readFile)",
    stat: "require('node:util').promisify(require('node:fs').stat)",
  },
};

/** The stand-in's source for built-in module `name` (lazyBuiltins): one getter per export of this Node's module. */
export function lazyBuiltinSource(name) {
  const keys = Object.keys(createRequire(import.meta.url)(`node:${name}`)).filter((k) => k !== 'default');
  const meanwhile = Object.entries(servedMeanwhile[name] ?? {});
  return [
    'let loaded;',
    `const load = () => (loaded ??= require(${JSON.stringify(`node:${name}`)}));`,
    `for (const key of ${JSON.stringify(keys)})`,
    '  Object.defineProperty(exports, key, { enumerable: true, configurable: true, get: () => load()[key] });',
    // A path (not a FileHandle): served by the function given, while the module is not loaded.
    ...meanwhile.flatMap(([key, impl]) => [
      `let ${key}Meanwhile;`,
      `const ${key}ByPath = (path, ...rest) => typeof path === 'string' || path instanceof URL || Buffer.isBuffer(path)`,
      `  ? (${key}Meanwhile ??= ${impl})(path, ...rest) : load().${key}(path, ...rest);`,
      `Object.defineProperty(exports, ${JSON.stringify(key)}, { enumerable: true, get: () => loaded === undefined ? ${key}ByPath : loaded.${key} });`,
    ]),
  ].join('\n');
}

const lazyBuiltinModules = {
  name: 'lazy-builtins',
  setup(b) {
    const names = new Set(lazyBuiltins);
    b.onResolve({ filter: /^(node:)?[a-z0-9_/]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (!names.has(name)) return undefined;
      return args.namespace === 'lazy-builtin'
        ? { path: args.path, external: true }
        : { path: name, namespace: 'lazy-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      contents: lazyBuiltinSource(args.path),
      loader: 'js',
    }));
  },
};

/**
 * A profile's bundle (compiled-start.ts, `bundleNames`) holds only the command group of its name:
 * cli.js's loader of every other group becomes one that rejects. compiled-start.ts starts a
 * profile's bundle only for a command line whose first word is that group's name, for which cli.ts
 * loads that group alone (help included), so the others are never loaded from it.
 */
const onlyGroup = (keep) => ({
  name: 'only-group',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/]cli[\\/]dist[\\/]cli\.js$/ }, (args) => {
      const line = /^( +)(\w+): async \(\) => \(await import\('\.\/commands\/(\w+)\.js'\)\)\.\w+,$/gm;
      const code = readFileSync(args.path, 'utf8');
      const groups = [...code.matchAll(line)].map((m) => m[2]);
      if (!groups.includes(keep)) throw new Error(`${args.path} has no group ${keep}: update bundle.mjs`);
      const contents = code.replace(line, (all, indent, group) =>
        group === keep
          ? all
          : `${indent}${group}: async () => { throw new Error('the ${group} commands are not in this bundle'); },`,
      );
      return { contents, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
});

/** Requires of a {@link binaryLoaders} file become requires of the shipped file, relative to the chunks. */
const externalBinaryLoaders = {
  name: 'external-binary-loaders',
  setup(b) {
    const loaders = new Map(binaryLoaders.map((f) => [join(root, 'node_modules', f), f]));
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const path = resolve(args.resolveDir, args.path);
      const loader = loaders.get(path) ?? loaders.get(`${path}.js`);
      // From packages/cli/dist/ to the release's node_modules/.
      return loader === undefined ? undefined : { path: `../../../node_modules/${loader}`, external: true };
    });
  },
};

/**
 * In the CommonJS bundles (those V8's code cache holds), classic-level's binding.js is bundled with
 * node-gyp-build, pointed at the shipped package's directory: required by path from node_modules,
 * the two were compiled from source at every command that opens the cache, with their module
 * lookups (~9 M instructions of `attache status` with no gateway running; bench/README.md, "Command
 * start"). node-gyp-build still picks the binary for this machine at run time, from the same files.
 */
const bundledLevelBinding = {
  name: 'bundled-level-binding',
  setup(b) {
    const file = join(root, 'node_modules', 'classic-level/binding.js');
    b.onResolve({ filter: /^\.\/binding(\.js)?$/ }, (args) =>
      resolve(args.resolveDir, 'binding.js') === file ? { path: file } : undefined,
    );
    b.onLoad({ filter: /[\\/]classic-level[\\/]binding\.js$/ }, () => ({
      // From packages/cli/dist/ (the bundle's __dirname) to the release's node_modules/.
      // The binary is opened as require() opens a .node file, without its module lookups.
      contents: [
        "const dir = require('node:path').join(__dirname, '../../../node_modules/classic-level');",
        'const binary = { exports: {} };',
        "process.dlopen(binary, require('node-gyp-build').resolve(dir));",
        'module.exports = binary.exports;',
      ].join('\n'),
      loader: 'js',
      resolveDir: join(root, 'node_modules', 'classic-level'),
    }));
  },
};

/**
 * In cli.cjs, core's validate.js requires its validators from the bundle, not by path from
 * `../generated/`: the code cache then holds the compiled validators too. The config's is taken
 * like the others there: a short command has no idle time in which to let it go (validate.ts,
 * `releasable`), and compiled from its file it would miss the code cache.
 */
const bundledValidators = {
  name: 'bundled-validators',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/]core[\\/]dist[\\/]validate\.js$/ }, (args) => {
      const code = readFileSync(args.path, 'utf8');
      const line = 'const requireHere = createRequire(import.meta.url);';
      if (!code.includes(line)) throw new Error(`${args.path} no longer has "${line}": update bundle.mjs`);
      const table = readdirSync(join(root, lazyValidators))
        .filter((f) => f.endsWith('.cjs'))
        .map((f) => `${JSON.stringify(f)}: () => require(${JSON.stringify(join(root, lazyValidators, f))})`);
      const bundled = `const requireHere = (path) => ({ ${table.join(', ')} })[path.slice(path.lastIndexOf('/') + 1)]();`;
      const config = 'const configValidator = releasable(';
      if (!code.includes(config))
        throw new Error(`${args.path} no longer has "${config}": update bundle.mjs`);
      const contents = code.replace(line, bundled).replace(config, 'const configValidator = lazy(');
      return { contents, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

/**
 * yargs looks for a package.json up from the directory above its own `node_modules`, or from the
 * working directory when it has none (bundled, it has none): where there is none up from there, it
 * catches an AssertionError whose stack V8 formats, at every command; in cli.cjs that makes V8 find
 * the line ends of the whole 2 MB script (~27 M instructions, 10 % of `attache config validate`).
 * Bundled, it looks up from the bundle's file instead, and finds the release's package.json.
 */
const yargsFromBundle = {
  name: 'yargs-from-bundle',
  setup(b) {
    b.onLoad({ filter: /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, (args) => {
      const code = readFileSync(args.path, 'utf8');
      const line = "const mainFilename = __dirname.substring(0, __dirname.lastIndexOf('node_modules'));";
      if (!code.includes(line)) throw new Error(`${args.path} no longer has "${line}": update bundle.mjs`);
      // Its assert shim is read at its top, which would load node:assert (lazyBuiltins) at every
      // command: the module is required only when an assertion fails, the same AssertionError then.
      const assert = '  assert: {\n    notStrictEqual,\n    strictEqual\n  },';
      if (!code.includes(assert))
        throw new Error(`${args.path} no longer has its assert shim: update bundle.mjs`);
      const lazyAssert = [
        '  assert: {',
        '    notStrictEqual: (a, b, message) => { if (Object.is(a, b)) notStrictEqual(a, b, message); },',
        '    strictEqual: (a, b, message) => { if (!Object.is(a, b)) strictEqual(a, b, message); },',
        '  },',
      ].join('\n');
      return {
        contents: code.replace(line, 'const mainFilename = __dirname;').replace(assert, lazyAssert),
        loader: 'js',
        resolveDir: dirname(args.path),
      };
    });
  },
};

/**
 * After starting a command's handler, yargs lays out that command's whole help text and keeps it,
 * to print should the handler's promise reject (~10 M instructions, 6 % of `attache config
 * validate`; bench/README.md, "Command start"). Every handler of this CLI ends in `.catch(fail)`,
 * which prints the error and exits (packages/cli/test/handlers.test.ts checks it), so that text was
 * never printed: the release does not lay it out.
 */
const yargsNoHelpCache = {
  name: 'yargs-no-help-cache',
  setup(b) {
    b.onLoad({ filter: /[\\/]yargs[\\/]build[\\/]lib[\\/]usage\.js$/ }, (args) => {
      const code = readFileSync(args.path, 'utf8');
      const line = '        cachedHelpMessage = this.help();';
      if (!code.includes(line))
        throw new Error(`${args.path} no longer has "${line.trim()}": update bundle.mjs`);
      return { contents: code.replace(line, ''), loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

/** The ES modules are .mjs: the gateway forks the window process's by that name. */
const windowWorkerMjs = {
  name: 'window-worker-mjs',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/]gateway[\\/]dist[\\/]window-child\.js$/ }, (args) => {
      const code = readFileSync(args.path, 'utf8');
      const url = "new URL('./window-worker.js', import.meta.url)";
      if (!code.includes(url)) throw new Error(`${args.path} no longer has "${url}": update bundle.mjs`);
      const contents = code.replace(url, "new URL('./window-worker.mjs', import.meta.url)");
      return { contents, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

/** bin.js imports the ES modules' CLI, cli.mjs beside it, and the code cache writer's seed. */
const cliModules = {
  name: 'cli-modules',
  setup(b) {
    b.onResolve({ filter: /^\.\/(cli|code-cache-seed)\.js$/ }, (args) => ({
      path: args.path.replace(/\.js$/, '.mjs'),
      external: true,
    }));
  },
};

/** pino's worker files by absolute path from `url`, the output file (pino/docs/bundling.md). */
const pinoOverrides = (url) =>
  `globalThis.__bundlerPathsOverrides ??= Object.fromEntries(${JSON.stringify(
    Object.keys(pinoWorkers).map((name) => [name === 'pino-file' ? 'pino/file' : name, `./${name}.cjs`]),
  )}.map(([k, f]) => [k, __attachePath(new URL(f, ${url}))]));`;

// cli.cjs: strict mode, as the ES modules it is made of (and their bundled CommonJS dependencies,
// strict inside the ES module chunks too); `import.meta.url` is the file's own URL (it sits beside
// the chunks, so every relative URL names the same file as from them).
const cjsBanner = [
  "'use strict';",
  "const __attacheUrl = require('node:url').pathToFileURL(__filename).href;",
  "const { fileURLToPath: __attachePath } = require('node:url');",
  pinoOverrides('__attacheUrl'),
].join('\n');

/**
 * esbuild writes ASCII only (its default charset) except in the comments it keeps: those become
 * ASCII too, so that compiled-start.ts reads the bundle as latin1 (no UTF-8 decoding at each start).
 */
function asciiOnly(file) {
  const code = readFileSync(file, 'utf8');
  writeFileSync(file, code.replace(/[\u0080-\uffff]/g, '?'));
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

// Each output module gets a `require` for the CommonJS code in it (builtins, the native packages),
// and pino's worker files by absolute path (pino/docs/bundling.md).
const banner = [
  "import { createRequire as __attacheRequire } from 'node:module';",
  "import { fileURLToPath as __attachePath } from 'node:url';",
  'const require = __attacheRequire(import.meta.url);',
  pinoOverrides('import.meta.url'),
].join('\n');

function parseArgs(argv) {
  const [out, ...rest] = argv;
  if (!out || out.startsWith('--')) throw new Error('usage: bundle.mjs OUT [--modules NODE_MODULES]');
  const at = rest.indexOf('--modules');
  return { out: resolve(out), modules: resolve(at >= 0 ? rest[at + 1] : join(root, 'node_modules')) };
}

/** The directory of package `name` as Node resolves it from `from` (a package directory) in `modules`. */
function resolvePackage(modules, from, name) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === dirname(modules) || dir === dirname(dir)) return undefined;
  }
}

/**
 * Copies `names` and every package they depend on (as installed in `modules`, nested copies
 * included) to `dest`; resolves how many packages. Throws when a required one is not installed.
 */
export function copyPackages(modules, names, dest) {
  const done = new Set();
  const pending = names.map((name) => {
    const dir = resolvePackage(modules, dirname(modules), name);
    if (!dir) throw new Error(`${name} is not installed in ${modules}`);
    return dir;
  });
  while (pending.length > 0) {
    const dir = pending.pop();
    if (done.has(dir)) continue;
    done.add(dir);
    cpSync(dir, join(dest, relative(modules, dir)), {
      recursive: true,
      filter: (src) => src === dir || relative(dir, src).split('/')[0] !== 'node_modules',
    });
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const deps = { ...pkg.dependencies, ...pkg.optionalDependencies };
    // Type declarations (@types/*) are never loaded at run time.
    for (const name of Object.keys(deps).filter((d) => !d.startsWith('@types/'))) {
      const found = resolvePackage(modules, dir, name);
      if (found) pending.push(found);
      else if (!(name in (pkg.optionalDependencies ?? {})))
        throw new Error(`${name}, a dependency of ${relative(modules, dir)}, is not installed`);
    }
  }
  return done.size;
}

function bytesUnder(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, name) => sum + bytesUnder(join(path, name)), 0);
}

/** Every `new URL('…', import.meta.url)` of the output must name a file or directory of the tree. */
export function checkRelativeFiles(dist) {
  const missing = [];
  for (const file of readdirSync(dist).filter((f) => /\.[cm]?js$/.test(f))) {
    const code = readFileSync(join(dist, file), 'utf8');
    for (const [, target] of code.matchAll(/new URL\(\s*["'`]([^"'`]+)["'`],\s*import\.meta\.url\s*\)/g)) {
      if (!existsSync(fileURLToPath(new URL(target, `file://${join(dist, file)}`))))
        missing.push(`${file}: ${target}`);
    }
  }
  if (missing.length > 0)
    throw new Error(`the bundle names files it does not ship:\n  ${missing.join('\n  ')}`);
}

/** The license texts of the bundled third-party packages (their code is in the bundle). */
function licenses(inputs) {
  const packages = new Set();
  for (const input of inputs) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (match) packages.add(match[1]);
  }
  return [...packages]
    .sort()
    .map((dir) => {
      const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
      const file = readdirSync(join(root, dir)).find((f) => /^licen[cs]e/i.test(f));
      const text = file ? readFileSync(join(root, dir, file), 'utf8').trim() : `License: ${pkg.license}`;
      return `${pkg.name} ${pkg.version}\n\n${text}\n`;
    })
    .join(`\n${'-'.repeat(72)}\n\n`);
}

async function main() {
  const { out, modules } = parseArgs(process.argv.slice(2));
  for (const entry of [...Object.values(esmEntries), binEntry]) {
    if (!existsSync(join(root, entry))) throw new Error(`${entry} is missing: run npm run build first`);
  }
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
  const dist = join(out, 'packages/cli/dist');
  rmSync(out, { recursive: true, force: true });
  const common = {
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    target: 'node20',
    outdir: dist,
    external: externalPackages,
    metafile: true,
    legalComments: 'none',
    // Without comments and indentation: V8 keeps every loaded module's source for the life of the
    // process, ~0.8-1.3 MB of an idle `attache run`'s RSS (bench/README.md, "Idle RSS"). Names are
    // kept (no renaming), so stack traces still name the functions; their positions are columns.
    minifyWhitespace: true,
    logLevel: 'warning',
  };
  const { bundleNames } = await import(pathToFileURL(join(root, 'packages/cli/dist/compiled-start.js')).href);
  /** cli.cjs (the whole CLI) and each profile's bundle (one command group). */
  const cjsBuild = (profile) =>
    build({
      ...common,
      entryPoints: { [bundleNames[profile].replace(/\.cjs$/, '')]: cliEntry },
      format: 'cjs',
      outExtension: { '.js': '.cjs' },
      define: { 'import.meta.url': '__attacheUrl' },
      banner: { js: cjsBanner },
      alias: { 'string-width': './packages/cli/dist/text-width.js' },
      plugins: [
        ...(profile === 'other' ? [] : [onlyGroup(profile)]),
        lazyBuiltinModules,
        lazySerialport,
        bundledLevelBinding,
        externalBinaryLoaders,
        bundledValidators,
        yargsFromBundle,
        yargsNoHelpCache,
        windowWorkerMjs,
      ],
    });
  const profileNames = Object.keys(bundleNames);
  const cjs = await Promise.all(profileNames.map(cjsBuild));
  const digests = Object.fromEntries(profileNames.map((p) => [p, asciiOnly(join(dist, bundleNames[p]))]));
  const bin = await build({
    ...common,
    entryPoints: { bin: binEntry },
    format: 'cjs',
    define: { __ATTACHE_CLI_DIGESTS__: JSON.stringify(digests), 'import.meta.url': '__attacheUrl' },
    banner: { js: "'use strict';\nconst __attacheUrl = require('node:url').pathToFileURL(__filename).href;" },
    plugins: [cliModules],
  });
  const app = await build({
    ...common,
    entryPoints: esmEntries,
    outExtension: { '.js': '.mjs' },
    format: 'esm',
    splitting: true,
    chunkNames: '[name]-[hash]',
    banner: { js: banner },
    alias: { 'string-width': './packages/cli/dist/text-width.js' },
    plugins: [lazySerialport, externalBinaryLoaders, yargsFromBundle, yargsNoHelpCache, windowWorkerMjs],
  });
  const workers = await build({
    ...common,
    entryPoints: Object.fromEntries(
      Object.entries(pinoWorkers).map(([name, file]) => [name, join(root, 'node_modules', file)]),
    ),
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
  });
  const validators = await build({
    ...common,
    entryPoints: Object.fromEntries(
      readdirSync(join(root, lazyValidators))
        .filter((f) => f.endsWith('.cjs'))
        .map((f) => [f.replace(/\.cjs$/, ''), join(root, lazyValidators, f)]),
    ),
    outdir: join(out, 'packages/cli/generated'),
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
  });
  chmodSync(join(dist, 'bin.js'), 0o755);
  for (const [from, to] of besideCode) cpSync(join(root, from), join(out, to), { recursive: true });
  writeFileSync(
    join(out, 'package.json'),
    `${JSON.stringify({ name: 'attache', version, private: true, type: 'module' }, null, 2)}\n`,
  );
  writeFileSync(
    join(out, 'packages/cli/package.json'),
    `${JSON.stringify({ name: '@attache/cli', version, private: true, type: 'commonjs', bin: { attache: './dist/bin.js' } }, null, 2)}\n`,
  );
  const inputs = [...cjs, bin, app, workers, validators].flatMap((r) => Object.keys(r.metafile.inputs));
  writeFileSync(join(out, 'packages/cli/THIRD-PARTY-LICENSES.txt'), licenses(inputs));
  checkRelativeFiles(dist);
  const count = copyPackages(modules, nativePackages, join(out, 'node_modules'));
  const missing = binaryLoaders.filter((f) => !existsSync(join(out, 'node_modules', f)));
  if (missing.length > 0) throw new Error(`the release lacks the binary loaders ${missing.join(', ')}`);
  const outputs = [...cjs, bin, app, workers, validators].flatMap((r) => Object.entries(r.metafile.outputs));
  const js = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
  say(`release ${version} in ${out}`);
  say(`  JavaScript: ${outputs.length} files, ${js} bytes (bundled from ${inputs.length} modules)`);
  say(`  node_modules: ${count} packages, ${bytesUnder(join(out, 'node_modules'))} bytes`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
