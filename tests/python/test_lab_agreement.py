"""The CLI agrees with the kernel's own truth, on every lab fixture and every
dump format: VMA lists with /proc/PID/maps, pfns with pagemap and the /dev/mem
offsets, mapcounts with kpagecount, flags with kpageflags, special and
vm_normal_page() verdicts with the scenario manifest."""
import pytest

import lab_support as L

CASES = [(k, f) for k in L.fixture_keys() for f in L.FORMATS]
IDS = [f"{L.key_id(k)}-{f}" for k, f in CASES]

# /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h + kernel-private)
KPF_LRU, KPF_SLAB, KPF_BUDDY, KPF_ANON = 5, 7, 10, 12
KPF_SWAPBACKED, KPF_HEAD, KPF_TAIL, KPF_HUGE, KPF_THP = 14, 15, 16, 17, 22
KPF_ZERO_PAGE, KPF_RESERVED, KPF_MLOCKED = 24, 32, 33


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_vmas_match_proc_maps(key, fmt):
    fx = L.fixture(*key)
    res = L.walk_result(key, fmt)
    if res is None:  # kdump-real of a kernel makedumpfile 1.7.2 does not support: asserted there
        return
    vmas, _ = res
    checked = 0
    for pid in L.manifest_pids(fx):
        assert pid in fx.maps, f"no maps for pid {pid} in {fx.dir}"
        want = [m for m in L.parse_maps(fx.maps[pid]) if m["path"] != "[vsyscall]"]
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


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_pfns_mapcounts_flags_match_pagemap(key, fmt):
    fx = L.fixture(*key)
    res = L.walk_result(key, fmt)
    if res is None:  # kdump-real of a kernel makedumpfile 1.7.2 does not support: asserted there
        return
    _, ents = res
    pids = set(L.manifest_pids(fx))
    lines = [p for p in fx.pagemap if int(p["pid"]) in pids and p.get("present") and p.get("pfn")]
    assert len(lines) > 50, "pagemap truth too small"
    n_flags = 0
    for p in lines:
        pid, addr = int(p["pid"]), int(p["addr"], 16)
        e = L.entry_at(ents.get(pid, []), addr)
        if e is None and fmt.startswith("kdump-real") and p.get("file"):
            # the real kdump is captured after the QEMU dumps and the truth
            # snapshot: a clean page-cache page may have been unmapped by
            # reclaim meanwhile; then the dump's own struct page says so
            assert L.page_unmapped_in_dump(key, fmt, p["pfn"]), \
                f"pid {pid} {addr:#x}: no entry, yet pfn {p['pfn']} is still mapped in the dump"
            continue
        assert e is not None, f"pid {pid} {addr:#x}: no entry (pagemap pfn {p['pfn']})"
        # pagemap's PM_PRESENT is pte_present(), which on x86 is true for
        # PROT_NONE / NUMA-hinting entries too (_PAGE_PRESENT|_PAGE_PROTNONE,
        # arch/x86/include/asm/pgtable.h): those are pfnscope's "protnone"
        assert e["kind"] in ("present", "protnone"), (p, e)
        pfn = e["pfn"] + ((addr - int(e["addr"], 16)) >> 12)
        assert pfn == p["pfn"], (p, e)
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
                # included -- has changed count since; the kernel's rule
                # still holds in the dump: an order-0 page's _mapcount+1 is
                # the number of PTEs mapping it (mm/rmap.c), over every mm.
                assert mc == L.pte_mappings(key, fmt, p["pfn"]), (p, e)
                assert special_or_shared(fx, pid, addr), (p, e)
        assert page["anon"] == bool(flags & (1 << KPF_ANON)), (p, e)
        assert page["reserved"] == bool(flags & (1 << KPF_RESERVED)), (p, e)
        if not flags & ((1 << KPF_HEAD) | (1 << KPF_TAIL)):
            names = set(page["flags"])
            assert ("lru" in names) == bool(flags & (1 << KPF_LRU)), (p, e)
            assert ("swapbacked" in names) == bool(flags & (1 << KPF_SWAPBACKED)), (p, e)
            assert ("mlocked" in names) == bool(flags & (1 << KPF_MLOCKED)), (p, e)
            n_flags += 1
    assert n_flags > 20


