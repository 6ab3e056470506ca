#!/usr/bin/env bash
# Fetch and cache the lab kernels: vmlinuz, a few modules, the debug vmlinux and
# (6.1) the headers, from Debian's registry.  Debian 12's kernel comes through the
# machine's own apt sources; trixie's and sid's through a private apt configuration
# (own sources list, lists and cache), never touching the machine's sources.
#
# usage: kernels.sh [5.10|6.1|6.12|7|all]     prints "GEN DIR" per kernel made ready
# Layout: $PFNSCOPE_CACHE/kernels/RELEASE/{vmlinuz,vmlinux,modules/*.ko,headers/,release}
set -euo pipefail
CACHE=${PFNSCOPE_CACHE:-$HOME/.cache/pfnscope}
KDIR=$CACHE/kernels
APTDIR=$CACHE/apt
mkdir -p "$KDIR" "$APTDIR"

# Modules the guest needs (9p host root, zram, packet, virtio disk, fw_cfg for
# vmcoreinfo; vfio-pci and the type1 IOMMU backend for the VFIO fixtures, whose
# guest alone loads them).  Listed by path under kernel/; missing ones are skipped (built-in).
MODULES="fs/netfs/netfs fs/fscache/fscache net/9p/9pnet drivers/virtio/virtio_ring
drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev
drivers/virtio/virtio_pci net/9p/9pnet_virtio fs/9p/9p drivers/firmware/qemu_fw_cfg
lib/lz4/lz4_compress lib/lz4/lz4hc_compress crypto/lz4 crypto/lzo crypto/lzo-rle lib/lzo/lzo_compress
mm/zsmalloc drivers/block/zram/zram net/packet/af_packet drivers/block/virtio_blk
lib/crc16 lib/crc/crc16 fs/mbcache fs/jbd2/jbd2 crypto/crc32c_generic lib/libcrc32c fs/ext4/ext4
virt/lib/irqbypass drivers/vfio/vfio drivers/vfio/vfio_virqfd drivers/vfio/vfio_iommu_type1
drivers/vfio/pci/vfio-pci-core drivers/vfio/pci/vfio-pci"

private_apt() { # SUITE ARGS...  apt-get with a private configuration for SUITE
  local suite=$1; shift
  local d=$APTDIR/$suite
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/etc/preferences.d"
  echo "deb http://deb.debian.org/debian $suite main" > "$d/etc/sources.list"
  : > "$d/status"
  apt-get -q -o Dir::Etc::SourceList="$d/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::Preferences="$d/etc/preferences" -o Dir::Etc::PreferencesParts="$d/etc/preferences.d" \
    -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::status="$d/status" \
    -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 "$@"
}

