"""Fill ``struct pfs_layout`` (include/pfnscope/layout.h) from a layout source
(types and symbols: pfnscope.source) + VMCOREINFO.

The result is a plain dict whose keys are the C struct's member names; the
extension's ``_core.Layout(dict)`` copies it into the C struct.  Differences
between kernels are detected from the types (a member that exists or not),
never from the version alone: distribution kernels backport.

Symbols are relocated addresses (the source applies KASLR).
"""
from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional
    ReadU64 = Callable[[int], int]

from .errors import LayoutError
from .vmcoreinfo import VmcoreInfo

# PFS_ABSENT (include/pfnscope/layout.h): the value of any field the kernel
# lacks, an offset, a bit number or a pfn alike (the extension stores it as
# all ones in the field's C type; Layout.has() tests it)
ABSENT = -1
U64_MAX = (1 << 64) - 1
START_KERNEL_MAP = 0xFFFFFFFF80000000

# enum values of layout.h
ARCH_X86_64 = 1
PGTYPE_6_1, PGTYPE_PGTY = 1, 2
MAPCOUNT_COMPOUND, MAPCOUNT_ENTIRE, MAPCOUNT_LARGE = 1, 2, 3
MAX_PAGEFLAGS = 64


class _Types:
    """What build_layout asks of types, over a source's types (see
    pfnscope.source): a missing type or member is named in the error."""

    def __init__(self, types) -> None:
        self.src = types
        self.what = getattr(types, "what", "debug info")

    def type(self, name: str, required: bool = True) -> bool:
        ok = self.src.exists(name)
        if not ok and required:
            raise LayoutError(name, f"type not found in the {self.what}")
        return ok

    def has(self, tname: str, member: str) -> bool:
        return self.src.offsetof(tname, member) is not None

    def off(self, tname: str, member: str, required: bool = True) -> int:
        if not self.type(tname, required=required):
            return ABSENT
        o = self.src.offsetof(tname, member)
        if o is None:
            if required:
                raise LayoutError(f"{tname}.{member}", f"member not found in the {self.what}")
            return ABSENT
        return o

    def first_off(self, tname: str, members: List[str], required: bool = True) -> int:
        for m in members:
            o = self.off(tname, m, required=False)
            if o != ABSENT:
                return o
        if required:
            raise LayoutError(f"{tname}.{members[0]}", f"member not found in the {self.what}")
        return ABSENT

    def size(self, tname: str) -> int:
        self.type(tname)
        return int(self.src.sizeof(tname))

    def array_len(self, tname: str, member: str) -> int:
        self.type(tname)
        n = self.src.array_len(tname, member)
        if n is None:
            raise LayoutError(f"{tname}.{member}", f"expected an array in the {self.what}")
        return int(n)

    def object_array_len(self, name: str) -> Optional[int]:
        """Length of the global array name (None: no such array, or the
        source cannot tell: BTF has no types for most globals)."""
        f = getattr(self.src, "object_array_len", None)
        return f(name) if f is not None else None

    def function_params(self, name: str) -> Optional[List[str]]:
        """Parameter type names of the function name (None: no such function)."""
        f = getattr(self.src, "function_params", None)
        return f(name) if f is not None else None

    def enumerators(self, tname: str) -> Optional[Dict[str, int]]:
        return self.src.enumerators(tname)


class Symbols:
    """Relocated symbol addresses and values of the target kernel, over a
    source's symbols (see pfnscope.source)."""

    def __init__(self, symbols) -> None:
        self.src = symbols
        self.read_u64 = symbols.read_u64
        self.what = getattr(symbols, "what", "symbols")

    def address(self, name: str, required: bool = True) -> Optional[int]:
        a = self.src.address(name)
        if a is None and required:
            raise LayoutError(name, f"symbol not found in the {self.what}")
        return a

    def value(self, name: str, required: bool = True) -> Optional[int]:
        addr = self.address(name, required)
        if addr is None:
            return None
        try:
            return self.read_u64(addr)
        except Exception as e:
            raise LayoutError(name, f"cannot read the symbol's value at {addr:#x}: {e}")

    def is_pointer(self, name: str) -> Optional[bool]:
        return self.src.is_pointer(name)


