# SPDX-License-Identifier: MIT
"""Tests of the C extension pfnscope._core on a synthetic target.

The target is the unit tests' mock kernel (tests/unit/mock.c), built into a
test-only shared library (tests/python/core_ext_mock.c) and driven through
ctypes: page tables and struct pages are planted from Python, the extension
reads them through a Python callable reader (the drgn path), through
KdumpFile over an ELF core written from the same bytes, and through RawFile.
"""
import ctypes
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "src", "python"))

from pfnscope import _core  # noqa: E402

# ---------------------------------------------------------------- mock lib

HELPER = os.path.join(ROOT, "build", "test-core-ext-mock.so")

P, RW, US, A, D, PSE = 0x1, 0x2, 0x4, 0x20, 0x40, 0x80
SPECIAL = 0x200
USER_PTE = P | RW | US | A | D
LEVEL_PTE, LEVEL_PMD = 0, 1
VM_READ, VM_WRITE, VM_SHARED, VM_MAYREAD, VM_MAYWRITE = 0x1, 0x2, 0x8, 0x10, 0x20
VM_PFNMAP, VM_IO, VM_DONTEXPAND, VM_DONTDUMP, VM_MIXEDMAP = 0x400, 0x4000, 0x40000, 0x4000000, 0x10000000
MMIO_PFN = 0x8000000  # MOCK_MMIO_PFN: no struct page


def _build_helper():
    srcs = [os.path.join(ROOT, "tests", "python", "core_ext_mock.c"),
            os.path.join(ROOT, "tests", "unit", "mock.c")]
    core = sorted(os.path.join(ROOT, "src", "core", f)
                  for f in os.listdir(os.path.join(ROOT, "src", "core")) if f.endswith(".c"))
    deps = srcs + core
    deps.append(os.path.join(ROOT, "include", "pfnscope", "layout-fields.def"))
    if os.path.exists(HELPER) and all(os.path.getmtime(HELPER) >= os.path.getmtime(s) for s in deps):
        return
    os.makedirs(os.path.dirname(HELPER), exist_ok=True)
    cmd = ["cc", "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-shared", "-fPIC",
           "-I" + os.path.join(ROOT, "include"),
           "-I" + os.path.join(ROOT, "tests", "unit"), "-o", HELPER] + deps[:-1]
    subprocess.run(cmd, check=True)


