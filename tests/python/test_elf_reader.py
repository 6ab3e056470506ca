"""A whole ELF dump is read by pfnscope's own reader (src/readers/kdumpfile.c:
copies out of a mapping of the file, through a physical-to-file map built
from the PT_LOADs) instead of libkdumpfile: every byte it returns is the
byte drgn's own ELF core reader returns, on QEMU dumps with and without
paging (66,000 overlapping PT_LOADs); addresses no segment holds fail in
both; reads across segment and page boundaries agree.

Such a file is opened without libkdumpfile (src/readers/elfcore.c reads its
arch, format and VMCOREINFO): the lab dumps open with the same attributes
and read the same bytes as through libkdumpfile
(KdumpFile(..., libkdumpfile_pages=True)), and small made-up cores show
which files are still left to libkdumpfile -- and that libkdumpfile itself
agrees on the ones that are not."""
from __future__ import annotations

import random
import struct

import drgn
import pytest

from lab_support import lab

from pfnscope import target


@pytest.mark.parametrize("dump", ["elf-paging", "elf-nopaging"])
def test_elf_reads_match_drgn(dump):
    fx = lab.fixture("6.1", "max", "healthy")
    path = fx.dumps[dump]
    kf = target.core().KdumpFile(path)
    prog = drgn.Program()
    prog.set_core_dump(path)
    rng = random.Random(15)
    # a sample of the guest's RAM (lab.GUEST_MEM) and past it, with reads
    # straddling page boundaries
    checked = failed = 0
    for _ in range(600):
        pa = rng.randrange(0, 1200 << 20) & ~0xFFF
        n = rng.choice([4096, 64, 8192 + 512])
        off = rng.choice([0, 4096 - 32, 1000])
        try:
            want = prog.read(pa + off, n, True)
        except drgn.FaultError:
            want = None
        try:
            got = kf.read_phys(pa + off, n)
        except Exception:
            got = None
        assert got == want, f"{dump}: {pa + off:#x}+{n}"
        checked += want is not None
        failed += want is None
    assert checked > 400 and failed > 20, (checked, failed)
    # beyond RAM: neither reads
    for pa in (1 << 40, (4 << 30) + 0x123000):
        with pytest.raises(drgn.FaultError):
            prog.read(pa, 4096, True)
        with pytest.raises(Exception):
            kf.read_phys(pa, 4096)
    # and they are pfnscope's reads, not libkdumpfile's (which read(2) every
    # page: the file is opened without mmap): pfnscope's pread(2)s a block of
    # the file the first times it is read (fmap.h, PFS_FMAP_PREADS_BEFORE_MAP)
    # and copies it out of the mapping after
    pages = [0x100000 + i * 7 * 4096 for i in range(100)]
    for _ in range(16):
        for pa in pages:
            kf.read_phys(pa, 4096)
    before = _syscr()
    for pa in pages:
        kf.read_phys(pa, 4096)
    assert _syscr() - before < 10
    kf.close()


def _syscr():
    with open("/proc/self/io") as f:
        return int(next(ln for ln in f if ln.startswith("syscr:")).split()[1])


# ---- opened without libkdumpfile -------------------------------------------

def _loads(path):
    """[(paddr, filesz)] of the PT_LOADs with data, sorted."""
    with open(path, "rb") as f:
        eh = f.read(64)
        phoff, shoff = struct.unpack_from("<QQ", eh, 32)
        phnum, = struct.unpack_from("<H", eh, 56)
        if phnum == 0xFFFF:   # PN_XNUM: the count is section 0's sh_info
            f.seek(shoff)
            phnum, = struct.unpack_from("<I", f.read(64), 44)
        f.seek(phoff)
        d = f.read(56 * phnum)
    out = set()
    for i in range(phnum):
        typ, _, _, _, pa, fs, ms, _ = struct.unpack_from("<IIQQQQQQ", d, 56 * i)
        if typ == 1 and fs:
            out.add((pa, fs))
    return sorted(out)


def _read(kf, pa, n):
    try:
        return kf.read_phys(pa, n)
    except Exception:
        return None


