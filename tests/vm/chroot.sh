#!/usr/bin/env bash
# Cached Debian chroots for what Debian 12 cannot do itself: build the test module
# against trixie's (gcc-14) and sid's (newest gcc) kernel headers, and run sid's
# upstream drgn and crash (benchmark).  Made once with debootstrap --variant=minbase
# from deb.debian.org, kept under $PFNSCOPE_CACHE/chroots/SUITE with a stamp; a re-run
# only checks the stamp.  Nothing stays mounted: "run" works in a private mount
# namespace (unshare -m) that disappears with the command, and unmounts in a trap too.
#
# usage: chroot.sh trixie|sid                  make it (if needed); print its directory
#        chroot.sh trixie|sid run [-r DIR]... [-w DIR]... [-C DIR] -- CMD [ARG...]
#            run CMD (as root, clean environment) in the chroot; each -r DIR is
#            bind-mounted read-only, each -w DIR read-write, at the same absolute path
#            inside; -C DIR is the working directory; /proc is mounted for CMD.
#
# trixie: gcc make libc6-dev libelf-dev bc flex bison libssl3t64 pahole (kbuild for an
#         external module: the linux-kbuild-* binaries link libelf/libssl, and the
#         6.12+ headers ship a BTF vmlinux, so modules get BTF through pahole)
# sid:    the same + python3-drgn crash
# Needs root and debootstrap (scripts/deps.sh installs it).  ~2-3 min per suite first
# time, ~350 MB (trixie) / ~450 MB (sid).
set -euo pipefail
CACHE=${PFNSCOPE_CACHE:-$HOME/.cache/pfnscope}
MIRROR=${PFNSCOPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE="gcc,make,libc6-dev,libelf-dev,bc,flex,bison,libssl3t64,pahole"

die() { echo "chroot.sh: $*" >&2; exit 2; }

suite=${1:-}
case $suite in
  trixie) PKGS=$BASE ;;
  sid) PKGS=$BASE,python3-drgn,crash,makedumpfile ;;
  *) die "usage: chroot.sh trixie|sid [run [-r DIR]... [-w DIR]... [-C DIR] -- CMD...]" ;;
esac
shift
ROOTS=$CACHE/chroots
DIR=$ROOTS/$suite
STAMP=$ROOTS/$suite.ready
WANT="$suite $PKGS"

mounted_under() { # PATH: true if anything is mounted at or below PATH
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 {f=1} END {exit !f}' /proc/self/mountinfo
}

ensure() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$DIR/usr/bin/gcc" ] && return 0
  [ "$(id -u)" = 0 ] || die "$suite: making the chroot needs root"
  command -v debootstrap >/dev/null || die "$suite: debootstrap is not installed (scripts/deps.sh)"
  mkdir -p "$ROOTS"
  exec 9>"$ROOTS/$suite.lock"
  flock 9
  # another caller may have made it while we waited
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$DIR/usr/bin/gcc" ] && { exec 9>&-; return 0; }
  local tmp=$DIR.tmp
  # made before with a shorter package list: add the missing packages in place
  if [ -f "$STAMP" ] && [ -x "$DIR/usr/bin/apt-get" ] && [ "$(cut -d' ' -f1 "$STAMP")" = "$suite" ]; then
    echo "chroot.sh: $suite: installing $PKGS into $DIR" >&2
    if (run -- /bin/sh -c 'apt-get -q -o Acquire::Check-Valid-Until=false update && DEBIAN_FRONTEND=noninteractive apt-get -q -y \
          --no-install-recommends install "$@" && apt-get clean' sh ${PKGS//,/ }) >"$ROOTS/$suite.log" 2>&1
    then echo "$WANT" > "$STAMP"; exec 9>&-; return 0; fi
    echo "chroot.sh: $suite: apt-get install failed (log: $ROOTS/$suite.log): making it again" >&2
  fi
  for d in "$DIR" "$tmp"; do
    if mounted_under "$d"; then die "$suite: something is mounted under $d; not removing it"; fi
  done
  rm -rf "$tmp"
  rm -f "$STAMP"
  echo "chroot.sh: debootstrap --variant=minbase $suite ($PKGS) into $DIR (a few minutes)" >&2
  if ! debootstrap --variant=minbase --include="$PKGS" "$suite" "$tmp" "$MIRROR" >"$ROOTS/$suite.log" 2>&1; then
    tail -15 "$ROOTS/$suite.log" >&2
    mounted_under "$tmp" || rm -rf "$tmp"
    die "$suite: debootstrap failed (log: $ROOTS/$suite.log)"
  fi
  # keep it small: the .deb cache is not needed once installed
  rm -f "$tmp"/var/cache/apt/archives/*.deb
  rm -rf "$DIR"
  mv "$tmp" "$DIR"
  echo "$WANT" > "$STAMP"
  exec 9>&-
}

run() {
  local binds=() cwd=/
  [ "$(id -u)" = 0 ] || die "run needs root (unshare -m, mount --bind, chroot)"
  while [ $# -gt 0 ]; do
    case $1 in
      -r|-w) [ $# -ge 2 ] || die "run: $1 needs a directory"
             [ -d "$2" ] || die "run: $2 is not a directory"
             binds+=("${1#-}:$(cd "$2" && pwd -P)"); shift 2 ;;
      -C) cwd=$2; shift 2 ;;
      --) shift; break ;;
      *) die "run: unknown option '$1' (use -- before the command)" ;;
    esac
  done
  [ $# -gt 0 ] || die "run: no command"
  # private mount namespace: the binds vanish with it even if we are killed
  exec unshare --mount --propagation private /bin/bash -c '
    set -eu
    root=$1 cwd=$2 n=$3; shift 3
    done_m=()
    cleanup() { local i; for ((i=${#done_m[@]}-1; i>=0; i--)); do umount -l "${done_m[i]}" 2>/dev/null || true; done; }
    trap cleanup EXIT
    mkdir -p "$root/proc"; mount -t proc proc "$root/proc"; done_m+=("$root/proc")
    for ((i=0; i<n; i++)); do
      mode=${1%%:*} src=${1#*:}; shift
      mkdir -p "$root$src"
      mount --bind "$src" "$root$src"; done_m+=("$root$src")
      [ "$mode" = r ] && mount -o remount,bind,ro "$root$src"
    done
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
  ' pfnscope-chroot "$DIR" "$cwd" "${#binds[@]}" "${binds[@]}" "$@"
}

ensure
if [ "${1:-}" = run ]; then
  shift
  run "$@"
else
  [ $# -eq 0 ] || die "unknown argument '$1'"
  echo "$DIR"
fi
