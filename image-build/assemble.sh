#!/usr/bin/env bash
# The disk image from the root file system, without loop devices or mounts (vfat cannot be mounted
# here, and there is no device-mapper): each partition is built as a file (mkfs.vfat + mcopy,
# mkfs.ext4 -d), the MBR is written with sfdisk, the partitions are copied in with dd.
#   assemble.sh ROOTFS IMAGE
# Layout: 4 MiB gap | RASPIFIRM FAT32 256 MiB | RASPIROOT ext4 | ATTACHEDATA ext4 512 MiB.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
rootfs=${1:?usage: assemble.sh ROOTFS IMAGE}
image=${2:?usage: assemble.sh ROOTFS IMAGE}

boot_mb=256 data_mb=512 gap_mb=4
# Root: the tree plus room for kernel updates and the journal, at least 1.5 GiB.
used_mb=$(du -sm --exclude=./boot/firmware "$rootfs" | cut -f1)
root_mb=$(((used_mb * 3 / 2 + 255) / 256 * 256))
[ "$root_mb" -ge 1536 ] || root_mb=1536
epoch=${SOURCE_DATE_EPOCH:-0}
# Fixed identifiers, so that the same input gives the same file systems (labels, not ids, are used
# to find them, so sharing them across boxes is harmless).
export E2FSPROGS_FAKE_TIME=$epoch
ext4_opts=(-q -F -t ext4 -E "root_owner=0:0,hash_seed=6a8b1f0c-7a51-4d8e-9f4e-5b0c1a2d3e4f")

tmp=$(mktemp -d "$(dirname "$image")/assemble.XXXXXX")
trap 'rm -rf "$tmp"; if [ -d "$tmp.firmware" ]; then mv "$tmp.firmware" "$rootfs/boot/firmware"; fi' EXIT

info "boot: FAT32 ${boot_mb} MiB from /boot/firmware ($(du -sh "$rootfs/boot/firmware" | cut -f1))"
mkfs.vfat -C -F 32 -n RASPIFIRM -i 41544348 --invariant "$tmp/boot.img" $((boot_mb * 1024)) >/dev/null
mcopy -s -p -m -i "$tmp/boot.img" "$rootfs"/boot/firmware/* ::/

info "root: ext4 ${root_mb} MiB (${used_mb} MiB used)"
# The firmware lives on the FAT partition only: move it aside while the root file system is made.
mv "$rootfs/boot/firmware" "$tmp.firmware"
mkdir "$rootfs/boot/firmware"
mkfs.ext4 "${ext4_opts[@]}" -L RASPIROOT -U 3a1c6f0e-1b7d-4c2a-9e55-0d4f7b2a8c11 -d "$rootfs" "$tmp/root.img" "${root_mb}M"
rmdir "$rootfs/boot/firmware"
mv "$tmp.firmware" "$rootfs/boot/firmware"

info "data: ext4 ${data_mb} MiB for /var/lib/attache"
mkfs.ext4 "${ext4_opts[@]}" -L ATTACHEDATA -U 7d2e9b44-5c3a-4f18-8a6b-2e9c0f1d3b77 -m 1 -d "$rootfs/var/lib/attache" \
  "$tmp/data.img" "${data_mb}M"

sectors() { echo $(($1 * 2048)); }
boot_start=$(sectors $gap_mb)
root_start=$((boot_start + $(sectors $boot_mb)))
data_start=$((root_start + $(sectors "$root_mb")))
total_mb=$((gap_mb + boot_mb + root_mb + data_mb))
rm -f "$image"
truncate -s "${total_mb}M" "$image"
sfdisk --quiet "$image" <<PARTS
label: dos
label-id: 0x41544348
unit: sectors
start=$boot_start, size=$(sectors $boot_mb), type=c, bootable
start=$root_start, size=$(sectors "$root_mb"), type=83
start=$data_start, size=$(sectors $data_mb), type=83
PARTS
for part in boot:$boot_start root:$root_start data:$data_start; do
  dd if="$tmp/${part%%:*}.img" of="$image" bs=512 seek="${part#*:}" conv=notrunc,sparse status=none
done
info "image: ${total_mb} MiB, $(du -sh "$image" | cut -f1) allocated"
