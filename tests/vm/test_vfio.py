"""VFIO fixture tests: a vfio-pci BAR mmapped through the VFIO device fd, read back
from every dump format through the CLI (`walk --json`, `check --json`) and compared
with the guest's truth (tests/vm/vfio/vfioguest.c: BAR address from sysfs, VFIO
region offset, the VMA from /proc/PID/maps and smaps) and with the page tables as
read from the dump by an independent walker (drgn physical reads).

What the kernel builds (drivers/vfio/pci/vfio_pci_core.c):
- 6.1: vfio_pci_mmap_fault() io_remap_pfn_range()s the whole VMA on its first fault,
  with vm_pgoff rewritten to the BAR's pfn by vfio_pci_core_mmap(): special ptes only.
- 6.12+: vfio_pci_mmap_huge_fault() (commit f9e54c3a2f5b "vfio/pci: implement
  huge_fault support", v6.12) inserts one pte, PMD or PUD per fault:
  vmf_insert_pfn_pmd/_pud() make special leaves (pmd_mkspecial/pud_mkspecial) when
  pfn, address and VMA end allow the order; vm_pgoff stays the region offset.
  The fault path offers ->huge_fault() to such a VMA only under THP "always" (or
  VM_HUGEPAGE): __thp_vma_allowable_orders(); the guest runs THP "always".
- Reading /proc/PID/smaps zaps the PUD leaf (observed on 6.12.117 and 7.2.13; ptes
  and PMD leaves stay): the guest reads every BAR page again after `truth`, so the
  dumps hold the leaves the fault handler makes.
"""
import json
import os
import subprocess

import pytest

from tests.vm import lab
from tests.vm.conftest import lab_fixture, fixture_ids, lacks_in_real_kdump

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "bin", "pfnscope")


def _items():
    sel = os.environ.get("PFNSCOPE_LAB_KERNELS", "").replace(",", " ").split()
    if not sel:
        return list(lab.VFIO_SET)
    return [i for i in lab.VFIO_SET if i[0] in sel or ":".join(i) in sel]


ITEMS = _items()
FORMATS = ("elf-nopaging", "elf-paging", "kdump-zlib", "kdump-real")
LEVEL_SIZE = {"pte": 1 << 12, "pmd": 1 << 21, "pud": 1 << 30}
PUD_ORDER, PMD_ORDER = 18, 9
# VFIO_PCI_INDEX_TO_OFFSET(index) = index << VFIO_PCI_OFFSET_SHIFT (40)
VFIO_PCI_OFFSET_SHIFT = 40


def _params(items):
    return dict(argvalues=items or [None], ids=fixture_ids(items) if items else ["none"])


def _fx(item):
    if item is None:
        pytest.skip("not in PFNSCOPE_LAB_KERNELS")
    return lab_fixture(*item)


def _int(v):
    return v if isinstance(v, int) else int(v, 0)


def _bars(fx):
    bars = [m for m in fx.manifest if m.get("kind") == "vfio_pci_bar"]
    assert bars, "no vfio_pci_bar line in %s/manifest.jsonl" % fx.dir
    for m in bars:
        assert not m.get("error"), m
    return bars


