"""`pfnscope rmap PFN`: every leaf entry of every task over a pfn, checked
against the guest's own view of every scenario process (tests/vm: the truth
program reads /proc/PID/pagemap of each before the dump; pagemap skips
VM_PFNMAP VMAs, whose pfns the manifest records from the /dev/mem offset).

For each pfn picked from the manifest (a fork-shared anon page, the /dev/mem
pages of the shared and private mappings, a THP subpage under a PMD leaf,
the scenario binary's text, and on the buggy kernel the page freed while
still mapped), the set of (pid, address) that pfnscope finds in the dump
must be exactly the set the kernel's pagemap reported, in the processes the
truth covers; a pfn that is not file-backed must be mapped nowhere else.
"""
from collections import defaultdict
from typing import Dict, List, Set, Tuple

import pytest

import lab_support as L

KEYS = [k for k in L.fixture_keys() if k in (("6.1", "max", "healthy"), ("6.12", "max", "healthy"),
                                             ("7", "max", "healthy"), ("6.1", "max", "buggy"))]
FORMATS = ("elf-paging", "kdump-real")
CASES = [(k, f) for k in KEYS for f in FORMATS]
IDS = [f"{L.key_id(k)}-{f}" for k, f in CASES]

# manifest kinds whose first page's pfn is looked up (when present)
KINDS = ("anon_fork_shared", "devmem_shared_lowram", "devmem_private_lowram_cow",
         "devmem_shared_hole", "thp_anon", "buggy_maps_freed_page", "buggy_special_over_ram")


def _truth(fx) -> Tuple[Dict[int, Set[Tuple[int, int]]], Set[int], Set[int]]:
    """{pfn: {(pid, addr)}} of present pages (pagemap, plus the manifest's
    pfnmap pages), the pids covered, file pfns."""
    by_pfn: Dict[int, Set[Tuple[int, int]]] = defaultdict(set)
    file_pfns: Set[int] = set()
    for o in fx.pagemap:
        if o.get("present") and o.get("pfn") is not None:
            by_pfn[o["pfn"]].add((o["pid"], int(o["addr"], 16)))
            if o.get("file"):
                file_pfns.add(o["pfn"])
    for m in fx.manifest:
        for p in m.get("pages") or []:
            if p.get("pfn") is not None and p.get("kind") == "present" and "pid" in m:
                by_pfn[p["pfn"]].add((int(m["pid"]), int(p["addr"], 16)))
    return by_pfn, {o["pid"] for o in fx.pagemap}, file_pfns


def _picks(fx, by_pfn) -> List[Tuple[str, int, int]]:
    """(kind, pfn, pid of the manifest line or -1)"""
    out = []
    for m in fx.manifest:
        if m.get("kind") not in KINDS or not m.get("pages"):
            continue
        pages = [p for p in m["pages"] if p.get("pfn") is not None]
        if m["kind"] == "thp_anon":
            pages = pages[-1:]   # the last tail page of the PMD-mapped THP
        for p in pages[:1]:
            if p["pfn"] in by_pfn:
                out.append((m["kind"], p["pfn"], int(m["pid"])))
    # the most-shared pfn: the scenario binary's text, mapped by every process
    shared = max(by_pfn, key=lambda pfn: len(by_pfn[pfn]))
    out.append(("most_shared", shared, -1))
    return list(dict.fromkeys(out))


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_rmap_finds_what_pagemap_knows(key, fmt):
    fx = L.fixture(*key)
    by_pfn, covered, file_pfns = _truth(fx)
    picks = _picks(fx, by_pfn)
    kinds = {k for k, _, _ in picks}
    assert {"anon_fork_shared", "thp_anon", "most_shared"} <= kinds, picks
    assert any(k.startswith("devmem") for k in kinds), picks
    if key[2] == "buggy":
        assert "buggy_maps_freed_page" in kinds, picks
    # one search over the range that holds every pick
    lo, hi = min(p for _, p, _ in picks), max(p for _, p, _ in picks)
    r = L.run("-c", fx.dumps[fmt], "-s", fx.vmlinux, "rmap", f"{lo}-{hi}", "--json")
    # exit 2 only where the dump lacks a task's mm (makedumpfile filtering
    # a kernel it does not know): those tasks are left out of the truth
    errored = set()
    for o in r.json():
        if o["type"] == "error":
            L.assert_filtered_message(key, fmt, o["message"])
            errored.add(o["pid"])
    assert r.rc == (2 if errored else 0), r
    covered -= errored
    by_pfn = {pfn: {h for h in hs if h[0] not in errored} for pfn, hs in by_pfn.items()}
    entries = [o for o in r.json() if o["type"] == "entry"]
    for o in entries:
        n = L.LEVEL_SIZE[o["level"]] // L.PAGE
        assert o["pfn"] <= hi and o["pfn"] + n > lo, o
    for kind, pfn, pid in picks:
        if pid in errored:
            continue
        hits = set()
        for o in entries:
            if o["pfn"] <= pfn < o["pfn"] + L.LEVEL_SIZE[o["level"]] // L.PAGE:
                hits.add((o["pid"], int(o["addr"], 16) + (pfn - o["pfn"]) * L.PAGE))
        want = by_pfn[pfn]
        assert {h for h in hits if h[0] in covered} == want, (kind, pfn, hits ^ want)
        if pfn not in file_pfns:
            assert hits == want, (kind, pfn, hits - want)
        assert errored or len(want) >= (2 if kind in ("anon_fork_shared", "most_shared") else 1), \
            (kind, want)


def test_rmap_range_and_errors():
    """A range finds the union of its pfns; a bad range is a usage error."""
    key = ("6.1", "max", "healthy")
    fx = L.fixture(*key)
    by_pfn, covered, _ = _truth(fx)
    m = next(m for m in fx.manifest if m.get("kind") == "anon_fork_shared")
    pfns = sorted(p["pfn"] for p in m["pages"] if p.get("pfn") is not None)
    lo, hi = pfns[0], pfns[-1]
    r = L.run("-c", fx.dumps["elf-paging"], "-s", fx.vmlinux, "rmap", f"{lo:#x}-{hi:#x}", "--json")
    assert r.rc == 0, r
    got = {(o["pid"], int(o["addr"], 16)) for o in r.json()
           if o["type"] == "entry" and o["pid"] in covered}
    want = {h for pfn in range(lo, hi + 1) for h in by_pfn.get(pfn, ())}
    assert got == want
    vmas = [o for o in r.json() if o["type"] == "vma"]
    assert vmas and all(o["pid"] in {p for p, _ in got} or o["pid"] not in covered for o in vmas)
    for bad in ("12-3", "x", "-1"):
        r = L.run("-c", fx.dumps["elf-paging"], "-s", fx.vmlinux, "rmap", bad)
        assert r.rc == 2 and "pfn" in r.err and r.out == "", (bad, r)
