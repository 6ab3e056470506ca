"""arm64 facts of a target kernel, from its VMCOREINFO and symbols.

The x86-64 layout (pfnscope.layout.build_layout) is the base; a target whose
VMCOREINFO carries arm64's own numbers (arch/arm64/kernel/crash_core.c, from
v6.10 vmcore_info.c: NUMBER(kimage_voffset), NUMBER(PHYS_OFFSET),
NUMBER(TCR_EL1_T1SZ)) gets the arm64 fields here.  Kernel rules mirrored
(arch/arm64/include/asm/memory.h, pgtable-hwdef.h):

- __kimg_to_phys(va) = va - kimage_voffset (the kernel image, KASLR included:
  kimage_voffset moves with the image, PHYS_OFFSET with the linear map);
- PAGE_OFFSET = _PAGE_OFFSET(VA_BITS) = -(1 << VA_BITS), VA_BITS the
  configured size (VMCOREINFO NUMBER(VA_BITS)), fixed at build time even when
  the CPU runs fewer bits: arm64_memblock_init() then lowers memstart_addr
  (PHYS_OFFSET) by _PAGE_OFFSET(vabits_actual) - _PAGE_OFFSET(52), so
  __lm_to_phys(va) = va - PAGE_OFFSET + PHYS_OFFSET stays right;
- vabits_actual = 64 - TCR_EL1.T1SZ (no symbol in 6.1/6.12 Debian kernels;
  VMCOREINFO says VA_BITS=52 on a 52-bit kernel either way);
- 4 KiB granule: levels = ceil((vabits_actual - 12) / 9): 48 bits -> 4,
  52 bits (FEAT_LPA2) -> 5;
- vmemmap = (struct page *)VMEMMAP_START - (memstart_addr >> PAGE_SHIFT), so
  pfn_to_page(pfn) = vmemmap + pfn: the core's vmemmap_base is that vmemmap
  (memstart_addr is signed: below zero on a 52-bit kernel run at 48 bits).
  VMEMMAP_START: VMCOREINFO NUMBER(VMEMMAP_START) where the kernel gives it
  (v6.0, "arm64: crash_core: Export MODULES, VMALLOC, and VMEMMAP ranges"),
  else -(1 << (VA_BITS - VMEMMAP_SHIFT)), VMEMMAP_SHIFT = PAGE_SHIFT -
  STRUCT_PAGE_MAX_SHIFT (5.11 .. 6.8 memory.h);
- MAX_PHYSMEM_BITS = 52 with CONFIG_ARM64_PA_BITS_52 (LPA2 kernels), else 48.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional

U64 = (1 << 64) - 1
ARCH_ARM64 = 2
PAGE_SHIFT = 12
STRUCT_PAGE_MAX_SHIFT = 6


def is_arm64(vmci) -> bool:
    """True for an arm64 kernel's VMCOREINFO (only arm64 writes kimage_voffset)."""
    return vmci.get("NUMBER(kimage_voffset)") is not None


def _hex(vmci, name: str) -> Optional[int]:
    v = vmci.get(f"NUMBER({name})")
    if v is None:
        return None
    try:
        return int(v, 16) & U64 if v.lower().startswith("0x") else int(v, 10) & U64
    except ValueError:
        from .errors import LayoutError
        raise LayoutError("VMCOREINFO", f"NUMBER({name})={v[:40]!r} is not a number") from None


def kimage_voffset(vmci) -> int:
    return _hex(vmci, "kimage_voffset") or 0


def phys_offset(vmci) -> int:
    v = _hex(vmci, "PHYS_OFFSET")
    return U64 if v is None else v


def va_bits_config(vmci) -> int:
    return int(vmci.number("VA_BITS", 48) or 48)


def vabits_actual(vmci) -> int:
    """64 - TCR_EL1.T1SZ (NUMBER(TCR_EL1_T1SZ), v5.9); the configured VA_BITS without it."""
    t1sz = _hex(vmci, "TCR_EL1_T1SZ")
    if t1sz is None:
        t1sz = _hex(vmci, "tcr_el1_t1sz")
    if t1sz is None or not 12 <= t1sz <= 39:
        return va_bits_config(vmci)
    return 64 - t1sz


