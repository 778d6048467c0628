#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Installs the Debian packages the test suite needs when they are missing:
# QEMU 10 from bookworm-backports (bookworm's own 7.2 lacks guest-phys-bits),
# the distribution kernel (a PVH-capable vmlinuz plus qemu_fw_cfg.ko) and
# busybox-static for initramfs userlands, ACPICA's iasl to read AML back, and
# SeaBIOS's builds (the microvm firmware). bookworm-backports is added from the
# mirror apt's sources already name.
# Needs root for apt.
set -euo pipefail

need=()
qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
  local major
  major=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
  [ "${major:-0}" -ge 10 ]
}
qemu_ok || need+=(qemu)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(kernel)
installed busybox-static || need+=(busybox)
command -v iasl >/dev/null 2>&1 || need+=(iasl)
[ -r /usr/share/seabios/bios-microvm.bin ] || need+=(seabios)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-peers: qemu, kernel, busybox-static, iasl and seabios already present"
  exit 0
fi

echo "install-peers: installing ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

# The mirror the machine already uses for bookworm: the first URI of a deb822
# .sources stanza or of a one-line "deb" entry that serves the bookworm suite.
configured_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      /(^|\n)Suites:[^\n]*[[:space:]]bookworm([[:space:]]|$)/ && !/(^|\n)Enabled:[[:space:]]*no/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) {
          split($i, u, /[[:space:]]+/); print u[2]; exit
        }
      }' "$f" || true
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                         if ($(i + 1) == "bookworm") { print $i; exit } }' || true
}
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror=$(configured_mirror | sed -n 1p)
  if [ -z "$mirror" ]; then
    echo "install-peers: no bookworm mirror in apt's sources to take bookworm-backports from" >&2
    exit 1
  fi
  echo "install-peers: adding bookworm-backports from $mirror"
  echo "deb $mirror bookworm-backports main" \
    | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
fi
$SUDO apt-get update -q
pkgs=()
for n in "${need[@]}"; do
  case "$n" in
    kernel) pkgs+=(linux-image-amd64) ;;
    busybox) pkgs+=(busybox-static) ;;
    iasl) pkgs+=(acpica-tools) ;;
    seabios) pkgs+=(seabios) ;;
  esac
done
if [ ${#pkgs[@]} -gt 0 ]; then
  $SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi
if [[ " ${need[*]} " == *" qemu "* ]]; then
  $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86
fi
qemu-system-x86_64 --version | head -1
ls /boot/vmlinuz-*
