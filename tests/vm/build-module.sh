#!/usr/bin/env bash
# Build the pfnscope_buggy test module (tests/vm/module) for one lab kernel.
#
# usage: build-module.sh GEN OUTDIR       GEN: 6.1 | 6.12 | 7
#   prints the path of OUTDIR/pfnscope_buggy.ko on stdout; exit 2 with a one-line
#   reason on stderr when it cannot (the full build log is OUTDIR/pfnscope_buggy.build.log).
#
# The kernel (and its linux-headers + -common + linux-kbuild) comes from kernels.sh,
# under the lab's lock $PFNSCOPE_CACHE/kernels-GEN.lock.  Each kernel's headers want
# the gcc it was built with: 6.1 (gcc-12) builds on this Debian 12 host; 6.12 (gcc-14)
# in the cached trixie chroot and 7.x (gcc-16) in the cached sid chroot (chroot.sh
# makes them once, a few minutes; later builds take seconds).  The module source is
# copied to a temporary directory: the source tree is never written.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${PFNSCOPE_CACHE:-$HOME/.cache/pfnscope}
SRC=$HERE/module

fail() { echo "build-module.sh: $*" >&2; exit 2; }

[ $# -eq 2 ] || fail "usage: build-module.sh 6.1|6.12|7 OUTDIR"
gen=$1 out=$2
case $gen in
  6.1) suite= ;;
  6.12) suite=trixie ;;
  7) suite=sid ;;
  *) fail "unknown kernel generation '$gen' (6.1, 6.12, 7)" ;;
esac
mkdir -p "$out" || fail "cannot create $out"
out=$(cd "$out" && pwd -P)
log=$out/pfnscope_buggy.build.log
: > "$log"

kernel_dir() { # prints the cached kernel dir of $gen (kernels.sh under the lab's lock)
  mkdir -p "$CACHE"
  ( flock 9; bash "$HERE/kernels.sh" "$gen" ) 9>"$CACHE/kernels-$gen.lock" 2>>"$log" |
    awk -v g="$gen" '$1 == g {print $2}' | tail -n1
}
kd=$(kernel_dir) || true
[ -n "$kd" ] || fail "kernels.sh $gen failed (see $log)"
if [ ! -e "$kd/build/Makefile" ]; then
  # a kernel cached before kernels.sh fetched 6.12/7.x headers: drop its stamp once so
  # that kernels.sh completes it (it reuses the downloaded .debs and the vmlinux)
  echo "build-module.sh: $kd has no headers yet: refreshing it" >&2
  ( flock 9; rm -f "$CACHE/kernels/$gen.ready" ) 9>"$CACHE/kernels-$gen.lock"
  kd=$(kernel_dir) || true
  [ -n "$kd" ] || fail "kernels.sh $gen failed (see $log)"
  [ -e "$kd/build/Makefile" ] || fail "kernel $gen has no headers build dir ($kd/build)"
fi
kd=$(cd "$kd" && pwd -P)
rel=$(cat "$kd/release")
# the physical build dir: the module Makefile finds the -common Makefile beside it
# with $(abspath KDIR/..), which is lexical and would stop at the build symlink
kb=$(readlink -f "$kd/build")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pfnscope-module.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tmp=$(cd "$tmp" && pwd -P)   # the chroot binds the physical path
cp "$SRC"/Kbuild "$SRC"/Makefile "$SRC"/*.c "$tmp"/
cp "$SRC"/*.h "$tmp"/ 2>/dev/null || true
mk=(make -C "$tmp" KDIR="$kb")
# 7.x: Debian's per-arch headers Makefile sets KBUILD_OUTPUT=/usr/src/linux-headers-REL
# before including the -common one; the module Makefile bypasses it (-f common/Makefile)
# since that path does not exist here, so give kbuild the real place (else objtree is
# the -common dir and kbuild writes into the read-only headers)
if grep -q '^KBUILD_OUTPUT' "$kb/Makefile"; then mk+=(KBUILD_OUTPUT="$kb"); fi


if [ -z "$suite" ]; then
  "${mk[@]}" >>"$log" 2>&1 || rc=$?
else
  "$HERE/chroot.sh" "$suite" >/dev/null 2>>"$log" ||
    fail "cannot make the $suite chroot for the $gen headers: $(tail -n1 "$log")"
  "$HERE/chroot.sh" "$suite" run -r "$kd" -w "$tmp" -C "$tmp" -- \
    "${mk[@]}" >>"$log" 2>&1 || rc=$?
fi
if [ "${rc:-0}" != 0 ] || [ ! -s "$tmp/pfnscope_buggy.ko" ]; then
  err=$(grep -m1 -E 'error|Error|\*\*\*' "$log" || tail -n1 "$log")
  fail "build for $rel${suite:+ (in the $suite chroot)} failed: ${err:-no output} (log: $log)"
fi
vm=$(modinfo -F vermagic "$tmp/pfnscope_buggy.ko" 2>/dev/null || true)
case $vm in
  "$rel "*) ;;
  *) fail "built module has vermagic '$vm', not kernel $rel" ;;
esac
cp "$tmp/pfnscope_buggy.ko" "$out/pfnscope_buggy.ko.tmp"
mv "$out/pfnscope_buggy.ko.tmp" "$out/pfnscope_buggy.ko"
echo "$out/pfnscope_buggy.ko"
