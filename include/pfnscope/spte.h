/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_SPTE_H
#define PFNSCOPE_SPTE_H
/*
 * KVM x86 stage-2 (TDP MMU) tables: one 512-entry table scanned per call,
 * as tdp_iter.c steps through it (arch/x86/kvm/mmu/tdp_iter.c,
 * try_step_down/try_step_side): MMU-present entries only
 * (is_shadow_present_pte: SPTE_MMU_PRESENT_MASK, bit 11), a leaf where
 * is_last_spte() (level 1, or PT_PAGE_SIZE_MASK), else a child table.
 */
#include <stddef.h>
#include <stdint.h>

#define PFS_SPTE_ENTRIES 512
#define PFS_SPTE_MMU_PRESENT (1ull << 11)
#define PFS_SPTE_PAGE_SIZE (1ull << 7)

struct pfs_spte_ref {
	uint64_t gfn;     /* first guest frame the entry covers */
	uint64_t raw;
	uint32_t index;   /* slot in the table */
	uint8_t level;    /* 1 = 4 KiB */
};

/*
 * Scan one table of LEVEL whose first entry maps GFN0.  Leaves go to
 * LEAVES, child tables (non-leaf MMU-present entries) to CHILDREN; both
 * arrays must hold PFS_SPTE_ENTRIES.  Returns the number of leaves;
 * *NCHILDREN receives the number of children.  LEVEL 1..5; 0 if out of range.
 */
size_t pfs_spte_scan(const uint64_t *table, unsigned level, uint64_t gfn0,
		     struct pfs_spte_ref *leaves, struct pfs_spte_ref *children,
		     size_t *nchildren);

#endif
