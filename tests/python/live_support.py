"""Helpers for the live-target tests (test_live_*.py): a running lab guest
read through QEMU's gdbstub (GDB command), its RAM file (--qemu-ram) and
/proc/kcore inside the guest (-k), compared with a dump taken right after.

One guest boot per test module (module-scoped fixture); one QEMU at a time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in (ROOT, os.path.join(ROOT, "src", "python")):
    if p not in sys.path:
        sys.path.insert(0, p)

from tests.vm import lab  # noqa: E402,F401  (live_support.lab for the tests)

BIN = os.path.join(ROOT, "bin", "pfnscope")
GDB_PLUGIN = os.path.join(ROOT, "plugins", "gdb", "pfnscope.py")
# The CLI the guest runs from the host's root (chroot over 9p).  The tree's
# bin/pfnscope by default (what `make install` installs); PFNSCOPE_GUEST_CLI=pfnscope
# runs the installed one.
GUEST_CLI = os.environ.get("PFNSCOPE_GUEST_CLI", BIN)

# Fields that legitimately change between two reads of a running guest:
# - raw: the accessed (bit 5) and dirty (bit 6) bits of a present entry
#   (set by the MMU when the process runs);
# - page flags that reclaim/LRU code flips on its own: referenced, active,
#   lru, workingset (e.g. the vdso page gains "referenced");
# - refcount and mapcount of shared pages in flux: file or vdso pages that
#   other processes map and unmap meanwhile (busybox text while init runs
#   `sleep`, the vdso and libraries of the -k run itself).  Only pages that
#   are not anonymous and are mapped more than once on one side; they are
#   listed as "in flux" (see compare()).  Anonymous pages and pages mapped
#   once must agree exactly.
RAW_VOLATILE = (1 << 5) | (1 << 6)
FLAGS_VOLATILE = {"referenced", "active", "lru", "workingset"}


def cli(*args: str, timeout: int = 600) -> Tuple[int, str, str]:
    env = dict(os.environ, PFNSCOPE_NO_PROGRESS="1")
    cp = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)
    return cp.returncode, cp.stdout, cp.stderr


def jsonl(text: str) -> List[dict]:
    """--json records without the leading target record."""
    recs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [o for o in recs if o.get("type") != "target"]


def scenario_pids(lv) -> List[int]:
    return sorted({int(m["pid"]) for m in lv.manifest if "pid" in m})


def walk_args(pids: Sequence[int]) -> List[str]:
    a = ["walk"]
    for p in pids:
        a += ["-p", str(p)]
    return a + ["--all", "--json"]


def gdb_run(lv, commands: Sequence[str], timeout: int = 600) -> List[Tuple[int, str]]:
    """Run pfnscope GDB commands over the guest's gdbstub in one GDB; returns
    [(rc, output)] per command ($pfnscope_rc; None when the command errored)."""
    argv = ["gdb", "-q", "-batch", "-nx", lv.vmlinux, "-ex", "set pagination off",
            "-ex", f"target remote {lv.gdb_socket}", "-ex", f"source {GDB_PLUGIN}"]
    for i, c in enumerate(commands):
        argv += ["-ex", "set $pfnscope_rc = -1", "-ex", f"python print('@@BEGIN {i}')",
                 "-ex", c, "-ex", f"python print('@@END {i}', gdb.convenience_variable('pfnscope_rc'))"]
    argv += ["-ex", "detach"]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    out: List[Tuple[Optional[int], str]] = []
    text = cp.stdout
    for i in range(len(commands)):
        b = text.find(f"@@BEGIN {i}\n")
        e = text.find(f"@@END {i} ")
        assert b >= 0 and e > b, (f"gdb: command {i} ({commands[i]!r}) did not run",
                                  cp.stdout[-3000:], cp.stderr[-3000:])
        rc = text[e:].split("\n", 1)[0].split()[-1]
        out.append((int(rc) if rc.lstrip("-").isdigit() else None, text[b + len(f"@@BEGIN {i}\n"):e]))
    return out


def take_dump(lv, name: str = "after.vmcore") -> str:
    """QEMU dump-guest-memory (ELF, physical) of the live guest into its dir."""
    path = os.path.join(lv.dir, name)
    lv.qmp.cmd("dump-guest-memory", timeout=600, paging=False, protocol="file:" + path,
               format="elf")
    return path


def entries(objs: List[dict]) -> Dict[Tuple[int, int], dict]:
    return {(o["pid"], int(o["addr"], 16)): o for o in objs if o.get("type") == "entry"}


def _norm(e: dict) -> dict:
    raw = int(e["raw"], 16)
    if e["kind"] == "present":
        raw &= ~RAW_VOLATILE
    page = e.get("page")
    return {
        "raw": raw, "kind": e["kind"], "level": e["level"], "pfn": e["pfn"],
        "special": e["special"], "devmap": e["devmap"], "writable": e["writable"],
        "normal_page": e["normal_page"], "vnp_reason": e["vnp_reason"],
        "page_state": e.get("page_state"), "consumers": e["consumers"],
        "diagnoses": e["diagnoses"],
        "flags": page and sorted(set(page["flags"]) - FLAGS_VOLATILE),
        "anon": page and page["anon"], "reserved": page and page["reserved"],
        "head_pfn": page and page["head_pfn"],
    }


def compare(live: List[dict], dump: List[dict]) -> Tuple[List[str], List[str], int]:
    """(differences, refcounts in flux, entries compared).  Every entry of one
    side must be on the other with equal fields modulo the volatile ones; a
    refcount/mapcount may differ only on a page that is
    not anonymous and mapped more than once (see the comment at the top)."""
    a, b = entries(live), entries(dump)
    diffs: List[str] = []
    flux: List[str] = []
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            diffs.append(f"pid {k[0]} {k[1]:#x}: only in {'live' if k in a else 'dump'}")
            continue
        x, y = _norm(a[k]), _norm(b[k])
        if x != y:
            d = {f: (x[f], y[f]) for f in x if x[f] != y[f]}
            diffs.append(f"pid {k[0]} {k[1]:#x}: {d}")
            continue
        pa, pb = a[k].get("page"), b[k].get("page")
        if pa and pb and (pa["refcount"], pa["mapcount"]) != (pb["refcount"], pb["mapcount"]):
            what = (f"pid {k[0]} {k[1]:#x} pfn {a[k]['pfn']:#x}: rc/mc "
                    f"{pa['refcount']}/{pa['mapcount']} -> {pb['refcount']}/{pb['mapcount']}")
            if not pa["anon"] and max(pa["mapcount"], pb["mapcount"]) > 1:
                flux.append(what)
            else:
                diffs.append(what + " (anonymous or exclusively mapped page)")
    return diffs, flux, len(set(a) & set(b))