def pageflag_table(enum: Dict[str, int]) -> Dict[int, str]:
    """{bit: name}; the first enumerator of a value is its name (kernel
    names without PG_)."""
    nr = enum.get("__NR_PAGEFLAGS", MAX_PAGEFLAGS)
    names: Dict[int, str] = {}
    for name, value in enum.items():
        if name.startswith("PG_") and 0 <= value < min(nr, MAX_PAGEFLAGS):
            names.setdefault(value, name[3:])
    return names


def build_layout(source, vmci: VmcoreInfo, facts: Optional[Dict[str, str]] = None) -> dict:
    """Return the pfs_layout dict for the kernel described by a layout
    source (pfnscope.source: drgn's debug info, BTF + kallsyms, GDB's) and
    its VMCOREINFO.  facts, if given, receives {fact: "debuginfo"|"version"}:
    where each semantics profile came from ("debuginfo": the source's types
    and functions, whichever the source is)."""
    if facts is None:
        facts = {}
    T = _Types(source.types)
    S = Symbols(source.symbols)
    major, minor, patch = vmci.version
    lo: dict = {
        "arch": ARCH_X86_64,
        "version_major": major, "version_minor": minor, "version_patch": patch,
        "pgtable_levels": vmci.pgtable_levels,
        "has_pte_special": 1,
        "sme_mask": (vmci.number("sme_mask", 0) or 0) & U64_MAX,
        "phys_base": (vmci.number("phys_base", 0) or 0) & U64_MAX,
        "kaslr_offset": vmci.kaslr_offset,
        "start_kernel_map": START_KERNEL_MAP,
        "max_physmem_bits": 52 if vmci.pgtable_levels == 5 else 46,
    }
    top = vmci.symbol("init_top_pgt") or vmci.symbol("swapper_pg_dir") or S.address("init_top_pgt")
    lo["init_top_pgt"] = top

    # --- symbol values ---
    lo["init_task"] = S.address("init_task")
    lo["highest_memmap_pfn"] = S.value("highest_memmap_pfn")
    zp = S.value("zero_pfn", required=False)
    if zp is None:
        zp = S.value("zero_page_pfn", required=False)
    if zp is None:
        ezp = S.address("empty_zero_page")
        zp = (ezp - START_KERNEL_MAP + lo["phys_base"]) >> 12
    lo["zero_pfn"] = zp
    hz = S.value("huge_zero_pfn", required=False)
    lo["huge_zero_pfn"] = ABSENT if hz is None else hz
    pob = S.value("page_offset_base", required=False)
    lo["page_offset_base"] = pob if pob is not None else (
        0xFF11000000000000 if vmci.pgtable_levels == 5 else 0xFFFF888000000000)
    vmb = S.value("vmemmap_base", required=False)
    lo["vmemmap_base"] = vmb if vmb is not None else (
        0xFFD4000000000000 if vmci.pgtable_levels == 5 else 0xFFFFEA0000000000)

    # --- sparsemem ---
    extreme = S.is_pointer("mem_section") is True
    lo["sparsemem_extreme"] = 1 if extreme else 0
    if extreme:
        lo["mem_section"] = S.value("mem_section")
    else:
        lo["mem_section"] = S.address("mem_section")
    lo["mem_section_size"] = T.size("struct mem_section")
    lo["section_size_bits"] = vmci.number("SECTION_SIZE_BITS", 27)
    lo["pfn_section_shift"] = lo["section_size_bits"] - 12
    lo["subsection_shift"] = 21
    lo["sections_per_root"] = 4096 // lo["mem_section_size"] if extreme else 1
    nr_roots = vmci.length("mem_section")
    if nr_roots is None:
        nr_sections = 1 << (lo["max_physmem_bits"] - lo["section_size_bits"])
        nr_roots = nr_sections // lo["sections_per_root"]
    lo["nr_section_roots"] = nr_roots
    lo["mem_section_section_mem_map"] = T.off("struct mem_section", "section_mem_map")
    lo["mem_section_usage"] = T.off("struct mem_section", "usage", required=False)
    lo["usage_subsection_map"] = T.off("struct mem_section_usage", "subsection_map", required=False)

    # --- struct page / folio ---
    P, F = "struct page", "struct folio"
    lo["page_size"] = T.size(P)
    lo["page_flags"] = T.off(P, "flags")
    lo["page_refcount"] = T.off(P, "_refcount")
    lo["page_mapcount"] = T.off(P, "_mapcount")
    pt = T.off(P, "page_type", required=False)
    lo["page_page_type"] = pt if pt != lo["page_mapcount"] else ABSENT
    lo["page_mapping"] = T.off(P, "mapping")
    lo["page_index"] = T.first_off(P, ["index", "__folio_index"])
    lo["page_private"] = T.off(P, "private")
    if T.has(P, "compound_head"):
        lo["page_compound_head"] = T.off(P, "compound_head")
        lo["compound_info_is_mask"] = 0
    else:
        lo["page_compound_head"] = T.off(P, "compound_info")
        lo["compound_info_is_mask"] = 1
    lo["page_compound_mapcount"] = T.off(P, "compound_mapcount", required=False)
    # compound_order() / folio_order(): page[1].compound_order (<= 6.1) or
    # folio._folio_order (6.1 .. 6.5); from 6.6 the low byte of _flags_1,
    # which 6.1 also has as page[1].flags (page.c prefers these two)
    lo["page_compound_order"] = _first_present(T, [(P, "compound_order"), (F, "_folio_order")])
    # PageHuge() before 6.6: compound_dtor == HUGETLB_PAGE_DTOR (enum
    # compound_dtor_id; VMCOREINFO NUMBER(HUGETLB_PAGE_DTOR) says the same)
    dtor = _first_present(T, [(P, "compound_dtor"), (F, "_folio_dtor")])
    dtors = T.enumerators("enum compound_dtor_id") or {}
    hdtor = dtors.get("HUGETLB_PAGE_DTOR", vmci.number("HUGETLB_PAGE_DTOR"))
    lo["page_compound_dtor"] = dtor if dtor != ABSENT and hdtor is not None else ABSENT
    lo["hugetlb_page_dtor"] = hdtor if dtor != ABSENT and hdtor is not None else ABSENT
    lo["folio_entire_mapcount"] = T.off(F, "_entire_mapcount", required=False)
    lo["folio_nr_pages_mapped"] = T.off(F, "_nr_pages_mapped", required=False)
    lo["folio_large_mapcount"] = T.off(F, "_large_mapcount", required=False)
    lo["folio_flags_1"] = T.off(F, "_flags_1", required=False)
    if lo["folio_large_mapcount"] != ABSENT:
        lo["mapcount_scheme"] = MAPCOUNT_LARGE
    elif lo["folio_entire_mapcount"] != ABSENT:
        lo["mapcount_scheme"] = MAPCOUNT_ENTIRE
    else:
        lo["mapcount_scheme"] = MAPCOUNT_COMPOUND

    pgty = T.enumerators("enum pagetype")
    if pgty and "PGTY_buddy" in pgty:
        lo["page_type_scheme"] = PGTYPE_PGTY
        lo["pgtype_buddy"] = pgty["PGTY_buddy"]
        lo["pgtype_table"] = pgty.get("PGTY_table", ABSENT)
        lo["pgtype_slab"] = pgty.get("PGTY_slab", ABSENT)
        lo["pgtype_offline"] = pgty.get("PGTY_offline", ABSENT)
        lo["pgtype_hugetlb"] = pgty.get("PGTY_hugetlb", ABSENT)
    else:
        lo["page_type_scheme"] = PGTYPE_6_1
        # the 6.1-era page_type bits of this version, from the core's one
        # table of them (pfs_layout_set_page_types)
        from . import _core
        lo.update(_core.page_types(PGTYPE_6_1, major, minor))
        if pgty:  # 6.9-6.11 style: PG_buddy etc. as masks in enum pagetype
            for key, name in (("pgtype_buddy", "PG_buddy"), ("pgtype_table", "PG_table"),
                              ("pgtype_offline", "PG_offline"), ("pgtype_slab", "PG_slab"),
                              ("pgtype_hugetlb", "PG_hugetlb")):
                if name in pgty:
                    lo[key] = pgty[name]
        else:
            buddy = vmci.number("PAGE_BUDDY_MAPCOUNT_VALUE")
            if buddy is not None:
                lo["pgtype_buddy"] = (~buddy) & 0xFFFFFFFF

    flags = T.enumerators("enum pageflags")
    if not flags:
        raise LayoutError("enum pageflags", "type not found in the vmlinux debug info")
    for name in ("locked", "reserved", "head", "slab", "lru", "swapbacked", "swapcache",
                 "hwpoison", "private", "dirty", "uptodate", "mlocked"):
        lo[f"pg_{name}"] = flags.get(f"PG_{name}", ABSENT)
    if lo["pg_head"] < 0 or lo["pg_reserved"] < 0:
        raise LayoutError("enum pageflags", "no PG_head/PG_reserved")
    lo["pageflag_names"] = pageflag_table(flags)
    # page[1] flags (PF_SECOND): PG_double_map (<= 6.1, an alias of
    # PG_workingset) and PG_hugetlb (6.6 .. 6.8, before it became a page type)
    lo["pg_double_map"] = flags.get("PG_double_map", ABSENT)
    lo["pg_hugetlb_second"] = flags.get("PG_hugetlb", ABSENT)

    # --- vm_area_struct ---
    V = "struct vm_area_struct"
    lo["vma_vm_start"] = T.off(V, "vm_start")
    lo["vma_vm_end"] = T.off(V, "vm_end")
    lo["vma_vm_flags"] = T.first_off(V, ["vm_flags", "__vm_flags", "flags"])
    lo["vma_vm_pgoff"] = T.off(V, "vm_pgoff")
    lo["vma_vm_mm"] = T.off(V, "vm_mm")
    lo["vma_vm_file"] = T.off(V, "vm_file")
    lo["vma_vm_ops"] = T.off(V, "vm_ops")
    lo["vma_vm_private_data"] = T.off(V, "vm_private_data")
    lo["vma_vm_next"] = T.off(V, "vm_next", required=False)
    lo["vma_size"] = T.size(V)

    # --- mm_struct, maple tree ---
    M = "struct mm_struct"
    lo["mm_pgd"] = T.off(M, "pgd")
    lo["mm_mm_mt"] = T.off(M, "mm_mt", required=False)
    lo["mm_mmap"] = T.off(M, "mmap", required=False)
    if lo["mm_mm_mt"] == ABSENT and lo["mm_mmap"] == ABSENT:
        raise LayoutError("struct mm_struct.mm_mt", "neither mm_mt nor mmap in the vmlinux debug info")
    if lo["mm_mm_mt"] != ABSENT:
        N = "struct maple_node"
        lo["maple_tree_ma_root"] = T.off("struct maple_tree", "ma_root")
        lo["maple_node_size"] = T.size(N)
        lo["maple_range64_slots"] = T.array_len("struct maple_range_64", "slot")
        lo["maple_arange64_slots"] = T.array_len("struct maple_arange_64", "slot")
        lo["maple_dense_slots"] = T.array_len(N, "slot")
        lo["maple_range64_pivot"] = T.off(N, "mr64.pivot")
        lo["maple_range64_slot"] = T.off(N, "mr64.slot")
        lo["maple_arange64_pivot"] = T.off(N, "ma64.pivot")
        lo["maple_arange64_slot"] = T.off(N, "ma64.slot")
    else:
        lo["maple_tree_ma_root"] = ABSENT

    # --- task_struct ---
    K = "struct task_struct"
    for key, member in (("task_tasks", "tasks"), ("task_pid", "pid"), ("task_tgid", "tgid"),
                        ("task_mm", "mm"), ("task_comm", "comm"), ("task_flags", "flags")):
        lo[key] = T.off(K, member)
    lo["task_comm_len"] = T.array_len(K, "comm")
    # pid idr (optional): the fallback when the task list is broken, e.g.
    # a task_struct page filtered out of a makedumpfile dump
    lo["init_pid_ns"] = S.address("init_pid_ns", required=False) or ABSENT
    lo["pidns_idr_xa_head"] = T.off("struct pid_namespace", "idr.idr_rt.xa_head", required=False)
    lo["xa_node_shift"] = T.off("struct xa_node", "shift", required=False)
    lo["xa_node_slots"] = T.off("struct xa_node", "slots", required=False)
    try:
        lo["xa_chunk_size"] = T.array_len("struct xa_node", "slots")
    except Exception:
        lo["xa_chunk_size"] = ABSENT
    lo["pid_tasks0"] = T.off("struct pid", "tasks[0]", required=False)
    lo["pid_nr0"] = T.off("struct pid", "numbers[0].nr", required=False)
    lo["task_pid_links0"] = T.off(K, "pid_links[0]", required=False)

    # --- file name (optional) ---
    lo["file_f_path"] = T.off("struct file", "f_path", required=False)
    lo["path_dentry"] = T.off("struct path", "dentry", required=False)
    lo["dentry_d_name"] = T.off("struct dentry", "d_name", required=False)
    lo["qstr_name"] = T.off("struct qstr", "name", required=False)
    lo["special_mapping_vmops"] = S.address("special_mapping_vmops", required=False) or ABSENT
    lo["legacy_special_mapping_vmops"] = S.address("legacy_special_mapping_vmops",
                                                   required=False) or ABSENT
    O = "struct vm_operations_struct"
    lo["vmops_access"] = T.off(O, "access", required=False)
    lo["vmops_find_special_page"] = T.first_off(O, ["find_special_page", "find_normal_page"],
                                                required=False)
    facts.update(_kernel_facts(T, lo))
    if facts.get("swap_types") == "version" and (major, minor) >= (5, 4):
        # no type for swap_info[] (BTF): CONFIG_DEVICE_PRIVATE, the one
        # configuration MAX_SWAPFILES depends on, is what builds mm/rmap.c's
        # make_device_exclusive_range(), added by commit b756a3b5e7ea ("mm:
        # Device exclusive memory access") (in v5.14), make_device_exclusive()
        # from v6.15; before v5.14, migrate_vma_setup(), added by the series
        # "mm: turn migrate_vma upside down" (in v5.4) inside mm/migrate.c's
        # #ifdef CONFIG_DEVICE_PRIVATE (in mm/migrate_device.c from v6.0,
        # built for any ZONE_DEVICE, hence not the test there).  All exported.
        if (major, minor) >= (5, 14):
            dp = (S.address("make_device_exclusive", required=False) or
                  S.address("make_device_exclusive_range", required=False))
        else:
            dp = S.address("migrate_vma_setup", required=False)
        lo["config_device_private"] = 1 if dp else 0
        facts["swap_types"] = "kernel"
    patch = _distro_patch(T, S)
    if patch is not None and (major, minor) == (lo["version_major"], lo["version_minor"]):
        lo["version_patch"] = patch
    vmci.arch.fill_layout(lo, vmci, S, lo["page_size"])
    return lo


