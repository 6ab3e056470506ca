"""The CLI agrees with the kernel's own truth on the arm64 fixtures
(tests/arm64/lab.py: Debian 6.1 with 48-bit VAs, 6.12 with 52-bit LPA2 VAs
on -cpu max and 48-bit VAs on cortex-a57), as tests/python/test_lab_agreement.py
does on x86-64: VMA lists with /proc/PID/maps, pfns with pagemap and the
/dev/mem offsets, mapcounts with kpagecount, flags with kpageflags, special
and vm_normal_page() verdicts with the scenario manifest, healthy exit 0
and buggy exit 1 with every mode's code and severity (6.1 and 6.12), and on 6.12
the contiguous (PTE_CONT) and uffd-wp entries (tests/arm64/guest/a64extra.c).
Mapcounts that moved between the guest's truth and the dump are recounted over
every mm of the dump, as tests/python/test_lab_agreement.py does on x86-64.
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
    n_pfn = n_mc = n_flags = n_recount = 0
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
                # kpagecount was read by the guest's `truth` process, before
                # the dump.  A page mapped outside the manifest's processes
                # -- the [vdso] text page is in every mm, `truth`'s own
                # included, and page cache -- has changed count since; the
                # kernel's rule still holds in the dump: an order-0 page's
                # _mapcount+1 is the number of PTEs mapping it (mm/rmap.c),
                # over every mm of the dump
                assert mc == pte_mappings(key, fmt).get(p["pfn"], 0), (p, e)
                assert special_or_shared(fx, pid, addr), (p, e)
                n_recount += 1
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
         f"pagemap/kpagecount/kpageflags; {n_recount} mapcounts that moved since the truth "
         "equal the dump's count of PTEs over every mm")


@functools.lru_cache(maxsize=None)
def pte_mappings(key, fmt):
    """{pfn: PTEs mapping it} over every address space of the dump: the
    manifest's processes (walk_all) and every other task with an mm."""
    import collections
    fx = fixture(*key)
    base = ["-c", fx.dumps[fmt], "-s", fx.vmlinux]
    r = L.run(*base, "tasks", "--json")
    assert r.rc == 0, r
    pids = sorted({t["pid"] for t in r.json() if t["mm"] != "0x0"} - set(L.manifest_pids(fx)))
    every = [e for es in walk_all(key, fmt)[1].values() for e in es]
    if pids:
        args = [*base, "walk", "--all", "--json"]
        for p in pids:
            args += ["-p", str(p)]
        r = L.run(*args)
        assert r.rc == 0, r
        every += [o for o in r.json() if o["type"] == "entry"]
    return collections.Counter(e["pfn"] for e in every
                               if e["level"] == "pte" and e["kind"] in ("present", "protnone"))


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


# arm64 pte bits the guest's raw ptes (module ioctl) are compared on
PTE_CONT, PTE_UFFD_WP, PTE_RDONLY, PTE_AF, PTE_DIRTY = 1 << 52, 1 << 58, 1 << 7, 1 << 10, 1 << 55
PTE_SWP_UFFD_WP = 1 << 3
KPF_THP = 22


def _extra(fx):
    """tests/arm64/guest/a64extra.c's record: what it built, or why not."""
    import json
    with open(os.path.join(fx.dir, "arm64-extra.json")) as f:
        return json.load(f)


