/* SPDX-License-Identifier: MIT */
/* KVM x86 TDP MMU table scan (include/pfnscope/spte.h). */
#include "pfnscope/spte.h"

size_t pfs_spte_scan(const uint64_t *table, unsigned level, uint64_t gfn0,
		     struct pfs_spte_ref *leaves, struct pfs_spte_ref *children,
		     size_t *nchildren)
{
	size_t nl = 0, nc = 0;

	if (nchildren)
		*nchildren = 0;
	if (!table || level < 1 || level > 5)
		return 0;
	/* SPTE_LEVEL_BITS = 9: an entry of LEVEL covers 512^(LEVEL-1) frames */
	unsigned shift = 9 * (level - 1);
	for (uint32_t i = 0; i < PFS_SPTE_ENTRIES; i++) {
		uint64_t raw = table[i];
		/* non-present SPTEs are 0 before 6.10 and SHADOW_NONPRESENT_VALUE
		 * (bit 63) after; REMOVED/FROZEN_SPTE is 0x5a0 or'ed into either:
		 * none has bit 11 */
		if (!(raw & PFS_SPTE_MMU_PRESENT))
			continue;
		struct pfs_spte_ref r = { gfn0 + ((uint64_t)i << shift), raw, i, (uint8_t)level };
		/* is_last_spte() (arch/x86/kvm/mmu/spte.h): level == PG_LEVEL_4K ||
		 * is_large_pte() */
		if (level == 1 || (raw & PFS_SPTE_PAGE_SIZE))
			leaves[nl++] = r;
		else if (children)
			children[nc++] = r;
	}
	if (nchildren)
		*nchildren = nc;
	return nl;
}