_DISTRO_VERSION = re.compile(r"Debian (\d+)\.(\d+)\.(\d+)")


# vm_normal_page / follow_pte generations as the enum values of layout.h
VNP_LE_6_11, VNP_6_12, VNP_6_18 = 1, 2, 3
FOLLOW_PTE_MM, FOLLOW_PTE_VMA, FOLLOW_PFNMAP_START = 1, 2, 3


def _kernel_facts(T: "_Types", lo: dict) -> Dict[str, str]:
    """Facts the core would otherwise take from the version number, read
    from the kernel's own types and functions where it leaves a trace
    (distribution kernels backport); sets lo's fields and returns
    {fact: "kernel"|"version"}: read from the kernel's types or symbols, or
    taken from the version number."""
    src: Dict[str, str] = {}
    # MAX_SWAPFILES = ARRAY_SIZE(swap_info) (mm/swapfile.c); the swap type
    # numbers follow (include/linux/swap.h), see pfs_layout_set_max_swapfiles
    n = getattr(T, "object_array_len", lambda name: None)("swap_info")
    if n:
        lo["max_swapfiles"] = n
    src["swap_types"] = "kernel" if n else "version"
    params = getattr(T, "function_params", lambda name: None)
    # follow_pte generations: follow_pfnmap_start() from commit 6da8e9634bb7
    # ("mm: new follow_pfnmap API") (in v6.12); follow_pte(vma, ...) from
    # commit 29ae7d96d166 ("mm: pass VMA instead of MM to follow_pte()")
    # (in v6.10), follow_pte(mm, ...) before
    start, fpte = params("follow_pfnmap_start"), params("follow_pte")
    if start is not None:
        lo["follow_profile"] = FOLLOW_PFNMAP_START
    elif fpte:
        lo["follow_profile"] = FOLLOW_PTE_VMA if "vm_area_struct" in fpte[0] else FOLLOW_PTE_MM
    src["follow_profile"] = "kernel" if start is not None or fpte else "version"
    # vm_normal_page generations: vm_normal_page_pud() with __vm_normal_page
    # (in v6.18); pmd_special() checked since the huge pfnmap series that
    # also brought follow_pfnmap_start() (in v6.12)
    if params("__vm_normal_page") is not None or params("vm_normal_page_pud") is not None:
        lo["vnp_profile"] = VNP_6_18
        src["vnp_profile"] = "kernel"
    elif params("vm_normal_page_pmd") is not None or params("vm_normal_page") is not None:
        lo["vnp_profile"] = VNP_6_12 if start is not None else VNP_LE_6_11
        src["vnp_profile"] = "kernel"
    else:
        src["vnp_profile"] = "version"
    for fact in ("devmap_bit", "kvm_profile"):
        src[fact] = "version"
    return src


