#!/usr/bin/env bash
# Stages the production tree of the app for /opt/attache:
#   stage-app.sh REPO DEST
# Lays it out as software updates expect it (packages/jobs ReleaseInstaller): the release in
# DEST/releases/<version> (marked complete by its .release.json), DEST/current -> releases/<version>,
# plus DEST/packages and DEST/package.json through `current`, for the paths that name the app
# directly (/usr/local/bin/attache). A software-update bundle is a tar.gz of such a release tree.
# Beside them, DEST/attache-release-install.mjs: the root release installer (scripts/bundle-installer.mjs),
# which customize.sh moves outside /opt/attache (root runs it, never a release's code).
# The release is the esbuild bundle of the built workspaces (scripts/bundle.mjs: the CLI, the window
# process and pino's workers, split into ES modules) plus only the native modules and what they
# require, taken from `npm ci --omit=dev --ignore-scripts` of the lockfile; it keeps only their
# linux-arm64 prebuilds (N-API, so an x86 host's install runs on the Pi) and checks that every native
# module still has one.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
repo=${1:?usage: stage-app.sh REPO DEST}
dest=${2:?usage: stage-app.sh REPO DEST}

version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
release=$dest/releases/$version
[ -f "$repo/packages/cli/dist/bin.js" ] || die "the workspaces are not built (run make build first)"

# The production install the native modules come from: the lockfile, nothing compiled (node-gyp-build
# finds the shipped prebuild at run time).
prod=$(mktemp -d)
trap 'rm -rf "$prod"' EXIT
cp "$repo/package.json" "$repo/package-lock.json" "$prod/"
for pkg in "$repo"/packages/*/; do
  mkdir -p "$prod/packages/$(basename "$pkg")"
  cp "$pkg/package.json" "$prod/packages/$(basename "$pkg")/"
done
info "npm ci --omit=dev --ignore-scripts"
(cd "$prod" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)

rm -rf "$dest"
mkdir -p "$dest/releases"
info "bundle (esbuild)"
node "$repo/scripts/bundle.mjs" "$release" --modules "$prod/node_modules" | sed 's/^/    /'

node "$repo/scripts/bundle-installer.mjs" "$dest/attache-release-install.mjs" | sed 's/^/    /'

before=$(du -sm "$release/node_modules" | cut -f1)
node "$here/prune-prebuilds.mjs" "$release/node_modules" linux arm64
node "$here/check-prebuilds.mjs" "$release/node_modules" linux arm64
info "node_modules: ${before} MB before pruning, $(du -sm "$release/node_modules" | cut -f1) MB after"

# Complete (ReleaseInstaller never replaces a release carrying it), then in use.
printf '{"version":"%s","installedAt":"image"}\n' "$version" > "$release/.release.json"
ln -s "releases/$version" "$dest/current"
ln -s current/packages "$dest/packages"
ln -s current/package.json "$dest/package.json"
