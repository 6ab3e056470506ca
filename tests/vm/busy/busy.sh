#!/bin/busybox sh
# busy.sh OUT -- the lab's busy scenario, run by the guest init (not chrooted).
#
# A short burst of ordinary memory activity: stress-ng memory stressors, a
# Python process and a C compile loop run from the host's root (chroot /host,
# 9p), THP "always", anon mTHP 64 KiB where the kernel has it, shmem THP on a
# huge=always tmpfs, KSM, zram swap (set up by init), and `states` building the
# large-folio / marker states deterministically.  Then every user process is
# frozen (SIGSTOP), the daemons that move pages on their own are stopped
# (ksmd, khugepaged, proactive compaction), and `record` writes the kernel's
# view of every page of every frozen process.
# OUT/manifest.jsonl: the states' lines, then one {"kind":"process"} per pid.
OUT=$1
BUSY_SECONDS=${BUSY_SECONDS:-8}
T=/sys/kernel/mm/transparent_hugepage
K=/sys/kernel/mm/ksm
note() { echo "busy: $*"; }

echo always > $T/enabled
[ -e $T/hugepages-64kB/enabled ] && echo always > $T/hugepages-64kB/enabled && note "mTHP 64kB always"
[ -e /proc/sys/vm/compaction_proactiveness ] && echo 0 > /proc/sys/vm/compaction_proactiveness
echo 2000 > $K/pages_to_scan
echo 1 > $K/sleep_millisecs
echo 1 > $K/run
mkdir -p /hugetmp && mount -t tmpfs -o huge=always,size=64M tmpfs /hugetmp || note "no huge=always tmpfs"
mkdir -p /host/dev/shm && mount -t tmpfs tmpfs /host/dev/shm
: > "$OUT/manifest.jsonl"

# the compile loop's input: our own source (no path into the host checkout)
cp /lib/busy/states.c /host/tmp/busy-cc.c
chroot /host /bin/sh -c 'cd /tmp && exec stress-ng --temp-path /tmp --timeout 600 \
  --vm 1 --vm-bytes 16M --vm-madvise mergeable --mmap 1 --mmap-bytes 8M --madvise 1 \
  --fork 1 --fork-max 4 --mremap 1 --mremap-bytes 4M --memfd 1 --memfd-bytes 4M \
  --memfd-fds 16 --shm 1 --shm-bytes 4M --userfaultfd 1 --userfaultfd-bytes 2M \
  --zero 1 --fault 1' > /out/stress-ng.log 2>&1 &
chroot /host /usr/bin/python3 -c '
import time, array
a = bytearray(6 << 20)
for i in range(0, len(a), 4096): a[i] = i % 251
d = {str(i): [i] * 3 for i in range(60000)}
print("python ready", flush=True)
time.sleep(10 ** 6)' > /out/python.log 2>&1 &
chroot /host /bin/sh -c 'cd /tmp && while :; do gcc -O2 -c busy-cc.c -o busy-cc.o; done' \
  > /out/cc.log 2>&1 &

/lib/busy/states "$OUT" > /out/states.log 2>&1 || note "states rc $?"
sleep "$BUSY_SECONDS"
n=0
while [ "$(cat $K/pages_sharing)" = 0 ] && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
note "ksm pages_shared=$(cat $K/pages_shared) pages_sharing=$(cat $K/pages_sharing)"

# stop what changes pages behind frozen processes: ksmd keeps merged pages at
# run=0; khugepaged stops when no THP size is enabled (7.x khugepaged also
# collapses anon mTHP sizes: every hugepages-*/enabled must go)
echo 0 > $K/run
echo never > $T/enabled
for f in $T/hugepages-*/enabled; do [ -e "$f" ] && echo never > "$f"; done
n=0
while pidof khugepaged >/dev/null && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
pidof khugepaged >/dev/null && note "khugepaged still running"
self=$$
pids=""
pass=0
while [ $pass -lt 20 ]; do
  new=0
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    { [ "$p" = 1 ] || [ "$p" = "$self" ]; } && continue
    case " $pids " in *" $p "*) continue;; esac
    read -r x 2>/dev/null < "$d/maps" || continue  # kernel threads, zombies
    kill -STOP "$p" 2>/dev/null && pids="$pids $p" && new=1
  done
  [ $new = 0 ] && break
  pass=$((pass + 1))
done
for p in $pids; do
  n=0
  while [ $n -lt 100 ]; do
    s=$(sed 's/.*) //;s/ .*//' /proc/$p/stat 2>/dev/null)
    case $s in T|t|Z|X|"") break;; esac
    n=$((n + 1)); sleep 0.1
  done
done
live=""
for p in $pids; do
  read -r x 2>/dev/null < /proc/$p/maps || continue
  live="$live $p"
  echo "{\"kind\":\"process\",\"pid\":$p,\"comm\":\"$(cat /proc/$p/comm)\"}" >> "$OUT/manifest.jsonl"
done
note "frozen:$(echo $live | wc -w) processes"
/lib/busy/record "$OUT" $live || { note "record failed"; exit 1; }
grep -E '^(AnonHugePages|ShmemHugePages|SwapCached|SwapTotal|SwapFree|Mlocked|Hugetlb|MemFree):' /proc/meminfo
