"""The CLI agrees with the kernel's own truth on the arm64 fixtures
(tests/arm64/lab.py: Debian 6.1 with 48-bit VAs, 6.12 with 52-bit LPA2 VAs
on -cpu max and 48-bit VAs on cortex-a57), as tests/python/test_lab_agreement.py
does on x86-64: VMA lists with /proc/PID/maps, pfns with pagemap and the
/dev/mem offsets, mapcounts with kpagecount, flags with kpageflags, special
and vm_normal_page() verdicts with the scenario manifest, healthy exit 0.
Each test prints what it compared (pytest -s)."""
import functools
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in (ROOT, os.path.join(ROOT, "src", "python"), os.path.join(ROOT, "tests", "python")):
    if p not in sys.path:
        sys.path.insert(0, p)

import lab_support as L  # noqa: E402
from tests.arm64 import lab as alab  # noqa: E402

KEYS = [tuple(k) for k in alab.arm64_set()]
CASES = [(k, f) for k in KEYS for f in alab.formats(k[0])]
IDS = [f"{'-'.join(k)}-{f}" for k, f in CASES]

# /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h + kernel-private)
KPF_LRU, KPF_ANON, KPF_SWAPBACKED, KPF_HEAD, KPF_TAIL = 5, 12, 14, 15, 16
KPF_RESERVED, KPF_MLOCKED = 32, 33

# what the QEMU CPU gives the kernel: vabits_actual and levels (4 KiB pages)
VA = {("6.1", "max"): (48, 4), ("6.12", "max"): (52, 5), ("6.12", "cortex-a57"): (48, 4)}


@functools.lru_cache(maxsize=None)
def fixture(kernel, cpu, scenario):
    return alab.fixture(kernel, cpu, scenario)


@functools.lru_cache(maxsize=None)
def walk_all(key, fmt):
    fx = fixture(*key)
    r = L.run("-c", fx.dumps[fmt], "-s", fx.vmlinux, *L.walk_all_args(fx))
    assert r.rc == 0, r
    vmas, ents = {}, {}
    for o in r.json():
        (vmas if o["type"] == "vma" else ents).setdefault(o["pid"], []).append(o)
    return vmas, ents


def _say(key, fmt, what):
    print(f"\n[{'-'.join(key)} {fmt}] {what}")


@pytest.mark.parametrize("key", KEYS, ids=["-".join(k) for k in KEYS])
def test_layout_and_kernel_translation(key):
    """vabits_actual and the levels the layout takes are the CPU's; kernel
    virtual reads through swapper_pg_dir give the bytes that __kimg_to_phys
    and __lm_to_phys arithmetic reads from the dump."""
    from pfnscope import target
    fx = fixture(*key)
    sess = target.open_dump(fx.dumps["elf-nopaging"], fx.vmlinux)
    lo = sess.layout_dict
    assert (lo["va_bits"], lo["pgtable_levels"]) == VA[key[:2]], lo
    assert lo["arch"] == 2
    prog = sess.prog
    n = 0
    # kernel image: init_task.comm, init_uts_ns
    for sym in ("init_task", "init_uts_ns", "swapper_pg_dir", "zero_pfn"):
        va = prog.symbol(sym).address
        via_walk = sess.target.read_kvirt(va, 64)
        direct = sess.reader.read_phys(va - lo["kimage_voffset"], 64)
        assert via_walk == direct, sym
        n += 1
    assert sess.target.read_kvirt(prog["init_task"].comm.address_, 8) == b"swapper/"
    # linear map: every task's mm_struct and pgd
    from drgn.helpers.linux.pid import for_each_task
    mask = (1 << 64) - 1
    for t in for_each_task(prog):
        if not t.mm:
            continue
        for va in (t.mm.value_(), t.mm.pgd.value_()):
            via_walk = sess.target.read_kvirt(va, 64)
            direct = sess.reader.read_phys((va - lo["page_offset_base"] + lo["phys_offset"]) & mask, 64)
            assert via_walk == direct, hex(va)
            n += 1
    assert n > 20
    # the zero page: zero_pfn is __pa_symbol(empty_zero_page) >> PAGE_SHIFT
    ezp = prog.symbol("empty_zero_page").address
    assert lo["zero_pfn"] == (ezp - lo["kimage_voffset"]) >> 12
    # vmemmap: pfn_to_page() of the zero page is a reserved page
    _say(key, "elf-nopaging", f"va_bits={lo['va_bits']} levels={lo['pgtable_levels']} "
         f"phys_offset={lo['phys_offset']:#x} kimage_voffset={lo['kimage_voffset']:#x}: "
         f"{n} kernel reads agree with the arithmetic")



