"""Lab tests: every fixture of the check set was built, its truth agrees with the
kernel, and every dump format holds what the guest had (the magic page)."""
import json
import os
import re

import pytest

from tests.vm import lab
from tests.vm.conftest import lab_fixture, fixture_ids

ITEMS = lab.default_set()
HEALTHY = [i for i in ITEMS if i[2] == "healthy"]
BUGGY = [i for i in ITEMS if i[2] == "buggy"]


def _fx(item):
    if item is None:  # PFNSCOPE_LAB_KERNELS left every fixture of this kind out
        pytest.skip("not in PFNSCOPE_LAB_KERNELS")
    return lab_fixture(*item)


def _params(items):
    """parametrize args that are never empty (an empty set would be a skip)."""
    return dict(argvalues=items or [None], ids=fixture_ids(items) if items else ["none"])


def _int(v):
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        return int(v, 0)
    raise TypeError(v)


def _pattern(magic):
    """The magic pattern as bytes candidates (ASCII and, when it looks so, hex)."""
    cands = []
    for key in ("pattern_hex", "pattern"):
        v = magic.get(key)
        if not isinstance(v, str):
            continue
        if key == "pattern_hex" or re.fullmatch(r"(0x)?([0-9a-fA-F]{2})+", v):
            try:
                cands.append(bytes.fromhex(v[2:] if v.startswith("0x") else v))
            except ValueError:
                pass
        if key == "pattern":
            cands.append(v.encode())
    assert cands, "magic.json has no pattern: %r" % magic
    return cands


def _maps_vmas(text):
    out = []
    for line in text.splitlines():
        p = line.split(None, 5)
        if len(p) >= 5 and "-" in p[0]:
            s, e = p[0].split("-")
            out.append((int(s, 16), int(e, 16), p[1], p[5].strip() if len(p) > 5 else ""))
    return out


def _smaps_flags(text):
    """{vma start: set(VmFlags)} from a smaps text."""
    flags = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if m:
            cur = int(m.group(1), 16)
        elif line.startswith("VmFlags:") and cur is not None:
            flags[cur] = set(line.split()[1:])
    return flags


# ------------------------------------------------------------ fixture basics

@pytest.mark.parametrize("item", **_params(ITEMS))
def test_fixture_complete(item):
    fx = _fx(item)
    assert os.path.exists(os.path.join(fx.dir, "complete"))
    assert fx.release and fx.release in open(fx.serial_log, errors="replace").read()
    assert os.path.getsize(fx.vmlinux) > 100 << 20
    assert set(fx.dumps) == set(lab.DUMP_FORMATS)
    for name, p in fx.dumps.items():
        assert os.path.getsize(p) > 1 << 20, name
    # -cpu max has LA57: Debian's kernels run 5-level; qemu64 gives 4-level.
    # Debian 11's 5.10 is built without CONFIG_X86_5LEVEL (its vmlinux has no
    # __pgtable_l5_enabled): 4-level on any cpu.
    la57 = fx.cpu == "max" and not fx.release.startswith("5.10.")
    assert fx.levels == (5 if la57 else 4)
    assert fx.manifest, "empty manifest.jsonl"
    assert fx.magic, "no magic.json"
    for key in ("pid", "addr", "pfn"):
        assert key in fx.magic, key


# ------------------------------------------------------------ dumps hold the guest's bytes

FORMAT_ITEMS = [(i, f) for i in ITEMS for f in lab.DUMP_FORMATS]


@pytest.mark.parametrize("item,fmt", FORMAT_ITEMS,
                         ids=["%s-%s" % (a, f) for a, f in zip(fixture_ids([i for i, _ in FORMAT_ITEMS]),
                                                              [f for _, f in FORMAT_ITEMS])])
def test_magic_libkdumpfile(item, fmt):
    from tests.vm.dumpread import KdumpFile, NoData
    fx = _fx(item)
    pfn = _int(fx.magic["pfn"])
    assert pfn > 0
    with KdumpFile(fx.dumps[fmt]) as d:
        if fmt in lab.USER_FILTERED:
            # makedumpfile -d 31 excludes user pages: the magic anon page must be
            # reported missing, never read as some other bytes
            with pytest.raises(NoData):
                d.read_phys(pfn << 12, 4096)
            return
        page = d.read_phys(pfn << 12, 4096)
    assert any(p in page for p in _pattern(fx.magic)), \
        "%s: magic pattern not at pfn %#x: %r" % (fmt, pfn, page[:64])


