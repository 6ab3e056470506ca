/* SPDX-License-Identifier: MIT */
/*
 * vm_normal_page() emulation, mm/memory.c:
 *  - <= 6.11 (5.4, 5.15, 6.1, 6.6): vm_normal_page() with the special bit
 *    (CONFIG_ARCH_HAS_PTE_SPECIAL) or the !special linear/COW rules;
 *    vm_normal_page_pmd() always the !special rules plus devmap,
 *    is_huge_zero_pmd and a silent highest_memmap_pfn check;
 *  - 6.12 .. 6.17: vm_normal_page_pmd() returns NULL for pmd_special()
 *    first (huge pfnmaps); the pte path as before (pte_devmap until 6.16,
 *    the devmap bits are gone in 6.17: devmap_bit < 0);
 *  - 6.18+: __vm_normal_page(vma, addr, pfn, special, entry, level) backs
 *    pte, pmd and pud: special path when the level supports it,
 *    is_zero_pfn || is_huge_zero_pfn, print_bad_page_map.
 * Before 6.18 there is no vm_normal_page_pud(): pud leaves outside hugetlb
 * (DAX, 6.12+ huge pfnmaps) never yield a normal page (PMD_NOT_NORMAL).
 */
#include "pfnscope/vnp.h"
#include "internal.h"


static void verdict(struct pfs_entry *e, int normal, unsigned reason)
{
	e->normal_page = (uint8_t)normal;
	e->vnp_reason = (uint8_t)reason;
}

/* Does the arch have the special bit at this level for this profile?
 * pte: CONFIG_ARCH_HAS_PTE_SPECIAL; pmd/pud: pgtable_level_has_pxx_special()
 * (CONFIG_ARCH_SUPPORTS_PMD_PFNMAP: x86-64, arm64; _PUD_PFNMAP: x86-64).
 * 6.18's __vm_normal_page() itself tested CONFIG_ARCH_HAS_PTE_SPECIAL at
 * every level; the per-level test came with a 2026 follow-up.  Both agree
 * on x86-64; on arm64 they differ for pud leaves only. */
static int special_at_level(const struct pfs_layout *lo, unsigned level)
{
	if (!lo->has_pte_special)
		return 0;
	if (level == PFS_LEVEL_PTE)
		return 1;
	if (level == PFS_LEVEL_PMD)
		return 1;
	return lo->arch == PFS_ARCH_X86_64;
}

/* The !CONFIG_ARCH_HAS_PTE_SPECIAL half shared by every version:
 * returns 1 and sets a NULL verdict when the VMA rules decide, 0 to go on.
 * mixedmap_goto_out: 6.1's "goto out" skips the zero-pfn test (6.10+
 * tests it inside the MIXEDMAP branch). */
static int nospecial_vma_rules(const struct pfs_layout *lo, const struct pfs_vma *vma,
			       struct pfs_entry *e, int pfn_valid, int *mixedmap_out)
{
	*mixedmap_out = 0;
	if (!(vma->vm_flags & (PFS_VM_PFNMAP | PFS_VM_MIXEDMAP)))
		return 0;
	if (vma->vm_flags & PFS_VM_MIXEDMAP) {
		if (!pfn_valid) {
			verdict(e, 0, PFS_VNP_MIXEDMAP_INVALID);
			return 1;
		}
		*mixedmap_out = 1;
		return 0;
	}
	uint64_t off = (e->addr - vma->start) >> 12;
	if (e->pfn == vma->pgoff + off) {
		verdict(e, 0, PFS_VNP_LINEAR_PFNMAP);
		return 1;
	}
	if (!pfs_is_cow_mapping(vma->vm_flags)) {
		verdict(e, 0, PFS_VNP_PFNMAP_NOT_COW);
		return 1;
	}
	(void)lo;
	return 0;
}

/* The start of the special-bit path shared by vm_normal_page() (<= 6.17)
 * and __vm_normal_page() (6.18+): find_special_page/find_normal_page, then
 * PFNMAP, MIXEDMAP and the zero pfn each end with a verdict (returns 1). */