def _extra_kind(fx, kind):
    ms = [m for m in fx.manifest if m.get("kind") == kind]
    assert len(ms) == 1, (kind, len(ms))
    return ms[0]


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_contpte_and_uffd_wp(key, fmt):
    """The arm64 bits the x86 lab has no equivalent of, against what the
    guest kernel reported (tests/arm64/guest/a64extra.c): 6.12 folds 64 KiB
    anon folios into contiguous ptes (PTE_CONT) and has uffd-wp (PTE_UFFD_WP
    on present ptes, PTE_SWP_UFFD_WP on swap ptes, PTE_MARKER_UFFD_WP pte
    markers), 6.1 has neither.  Per page: pfn and uffd-wp bit against
    pagemap (PM_UFFD_WP, bit 57), swap type/offset against pagemap, the
    contiguous bit and the whole raw pte against the pte the kernel itself
    returned (ptep_get() through the buggy module's ioctl) where the module
    was loaded, else against the fold rule (contpte_set_ptes(): a naturally
    aligned 16-page folio, per kpageflags, at a 64 KiB aligned address),
    mapcounts against kpagecount, vm_normal_page() verdicts."""
    fx = fixture(*key)
    ex = _extra(fx)
    if key[0] == "6.1":
        # no mTHP sizes (v6.8) and no arm64 uffd-wp (v6.10): nothing built,
        # the reason is the kernel's own
        assert not ex["contpte"]["built"] and "hugepages-64kB" in ex["contpte"]["why"], ex
        assert not ex["uffd_wp"]["built"], ex
        assert "UFFD_FEATURE_PAGEFAULT_FLAG_WP" in ex["uffd_wp"]["why"] or \
            "UFFDIO_REGISTER_MODE_WP" in ex["uffd_wp"]["why"], ex
        assert not [m for m in fx.manifest if m.get("kind") in ("contpte_anon", "uffd_wp_anon")]
        _say(key, fmt, f"6.1: no contpte ({ex['contpte']['why']}), no uffd-wp ({ex['uffd_wp']['why']})")
        return
    assert ex["contpte"]["built"] and ex["uffd_wp"]["built"], ex
    assert ex["pte_ioctl"] == (key[2] == "buggy"), ex
    _, ents = walk_all(key, fmt)
    truth = {(int(p["pid"]), int(p["addr"], 16)): p for p in fx.pagemap}

    # contiguous ptes
    m = _extra_kind(fx, "contpte_anon")
    pid, start = int(m["pid"]), int(m["start"], 16)
    pages = m["pages"]
    assert len(pages) == 64 and start % (64 << 10) == 0
    n_cont = n_raw = n_mc = 0
    for i in range(0, 64, 16):
        blk = pages[i:i + 16]
        flags = [int(p["kpageflags"], 16) for p in blk]
        # the kernel's fold rule: one naturally aligned 64 KiB folio
        folio = (blk[0]["pfn"] % 16 == 0 and flags[0] >> KPF_HEAD & 1
                 and all(f >> KPF_TAIL & 1 for f in flags[1:])
                 and [p["pfn"] for p in blk] == list(range(blk[0]["pfn"], blk[0]["pfn"] + 16)))
        assert folio, (key, i, blk[0])
        for j, pg in enumerate(blk):
            addr = int(pg["addr"], 16)
            e = L.entry_at(ents.get(pid, []), addr)
            assert e is not None and e["addr"] == pg["addr"] and e["level"] == "pte", (pg, e)
            assert e["kind"] == "present" and e["pfn"] == pg["pfn"], (pg, e)
            assert e["normal_page"] is True and e["special"] is False, (pg, e)
            assert e.get("cont") is True, (pg, e)
            assert "uffd_wp" not in e and not pg["uffd_wp"], (pg, e)
            assert e["page"]["head_pfn"] == blk[0]["pfn"] and e["page"]["order"] == 4, (pg, e)
            assert e["page"]["anon"], (pg, e)
            if "pte" in pg:
                raw, want = int(e["raw"], 16), int(pg["pte"], 16)
                assert want & PTE_CONT, pg
                # ptep_get() of a contpte entry ORs in the young/dirty bits of
                # its 16 neighbours (contpte_ptep_get()): equal but for those
                mask = ~(PTE_AF | PTE_DIRTY | PTE_RDONLY)
                assert raw & mask == want & mask, (hex(raw), hex(want))
                n_raw += 1
            t = truth.get((pid, addr))
            assert t is not None and t["pfn"] == pg["pfn"], (pg, t)
            # 6.12 still keeps per-page mapcounts in large folios: kpagecount
            # is folio_precise_page_mapcount()
            assert e["page"]["page_mapcount"] == t["kpagecount"], (pg, e["page"], t)
            n_mc += 1
            n_cont += 1

    # uffd-wp
    m = _extra_kind(fx, "uffd_wp_anon")
    pid = int(m["pid"])
    seen = {"present": 0, "swap": 0, "marker": 0}
    for pg in m["pages"]:
        addr = int(pg["addr"], 16)
        e = L.entry_at(ents.get(pid, []), addr)
        assert pg["uffd_wp"], pg   # pagemap's PM_UFFD_WP: every page of the range
        assert e is not None and e["addr"] == pg["addr"], (pg, e)
        assert e["kind"] == pg["kind"], (pg, e)
        assert e.get("uffd_wp") is True, (pg, e)
        assert "cont" not in e, (pg, e)
        if pg["kind"] == "present":
            assert e["pfn"] == pg["pfn"] and e["writable"] is False, (pg, e)
            assert e["normal_page"] is True and e["special"] is False, (pg, e)
            assert e["page"]["page_mapcount"] == truth[(pid, addr)]["kpagecount"] == 1, (pg, e)
        else:
            assert e["pfn"] is None and e["normal_page"] is False, (pg, e)
            assert (e["swap"]["type"], e["swap"]["offset"]) == (pg["swap_type"], pg["swap_offset"]), (pg, e)
        if "pte" in pg:
            want = int(pg["pte"], 16)
            assert int(e["raw"], 16) == want, (pg, e["raw"])
            # the kernel's own bit: PTE_UFFD_WP (58) on a present pte,
            # PTE_SWP_UFFD_WP (3) on a swap pte, PTE_MARKER_UFFD_WP (1) in a
            # marker's offset (bits 12+ since 6.10)
            bit = {"present": PTE_UFFD_WP, "swap": PTE_SWP_UFFD_WP, "marker": 1 << 12}[pg["kind"]]
            assert want & bit, pg
            n_raw += 1
        seen[pg["kind"]] += 1
    assert seen == {"present": 8, "swap": 4, "marker": 4}, seen
    n_api = 0
    if fmt == "elf-nopaging":
        # the Python API's Entry carries the same bits (uffd_wp, cont)
        import pfnscope
        prog = pfnscope.open(fx.dumps[fmt], fx.vmlinux)
        for kind, attr, want in (("contpte_anon", "cont", 64), ("uffd_wp_anon", "uffd_wp", 16)):
            mm = _extra_kind(fx, kind)
            es = pfnscope.walk(prog, pid=int(mm["pid"]), addr=int(mm["start"], 16))
            assert sum(bool(getattr(e, attr)) for e in es) == want, (kind, es[:2])
            n_api += want
    _say(key, fmt, f"{n_cont} contpte entries (4 folios of 16) with their own pfns, cont bit "
         f"and {n_mc} mapcounts; uffd-wp {seen} with the bit; {n_raw} raw ptes equal the kernel's; {n_api} API entries")
