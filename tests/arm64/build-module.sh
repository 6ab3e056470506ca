#!/usr/bin/env bash
# Cross-build the lab's pfnscope_buggy test module (tests/vm/module) for an arm64
# kernel: ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- against Debian's arm64 headers
# (linux-headers-REL:arm64 + -common) with an amd64 linux-kbuild (its fixdep/modpost
# run here).  Each kernel's headers want the gcc it was built with:
#   6.1  (gcc 12): on this Debian 12 host, its gcc-aarch64-linux-gnu and linux-kbuild-6.1
#   6.12 (gcc 14): in the lab's trixie chroot (tests/vm/chroot.sh), into which this
#        script installs trixie's gcc-aarch64-linux-gnu and amd64 linux-kbuild-REL
#        (once; later builds only check they are there)
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
[ $# -eq 2 ] || fail "usage: build-module.sh 6.1|6.12 OUTDIR"
gen=$1 out=$2
case $gen in
  6.1) suite=bookworm ;;
  6.12) suite=trixie ;;
  *) fail "unknown arm64 kernel generation '$gen' (6.1, 6.12)" ;;
esac
mkdir -p "$out" && out=$(cd "$out" && pwd -P)
log=$out/pfnscope_buggy.build.log
: > "$log"
kd=$(bash "$HERE/kernels.sh" "$gen" 2>>"$log" | awk -v g="$gen" '$1 == g {print $2}')
[ -n "$kd" ] || fail "kernels.sh $gen failed (see $log)"
rel=$(cat "$kd/release")
hroot=$CACHE/headers/$rel
if [ ! -e "$hroot/ready" ]; then
  dl=$CACHE/debs/$rel-headers; mkdir -p "$dl"
  d=$CACHE/apt/$suite
  (cd "$dl" && for p in "linux-headers-$rel:arm64" "linux-headers-${rel%-arm64}-common"; do
     ls "${p%%:*}"_*.deb >/dev/null 2>&1 ||
       apt-get -q -o APT::Architecture=arm64 -o APT::Architectures=arm64 \
         -o Dir::Etc::SourceList="$d/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null \
         -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::status="$d/status" \
         -o Dir::Etc::Preferences="$d/etc/preferences" -o Dir::Etc::PreferencesParts="$d/etc/preferences.d" \
         -o Debug::NoLocking=1 download "$p" >>"$log" 2>&1 || fail "cannot download $p (see $log)"
   done
   # 6.1: the host's kbuild, from the machine's own (bookworm, amd64) apt; 6.12's
   # is installed in the chroot below
   if [ "$gen" = 6.1 ]; then
     kb=$(ls linux-kbuild-6.1_*.deb 2>/dev/null | head -n1 || true)
     [ -n "$kb" ] || apt-get -q download linux-kbuild-6.1 >>"$log" 2>&1 || fail "cannot download linux-kbuild-6.1 (see $log)"
   fi)
  rm -rf "$hroot.tmp" && mkdir -p "$hroot.tmp"
  for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$hroot.tmp"; done
  if [ "$gen" != 6.1 ]; then
    # the headers' scripts/tools link to ../../lib/linux-kbuild-VER: the chroot's
    mkdir -p "$hroot.tmp/usr/lib"
    ln -sfn "/usr/lib/linux-kbuild-${rel%-arm64}" "$hroot.tmp/usr/lib/linux-kbuild-${rel%-arm64}"
  fi
  rm -rf "$hroot" && mv "$hroot.tmp" "$hroot" && touch "$hroot/ready"
fi
kb=$hroot/usr/src/linux-headers-$rel
if [ "$gen" = 6.1 ]; then
  [ -e "$kb/scripts/Makefile.build" ] || fail "no kbuild scripts under $kb"
else
  # trixie's cross gcc 14 and amd64 kbuild in the lab's trixie chroot
  croot=$(bash "$VMDIR/chroot.sh" trixie 2>>"$log" | tail -n1) ||
    fail "cannot make the trixie chroot (see $log)"
  want="gcc-aarch64-linux-gnu linux-kbuild-${rel%-arm64}"
  if [ ! -x "$croot/usr/bin/aarch64-linux-gnu-gcc" ] ||
     [ ! -e "$croot/usr/lib/linux-kbuild-${rel%-arm64}/scripts/Makefile.build" ]; then
    ( flock 9
      bash "$VMDIR/chroot.sh" trixie run -- /bin/sh -c 'apt-get -q -o Acquire::Check-Valid-Until=false update &&
        DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends install "$@" && apt-get clean' sh $want
    ) 9>"$CACHE/trixie-cross.lock" >>"$log" 2>&1 || fail "cannot install $want in the trixie chroot (see $log)"
  fi
  [ -x "$croot/usr/bin/aarch64-linux-gnu-gcc" ] || fail "no aarch64-linux-gnu-gcc in $croot"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pfnscope-a64mod.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$VMDIR"/module/Kbuild "$VMDIR"/module/Makefile "$VMDIR"/module/*.c "$tmp"/
grep -q 'set_pte_at(c->mm, addr, ptep, pte);' "$tmp/pfnscope_buggy.c" ||
  fail "tests/vm/module/pfnscope_buggy.c: no set_pte_at() call to replace"
sed -i 's/set_pte_at(c->mm, addr, ptep, pte);/set_pte(ptep, pte);/' "$tmp/pfnscope_buggy.c"
mk=(make -C "$tmp" KDIR="$kb" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
if [ "$gen" = 6.1 ]; then
  "${mk[@]}" >>"$log" 2>&1 || rc=$?
else
  # 6.12's Module.symvers and BTF need nothing from the host: only the headers
  # root (read-only) and the build directory are bound into the chroot
  tmp=$(cd "$tmp" && pwd -P)
  bash "$VMDIR/chroot.sh" trixie run -r "$hroot" -w "$tmp" -C "$tmp" -- "${mk[@]}" >>"$log" 2>&1 || rc=$?
fi
[ "${rc:-0}" = 0 ] ||
  fail "build for $rel failed: $(grep -m1 -E 'error|Error|\*\*\*' "$log" || tail -n1 "$log") (log: $log)"
vm=$(modinfo -F vermagic "$tmp/pfnscope_buggy.ko" 2>/dev/null || true)
case $vm in "$rel "*) ;; *) fail "vermagic '$vm' is not $rel" ;; esac
cp "$tmp/pfnscope_buggy.ko" "$out/"
echo "$out/pfnscope_buggy.ko"