static int special_vma_rules(const struct pfs_layout *lo, const struct pfs_vma *vma,
			     struct pfs_entry *e, int pfn_valid)
{
	if (vma->vm_ops_find_special_page) {
		verdict(e, pfn_valid, PFS_VNP_FIND_SPECIAL_PAGE);
		return 1;
	}
	if (vma->vm_flags & PFS_VM_PFNMAP) {
		verdict(e, 0, PFS_VNP_PFNMAP);
		return 1;
	}
	if (vma->vm_flags & PFS_VM_MIXEDMAP) {
		verdict(e, 0, PFS_VNP_MIXEDMAP);
		return 1;
	}
	if (pfs_is_zero_pfn(lo, e->pfn)) {
		verdict(e, 0, PFS_VNP_ZERO_PFN);
		return 1;
	}
	return 0;
}

static unsigned version(const struct pfs_layout *lo)
{
	return lo->version_major * 1000u + lo->version_minor;
}

/* vm_normal_page(), <= 6.17 */
static void vnp_pte_legacy(const struct pfs_layout *lo, const struct pfs_vma *vma,
			   struct pfs_entry *e, int pfn_valid)
{
	if (lo->has_pte_special) {
		if (!(e->bits & PFS_E_SPECIAL))
			goto check_pfn;
		if (special_vma_rules(lo, vma, e, pfn_valid))
			return;
		if (pfs_layout_has(lo, devmap_bit) && (e->bits & PFS_E_DEVMAP)) {   /* pte_devmap() (asm/pgtable.h), <= 6.16 */
			verdict(e, 0, PFS_VNP_DEVMAP);
			return;
		}
		verdict(e, 0, PFS_VNP_BAD_SPECIAL);  /* print_bad_pte */
		return;
	}

	int mixed_out;
	if (nospecial_vma_rules(lo, vma, e, pfn_valid, &mixed_out))
		return;
	if (mixed_out) {
		/* 6.10 "mm/memory: ... zero pfn in MIXEDMAP" tests it here */
		if (version(lo) >= 6010 && pfs_is_zero_pfn(lo, e->pfn)) {
			verdict(e, 0, PFS_VNP_ZERO_PFN);
			return;
		}
		verdict(e, 1, PFS_VNP_NOT_SPECIAL);   /* goto out */
		return;
	}
	if (pfs_is_zero_pfn(lo, e->pfn)) {
		verdict(e, 0, PFS_VNP_ZERO_PFN);
		return;
	}
check_pfn:
	if (e->pfn > lo->highest_memmap_pfn) {
		verdict(e, 0, PFS_VNP_BEYOND_HIGHEST_MEMMAP);   /* print_bad_pte */
		return;
	}
	verdict(e, 1, PFS_VNP_NOT_SPECIAL);
}

/* vm_normal_page_pmd(), <= 6.17 (6.12: pmd_special first) */
static void vnp_pmd_legacy(const struct pfs_layout *lo, const struct pfs_vma *vma,
			   struct pfs_entry *e, int pfn_valid)
{
	if (lo->vnp_profile >= PFS_VNP_6_12 && (e->bits & PFS_E_SPECIAL)) {
		/* "Currently it's only used for huge pfnmaps" */
		verdict(e, 0, (vma->vm_flags & PFS_VM_PFNMAP) ? PFS_VNP_PFNMAP :
			      (vma->vm_flags & PFS_VM_MIXEDMAP) ? PFS_VNP_MIXEDMAP : PFS_VNP_PMD_NOT_NORMAL);
		return;
	}
	int mixed_out;
	if (nospecial_vma_rules(lo, vma, e, pfn_valid, &mixed_out))
		return;
	if (mixed_out) {
		verdict(e, 1, PFS_VNP_NOT_SPECIAL);
		return;
	}
	if (pfs_layout_has(lo, devmap_bit) && (e->bits & PFS_E_DEVMAP)) {   /* pmd_devmap() (asm/pgtable.h) */
		verdict(e, 0, PFS_VNP_DEVMAP);
		return;
	}
	if (pfs_layout_has(lo, huge_zero_pfn) && e->pfn == lo->huge_zero_pfn) {  /* is_huge_zero_pmd */
		verdict(e, 0, PFS_VNP_HUGE_ZERO);
		return;
	}
	if (e->pfn > lo->highest_memmap_pfn) {   /* silent: no print_bad_pte here */
		verdict(e, 0, PFS_VNP_BEYOND_HIGHEST_MEMMAP);
		return;
	}
	verdict(e, 1, PFS_VNP_NOT_SPECIAL);
}

