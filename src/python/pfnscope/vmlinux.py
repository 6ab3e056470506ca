"""Find the debug vmlinux of a kernel release and check it matches a dump.

The match is checked two ways: the GNU build-id note of the vmlinux against
VMCOREINFO's BUILD-ID (5.9+), and the release string in the vmlinux's
``linux_banner`` against VMCOREINFO's OSRELEASE.
"""
from __future__ import annotations

import array
import os
import re
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, List, Optional, Tuple

from .errors import PfnscopeError
from .vmcoreinfo import VmcoreInfo


def candidates(release: str) -> List[str]:
    """Debug vmlinux paths tried for a release, in order."""
    cache = os.environ.get("PFNSCOPE_CACHE", os.path.expanduser("~/.cache/pfnscope"))
    return [
        f"/usr/lib/debug/boot/vmlinux-{release}",
        f"/usr/lib/debug/lib/modules/{release}/vmlinux",
        f"/lib/modules/{release}/build/vmlinux",
        f"/boot/vmlinux-{release}",
        os.path.join(cache, "kernels", release, "vmlinux"),
    ]


def find_vmlinux(release: str) -> str:
    for path in candidates(release):
        if os.path.isfile(path):
            return path
    raise PfnscopeError(
        "vmlinux", f"no debug vmlinux found for {release} (tried {', '.join(candidates(release))}); "
        "pass one with -s")


