#!/usr/bin/env bash
# Make the lab's trixie / sid chroot (tests/vm/chroot.sh) able to build and run
# pfnscope against that suite's Python and drgn: adds python3-drgn, python3-dev,
# python3-setuptools, python3-pip, libkdumpfile-dev and libdeflate-dev with apt
# inside the existing chroot.  Idempotent: a re-run only reads the chroot's dpkg status.
# Kept outside tests/vm so the lab fixtures' source hash does not change.
#
# usage: provision.sh trixie|sid     prints the chroot directory
# Needs root (chroot.sh run).  First time: ~1 min per suite (downloads ~60 MB).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CHROOT_SH=$here/../vm/chroot.sh
CACHE=${PFNSCOPE_CACHE:-$HOME/.cache/pfnscope}
PKGS="python3-drgn python3-dev python3-setuptools python3-pip libkdumpfile-dev libdeflate-dev"

die() { echo "provision.sh: $*" >&2; exit 2; }
suite=${1:-}
case $suite in trixie|sid) ;; *) die "usage: provision.sh trixie|sid" ;; esac
[ $# -eq 1 ] || die "usage: provision.sh trixie|sid"

dir=$("$CHROOT_SH" "$suite")   # makes the lab chroot when missing
[ -d "$dir/var/lib/dpkg" ] || die "$suite: $dir is not a Debian root"

missing() {
  local p out=""
  for p in $PKGS; do
    dpkg-query --admindir="$dir/var/lib/dpkg" -W -f='${Status}' "$p" 2>/dev/null |
      grep -q "install ok installed" || out="$out $p"
  done
  echo "$out"
}

if [ -n "$(missing)" ]; then
  [ "$(id -u)" = 0 ] || die "$suite: installing$(missing) needs root"
  # the lock chroot.sh takes while it (re)makes the chroot: not while we install
  exec 9>"$CACHE/chroots/$suite.lock"
  flock 9
  need=$(missing)
  if [ -n "$need" ]; then
    log=$CACHE/chroots/$suite.pfnscope-provision.log
    echo "provision.sh: $suite: installing$need into $dir" >&2
    if ! "$CHROOT_SH" "$suite" run -- /bin/sh -c 'apt-get -q -o Acquire::Check-Valid-Until=false update &&
        DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends install "$@" &&
        apt-get clean' sh $need >"$log" 2>&1; then
      tail -15 "$log" >&2
      die "$suite: apt-get install$need failed (log: $log)"
    fi
    [ -z "$(missing)" ] || die "$suite: still missing after install:$(missing) (log: $log)"
  fi
  exec 9>&-
fi
echo "$dir"