def special_or_shared(fx, pid, addr):
    """A mapping other processes than the manifest's map too: a kernel
    special mapping ([vdso]) or a file mapping (page cache)."""
    for m in L.parse_maps(fx.maps.get(pid, "")):
        if m["start"] <= addr < m["end"]:
            return m["path"].startswith("[v") or m["path"].startswith("/")
    return False


def _tri(v):
    return None if v is None else bool(v)


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_manifest_expectations(key, fmt):
    """Every mapping kind: special / normal_page / level / kind of its entries,
    and per listed page its pfn (the /dev/mem offset for /dev/mem mappings)."""
    fx = L.fixture(*key)
    res = L.walk_result(key, fmt)
    if res is None:  # kdump-real of a kernel makedumpfile 1.7.2 does not support: asserted there
        return
    _, ents = res
    kinds = set()
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
        for pg in pages:
            addr = int(pg["addr"], 16)
            e = L.entry_at(ents.get(pid, []), addr)
            if pg.get("kind") == "none":
                # no pte (the fault gave SIGBUS): walk leaves none entries
                # out unless --include-none, so no entry or a "none" one
                assert e is None or e["kind"] == "none", (m["kind"], pg, e)
                continue
            if e is None and fmt.startswith("kdump-real") and m["kind"] == "file_readonly":
                # reclaimed page-cache page (see the pagemap test above)
                assert pg.get("pfn") is not None and L.page_unmapped_in_dump(key, fmt, pg["pfn"]), \
                    (m["kind"], pg)
                continue
            assert e is not None, (m["kind"], pg)
            if pg.get("kind"):
                assert e["kind"] == pg["kind"], (m["kind"], pg, e)
            if pg.get("pfn") is not None:
                got = e["pfn"] + ((addr - int(e["addr"], 16)) >> 12)
                assert got == pg["pfn"], (m["kind"], pg, e)
            if _tri(pg.get("special")) is not None:
                assert e["special"] == pg["special"], (m["kind"], pg, e)
            if _tri(pg.get("normal_page")) is not None:
                assert e["normal_page"] == pg["normal_page"], (m["kind"], pg, e)
        kinds.add(m["kind"])
    assert len(kinds) >= 10, f"only {sorted(kinds)} in the manifest"