def _cli(fx, fmt, *args, reader=None):
    r = subprocess.run([CLI, "-c", fx.dumps[fmt], "-s", fx.vmlinux, "--json"]
                       + (["--reader", reader] if reader else []) + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    recs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return r.returncode, recs, r.stderr


def _expected_order(m, addr, pfn, end):
    """The order vfio_pci_mmap_huge_fault() inserts at ADDR: the largest of
    PUD/PMD whose pfn and address are aligned and which fits in the VMA; 0 for
    kernels without the huge fault handler (6.1: io_remap_pfn_range, ptes)."""
    if not m["huge_fault"]:
        return 0
    assert m["thp"] == "always", m
    for order in (PUD_ORDER, PMD_ORDER):
        size = 4096 << order
        if pfn % (1 << order) == 0 and addr % size == 0 and addr + size <= end:
            return order
    return 0


def _expected_levels(m):
    """[(addr, level, pfn)] the kernel's fault handler builds over the whole VMA."""
    start, end, bar = _int(m["start"]), _int(m["end"]), _int(m["bar"])
    out = []
    a = start
    while a < end:
        pfn = (bar >> 12) + ((a - start) >> 12)
        order = _expected_order(m, a, pfn, end)
        lvl = {0: "pte", PMD_ORDER: "pmd", PUD_ORDER: "pud"}[order]
        out.append((a, lvl, pfn))
        a += 4096 << order
    return out


# ------------------------------------------------------------ the guest's truth

@pytest.mark.parametrize("item", **_params(ITEMS))
def test_vfio_truth(item):
    """Each ivshmem BAR 2 was mapped through VFIO: region offset is
    VFIO_PCI_INDEX_TO_OFFSET(2), the BAR is naturally aligned, the VMA is as long as
    the BAR, aligned as asked, `io pf` in smaps, and /proc/PID/maps' offset is
    vm_pgoff: the BAR's pfn on kernels that rewrite it (6.1), else the region offset."""
    fx = _fx(item)
    bars = _bars(fx)
    assert sorted(_int(m["region_size"]) for m in bars) == [64 << 20, 1 << 30]
    for m in bars:
        start, end, bar, size = _int(m["start"]), _int(m["end"]), _int(m["bar"]), _int(m["region_size"])
        assert _int(m["region_offset"]) == m["bar_index"] << VFIO_PCI_OFFSET_SHIFT
        assert bar % size == 0 and _int(m["bar_end"]) - bar + 1 == size
        assert end - start == size and start % _int(m["align"]) == 0
        flags = set(m["vm_flags_seen"].split())
        assert {"io", "pf", "sh", "de", "dd"} <= flags, m["vm_flags_seen"]
        assert _int(m["maps_offset"]) in (bar, _int(m["region_offset"])), m
        assert m["huge_fault"] in (True, False)
        leaves = _expected_levels(m)
        # the first read: 6.1's fault handler remaps the whole VMA at once; the huge
        # fault handler takes one fault per leaf
        assert m["touch_faults"] == (len(leaves) if m["huge_fault"] else 1), m["touch_faults"]
        # reading smaps (vfioguest's own, then truth's copy) zaps PUD leaves only;
        # the lab re-faults them (vfio-retouch-PID) before the dumps
        n_pud = sum(1 for _, lvl, _ in leaves if lvl == "pud")
        assert 0 <= m["retouch_faults"] <= n_pud, (m["retouch_faults"], n_pud)
        with open(os.path.join(fx.dir, "vfio-retouch-%d" % m["pid"])) as f:
            faults, _ = f.read().split()
        assert 0 <= int(faults) <= n_pud, (faults, n_pud)
        # the maps/smaps copies of truth agree with the line
        assert "%x-%x" % (start, end) in fx.maps[m["pid"]]


# ------------------------------------------------------------ independent page-table walk

def _drgn_levels(prog, fx, m):
    """[(addr, level, pfn, special)] of the BAR VMA read straight from the dump's page
    tables (mm->pgd, x86-64 4/5 levels, PSE leaves), without pfnscope."""
    from drgn.helpers.linux.pid import find_task
    task = find_task(prog, m["pid"])
    assert task, "pid %s not in the dump" % m["pid"]
    pgd_phys = task.mm.pgd.value_() - prog["page_offset_base"].value_()
    levels = fx.levels
    shifts = ([48] if levels == 5 else []) + [39, 30, 21, 12]
    PFN_MASK = ((1 << 52) - 1) & ~0xfff
    start, end = _int(m["start"]), _int(m["end"])
    out = []

    def rd(table, idx):
        return int.from_bytes(prog.read(table + idx * 8, 8, True), "little")

    def walk(table, shift_i, lo, hi):
        shift = shifts[shift_i]
        a = lo
        while a < hi:
            idx = (a >> shift) & 511
            e = rd(table, idx)
            span = 1 << shift
            nxt = min(hi, (a & ~(span - 1)) + span)
            if e & 1:
                name = {30: "pud", 21: "pmd", 12: "pte"}.get(shift)
                if shift == 12 or (e & 0x80 and shift in (21, 30)):
                    mask = PFN_MASK & ~((1 << shift) - 1)
                    out.append((a, name, ((e & mask) >> 12) + ((a & (span - 1)) >> 12),
                                bool(e & (1 << 9))))
                else:
                    walk(e & PFN_MASK, shift_i + 1, a, nxt)
            a = nxt

    walk(pgd_phys, 0, start, end)
    return out


@pytest.mark.parametrize("item", **_params(ITEMS))
def test_vfio_kernel_built_what_its_source_says(item):
    """The dump's page tables (read without pfnscope) hold, over each BAR VMA, the
    leaves the kernel's fault handler makes: every one present, special, at the
    level vfio_pci_mmap_huge_fault()/io_remap_pfn_range() picks, pfn = BAR >> 12 +
    page index."""
    fx = _fx(item)
    drgn = pytest.importorskip("drgn")
    prog = drgn.Program()
    prog.set_core_dump(fx.dumps["elf-paging"])   # drgn 0.0.22 opens it (not QEMU's kdump-zlib)
    prog.load_debug_info([fx.vmlinux])
    for m in _bars(fx):
        got = _drgn_levels(prog, fx, m)
        want = [(a, lvl, pfn, True) for a, lvl, pfn in _expected_levels(m)]
        assert len(got) == len(want), (m["bdf"], len(got), len(want))
        assert got == want, next((g, w) for g, w in zip(got, want) if g != w)


# ------------------------------------------------------------ pfnscope walk on every format

@pytest.mark.parametrize("item", **_params(ITEMS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_vfio_walk(item, fmt):
    """`walk --json` of each BAR VMA: one entry per leaf the kernel built, at its level,
    special, pfn = BAR >> 12 + page index, vm_normal_page NULL, no struct page, GUP
    -EFAULT (check_vma_flags: VM_IO|VM_PFNMAP), GUP-fast falls back (special),
    follow_pte/follow_pfnmap_start, KVM and VFIO type1 get the pfn, no diagnosis."""
    fx = _fx(item)
    for m in _bars(fx):
        start, end = _int(m["start"]), _int(m["end"])
        rc, recs, err = _cli(fx, fmt, "walk", "-p", str(m["pid"]), "-a", hex(start))
        if lacks_in_real_kdump(fx, fmt, rc, err):
            # the same capture at -d 23 holds the task's mm (tests/vm/conftest.py, lacks_in_real_kdump)
            rc, recs, err = _cli(fx, "kdump-real-d23", "walk", "-p", str(m["pid"]), "-a", hex(start))
        assert rc == 0, err
        vmas = [r for r in recs if r["type"] == "vma"]
        assert len(vmas) == 1 and _int(vmas[0]["start"]) == start and _int(vmas[0]["end"]) == end
        v = vmas[0]
        assert {"io", "pfnmap", "shared"} <= set(v["flag_names"]) and not v["cow"]
        assert v["pgoff"] << 12 == _int(m["maps_offset"])
        ents = [r for r in recs if r["type"] == "entry"]
        want = _expected_levels(m)
        assert [(_int(e["addr"]), e["level"], e["pfn"]) for e in ents] == want, \
            next(((_int(e["addr"]), e["level"], e["pfn"]), w) for e, w in
                 zip(ents + [{"addr": "0", "level": None, "pfn": None}] * len(want), want)
                 if (_int(e["addr"]), e["level"], e["pfn"]) != w)
        assert sum(LEVEL_SIZE[e["level"]] for e in ents) == end - start
        bad = []
        for e in ents:
            c = e["consumers"]
            ok = (e["kind"] == "present" and e["special"] is True and e["normal_page"] is False
                  and e["vnp_reason"] not in ("not_special", "not_present")
                  and e["page_state"] == "invalid" and e["page"] is None
                  and c["gup"] == "efault" and c["gup_fast"] == "fallback"
                  and c["follow_pte"] == "pfn" and c["vfio"] == "pfn" and c["kvm"] == "pfn"
                  and e["diagnoses"] == [])
            if not ok:
                bad.append(e)
        assert not bad, "%d of %d entries differ, first: %s" % (len(bad), len(ents), bad[0])


@pytest.mark.parametrize("item", **_params(ITEMS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_vfio_check_quiet(item, fmt):
    """`check` of the VFIO guest: nothing at low or above on the BAR VMAs (a non-COW
    pfnmap may map any pfn: vm_normal_page() needs linearity only for COW mappings),
    and the whole healthy guest exits 0 at the default --fail-on."""
    fx = _fx(item)
    bars = _bars(fx)
    args = ["check", "--fail-on", "low"]
    for m in bars:
        args += ["-p", str(m["pid"])]
    rc, recs, err = _cli(fx, fmt, *args)
    errors = [r for r in recs if r["type"] == "error"]
    if errors and lacks_in_real_kdump(fx, fmt, rc, errors[0]["message"]):
        # the same capture at -d 23 holds the tasks' mms (tests/vm/conftest.py, lacks_in_real_kdump)
        rc, recs, err = _cli(fx, "kdump-real-d23", *args)
        errors = [r for r in recs if r["type"] == "error"]
    findings = [r for r in recs if r["type"] == "finding"]
    assert not errors, errors
    assert not findings, findings[:5]
    assert rc == 0, err
    rc, recs, err = _cli(fx, fmt, "check")
    errors = [r for r in recs if r["type"] == "error"]
    if fmt == "kdump-real" and rc == 2 and errors:
        # makedumpfile -d 31 of a kernel it does not know (sid's 1.7.8 on 7.x)
        # filters some mm_structs: those tasks are not read (exit 2), never
        # misread; the -d 23 dump of the same capture has them, and is quiet
        assert all("memory not readable" in r["message"] for r in errors), errors
        assert not [r for r in recs if r["type"] == "finding"], recs
        rc, recs, err = _cli(fx, "kdump-real-d23", "check")
    assert rc == 0, (err, [r for r in recs if r["type"] != "summary"][:5])


@pytest.mark.parametrize("item", **_params(ITEMS))
@pytest.mark.parametrize("fmt", ("kdump-real",))
def test_vfio_walk_drgn_reader(item, fmt):
    """drgn's prog.read as the reader gives the same entries as libkdumpfile (on the
    makedumpfile dump; one format keeps the 6.1 1 GiB VMA's 262144 entries cheap)."""
    pytest.importorskip("drgn")
    fx = _fx(item)
    for m in _bars(fx):
        got = {}
        rc, recs, err = _cli(fx, fmt, "walk", "-p", str(m["pid"]), "-a", m["start"])
        # the same capture at -d 23 holds the task's mm (tests/vm/conftest.py, lacks_in_real_kdump)
        dump = "kdump-real-d23" if lacks_in_real_kdump(fx, fmt, rc, err) else fmt
        for reader in ("kdumpfile", "drgn"):
            rc, recs, err = _cli(fx, dump, "walk", "-p", str(m["pid"]), "-a", m["start"], reader=reader)
            assert rc == 0, (reader, err)
            got[reader] = [(e["addr"], e["level"], e["raw"], e["pfn"], e["special"], e["normal_page"],
                            e["vnp_reason"], json.dumps(e["consumers"], sort_keys=True), e["diagnoses"])
                           for e in recs if e["type"] == "entry"]
        assert got["drgn"] and got["drgn"] == got["kdumpfile"], m["bdf"]