DRGN_ITEMS = [(i, f) for i in ITEMS for f in ("kdump-real-d23", "elf-paging")]


@pytest.mark.parametrize("item,fmt", DRGN_ITEMS,
                         ids=["%s-%s" % (a, f) for a, f in zip(fixture_ids([i for i, _ in DRGN_ITEMS]),
                                                              [f for _, f in DRGN_ITEMS])])
def test_magic_drgn(item, fmt):
    """drgn 0.0.22 opens the real kdump and the paging ELF: physical read of the
    magic page, and the magic task is there with the right kernel release."""
    drgn = pytest.importorskip("drgn")
    from drgn.helpers.linux.pid import find_task
    fx = _fx(item)
    prog = drgn.Program()
    prog.set_core_dump(fx.dumps[fmt])
    page = prog.read(_int(fx.magic["pfn"]) << 12, 4096, True)
    assert any(p in page for p in _pattern(fx.magic))
    prog.load_debug_info([fx.vmlinux])
    assert prog["init_uts_ns"].name.release.string_().decode() == fx.release
    t = find_task(prog, _int(fx.magic["pid"]))
    assert t, "magic pid %s not a task in the dump" % fx.magic["pid"]


# ------------------------------------------------------------ truth agrees with the kernel

def _pids(fx):
    return sorted({_int(m["pid"]) for m in fx.manifest if "pid" in m})


def _entry_vma(fx, m):
    """The /proc/PID/maps line of manifest entry M (by start address)."""
    pid = _int(m["pid"])
    start = _int(m["start"])
    for s, e, perms, name in _maps_vmas(fx.maps.get(pid, "")):
        if s <= start < e:
            return (s, e, perms, name)
    return None


@pytest.mark.parametrize("item", **_params(ITEMS))
def test_truth_recorded(item):
    fx = _fx(item)
    kinds = {m.get("kind") for m in fx.manifest}
    assert None not in kinds, "manifest entry without kind"
    if fx.scenario == "healthy":
        assert len(kinds) >= 20, "only %d mapping kinds: %s" % (len(kinds), sorted(kinds))
    for pid in _pids(fx):
        assert pid in fx.maps, "no maps/%d.maps" % pid
        assert pid in fx.smaps, "no maps/%d.smaps" % pid
    errors = [(m["kind"], m.get("error")) for m in fx.manifest if m.get("error") or not m.get("start")]
    assert not errors, "mapping kinds the guest could not build: %s" % errors
    missing = [m["kind"] for m in fx.manifest if _entry_vma(fx, m) is None]
    assert not missing, "manifest mappings not in /proc/PID/maps: %s" % missing
    assert fx.pagemap, "empty pagemap.jsonl"


def _by_kind(fx, *pats):
    return [m for m in fx.manifest if any(re.search(p, m.get("kind", "")) for p in pats)]


def _pagemap_for(fx, pid, start, end):
    """pagemap.jsonl records of PID within [start, end)."""
    out = []
    for r in fx.pagemap:
        if _int(r.get("pid", -1)) != pid:
            continue
        a = r.get("addr", r.get("start"))
        if a is None:
            continue
        a = _int(a)
        if start <= a < end:
            out.append(r)
    return out


@pytest.mark.parametrize("item", **_params(HEALTHY))
def test_truth_devmem_shared_not_in_pagemap(item):
    fx = _fx(item)
    ms = _by_kind(fx, r"devmem.*shared", r"dev_mem.*shared")
    assert ms, "no /dev/mem MAP_SHARED entry in the manifest"
    for m in ms:
        vma = _entry_vma(fx, m)
        assert vma and vma[3] == "/dev/mem", vma
        recs = [r for r in _pagemap_for(fx, _int(m["pid"]), vma[0], vma[1])
                if r.get("present") or _int(r.get("pfn") or 0)]
        assert not recs, "pagemap shows pfns for a VM_PFNMAP /dev/mem VMA: %s" % recs[:3]
        flags = _smaps_flags(fx.smaps[_int(m["pid"])]).get(vma[0], set())
        assert {"io", "pf", "sh"} <= flags, flags
        others = [r for r in fx.pagemap if _int(r["pid"]) == _int(m["pid"]) and r.get("present")]
        assert others, "pagemap has nothing for pid %s at all (truth did not walk it)" % m["pid"]


