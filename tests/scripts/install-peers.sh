#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# Installs the Debian packages the test suite needs when they are missing:
# QEMU 10 from bookworm-backports (bookworm's own 7.2 lacks guest-phys-bits),
# the distribution kernel (a PVH-capable vmlinuz plus qemu_fw_cfg.ko) and
# busybox-static for initramfs userlands, and ACPICA's iasl to read AML back.
# Needs root for apt.
set -euo pipefail

need=()
qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
  local major
  major=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
  [ "${major:-0}" -ge 9 ]
}
qemu_ok || need+=(qemu)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(kernel)
installed busybox-static || need+=(busybox)
command -v iasl >/dev/null 2>&1 || need+=(iasl)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-peers: qemu, kernel, busybox-static and iasl already present"
  exit 0
fi

echo "install-peers: installing ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" \
    | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
fi
$SUDO apt-get update -q
pkgs=()
for n in "${need[@]}"; do
  case "$n" in
    kernel) pkgs+=(linux-image-amd64) ;;
    busybox) pkgs+=(busybox-static) ;;
    iasl) pkgs+=(acpica-tools) ;;
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