def page_shift(vmci) -> int:
    ps = int(vmci.get("PAGESIZE") or 4096)
    return ps.bit_length() - 1


def levels(vmci) -> int:
    shift = page_shift(vmci)
    bits = vabits_actual(vmci) - shift
    per = shift - 3
    return -(-bits // per)


def page_offset(vmci) -> int:
    return page_offset_of(va_bits_config(vmci))


def page_offset_of(va_bits: int) -> int:
    """_PAGE_OFFSET(va_bits) (asm/memory.h)."""
    return (-(1 << va_bits)) & U64


def lm_to_phys(va: int, va_bits: int, phys_offset: int) -> int:
    """__lm_to_phys(va) = va - PAGE_OFFSET + PHYS_OFFSET, PAGE_OFFSET of the
    configured VA_BITS (asm/memory.h)."""
    return (va - page_offset_of(va_bits) + phys_offset) & U64


# VA_BITS a kernel can be configured with (arch/arm64/Kconfig ARM64_VA_BITS_*)
CONFIG_VA_BITS = (52, 48, 47, 42, 39, 36)


def ttbr_baddr(ttbr: int) -> int:
    """The table address of a TTBRn_EL1 value: BADDR[47:1] with CnP (bit 0)
    and the ASID (63:48) dropped; with 52-bit PAs (FEAT_LPA/LPA2) bits 5:2
    hold PA[51:48] (ARM ARM D19.2 TTBR1_EL1; asm/pgtable.h phys_to_ttbr)."""
    return (ttbr & 0x0000FFFFFFFFFFC0) | (((ttbr >> 2) & 0xF) << 48)


def t1sz(tcr: int) -> int:
    """TCR_EL1.T1SZ (bits 21:16): vabits_actual = 64 - T1SZ."""
    return (tcr >> 16) & 0x3F


def image_read_u64(read_phys: Callable[[int, int], bytes], voffset: int):
    """u64 reads of kernel-image addresses: __pa_symbol(x) = x - kimage_voffset."""
    def read_u64(va: int) -> int:
        return int.from_bytes(read_phys((va - voffset) & U64, 8), "little")
    return read_u64


def image_reader(read_phys: Callable[[int, int], bytes], voffset: int):
    def read(va: int, n: int) -> bytes:
        return read_phys((va - voffset) & U64, n)
    return read


def fill_layout(lo: dict, vmci, symbols, page_struct_size: int) -> None:
    """Overwrite the x86-64 facts of build_layout()'s dict LO with arm64's."""
    vo = kimage_voffset(vmci)
    po = phys_offset(vmci)
    lo["arch"] = ARCH_ARM64
    lo["kimage_voffset"] = vo
    lo["phys_offset"] = po
    lo["va_bits"] = vabits_actual(vmci)
    lo["pgtable_levels"] = levels(vmci)
    lo["page_offset_base"] = page_offset(vmci)
    # arch/arm64/Kconfig ARM64_PA_BITS: 52 with LPA2 (VA_BITS=52, 4K) or 64K LPA
    lo["max_physmem_bits"] = 52 if va_bits_config(vmci) == 52 else 48
    lo["phys_base"] = 0
    lo["sme_mask"] = 0
    lo["kaslr_offset"] = vmci.kaslr_offset
    top = vmci.symbol("swapper_pg_dir") or symbols.address("swapper_pg_dir")
    lo["init_top_pgt"] = top
    vstart = _hex(vmci, "VMEMMAP_START")
    if vstart is None:
        vstart = (-(1 << (va_bits_config(vmci) - (page_shift(vmci) - STRUCT_PAGE_MAX_SHIFT)))) & U64
    # memstart_addr is an s64 and the shift is arithmetic: a 52-bit kernel
    # on a 48-bit CPU lowers it below zero (arm64_memblock_init())
    memstart = po - (1 << 64) if po >> 63 else po
    lo["vmemmap_base"] = (vstart - (memstart >> page_shift(vmci)) * page_struct_size) & U64
    zp = symbols.value("zero_pfn", required=False)
    if zp is None:
        zp = symbols.value("zero_page_pfn", required=False)
    if zp is None:
        zp = ((symbols.address("empty_zero_page") - vo) & U64) >> page_shift(vmci)
    lo["zero_pfn"] = zp
