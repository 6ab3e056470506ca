#!/usr/bin/env bash
# Fetch and cache the arm64 lab's kernels and guest userland from Debian's registry,
# through a private apt configuration per suite with APT::Architecture=arm64 (own
# sources list, lists and cache; the machine's apt state is never touched).
#
# usage: kernels.sh 6.1|6.12|busybox     prints "GEN DIR" (or "busybox PATH") when ready
# Layout: $PFNSCOPE_CACHE/arm64/kernels/RELEASE/{vmlinuz,vmlinux,modules/*.ko,release}
#         $PFNSCOPE_CACHE/arm64/busybox
set -euo pipefail
CACHE=${PFNSCOPE_CACHE:-$HOME/.cache/pfnscope}/arm64
KDIR=$CACHE/kernels
APTDIR=$CACHE/apt
mkdir -p "$KDIR" "$APTDIR"

# Modules the guest loads (9p host share for the truth files, zram, packet, fw_cfg
# for -device vmcoreinfo); missing ones are built in and skipped.
MODULES="fs/netfs/netfs fs/fscache/fscache net/9p/9pnet drivers/virtio/virtio_ring
drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev
drivers/virtio/virtio_pci drivers/virtio/virtio_mmio net/9p/9pnet_virtio fs/9p/9p
drivers/firmware/qemu_fw_cfg lib/lz4/lz4_compress lib/lz4/lz4hc_compress crypto/lz4 crypto/lzo
crypto/lzo-rle lib/lzo/lzo_compress mm/zsmalloc drivers/block/zram/zram net/packet/af_packet"

private_apt() { # SUITE ARGS...  apt-get for arm64 with a private configuration for SUITE
  local suite=$1; shift
  local d=$APTDIR/$suite
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/etc/preferences.d"
  case $suite in
    bookworm) printf '%s\n' "deb [arch=arm64] http://deb.debian.org/debian bookworm main" \
                "deb [arch=arm64] http://deb.debian.org/debian-security bookworm-security main" ;;
    *) echo "deb [arch=arm64] http://deb.debian.org/debian $suite main" ;;
  esac > "$d/etc/sources.list"
  : > "$d/status"
  "${APT_TOOL:-apt-get}" -q -o APT::Architecture=arm64 -o APT::Architectures=arm64 \
    -o Dir::Etc::SourceList="$d/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::Preferences="$d/etc/preferences" -o Dir::Etc::PreferencesParts="$d/etc/preferences.d" \
    -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::status="$d/status" \
    -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 "$@"
}
private_apt_cache() { APT_TOOL=apt-cache private_apt "$@"; }
updated=""
update() { case " $updated " in *" $1 "*) ;; *) private_apt "$1" update >&2; updated="$updated $1" ;; esac; }

fetch_busybox() {
  local out=$CACHE/busybox
  if [ -x "$out" ]; then echo "busybox $out"; return; fi
  update bookworm
  local dl=$CACHE/debs/busybox; mkdir -p "$dl"
  (cd "$dl" && { ls busybox-static_*.deb >/dev/null 2>&1 || private_apt bookworm download busybox-static:arm64 >&2; })
  local t; t=$(mktemp -d)
  dpkg-deb -x "$dl"/busybox-static_*.deb "$t"
  cp "$t/bin/busybox" "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$t"
  echo "busybox $out"
}

