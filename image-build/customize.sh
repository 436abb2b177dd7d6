#!/usr/bin/env bash
# mmdebstrap customize hook (runs on the host, root mode): customize.sh ROOTFS APP_TREE
# Installs the overlay (units, first-boot script, configs), the udev rules and the app; creates the
# service user; enables the units; writes the Pi boot files; and removes everything that must be
# unique per box (machine id, ssh host keys), so that no box shares them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
root=${1:?usage: customize.sh ROOTFS APP}
app=${2:?usage: customize.sh ROOTFS APP}

info "overlay, udev rules, app"
tar -C "$here/overlay" --owner=0 --group=0 -cf - . | tar -C "$root" --no-same-owner -xf -
install -m 0644 "$here/../udev-rules/"*.rules "$root/etc/udev/rules.d/"
rm -rf "$root/opt/attache" "$root/usr/local/lib/attache/releases"
cp -r "$app" "$root/opt/attache"
# Releases live in /usr/local/lib/attache/releases (root's all the way from /), each linked from
# /opt/attache/releases: the image's own here, and every release a software update installs, by the
# root release installer (attache-release-install.mjs, the image's code, outside every release).
# So root may run the release `current` names (the technician's `sudo attache`, the code cache refresh).
version=$(basename "$(readlink "$root/opt/attache/current")")
mkdir -p "$root/usr/local/lib/attache/releases"
mv "$root/opt/attache/releases/$version" "$root/usr/local/lib/attache/releases/$version"
ln -s "/usr/local/lib/attache/releases/$version" "$root/opt/attache/releases/$version"
mv "$root/opt/attache/attache-release-install.mjs" "$root/usr/local/lib/attache/attache-release-install.mjs"
chown -R 0:0 "$root/opt/attache" "$root/usr/local/lib/attache"
chmod -R go-w "$root/opt/attache" "$root/usr/local/lib/attache"
ln -sfn /opt/attache/current/packages/cli/dist/bin.js "$root/usr/local/bin/attache"
install -m 0644 "$here/README.md" "$root/opt/attache/README.image.md"
mkdir -p "$root/etc/attache"
ln -sfn /var/lib/attache/config/config.json "$root/etc/attache/config.json"

info "V8 code cache of the CLI, by the image's Node (qemu-user), root's like the release"
# Short commands start from it (packages/cli/src/compiled-start.ts); without it they start as before.
# Made as on the box after a Node upgrade: the script checks first that the release is root's alone.
chroot "$root" /usr/local/lib/attache/attache-code-cache-refresh /opt/attache /usr/bin/node |
  sed 's/^/    /' || info "WARNING: no code cache: the CLI's commands start without it"

info "users, units"
chroot "$root" systemd-sysusers
chroot "$root" passwd --lock root >/dev/null
chroot "$root" systemctl enable attache.service attache-provision.service attache-ssh-hostkeys.service attache-firewall.service \
  attache-firewall.path attache-console.service attache-code-cache.service attache-code-cache.path attache-code-cache-refresh.service attache-release-install.socket systemd-networkd.service systemd-resolved.service systemd-timesyncd.service
# The data partition is mounted at /var/lib/attache; the image's own directory stays empty.
mkdir -p "$root/var/lib/attache"
chmod 0755 "$root/var/lib/attache"

info "Raspberry Pi boot files (raspi-firmware: config.txt, cmdline.txt, kernel, initrd, DTBs)"
sed -i '/^ROOTPART=/d; /^CONSOLES=/d' "$root/etc/default/raspi-firmware"
# The GPIO UART is a device port (udev-rules/), so the console is the screen (tty0) only.
printf 'ROOTPART=LABEL=RASPIROOT\nCONSOLES="tty0"\n' >> "$root/etc/default/raspi-firmware"
for kdir in "$root"/lib/modules/*; do
  chroot "$root" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$(basename "$kdir")"
done

info "per-box identity removed (machine id and ssh host keys are made at first boot)"
printf 'uninitialized\n' > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
printf 'attache\n' > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tattache\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"

mkdir -p "$root/usr/share/attache"
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' > "$root/usr/share/attache/packages.txt"
printf 'version=%s\nsource_date_epoch=%s\n' \
  "$(node -p 'require(process.argv[1]).version' "$app/package.json")" "${SOURCE_DATE_EPOCH:-}" \
  > "$root/usr/share/attache/build-info"