@pytest.mark.parametrize("dump", ["elf-paging", "elf-nopaging"])
def test_elf_open_without_libkdumpfile(dump):
    fx = lab.fixture("6.1", "max", "healthy")
    path = fx.dumps[dump]
    c = target.core()
    mine = c.KdumpFile(path)
    lkf = c.KdumpFile(path, libkdumpfile_pages=True)
    assert not mine.libkdumpfile_context and lkf.libkdumpfile_context
    assert mine.pages_reader == "elf" and lkf.pages_reader == "libkdumpfile"
    for attr in ("format", "arch", "vmcoreinfo", "damage"):
        assert getattr(mine, attr) == getattr(lkf, attr), attr
    assert (mine.format, mine.arch, mine.damage) == ("elf", "x86_64", None)
    assert mine.vmcoreinfo.startswith("OSRELEASE=6.1"), mine.vmcoreinfo[:40]
    segs = _loads(path)
    rng = random.Random(61)
    # inside a segment, at any alignment: the same bytes
    for _ in range(1500):
        pa, fs = rng.choice(segs)
        n = min(fs, rng.choice([1, 64, 4096, 4096 + 512, 3 * 4096]))
        a = pa + rng.randrange(0, fs - n + 1)
        if rng.random() < 0.5 and fs >= 8192:
            a = min(pa + fs - n, (a & ~0xFFF) + rng.choice([0, 4096 - 32, 4095]))
        got = _read(mine, a, n)
        assert got is not None and got == _read(lkf, a, n), f"{dump}: {a:#x}+{n}"
    # a page or more from every segment (libkdumpfile reads the zeros of a
    # page a segment starts or ends in): neither reads
    top = max(pa + fs for pa, fs in segs)
    holes = [a for a in (rng.randrange(0, top + (1 << 30)) & ~0xFFF for _ in range(3000))
             if all(a + 4096 + 4096 <= pa or a >= pa + fs + 4096 for pa, fs in segs)]
    holes += [top + 0x10000, 1 << 40, (1 << 64) - 4096]
    assert len(holes) > 50, len(holes)
    for a in holes:
        assert _read(mine, a, 4096) is None and _read(lkf, a, 4096) is None, f"{a:#x}"
    mine.close()
    lkf.close()


# A made-up ELF core: ELF header, program headers, one PT_NOTE, PT_LOADs of
# data pages.  NOTES are (name, type, desc); LOADS (paddr, pages, extra
# p_memsz past the data).
EM_X86_64, EM_AARCH64, EM_PPC64 = 62, 183, 21
NT_PRSTATUS = 1
VMCI = b"OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\n" \
       b"OFFSET(page.flags)=0\nSIZE(page)=64\nNUMBER(phys_base)=-1216348816\n" \
       b"LENGTH(zone.free_area)=11\nKERNELOFFSET=23e00000\nBUILD-ID=6a2b\n"


def _note(name, typ, desc):
    n = name + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(n), len(desc), typ) + pad(n) + pad(desc)


