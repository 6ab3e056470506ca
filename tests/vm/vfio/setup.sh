#!/bin/busybox sh
# VFIO lab fixture, inside the guest (run by init for pfnlab.scenario=vfio):
# bind every ivshmem-plain device (1af4:1110) to vfio-pci through new_id, then
# `vfioguest` maps each one's BAR 2 through the VFIO device fd (1 GiB-aligned for
# a BAR of 1 GiB or more, 2 MiB-aligned otherwise) and appends its manifest line.
# The magic page comes from `scenarios` (truth and the dump tests read it back).
# usage: setup.sh OUT          bind, map, manifest lines
#        setup.sh retouch OUT  after truth: every vfioguest process reads its BAR
#                              again (SIGUSR1; reading smaps zapped PUD leaves), so
#                              the dumps hold what the first read faulted in
set -u
die() { echo "vfio-setup: $*" >&2; exit 1; }
if [ "$1" = retouch ]; then
  OUT=$2
  pids=$(grep -o '"kind": "vfio_pci_bar", "pid": [0-9]*' "$OUT/manifest.jsonl" | grep -o '[0-9]*$')
  [ -n "$pids" ] || die "retouch: no vfio_pci_bar pid in $OUT/manifest.jsonl"
  for p in $pids; do
    rm -f "$OUT/vfio-retouch-$p"
    kill -USR1 "$p" || die "retouch: kill -USR1 $p"
    i=0
    while [ ! -e "$OUT/vfio-retouch-$p" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    [ -e "$OUT/vfio-retouch-$p" ] || die "retouch: pid $p wrote no $OUT/vfio-retouch-$p"
    echo "vfio-setup: retouch pid $p: faults/sum $(cat "$OUT/vfio-retouch-$p")"
  done
  exit 0
fi
OUT=$1

# Debian builds THP "always" (CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS=y), the lab boots
# "madvise": the fault path offers ->huge_fault() of a VMA that is not anonymous only
# under "always" or VM_HUGEPAGE (__thp_vma_allowable_orders), so the VFIO guest runs
# with Debian's default, as a VMM host would.
[ -w /sys/kernel/mm/transparent_hugepage/enabled ] && echo always > /sys/kernel/mm/transparent_hugepage/enabled

SCENARIOS_ONLY=magic_page /bin/scenarios "$OUT" || die "scenarios magic_page"

[ -d /sys/bus/pci/drivers/vfio-pci ] || die "no vfio-pci driver (modules: $(ls /lib/modules | tr '\n' ' '))"
echo "1af4 1110" > /sys/bus/pci/drivers/vfio-pci/new_id || die "vfio-pci new_id"
devs=""
for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ] || continue
  bdf=${d##*/}
  i=0
  while [ "$(readlink "$d/driver" 2>/dev/null)" = "" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  case $(readlink "$d/driver") in */vfio-pci) ;; *) die "$bdf: not bound to vfio-pci ($(readlink "$d/driver"))";; esac
  set -- $(sed -n 3p "$d/resource")
  size=$(( $2 - $1 + 1 ))
  align=$((2 << 20))
  [ $size -ge $((1 << 30)) ] && align=$((1 << 30))
  echo "vfio-setup: $bdf BAR2 $1-$2 size $size group $(readlink "$d/iommu_group") align $align"
  devs="$devs $bdf:$align"
done
[ -n "$devs" ] || die "no ivshmem device (1af4:1110)"
/bin/vfioguest "$OUT" $devs || die "vfioguest"
