/* SPDX-License-Identifier: MIT */
/*
 * x86-64 page-table entries (arch/x86/include/asm/pgtable_types.h,
 * pgtable.h, pgtable_64.h) and kernel virtual-address translation through
 * init_top_pgt.
 */
#include <string.h>
#include "pfnscope/arch.h"

#define X_P        (1ull << 0)   /* _PAGE_BIT_PRESENT */
#define X_RW       (1ull << 1)
#define X_USER     (1ull << 2)
#define X_PWT      (1ull << 3)
#define X_PCD      (1ull << 4)
#define X_A        (1ull << 5)
#define X_D        (1ull << 6)
#define X_PSE      (1ull << 7)   /* PAT on 4K ptes */
#define X_G        (1ull << 8)
#define X_PROTNONE X_G           /* _PAGE_BIT_PROTNONE = _PAGE_BIT_GLOBAL, only when !P */
#define X_SPECIAL  (1ull << 9)   /* _PAGE_BIT_SOFTW1 */
#define X_UFFD_WP  (1ull << 10)  /* _PAGE_BIT_SOFTW2 */
#define X_SOFT_DIRTY (1ull << 11)/* _PAGE_BIT_SOFTW3 */
#define X_PAT_LARGE (1ull << 12)
#define X_NX       (1ull << 63)
/* swap-format bits, pgtable_64.h / pgtable.h */
#define X_SWP_SOFT_DIRTY X_RW
#define X_SWP_UFFD_WP    X_USER
#define X_SWP_EXCLUSIVE  X_PWT
#define X_SWP_TYPE_BITS  5
#define X_SWP_OFFSET_SHIFT 14    /* SWP_OFFSET_FIRST_BIT (_PAGE_BIT_PROTNONE + 1) + SWP_TYPE_BITS */

/* __PHYSICAL_MASK_SHIFT 52; physical_mask also drops sme_me_mask */
/* the bits of a present entry that stand for themselves */
static const struct pfs_entry_bit x86_bits[] = {
	{ X_RW, PFS_E_WRITE },
	{ X_USER, PFS_E_USER },
	{ X_PWT, PFS_E_PWT },
	{ X_PCD, PFS_E_PCD },
	{ X_A, PFS_E_ACCESSED },
	{ X_D, PFS_E_DIRTY },
	/* pte_special(); pmd_special/pud_special (6.12+) use the same bit */
	{ X_SPECIAL, PFS_E_SPECIAL },
	{ X_UFFD_WP, PFS_E_UFFD_WP },
	{ X_SOFT_DIRTY, PFS_E_SOFT_DIRTY },
	{ X_NX, PFS_E_NX },
};

/* the bits a swap entry keeps: pte_swp_soft_dirty(), pte_swp_uffd_wp(),
 * pte_swp_exclusive() (arch/x86/include/asm/pgtable.h) */
static const struct pfs_entry_bit x86_swp_bits[] = {
	{ X_SWP_SOFT_DIRTY, PFS_E_SOFT_DIRTY },
	{ X_SWP_UFFD_WP, PFS_E_UFFD_WP },
	{ X_SWP_EXCLUSIVE, PFS_E_EXCLUSIVE },
};

static uint64_t phys_mask(const struct pfs_layout *lo)
{
	return ((1ull << 52) - 1) & ~lo->sme_mask;
}

/* pmd_present(): P | PROTNONE | PSE (a splitting THP has P clear, PSE set) */
static int upper_present(uint64_t v)
{
	return (v & (X_P | X_PROTNONE | X_PSE)) != 0;
}

static int x86_classify(const struct pfs_layout *lo, uint64_t raw, unsigned level, uint64_t *next_pa)
{
	/* pXd_none() ignores the A/D "KNL erratum" bits */
	if ((raw & ~(X_A | X_D)) == 0)
		return PFS_TE_NONE;
	if (level <= PFS_LEVEL_PUD) {
		/* pmd_trans_huge/pmd_devmap/pud_leaf: PSE; pmd_present non-PSE
		 * P=0 entries are swap-format (THP migration): decode them too */
		if (raw & X_PSE)
			return PFS_TE_LEAF;
		if (!(raw & X_P))
			return level == PFS_LEVEL_PMD ? PFS_TE_LEAF : PFS_TE_BAD;
	} else if (!(raw & X_P)) {
		return PFS_TE_BAD;   /* p4d_bad / pgd_bad: nothing the kernel walks */
	} else if (raw & X_PSE) {
		return PFS_TE_BAD;   /* no 512 GiB leaves */
	}
	*next_pa = raw & phys_mask(lo) & ~0xfffull;
	return PFS_TE_TABLE;
}

