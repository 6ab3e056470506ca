#!/usr/bin/env bash
# Fetch KVM's modules (irqbypass, kvm, ccp, kvm-amd and what they depend on) and
# their debug files for a lab kernel, beside tests/vm/kernels.sh's kernel cache.
# The image .deb kernels.sh keeps gives the .ko files; the -dbg .deb (~1 GB, which
# kernels.sh deletes after taking the vmlinux) is streamed once and only the KVM
# debug files are kept: $PFNSCOPE_CACHE/kvm/kernels/RELEASE/{modules,debug}/*.ko
#
# usage: kvm-modules.sh GEN      (6.1 | 6.12 | 7); prints the directory
set -euo pipefail
CACHE=${PFNSCOPE_CACHE:-$HOME/.cache/pfnscope}
HERE=$(cd "$(dirname "$0")" && pwd)
gen=${1:?usage: kvm-modules.sh GEN}
kdir=$("$HERE/../vm/kernels.sh" "$gen" | awk '{print $2}')
rel=$(cat "$kdir/release")
out=$CACHE/kvm/kernels/$rel
# kernel/ paths; ccp pulls in the crypto helpers it links against where modular
MODS="virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd drivers/crypto/ccp/ccp"
[ -f "$out/ready" ] && [ "$(cat "$out/ready")" = "$MODS" ] && { echo "$out"; exit 0; }
mkdir -p "$out/modules" "$out/debug"
unz() { case $1 in *.xz) xz -dc "$1";; *.zst) zstd -qdc "$1";; *) cat "$1";; esac; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
for deb in "$CACHE/debs/$rel"/linux-image-*.deb "$CACHE/debs/$rel"/linux-modules-*.deb; do
  [ -f "$deb" ] || continue
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$t" --wildcards '*kernel/arch/x86/kvm/*' \
    '*kernel/drivers/crypto/ccp/*' '*kernel/virt/lib/*' '*modules.dep' 2>/dev/null || true
done
for m in $MODS; do
  f=$(ls "$t"/lib/modules/*/kernel/$m.ko* "$t"/usr/lib/modules/*/kernel/$m.ko* 2>/dev/null | head -n1 || true)
  [ -n "$f" ] || { echo "kvm-modules.sh: $gen: no $m.ko in the image package" >&2; exit 2; }
  unz "$f" > "$out/modules/$(basename "$m").ko"
done
dep=$(ls "$t"/lib/modules/*/modules.dep "$t"/usr/lib/modules/*/modules.dep 2>/dev/null | head -n1 || true)
[ -n "$dep" ] && grep -E '^kernel/(arch/x86/kvm|drivers/crypto/ccp|virt/lib)/' "$dep" > "$out/modules.dep" || true
# debug files: stream the -dbg package, keep only kvm*.ko (never store the .deb)
if [ ! -s "$out/debug/kvm.ko" ] || [ ! -s "$out/debug/kvm-amd.ko" ]; then
  case $gen in 6.1) apt=(apt-get) ;; 6.12) suite=trixie ;; 7) suite=sid ;; *) echo "kvm-modules.sh: unknown GEN $gen" >&2; exit 2;; esac
  if [ "$gen" != 6.1 ]; then
    d=$CACHE/apt/$suite
    apt=(apt-get -o Dir::Etc::SourceList="$d/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::status="$d/status" -o Debug::NoLocking=1)
  fi
  pkg=linux-image-$rel-dbg
  if [ "$gen" = 7 ]; then  # the -dbg package may be a meta package depending on the real one
    sub=$("${apt[0]/apt-get/apt-cache}" "${apt[@]:1}" depends "$pkg" 2>/dev/null | awk '/Depends:/ && /-dbg$/{print $2; exit}' || true)
    [ -n "$sub" ] && pkg=$sub
  fi
  url=$("${apt[@]}" download --print-uris "$pkg" | awk -F"'" '{print $2; exit}')
  [ -n "$url" ] || { echo "kvm-modules.sh: $gen: no URL for $pkg" >&2; exit 2; }
  echo "kvm-modules.sh: $gen: streaming $url" >&2
  curl -fsSL "$url" | dpkg-deb --fsys-tarfile /dev/stdin | tar -x -C "$t" --wildcards \
    '*/usr/lib/debug/lib/modules/*/kernel/arch/x86/kvm/kvm*.ko*' 2>/dev/null \
    || curl -fsSL "$url" > "$t/dbg.deb"
  if [ -f "$t/dbg.deb" ]; then
    dpkg-deb --fsys-tarfile "$t/dbg.deb" | tar -x -C "$t" --wildcards '*usr/lib/debug/lib/modules/*/kernel/arch/x86/kvm/kvm*.ko*'
  fi
  for m in kvm kvm-amd; do
    f=$(ls "$t"/usr/lib/debug/lib/modules/*/kernel/arch/x86/kvm/$m.ko* 2>/dev/null | head -n1 || true)
    [ -n "$f" ] || { echo "kvm-modules.sh: $gen: no debug $m.ko in $pkg" >&2; exit 2; }
    unz "$f" > "$out/debug/$m.ko"
  done
fi
echo "$MODS" > "$out/ready"
echo "$out"
