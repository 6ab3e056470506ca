"""Dump files before any kernel fact is read from them: the checks that turn
a missing, empty or cut-short file into a one-line error, opening one with
libkdumpfile (the C KdumpFile reader: every format it knows, including QEMU
ELF with paging=false and QEMU kdump-zlib that drgn 0.0.22 cannot open), its
VMCOREINFO, and the warning records of a damaged one."""
from __future__ import annotations

import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

from .errors import PfnscopeError
from .extension import core
from .vmcoreinfo import VmcoreInfo

NO_VMCOREINFO = "no VMCOREINFO in the dump (QEMU needs -device vmcoreinfo)"


def open_kdumpfile(path: str) -> Any:
    """The dump at path through the C KdumpFile reader."""
    c = core()
    if not os.path.exists(path):
        raise PfnscopeError(path, "no such file")
    try:
        return c.KdumpFile(path)
    except c.OpenError as e:
        msg = str(e)
        raise PfnscopeError(path, msg[len(path) + 2:] if msg.startswith(path + ": ") else msg)
    except OSError as e:
        raise PfnscopeError(path, e.strerror or str(e))


def kdumpfile_vmcoreinfo(kf, path: str) -> VmcoreInfo:
    """The VMCOREINFO note of an open KdumpFile."""
    if not kf.vmcoreinfo:
        raise PfnscopeError(path, NO_VMCOREINFO)
    return VmcoreInfo(kf.vmcoreinfo)


def dump_vmcoreinfo(path: str) -> VmcoreInfo:
    """The VMCOREINFO note of the dump at path, through libkdumpfile (for a
    dump drgn opened without debug info: drgn 0.0.22 does not expose the one
    it parsed)."""
    kf = open_kdumpfile(path)
    try:
        return kdumpfile_vmcoreinfo(kf, path)
    finally:
        kf.close()


def check_file(path: str, refuse_truncated: bool) -> None:
    """path exists and is not empty; with refuse_truncated, an ELF dump's
    segments are all in the file (check_elf_truncation)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise PfnscopeError(path, e.strerror or "cannot open")
    if st.st_size == 0:
        raise PfnscopeError(path, "empty file")
    if refuse_truncated:
        check_elf_truncation(path, st.st_size)


def check_elf_truncation(path: str, size: int) -> None:
    """An ELF vmcore whose PT_LOAD data extends past the end of the file
    (for the drgn reader, which has no notion of a partial dump; the
    kdumpfile reader opens such a file and reports what is missing)."""
    try:
        with open(path, "rb") as f:
            hdr = f.read(64)
            if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
                return
            phoff, = struct.unpack_from("<Q", hdr, 32)
            shoff, = struct.unpack_from("<Q", hdr, 40)
            phentsize, phnum = struct.unpack_from("<HH", hdr, 54)
            if phnum == 0xFFFF:  # PN_XNUM: the count is section 0's sh_info
                f.seek(shoff + 44)
                sh_info = f.read(4)
                if len(sh_info) < 4:
                    raise PfnscopeError(path, "truncated dump (section header 0 past the end of the file)")
                phnum, = struct.unpack("<I", sh_info)
            f.seek(phoff)
            raw = f.read(phentsize * phnum)
    except OSError as e:
        raise PfnscopeError(path, e.strerror or str(e))
    if len(raw) < phentsize * phnum:
        raise PfnscopeError(path, "truncated dump (program headers past the end of the file)")
    end = 0
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", raw, i * phentsize)
        if p_type in (1, 4):
            end = max(end, p_offset + p_filesz)
    if end > size:
        raise PfnscopeError(path, f"truncated dump: {size} bytes, its headers describe {end} "
                            "(the default --reader kdumpfile reads what is there)")


def damage_records(damage: Optional[Dict[str, object]]) -> List[Dict[str, object]]:
    """The JSON warning records of a damaged dump (none when whole);
    damage is KdumpFile.damage."""
    if not damage:
        return []
    out: List[Dict[str, object]] = []
    if damage.get("truncated") or damage.get("incomplete"):
        out.append({"type": "warning", "what": "truncated",
                    "missing_bytes": damage["missing_bytes"],
                    "missing_pages": damage["missing_pages"],
                    "incomplete": bool(damage.get("incomplete"))})
    if damage.get("bad_descriptors") or damage.get("bad_bitmap_blocks") or damage.get("bitmap_mismatch"):
        rec: Dict[str, object] = {"type": "warning", "what": "corrupt",
                                  "bad_descriptors": damage["bad_descriptors"],
                                  "bad_bitmap_blocks": damage["bad_bitmap_blocks"],
                                  "lost_pages": damage["lost_pages"]}
        if damage.get("bitmap_mismatch"):
            rec["unlocatable_from_pfn"] = damage["lost_from_pfn"]
        out.append(rec)
    return out