def _first_present(T: "_Types", members: List[tuple]) -> int:
    """Offset of the first (type, member) the kernel has, else ABSENT."""
    for tname, member in members:
        off = T.off(tname, member, required=False)
        if off != ABSENT:
            return off
    return ABSENT


def _distro_patch(T: "_Types", S: "Symbols") -> Optional[int]:
    """Debian's OSRELEASE says 6.1.0-56; UTS_VERSION says 'Debian 6.1.158-1'."""
    try:
        addr = S.address("init_uts_ns")
        off = T.off("struct uts_namespace", "name.version")
        raw = b"".join(S.read_u64(addr + off + i).to_bytes(8, "little") for i in range(0, 64, 8))
        m = _DISTRO_VERSION.search(raw.split(b"\0", 1)[0].decode("latin-1"))
        return int(m.group(3)) if m else None
    except Exception:
        return None


def image_read_u64(read_phys: Callable[[int, int], bytes], phys_base: int) -> ReadU64:
    """A read_u64 for kernel-image addresses through a physical reader:
    __pa_symbol(x) = x - __START_KERNEL_map + phys_base."""
    def read_u64(va: int) -> int:
        pa = (va - START_KERNEL_MAP + phys_base) & U64_MAX
        return int.from_bytes(read_phys(pa, 8), "little")
    return read_u64