static void x86_decode(const struct pfs_layout *lo, uint64_t v, unsigned level, struct pfs_entry *e)
{
	int huge = level >= PFS_LEVEL_PMD;

	pfs_decode_start(e, v, level);

	if ((v & ~(X_A | X_D)) == 0) {          /* pte_none */
		e->kind = PFS_KIND_NONE;
		return;
	}
	int present = huge ? upper_present(v) : (v & (X_P | X_PROTNONE)) != 0;
	if (!present) {
		/* __pte_to_swp_entry: type = v >> 59, offset = ~v << 5 >> 14
		 * (the offset is stored inverted: L1TF, pgtable_64.h) */
		unsigned type = (unsigned)(v >> (64 - X_SWP_TYPE_BITS));
		uint64_t offset = (~v << X_SWP_TYPE_BITS) >> X_SWP_OFFSET_SHIFT;
		e->bits |= pfs_decode_bits(v, x86_swp_bits, PFS_ENTRY_BITS_N(x86_swp_bits));
		pfs_decode_swp(lo, type, offset, e);
		return;
	}

	/* pte_protnone / pmd_protnone: PROTNONE set, PRESENT clear */
	e->kind = (v & (X_P | X_PROTNONE)) == X_PROTNONE ? PFS_KIND_PROTNONE : PFS_KIND_PRESENT;

	/* protnone_mask(): __pte_needs_invert(v) = v && !(v & _PAGE_PRESENT) */
	uint64_t inv = (v & X_P) ? 0 : ~0ull;
	uint64_t mask = phys_mask(lo) & ~0xfffull;
	int leaf = huge && (v & X_PSE);
	if (leaf)       /* pmd_pfn_mask / pud_pfn_mask: PHYSICAL_PMD/PUD_PAGE_MASK */
		mask &= ~((1ull << pfs_level_shift(level)) - 1);
	e->pfn = ((v ^ inv) & mask) >> 12;

	if (leaf)
		e->bits |= PFS_E_LEAF;
	e->bits |= pfs_decode_bits(v, x86_bits, PFS_ENTRY_BITS_N(x86_bits));
	if ((v & X_G) && (v & X_P))
		e->bits |= PFS_E_GLOBAL;
	if (leaf ? (v & X_PAT_LARGE) : (v & X_PSE))
		e->bits |= PFS_E_PAT;
	if (pfs_layout_has(lo, devmap_bit) && (v & (1ull << lo->devmap_bit)))
		e->bits |= PFS_E_DEVMAP;
	/* pte_dirty(): _PAGE_DIRTY_BITS = DIRTY | SAVED_DIRTY (6.6+) */
	if (pfs_layout_has(lo, saved_dirty_bit) && (v & (1ull << lo->saved_dirty_bit)))
		e->bits |= PFS_E_SAVED_DIRTY | PFS_E_DIRTY;
}

/* pte_pfn(): bits 12-51 of a present pte (not inverted: only a pte
 * without _PAGE_PRESENT is, protnone_mask()), minus the SME C-bit */
static uint64_t x86_pte_pfn_mask(const struct pfs_layout *lo)
{
	return phys_mask(lo) & ~0xfffull;
}

/*
 * Kernel virtual -> physical (the steps of pfs_kvirt_to_phys): init_top_pgt
 * is itself a kernel-image address, so its PA is va - __START_KERNEL_map +
 * phys_base (__pa_symbol); then the ordinary 4/5-level walk with 1 GiB /
 * 2 MiB leaves (pud_leaf(), pmd_leaf(): _PAGE_PSE).
 */
static int x86_kvirt_root(struct pfs_target *t, uint64_t va, uint64_t *table, unsigned *top)
{
	const struct pfs_layout *lo = t->lo;

	if (!lo->init_top_pgt || lo->init_top_pgt < lo->start_kernel_map)
		return pfs_target_fail(t, PFS_ELAYOUT, "init_top_pgt", va);
	*table = lo->init_top_pgt - lo->start_kernel_map + lo->phys_base;
	*top = pfs_top_level(lo);
	return 0;
}

static enum pfs_kvirt_step x86_kvirt_step(const struct pfs_layout *lo, uint64_t raw,
					  unsigned level, uint64_t *next)
{
	if (!(raw & X_P))
		return PFS_KVIRT_NOT_MAPPED;
	*next = raw & phys_mask(lo);
	if (level == PFS_LEVEL_PTE || (level <= PFS_LEVEL_PUD && (raw & X_PSE)))
		return PFS_KVIRT_LEAF;
	return PFS_KVIRT_TABLE;
}

const struct pfs_arch_ops pfs_arch_x86_64 = {
	.name = "x86_64",
	.classify = x86_classify,
	.decode = x86_decode,
	.pte_pfn_mask = x86_pte_pfn_mask,
	.kvirt_root = x86_kvirt_root,
	.kvirt_step = x86_kvirt_step,
};
