/* SPDX-License-Identifier: MIT */
/*
 * Layout defaults, version-derived facts and validation.  Everything a
 * front end can read from the target's types it should override after
 * pfs_layout_set_version(): that function only supplies what is invisible in
 * DWARF/BTF (#defines, semantics) or a default for hand-built layouts.
 */
#include <string.h>
#include "pfnscope/layout.h"

#define V(maj, min) ((maj) * 1000u + (min))

void pfs_layout_init(struct pfs_layout *lo)
{
	memset(lo, 0, sizeof(*lo));
#define PFS_LAYOUT_FIELD(type, name, init) lo->name = (type)(init);
#include "pfnscope/layout-fields.def"
#undef PFS_LAYOUT_FIELD
}

/*
 * Swap-entry type numbers, include/linux/swap.h:
 *   MAX_SWAPFILES = (1 << MAX_SWAPFILES_SHIFT(5)) - SWP_DEVICE_NUM
 *                   - SWP_MIGRATION_NUM - SWP_HWPOISON_NUM
 *                   - SWP_PTE_MARKER_NUM - SWP_SWAPIN_ERROR_NUM
 *   SWP_HWPOISON = MAX_SWAPFILES; SWP_MIGRATION_READ (, _READ_EXCLUSIVE),
 *   _WRITE follow; then SWP_DEVICE_WRITE, SWP_DEVICE_READ (write first!),
 *   SWP_DEVICE_EXCLUSIVE_WRITE, _READ (one SWP_DEVICE_EXCLUSIVE from 6.15);
 *   then SWP_PTE_MARKER, then SWP_SWAPIN_ERROR.
 * Generations (all options y, as in Debian):
 *   <= 5.13  device 2 (private w/r), migration 2 (r/w)          5.4: 27,28-29,30-31
 *   5.14     device 4 (+ exclusive w/r, commit b756a3b5e7ea ("mm: device
 *            exclusive memory access"))
 *                                                               5.15: 25,26-27,28-31
 *   5.19     migration 3 (+ read_exclusive), PTE_MARKER 1
 *   6.0      SWAPIN_ERROR 1                                     6.1: 22,23-25,26-29,30,31
 *   6.2      SWAPIN_ERROR becomes a pte marker, commit 15520a3f0469 ("mm: use pte
 *            markers for swap errors")
 *                                                               6.6 = 6.12: 23,24-26,27-30,31
 *   6.15     device exclusive is one type (SWP_DEVICE_NUM 3)     7.2: 24,25-27,28-30,31
 * SWP_DEVICE_NUM is 0 without CONFIG_DEVICE_PRIVATE, as in Debian's 6.1
 * and 6.12 (6.1: 26,27-29,30,31; 6.12: 27,28-30,31): the kernel's own
 * MAX_SWAPFILES (the length of swap_info[]) tells, see
 * pfs_layout_set_max_swapfiles().
 */
static void set_swap_types2(struct pfs_layout *lo, unsigned v, int dev, int no_marker)
{
	int mig = v >= V(5, 19) ? 3 : 2;
	int hwp = 1;
	int marker = v >= V(5, 19) && !no_marker ? 1 : 0;
	int swapin = (v >= V(6, 0) && v < V(6, 2)) ? 1 : 0;
	int max = 32 - dev - mig - hwp - marker - swapin;

	lo->max_swapfiles = max;
	lo->swp_hwpoison = max;
	lo->swp_migration_read = max + hwp;
	if (mig == 3) {
		lo->swp_migration_read_exclusive = max + hwp + 1;
		lo->swp_migration_write = max + hwp + 2;
	} else {
		lo->swp_migration_read_exclusive = PFS_ABSENT;
		lo->swp_migration_write = max + hwp + 1;
	}
	lo->swp_device_write = max + hwp + mig;
	lo->swp_device_read = max + hwp + mig + 1;
	if (dev == 4) {
		lo->swp_device_exclusive_write = max + hwp + mig + 2;
		lo->swp_device_exclusive_read = max + hwp + mig + 3;
	} else if (dev == 3) {
		lo->swp_device_exclusive_write = lo->swp_device_exclusive_read = max + hwp + mig + 2;
	} else if (dev == 0) {
		lo->swp_device_write = lo->swp_device_read = PFS_ABSENT;
		lo->swp_device_exclusive_write = lo->swp_device_exclusive_read = PFS_ABSENT;
	} else {
		lo->swp_device_exclusive_write = lo->swp_device_exclusive_read = PFS_ABSENT;
	}
	lo->swp_pte_marker = marker ? max + hwp + mig + dev : PFS_ABSENT;
	lo->swp_swapin_error = swapin ? max + hwp + mig + dev + marker : PFS_ABSENT;

	/* include/linux/swapops.h PTE_MARKER_* */
	lo->pte_marker_uffd_wp = v >= V(5, 19) ? 1 : PFS_ABSENT;
	lo->pte_marker_poisoned = v >= V(6, 2) ? 2 : PFS_ABSENT;   /* SWAPIN_ERROR, renamed POISONED 6.5 */
	lo->pte_marker_guard = v >= V(6, 13) ? 4 : PFS_ABSENT;
}