@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_vmas_match_proc_maps(key, fmt):
    fx = fixture(*key)
    vmas, _ = walk_all(key, fmt)
    checked = 0
    for pid in L.manifest_pids(fx):
        assert pid in fx.maps, f"no maps for pid {pid} in {fx.dir}"
        want = L.parse_maps(fx.maps[pid])
        got = vmas.get(pid, [])
        assert [(int(v["start"], 16), int(v["end"], 16)) for v in got] == \
            [(m["start"], m["end"]) for m in want], f"pid {pid}"
        for v, m in zip(got, want):
            names = set(v["flag_names"])
            perms = m["perms"]
            assert ("read" in names) == (perms[0] == "r"), (pid, v, m)
            assert ("write" in names) == (perms[1] == "w"), (pid, v, m)
            assert ("exec" in names) == (perms[2] == "x"), (pid, v, m)
            assert ("mayshare" in names) == (perms[3] == "s"), (pid, v, m)
            if m["path"].startswith("/") and not m["path"].endswith("(deleted)"):
                assert v["file"] == m["path"], (pid, v, m)
                assert v["pgoff"] * 4096 == m["pgoff"], (pid, v, m)
            checked += 1
    assert checked > 10
    _say(key, fmt, f"{checked} VMAs of {len(L.manifest_pids(fx))} processes agree with maps")


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_pfns_mapcounts_flags_match_pagemap(key, fmt):
    fx = fixture(*key)
    _, ents = walk_all(key, fmt)
    pids = set(L.manifest_pids(fx))
    lines = [p for p in fx.pagemap if int(p["pid"]) in pids and p.get("present") and p.get("pfn")]
    assert len(lines) > 50, "pagemap truth too small"
    n_pfn = n_mc = n_flags = 0
    for p in lines:
        pid, addr = int(p["pid"]), int(p["addr"], 16)
        e = L.entry_at(ents.get(pid, []), addr)
        assert e is not None, f"pid {pid} {addr:#x}: no entry (pagemap pfn {p['pfn']})"
        # pagemap's PM_PRESENT is pte_present(): PROT_NONE entries too
        assert e["kind"] in ("present", "protnone"), (p, e)
        pfn = e["pfn"] + ((addr - int(e["addr"], 16)) >> 12)
        assert pfn == p["pfn"], (p, e)
        n_pfn += 1
        page = e["page"]
        if p.get("kpagecount") is None or page is None:
            continue
        flags = int(p["kpageflags"], 16) if p.get("kpageflags") else 0
        if e["level"] == "pte" and not flags & ((1 << KPF_HEAD) | (1 << KPF_TAIL)):
            mc = page.get("page_mapcount", page["mapcount"])
            if mc != p["kpagecount"]:
                # a page mapped outside the manifest's processes too ([vdso],
                # page cache): its count moved between truth and dump
                assert special_or_shared(fx, pid, addr), (p, e)
            else:
                n_mc += 1
        assert page["anon"] == bool(flags & (1 << KPF_ANON)), (p, e)
        assert page["reserved"] == bool(flags & (1 << KPF_RESERVED)), (p, e)
        if not flags & ((1 << KPF_HEAD) | (1 << KPF_TAIL)):
            names = set(page["flags"])
            assert ("lru" in names) == bool(flags & (1 << KPF_LRU)), (p, e)
            assert ("swapbacked" in names) == bool(flags & (1 << KPF_SWAPBACKED)), (p, e)
            assert ("mlocked" in names) == bool(flags & (1 << KPF_MLOCKED)), (p, e)
            n_flags += 1
    assert n_flags > 20 and n_mc > 20
    _say(key, fmt, f"{n_pfn} pfns, {n_mc} mapcounts, {n_flags} page-flag sets agree with "
         "pagemap/kpagecount/kpageflags")


def special_or_shared(fx, pid, addr):
    for m in L.parse_maps(fx.maps.get(pid, "")):
        if m["start"] <= addr < m["end"]:
            return m["path"].startswith("[v") or m["path"].startswith("/")
    return False


def guest_pfn(pg):
    """The manifest's pfn of a page.  Where the guest read the raw pte through
    the buggy module's ioctl, the guest programs (tests/vm/guest, shared with
    x86-64) took x86's PTE_PFN_MASK, bits 51:12: on arm64 with 48-bit
    output addresses the pfn is bits 47:12 (PTE_ADDR_LOW), bit 51 being
    PTE_WRITE (DBM)."""
    pfn = pg["pfn"]
    if "ioctl" in (pg.get("note") or "") or "raw pte" in (pg.get("note") or ""):
        pfn &= (1 << 36) - 1
    return pfn


