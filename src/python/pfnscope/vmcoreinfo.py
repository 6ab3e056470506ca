"""VMCOREINFO: the kernel's own "KEY=VALUE" note about itself.

Parsed once per target.  Sources: the dump's VMCOREINFO note (KdumpFile,
pfnscope.dumpfile), the running/dumped kernel's ``vmcoreinfo_note`` or
``vmcoreinfo_data`` read through drgn (from_program), the note found in a
running guest's raw RAM (scan_vmcoreinfo), /sys/kernel/vmcoreinfo
(pfnscope.source.sysfs_vmcoreinfo).
"""
from __future__ import annotations

import mmap
import os
import re
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional, Tuple, Union

from .errors import LayoutError, PfnscopeError

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def _int(key: str, value: str, base: int) -> int:
    """A VMCOREINFO number; a damaged value is the one-line error naming
    the key (the kernel writes %ld/%lu decimal, %lx hex)."""
    try:
        return int(value, base)
    except ValueError:
        raise LayoutError("VMCOREINFO", f"{key}={value[:40]!r} is not a number") from None


class VmcoreInfo:
    """Parsed VMCOREINFO text with typed accessors."""

    def __init__(self, text: Union[str, bytes]) -> None:
        if isinstance(text, bytes):
            text = text.split(b"\0", 1)[0].decode("utf-8", "replace")
        self.text: str = text
        self.items: Dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                self.items[key.strip()] = value.strip()

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def get(self, key: str) -> Optional[str]:
        return self.items.get(key)

    def number(self, name: str, default: Optional[int] = None) -> Optional[int]:
        """NUMBER(name), decimal (may be negative)."""
        key = f"NUMBER({name})"
        v = self.items.get(key)
        if v is None:
            return default
        try:
            return int(v, 10)
        except ValueError:
            return _int(key, v, 0)

    def _item(self, kind: str, name: str, base: int) -> Optional[int]:
        key = f"{kind}({name})"
        v = self.items.get(key)
        return _int(key, v, base) if v is not None else None

    def symbol(self, name: str) -> Optional[int]:
        """SYMBOL(name), hex without 0x."""
        return self._item("SYMBOL", name, 16)

    def size(self, name: str) -> Optional[int]:
        return self._item("SIZE", name, 10)

    def offset(self, name: str) -> Optional[int]:
        return self._item("OFFSET", name, 10)

    def length(self, name: str) -> Optional[int]:
        return self._item("LENGTH", name, 10)

    @property
    def osrelease(self) -> str:
        v = self.items.get("OSRELEASE")
        if not v:
            raise LayoutError("VMCOREINFO", "no OSRELEASE")
        return v

    @property
    def arch(self):
        """The target's architecture (pfnscope.arch), chosen once."""
        a = self.__dict__.get("_arch")
        if a is None:
            from .arch import for_vmcoreinfo
            a = self._arch = for_vmcoreinfo(self)
        return a

    @property
    def build_id(self) -> Optional[str]:
        v = self.items.get("BUILD-ID")
        return v.lower() if v else None

    @property
    def kaslr_offset(self) -> int:
        v = self.items.get("KERNELOFFSET")
        return _int("KERNELOFFSET", v, 16) if v else 0

    @property
    def pgtable_levels(self) -> int:
        return 5 if self.number("pgtable_l5_enabled", 0) == 1 else 4

    @property
    def version(self) -> tuple:
        return parse_version(self.osrelease)


def parse_version(release: str) -> tuple:
    """'6.1.0-56-amd64' -> (6, 1, 0)."""
    m = _VERSION_RE.match(release)
    if not m:
        raise LayoutError("OSRELEASE", f"cannot parse kernel version {release!r}")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def from_program(prog, read: Optional[Callable[[int, int], bytes]] = None) -> VmcoreInfo:
    """Read VMCOREINFO from the kernel itself via drgn: the ELF note
    ``vmcoreinfo_note`` (filled at boot and at crash), else the
    ``vmcoreinfo_data`` buffer."""
    rd = read or (lambda a, n: prog.read(a, n))
    errors = []
    try:
        note = prog["vmcoreinfo_note"]
        # u32 *vmcoreinfo_note (5.x+) or u32 vmcoreinfo_note[] (older)
        addr = int(note.value_()) if note.type_.kind.name == "POINTER" else int(note.address_)
        hdr = rd(addr, 12)
        namesz, descsz, _ = struct.unpack("<III", hdr)
        if 0 < namesz <= 16 and 0 < descsz <= 65536:
            raw = rd(addr + 12 + ((namesz + 3) & ~3), descsz)
            info = VmcoreInfo(raw)
            if "OSRELEASE" in info:
                return info
        errors.append("vmcoreinfo_note is empty")
    except Exception as e:  # drgn.FaultError, LookupError
        errors.append(f"vmcoreinfo_note: {e}")
    try:
        data = prog["vmcoreinfo_data"]
        size = int(prog["vmcoreinfo_size"])
        info = VmcoreInfo(rd(int(data.value_()), size))
        if "OSRELEASE" in info:
            return info
        errors.append("vmcoreinfo_data is empty")
    except Exception as e:
        errors.append(f"vmcoreinfo_data: {e}")
    raise LayoutError("VMCOREINFO", "cannot read it from the kernel (" + "; ".join(errors) + ")")


_NOTE_NAME = b"VMCOREINFO\0"


def scan_vmcoreinfo(path: str, limit: Optional[int] = None) -> Tuple[VmcoreInfo, int]:
    """Find the kernel's VMCOREINFO ELF note in raw guest RAM.

    The kernel fills ``vmcoreinfo_note`` (an ELF note "VMCOREINFO" whose
    descriptor is the KEY=VALUE text starting with OSRELEASE=) at boot, so
    a live guest has it in RAM.  Returns (info, file offset of the note).
    Several copies may exist (stale pages); the first complete one wins."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise PfnscopeError(path, e.strerror or str(e))
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise PfnscopeError(path, "empty file")
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        try:
            end = min(size, limit) if limit else size
            pos = mm.find(_NOTE_NAME, 0, end)
            while pos >= 0:
                hdr = pos - 12
                if hdr >= 0:
                    namesz, descsz, ntype = struct.unpack_from("<III", mm, hdr)
                    desc = pos + 12
                    if (namesz == len(_NOTE_NAME) and ntype == 0 and 0 < descsz <= 65536
                            and mm[desc:desc + 10] == b"OSRELEASE=" and desc + descsz <= size):
                        info = VmcoreInfo(mm[desc:desc + descsz])
                        if "OSRELEASE" in info and "KERNELOFFSET" in info:
                            return info, hdr
                pos = mm.find(_NOTE_NAME, pos + 1, end)
        finally:
            mm.close()
    raise PfnscopeError(path, "no VMCOREINFO note found in guest RAM "
                        "(not a guest RAM file, or the guest has not booted yet)")