static void set_swap_types(struct pfs_layout *lo, unsigned v, int dev)
{
	set_swap_types2(lo, v, dev, 0);
}

/* SWP_DEVICE_NUM with CONFIG_DEVICE_PRIVATE=y, per generation */
static int swp_device_num(unsigned v)
{
	return v >= V(6, 15) ? 3 : v >= V(5, 14) ? 4 : 2;
}

int pfs_layout_set_max_swapfiles(struct pfs_layout *lo, int max_swapfiles)
{
	unsigned v = V(lo->version_major, lo->version_minor);
	int full = swp_device_num(v);
	struct pfs_layout tmp = *lo;

	/* the only config-dependent count on a kernel whose other swap
	 * options are on: CONFIG_DEVICE_PRIVATE (SWP_DEVICE_NUM or 0) */
	set_swap_types(&tmp, v, full);
	if (max_swapfiles == tmp.max_swapfiles) {
		set_swap_types(lo, v, full);
		return 0;
	}
	set_swap_types(&tmp, v, 0);
	if (max_swapfiles == tmp.max_swapfiles) {
		set_swap_types(lo, v, 0);
		return 0;
	}
	/* 5.19 .. 6.1: CONFIG_PTE_MARKER is selected only by PTE_MARKER_UFFD_WP,
	 * which needs HAVE_ARCH_USERFAULTFD_WP (x86-64 only; arm64 from 6.10,
	 * "arm64/mm: Add uffd write-protect support"): Debian's arm64 6.1 has
	 * MAX_SWAPFILES 27 = 32 - migration 3 - hwpoison 1 - swapin error 1 */
	if (v >= V(5, 19) && v < V(6, 2)) {
		set_swap_types2(&tmp, v, 0, 1);
		if (max_swapfiles == tmp.max_swapfiles) {
			set_swap_types2(lo, v, 0, 1);
			return 0;
		}
	}
	return -1;
}

int pfs_layout_set_device_private(struct pfs_layout *lo, int device_private)
{
	unsigned v = V(lo->version_major, lo->version_minor);

	set_swap_types(lo, v, device_private ? swp_device_num(v) : 0);
	return 0;
}

void pfs_layout_set_page_types(struct pfs_layout *lo, enum pfs_page_type_scheme scheme)
{
	unsigned v = V(lo->version_major, lo->version_minor);

	/* include/linux/page-flags.h page types */
	lo->page_type_scheme = scheme;
	if (scheme == PFS_PGTYPE_PGTY) {
		/* enum pagetype's PGTY_* codes (include/linux/page-flags.h,
		 * v6.12): the page type is the top byte of page_type */
		lo->pgtype_buddy = 0xf0;
		lo->pgtype_offline = 0xf1;
		lo->pgtype_table = 0xf2;
		lo->pgtype_hugetlb = 0xf4;
		lo->pgtype_slab = 0xf5;
	} else {
		lo->pgtype_buddy = 0x80;
		lo->pgtype_offline = 0x100;
		/* include/linux/page-flags.h: until v5.10 PG_kmemcg was 0x200
		 * and PG_table 0x400; v5.11 made kmemcg a memcg_data flag
		 * (PageMemcgKmem(), include/linux/memcontrol.h), dropped
		 * PG_kmemcg and renumbered PG_table to 0x200 */
		lo->pgtype_table = v >= V(5, 11) ? 0x200 : 0x400;
		lo->pgtype_hugetlb = PFS_ABSENT;
		lo->pgtype_slab = PFS_ABSENT;
	}
}

