/* SPDX-License-Identifier: MIT */
/*
 * Swap-format entries after the arch has split them into (type, offset):
 * include/linux/swapops.h.  The type numbers per kernel are in the layout
 * (layout.c derives them from include/linux/swap.h).
 */
#include "pfnscope/arch.h"

static int is(int layout_type, unsigned type)
{
	return layout_type >= 0 && (unsigned)layout_type == type;
}

void pfs_decode_swp(const struct pfs_layout *lo, unsigned type, uint64_t offset, struct pfs_entry *e)
{
	/* swp_offset_pfn(): SWP_PFN_BITS = MAX_PHYSMEM_BITS - PAGE_SHIFT (6.1+;
	 * earlier kernels kept only the pfn in the offset, same result). */
	unsigned pfn_bits = lo->max_physmem_bits > 12 && lo->max_physmem_bits < 64 ?
			    (unsigned)lo->max_physmem_bits - 12 : 40;
	uint64_t pfn = offset & ((1ull << pfn_bits) - 1);

	e->swp_type = (uint8_t)type;
	e->swp_offset = offset;
	e->pfn = PFS_NO_PFN;
	e->kind = PFS_KIND_SWAP;

	if (is(lo->swp_migration_read, type) || is(lo->swp_migration_read_exclusive, type) ||
	    is(lo->swp_migration_write, type)) {
		e->kind = PFS_KIND_MIGRATION;
		e->pfn = pfn;
		if (is(lo->swp_migration_write, type))
			e->bits |= PFS_E_WRITE;
		if (is(lo->swp_migration_read_exclusive, type))
			e->bits |= PFS_E_EXCLUSIVE;
		/* SWP_MIG_YOUNG_BIT / SWP_MIG_DIRTY_BIT sit just above the pfn
		 * when migration_entry_supports_ad() (6.1+, x86 and arm64). */
		if (lo->version_major > 6 || (lo->version_major == 6 && lo->version_minor >= 1)) {
			if (offset & (1ull << pfn_bits))
				e->bits |= PFS_E_ACCESSED;
			if (offset & (1ull << (pfn_bits + 1)))
				e->bits |= PFS_E_DIRTY;
		}
	} else if (is(lo->swp_device_read, type) || is(lo->swp_device_write, type) ||
		   is(lo->swp_device_exclusive_read, type) || is(lo->swp_device_exclusive_write, type)) {
		e->kind = PFS_KIND_DEVICE;
		e->pfn = pfn;
		if (is(lo->swp_device_write, type) ||
		    (is(lo->swp_device_exclusive_write, type) &&
		     lo->swp_device_exclusive_write != lo->swp_device_exclusive_read))
			e->bits |= PFS_E_WRITE;
		if (is(lo->swp_device_exclusive_read, type) || is(lo->swp_device_exclusive_write, type))
			e->bits |= PFS_E_EXCLUSIVE;
	} else if (is(lo->swp_hwpoison, type)) {
		e->kind = PFS_KIND_HWPOISON;
		e->pfn = pfn;
	} else if (is(lo->swp_pte_marker, type)) {
		e->kind = PFS_KIND_MARKER;
		if (pfs_layout_has(lo, pte_marker_uffd_wp) && (offset & (uint64_t)lo->pte_marker_uffd_wp))
			e->bits |= PFS_E_UFFD_WP;
	} else if (is(lo->swp_swapin_error, type)) {
		/* SWP_SWAPIN_ERROR (6.0, 6.1): became PTE_MARKER_SWAPIN_ERROR in 6.2 */
		e->kind = PFS_KIND_MARKER;
	}
}
