#!/usr/bin/env bash
# Install what pfnscope's build, tests and lab need, from Debian's registry.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail
PKGS="build-essential clang libclang-rt-14-dev llvm python3-dev python3-setuptools python3-drgn
python3-pyflakes
python3-pytest python3-pip python3-jsonschema libkdumpfile-dev libdeflate-dev libdw-dev libelf-dev libcmocka-dev qemu-system-x86 qemu-utils
busybox-static gdb makedumpfile kexec-tools cpio xz-utils zstd dpkg-dev debootstrap socat
file kmod bc flex bison libssl-dev stress-ng"
# the Debian package (debian/, dpkg-buildpackage) and its install test
PKGS="$PKGS debhelper dh-python python3-all-dev"
# the lab's busy guests run the host's stress-ng over 9p (tests/vm/busy)
PKGS="$PKGS stress-ng"
# the crash extension (plugins/crash): crash and its defs.h
PKGS="$PKGS crash"
# the arm64 lab (tests/arm64): qemu-system-aarch64 and the cross compiler for
# its static guest programs (kernels and busybox come from tests/arm64/kernels.sh)
PKGS="$PKGS qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
# the GDB front end on arm64 guests (Debian's gdb debugs the host architecture only)
PKGS="$PKGS gdb-multiarch"
# the benchmark's peak RSS of a command (GNU time: measured from a small parent)
PKGS="$PKGS time"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing packages:$missing; run as root to install them" >&2; exit 2
fi
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends $missing >&2
