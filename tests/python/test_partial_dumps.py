"""Damaged dumps still answer for what they hold.

Each lab dump format of the healthy 6.1 fixture is cut at 25%, 50%, 90%
and 99% of its size and inside its headers; kdump-compressed files also get
a corrupt page descriptor and corrupt bitmap blocks.  A header cut is one
clear error (exit 2).  Any other damaged file either opens -- one warning
line on stderr, a first JSON record {"type":"warning","what":"truncated",
"missing_bytes":N} with N the bytes cut off -- or, when the kernel's own
data is in the part that is gone, fails with one line saying the dump is
damaged.  When it opens, every entry it reports is identical to the whole
dump's, or differs only in being "unreadable" (its struct page is gone);
entries it does not report belong to a task or VMA reported as not read
(an error record, exit 2); `check` finds nothing the whole dump does not.

The cut copies live in pytest's tmp dir (ELF dumps copied sparse).
PFNSCOPE_PARTIAL_KEYS="6.1:qemu64:healthy,6.12:max:healthy" adds fixtures;
the table of results is written to build/partial-dumps.md.
"""
import json
import os
import random
import shutil
import struct
import subprocess

import pytest

import lab_support as L

CUTS = ("header", 25, 50, 90, 99)
# fields of an entry read from the page tables alone: the same in a damaged
# dump even when the struct page behind the entry is gone
PT_FIELDS = ("type", "pid", "vma_start", "addr", "level", "raw", "kind", "pfn", "special",
             "devmap", "writable", "swap")
TABLE = os.path.join(L.ROOT, "build", "partial-dumps.md")
_rows = []


def _keys():
    keys = [("6.1", "max", "healthy")]
    for s in os.environ.get("PFNSCOPE_PARTIAL_KEYS", "").replace(",", " ").split():
        k = tuple(s.split(":"))
        assert len(k) == 3, f"PFNSCOPE_PARTIAL_KEYS: {s!r} is not KERNEL:CPU:SCENARIO"
        if k not in keys:
            keys.append(k)
    return keys


KEYS = _keys()


def _walk_args(fx, path):
    args = ["-c", path, "-s", fx.vmlinux, "walk", "--all", "--json"]
    for p in L.manifest_pids(fx):
        args += ["-p", str(p)]
    return args


_full_cache = {}


def _full(key, fmt):
    """(entries by key, findings, walk records) of the whole dump."""
    if (key, fmt) not in _full_cache:
        fx = L.fixture(*key)
        r = L.run(*_walk_args(fx, fx.dumps[fmt]))
        assert r.rc == 0, r
        ents = {_ekey(o): o for o in r.json() if o["type"] == "entry"}
        c = L.run("-c", fx.dumps[fmt], "-s", fx.vmlinux, "check", "--json")
        assert c.rc in (0, 1), c
        finds = {_fkey(o) for o in c.json() if o["type"] == "finding"}
        _full_cache[(key, fmt)] = (ents, finds)
    return _full_cache[(key, fmt)]


# the address span a table at an entry's level maps (x86-64, 4 KiB pages)
_TABLE_SPAN = {"pte": 1 << 21, "pmd": 1 << 30, "pud": 1 << 39, "p4d": 1 << 48}


def _ekey(o):
    return (o["pid"], o["vma_start"], o["addr"], o["level"])


def _fkey(o):
    return (o["pid"], o["code"], o["vma_start"], o["start"], o["end"])


# --- file surgery ---------------------------------------------------------------

