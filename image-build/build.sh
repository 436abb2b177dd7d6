#!/usr/bin/env bash
# make image: builds the Attaché appliance image (Debian trixie arm64, Raspberry Pi 3/4/400/CM4/Zero 2 W).
#   image-build/build.sh [OUT_DIR]        (default image-build/out: the image, .zst and .sha256 only)
# Stages: check the host -> production app tree -> rootfs (mmdebstrap under qemu-user) -> partitions
# -> compress + sha256. Needs root (mmdebstrap --mode=root) and a binfmt handler for arm64.
# Environment: ATTACHE_MIRROR (default http://deb.debian.org/debian), ATTACHE_DEB_CACHE (default
# image-build/cache/debs), ATTACHE_IMAGE_WORK (default /var/tmp/attache-image-work: the rootfs, outside
# the repository, so that the repository's tools never walk into it), SOURCE_DATE_EPOCH (default: the
# commit time of HEAD).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

out=${1:-$here/out}
mirror=${ATTACHE_MIRROR:-http://deb.debian.org/debian}
debs=${ATTACHE_DEB_CACHE:-$here/cache/debs}
version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
work=${ATTACHE_IMAGE_WORK:-/var/tmp/attache-image-work}
image="$out/attache-$version-arm64.img"

stage "1/5 checking the host"
check_host
mkdir -p "$out" "$debs"
rm -rf "$work"
mkdir -p "$work"
info "version $version, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH, mirror $mirror, .deb cache $debs"

stage "2/5 production app tree (npm ci --omit=dev, linux-arm64 prebuilds only)"
"$here/stage-app.sh" "$repo" "$work/app"

stage "3/5 root file system (mmdebstrap trixie arm64 under qemu-user; about 10 min)"
"$here/rootfs.sh" "$work/rootfs" "$work/app" "$mirror" "$debs"

stage "4/5 partitions (FAT boot, ext4 root, ext4 data)"
"$here/assemble.sh" "$work/rootfs" "$image.tmp"
mv "$image.tmp" "$image"

stage "5/5 compress and checksum"
rm -f "$image.zst"
zstd -q -T0 -10 "$image" -o "$image.zst"
(cd "$out" && sha256sum "$(basename "$image.zst")" > "$(basename "$image.zst").sha256")
info "installed size: $(du -sh --apparent-size "$work/rootfs" | cut -f1) rootfs, image $(du -h --apparent-size "$image" | cut -f1)"
info "compressed: $(du -h "$image.zst" | cut -f1) $image.zst"
cat "$image.zst.sha256"
rm -rf "$work/app"
stage "done in $(elapsed)"
