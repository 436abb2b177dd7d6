#!/usr/bin/env bash
# Stages the production tree of the app for /opt/attache:
#   stage-app.sh REPO DEST
# Copies the built workspaces (package.json + dist of every package but the devkit), installs the
# runtime dependencies with `npm ci --omit=dev --ignore-scripts` from the lockfile, keeps only the
# linux-arm64 native prebuilds (N-API, so an x86 host's install runs on the Pi) and checks that every
# native module still has one.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
repo=${1:?usage: stage-app.sh REPO DEST}
dest=${2:?usage: stage-app.sh REPO DEST}

rm -rf "$dest"
mkdir -p "$dest/packages"
cp "$repo/package.json" "$repo/package-lock.json" "$dest/"
for pkg in "$repo"/packages/*/; do
  name=$(basename "$pkg")
  [ -f "$pkg/dist/index.js" ] || [ -f "$pkg/dist/bin.js" ] || die "packages/$name is not built (run make build first)"
  mkdir -p "$dest/packages/$name"
  cp "$pkg/package.json" "$dest/packages/$name/"
  cp -r "$pkg/dist" "$dest/packages/$name/"
done

info "npm ci --omit=dev --ignore-scripts"
# --ignore-scripts: nothing compiles; node-gyp-build finds the shipped prebuild at run time.
(cd "$dest" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)

# The devkit (simulators, test PKI) is a workspace, so npm links it even with --omit=dev.
rm -rf "$dest/packages/devkit" "$dest/node_modules/@attache/devkit"
find "$dest/packages" \( -name '*.map' -o -name '*.d.ts' -o -name '*.tsbuildinfo' \) -delete
chmod +x "$dest/packages/cli/dist/bin.js"

before=$(du -sm "$dest/node_modules" | cut -f1)
node "$here/prune-prebuilds.mjs" "$dest/node_modules" linux arm64
node "$here/check-prebuilds.mjs" "$dest/node_modules" linux arm64
info "node_modules: ${before} MB before pruning, $(du -sm "$dest/node_modules" | cut -f1) MB after"