# The root the guest sees as its 9p "host" share for the real kdump: arm64
# kexec-tools and makedumpfile with the shared libraries they link (no
# maintainer scripts run), the arm64 busybox, and the mount points the lab's
# init uses (tests/vm/init runs `chroot /host kexec -p` and, in the capture
# kernel, `chroot /host makedumpfile`).
# Everything from trixie: bookworm's kexec-tools 2.0.26 needs _text in
# /proc/kallsyms to compute PAGE_OFFSET ("Can't get the symbol of _text"), which
# Debian's arm64 6.1 (no CONFIG_KALLSYMS_ALL) does not list, and bookworm's
# makedumpfile 1.7.2 then fails ("vaddr_to_paddr_arm64: Can't read pgd").
KDUMP_PKGS_TRIXIE="kexec-tools makedumpfile libc6 libgcc-s1 zlib1g liblzma5 libbz2-1.0 libdw1t64
libelf1t64 liblzo2-2 libzstd1 libxenmisc4.20 libext2fs2t64 libcom-err2 libfdt1 libuuid1 libxencall1
libxendevicemodel1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenhypfs1 libxenstore4
libxentoolcore1 libxentoollog1 libyajl2"
KDUMP_PKGS=""
fetch_kdumproot() {
  local root=$CACHE/kdumproot
  local want="$KDUMP_PKGS / $KDUMP_PKGS_TRIXIE"
  if [ -f "$root/.ready" ] && [ "$(cat "$root/.ready")" = "$want" ]; then echo "kdumproot $root"; return; fi
  update bookworm
  update trixie
  local dl=$CACHE/debs/kdumproot dlt=$CACHE/debs/kdumproot-trixie; mkdir -p "$dl" "$dlt"
  (cd "$dl" && for p in $KDUMP_PKGS; do
     ls "${p}"_*.deb >/dev/null 2>&1 || private_apt bookworm download "$p:arm64" >&2; done)
  (cd "$dlt" && for p in $KDUMP_PKGS_TRIXIE; do
     ls "${p}"_*.deb >/dev/null 2>&1 || private_apt trixie download "$p:arm64" >&2; done)
  rm -rf "$root.tmp" && mkdir -p "$root.tmp"
  for deb in "$dl"/*.deb; do [ -e "$deb" ] || continue; dpkg-deb -x "$deb" "$root.tmp"; done
  # merged /usr, as trixie's packages expect: bookworm's /lib, /bin, /sbin into
  # /usr, then trixie's files over them (its glibc wins)
  for d in lib bin sbin; do
    if [ -d "$root.tmp/$d" ] && [ ! -L "$root.tmp/$d" ]; then
      mkdir -p "$root.tmp/usr/$d" && cp -a "$root.tmp/$d/." "$root.tmp/usr/$d/" && rm -rf "$root.tmp/$d"
    fi
    mkdir -p "$root.tmp/usr/$d" && ln -sfn "usr/$d" "$root.tmp/$d"
  done
  for deb in "$dlt"/*.deb; do [ -e "$deb" ] || continue; dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$root.tmp"; done
  mkdir -p "$root.tmp"/{proc,sys,dev,tmp,out,lab}
  cp "$(fetch_busybox | awk '{print $2}')" "$root.tmp/bin/busybox"
  # kexec-tools' arm64 get_page_offset() needs _text in /proc/kallsyms only to
  # tell the 5.4+ VA layout (image above the middle of the VA space); Debian's
  # arm64 6.1 lists no _text (no CONFIG_KALLSYMS_ALL, _text precedes _stext).
  # /sbin/kexec adds _text = _stext's address (same half of the VA space)
  mv "$root.tmp/usr/sbin/kexec" "$root.tmp/usr/sbin/kexec.real"
  cat > "$root.tmp/usr/sbin/kexec" <<'KEXEC'
#!/bin/busybox sh
if ! /bin/busybox grep -q ' _text$' /proc/kallsyms; then
  s=$(/bin/busybox awk '$3 == "_stext" {print $1; exit}' /proc/kallsyms)
  { /bin/busybox cat /proc/kallsyms; echo "$s T _text"; } > /tmp/kallsyms.kexec
  /bin/busybox mount --bind /tmp/kallsyms.kexec /proc/kallsyms
fi
exec /usr/sbin/kexec.real "$@"
KEXEC
  chmod 755 "$root.tmp/usr/sbin/kexec"
  ln -sf busybox "$root.tmp/bin/sh"
  rm -rf "$root" && mv "$root.tmp" "$root"
  echo "$want" > "$root/.ready"
  echo "kdumproot $root"
}

fetch() { # GEN: 6.1 (bookworm) | 6.12 (trixie)
  local gen=$1 suite
  case $gen in
    6.1) suite=bookworm ;;
    6.12) suite=trixie ;;
    busybox) fetch_busybox; return ;;
    kdumproot) fetch_kdumproot; return ;;
    *) echo "kernels.sh: unknown arm64 kernel generation '$gen' (6.1, 6.12)" >&2; exit 2 ;;
  esac
  local stamp=$KDIR/$gen.ready
  if [ -f "$stamp" ] && [ -f "$(cat "$stamp")/vmlinux" ] &&
     [ "$(cat "$(cat "$stamp")/modules.list" 2>/dev/null)" = "$MODULES" ]; then
    echo "$gen $(cat "$stamp")"; return
  fi
  update "$suite"
  local img ver
  img=$(private_apt_cache "$suite" depends linux-image-arm64 2>/dev/null |
        awk '/^ *Depends:/{print $2}' | grep -E '^linux-image-[0-9]' | head -n1)
  [ -n "$img" ] || { echo "kernels.sh: $gen: no linux-image-arm64 dependency in $suite" >&2; exit 2; }
  ver=$(private_apt_cache "$suite" policy "$img" 2>/dev/null | awk '/Candidate:/{print $2; exit}')
  local rel=${img#linux-image-}
  local dir=$KDIR/$rel dl=$CACHE/debs/$rel
  mkdir -p "$dir/modules" "$dl"
  echo "kernels.sh: $gen: $img $ver (arm64)" >&2
  (cd "$dl" && for p in "$img" "$img-dbg"; do
     case $p in *-dbg) [ -s "$dir/vmlinux" ] && continue ;; esac
     ls "$p"_*.deb >/dev/null 2>&1 || private_apt "$suite" download "$p:arm64" >&2; done)
  for deb in "$dl"/*.deb; do
    case $deb in
      *-dbg_*)
        local member list
        list=$(dpkg-deb --fsys-tarfile "$deb" | tar -tv)
        member=$(awk '$1 ~ /^-/ && $NF ~ /usr\/lib\/debug\/(boot\/vmlinux-[^\/]*|lib\/modules\/[^\/]*\/vmlinux)$/ {print $NF; exit}' <<<"$list")
        if [ -n "$member" ] && [ ! -s "$dir/vmlinux" ]; then
          dpkg-deb --fsys-tarfile "$deb" | tar -xO "$member" > "$dir/vmlinux.tmp" && mv "$dir/vmlinux.tmp" "$dir/vmlinux"
        fi ;;
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
  echo "$rel" > "$dir/release"
  echo "$MODULES" > "$dir/modules.list"
  # the -dbg .deb is only needed for its vmlinux
  rm -f "$dl"/*-dbg_*.deb
  echo "$dir" > "$stamp"
  echo "$gen $dir"
}

for g in ${1:-6.1}; do fetch "$g"; done