@pytest.fixture(scope="module")
def lib():
    _build_helper()
    L = ctypes.CDLL(HELPER)
    vp, u64, i32 = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int32
    sigs = {
        "th_new": (vp, [ctypes.c_int, ctypes.c_int, ctypes.c_int]),
        "th_free": (None, [vp]),
        "th_read": (ctypes.c_int, [vp, u64, ctypes.c_char_p, ctypes.c_size_t]),
        "th_layout_text": (ctypes.c_size_t, [vp, ctypes.c_char_p, ctypes.c_size_t]),
        "mock_alloc_pfn": (u64, [vp]),
        "mock_alloc_pfns": (u64, [vp, ctypes.c_uint]),
        "mock_user_pgd": (u64, [vp]),
        "mock_map": (None, [vp, u64, u64, ctypes.c_int, u64]),
        "mock_table_pa": (u64, [vp, u64, u64, ctypes.c_int]),
        "mock_kalloc": (u64, [vp, ctypes.c_size_t]),
        "mock_write_kva_u64": (None, [vp, u64, u64]),
        "mock_page_simple": (None, [vp, u64, u64, i32, i32]),
        "mock_page_set_mapping": (None, [vp, u64, u64]),
        "mock_set_unreadable": (None, [vp, u64, ctypes.c_int]),
        "mock_write": (None, [vp, u64, ctypes.c_char_p, ctypes.c_size_t]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(L, name)
        f.restype, f.argtypes = res, args
    return L


class Mock:
    """One mock kernel + helpers to plant mappings."""

    def __init__(self, L, levels=4, version=(6, 1)):
        self.L = L
        self.k = L.th_new(levels, version[0], version[1])
        buf = ctypes.create_string_buffer(1 << 16)
        n = L.th_layout_text(self.k, buf, len(buf))
        assert n < len(buf)
        fields, names = {}, {}
        for line in buf.value.decode().splitlines():
            key, val = line.split("=", 1)
            if key.startswith("pageflag."):
                names[int(key.split(".")[1])] = val
            else:
                fields[key] = int(val)
        # the members of struct pfs_layout, as the C compiler saw them
        self.members = [k for k in fields]
        fields["pageflag_names"] = names
        self.layout = _core.Layout(fields)
        self.fields = self.layout.as_dict()  # u64 fields as unsigned ints
        self.pgd = L.mock_user_pgd(self.k)
        # a struct mm_struct whose pgd points (direct-map VA) at our table
        self.mm = L.mock_kalloc(self.k, 4096)
        L.mock_write_kva_u64(self.k, self.mm + fields["mm_pgd"], fields["page_offset_base"] + self.pgd)
        self.reads = []

    def close(self):
        self.L.th_free(self.k)

    def read(self, pa, n):
        buf = ctypes.create_string_buffer(n)
        if self.L.th_read(self.k, pa, buf, n):
            raise IOError("unreadable 0x%x" % pa)
        self.reads.append((pa, n))
        return buf.raw

    def target(self, reader=None):
        return _core.Target(self.layout, reader or self.read)

    def map(self, va, raw, level=LEVEL_PTE):
        self.L.mock_map(self.k, self.pgd, va, level, raw)

    def anon_page(self, rc=1, mc=1):
        pfn = self.L.mock_alloc_pfn(self.k)
        self.L.mock_page_simple(self.k, pfn, 0, rc, mc)
        self.L.mock_page_set_mapping(self.k, pfn, 0xffff888000001001)  # anon
        return pfn


@pytest.fixture
def mock(lib):
    m = Mock(lib)
    yield m
    m.close()


VA = 0x7f0000000000


def vma_tuple(start, end, flags, pgoff=0, vma_va=0):
    return (vma_va, start, end, flags, pgoff, 0, 0)


def anon_vma(n):
    return vma_tuple(VA, VA + n * 4096, VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE)


def pfnmap_vma(n, pgoff=0):
    return vma_tuple(VA, VA + n * 4096, VM_READ | VM_WRITE | VM_SHARED | VM_MAYREAD | VM_MAYWRITE
                     | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP, pgoff)


def plant_mixed(m):
    """8 anon ptes (4 contiguous pfns, then 4 more contiguous elsewhere),
    a hole, 3 special MMIO ptes (contiguous), 1 special pte over RAM."""
    first = [m.anon_page(rc=1, mc=1) for _ in range(4)]
    m.L.mock_alloc_pfns(m.k, 3)  # gap in the pfn sequence
    second = [m.anon_page(rc=2, mc=1) for _ in range(4)]
    for i, pfn in enumerate(first + second):
        m.map(VA + i * 4096, (pfn << 12) | USER_PTE)
    for i in range(3):
        m.map(VA + (9 + i) * 4096, ((MMIO_PFN + i) << 12) | USER_PTE | SPECIAL)
    ram = m.anon_page()
    m.map(VA + 12 * 4096, (ram << 12) | USER_PTE | SPECIAL)
    return first, second, ram


# ---------------------------------------------------------------- schema

ENTRY_KEYS = ["type", "pid", "vma_start", "addr", "level", "raw", "kind", "pfn", "special",
              "devmap", "writable", "normal_page", "vnp_reason", "page", "consumers",
              "diagnoses"]
PAGE_KEYS = {"refcount": int, "mapcount": int, "flags": list, "anon": bool,
             "reserved": bool, "head_pfn": int}
CONSUMERS = ["gup_fast", "gup", "follow_pte", "kvm", "vfio", "access_process_vm"]
HEX = re.compile(r"^0x[0-9a-f]+$")


def check_entry_json(obj, typ="entry"):
    assert obj["type"] == typ
    for k in ENTRY_KEYS:
        assert k in obj, k
    assert isinstance(obj["pid"], int)
    for k in ("vma_start", "addr", "raw"):
        assert HEX.match(obj[k]), (k, obj[k])
    assert obj["level"] in ("pte", "pmd", "pud")
    assert obj["kind"] in _core.KINDS
    assert obj["pfn"] is None or (isinstance(obj["pfn"], int) and obj["pfn"] >= 0)
    for k in ("special", "devmap", "writable", "normal_page"):
        assert isinstance(obj[k], bool), k
    assert obj["vnp_reason"] in _core.VNP_REASONS
    if obj["page"] is not None:
        for k, t in PAGE_KEYS.items():
            assert isinstance(obj["page"][k], t), k
            if t is int:
                assert not isinstance(obj["page"][k], bool)
        assert all(isinstance(f, str) for f in obj["page"]["flags"])
    assert sorted(obj["consumers"]) == sorted(CONSUMERS)
    assert all(v in _core.VERDICTS for v in obj["consumers"].values())
    codes = dict(_core.DIAG_CODES)
    for d in obj["diagnoses"]:
        assert set(d) == {"code", "severity"}
        assert codes[d["code"]] == d["severity"]
    if obj["swap"] is not None:
        assert set(obj["swap"]) == {"type", "offset"}


def walk_out(t, mode, *args, **kw):
    """walk_write's return and output; walk_bytes must return the same."""
    with tempfile.TemporaryFile() as f:
        ret = t.walk_write(f.fileno(), *args, mode=mode, **kw)
        f.seek(0)
        text = f.read().decode()
    out, *ret_bytes = t.walk_bytes(*args, mode=mode, **kw)
    assert (tuple(ret_bytes), out.decode()) == (ret, text)
    return ret, text


# ---------------------------------------------------------------- module

def test_constants():
    assert _core.DIAG_CODES == (
        ("BAD_SPECIAL", "critical"), ("PFN_BEYOND_MEMMAP", "critical"),
        ("MAPS_FREED_PAGE", "critical"), ("REFCOUNT_BELOW_MAPCOUNT", "high"),
        ("PFNMAP_AND_MIXEDMAP", "high"), ("SPECIAL_OVER_RAM", "medium"),
        ("NONSPECIAL_IN_PFNMAP", "high"), ("PFNMAP_NONLINEAR_COW", "medium"),
        ("PFNMAP_COW_ANON", "medium"), ("RESERVED_NORMAL", "medium"),
        ("PFNMAP_WITHOUT_IO", "low"))
    assert _core.SEVERITIES == ("low", "medium", "high", "critical")
    assert _core.CONSUMERS == tuple(CONSUMERS)
    assert {"present", "none", "protnone", "swap", "migration", "device", "marker",
            "hwpoison"} <= set(_core.KINDS)
    assert _core.WALK_NONE == 1 and _core.WALK_NO_PAGE == 2


def test_vma_json_and_flags():
    flags = 0x0C044411  # [vvar] on 6.1: rd mr pf io de dd sd + mixedmap
    names = _core.vma_flag_names(flags)
    assert names == ["read", "mayread", "pfnmap", "io", "dontexpand", "dontdump", "softdirty",
                     "mixedmap"] or names == ["read", "mayread", "pfnmap", "io", "dontexpand",
                                              "dontdump", "softdirty"]
    line = _core.vma_json((0xffff0000, 0x1000, 0x3000, flags | VM_MIXEDMAP, 7, 0, 0), 42,
                          'we"ird\n\x01name')
    obj = json.loads(line)
    assert obj == {"type": "vma", "pid": 42, "start": "0x1000", "end": "0x3000",
                   "flags": hex(flags | VM_MIXEDMAP), "flag_names": _core.vma_flag_names(flags | VM_MIXEDMAP),
                   "pgoff": 7, "file": 'we"ird\n\x01name', "cow": False}
    assert "\n" not in line
    obj = json.loads(_core.vma_json((0, 0, 0x1000, VM_READ | VM_MAYWRITE, 0, 0, 0), 1, None))
    assert obj["file"] is None and obj["cow"] is True
    assert _core.is_cow_mapping(VM_MAYWRITE) and not _core.is_cow_mapping(VM_MAYWRITE | VM_SHARED)


def test_layout_errors_and_fields(mock):
    assert len(mock.members) > 100
    assert set(mock.members) | {"pageflag_names"} == set(_core.Layout.fields())

    fields = dict(mock.fields)
    del fields["vmemmap_base"]
    with pytest.raises(ValueError, match="layout: missing vmemmap_base"):
        _core.Layout(fields)
    with pytest.raises(ValueError, match="layout: unknown field no_such"):
        _core.Layout(dict(mock.fields, no_such=1))
    with pytest.raises(TypeError):
        _core.Layout(dict(mock.fields, page_size="64"))
    lo = _core.Layout(dict(mock.fields, arch="x86_64"))
    assert lo.get("page_size") == mock.fields["page_size"]
    assert lo.get("pageflag_names")[12] == "reserved"
    assert lo.as_dict()["mm_pgd"] == mock.fields["mm_pgd"]


def test_layout_absent_is_one_value(mock):
    """ABSENT is all ones in the field's C type, whatever the field; has()
    is the C pfs_layout_has()."""
    init = _core.Layout.initial()
    assert set(init) | {"pageflag_names"} == set(_core.Layout.fields())
    assert init["page_flags"] == -1                   # int32_t offset
    assert init["huge_zero_pfn"] == (1 << 64) - 1     # uint64_t pfn
    assert init["pg_double_map"] == -1                # int bit number
    assert init["pgtable_levels"] == 4                # a default, not absent
    lo = _core.Layout(dict(mock.fields, huge_zero_pfn=-1, pg_double_map=-1,
                           page_compound_dtor=-1))
    for name in ("huge_zero_pfn", "pg_double_map", "page_compound_dtor"):
        assert not lo.has(name), name
    assert lo.get("huge_zero_pfn") == (1 << 64) - 1
    lo = _core.Layout(dict(mock.fields, huge_zero_pfn=0, pg_double_map=0))
    assert lo.has("huge_zero_pfn") and lo.has("pg_double_map") and lo.has("page_flags")
    with pytest.raises(KeyError):
        lo.has("no_such")


# ---------------------------------------------------------------- walks

def test_walk_entries_and_json(mock):
    first, second, ram = plant_mixed(mock)
    t = mock.target()
    vma = anon_vma(16)
    entries = t.walk(mock.mm, vma)
    assert [e.addr for e in entries] == [VA + i * 4096 for i in list(range(8)) + [9, 10, 11, 12]]
    e0 = entries[0]
    assert (e0.level, e0.kind, e0.pfn, e0.special, e0.writable) == ("pte", "present", first[0], False, True)
    assert e0.normal_page and e0.vnp_reason == "not_special"
    assert e0.page["refcount"] == 1 and e0.page["mapcount"] == 1 and e0.page["anon"]
    assert e0.page_state == "ok" and e0.swap is None and e0.size == 4096
    assert set(e0.consumers) == set(CONSUMERS)
    mmio = entries[8]
    assert mmio.special and mmio.pfn == MMIO_PFN and not mmio.normal_page
    assert mmio.page is None
    # special over RAM in a non-pfnmap VMA: the kernel's bad_special
    bad = entries[11]
    assert bad.vnp_reason == "bad_special"
    assert ("BAD_SPECIAL", "critical") in bad.diagnoses
    assert "Entry" in repr(bad)
    # to_json == walk_write json, and every field validates
    (n, runs, counts), text = walk_out(t, "json", mock.mm, vma, 77)
    lines = text.splitlines()
    assert n == len(entries) == len(lines) and runs == 0
    for e, line in zip(entries, lines):
        assert e.to_json(77, VA) == line
        obj = json.loads(line)
        check_entry_json(obj)
        assert obj["pid"] == 77 and obj["vma_start"] == hex(VA)
        assert obj["addr"] == hex(e.addr) and obj["raw"] == hex(e.raw) and obj["pfn"] == e.pfn
        assert obj["page"] == (None if e.page is None else
                               {k: v for k, v in e.page.items() if k != "raw_flags"})
        assert obj["consumers"] == e.consumers
        assert [(d["code"], d["severity"]) for d in obj["diagnoses"]] == e.diagnoses
    # special ptes outside PFNMAP/MIXEDMAP: 3 MMIO + 1 RAM
    assert counts.get("BAD_SPECIAL") == 4
    assert sum(counts.values()) == sum(len(e.diagnoses) for e in entries)


def test_summary_runs(mock):
    first, second, ram = plant_mixed(mock)
    t = mock.target()
    vma = anon_vma(16)
    (n, runs, counts), text = walk_out(t, "summary-json", mock.mm, vma, 5)
    objs = [json.loads(l) for l in text.splitlines()]
    for o in objs:
        check_entry_json(o, "run")
        assert isinstance(o["count"], int) and HEX.match(o["end"])
    # first 4 anon (rc 1) contiguous -> 1 run; the next 4 have another pfn
    # base (gap) -> a new run; hole at index 8 -> the MMIO run; then RAM
    assert [(o["addr"], o["count"], o["end"]) for o in objs] == [
        (hex(VA), 4, hex(VA + 4 * 4096)),
        (hex(VA + 4 * 4096), 4, hex(VA + 8 * 4096)),
        (hex(VA + 9 * 4096), 3, hex(VA + 12 * 4096)),
        (hex(VA + 12 * 4096), 1, hex(VA + 13 * 4096))]
    assert runs == 4 and n == 12
    assert objs[0]["pfn"] == first[0] and objs[1]["pfn"] == second[0]
    # run fields equal the first entry's
    entries = t.walk(mock.mm, vma)
    first_json = json.loads(entries[4].to_json(5, VA))
    assert {k: v for k, v in objs[1].items() if k not in ("type", "count", "end")} == \
        {k: v for k, v in first_json.items() if k != "type"}
    # only_diag keeps only the runs with a diagnosis (the special ones)
    (_, _, _), text = walk_out(t, "summary-json", mock.mm, vma, 5, only_diag=True)
    assert [json.loads(l)["addr"] for l in text.splitlines()] == [hex(VA + 9 * 4096),
                                                                   hex(VA + 12 * 4096)]
    # check_mm over given VMAs, through the Python reader: the same runs, and
    # the VMA-level diagnoses of the pfnmap one (no runs: nothing mapped there)
    pm = (0, VA + (1 << 30), VA + (1 << 30) + 4 * 4096) + pfnmap_vma(4)[3:]
    pm = pm[:3] + (pm[3] | VM_MIXEDMAP,) + pm[4:]
    assert t.check_mm(mock.mm, 5, 0, True, [vma, pm]) == (
        12, [(vma, [], text.encode(), 12), (pm, t.vma_diagnoses(pm), b"", 0)],
        [(vma, 12), (pm, 0)])
    assert t.vma_diagnoses(pm) and mock.reads


def test_table_lines_aligned(mock):
    plant_mixed(mock)
    t = mock.target()
    vma = anon_vma(16)
    (n, _, _), text = walk_out(t, "table", mock.mm, vma, 1)
    lines = text.splitlines()
    assert len(lines) == n == 12
    header = _core.table_header()
    cols = [m.start() for m in re.finditer(r"\S+", header)]
    assert header.split()[:4] == ["ADDRESS", "LVL", "RAW", "KIND"]
    for line in lines:
        # every fixed column starts where the header's does
        for c in cols[1:10]:
            assert line[c - 1] == " " and line[c] != " ", (line, c)
    assert "BAD_SPECIAL(critical)" in lines[-1]
    assert lines[0].startswith("0x00007f0000000000 pte ")
    assert t.walk(mock.mm, vma)[0].to_table() == lines[0]
    (_, runs, _), text = walk_out(t, "summary-table", mock.mm, vma, 1)
    hdr = _core.table_header(True)
    assert hdr.split()[:3] == ["ADDRESS", "END", "COUNT"]
    assert len(text.splitlines()) == runs == 4
    assert text.splitlines()[0].split()[2] == "4"


def test_walk_range_flags_and_count(mock):
    plant_mixed(mock)
    t = mock.target()
    vma = anon_vma(16)
    es = t.walk(mock.mm, vma, VA + 2 * 4096, VA + 10 * 4096)
    assert [e.addr for e in es] == [VA + i * 4096 for i in (2, 3, 4, 5, 6, 7, 9)]
    es = t.walk(mock.mm, vma, flags=_core.WALK_NONE)
    assert len(es) >= 16 and any(e.kind == "none" for e in es)
    es = t.walk(mock.mm, vma, flags=_core.WALK_NO_PAGE)
    assert all(e.page is None for e in es)
    (n, runs, counts), text = walk_out(t, "count", mock.mm, vma, 1)
    assert n == 12 and text == "" and counts.get("BAD_SPECIAL") == 4
    # explicit pgd= bypasses mm
    assert len(t.walk(0, vma, pgd=mock.pgd)) == 12
    with pytest.raises(ValueError):
        walk_out(t, "bogus", mock.mm, vma, 1)
    with pytest.raises(TypeError):
        t.walk(mock.mm, (1, 2))


def test_walk_keeps_entries_without_pfn(mock):
    """Swap entries map no pfn: a walk without pfns= reports them (walk and
    walk_write alike); a pfns= range leaves them out."""
    first, _, _ = plant_mixed(mock)
    swp = 0x07FFFFFFFFFBEE00  # x86 swap pte: type 0, offset stored inverted
    mock.map(VA + 14 * 4096, swp)
    t = mock.target()
    vma = anon_vma(16)
    es = t.walk(mock.mm, vma)
    sw = [e for e in es if e.kind == "swap"]
    assert [e.addr for e in sw] == [VA + 14 * 4096] and sw[0].pfn is None
    (n, _, _), text = walk_out(t, "json", mock.mm, vma, 1)
    objs = [json.loads(line) for line in text.splitlines()]
    assert n == 13 and [o["kind"] for o in objs].count("swap") == 1
    only = t.walk(mock.mm, vma, pfns=(first[0], first[0]))
    assert [e.pfn for e in only] == [first[0]]


def test_pfnmap_vma(mock):
    # a linear /dev/mem-like pfnmap: specials, no struct page
    for i in range(4):
        mock.map(VA + i * 4096, ((MMIO_PFN + i) << 12) | USER_PTE | SPECIAL)
    t = mock.target()
    es = t.walk(mock.mm, pfnmap_vma(4, MMIO_PFN))
    assert [e.vnp_reason for e in es] == ["pfnmap"] * 4
    assert not any(e.normal_page for e in es) and not any(e.diagnoses for e in es)
    (_, runs, counts), text = walk_out(t, "summary-json", mock.mm, pfnmap_vma(4, MMIO_PFN), 1)
    assert runs == 1 and counts == {}
    assert json.loads(text)["count"] == 4


# ---------------------------------------------------------------- readers

def test_python_reader_errors(mock):
    first, second, ram = plant_mixed(mock)
    vma = anon_vma(16)
    pte_table = mock.L.mock_table_pa(mock.k, mock.pgd, VA, LEVEL_PTE)
    assert pte_table

    def failing(pa, n):
        if pa // 4096 == pte_table // 4096:
            raise RuntimeError("FaultError stand-in")
        return mock.read(pa, n)
    es = mock.target(failing).walk(mock.mm, vma)
    assert es and all(e.kind == "unreadable" for e in es)

    def short(pa, n):
        data = mock.read(pa, n)
        return data[:-1] if pa // 4096 == pte_table // 4096 else data
    es = mock.target(short).walk(mock.mm, vma)
    assert es and all(e.kind == "unreadable" for e in es)

    def interrupt(pa, n):
        if pa // 4096 == pte_table // 4096:
            raise KeyboardInterrupt
        return mock.read(pa, n)
    t = mock.target(interrupt)
    with pytest.raises(KeyboardInterrupt):
        t.walk(mock.mm, vma)
    # the target stays usable
    assert t.read_phys(first[0] << 12, 8) == mock.read(first[0] << 12, 8)


def test_core_errors(mock):
    t = mock.target()
    with pytest.raises(_core.Error) as ei:
        t.read_kvirt(0xffffc90000000000, 8)  # vmalloc area: not mapped in the mock
    assert ei.value.code in (1, 2) and "0x" in str(ei.value)
    assert t.read_kvirt(mock.mm + mock.fields["mm_pgd"], 8) == \
        (mock.fields["page_offset_base"] + mock.pgd).to_bytes(8, "little")
    assert t.kvirt_to_phys(mock.fields["page_offset_base"] + 0x1234) == 0x1234
    assert t.pgd_phys(mock.mm) == mock.pgd
    st = t.stats()
    assert st["reads"] >= 1 and st["bytes"] >= 4096
    with pytest.raises(TypeError):
        _core.Target(mock.layout, 42)


def write_elf_core(path, chunks):
    """A minimal x86-64 ELF core: one PT_LOAD per (paddr, bytes)."""
    import struct
    phnum = len(chunks)
    off = 64 + 56 * phnum
    ph, data = b"", b""
    for pa, blob in chunks:
        ph += struct.pack("<IIQQQQQQ", 1, 7, off + len(data), 0xffff888000000000 + pa, pa,
                          len(blob), len(blob), 4096)
        data += blob
    eh = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 4, 62, 1, 0, 64, 0,
                     0, 64, 56, phnum, 64, 0, 0)
    with open(path, "wb") as f:
        f.write(eh + ph + data)


def test_kdumpfile_reader_matches_callable(mock, tmp_path):
    plant_mixed(mock)
    vma = anon_vma(16)
    mock.reads.clear()
    ref = mock.target()
    (n, runs, counts), ref_text = walk_out(ref, "json", mock.mm, vma, 3)
    pages = sorted({pa // 4096 + i for pa, ln in mock.reads
                    for i in range((pa % 4096 + ln + 4095) // 4096)})
    chunks = [(pfn * 4096, mock.read(pfn * 4096, 4096)) for pfn in pages]
    core = tmp_path / "mock.core"
    write_elf_core(str(core), chunks)
    kf = _core.KdumpFile(str(core))
    assert kf.format == "elf" and kf.arch == "x86_64"
    assert kf.read_phys(pages[0] * 4096, 4096) == chunks[0][1]
    with pytest.raises(_core.Error):
        kf.read_phys(0x7fff0000000, 16)
    t = _core.Target(mock.layout, kf)
    (n2, runs2, counts2), text = walk_out(t, "json", mock.mm, vma, 3)
    assert (n2, counts2) == (n, counts) and text == ref_text
    with pytest.raises(RuntimeError):
        kf.close()  # in use
    del t
    kf.close()

    assert kf_whole_damage(core) is None

    # cut short: opens, reports what is missing; pages before the cut read
    # the same, pages after it fail like filtered pages
    size = os.path.getsize(core)
    trunc = tmp_path / "trunc.core"
    trunc.write_bytes(core.read_bytes()[: size // 2])
    kt = _core.KdumpFile(str(trunc))
    d = kt.damage
    assert d["truncated"] and d["missing_bytes"] == size - size // 2, d
    assert "\n" not in d["message"] and "missing" in d["message"]
    ok = bad = 0
    for (pa, data), off in zip(chunks, elf_offsets(core)):
        if off + len(data) <= size // 2:
            assert kt.read_phys(pa, len(data)) == data
            ok += 1
        else:
            with pytest.raises(_core.Error):
                kt.read_phys(pa, len(data))
            bad += 1
    assert ok and bad and d["missing_pages"] == bad, (ok, bad, d)
    kt.close()

    # cut inside the program headers: one line naming the file
    hdr = tmp_path / "hdr.core"
    hdr.write_bytes(core.read_bytes()[:80])
    with pytest.raises(_core.OpenError) as ei:
        _core.KdumpFile(str(hdr))
    assert str(hdr) in str(ei.value) and "truncated" in str(ei.value)
    assert "\n" not in str(ei.value)
    assert isinstance(ei.value, OSError)


def kf_whole_damage(path):
    k = _core.KdumpFile(str(path))
    try:
        return k.damage
    finally:
        k.close()


def elf_offsets(path):
    """File offsets of the PT_LOADs of an ELF64 core, in order."""
    import struct
    raw = open(path, "rb").read()
    phoff, = struct.unpack_from("<Q", raw, 32)
    phnum, = struct.unpack_from("<H", raw, 56)
    out = []
    for i in range(phnum):
        p_type, _, p_offset = struct.unpack_from("<IIQ", raw, phoff + i * 56)
        if p_type == 1:
            out.append(p_offset)
    return out


def test_kdumpfile_open_errors(tmp_path):
    with pytest.raises(_core.OpenError, match="nonexistent.*No such file"):
        _core.KdumpFile(str(tmp_path / "nonexistent"))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(_core.OpenError, match="empty"):
        _core.KdumpFile(str(empty))
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello world\n" * 100)
    with pytest.raises(_core.OpenError, match="junk: not a dump"):
        _core.KdumpFile(str(junk))
    # a kdump header cut short, and one whose notes lie beyond the file:
    # one line each (libkdumpfile 0.5.1 crashed freeing such a context)
    short = tmp_path / "short"
    short.write_bytes(b"KDUMP   \x06\0\0\0Linu\xff" + b"\0" * 11)
    with pytest.raises(_core.OpenError, match="short: truncated kdump-compressed dump"):
        _core.KdumpFile(str(short))
    hdr = bytearray(8192)
    hdr[:8] = b"KDUMP   "
    struct.pack_into("<i", hdr, 8, 6)
    struct.pack_into("<iiII", hdr, 428, 4096, 1, 2, 1024)
    struct.pack_into("<QQ", hdr, 4096 + 48, 0xffffffffffffffff, 0xffffffffffffffff)
    notes = tmp_path / "notes"
    notes.write_bytes(bytes(hdr) + b"\0" * 8192)
    with pytest.raises(_core.OpenError, match="notes: corrupt kdump-compressed dump: its ELF notes"):
        _core.KdumpFile(str(notes))
    # ELF cores without program headers (libkdumpfile 0.5.1 crashed on them)
    nophdr = tmp_path / "nophdr"
    nophdr.write_bytes(struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 4, 62,
                                   1, 0, 192, 64, 0, 8, 56, 0, 0, 0, 0) + b"\0" * 4096)
    with pytest.raises(_core.OpenError, match="nophdr: corrupt ELF dump: no program headers"):
        _core.KdumpFile(str(nophdr))
    elf0 = tmp_path / "elf0"
    eh = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 4, 62, 1, 0, 64, 0,
                     0, 64, 0, 1, 64, 0, 0)  # e_phentsize 0
    elf0.write_bytes(eh + b"\0" * 4096)
    with pytest.raises(_core.OpenError, match="elf0: corrupt ELF dump: e_phentsize is 0"):
        _core.KdumpFile(str(elf0))
    flat = tmp_path / "flat"
    flat.write_bytes(b"makedumpfile\0\0\0\0" + b"\0" * 4080)
    with pytest.raises(_core.OpenError, match="flattened.*makedumpfile -R"):
        _core.KdumpFile(str(flat), convert_flattened=False)
    with pytest.raises(_core.OpenError, match="flat"):
        _core.KdumpFile(str(flat))  # rebuild fails on garbage: still one line


# Dump headers that libkdumpfile 0.5.1 reads in a layout the reader's
# own checks did not cover (one part of a split dump, the "DISKDUMP"
# signature, the 32-bit layout it tries first, big-endian): it allocated
# for size_note before reading (8 GiB of file-cache entries for 2^40
# bytes) or copied from past the end of the file (SIGBUS).  Kept as fuzz
# seeds (tests/fuzz/corpus/kdump/regress-*); each must be one line naming
# the field.
HEADER_EXTENTS = {
    "regress-split-size-note": "corrupt kdump-compressed dump: sub-header field size_note .1099511627776 bytes at 8192. ends "
                               "beyond the 16384-byte file .read as a 64-bit little-endian",
    "regress-diskdump-size-note": "corrupt kdump-compressed dump: sub-header field size_note .3221225472 bytes",
    "regress-h32-bitmap-blocks": "corrupt kdump-compressed dump: .*sub_hdr_size 1 and bitmap_blocks 524288 put the page bitmap "
                                 "beyond the 16384-byte file .read as a 32-bit little-endian",
    "regress-be64-size-note": "corrupt kdump-compressed dump: .*size_note .1099511627776 bytes at 8192.*64-bit big-endian",
    # ELF: e_shentsize 0 with section headers (libkdumpfile dereferenced
    # the NULL chunk), and 2^34 sections from section 0's sh_size
    "regress-elf-shentsize-0": "corrupt ELF dump: e_shentsize is 0, not 64",
    "regress-elf-shnum-huge": "corrupt ELF dump: 17179869184 section headers .section 0's sh_size.",
    # a 52-byte ELF64 file: libkdumpfile reads a 64-byte header, zeros past
    # the end, and dereferenced the NULL chunk of the 0 e_shentsize (found
    # by the kdump fuzz target's long run)
    "regress-elf-short-header": "truncated ELF dump: the file ends inside the ELF header .52 bytes.",
    # a VMCOREINFO line starting with '.' crashed libkdumpfile's parser
    # (lines_post_hook; found by the kdump fuzz target's long run), in the
    # kdump notes and in an ELF core's PT_NOTE
    "regress-vmcoreinfo-dot-key": "corrupt VMCOREINFO: the line \".OFFSET.x.y.=0\" starts with '.'",
    "regress-elf-vmcoreinfo-dot-key": "corrupt VMCOREINFO: the line \".FFSET.uts_namespace.name.=0\" "
                                      "starts with '.'",
}


@pytest.mark.parametrize("name", sorted(HEADER_EXTENTS))
def test_kdumpfile_header_extents(name):
    path = os.path.join(ROOT, "tests", "fuzz", "corpus", "kdump", name)
    with pytest.raises(_core.OpenError) as ei:
        _core.KdumpFile(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert re.search(re.escape(path) + ": " + HEADER_EXTENTS[name], msg), msg


def test_kdumpfile_elf32_refused(tmp_path):
    """A 32-bit ELF core is one line (libkdumpfile's read_elfhdr_32 has the
    section-header reads refused above for ELF64; no 32-bit kernel is a
    target)."""
    eh = struct.pack("<16sHHIIIIIHHHHHH", b"\x7fELF\x01\x01\x01" + b"\0" * 9, 4, 3, 1, 0, 52, 64,
                     0, 52, 32, 1, 0, 3, 0)  # e_shentsize 0, e_shnum 3
    p = tmp_path / "elf32"
    p.write_bytes(eh + b"\0" * 4096)
    with pytest.raises(_core.OpenError, match="elf32: a 32-bit ELF core .EI_CLASS 1.: pfnscope "
                                              "reads 64-bit kernels only"):
        _core.KdumpFile(str(p))


def test_kdumpfile_header_extents_real_dumps_open():
    """The same checks pass every whole lab kdump (the 64-bit little-endian
    layout libkdumpfile picks for them, and any other that passes its
    try_header)."""
    import lab_support as LS
    opened = 0
    for key in LS.buggy_keys()[:2]:
        fx = LS.fixture(*key)
        for fmt in ("kdump-real", "kdump-zlib"):
            k = _core.KdumpFile(fx.dumps[fmt])
            try:
                assert k.damage is None or not k.damage, (fmt, k.damage)
                opened += 1
            finally:
                k.close()
    assert opened == 4


def test_rawfile(tmp_path):
    low, high = 0x3000, 0x10000
    data = bytes(range(256)) * 64  # 16 KiB: low part 12 KiB, high part 4 KiB
    p = tmp_path / "ram"
    p.write_bytes(data)
    rf = _core.RawFile(str(p), low_size=low, high_start=high)
    assert rf.size == len(data)
    assert rf.read_phys(0x10, 4) == data[0x10:0x14]
    assert rf.read_phys(high + 8, 8) == data[low + 8:low + 16]
    for bad in (low - 4, 0x8000, high + 0x1000):   # straddle, hole, beyond
        with pytest.raises(_core.Error):
            rf.read_phys(bad, 8)
    with pytest.raises(_core.OpenError):
        _core.RawFile(str(tmp_path / "none"))
    rf.close()


def test_vma_diagnoses(mock):
    t = mock.target()
    both = pfnmap_vma(4)[:3] + (pfnmap_vma(4)[3] | VM_MIXEDMAP,) + pfnmap_vma(4)[4:]
    codes = [c for c, _ in t.vma_diagnoses(both)]
    assert "PFNMAP_AND_MIXEDMAP" in codes
    assert ("PFNMAP_AND_MIXEDMAP", "high") in t.vma_diagnoses(both)
    assert t.vma_diagnoses(anon_vma(4)) == []


def test_layout_facts_from_the_core():
    from pfnscope import layout
    assert layout.ABSENT == _core.ABSENT == -1
    # PG_table was 0x400 until 5.11 renumbered it, beside PG_kmemcg's removal
    assert _core.page_types(_core.PGTYPE_6_1, 5, 10)["pgtype_table"] == 0x400
    assert _core.page_types(_core.PGTYPE_6_1, 5, 11) == {
        "pgtype_buddy": 0x80, "pgtype_offline": 0x100, "pgtype_table": 0x200,
        "pgtype_slab": layout.ABSENT, "pgtype_hugetlb": layout.ABSENT}
    assert _core.page_types(_core.PGTYPE_PGTY, 6, 12)["pgtype_slab"] == 0xf5
    with pytest.raises(ValueError):
        _core.page_types(7, 6, 1)


def test_errors_carry_their_fields(mock, tmp_path):
    """The core's error record reaches Python as pfnscope.errors' classes,
    with the address, what was read and the file; the CLI prints from them."""
    from pfnscope import errors
    from pfnscope.cli import _describe
    path = str(tmp_path / "one.core")
    write_elf_core(path, [(0x1000, b"\x11" * 4096)])
    k = _core.KdumpFile(path)
    try:
        with pytest.raises(_core.FaultError) as ei:
            k.read_phys(0x40000000, 8)
        e = ei.value
        assert isinstance(e, errors.FaultError) and isinstance(e, errors.PfnscopeError)
        assert isinstance(e, _core.Error)
        assert (e.code, e.address, e.addr, e.what, e.file) == (
            errors.EREAD, 0x40000000, 0x40000000, "physical read", None)
        assert str(e) == "memory not readable: physical read at 0x40000000"
        assert e.line() == _describe(e) == "physical read at 0x40000000: memory not readable"
        assert (e.where, e.problem) == ("physical read at 0x40000000", "memory not readable")
    finally:
        k.close()
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * 8192)
    with pytest.raises(errors.DumpError) as ei:
        _core.KdumpFile(str(junk))
    e = ei.value
    assert isinstance(e, _core.OpenError) and isinstance(e, OSError)
    assert e.code == errors.EDUMP and e.file == str(junk) and e.address is None
    assert str(e).startswith(str(junk) + ": ") and e.line() == str(e)
    assert (e.where, e.problem) == (str(junk), str(e)[len(str(junk)) + 2:])
    # raised from Python with a message only, as the live re-read does
    e = _core.Error("table changed")
    assert e.line() == str(e) == "table changed" and e.code == 0
    # a user error keeps its (where, problem) constructor
    e = errors.PfnscopeError("pid 7", "no such process")
    assert e.line() == _describe(e) == "pid 7: no such process"


def test_check_mm_is_the_per_vma_walks():
    """check_mm() gives, for every task of a buggy lab dump, what its VMAs
    give one at a time: vma_diagnoses() and walk_bytes(mode="summary-json",
    only_diag=True), entries included; with the VMAs given (vmas=) the
    same; each=False lists no VMA."""
    import lab_support as LS
    from pfnscope import target
    fx = LS.fixture(*LS.buggy_keys()[0])
    sess = target.open_dump(fx.dumps["elf-paging"], fx.vmlinux)
    t = sess.target
    tasks = [x for x in t.tasks() if x[3]]
    hit_vmas = diagnosed = 0
    for _, pid, _, mm, _ in tasks:
        vmas = t.vmas(mm)
        want_hits, want_each = [], []
        for vt in vmas:
            diags = t.vma_diagnoses(vt)
            runs, entries = t.walk_bytes(mm, vt, pid, mode="summary-json", only_diag=True)[:2]
            want_each.append((vt, entries))
            if diags or runs:
                want_hits.append((vt, diags, runs, entries))
        total = sum(e for _, e in want_each)
        assert t.check_mm(mm, pid, each=True) == (total, want_hits, want_each), pid
        assert t.check_mm(mm, pid, 0, True, vmas) == (total, want_hits, want_each), pid
        assert t.check_mm(mm, pid) == (total, want_hits, None), pid
        hit_vmas += len(want_hits)
        diagnosed += sum(1 for h in want_hits if h[2])
    # the buggy scenario's mappings are there to be found
    assert len(tasks) > 10 and hit_vmas > 5 and diagnosed > 5, (len(tasks), hit_vmas, diagnosed)
    assert t.check_mm(0, 1, each=True) == (0, [], [])
    with pytest.raises(TypeError):
        t.check_mm(tasks[0][3], 1, 0, False, [(1, 2)])


def test_api_walk_none_entries_and_vma_findings():
    """The Python API on a buggy lab dump: walk(include_none=True) adds the
    "none" entries to the same others; vma_findings() of every VMA are
    check()'s findings."""
    import lab_support as LS
    from pfnscope import api, target
    fx = LS.fixture(*LS.buggy_keys()[0])
    sess = target.open_dump(fx.dumps["elf-paging"], fx.vmlinux)
    pid = LS.manifest_pids(fx)[0]
    plain = api.walk(sess, pid)
    full = api.walk(sess, pid, include_none=True)
    nones = [e for e in full if e.kind == "none"]
    assert nones and all(e.kind != "none" for e in plain)
    assert [e.to_json() for e in full if e.kind != "none"] == [e.to_json() for e in plain]
    one_by_one = []
    for t in api.tasks(sess):
        if t.mm:
            for vma in api.for_each_vma(t.mm, sess, t.pid):
                one_by_one.extend(api.vma_findings(sess, t, vma))
    key = (lambda f: (-api.severity_rank(f.severity), f.pid, f.start))
    found = api.check(sess)
    assert found and [f.to_json() for f in sorted(one_by_one, key=key)] == \
        [f.to_json() for f in found]