@pytest.mark.parametrize("key,fmt", CASES, ids=IDS)
def test_diagnoses_and_exit_status(key, fmt):
    """Codes the manifest says must fire are found in the mapping's range with
    the expected severity (L.expected_severity); only allowed codes appear
    there; healthy exits 0 (nothing at
    high or above), buggy exits 1."""
    fx = L.fixture(*key)
    r = L.check_json(key, fmt)
    partial = r.rc == 2 and any(o.get("type") == "error" for o in r.json())
    if r.rc == 2 and not partial:
        L.assert_filtered_kernel_data(key, fmt, r)
        return
    assert r.rc in (0, 1, 2), r
    findings = [o for o in r.json() if o["type"] == "finding"]
    errored = set()
    for o in r.json():
        if o["type"] == "error":  # per task: only where the dump lacks the data
            L.assert_filtered_message(key, fmt, o["message"])
            errored.add(o["pid"])
    for f in findings:
        assert f["severity"] == L.expected_severity(fx, f["code"], f["pid"], int(f["start"], 16)), f
    want_any = False
    for m in fx.manifest:
        if "start" not in m or "diagnoses" not in m:
            continue
        pid, start, end = int(m["pid"]), int(m["start"], 16), int(m["end"], 16)
        if pid in errored:
            continue  # asserted above: its mm is not in this dump
        here = [f for f in findings if f["pid"] == pid
                and int(f["start"], 16) < end and int(f["end"], 16) > start]
        codes = {f["code"] for f in here}
        for code in m["diagnoses"]:
            want_any = True
            assert code in codes, (m["kind"], code, here)
            want = {L.expected_severity(fx, code, pid, start)}
            assert {f["severity"] for f in here if f["code"] == code} == want, (m["kind"], code, here)
        allowed = set(m["diagnoses"]) | set(m.get("diagnoses_may") or [])
        assert codes <= allowed, (m["kind"], codes - allowed)
    high = [f for f in findings if L.SEVERITIES.index(f["severity"]) >= 2]
    # 1: findings at --fail-on; else 2 when a task could not be read (not
    # checked is not clean); else 0
    assert r.rc == (1 if high else 2 if errored else 0), r
    if key[2] == "healthy":
        # a healthy kernel has nothing at high or above on any kernel: case C
        # (5.10's io_uring rings, a time namespace's [vvar], the 7.2 perf
        # ring) is medium
        assert not high and r.rc == (2 if errored else 0), high
    else:
        assert want_any, "buggy manifest lists no diagnoses"
        # every buggy mapping whose task's mm survived in this dump raises its
        # high findings; a -d 31 dump of a kernel makedumpfile does not know
        # may have filtered every such mm (asserted above): then exit 2
        high_pids = {int(m["pid"]) for m in fx.manifest if m.get("start") and any(
            L.SEVERITIES.index(L.SEVERITY[c]) >= 2 for c in m.get("diagnoses") or [])}
        if high_pids <= errored:
            assert r.rc == 2, r
        else:
            assert high and r.rc == 1, r
        modes = {m["kind"] for m in fx.manifest if m.get("kind", "").startswith("buggy_")
                 and m.get("start")}
        assert len(modes) >= 11, f"buggy modes missing: only {sorted(modes)}"


@pytest.mark.parametrize("key", L.healthy_keys(), ids=[L.key_id(k) for k in L.healthy_keys()])
def test_page_table_page_type(key):
    """The page type pfnscope takes for page tables (layout pgtype_table) is
    the one the kernel put on the PTE table that maps the magic page, read
    from the dump: PGTY_table (0xf2 top byte) from 6.12; before, the
    PageType() bit cleared under PAGE_TYPE_BASE 0xf0000000: 0x200 (5.11-6.11)
    or 0x400 on 5.10 and older, where 0x200 was PG_kmemcg
    (include/linux/page-flags.h; 5.11 "mm: Convert page kmemcg type to a
    page memcg flag" renumbered PG_table)."""
    from drgn.helpers.linux.pid import find_task
    from pfnscope import layout, target
    fx = L.fixture(*key)
    sess = target.open_dump(fx.dumps["elf-paging"], fx.vmlinux)
    prog, lo = sess.prog, sess.layout_dict
    mm = find_task(prog, L.num(fx.magic["pid"])).mm
    addr = L.num(fx.magic["addr"])
    pa = mm.pgd.value_() - lo["page_offset_base"]
    for shift in ([48, 39, 30, 21] if fx.levels == 5 else [39, 30, 21]):
        ent = int.from_bytes(prog.read(pa + 8 * ((addr >> shift) & 511), 8, True), "little")
        assert ent & 1 and not ent & 0x80, (shift, hex(ent))
        pa = ent & 0x000FFFFFFFFFF000
    # pa: the PTE table; its struct page's page_type word
    off = lo["page_page_type"] if lo["page_page_type"] >= 0 else lo["page_mapcount"]
    word = int.from_bytes(prog.read(lo["vmemmap_base"] + (pa >> 12) * lo["page_size"] + off, 4),
                          "little")
    if L.kernel_version(fx) >= (6, 12):
        assert lo["page_type_scheme"] == layout.PGTYPE_PGTY
        assert word >> 24 == lo["pgtype_table"] == 0xF2, hex(word)
    else:
        assert lo["page_type_scheme"] == layout.PGTYPE_6_1
        table = lo["pgtype_table"]
        assert word & (0xF0000000 | table) == 0xF0000000, (hex(word), hex(table))
        want = 0x400 if L.kernel_version(fx) < (5, 11) else 0x200
        assert table == want, hex(table)