void pfs_layout_set_version(struct pfs_layout *lo, unsigned major, unsigned minor, unsigned patch)
{
	unsigned v = V(major, minor);

	lo->version_major = major;
	lo->version_minor = minor;
	lo->version_patch = patch;

	lo->vnp_profile = v >= V(6, 18) ? PFS_VNP_6_18 : v >= V(6, 12) ? PFS_VNP_6_12 : PFS_VNP_LE_6_11;
	/* kvm_try_get_pfn ("KVM: do not allow mapping valid but non-reference-
	 * counted pages", 5.13) reached 5.10.y in 5.10.47 (stable batch of
	 * 2021-06-28); Debian 5.10.223's kvm.ko has it inlined in hva_to_pfn
	 * (get_page_unless_zero after follow_pte + kvm_is_reserved_pfn) */
	lo->kvm_profile = v >= V(6, 13) ? PFS_KVM_6_13 : v >= V(6, 0) ? PFS_KVM_6_0 :
			  v >= V(5, 13) || (v == V(5, 10) && patch >= 47) ? PFS_KVM_5_15 : PFS_KVM_5_4;
	/* the follow_pte generations: follow_pte(mm) <= 6.9, follow_pte(vma)
	 * 6.10-6.11, follow_pfnmap_start() 6.12+ (mm/memory.c) */
	lo->follow_profile = v >= V(6, 12) ? PFS_FOLLOW_PFNMAP_START :
			     v >= V(6, 10) ? PFS_FOLLOW_PTE_VMA : PFS_FOLLOW_PTE_MM;

	if (lo->arch == PFS_ARCH_ARM64) {
		/* arch/arm64/include/asm/pgtable-prot.h: PTE_DEVMAP bit 57 until 6.16 */
		lo->devmap_bit = v >= V(6, 17) ? PFS_ABSENT : 57;
		lo->saved_dirty_bit = PFS_ABSENT;
	} else {
		/* arch/x86/include/asm/pgtable_types.h: _PAGE_BIT_DEVMAP =
		 * _PAGE_BIT_SOFTW4 (58) until 6.5; 6.6 (shadow stacks) moved it to
		 * 57 and made 58 _PAGE_BIT_SAVED_DIRTY; 6.17 removed devmap. */
		lo->devmap_bit = v >= V(6, 17) ? PFS_ABSENT : v >= V(6, 6) ? 57 : 58;
		lo->saved_dirty_bit = v >= V(6, 6) ? 58 : PFS_ABSENT;
	}
	set_swap_types(lo, v, swp_device_num(v));

	pfs_layout_set_page_types(lo, v >= V(6, 12) ? PFS_PGTYPE_PGTY : PFS_PGTYPE_6_1);
	lo->mapcount_scheme = v >= V(6, 10) ? PFS_MAPCOUNT_LARGE :
			      v >= V(6, 2) ? PFS_MAPCOUNT_ENTIRE : PFS_MAPCOUNT_COMPOUND;
}

/* Members every supported kernel has, in the order pfs_layout_validate()
 * checks them, with the name it gives the first one missing. */
struct need {
	int (*has)(const struct pfs_layout *lo);
	const char *what;
};
#define HAS(member, what) { pfs_layout_has_##member, what }
static const struct need page_needs[] = {
	HAS(page_flags, "page.flags"), HAS(page_refcount, "page._refcount"),
	HAS(page_mapcount, "page._mapcount"), HAS(page_mapping, "page.mapping"),
	HAS(page_compound_head, "page.compound_head"),
	HAS(pg_reserved, "PG_reserved"), HAS(pg_head, "PG_head"),
};
static const struct need vma_needs[] = {
	HAS(mem_section_section_mem_map, "mem_section.section_mem_map"),
	HAS(vma_vm_start, "vm_area_struct.vm_start"), HAS(vma_vm_end, "vm_area_struct.vm_end"),
	HAS(vma_vm_flags, "vm_area_struct.vm_flags"), HAS(vma_vm_pgoff, "vm_area_struct.vm_pgoff"),
	HAS(vma_vm_mm, "vm_area_struct.vm_mm"), HAS(vma_vm_ops, "vm_area_struct.vm_ops"),
	HAS(mm_pgd, "mm_struct.pgd"),
};
static const struct need maple_needs[] = {
	HAS(maple_range64_pivot, "maple_range_64.pivot"), HAS(maple_range64_slot, "maple_range_64.slot"),
	HAS(maple_arange64_pivot, "maple_arange_64.pivot"),
	HAS(maple_arange64_slot, "maple_arange_64.slot"),
};
static const struct need task_needs[] = {
	HAS(task_tasks, "task_struct.tasks"), HAS(task_pid, "task_struct.pid"),
	HAS(task_tgid, "task_struct.tgid"), HAS(task_mm, "task_struct.mm"),
	HAS(task_comm, "task_struct.comm"),
};
#undef HAS

