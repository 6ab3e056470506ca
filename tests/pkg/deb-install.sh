#!/usr/bin/env bash
# The Debian package, built and installed the way a user would: dpkg-buildpackage
# -us -uc -b on a copy of the tree, then `apt-get install ./pfnscope_*.deb` in a
# clean Debian 12 chroot (debootstrap --variant=minbase bookworm), apt resolving
# python3-drgn, libkdumpfile and python3 from deb.debian.org.
#
# Cached by a hash of the packaging inputs (debian/, setup.py, include/, src/,
# plugins/, README.md, docs/pfnscope.1, this script) under
# $PFNSCOPE_CACHE/pkg/<hash12>/: the .deb, build.log, transcript.txt (every
# command run for the install and its output) and root/ (the chroot with the
# package installed).  The clean base is made once: $PFNSCOPE_CACHE/chroots/bookworm-clean.
#
# usage: deb-install.sh                         build + install if needed; print the directory
#        deb-install.sh run [-r DIR]... -- CMD...  run CMD in the installed chroot
#            (clean environment, /proc mounted, each -r DIR bind-mounted read-only
#            at the same path; the mounts live in a private namespace)
# Needs root, debootstrap, dpkg-dev, debhelper, dh-python (scripts/deps.sh).
# First time ~3 min (base) + ~1 min (build, install); a re-run only checks the stamp.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$here/../.." && pwd)
CACHE=${PFNSCOPE_CACHE:-$HOME/.cache/pfnscope}
MIRROR=${PFNSCOPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=$CACHE/chroots/bookworm-clean
BASE_WANT="bookworm minbase $MIRROR"
PKGROOT=$CACHE/pkg

die() { echo "deb-install.sh: $*" >&2; exit 2; }

inputs() { # the files the package is built from, relative to TOP, sorted
  local man=; [ -f "$TOP/docs/pfnscope.1" ] && man=docs/pfnscope.1
  (cd "$TOP" && find debian setup.py include src plugins README.md $man \
     tests/pkg/deb-install.sh -type f \
     ! -name '*.so' ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*.egg-info/*' \
     | LC_ALL=C sort)
}

input_hash() {
  (cd "$TOP" && inputs | while read -r f; do printf '%s\0' "$f"; cat "$f"; done) |
    sha256sum | cut -c1-12
}

mounted_under() {
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 {f=1} END {exit !f}' /proc/self/mountinfo
}

run_in() { # ROOT [-r DIR]... -- CMD...
  local root=$1 binds=(); shift
  while [ $# -gt 0 ]; do
    case $1 in
      -r) [ -d "${2:-}" ] || die "run: ${2:-} is not a directory"
          binds+=("$(cd "$2" && pwd -P)"); shift 2 ;;
      --) shift; break ;;
      *) die "run: unknown option '$1' (use -- before the command)" ;;
    esac
  done
  [ $# -gt 0 ] || die "run: no command"
  unshare --mount --propagation private /bin/bash -c '
    set -eu
    root=$1 n=$2; shift 2
    mount -t proc proc "$root/proc"
    for ((i=0; i<n; i++)); do
      mkdir -p "$root$1"; mount --bind "$1" "$root$1"; mount -o remount,bind,ro "$root$1"; shift
    done
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' pfnscope-deb "$root" "${#binds[@]}" "${binds[@]}" "$@"
}

make_base() {
  [ -f "$BASE.ready" ] && [ "$(cat "$BASE.ready")" = "$BASE_WANT" ] && return 0
  command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/deps.sh)"
  local tmp=$BASE.tmp d
  for d in "$BASE" "$tmp"; do mounted_under "$d" && die "something is mounted under $d"; done
  rm -rf "$tmp" "$BASE"; rm -f "$BASE.ready"
  mkdir -p "$(dirname "$BASE")"
  echo "deb-install.sh: debootstrap --variant=minbase bookworm into $BASE (a few minutes)" >&2
  if ! debootstrap --variant=minbase bookworm "$tmp" "$MIRROR" >"$BASE.log" 2>&1; then
    tail -15 "$BASE.log" >&2; mounted_under "$tmp" || rm -rf "$tmp"
    die "debootstrap failed (log: $BASE.log)"
  fi
  rm -f "$tmp"/var/cache/apt/archives/*.deb
  mv "$tmp" "$BASE"
  echo "$BASE_WANT" > "$BASE.ready"
}

step() { # TRANSCRIPT ROOT CMD...: run CMD in ROOT, append "# CMD" and its output
  local t=$1 root=$2; shift 2
  echo "# $*" >> "$t"
  run_in "$root" -- /bin/sh -c "$*" >> "$t" 2>&1
}

build_and_install() {
  local h=$1 d=$PKGROOT/$1
  local src=$d/build/pfnscope-0.1.0
  rm -rf "$d"; mkdir -p "$src"
  (cd "$TOP" && inputs | cpio -pdm --quiet "$src")
  echo "deb-install.sh: dpkg-buildpackage -us -uc -b (log: $d/build.log)" >&2
  if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$d/build.log" 2>&1; then
    tail -20 "$d/build.log" >&2; die "dpkg-buildpackage failed (log: $d/build.log)"
  fi
  local deb; deb=$(cd "$d/build" && ls pfnscope_*_*.deb)
  mv "$d/build/$deb" "$d/"
  rm -rf "$d/build"
  make_base
  for x in "$d/root"; do mounted_under "$x" && die "something is mounted under $x"; done
  cp -a "$BASE" "$d/root"
  cp "$d/$deb" "$d/root/tmp/"
  local t=$d/transcript.txt
  : > "$t"
  echo "deb-install.sh: apt-get install ./$deb in a clean bookworm chroot" >&2
  step "$t" "$d/root" "dpkg-query -W -f='\${Package}\\n' | wc -l; dpkg-query -W python3-drgn pfnscope 2>&1 || true"
  if ! step "$t" "$d/root" "apt-get -q update" ||
     ! step "$t" "$d/root" "cd /tmp && DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0 install ./$deb"; then
    tail -20 "$t" >&2; die "installing $deb failed (transcript: $t)"
  fi
  step "$t" "$d/root" "dpkg-query -W pfnscope python3-drgn 'libkdumpfile*' python3"
  step "$t" "$d/root" "command -v pfnscope && pfnscope --help | head -n 3"
  rm -f "$d/root/tmp/$deb"
  run_in "$d/root" -- apt-get clean
  echo "$deb" > "$d/ready"
}

ensure() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot)"
  local h; h=$(input_hash)
  local d=$PKGROOT/$h
  [ -f "$d/ready" ] && { echo "$d"; return 0; }
  mkdir -p "$PKGROOT"
  exec 9>"$PKGROOT/lock"
  flock 9
  if [ ! -f "$d/ready" ]; then
    build_and_install "$h"
    # packages of other inputs: stale
    local o
    for o in "$PKGROOT"/*/; do
      o=${o%/}
      [ "$o" = "$d" ] && continue
      mounted_under "$o" || rm -rf "$o"
    done
  fi
  exec 9>&-
  echo "$d"
}

case ${1:-} in
  "") ensure ;;
  run) shift; d=$(ensure); run_in "$d/root" "$@" ;;
  hash) input_hash ;;
  *) die "usage: deb-install.sh [run [-r DIR]... -- CMD...] | hash" ;;
esac
