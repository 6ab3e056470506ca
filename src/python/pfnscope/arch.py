"""The target's architecture, chosen once per target and asked everywhere.

A target is x86-64 or arm64; the choice is made once, from what the target
says about itself: its VMCOREINFO (for_vmcoreinfo: only arm64 writes
NUMBER(kimage_voffset), arch/arm64/kernel/crash_core.c), or the ELF machine
of a vmlinux or a core file (for_machine: EM_X86_64, EM_AARCH64).  A
VmcoreInfo carries its choice (VmcoreInfo.arch), so a Session, the dump
openers, the drgn Program, the vmlinux check and the GDB front end all ask
the same object instead of testing the architecture each on its own.

What differs per architecture lives behind the object: how a kernel-image
address becomes physical (__pa_symbol on x86-64, __kimg_to_phys on arm64),
the arm64 layout fields (pfnscope.arch_arm64.fill_layout over the x86-64
base of pfnscope.layout.build_layout), the lowest kernel virtual address.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional
    ReadBytes = Callable[[int, int], bytes]
    ReadU64 = Callable[[int], int]

from . import arch_arm64

U64_MAX = (1 << 64) - 1

EM_X86_64 = 62
EM_AARCH64 = 183


class Arch:
    name = "unknown"            # uname -m, the target record's "arch"
    label = "unknown"           # for messages
    machine = 0                 # ELF e_machine of its vmlinux and cores

    def image_reader(self, read_phys: ReadBytes, vmci) -> ReadBytes:
        """Reads of kernel-image addresses through a physical reader."""
        raise NotImplementedError

    def image_read_u64(self, read_phys: ReadBytes, vmci) -> ReadU64:
        read = self.image_reader(read_phys, vmci)
        return lambda va: int.from_bytes(read(va, 8), "little")

    def fill_layout(self, lo: dict, vmci, symbols, page_struct_size: int) -> None:
        """Overwrite build_layout()'s x86-64 facts with this architecture's."""

    def kernel_start(self, layout: dict) -> int:
        """The lowest kernel virtual address."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<arch {self.name}>"


class X86_64Arch(Arch):
    name = "x86_64"
    label = "x86-64"
    machine = EM_X86_64
    START_KERNEL_MAP = 0xFFFFFFFF80000000

    def image_reader(self, read_phys: ReadBytes, vmci) -> ReadBytes:
        # __pa_symbol(x) = x - __START_KERNEL_map + phys_base
        phys_base = (vmci.number("phys_base", 0) or 0) & U64_MAX
        return lambda va, n: read_phys((va - self.START_KERNEL_MAP + phys_base) & U64_MAX, n)

    def kernel_start(self, layout: dict) -> int:
        return 0xFF00000000000000 if layout["pgtable_levels"] == 5 else 0xFFFF800000000000


class Arm64Arch(Arch):
    name = "aarch64"
    label = "arm64"
    machine = EM_AARCH64

    def image_reader(self, read_phys: ReadBytes, vmci) -> ReadBytes:
        return arch_arm64.image_reader(read_phys, arch_arm64.kimage_voffset(vmci))

    def fill_layout(self, lo: dict, vmci, symbols, page_struct_size: int) -> None:
        arch_arm64.fill_layout(lo, vmci, symbols, page_struct_size)

    def kernel_start(self, layout: dict) -> int:
        return layout["page_offset_base"]


X86_64 = X86_64Arch()
ARM64 = Arm64Arch()
ARCHES = (X86_64, ARM64)


def for_vmcoreinfo(vmci) -> Arch:
    return ARM64 if arch_arm64.is_arm64(vmci) else X86_64


def for_machine(machine: int) -> Optional[Arch]:
    """The architecture of an ELF e_machine; None: neither."""
    return next((a for a in ARCHES if a.machine == machine), None)
