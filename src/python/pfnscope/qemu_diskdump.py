"""Physical reads from a QEMU kdump-compressed dump whose block is not 4 KiB.

QEMU's dump-guest-memory writes the kdump-compressed (diskdump) format with
one block per *target* page (dump.c: block_size = TARGET_PAGE_SIZE, 64 KiB
for aarch64) and "Unknown" as the machine: libkdumpfile 0.5.1 then takes
4 KiB pages and finds every RAM pfn out of bounds.  This reader follows the
format as makedumpfile's diskdump_mod.h describes it (and QEMU writes it):

  block 0          struct disk_dump_header (signature "KDUMP   ", block_size,
                   sub_hdr_size, bitmap_blocks, max_mapnr)
  block 1..        struct kdump_sub_header (offset/size of VMCOREINFO)
  then             bitmap_blocks blocks: the first half the valid-pfn bitmap,
                   the second the dumped-pfn bitmap (LSB first)
  then             struct page_desc {u64 offset; u32 size; u32 flags;
                   u64 page_flags} per dumped block, in pfn order
  page data        zlib (flags 1), lzo (2), snappy (4), zstd (0x20) or raw
                   when size == block_size

Both the flattened form QEMU writes to a pipe or file ("makedumpfile"
signature, big-endian {offset, size} records) and the rebuilt one
(`makedumpfile -R`) are read.
"""
from __future__ import annotations

import os
import struct
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

from .errors import PfnscopeError

_FLAT_SIG = b"makedumpfile"
_FLAT_HDR = 4096
_COMPRESS_ZLIB = 0x1


class _File:
    """pread over a plain or flattened dump file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.segs: Optional[List[Tuple[int, int, int]]] = None  # (offset, size, file position)
        head = os.pread(self.fd, len(_FLAT_SIG), 0)
        if head == _FLAT_SIG:
            self.segs = []
            pos = _FLAT_HDR
            size = os.fstat(self.fd).st_size
            while pos + 16 <= size:
                off, n = struct.unpack(">qq", os.pread(self.fd, 16, pos))
                if off < 0 or n < 0:
                    break
                self.segs.append((off, n, pos + 16))
                pos += 16 + n
            self.segs.sort()

    def pread(self, n: int, off: int) -> bytes:
        if self.segs is None:
            return os.pread(self.fd, n, off)
        out = bytearray(n)
        # later records overwrite earlier ones; at most a few segments overlap a read
        for s_off, s_n, s_pos in self.segs:
            if s_off >= off + n or s_off + s_n <= off:
                continue
            a, b = max(off, s_off), min(off + n, s_off + s_n)
            out[a - off:b - off] = os.pread(self.fd, b - a, s_pos + (a - s_off))
        return bytes(out)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def probe(path: str) -> Optional[int]:
    """The block size of a diskdump file (plain or flattened), None if it is not one."""
    try:
        f = _File(path)
    except OSError:
        return None
    try:
        hdr = f.pread(4096, 0)
    finally:
        f.close()
    if hdr[:8] != b"KDUMP   ":
        return None
    return struct.unpack_from("<i", hdr, 428)[0]


class QemuDiskdump:
    """read_phys(paddr, size) -> bytes over a diskdump with any block size;
    callable as the C core's reader."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.f = _File(path)
        except OSError as e:
            raise PfnscopeError(path, e.strerror or str(e))
        hdr = self.f.pread(4096, 0)
        if hdr[:8] != b"KDUMP   ":
            raise PfnscopeError(path, "not a kdump-compressed dump")
        # disk_dump_header: signature[8], header_version, utsname (6 x 65),
        # struct timeval (8-aligned at 408), status, block_size, sub_hdr_size,
        # bitmap_blocks, max_mapnr
        (self.status, self.block_size, sub_hdr_size, bitmap_blocks,
         self.max_mapnr) = struct.unpack_from("<iiiiI", hdr, 424)
        bs = self.block_size
        if bs < 4096 or bs & (bs - 1) or bitmap_blocks <= 0 or sub_hdr_size <= 0:
            raise PfnscopeError(path, f"bad diskdump header (block_size {bs}, "
                                f"bitmap_blocks {bitmap_blocks})")
        sub = self.f.pread(bs * sub_hdr_size, bs)
        # kdump_sub_header: phys_base, dump_level, split, start_pfn, end_pfn,
        # offset_vmcoreinfo, size_vmcoreinfo, ... max_mapnr_64 (header_version >= 6)
        off_vi, size_vi = struct.unpack_from("<QQ", sub, 8 + 4 + 4 + 8 + 8)
        self.vmcoreinfo = self.f.pread(size_vi, off_vi).split(b"\0", 1)[0].decode(
            "utf-8", "replace") if size_vi else ""
        header_version = struct.unpack_from("<i", hdr, 8)[0]
        if header_version >= 6:
            mm64 = struct.unpack_from("<Q", sub, 8 + 4 + 4 + 8 + 8 + 8 * 6 + 8 * 2)[0]
            if mm64:
                self.max_mapnr = mm64
        half = bitmap_blocks * bs // 2
        bitmap_off = bs * (1 + sub_hdr_size)
        self.dumped = self.f.pread(half, bitmap_off + half)
        # rank of the first pfn of every bitmap byte among the dumped ones
        self.rank: List[int] = []
        n = 0
        for b in self.dumped:
            self.rank.append(n)
            n += bin(b).count("1")
        self.desc_off = bs * (1 + sub_hdr_size + bitmap_blocks)
        self._cache: Dict[int, bytes] = {}

    def _block(self, pfn: int) -> bytes:
        blk = self._cache.get(pfn)
        if blk is not None:
            return blk
        byte, bit = divmod(pfn, 8)
        if pfn >= self.max_mapnr or byte >= len(self.dumped) or not self.dumped[byte] >> bit & 1:
            raise OSError(f"physical address {pfn * self.block_size:#x} not in the dump")
        idx = self.rank[byte] + bin(self.dumped[byte] & ((1 << bit) - 1)).count("1")
        off, size, flags, _ = struct.unpack("<QIIQ", self.f.pread(24, self.desc_off + 24 * idx))
        data = self.f.pread(size, off)
        if size == self.block_size and not flags & _COMPRESS_ZLIB:
            blk = data
        elif flags & _COMPRESS_ZLIB:
            blk = zlib.decompress(data)
        else:
            raise OSError(f"block at {pfn * self.block_size:#x}: compression {flags:#x} "
                          "not supported (zlib only)")
        if len(self._cache) >= 256:
            self._cache.clear()
        self._cache[pfn] = blk
        return blk

    def read_phys(self, paddr: int, size: int) -> bytes:
        out = bytearray()
        bs = self.block_size
        while size > 0:
            pfn, o = divmod(paddr, bs)
            n = min(size, bs - o)
            out += self._block(pfn)[o:o + n]
            paddr += n
            size -= n
        return bytes(out)

    __call__ = read_phys

    def close(self) -> None:
        self.f.close()
