"""A whole kdump-compressed dump is read by pfnscope's own diskdump reader
(src/readers/diskdump.c: a rank index over the dumpable bitmap, page
descriptors read in batches, zlib pages inflated by libdeflate) instead of
libkdumpfile: every page reads as it does through libkdumpfile
(KdumpFile(..., libkdumpfile_pages=True)), the same bytes, the same error for
an excluded page or one past max_pfn, on the lab's QEMU kdump-zlib dump and
the capture kernel's makedumpfile dumps (-d 31, -d 23); reads straddling
pages agree, on the file and on a clone; a page descriptor with another
compression (lzo) sends the file, or that page, to libkdumpfile; a damaged
dump (cut short, marked incomplete, a corrupt page descriptor) is left to
libkdumpfile."""
from __future__ import annotations

import random
import re
import shutil
import struct

import pytest

from lab_support import lab

from pfnscope import _core

KEY = ("6.1", "max", "healthy")
DUMPS = ["kdump-zlib", "kdump-real", "kdump-real-d23"]
ZLIB, LZO = 0x1, 0x2
CHUNK = 256   # pages per read of a dumpable run


def _geometry(path):
    """(page size, max_pfn, dumpable bits as a '0'/'1' str indexed by pfn,
    descriptor table offset, descriptors) as libkdumpfile reads them."""
    with open(path, "rb") as f:
        hdr = f.read(464)
        assert hdr[:8] == b"KDUMP   ", path
        version, = struct.unpack_from("<i", hdr, 8)
        bs, sub, bmb, max_pfn = struct.unpack_from("<iiII", hdr, 428)
        if version >= 6:
            f.seek(bs + 96)
            max_pfn, = struct.unpack("<Q", f.read(8))
        bitmap_off, bitmap_len = (1 + sub) * bs, bmb * bs
        two = max_pfn <= bitmap_len // 2 * 8
        f.seek(bitmap_off + (bitmap_len // 2 if two else 0))
        bm = f.read(bitmap_len // 2 if two else bitmap_len)
    bits = "".join(format(b, "08b")[::-1] for b in bm)
    return bs, min(max_pfn, len(bits)), bits, bitmap_off + bitmap_len, bits.count("1")


def _read(f, pa, n):
    try:
        return f.read_phys(pa, n)
    except Exception as e:  # the error itself is compared
        return (type(e).__name__, str(e))


def _runs(bits, max_pfn):
    """[(first pfn, end pfn, dumpable)] covering [0, max_pfn)"""
    out = []
    for m in re.finditer("1+|0+", bits[:max_pfn]):
        out.append((m.start(), m.end(), m.group()[0] == "1"))
    return out


def _compare_all(path, mine, ref, ps, max_pfn, bits, unreadable=()):
    """Every dumpable page in CHUNK-page reads, and each excluded run (its
    first page alone, the whole run, the page before it with its first) read
    through both; a chunk holding a pfn of `unreadable` is read page by page
    too, that page failing.  Returns the number of pages compared."""
    pages = 0
    for first, end, dumpable in _runs(bits, max_pfn):
        if dumpable:
            for pfn in range(first, end, CHUNK):
                n = min(CHUNK, end - pfn) * ps
                a, b = _read(mine, pfn * ps, n), _read(ref, pfn * ps, n)
                assert a == b, f"{path}: pfns {pfn:#x}+{n // ps} differ"
                pages += n // ps
                if isinstance(b, bytes):
                    continue
                bad = [p for p in unreadable if pfn <= p < pfn + n // ps]
                assert bad, f"{path}: pfns {pfn:#x}+{n // ps}: libkdumpfile: {b}"
                for p in range(pfn, pfn + n // ps):
                    a, b = _read(mine, p * ps, ps), _read(ref, p * ps, ps)
                    assert a == b and isinstance(b, bytes) == (p not in bad), (path, hex(p))
            continue
        for pa, n in ((first * ps, ps), (first * ps, min(end - first, CHUNK) * ps),
                      (first * ps - 64, 128)):
            if pa < 0:
                continue
            a, b = _read(mine, pa, n), _read(ref, pa, n)
            assert not isinstance(b, bytes), f"{path}: excluded pfn {first:#x} read"
            assert a == b, f"{path}: {pa:#x}+{n}: {a} != {b}"
    # at and past max_pfn
    for pa, n in ((max_pfn * ps, ps), (max_pfn * ps - 8, 16), (1 << 46, ps)):
        a, b = _read(mine, pa, n), _read(ref, pa, n)
        assert not isinstance(b, bytes) and a == b, (path, hex(pa), a, b)
    return pages


@pytest.mark.parametrize("dump", DUMPS)
def test_every_page_reads_as_libkdumpfile(dump):
    path = lab.fixture(*KEY).dumps[dump]
    ps, max_pfn, bits, _, _ = _geometry(path)
    mine = _core.KdumpFile(path)
    ref = _core.KdumpFile(path, libkdumpfile_pages=True)
    assert mine.pages_reader == "diskdump", mine.pages_reader
    assert ref.pages_reader == "libkdumpfile"
    assert mine.format == ref.format and mine.vmcoreinfo == ref.vmcoreinfo
    pages = _compare_all(path, mine, ref, ps, max_pfn, bits)
    assert pages == bits[:max_pfn].count("1") and pages > 1000, pages
    # reads across page boundaries, of a few bytes to a few pages, on the
    # file and on a clone (a worker thread's view)
    view = mine.clone()
    rng = random.Random(7)
    runs = [r for r in _runs(bits, max_pfn) if r[2]]
    agree = failed = 0
    for _ in range(1500):
        first, end, _ = rng.choice(runs)
        pfn = rng.randrange(first, end)
        pa = pfn * ps + rng.choice([ps - 1, ps - 8, ps - 100, 0, 1, rng.randrange(ps)])
        n = rng.choice([2, 16, 200, ps, ps + 1, 3 * ps - 5, rng.randrange(1, 4 * ps)])
        want = _read(ref, pa, n)
        assert _read(mine, pa, n) == want, f"{dump}: {pa:#x}+{n}"
        assert _read(view, pa, n) == want, f"{dump}: clone: {pa:#x}+{n}"
        agree += isinstance(want, bytes)
        failed += not isinstance(want, bytes)
    assert agree > 500, (agree, failed)
    view.close()
    mine.close()
    ref.close()


def _patch_target(path, zlib_before=False):
    """(index, pfn, file offset of its flags) of the first zlib page descriptor
    from n // 3 on (zlib_before: whose predecessor is a zlib one too, data of
    its own, not the zero page's that every zero page's descriptor shares):
    the open reads the descriptor batches of the first, middle and last
    dumpable pages, none of them this one's."""
    ps, max_pfn, bits, desc_off, n = _geometry(path)
    with open(path, "rb") as f:
        for i in range(n // 3, n):
            f.seek(desc_off + 24 * (i - 1))
            _, _, flags_before, _, off, size, flags = struct.unpack("<QIIQQII", f.read(40))
            if flags == ZLIB and (flags_before == ZLIB or not zlib_before):
                break
        else:
            raise AssertionError(f"{path}: no zlib page after descriptor {n // 3}")
    for j in (0, n // 2, n - 1):
        assert i // 128 != j // 128, (i, j)
    pfn = [m.start() for m in re.finditer("1", bits)][i]
    return i, pfn, desc_off + 24 * i + 12


def _set_flags(path, at, flags):
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(struct.pack("<I", flags))


def test_other_compression_goes_to_libkdumpfile(tmp_path):
    src = lab.fixture(*KEY).dumps["kdump-real"]
    path = str(tmp_path / "lzo.vmcore")
    shutil.copyfile(src, path)
    ps, max_pfn, bits, _, _ = _geometry(path)
    i, pfn, at = _patch_target(path)

    # seen at open: every page through libkdumpfile
    _set_flags(path, at, LZO)
    mine = _core.KdumpFile(path)
    ref = _core.KdumpFile(path, libkdumpfile_pages=True)
    assert mine.pages_reader == "libkdumpfile", "an lzo descriptor is not read by diskdump.c"
    lzo_page = _read(ref, pfn * ps, ps)
    assert not isinstance(lzo_page, bytes), "libkdumpfile inflated zlib data flagged lzo"
    _compare_all(path, mine, ref, ps, max_pfn, bits, [pfn])
    mine.close()
    ref.close()

    # appearing after the open: that page alone goes to libkdumpfile, on the
    # file and on a clone (whose libkdumpfile context is opened for it)
    _set_flags(path, at, ZLIB)
    mine = _core.KdumpFile(path)
    view = mine.clone()
    assert mine.pages_reader == "diskdump"
    _set_flags(path, at, LZO)
    ref = _core.KdumpFile(path, libkdumpfile_pages=True)
    for f in (mine, view):
        assert _read(f, pfn * ps, ps) == lzo_page
        assert _read(f, pfn * ps - 8, 16) == _read(ref, pfn * ps - 8, 16)
    _compare_all(path, mine, ref, ps, max_pfn, bits, [pfn])
    _compare_all(path, view, ref, ps, max_pfn, bits, [pfn])
    view.close()
    mine.close()
    ref.close()


def _damage(src, path, how):
    """A damaged copy of src at path; the pfns it makes unreadable."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    lost = []
    if how == "cut":
        del data[len(data) * 9 // 10:]
    elif how == "incomplete":
        # makedumpfile's DUMP_DH_COMPRESSED_INCOMPLETE (ENOSPC): every page there
        status, = struct.unpack_from("<I", data, 424)
        struct.pack_into("<I", data, 424, status | 0x8)
    else:
        # descriptor n // 3 a copy of the one before it: another page's data,
        # which the open finds out of place (check_diskdump); not a copy of
        # the zero page's, which would be a consistent dump of a zero page
        i, pfn, at = _patch_target(src, zlib_before=True)
        d = at - 12
        data[d:d + 24] = data[d - 24:d]
        lost = [pfn]
    with open(path, "wb") as g:
        g.write(data)
    return lost


@pytest.mark.parametrize("how", ["cut", "incomplete", "bad-descriptor"])
def test_damaged_dump_stays_with_libkdumpfile(tmp_path, how):
    src = lab.fixture(*KEY).dumps["kdump-real"]
    ps, max_pfn, bits, _, _ = _geometry(src)
    path = str(tmp_path / "damaged.vmcore")
    lost = _damage(src, path, how)
    whole = _core.KdumpFile(src)
    bad = _core.KdumpFile(path)
    ref = _core.KdumpFile(path, libkdumpfile_pages=True)
    assert bad.pages_reader == "libkdumpfile" and bad.damage, bad.damage
    rng = random.Random(11)
    dumpable = [m.start() for m in re.finditer("1", bits[:max_pfn])]
    kept = 0
    for pfn in rng.sample(dumpable, 3000) + dumpable[-50:] + lost:
        got = _read(bad, pfn * ps, ps)
        assert got == _read(ref, pfn * ps, ps), hex(pfn)
        if isinstance(got, bytes):
            assert got == whole.read_phys(pfn * ps, ps), hex(pfn)
            kept += 1
        else:
            lost.append(pfn)
    assert kept > 1000, kept
    if how == "incomplete":
        assert not lost
    else:
        assert lost, "the damage made no page unreadable"
    for f in (whole, bad, ref):
        f.close()
