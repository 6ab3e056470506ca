"""Busy fixtures (tests/vm/busy): built, frozen busy, and the states the
running kernel supports are really there per the kernel's own truth
(pagemap, kpageflags, smaps).  pfnscope's agreement with that truth is
tests/python/test_busy_agreement.py."""
import os

import pytest

from tests.vm import lab
from tests.vm.conftest import lab_fixture, fixture_ids

BUSY = lab.busy_set()
# include/uapi/linux/kernel-page-flags.h
KPF_ANON, KPF_SWAPCACHE, KPF_HEAD, KPF_TAIL, KPF_HUGE = 12, 13, 15, 16, 17
KPF_KSM, KPF_THP, KPF_ZERO_PAGE, KPF_MLOCKED = 21, 22, 24, 33
PM_UFFD_WP = 1 << 57


def _fx(item):
    if item is None:
        pytest.skip("not in PFNSCOPE_LAB_KERNELS")
    return lab_fixture(*item)


def _params(items):
    return dict(argvalues=items or [None], ids=fixture_ids(items) if items else ["none"])


def _version(fx):
    return tuple(int(x) for x in fx.release.split("-")[0].split(".")[:2])


def _lines(fx, kind):
    return [m for m in fx.manifest if m.get("kind") == kind and m.get("start")]


def _pages(fx, m):
    pid, s, e = int(m["pid"]), int(m["start"], 16), int(m["end"], 16)
    return [p for p in fx.pagemap if int(p["pid"]) == pid and s <= int(p["addr"], 16) < e]


def _kpf(p):
    return int(p["kpageflags"], 16) if p.get("kpageflags") else 0


@pytest.mark.parametrize("item", **_params(BUSY))
def test_busy_fixture_complete(item):
    fx = _fx(item)
    assert os.path.exists(os.path.join(fx.dir, "complete"))
    assert set(fx.dumps) == set(lab.DUMP_FORMATS)
    for name, p in fx.dumps.items():
        assert os.path.getsize(p) > 1 << 20, name
    assert fx.info["source_hash"] == lab.busy_hash()
    la57 = fx.cpu == "max" and not fx.release.startswith("5.10.")
    assert fx.levels == (5 if la57 else 4)
    pids = {int(m["pid"]) for m in fx.manifest if m.get("kind") == "process"}
    assert len(pids) >= 20 and pids <= set(fx.maps) and pids <= set(fx.smaps)
    assert {int(p["pid"]) for p in fx.pagemap} <= pids
    assert os.path.exists(os.path.join(fx.dir, "outside.jsonl"))


@pytest.mark.parametrize("item", **_params(BUSY))
def test_busy_processes(item):
    """stress-ng's stressors, Python and the compiler were frozen alive."""
    fx = _fx(item)
    comms = {m["comm"] for m in fx.manifest if m.get("kind") == "process"}
    for c in ("stress-ng-vm", "stress-ng-mmap", "stress-ng-fork", "stress-ng-userf",
              "stress-ng-memfd", "python3", "states"):
        assert c in comms, (c, sorted(comms))
    assert comms & {"cc1", "gcc", "as"}, sorted(comms)
    log = open(os.path.join(fx.dir, "busy.log")).read()
    for bad in ("pages_sharing=0", "record failed", "khugepaged still running"):
        assert bad not in log, log


@pytest.mark.parametrize("item", **_params(BUSY))
def test_busy_states(item):
    """Each state of `states` per the kernel's own truth."""
    fx = _fx(item)
    v = _version(fx)
    errors = {m["kind"]: m["error"] for m in fx.manifest if m.get("error")}
    # partly unmapped THP: 511 ptes of one large anon folio
    (m,) = _lines(fx, "thp_partial_unmap")
    ps = _pages(fx, m)
    assert len(ps) == 511 and all(_kpf(p) >> KPF_THP & 1 and _kpf(p) >> KPF_TAIL & 1 for p in ps)
    # fork-shared THP: the child's PMD, the parent's ptes, same pfns
    (par,) = _lines(fx, "thp_fork_parent")
    (chi,) = _lines(fx, "thp_fork_child")
    pp = {p["addr"]: p["pfn"] for p in _pages(fx, par)}
    cp = {p["addr"]: p["pfn"] for p in _pages(fx, chi)}
    shared = [a for a in pp if cp.get(a) == pp[a]]
    assert len(shared) >= 511, len(shared)
    smaps = fx.smaps[int(chi["pid"])]
    assert "AnonHugePages:      2048 kB" in smaps, "child lost its PMD mapping"
    for kind, bit in (("huge_zero", KPF_ZERO_PAGE), ("thp_mlocked", KPF_MLOCKED),
                      ("hugetlb", KPF_HUGE), ("ksm", KPF_KSM)):
        (m,) = _lines(fx, kind)
        assert any(_kpf(p) >> bit & 1 for p in _pages(fx, m)), kind
    (m,) = _lines(fx, "swap")
    assert sum(p["swapped"] for p in _pages(fx, m)) >= 24
    # the child of fork-shared swap entries: its read pages stay in the swap
    # cache (the parent's entries still count), do_swap_page
    (m,) = _lines(fx, "swap_child")
    ps = _pages(fx, m)
    assert sum(bool(_kpf(p) >> KPF_SWAPCACHE & 1) for p in ps if p["present"]) >= 8, ps[:4]
    (m,) = _lines(fx, "uffd_wp_anon")
    ps = _pages(fx, m)
    if v >= (5, 12):  # PM_UFFD_WP in pagemap (5.12)
        assert len(ps) == 16 and all(int(p["pm"], 16) & PM_UFFD_WP for p in ps)
    else:
        assert len(ps) == 16
    if v >= (6, 0):  # PTE_MARKER_UFFD_WP: markers in the none ptes of shmem
        (m,) = _lines(fx, "uffd_wp_shmem")
        ps = _pages(fx, m)
        assert sum(p["swapped"] for p in ps) == 8 and all(int(p["pm"], 16) & PM_UFFD_WP for p in ps)
    else:
        assert "uffd_wp_shmem" in errors
    if v >= (6, 13):  # MADV_GUARD_INSTALL
        assert _lines(fx, "guard"), errors
    else:
        assert "guard" in errors
    if v >= (6, 8):  # anon mTHP: 64 KiB folios (order 4)
        (m,) = _lines(fx, "mthp")
        ps = _pages(fx, m)
        assert sum(_kpf(p) >> KPF_THP & 1 for p in ps) >= 64, "no 64 KiB anon folios"
    (m,) = _lines(fx, "shmem_thp")
    assert all(_kpf(p) >> KPF_HEAD & 1 or _kpf(p) >> KPF_TAIL & 1 for p in _pages(fx, m))
    kpf = [_kpf(p) for p in fx.pagemap]
    assert any(k >> KPF_ANON & 1 and k >> KPF_THP & 1 for k in kpf)
