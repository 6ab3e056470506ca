#!/usr/bin/env bash
# Quick self-contained check of the guest programs and the buggy module on a real
# kernel: builds a throw-away busybox initramfs, boots it under QEMU (TCG), runs
# scenarios + buggy + truth, and brings OUTDIR back to the host (tar+base64 over
# the serial console).  Not the lab's harness: no dumps, no 9p.
#
# usage: smoke.sh [KERNEL_DIR] [OUT]
#   KERNEL_DIR  cached kernel dir with vmlinuz and modules/ (default: the 6.1 one)
#   OUT         where the guest's OUTDIR lands (default: tests/vm/guest/build/smoke)
# env: BUGGY_KO=path/to/pfnscope_buggy.ko (default tests/vm/module/pfnscope_buggy.ko,
#      skipped when absent), NOBUGGY=1 to boot without the module, CPU=max|qemu64.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${PFNSCOPE_CACHE:-$HOME/.cache/pfnscope}
KD=${1:-$CACHE/kernels/6.1.0-56-amd64}
OUT=${2:-$HERE/build/smoke}
KO=${BUGGY_KO:-$HERE/../module/pfnscope_buggy.ko}
CPU=${CPU:-max}
[ -s "$KD/vmlinuz" ] || { echo "smoke: no $KD/vmlinuz" >&2; exit 2; }
make -s -C "$HERE" >&2

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
R=$W/root
mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,lib/modules,out}
cp /bin/busybox "$R/bin/busybox"
for a in sh mount mkdir cat echo insmod mkswap swapon sleep poweroff tar base64 gzip ls \
         dmesg grep head wc cut tr sed; do ln -s busybox "$R/bin/$a"; done
cp "$HERE"/build/{scenarios,buggy,truth} "$R/bin/"
for m in zsmalloc lz4_compress lz4 zram af_packet; do
  [ -f "$KD/modules/$m.ko" ] && cp "$KD/modules/$m.ko" "$R/lib/modules/"
done
if [ -z "${NOBUGGY:-}" ] && [ -f "$KO" ]; then cp "$KO" "$R/lib/modules/pfnscope_buggy.ko"; fi
cat > "$R/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in zsmalloc lz4_compress lz4 zram af_packet; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
done
echo 16 > /proc/sys/vm/nr_hugepages
mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
echo 1 > /sys/kernel/mm/transparent_hugepage/use_zero_page
if [ -e /sys/block/zram0 ]; then
  echo 128M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && swapon /dev/zram0
fi
[ -f /lib/modules/pfnscope_buggy.ko ] && insmod /lib/modules/pfnscope_buggy.ko
echo "SMOKE: kernel $(cat /proc/sys/kernel/osrelease)"
/bin/scenarios /out; echo "SMOKE: scenarios rc=$?"
[ -e /dev/pfnscope_buggy ] && { /bin/buggy /out; echo "SMOKE: buggy rc=$?"; }
/bin/truth /out; echo "SMOKE: truth rc=$?"
cat /proc/swaps > /out/swaps.txt; cat /proc/iomem > /out/iomem.txt
dmesg > /out/dmesg.txt
echo "SMOKE-TAR-BEGIN"; tar czf - out | base64; echo "SMOKE-TAR-END"
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$W/initrd.gz"

LOG=$W/serial.log
timeout 300 qemu-system-x86_64 -accel tcg,thread=single -cpu "$CPU" -m 1G -smp 1 -nographic -no-reboot \
  -kernel "$KD/vmlinuz" -initrd "$W/initrd.gz" -append "console=ttyS0 panic=-1 quiet" \
  -vga std -net none > "$LOG" 2>&1 || true
grep -a '^SMOKE:' "$LOG" | tr -d '\r' >&2 || true
rm -rf "$OUT"; mkdir -p "$OUT"
sed -n '/^SMOKE-TAR-BEGIN/,/^SMOKE-TAR-END/p' "$LOG" | tr -d '\r' | sed '1d;$d' | base64 -d | tar xzf - -C "$OUT" --strip-components=1 \
  || { echo "smoke: no output from the guest; log:" >&2; tail -40 "$LOG" >&2; exit 1; }
cp "$LOG" "$OUT/serial.log"
echo "smoke: guest output in $OUT" >&2
# summary: one line per manifest entry
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
d = sys.argv[1]
for l in open(d + "/manifest.jsonl"):
    m = json.loads(l)
    if "error" in m:
        print("%-28s ERROR %s" % (m["kind"], m["error"])); continue
    pg = m.get("pages", [])
    print("%-28s pid %-4d %s-%s flags[%s] expect %s pages %d diag %s" % (
        m["kind"], m["pid"], m["start"], m["end"], m.get("vm_flags_seen", m.get("vm_flags_raw", "")),
        json.dumps(m["expect"], separators=(",", ":")), len(pg), ",".join(m["diagnoses"])))
PY
