#!/usr/bin/env bash
# Stages the production tree of the app for /opt/attache:
#   stage-app.sh REPO DEST
# Lays it out as software updates expect it (packages/jobs ReleaseInstaller): the release in
# DEST/releases/<version> (marked complete by its .release.json), DEST/current -> releases/<version>,
# plus DEST/packages and DEST/package.json through `current`, for the paths that name the app
# directly (/usr/local/bin/attache). A software-update bundle is a tar.gz of such a release tree.
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

version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
release=$dest/releases/$version

rm -rf "$dest"
mkdir -p "$release/packages"
cp "$repo/package.json" "$repo/package-lock.json" "$release/"
for pkg in "$repo"/packages/*/; do
  name=$(basename "$pkg")
  [ -f "$pkg/dist/index.js" ] || [ -f "$pkg/dist/bin.js" ] || die "packages/$name is not built (run make build first)"
  mkdir -p "$release/packages/$name"
  cp "$pkg/package.json" "$release/packages/$name/"
  cp -r "$pkg/dist" "$release/packages/$name/"
  # Data files a package reads next to dist (the uplink's pinned Amazon root CAs).
  if [ -d "$pkg/certs" ]; then cp -r "$pkg/certs" "$release/packages/$name/"; fi
done

info "npm ci --omit=dev --ignore-scripts"
# --ignore-scripts: nothing compiles; node-gyp-build finds the shipped prebuild at run time.
(cd "$release" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)

# The devkit (simulators, test PKI) is a workspace, so npm links it even with --omit=dev.
rm -rf "$release/packages/devkit" "$release/node_modules/@attache/devkit"
find "$release/packages" \( -name '*.map' -o -name '*.d.ts' -o -name '*.tsbuildinfo' \) -delete
chmod +x "$release/packages/cli/dist/bin.js"

before=$(du -sm "$release/node_modules" | cut -f1)
node "$here/prune-prebuilds.mjs" "$release/node_modules" linux arm64
node "$here/check-prebuilds.mjs" "$release/node_modules" linux arm64
info "node_modules: ${before} MB before pruning, $(du -sm "$release/node_modules" | cut -f1) MB after"

# Complete (ReleaseInstaller never replaces a release carrying it), then in use.
printf '{"version":"%s","installedAt":"image"}\n' "$version" > "$release/.release.json"
ln -s "releases/$version" "$dest/current"
ln -s current/packages "$dest/packages"
ln -s current/package.json "$dest/package.json"