def _diskdump_geometry(path):
    """(block_size, bitmap_off, bitmap_len, desc_off, npages) of a kdump file."""
    with open(path, "rb") as f:
        hdr = f.read(464)
        assert hdr[:8] == b"KDUMP   ", path
        bs, sub, bmb = struct.unpack_from("<iiI", hdr, 428)
        bitmap_off = (1 + sub) * bs
        bitmap_len = bmb * bs
        f.seek(bitmap_off + bitmap_len // 2)
        bm2 = f.read(bitmap_len // 2)
    npages = sum(bin(b).count("1") for b in bm2)
    return bs, bitmap_off, bitmap_len, bitmap_off + bitmap_len, npages


def _elf_loads_end(path):
    """End of the last PT_LOAD's data in an ELF64 file (PN_XNUM aware)."""
    with open(path, "rb") as f:
        eh = f.read(64)
        phoff, shoff = struct.unpack_from("<QQ", eh, 32)
        phnum, = struct.unpack_from("<H", eh, 56)
        if phnum == 0xFFFF:
            f.seek(shoff + 44)
            phnum, = struct.unpack("<I", f.read(4))
        f.seek(phoff)
        raw = f.read(56 * phnum)
    end = 0
    for i in range(phnum):
        t, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", raw, 56 * i)
        if t == 1:
            end = max(end, off + filesz)
    return end


def _expected_missing(path, fmt, cut):
    """Bytes a cut at `cut` takes from what the file's headers describe."""
    if fmt.startswith("elf"):
        return max(0, _elf_loads_end(path) - cut)
    return os.path.getsize(path) - cut


def _header_cut(path, fmt):
    if fmt.startswith("elf"):
        with open(path, "rb") as f:
            eh = f.read(64)
        phoff, = struct.unpack_from("<Q", eh, 32)
        return phoff + 56 + 28                  # inside the program headers
    bs, bitmap_off, bitmap_len, desc_off, _ = _diskdump_geometry(path)
    return bitmap_off + bitmap_len // 2 + 100   # inside the dumpable bitmap


def _copy_cut(src, dst, cut):
    """dst = the first cut bytes of src (sparse where src has holes)."""
    if os.path.getsize(src) > (256 << 20):
        subprocess.run(["cp", "--sparse=always", src, dst], check=True)
        os.truncate(dst, cut)
    else:
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read(cut))


# --- the comparison ---------------------------------------------------------------

def _compare(key, fmt, path, label, expect_missing=None):
    """Run walk and check on a damaged copy; assert the contract; return a
    table row."""
    fx = L.fixture(*key)
    full_ents, full_finds = _full(key, fmt)
    r = L.run(*_walk_args(fx, path))
    assert "Traceback" not in r.err, r
    # (a flattened file's rebuild note comes first)
    err_lines = [ln for ln in r.err.strip().splitlines() if "flattened format; rebuilding" not in ln]
    recs = r.json()
    if not recs:
        # refused whole: one line naming the file, and why
        assert r.rc == 2 and len(err_lines) == 1 and err_lines[0].startswith("pfnscope: "), r
        assert path in err_lines[0], r
        assert any(w in r.err for w in ("truncated", "damaged", "corrupt")), r
        return dict(result="error", agree=0, unreadable=0, not_read=len(full_ents),
                    message=_short(err_lines[0], path))
    if expect_missing == 0:
        # cut after the last byte the headers describe: nothing is missing
        assert r.rc == 0 and not err_lines, r
        ents = [o for o in recs if o["type"] == "entry"]
        assert {_ekey(o): o for o in ents} == full_ents, f"{label}: entries differ"
        return dict(result="whole", agree=len(ents), unreadable=0, not_read=0,
                    message="cut after the last PT_LOAD: nothing missing")
    # opened: the warning first, on stderr and in the JSON
    assert err_lines and err_lines[0].startswith(f"pfnscope: warning: {path}: "), r
    assert sum("warning" in ln for ln in err_lines) == 1, r
    w = recs[0]
    assert w["type"] == "warning", recs[0]
    if expect_missing is not None:
        assert w["what"] == "truncated" and w["missing_bytes"] == expect_missing, (w, expect_missing)
    errors = [o for o in recs if o["type"] == "error"]
    bad_pids = {o["pid"] for o in errors if "vma_start" not in o}
    bad_vmas = {(o["pid"], o["vma_start"]) for o in errors if "vma_start" in o}
    assert (r.rc == 2) == bool(errors), r
    agree = unreadable = 0
    seen = set()
    tables = []   # (pid, vma_start, lo, hi): a page table that could not be read
    for o in recs:
        if o["type"] != "entry":
            continue
        k = _ekey(o)
        seen.add(k)
        f = full_ents.get(k)
        if o["kind"] == "unreadable" and o["pfn"] is None:
            # walk.c walk_table(): one entry at the first address the table
            # maps in the range (where the whole dump may have none), for
            # every entry of the table
            span = _TABLE_SPAN[o["level"]]
            lo = int(o["addr"], 16)
            tables.append((o["pid"], o["vma_start"], lo, (lo // span + 1) * span))
            unreadable += 1
            continue
        assert f is not None, f"{label}: entry not in the whole dump: {o}"
        if o == f:
            agree += 1
            continue
        assert o.get("page_state") == "unreadable", f"{label}: entry differs:\n{o}\n{f}"
        for fld in PT_FIELDS:
            assert o.get(fld) == f.get(fld), f"{label}: {fld} differs:\n{o}\n{f}"
        unreadable += 1
    not_read = 0
    for k in full_ents:
        if k not in seen and any(k[:2] == t[:2] and t[2] <= int(k[2], 16) < t[3] for t in tables):
            not_read += 1   # under a table that could not be read
            continue
        if k not in seen:
            assert k[0] in bad_pids or (k[0], k[1]) in bad_vmas, \
                f"{label}: entry {k} missing without an error record"
            not_read += 1
    # check: nothing the whole dump does not find
    c = L.run("-c", path, "-s", fx.vmlinux, "check", "--json")
    assert "Traceback" not in c.err, c
    crecs = c.json()
    assert crecs and crecs[0]["type"] == "warning", c
    finds = {_fkey(o) for o in crecs if o["type"] == "finding"}
    assert finds <= full_finds, f"{label}: new findings {finds - full_finds}"
    cerrs = [o for o in crecs if o["type"] == "error"]
    high = any(L.SEVERITIES.index(o["severity"]) >= L.SEVERITIES.index("high")
               for o in crecs if o["type"] == "finding")
    # the task list itself unreadable (a task_struct in the missing part, and
    # the pid idr no help: task.c pfs_for_each_task): one line naming the
    # address at fault, exit 2, and `tasks` fails on the same line
    fatal = [ln for ln in c.err.strip().splitlines()[1:] if "flattened format" not in ln]
    if fatal and not cerrs:
        assert c.rc == 2 and len(fatal) == 1 and " at 0x" in fatal[0], c
        t = L.run("-c", path, "-s", fx.vmlinux, "tasks")
        assert t.rc == 2 and fatal[0] in t.err.splitlines(), (c, t)
    else:
        assert c.rc == (1 if high else 2 if cerrs else 0), c
    what = (f"missing_bytes={w['missing_bytes']}" if w["what"] == "truncated" else
            f"bad_descriptors={w['bad_descriptors']}, bad_bitmap_blocks={w['bad_bitmap_blocks']}, "
            f"lost_pages={w['lost_pages']}")
    return dict(result="opened", agree=agree, unreadable=unreadable, not_read=not_read,
                message=f"{w['what']}: {what}, {len(bad_pids)} tasks and {len(bad_vmas)} VMAs not read")


def _short(line, path):
    """An error line for the table: without the temporary file's name."""
    line = line[len("pfnscope: "):] if line.startswith("pfnscope: ") else line
    return line.replace(path + ": ", "").replace(path, "FILE")


def _record(key, fmt, cut, row):
    _rows.append((L.key_id(key), fmt, str(cut), row))
    os.makedirs(os.path.dirname(TABLE), exist_ok=True)
    with open(TABLE, "w") as t:
        t.write("| fixture | format | cut | result | entries agreeing | unreadable | not read "
                "(task/VMA unreadable) | note |\n|---|---|---|---|---:|---:|---:|---|\n")
        for k, f, c, rw in _rows:
            t.write(f"| {k} | {f} | {c} | {rw['result']} | {rw['agree']} | {rw['unreadable']} "
                    f"| {rw['not_read']} | {rw['message']} |\n")


@pytest.mark.parametrize("cut", CUTS, ids=[str(c) for c in CUTS])
@pytest.mark.parametrize("fmt", L.FORMATS)
@pytest.mark.parametrize("key", KEYS, ids=L.key_id)
def test_truncated(key, fmt, cut, tmp_path):
    fx = L.fixture(*key)
    src = fx.dumps[fmt]
    size = os.path.getsize(src)
    at = _header_cut(src, fmt) if cut == "header" else size * cut // 100
    dst = str(tmp_path / f"{fmt}.cut{cut}")
    _copy_cut(src, dst, at)
    if cut == "header":
        r = L.run("-c", dst, "-s", fx.vmlinux, "tasks", "--json")
        L.assert_clean_error(r, dst, "truncated")
        assert r.out == "", r
        row = dict(result="error", agree=0, unreadable=0, not_read=0,
                   message=_short(r.err.strip(), dst))
    else:
        row = _compare(key, fmt, dst, f"{fmt} cut at {cut}%",
                       expect_missing=_expected_missing(src, fmt, at))
    _record(key, fmt, cut, row)


def _corrupt_copy(src, dst, edits):
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        for off, data in edits:
            f.seek(off)
            f.write(data)


@pytest.mark.parametrize("fmt", ("kdump-real", "kdump-zlib"))
def test_corrupt_page_descriptors(fmt, tmp_path):
    key = KEYS[0]
    src = L.fixture(*key).dumps[fmt]
    bs, _, _, desc_off, npages = _diskdump_geometry(src)
    rnd = random.Random(14)
    idx = [npages // 3, npages // 3 + 1, 2 * npages // 3]
    edits = [(desc_off + 24 * i, bytes(rnd.randrange(256) for _ in range(24))) for i in idx]
    dst = str(tmp_path / f"{fmt}.pd")
    _corrupt_copy(src, dst, edits)
    from pfnscope import _core
    k = _core.KdumpFile(dst)
    d = k.damage
    k.close()
    # the three garbage descriptors, and no good one taken for bad
    assert d and d["bad_descriptors"] == 3 and not d["truncated"], d
    row = _compare(key, fmt, dst, f"{fmt} with corrupt descriptors")
    _record(key, fmt, "3 garbage page descriptors", row)


def _bitmap_hole(src):
    """(byte, bit) of a pfn not present (first bitmap) in bitmap block >= 1."""
    bs, bitmap_off, bitmap_len, _, _ = _diskdump_geometry(src)
    with open(src, "rb") as f:
        f.seek(bitmap_off)
        bm1 = f.read(bitmap_len // 2)
        bm2 = f.read(bitmap_len // 2)
    for i in range(len(bm1) - 1, bs - 1, -1):
        if bm1[i] != 0xff:
            bit = next(b for b in range(8) if not bm1[i] >> b & 1)
            return bs, bitmap_off, bitmap_len, bm2, i, bit
    raise AssertionError(f"{src}: no pfn hole in the bitmap")


# the 4-level fixture's kernel image lies low (KASLR put it at ~330 MiB),
# below the corrupted block: the dump opens
BITMAP_KEY = ("6.1", "qemu64", "healthy")


@pytest.mark.parametrize("preserve_count", (False, True), ids=("extra-bit", "moved-bit"))
def test_corrupt_bitmap_block(preserve_count, tmp_path):
    key, fmt = BITMAP_KEY, "kdump-real"
    src = L.fixture(*key).dumps[fmt]
    bs, bitmap_off, bitmap_len, bm2, byte, bit = _bitmap_hole(src)
    new = bytearray(bm2)
    new[byte] |= 1 << bit
    block = byte // bs
    if preserve_count:
        # and a dumpable page of the same block dropped: the counts agree
        j = next(j for j in range(block * bs, (block + 1) * bs) if j != byte and new[j])
        new[j] &= new[j] - 1
    lo = block * bs
    dst = str(tmp_path / f"{fmt}.bitmap")
    _corrupt_copy(src, dst, [(bitmap_off + bitmap_len // 2 + lo, bytes(new[lo:lo + bs]))])
    from pfnscope import _core
    k = _core.KdumpFile(dst)
    d = k.damage
    k.close()
    assert d and d["bad_bitmap_blocks"] == 1, d
    assert d["bitmap_mismatch"] == (not preserve_count), d
    if not preserve_count:
        assert d["lost_from_pfn"] == block * bs * 8, d
    row = _compare(key, fmt, dst, f"bitmap block {block} corrupt")
    assert row["result"] == "opened", row
    _record(key, fmt, f"bitmap block {block}: " + ("bit moved" if preserve_count else "extra bit"), row)


@pytest.mark.parametrize("cut", (50, 95))
@pytest.mark.parametrize("key", (KEYS[0], BITMAP_KEY), ids=L.key_id)
def test_truncated_flattened(key, cut, tmp_path):
    """QEMU's flattened kdump-zlib cut short: rebuilt up to where the stream
    ends (makedumpfile -R would spin forever) and read as a truncated dump;
    compared with the rebuilt whole file."""
    fx = L.fixture(*key)
    src = fx.info["kdump_zlib_flat"]
    at = os.path.getsize(src) * cut // 100
    dst = str(tmp_path / f"flat.cut{cut}")
    _copy_cut(src, dst, at)
    row = _compare(key, "kdump-zlib", dst, f"flattened kdump-zlib cut at {cut}%")
    _record(key, "kdump-zlib (flattened)", cut, row)