@pytest.mark.parametrize("item", **_params(HEALTHY))
def test_truth_devmem_private_cow_pages_are_ram(item):
    """The written pages of a private /dev/mem mapping are COW anon copies in RAM: their
    pfn comes from the guest (module ioctl) or, when pagemap cannot see the VMA, from
    finding the page's pattern in the physical-memory dump; either way it is RAM above
    1 MiB and not the /dev/mem pfn the pte had before the write."""
    from tests.vm.dumpread import elf_find_phys, elf_load_segments
    fx = _fx(item)
    ms = _by_kind(fx, r"^devmem_private")
    assert ms, "no /dev/mem MAP_PRIVATE entry in the manifest"
    elf = fx.dumps["elf-nopaging"]
    ram = [(p, p + n) for p, _, n in elf_load_segments(elf)]
    seen = 0
    for m in ms:
        vma = _entry_vma(fx, m)
        assert vma and vma[3] == "/dev/mem", m
        flags = _smaps_flags(fx.smaps[_int(m["pid"])]).get(vma[0], set())
        assert {"io", "pf"} <= flags and "sh" not in flags, flags
        phys = _int(m.get("phys", 0))
        for pg in m.get("pages", []):
            if pg.get("special") is not False:
                continue
            pfn = pg.get("pfn")
            if pfn is None:
                assert pg.get("pattern"), "COW page without pfn nor pattern: %s" % pg
                hits = elf_find_phys(elf, bytes.fromhex(pg["pattern"]))
                assert len(hits) == 1, "COW pattern of %s found %d times in the dump" % (pg["addr"], len(hits))
                pfn = hits[0] >> 12
            linear = (phys >> 12) + ((_int(pg["addr"]) - vma[0]) >> 12)
            assert pfn != linear, "COW page %s still at the /dev/mem pfn %#x" % (pg["addr"], pfn)
            assert pfn >= 256, "COW page pfn %#x below 1 MiB" % pfn
            assert any(a <= pfn << 12 < b for a, b in ram), "COW page pfn %#x not RAM" % pfn
            seen += 1
    assert seen, "no COW pages of the private /dev/mem mappings in the manifest"


@pytest.mark.parametrize("item", **_params(HEALTHY))
def test_truth_hugetlb_flags(item):
    fx = _fx(item)
    ms = _by_kind(fx, r"hugetlb")
    assert ms, "no hugetlb entry in the manifest"
    for m in ms:
        vma = _entry_vma(fx, m)
        assert vma, m
        flags = _smaps_flags(fx.smaps[_int(m["pid"])]).get(vma[0], set())
        assert "ht" in flags, "hugetlb VMA VmFlags %s" % sorted(flags)


@pytest.mark.parametrize("item", **_params(HEALTHY))
def test_truth_magic_in_pagemap(item):
    """magic.json's pfn is what pagemap said for its address."""
    fx = _fx(item)
    pid, addr, pfn = _int(fx.magic["pid"]), _int(fx.magic["addr"]), _int(fx.magic["pfn"])
    recs = [r for r in _pagemap_for(fx, pid, addr & ~0xfff, (addr & ~0xfff) + 4096)]
    if recs:
        assert _int(recs[0]["pfn"]) == pfn


# ------------------------------------------------------------ the buggy module

@pytest.mark.parametrize("item", **_params(BUGGY))
def test_buggy_modes_have_vmas(item):
    """Every mode of the test module produced its VMA, visible in /proc/PID/maps."""
    fx = _fx(item)
    modes = [m for m in fx.manifest if str(m.get("kind", "")).startswith("buggy_")]
    errors = [(m["kind"], m.get("error")) for m in modes if m.get("error") or not m.get("start")]
    assert not errors, "buggy modes that failed: %s" % errors
    assert len(modes) >= 10, "buggy manifest entries: %d" % len(modes)
    for m in modes:
        vma = _entry_vma(fx, m)
        assert vma, "buggy mode %s: no VMA in /proc/%s/maps" % (m.get("kind"), m.get("pid"))
        assert "pfnscope_buggy" in vma[3], vma
