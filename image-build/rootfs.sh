#!/usr/bin/env bash
# The root file system: mmdebstrap of Debian trixie arm64 (root mode, qemu-user through binfmt),
# customized by customize.sh.   rootfs.sh ROOTFS APP_TREE MIRROR DEB_CACHE
# The .deb cache is synced in before and out after the install (mmdebstrap's documented recipe),
# so a rebuild downloads only what changed on the mirror.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
rootfs=${1:?usage: rootfs.sh ROOTFS APP MIRROR DEBS}
app=${2:?} mirror=${3:?} debs=${4:?}
security=${ATTACHE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# A minimal appliance: kernel + Pi firmware, systemd with networkd/resolved/timesyncd, Node from
# Debian, ssh (keys only) and the tools first boot uses (openssl checks certificates).
packages=(
  systemd systemd-sysv udev dbus systemd-timesyncd systemd-resolved fake-hwclock
  linux-image-arm64 raspi-firmware initramfs-tools zstd kmod
  nodejs ca-certificates openssl
  openssh-server nftables iproute2 netbase procps e2fsprogs dosfstools fdisk mtools
)

rm -rf "$rootfs"
mkdir -p "$debs"
info "$(find "$debs" -name "*.deb" | wc -l) .deb files in the cache"
# shellcheck disable=SC2016 # "$1" is expanded by mmdebstrap when it runs the hook
mmdebstrap --mode=root --arch=arm64 --variant=minbase \
  --components=main,non-free-firmware \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --aptopt='Acquire::Retries "3"' \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --skip=download/empty --skip=essential/unlink \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives "$1"/boot/firmware' \
  --setup-hook="sync-in $debs /var/cache/apt/archives/" \
  --customize-hook="sync-out /var/cache/apt/archives $debs" \
  --customize-hook="$here/customize.sh \"\$1\" $app" \
  trixie "$rootfs" \
  "deb $mirror trixie main non-free-firmware" \
  "deb $mirror trixie-updates main non-free-firmware" \
  "deb $security trixie-security main non-free-firmware"
info "rootfs: $(du -sh "$rootfs" | cut -f1); .deb cache: $(du -sh "$debs" | cut -f1)"
