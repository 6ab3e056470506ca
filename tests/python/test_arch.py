"""pfnscope.arch: the architecture is chosen once, from VMCOREINFO or an ELF
machine, and carried by the VmcoreInfo; its kernel-image reads follow the
kernel's __pa_symbol (x86-64) and __kimg_to_phys (arm64)."""
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "src", "python"))

import pytest  # noqa: E402

from pfnscope import arch  # noqa: E402
from pfnscope.errors import PfnscopeError  # noqa: E402
from pfnscope.vmcoreinfo import VmcoreInfo  # noqa: E402

X86 = VmcoreInfo("OSRELEASE=6.1.0-57-amd64\nKERNELOFFSET=1e000000\nNUMBER(phys_base)=-30000000\n")
ARM = VmcoreInfo("OSRELEASE=6.1.0-57-arm64\nKERNELOFFSET=2d6d9ac00000\nNUMBER(VA_BITS)=48\n"
                 "NUMBER(kimage_voffset)=0xffffad6d62a00000\nNUMBER(PHYS_OFFSET)=0x40000000\n")


def test_chosen_once_from_vmcoreinfo_and_machine():
    assert X86.arch is arch.X86_64 and ARM.arch is arch.ARM64
    assert ARM.arch is ARM.arch                       # the same object every time
    assert arch.for_machine(62) is arch.X86_64 and arch.for_machine(183) is arch.ARM64
    assert arch.for_machine(40) is None               # EM_ARM: neither
    assert (X86.arch.name, ARM.arch.name) == ("x86_64", "aarch64")


def test_image_reads():
    seen = []

    def read_phys(pa, n):
        seen.append(pa)
        return bytes(n)
    # __pa_symbol: x - __START_KERNEL_map + phys_base (phys_base negative: %ld)
    arch.X86_64.image_read_u64(read_phys, X86)(0xFFFFFFFF81000000)
    assert seen[-1] == (0x1000000 - 30000000) & ((1 << 64) - 1)
    # __kimg_to_phys: va - kimage_voffset
    arch.ARM64.image_reader(read_phys, ARM)(0xFFFFAD6DA2A10000, 8)
    assert seen[-1] == 0x40010000


def test_kernel_start():
    assert arch.X86_64.kernel_start({"pgtable_levels": 5}) == 0xFF00000000000000
    assert arch.X86_64.kernel_start({"pgtable_levels": 4}) == 0xFFFF800000000000
    assert arch.ARM64.kernel_start({"page_offset_base": 0xFFF0000000000000}) == 0xFFF0000000000000


def test_vmlinux_of_the_other_architecture(tmp_path):
    """check_match asks the arch object: an x86-64 ELF for an arm64 kernel is
    one line naming both."""
    from pfnscope import vmlinux
    p = tmp_path / "vmlinux"
    hdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    hdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)
    p.write_bytes(hdr)
    with pytest.raises(PfnscopeError, match=r"not an arm64 vmlinux \(e_machine 62\)"):
        vmlinux.check_match(str(p), ARM)
    # an explicit arch (drgn's, of the core) wins over the VMCOREINFO's
    with pytest.raises(PfnscopeError, match=r"not an arm64 vmlinux \(e_machine 62\)"):
        vmlinux.check_match(str(p), X86, arch.ARM64)
    # the machine matches: the next check speaks
    with pytest.raises(PfnscopeError, match="has no debug info"):
        vmlinux.check_match(str(p), X86)
