"""A whole ELF dump is read by pfnscope's own reader (src/readers/kdumpfile.c:
copies out of a mapping of the file, through a physical-to-file map built
from the PT_LOADs) instead of libkdumpfile: every byte it returns is the
byte drgn's own ELF core reader returns, on QEMU dumps with and without
paging (66,000 overlapping PT_LOADs); addresses no segment holds fail in
both; reads across segment and page boundaries agree."""
from __future__ import annotations

import random

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
    # page: the file is opened without mmap)
    before = _syscr()
    for i in range(100):
        kf.read_phys(0x100000 + i * 7 * 4096, 4096)
    assert _syscr() - before < 10
    kf.close()


def _syscr():
    with open("/proc/self/io") as f:
        return int(next(ln for ln in f if ln.startswith("syscr:")).split()[1])