int pfs_layout_validate(const struct pfs_layout *lo, const char **missing)
{
#define NEED(cond, name) do { if (!(cond)) { if (missing) *missing = name; return -1; } } while (0)
#define NEED_ALL(needs) \
	for (size_t i_ = 0; i_ < sizeof(needs) / sizeof(needs[0]); i_++) \
		NEED(needs[i_].has(lo), needs[i_].what)
	NEED(lo->arch == PFS_ARCH_X86_64 || lo->arch == PFS_ARCH_ARM64, "arch");
	NEED(lo->version_major != 0, "version");
	NEED(lo->vnp_profile >= PFS_VNP_LE_6_11 && lo->vnp_profile <= PFS_VNP_6_18, "vnp_profile");
	NEED(lo->kvm_profile >= PFS_KVM_5_4 && lo->kvm_profile <= PFS_KVM_6_13, "kvm_profile");
	NEED(lo->pgtable_levels == 4 || lo->pgtable_levels == 5, "pgtable_levels");
	if (lo->arch == PFS_ARCH_ARM64) {
		/* arm64.c: 4 KiB granule, 48-bit VA (4 levels) or 52-bit LPA2 (5) */
		NEED((lo->pgtable_levels == 4 && lo->va_bits == 48) ||
		     (lo->pgtable_levels == 5 && lo->va_bits == 52), "va_bits/pgtable_levels (arm64: 48/4 or 52/5)");
		NEED(lo->kimage_voffset != 0, "kimage_voffset");
		NEED(pfs_layout_has(lo, phys_offset), "phys_offset");
	}
	NEED(lo->max_swapfiles > 0 && lo->max_swapfiles <= 32, "max_swapfiles");
	NEED(lo->page_offset_base != 0, "page_offset_base");
	NEED(lo->vmemmap_base != 0, "vmemmap_base");
	NEED(lo->init_top_pgt != 0, "init_top_pgt");
	NEED(lo->start_kernel_map != 0, "start_kernel_map");
	NEED(pfs_layout_has(lo, highest_memmap_pfn), "highest_memmap_pfn");
	NEED(pfs_layout_has(lo, zero_pfn), "zero_pfn");
	NEED(lo->mem_section != 0, "mem_section");
	NEED(lo->page_size != 0, "page_size");
	NEED_ALL(page_needs);
	NEED(lo->page_type_scheme != 0, "page_type_scheme");
	NEED(lo->mapcount_scheme != 0, "mapcount_scheme");
	switch (lo->mapcount_scheme) {
	case PFS_MAPCOUNT_COMPOUND:
		NEED(pfs_layout_has(lo, page_compound_mapcount), "page.compound_mapcount");
		break;
	case PFS_MAPCOUNT_ENTIRE:
		NEED(pfs_layout_has(lo, folio_entire_mapcount), "folio._entire_mapcount");
		break;
	case PFS_MAPCOUNT_LARGE:
		NEED(pfs_layout_has(lo, folio_large_mapcount), "folio._large_mapcount");
		break;
	}
	NEED(lo->mem_section_size != 0, "sizeof(struct mem_section)");
	NEED_ALL(vma_needs);
	NEED(pfs_layout_has(lo, mm_mm_mt) || pfs_layout_has(lo, mm_mmap), "mm_struct.mm_mt");
	if (pfs_layout_has(lo, mm_mm_mt)) {
		NEED(pfs_layout_has(lo, maple_tree_ma_root), "maple_tree.ma_root");
		NEED(lo->maple_node_size != 0, "sizeof(struct maple_node)");
		NEED_ALL(maple_needs);
	} else {
		NEED(pfs_layout_has(lo, vma_vm_next), "vm_area_struct.vm_next");
	}
	NEED_ALL(task_needs);
	NEED(lo->init_task != 0, "init_task");
#undef NEED_ALL
#undef NEED
	if (missing)
		*missing = NULL;
	return 0;
}
