"""The benchmark pipeline (tests/bench, `make bench`) on a small lab fixture: every
tool runs on the largest anon VMA of the healthy 6.1 fixture's real kdump and all of
them report the same pfns.  Proves the bench works; nothing here fails on time.

drgn 0.3 and crash run only when the sid chroot is already made (tests/vm/chroot.sh
sid; `make check-lab` makes it for the buggy module builds)."""
import json

import lab_support  # noqa: F401  (sys.path: repo root + src/python)
from lab_support import fixture

from tests.bench import bench


def _largest_anon_vma(dump, vmlinux):
    """(pid, start, end) of the anon VMA with the most present entries (the lab
    swaps some anon VMAs out to zram: those have entries but no pfns)."""
    from pfnscope import target
    c = target.core()
    sess = target.open_dump(dump, vmlinux)
    best = None
    for t in sess.tasks():
        if not t[3]:
            continue
        for vt in sess.vmas(t[3]):
            vma_va, start, end, flags, pgoff, file_va, ops = vt
            if file_va or ops or flags & 0x10004400:  # file, special ops, PFNMAP|IO|MIXEDMAP
                continue
            n = sum(1 for e in sess.target.walk(t[3], vt, flags=c.WALK_NO_PAGE)
                    if e.kind == "present" and e.pfn is not None)
            if best is None or n > best[0]:
                best = (n, t[1], start, end)
    assert best and best[0] > 0, "no anon VMA with present entries"
    return best[1:]


def test_bench_smoke(tmp_path):
    fx = fixture("6.1", "max", "healthy")
    dump = fx.dumps["kdump-real"]
    pid, start, end = _largest_anon_vma(dump, fx.vmlinux)
    case = bench.Case("kdump-real", dump, fx.vmlinux, pid, start, end)
    chroot = bench.chroot_ready()
    r = bench.run_case(case, repeat=1, chroot=chroot)
    # every tool saw the same pfns as pfnscope (count, sum, xor)
    assert r["agree"] and all(r["agree"].values()), r["digests"]
    tools = {"pfnscope (kdumpfile)", "pfnscope (drgn reader)", "drgn 0.0.22 baseline"}
    if chroot:
        tools |= {"drgn 0.3 follow_pfn loop", "crash 9 vm -p"}
    assert tools <= set(r["digests"]), sorted(r["digests"])
    assert r["digests"]["pfnscope (kdumpfile)"]["count"] > 0
    # every measurement is there (values are not judged)
    names = [w["name"] for w in r["rows"]]
    assert any("physical limit" in n for n in names)
    for w in r["rows"]:
        assert w["walk"] is not None and w["walk"] >= 0, w
    assert r["check"]["cpu"]["best"] > 0 and r["check"]["maxrss_kb"] > 0
    assert r["phys"]["kdumpfile"]["reads"] > 0 and r["phys"]["kdumpfile"]["failed"] == 0
    # the floor: pages found by an independent walk, all read by pfnscope's too
    fl = r["floor"]
    assert fl["pages"]["table_pages"] > 0 and fl["pages"]["memmap_pages"] > 0
    assert fl["kdumpfile"]["reads"] == fl["pages"]["table_pages"] + fl["pages"]["memmap_pages"]
    assert fl["kdumpfile"]["failed"] == 0
    assert fl["in_walk"] == 1.0, fl
    assert r["startup"]["cached"]["maxrss_kb"] < r["startup"]["cold"]["maxrss_kb"]
    # a first run reads the vmlinux's .BTF, not its DWARF (drgn's index of it)
    assert r["startup"]["first"]["maxrss_kb"] < r["startup"]["cold"]["maxrss_kb"] // 2
    assert r["check_first"]["maxrss_kb"] < r["check_cold"]["maxrss_kb"] // 2
    assert {t["target"] for t in r["targets"]}
    text = bench.table(r)
    assert "pfnscope walk --json (kdumpfile reader)" in text
    (tmp_path / "r.json").write_text(json.dumps(r, default=str))