def _elfcore(path, machine=EM_X86_64, notes=None, loads=((0x100000, 4, 0), (0x200000, 2, 0)),
             big=False, etype=4):
    if notes is None:
        notes = [(b"CORE", NT_PRSTATUS, b"\1" * 336), (b"VMCOREINFO", 0, VMCI)]
    e = ">" if big else "<"
    nb = b"".join(_note(*n) for n in notes)
    phnum = 1 + len(loads)
    off = (64 + 56 * phnum + len(nb) + 4095) & ~4095
    ph = struct.pack(e + "IIQQQQQQ", 4, 0, 64 + 56 * phnum, 0, 0, len(nb), 0, 0)
    data = b""
    for i, (pa, pages, extra) in enumerate(loads):
        chunk = bytes(((i * 7 + j) * 13) & 0xFF for j in range(251)) * (pages * 4096 // 251 + 1)
        chunk = chunk[:pages * 4096]
        ph += struct.pack(e + "IIQQQQQQ", 1, 7, off + len(data), 0xffff888000000000 + pa, pa,
                          len(chunk), len(chunk) + extra, 0)
        data += chunk
    ident = b"\x7fELF" + bytes([2, 2 if big else 1, 1]) + b"\0" * 9
    eh = ident + struct.pack(e + "HHIQQQIHHHHHH", etype, machine, 1, 0, 64, 0, 0, 64, 56,
                             phnum, 64, 0, 0)
    head = eh + ph + nb
    path.write_bytes(head + b"\0" * (off - len(head)) + data)
    return str(path)


def _pair(path):
    c = target.core()
    return c.KdumpFile(path), c.KdumpFile(path, libkdumpfile_pages=True)


NOTES_OK = {
    "x86_64": dict(),
    "aarch64": dict(machine=EM_AARCH64, notes=[(b"CORE", NT_PRSTATUS, b"\1" * 392),
                                               (b"VMCOREINFO", 0, VMCI)]),
    "aarch64 64k": dict(machine=EM_AARCH64, notes=[(b"VMCOREINFO", 0,
                                                    VMCI.replace(b"=4096", b"=65536"))]),
    "no VMCOREINFO": dict(notes=[(b"CORE", NT_PRSTATUS, b"\1" * 336)]),
    "the last VMCOREINFO": dict(notes=[(b"VMCOREINFO", 0, b"OSRELEASE=first\n"),
                                       (b"VMCOREINFO", 0, VMCI)]),
    "other notes": dict(notes=[(b"QEMU", 0, b"\2" * 440), (b"VMCOREINF", 0, b"X=1\n"),
                               (b"VMCOREINFO", 0, VMCI), (b"CORE", 2, b"")]),
}
# libkdumpfile refuses some (a short PRSTATUS, an invalid PAGESIZE), reads
# others otherwise (no page size on aarch64, zeros past p_filesz, Xen)
NOTES_LEFT = {
    "a machine pfnscope does not know": dict(machine=EM_PPC64),
    "big-endian": dict(big=True),
    "not ET_CORE": dict(etype=2),
    "p_memsz past p_filesz": dict(loads=((0x100000, 4, 4096),)),
    "p_filesz 0, p_memsz not": dict(loads=((0x100000, 4, 0), (0x200000, 0, 4096))),
    "every p_paddr 0": dict(loads=((0, 4, 0), (0, 4, 0))),
    "aarch64 without PAGESIZE": dict(machine=EM_AARCH64,
                                     notes=[(b"VMCOREINFO", 0, b"OSRELEASE=6.1\n")]),
    "PAGESIZE not a page size": dict(notes=[(b"VMCOREINFO", 0, b"PAGESIZE=12288\n")]),
    "x86_64 with PAGESIZE 64 KiB": dict(notes=[(b"VMCOREINFO", 0, b"PAGESIZE=65536\n")]),
    "a short PRSTATUS": dict(notes=[(b"CORE", NT_PRSTATUS, b"\1" * 300)]),
    "a Xen note": dict(notes=[(b"VMCOREINFO", 0, VMCI), (b"Xen", 0x1000001, b"\0" * 64)]),
    "VMCOREINFO_XEN": dict(notes=[(b"VMCOREINFO_XEN", 0, b"X=1\n")]),
    "a key both a value and a directory": dict(notes=[(b"VMCOREINFO", 0,
                                                       b"SIZE(page)=64\nSIZE(page.x)=1\n")]),
    "an empty line in VMCOREINFO": dict(notes=[(b"VMCOREINFO", 0, b"A=1\n\nB=2\n")]),
    "a NUL in VMCOREINFO": dict(notes=[(b"VMCOREINFO", 0, VMCI + b"\0\0")]),
}


@pytest.mark.parametrize("what", sorted(NOTES_OK))
def test_made_up_core_opened_without_libkdumpfile(tmp_path, what):
    mine, lkf = _pair(_elfcore(tmp_path / "core", **NOTES_OK[what]))
    assert not mine.libkdumpfile_context and mine.pages_reader == "elf"
    for attr in ("format", "arch", "vmcoreinfo", "damage"):
        assert getattr(mine, attr) == getattr(lkf, attr), attr
    for a, n in ((0x100000, 4096), (0x100ffc, 8), (0x201000, 4096), (0x100000, 4 * 4096),
                 (0x201ff0, 16)):
        assert _read(mine, a, n) == _read(lkf, a, n) is not None, f"{a:#x}+{n}"
    # (64 KiB from every segment: libkdumpfile reads the rest of a page a
    # segment is in as zeros)
    for a in (0, 0x180000, 0x300000, 1 << 40):
        assert _read(mine, a, 4096) is None and _read(lkf, a, 4096) is None, f"{a:#x}"


@pytest.mark.parametrize("what", sorted(NOTES_LEFT))
def test_made_up_core_left_to_libkdumpfile(tmp_path, what):
    path = _elfcore(tmp_path / "core", **NOTES_LEFT[what])
    c = target.core()
    try:
        kf = c.KdumpFile(path)
    except c.OpenError:
        return   # refused, by pfnscope's header checks or by libkdumpfile
    assert kf.libkdumpfile_context, what


@pytest.mark.parametrize("dump", ["elf-paging", "elf-nopaging"])
def test_walk_decodes_struct_pages_where_mapped(dump):
    """A Target over a whole ELF dump decodes runs of struct pages where the
    file is mapped (pfs_kdump_map_phys), copying nothing: every task's walk
    (--json, every entry) is byte for byte the walk through a reader that
    copies (a Python callable over the same file), and makes fewer read
    system calls -- none for the memmap runs."""
    fx = lab.fixture("6.1", "max", "healthy")
    sess = target.open_dump(fx.dumps[dump], fx.vmlinux)
    c = target.core()
    tasks = [x for x in sess.target.tasks() if x[3]]
    assert len(tasks) > 10
    out = {}
    calls = {}
    for how in ("mapped", "copied"):
        # each on a file of its own: what one read of the file maps, the
        # other would copy out of the mapping
        kf = c.KdumpFile(fx.dumps[dump])
        assert kf.pages_reader == "elf"
        t = c.Target(sess.layout, kf if how == "mapped" else (lambda a, n, kf=kf: kf.read_phys(a, n)))
        chunks = []
        before = _syscr()
        for _, pid, _, mm, _ in tasks:
            for vt in t.vmas(mm):
                data = t.walk_bytes(mm, vt, pid, mode="json")[0]
                chunks.append(data)
        calls[how] = _syscr() - before
        out[how] = b"".join(chunks)
        del t
        kf.close()
    assert out["mapped"] == out["copied"] and len(out["mapped"]) > 100000
    assert calls["mapped"] < calls["copied"], calls
