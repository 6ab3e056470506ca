#!/usr/bin/env bash
# Cross-build the lab's pfnscope_buggy test module (tests/vm/module) for an arm64
# kernel: ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- against Debian's arm64 headers
# (linux-headers-REL:arm64 + -common) with the host's own linux-kbuild (amd64: its
# fixdep/modpost run here).  6.1 only: its headers want gcc 12, Debian 12's cross gcc.
#
# usage: build-module.sh GEN OUTDIR     prints OUTDIR/pfnscope_buggy.ko; exit 2 with a
#                                       one-line reason (log: OUTDIR/pfnscope_buggy.build.log)
#
# One change to the module source, made on the copy: arm64's set_pte_at() calls
# mte_sync_tags() on MTE systems (6.1 __set_pte_at, arch/arm64/include/asm/pgtable.h),
# which is not exported to modules; the module writes its ptes with set_pte()
# (no MTE tag sync, as for the special and non-RAM ptes it mostly writes).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VMDIR=$(cd "$HERE/../vm" && pwd)
CACHE=${PFNSCOPE_CACHE:-$HOME/.cache/pfnscope}/arm64
fail() { echo "build-module.sh: $*" >&2; exit 2; }
[ $# -eq 2 ] || fail "usage: build-module.sh 6.1 OUTDIR"
gen=$1 out=$2
[ "$gen" = 6.1 ] || fail "arm64 module for $gen: only 6.1 (gcc 12 headers) is built"
mkdir -p "$out" && out=$(cd "$out" && pwd -P)
log=$out/pfnscope_buggy.build.log
: > "$log"
kd=$(bash "$HERE/kernels.sh" "$gen" 2>>"$log" | awk -v g="$gen" '$1 == g {print $2}')
[ -n "$kd" ] || fail "kernels.sh $gen failed (see $log)"
rel=$(cat "$kd/release")
hroot=$CACHE/headers/$rel
if [ ! -e "$hroot/ready" ]; then
  dl=$CACHE/debs/$rel-headers; mkdir -p "$dl"
  d=$CACHE/apt/bookworm
  (cd "$dl" && for p in "linux-headers-$rel:arm64" "linux-headers-${rel%-arm64}-common"; do
     ls "${p%%:*}"_*.deb >/dev/null 2>&1 ||
       apt-get -q -o APT::Architecture=arm64 -o APT::Architectures=arm64 \
         -o Dir::Etc::SourceList="$d/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null \
         -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::status="$d/status" \
         -o Debug::NoLocking=1 download "$p" >>"$log" 2>&1 || fail "cannot download $p (see $log)"
   done
   # the host's kbuild: the machine's own (bookworm, amd64) apt
   kb=$(ls linux-kbuild-6.1_*.deb 2>/dev/null | head -n1 || true)
   [ -n "$kb" ] || apt-get -q download linux-kbuild-6.1 >>"$log" 2>&1 || fail "cannot download linux-kbuild-6.1 (see $log)")
  rm -rf "$hroot.tmp" && mkdir -p "$hroot.tmp"
  for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$hroot.tmp"; done
  rm -rf "$hroot" && mv "$hroot.tmp" "$hroot" && touch "$hroot/ready"
fi
kb=$hroot/usr/src/linux-headers-$rel
[ -e "$kb/scripts/Makefile.build" ] || fail "no kbuild scripts under $kb"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pfnscope-a64mod.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$VMDIR"/module/Kbuild "$VMDIR"/module/Makefile "$VMDIR"/module/*.c "$tmp"/
grep -q 'set_pte_at(c->mm, addr, ptep, pte);' "$tmp/pfnscope_buggy.c" ||
  fail "tests/vm/module/pfnscope_buggy.c: no set_pte_at() call to replace"
sed -i 's/set_pte_at(c->mm, addr, ptep, pte);/set_pte(ptep, pte);/' "$tmp/pfnscope_buggy.c"
make -C "$tmp" KDIR="$kb" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- >>"$log" 2>&1 ||
  fail "build for $rel failed: $(grep -m1 -E 'error|Error|\*\*\*' "$log" || tail -n1 "$log") (log: $log)"
vm=$(modinfo -F vermagic "$tmp/pfnscope_buggy.ko" 2>/dev/null || true)
case $vm in "$rel "*) ;; *) fail "vermagic '$vm' is not $rel" ;; esac
cp "$tmp/pfnscope_buggy.ko" "$out/"
echo "$out/pfnscope_buggy.ko"
