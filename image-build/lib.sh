# shellcheck shell=bash
# Helpers shared by the image-build scripts: progress lines and the host check.

build_started=${build_started:-$(date +%s)}
export build_started

elapsed() {
  local s=$(($(date +%s) - build_started))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# One line per stage, with the time since the build started.
stage() { printf '\n==> [%s] %s\n' "$(elapsed)" "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
  printf 'image-build: %s\n' "$*" >&2
  exit 1
}

# Root, the tools of every stage, and a working arm64 binfmt handler; names what is missing.
check_host() {
  local missing=() tool pkg
  [ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap --mode=root chroots and sets file owners): sudo make image"
  for tool in mmdebstrap:mmdebstrap mkfs.vfat:dosfstools mcopy:mtools mkfs.ext4:e2fsprogs sfdisk:fdisk \
    zstd:zstd node:nodejs npm:npm arch-test:arch-test update-binfmts:binfmt-support qemu-aarch64-static:qemu-user-static; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    die "missing host tools; install them with: apt-get install --no-install-recommends ${missing[*]}"
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    info "registering the qemu-aarch64 binfmt handler (update-binfmts --enable qemu-aarch64)"
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
  if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    die "no arm64 binfmt handler: binfmt_misc must be mountable and qemu-user-static installed (update-binfmts --enable qemu-aarch64 failed)"
  fi
  pkg=$(arch-test arm64 2>&1 || true)
  [ "$pkg" = "arm64: ok" ] || die "arm64 binaries do not run under qemu-user: arch-test arm64 says: $pkg"
  info "root, tools and the arm64 binfmt handler (flags: $(sed -n 's/^flags: //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)) are ready"
}