def _tri(v):
    return None if v is None else bool(v)


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_manifest_expectations(key, fmt):
    """Every mapping kind: special / normal_page / level / kind of its entries,
    and per listed page its pfn (the /dev/mem offset for /dev/mem mappings)."""
    fx = fixture(*key)
    _, ents = walk_all(key, fmt)
    kinds = set()
    n_pages = n_entries = 0
    for m in fx.manifest:
        if "start" not in m or "error" in m or "expect" not in m:
            continue
        pid, start, end = int(m["pid"]), int(m["start"], 16), int(m["end"], 16)
        es = [e for e in L.entries_in(ents.get(pid, []), start, end) if e["kind"] != "none"]
        exp = m["expect"]
        pages = m.get("pages") or []
        if not pages:
            assert es, f"{m['kind']}: no entries in {start:#x}-{end:#x} (pid {pid})"
        for e in es if not pages else []:
            if exp.get("kind"):
                assert e["kind"] == exp["kind"], (m["kind"], e)
            if exp.get("level"):
                assert e["level"] == exp["level"], (m["kind"], e)
            if _tri(exp.get("special")) is not None:
                assert e["special"] == exp["special"], (m["kind"], e)
            if _tri(exp.get("normal_page")) is not None:
                assert e["normal_page"] == exp["normal_page"], (m["kind"], e)
            n_entries += 1
        for pg in pages:
            addr = int(pg["addr"], 16)
            e = L.entry_at(ents.get(pid, []), addr)
            if pg.get("kind") == "none":
                assert e is None or e["kind"] == "none", (m["kind"], pg, e)
                continue
            assert e is not None, (m["kind"], pg)
            if pg.get("kind"):
                assert e["kind"] == pg["kind"], (m["kind"], pg, e)
            if pg.get("pfn") is not None:
                got = e["pfn"] + ((addr - int(e["addr"], 16)) >> 12)
                assert got == guest_pfn(pg), (m["kind"], pg, e)
            if _tri(pg.get("special")) is not None:
                assert e["special"] == pg["special"], (m["kind"], pg, e)
            if _tri(pg.get("normal_page")) is not None:
                assert e["normal_page"] == pg["normal_page"], (m["kind"], pg, e)
            n_pages += 1
        kinds.add(m["kind"])
    assert len(kinds) >= 20, f"only {sorted(kinds)} in the manifest"
    _say(key, fmt, f"{len(kinds)} mapping kinds, {n_pages} listed pages + {n_entries} entries "
         "agree with the manifest (special, normal_page, kind, level, pfn)")


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_check_codes_and_exit_status(key, fmt):
    """check: every code the manifest says must fire is found in its mapping
    with its severity, only allowed codes appear there; a healthy kernel
    exits 0 (nothing at high or above), the buggy module's kernel exits 1
    with every one of its modes in place."""
    fx = fixture(*key)
    r = L.run("-c", fx.dumps[fmt], "-s", fx.vmlinux, "check", "--json", "--fail-on", "high")
    assert r.rc in (0, 1), r
    findings = [o for o in r.json() if o["type"] == "finding"]
    assert not [o for o in r.json() if o["type"] == "error"], r
    n_codes = 0
    for f in findings:
        assert f["severity"] == L.SEVERITY[f["code"]], f
    for m in fx.manifest:
        if "start" not in m or "diagnoses" not in m:
            continue
        pid, start, end = int(m["pid"]), int(m["start"], 16), int(m["end"], 16)
        here = [f for f in findings if f["pid"] == pid
                and int(f["start"], 16) < end and int(f["end"], 16) > start]
        codes = {f["code"] for f in here}
        for code in m["diagnoses"]:
            assert code in codes, (m["kind"], code, here)
            n_codes += 1
        allowed = set(m["diagnoses"]) | set(m.get("diagnoses_may") or [])
        assert codes <= allowed, (m["kind"], codes - allowed)
    high = [f for f in findings if L.SEVERITIES.index(f["severity"]) >= 2]
    if key[2] == "healthy":
        assert not high and r.rc == 0, high
        assert n_codes >= 3
    else:
        assert high and r.rc == 1, r
        modes = {m["kind"] for m in fx.manifest if m.get("kind", "").startswith("buggy_")
                 and m.get("start")}
        assert len(modes) >= 11, f"buggy modes missing: only {sorted(modes)}"
    _say(key, fmt, f"check exit {r.rc}, {len(findings)} findings ({len(high)} high+), "
         f"{n_codes} codes the manifest expects found with their severity")


@pytest.mark.parametrize("key", KEYS, ids=["-".join(k) for k in KEYS])
def test_btf_layout_matches_debuginfo(key):
    """Without the debug vmlinux (--btf: the kernel's .BTF and kallsyms found
    in the dump through VMCOREINFO) every entry of every manifest process is
    decoded as with it."""
    fx = fixture(*key)
    _, want = walk_all(key, "elf-nopaging")
    r = L.run("-c", fx.dumps["elf-nopaging"], "--btf", *L.walk_all_args(fx))
    if key[0] == "6.1":
        # Debian's arm64 6.1 is built without CONFIG_KALLSYMS_ALL: kallsyms
        # has no data symbols (init_task, __start_BTF): a one-line error
        L.assert_clean_error(r, "CONFIG_KALLSYMS_ALL", "-s")
        _say(key, "elf-nopaging", "--btf: exit 2, kallsyms without data symbols")
        return
    assert r.rc == 0, r
    assert r.target()["layout_source"] == "btf", r.target()
    got = {}
    for o in r.json():
        if o["type"] == "entry":
            got.setdefault(o["pid"], []).append(o)
    fields = ("addr", "level", "raw", "kind", "pfn", "special", "normal_page", "page", "diagnoses")
    n = 0
    for pid, es in want.items():
        assert [[e.get(f) for f in fields] for e in got.get(pid, [])] == \
            [[e.get(f) for f in fields] for e in es], pid
        n += len(es)
    assert n > 1000
    _say(key, "elf-nopaging", f"--btf: {n} entries identical to the debug-info layout's")
