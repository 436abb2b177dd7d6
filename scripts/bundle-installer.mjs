// Builds the root release installer of the appliance from the compiled workspaces (run `npm run
// build` first): `node scripts/bundle-installer.mjs OUT`. One self-contained ES module
// (packages/jobs/src/release-install-main.ts and the jobs package's verification code it imports,
// nothing loaded at run time but Node's own modules), which the image installs root's as
// /usr/local/lib/attache/attache-release-install.mjs, outside every release: root verifies and
// installs a release with the image's code, never with a release's (docs/security.md, "Root never
// runs the release's code").
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node scripts/bundle-installer.mjs OUT\n');
  process.exit(2);
}
const result = await build({
  entryPoints: [join(root, 'packages/jobs/dist/release-install-main.js')],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  banner: { js: '// attache-release-install: built by scripts/bundle-installer.mjs; see docs/security.md.' },
});
const inputs = Object.keys(result.metafile.inputs);
const external = Object.values(result.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
const foreign = external.filter((path) => !path.startsWith('node:'));
if (foreign.length > 0) {
  process.stderr.write(`the installer would load ${foreign.join(', ')} at run time\n`);
  process.exit(1);
}
process.stdout.write(
  `${out}: ${inputs.length} modules, imports only ${[...new Set(external)].sort().join(' ')}\n`,
);