class ElfFile:
    """Just enough ELF64 little-endian parsing for sections and notes."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.f = open(path, "rb")
        except OSError as e:
            raise PfnscopeError(path, e.strerror or str(e))
        hdr = self.f.read(64)
        if len(hdr) < 64 or hdr[:4] != b"\x7fELF":
            raise PfnscopeError(path, "not an ELF file")
        if hdr[4] != 2 or hdr[5] != 1:
            raise PfnscopeError(path, "not a 64-bit little-endian ELF file")
        self.e_type, self.e_machine = struct.unpack_from("<HH", hdr, 16)
        (self.e_phoff, self.e_shoff) = struct.unpack_from("<QQ", hdr, 32)
        (_, _, self.e_phentsize, self.e_phnum, self.e_shentsize, self.e_shnum,
         self.e_shstrndx) = struct.unpack_from("<IHHHHHH", hdr, 48)
        # name: (type, addr, offset, size, link)
        self.sections: Dict[str, Tuple[int, int, int, int, int]] = {}
        self.by_index: List[Tuple[int, int, int, int, int]] = []
        if self.e_shoff and self.e_shnum and self.e_shentsize >= 64:
            self.f.seek(self.e_shoff)
            raw = self.f.read(self.e_shnum * self.e_shentsize)
            shdrs = [struct.unpack_from("<IIQQQQIIQQ", raw, i * self.e_shentsize)
                     for i in range(len(raw) // self.e_shentsize)]
            self.by_index = [(sh[1], sh[3], sh[4], sh[5], sh[6]) for sh in shdrs]
            if self.e_shstrndx < len(shdrs):
                strtab = self._read(shdrs[self.e_shstrndx][4], shdrs[self.e_shstrndx][5])
                for sh, sec in zip(shdrs, self.by_index):
                    end = strtab.find(b"\0", sh[0])
                    name = strtab[sh[0]:end if end >= 0 else len(strtab)]
                    self.sections[name.decode(errors="replace")] = sec

    def _read(self, off: int, size: int) -> bytes:
        self.f.seek(off)
        return self.f.read(size)

    def section(self, name: str) -> Optional[bytes]:
        s = self.sections.get(name)
        if s is None or s[0] == 8:  # SHT_NOBITS
            return None
        return self._read(s[2], s[3])

    def close(self) -> None:
        self.f.close()

    def symbol_lookup(self) -> Optional[Callable[[Iterable[str]], Dict[str, List[tuple]]]]:
        """Lookups in the ELF symbol table, in the form of kallsyms'
        (pfnscope.source.KallsymsSymbols): ``lookup(names) -> {name:
        [(address, type)]}``, the link-time address and "D" for a global or
        weak symbol, "d" for a local one; no section or file symbols, no
        undefined ones.  ``lookup(names, sizes=True)``: (address, type,
        st_size).  None: no .symtab (a stripped file)."""
        sym = self.sections.get(".symtab")
        if sym is None or sym[0] != 2 or sym[4] >= len(self.by_index):  # SHT_SYMTAB
            return None
        strsec = self.by_index[sym[4]]
        symtab, strtab = self._read(sym[2], sym[3]), self._read(strsec[2], strsec[3])
        if len(symtab) != sym[3] or len(strtab) != strsec[3]:
            raise PfnscopeError(self.path, "symbol table cut short")

        if len(symtab) % 24:
            raise PfnscopeError(self.path, "symbol table size is not a multiple of Elf64_Sym")
        words = array.array("I")
        words.frombytes(symtab)
        if sys.byteorder != "little":   # pragma: no cover
            words.byteswap()
        st_name = words[::6]   # Elf64_Sym: 24 bytes, st_name first

        def lookup(names: Iterable[str], sizes: bool = False) -> Dict[str, List[tuple]]:
            # every string offset each name may have (linkers merge string
            # tails: "init_task" may be the end of "__init_task")
            cand: Dict[int, str] = {}
            for name in names:
                want = name.encode() + b"\0"
                at = strtab.find(want)
                while at >= 0:
                    cand[at] = name
                    at = strtab.find(want, at + 1)
            if len(cand) <= 4:   # a scan of the array per offset
                hits = []
                for off in cand:
                    i = -1
                    while True:
                        try:
                            i = st_name.index(off, i + 1)
                        except ValueError:
                            break
                        hits.append(i)
            else:   # one pass
                hits = [i for i, off in enumerate(st_name) if off in cand]
            out: Dict[str, List[tuple]] = {}
            for i in hits:
                off, info, _, shndx, value, size = struct.unpack_from("<IBBHQQ", symtab, i * 24)
                # no STT_SECTION (3) or STT_FILE (4), no SHN_UNDEF
                if info & 0xf not in (3, 4) and shndx != 0:
                    sym = (value, "d" if info >> 4 == 0 else "D")
                    out.setdefault(cand[off], []).append(sym + (size,) if sizes else sym)
            for syms in out.values():
                syms.sort()   # address order, as kallsyms lists them
            return out
        return lookup


def iter_notes(data: bytes):
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, off)
        off += 12
        name = data[off:off + namesz].rstrip(b"\0")
        off += (namesz + 3) & ~3
        desc = data[off:off + descsz]
        off += (descsz + 3) & ~3
        yield name, ntype, desc


def build_id(elf: ElfFile) -> Optional[str]:
    data = elf.section(".notes") or elf.section(".note.gnu.build-id")
    if not data:
        return None
    for name, ntype, desc in iter_notes(data):
        if name == b"GNU" and ntype == 3:
            return desc.hex()
    return None


_BANNER = re.compile(rb"Linux version (\S+) \(")


def release_of(elf: ElfFile) -> Optional[str]:
    data = elf.section(".rodata")
    if not data:
        return None
    m = _BANNER.search(data)
    return m.group(1).decode() if m else None


def check_match(vmlinux: str, vmci: VmcoreInfo, arch=None, release: bool = True) -> None:
    """Raise PfnscopeError unless the vmlinux belongs to the dumped kernel
    (of architecture arch, by default the one its VMCOREINFO says).
    release=False: not its banner against OSRELEASE (a scan of .rodata,
    ~25 ms), left to when the vmlinux is read."""
    arch = arch or vmci.arch
    elf = ElfFile(vmlinux)
    try:
        if elf.e_machine != arch.machine:
            raise PfnscopeError(vmlinux, f"not an {arch.label} vmlinux (e_machine {elf.e_machine})")
        if ".debug_info" not in elf.sections:
            raise PfnscopeError(vmlinux, "has no debug info (need the -dbg vmlinux)")
        want = vmci.build_id
        have = build_id(elf)
        if want and have and not have.startswith(want) and not want.startswith(have):
            raise PfnscopeError(
                vmlinux, f"build-id {have} does not match the dump's {want} "
                f"(dump is {vmci.osrelease}): vmlinux from another build")
        if release:
            _check_release(elf, vmci)
    finally:
        elf.close()


def check_release(vmlinux: str, vmci: VmcoreInfo) -> None:
    """The part of check_match() left out by release=False: the vmlinux's
    banner against OSRELEASE."""
    elf = ElfFile(vmlinux)
    try:
        _check_release(elf, vmci)
    finally:
        elf.close()


def _check_release(elf: ElfFile, vmci: VmcoreInfo) -> None:
    rel = release_of(elf)
    if rel is not None and rel != vmci.osrelease:
        raise PfnscopeError(
            elf.path, f"is {rel} but the dump is {vmci.osrelease}: vmlinux from another build")