/* __vm_normal_page(), 6.18+ */
static void vnp_6_18(const struct pfs_layout *lo, const struct pfs_vma *vma,
		     struct pfs_entry *e, int pfn_valid)
{
	if (special_at_level(lo, e->level)) {
		if (e->bits & PFS_E_SPECIAL) {
			if (special_vma_rules(lo, vma, e, pfn_valid))   /* find_normal_page first */
				return;
			if (pfs_is_huge_zero_pfn(lo, e->pfn)) {
				verdict(e, 0, PFS_VNP_HUGE_ZERO);
				return;
			}
			verdict(e, 0, PFS_VNP_BAD_SPECIAL);   /* print_bad_page_map */
			return;
		}
	} else {
		int mixed_out;
		if (nospecial_vma_rules(lo, vma, e, pfn_valid, &mixed_out))
			return;
		if (pfs_is_zero_pfn(lo, e->pfn)) {
			verdict(e, 0, PFS_VNP_ZERO_PFN);
			return;
		}
		if (pfs_is_huge_zero_pfn(lo, e->pfn)) {
			verdict(e, 0, PFS_VNP_HUGE_ZERO);
			return;
		}
	}
	if (e->pfn > lo->highest_memmap_pfn) {
		verdict(e, 0, PFS_VNP_BEYOND_HIGHEST_MEMMAP);   /* print_bad_page_map */
		return;
	}
	verdict(e, 1, PFS_VNP_NOT_SPECIAL);
}

void pfs_vnp(const struct pfs_layout *lo, const struct pfs_vma *vma, struct pfs_entry *e, int pfn_valid)
{
	if (e->kind != PFS_KIND_PRESENT && e->kind != PFS_KIND_PROTNONE) {
		verdict(e, 0, PFS_VNP_NOT_PRESENT);
		return;
	}
	/* hugetlb entries are handled by mm/hugetlb.c, never by vnp; the
	 * page is a refcounted hugetlb folio */
	if (vma->vm_flags & PFS_VM_HUGETLB) {
		verdict(e, e->pfn <= lo->highest_memmap_pfn, PFS_VNP_HUGETLB);
		return;
	}
	if (lo->vnp_profile >= PFS_VNP_6_18) {
		vnp_6_18(lo, vma, e, pfn_valid);
	} else if (e->level == PFS_LEVEL_PTE) {
		vnp_pte_legacy(lo, vma, e, pfn_valid);
	} else if (e->level == PFS_LEVEL_PMD) {
		vnp_pmd_legacy(lo, vma, e, pfn_valid);
	} else {
		verdict(e, 0, PFS_VNP_PMD_NOT_NORMAL);   /* no vm_normal_page_pud() */
	}
}

int pfs_vnp_is_bad_map(const struct pfs_layout *lo, const struct pfs_entry *e)
{
	if (e->vnp_reason == PFS_VNP_BAD_SPECIAL)
		return 1;
	if (e->vnp_reason != PFS_VNP_BEYOND_HIGHEST_MEMMAP)
		return 0;
	/* <= 6.17 vm_normal_page_pmd() returns NULL silently */
	return e->level == PFS_LEVEL_PTE || lo->vnp_profile >= PFS_VNP_6_18;
}