fetch() { # GEN: 5.10 (bullseye) | 6.1 (bookworm) | 6.12 (trixie) | 7 (sid)
  local gen=$1 suite apt
  case $gen in
    5.10) suite=bullseye; apt=(private_apt bullseye) ;;
    6.1) suite=bookworm; apt=(apt-get -q) ;;
    6.12) suite=trixie; apt=(private_apt trixie) ;;
    7) suite=sid; apt=(private_apt sid) ;;
    *) echo "kernels.sh: unknown kernel generation '$gen' (5.10, 6.1, 6.12, 7)" >&2; exit 2 ;;
  esac
  local stamp=$KDIR/$gen.ready
  # reuse when complete and extracted with the current module list
  if [ -f "$stamp" ] && [ -f "$(cat "$stamp")/vmlinux" ] &&
     [ "$(cat "$(cat "$stamp")/modules.list" 2>/dev/null)" = "$MODULES" ]; then
    echo "$gen $(cat "$stamp")"; return
  fi
  if [ "$suite" != bookworm ]; then private_apt "$suite" update >&2; fi
  local img ver
  # 7.x: linux-image-amd64 depends on linux-base-amd64 first; take the linux-image-REL one
  img=$(apt_cache_deps_all "$suite" linux-image-amd64 | grep -E '^linux-image-[0-9]' | head -n1)
  ver=$(apt_cache_ver "$suite" "$img")
  local rel=${img#linux-image-}
  local dir=$KDIR/$rel
  local dl=$CACHE/debs/$rel
  mkdir -p "$dir/modules" "$dl"
  echo "kernels.sh: $gen: $img $ver" >&2
  local pkgs=("$img" "$img-dbg")
  # 7.x: linux-image-REL is a meta package; the files are in linux-binary-/linux-modules-
  if [ "$gen" = 7 ]; then
    local sub; sub=$(apt_cache_deps_all "$suite" "$img" | grep -E '^linux-(binary|modules)-' || true)
    pkgs+=($sub "linux-modules-$rel")
    local dbg; dbg=$(apt_cache_deps_all "$suite" "$img-dbg" | grep -E -- '-dbg$' || true)
    pkgs+=($dbg)
  fi
  # headers: the arch package, the -common one it links to, and linux-kbuild (scripts/)
  # (6.12/7.x headers want trixie's/sid's gcc: tests/vm/build-module.sh builds in a chroot)
  # (5.10: no buggy fixture, so no headers)
  if [ "$gen" != 5.10 ]; then
    pkgs+=("linux-headers-$rel" $(apt_cache_deps_all "$suite" "linux-headers-$rel" | grep -E -- '-common$|^linux-kbuild-' || true))
  fi
  (cd "$dl" && for p in "${pkgs[@]}"; do [ -n "$p" ] || continue
     case $p in *-dbg) [ -s "$dir/vmlinux" ] && continue ;; esac  # re-run: vmlinux already out
     ls "$p"_*.deb >/dev/null 2>&1 || "${apt[@]}" download "$p" >&2; done)
  for deb in "$dl"/*.deb; do
    case $deb in
      *-dbg_*)
        # only the debug vmlinux: never unpack the whole package
        local member list
        list=$(dpkg-deb --fsys-tarfile "$deb" | tar -tv)
        # 5.10/6.1/6.12: usr/lib/debug/boot/vmlinux-REL; 7.x: that is a symlink and the
        # file is usr/lib/debug/lib/modules/REL/vmlinux
        member=$(awk '$1 ~ /^-/ && $NF ~ /usr\/lib\/debug\/(boot\/vmlinux-[^\/]*|lib\/modules\/[^\/]*\/vmlinux)$/ {print $NF; exit}' <<<"$list")
        if [ -n "$member" ] && [ ! -s "$dir/vmlinux" ]; then
          dpkg-deb --fsys-tarfile "$deb" | tar -xO "$member" > "$dir/vmlinux.tmp" && mv "$dir/vmlinux.tmp" "$dir/vmlinux"
        fi ;;
      *linux-headers-*|*linux-kbuild-*)
        mkdir -p "$dir/headers-root"; dpkg-deb -x "$deb" "$dir/headers-root" ;;
      *)
        local t; t=$(mktemp -d)
        dpkg-deb -x "$deb" "$t"
        local z; z=$(ls "$t"/boot/vmlinuz-* "$t"/usr/lib/modules/*/vmlinuz 2>/dev/null | head -n1 || true)
        [ -n "$z" ] && cp "$z" "$dir/vmlinuz"
        for m in $MODULES; do
          local f; f=$(ls "$t"/lib/modules/*/kernel/$m.ko* "$t"/usr/lib/modules/*/kernel/$m.ko* 2>/dev/null | head -n1 || true)
          [ -n "$f" ] || continue
          case $f in
            *.xz) xz -dc "$f" > "$dir/modules/$(basename "$m").ko" ;;
            *.zst) zstd -qdc "$f" > "$dir/modules/$(basename "$m").ko" ;;
            *) cp "$f" "$dir/modules/$(basename "$m").ko" ;;
          esac
        done
        rm -rf "$t" ;;
    esac
  done
  [ -s "$dir/vmlinuz" ] || { echo "kernels.sh: $gen: no vmlinuz in $dl" >&2; exit 2; }
  [ -s "$dir/vmlinux" ] || { echo "kernels.sh: $gen: no debug vmlinux in $dl" >&2; exit 2; }
  if [ -d "$dir/headers-root" ]; then
    # the per-arch headers package symlinks to the common one; build dir is usr/src/linux-headers-REL
    ln -sfn "$dir/headers-root/usr/src/linux-headers-$rel" "$dir/build"
  fi
  echo "$rel" > "$dir/release"
  echo "$MODULES" > "$dir/modules.list"
  # the -dbg .deb is only needed for its vmlinux: drop it to keep the cache small
  rm -f "$dl"/*-dbg_*.deb
  echo "$dir" > "$stamp"
  echo "$gen $dir"
}

apt_cache() { local suite=$1; shift; if [ "$suite" = bookworm ]; then apt-cache "$@"; else private_apt_cache "$suite" "$@"; fi; }
private_apt_cache() {
  local suite=$1; shift; local d=$APTDIR/$suite
  apt-cache -o Dir::Etc::SourceList="$d/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::status="$d/status" "$@"
}
apt_cache_dep() { apt_cache "$1" depends "$2" 2>/dev/null | awk '/^ *Depends:/{print $2; exit}'; }
apt_cache_deps_all() { apt_cache "$1" depends "$2" 2>/dev/null | awk '/^ *Depends:/{print $2}'; }
apt_cache_ver() { apt_cache "$1" policy "$2" 2>/dev/null | awk '/Candidate:/{print $2; exit}'; }

gens=${1:-6.1}
[ "$gens" = all ] && gens="5.10 6.1 6.12 7"
for g in $gens; do fetch "$g"; done
