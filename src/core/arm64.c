/* SPDX-License-Identifier: MIT */
/*
 * arm64, 4 KiB granule: 48-bit VA (4 levels) and 52-bit VA with FEAT_LPA2
 * (5 levels, commit 9684ec186f8f ("arm64: Enable LPA2 at boot if supported
 * by the system") (in v6.9)):
 * arch/arm64/include/asm/pgtable-hwdef.h, pgtable-prot.h, pgtable.h,
 * memory.h.  lo->va_bits is the size the CPU runs (vabits_actual, 64 -
 * TCR_EL1.T1SZ): a 52-bit kernel on a CPU without LPA2 runs 48-bit VAs, 4
 * levels and the 48-bit descriptor format.  What remains is listed at the end.
 */
#include "pfnscope/arch.h"

#define A_VALID   (1ull << 0)
#define A_TABLE   (1ull << 1)   /* PTE_TABLE_BIT: table at L0-L2, page at L3 */
#define A_USER    (1ull << 6)   /* AP[1] */
#define A_RDONLY  (1ull << 7)   /* AP[2] */
#define A_AF      (1ull << 10)
#define A_NG      (1ull << 11)  /* 6.10+: also PTE_PRESENT_INVALID when !VALID */
#define A_DBM     (1ull << 51)  /* PTE_WRITE */
#define A_CONT    (1ull << 52)  /* PTE_CONT */
#define A_PXN     (1ull << 53)
#define A_UXN     (1ull << 54)
#define A_DIRTY   (1ull << 55)  /* software dirty */
#define A_SPECIAL (1ull << 56)
#define A_BIT58   (1ull << 58)  /* PTE_PROT_NONE <= 6.9, PTE_UFFD_WP 6.10+ */
#define A_ADDR    0x0000fffffffff000ull  /* PTE_ADDR_LOW, 48-bit PA */
#define A_ADDR_LPA2 0x0003fffffffff000ull /* LPA2: OA[49:12] in bits 49:12 */
#define A_SWP_EXCLUSIVE (1ull << 2)
#define A_SWP_UFFD_WP   (1ull << 3)     /* 6.10+ */

/* the bits of a valid entry that stand for themselves */
static const struct pfs_entry_bit arm64_bits[] = {
	{ A_DBM, PFS_E_WRITE },
	{ A_USER, PFS_E_USER },
	{ A_AF, PFS_E_ACCESSED },
	{ A_UXN, PFS_E_NX },
	{ A_SPECIAL, PFS_E_SPECIAL },
	/* PTE_CONT (pgtable-hwdef.h): one of CONT_PTES = 16 naturally aligned
	 * entries that map 64 KiB of contiguous, aligned pfns with the same
	 * attributes (CONT_PMDS for hugetlb blocks); each entry still holds its
	 * own output address, so the entry's pfn is its own page's.  User ptes
	 * get it since v6.9 ("arm64/mm: Wire up PTE_CONT for user mappings"):
	 * contpte_set_ptes() folds a fully mapped aligned large folio. */
	{ A_CONT, PFS_E_CONT },
};

/*
 * Output (or next-table) address of a descriptor.  With LPA2 (TCR_EL1.DS,
 * only when the kernel runs 52-bit VAs with 4 KiB pages) OA[51:50] sit in
 * descriptor bits 9:8, where the 48-bit format keeps the shareability field
 * (pgtable-hwdef.h PTE_ADDR_HIGH / PTE_ADDR_HIGH_SHIFT, __pte_to_phys()).
 */
static uint64_t arm64_oa(const struct pfs_layout *lo, uint64_t v)
{
	if (lo->va_bits == 52)
		return (v & A_ADDR_LPA2) | (((v >> 8) & 3ull) << 50);
	return v & A_ADDR;
}

/* __pte_to_phys(): the output address's bits from 12 up are the pte's own
 * bits 12-47 (12-49 with LPA2, whose bits 50-51 sit in bits 8-9) */
static uint64_t arm64_pte_pfn_mask(const struct pfs_layout *lo)
{
	return lo->va_bits == 52 ? A_ADDR_LPA2 : A_ADDR;
}

static int new_format(const struct pfs_layout *lo)
{
	/* 6.10 "arm64/mm: Move PTE_PROT_NONE bit" (PTE_PRESENT_INVALID = nG)
	 * and uffd-wp support moved the swap type from bits 3-7 to 6-10. */
	return lo->version_major > 6 || (lo->version_major == 6 && lo->version_minor >= 10);
}

/* the "present but invalid" marker: PROT_NONE (<= 6.9) or PRESENT_INVALID */
static uint64_t invalid_present_bit(const struct pfs_layout *lo)
{
	return new_format(lo) ? A_NG : A_BIT58;
}

static int arm64_present(const struct pfs_layout *lo, uint64_t v)
{
	return (v & A_VALID) || (v & invalid_present_bit(lo));
}

/*
 * pmd_present() <= 6.9 also holds for a pmd that pmdp_invalidate() cleared
 * PMD_SECT_VALID on (THP split/migration): PMD_PRESENT_INVALID, bit 59
 * (arch/arm64/include/asm/pgtable.h, "arm64/mm: Enable THP migration",
 * v5.8); 6.10 folded it into PTE_PRESENT_INVALID (nG) for every level.
 */
#define A_PMD_PRESENT_INVALID (1ull << 59)
static int arm64_present_level(const struct pfs_layout *lo, uint64_t v, unsigned level)
{
	if (level == PFS_LEVEL_PMD && !new_format(lo) && !(v & A_VALID) && (v & A_PMD_PRESENT_INVALID))
		return 1;
	return arm64_present(lo, v);
}

static int arm64_classify(const struct pfs_layout *lo, uint64_t raw, unsigned level, uint64_t *next_pa)
{
	if (raw == 0)
		return PFS_TE_NONE;
	if ((raw & (A_VALID | A_TABLE)) == (A_VALID | A_TABLE)) {
		*next_pa = arm64_oa(lo, raw);
		return PFS_TE_TABLE;
	}
	/* a block (0b01) at L1/L2, or a non-present pmd (THP migration) */
	if (level <= PFS_LEVEL_PUD && ((raw & A_VALID) || level == PFS_LEVEL_PMD || arm64_present(lo, raw)))
		return PFS_TE_LEAF;
	return PFS_TE_BAD;
}

static void arm64_decode(const struct pfs_layout *lo, uint64_t v, unsigned level, struct pfs_entry *e)
{
	pfs_decode_start(e, v, level);

	if (v == 0) {
		e->kind = PFS_KIND_NONE;
		return;
	}
	if (!arm64_present_level(lo, v, level)) {
		/* __swp_type/__swp_offset: type 5 bits at __SWP_TYPE_SHIFT 3 and
		 * 50 offset bits from 8 (<= 6.9); 6.10+: type at 6, bit 11
		 * PTE_PRESENT_INVALID, offset from __SWP_OFFSET_SHIFT 12 */
		unsigned tshift = new_format(lo) ? 6 : 3;
		unsigned oshift = new_format(lo) ? 12 : 8;
		unsigned type = (unsigned)((v >> tshift) & 0x1f);
		uint64_t offset = (v >> oshift) & ((1ull << 50) - 1);
		if (v & A_SWP_EXCLUSIVE)
			e->bits |= PFS_E_EXCLUSIVE;
		if (new_format(lo) && (v & A_SWP_UFFD_WP))
			e->bits |= PFS_E_UFFD_WP;
		pfs_decode_swp(lo, type, offset, e);
		return;
	}
	/* valid, or a pmd only invalidated for a split (<= 6.9): present;
	 * PROT_NONE / PRESENT_INVALID otherwise */
	e->kind = (v & A_VALID) || !(v & invalid_present_bit(lo)) ? PFS_KIND_PRESENT : PFS_KIND_PROTNONE;
	int leaf = level >= PFS_LEVEL_PMD;
	uint64_t pa = arm64_oa(lo, v);
	if (leaf) {
		pa &= ~((1ull << pfs_level_shift(level)) - 1);
		e->bits |= PFS_E_LEAF;
	}
	e->pfn = pa >> 12;
	e->bits |= pfs_decode_bits(v, arm64_bits, PFS_ENTRY_BITS_N(arm64_bits));
	/* pte_dirty(): software dirty, or hardware dirty (DBM && !RDONLY) */
	if ((v & A_DIRTY) || ((v & A_DBM) && !(v & A_RDONLY)))
		e->bits |= PFS_E_DIRTY;
	if (!(v & A_NG) && (v & A_VALID))
		e->bits |= PFS_E_GLOBAL;
	if (pfs_layout_has(lo, devmap_bit) && (v & (1ull << lo->devmap_bit)))
		e->bits |= PFS_E_DEVMAP;
	if (new_format(lo) && (v & A_BIT58))
		e->bits |= PFS_E_UFFD_WP;
	(void)A_PXN;
}

/*
 * Kernel virtual -> physical through swapper_pg_dir (TTBR1_EL1), 4 KiB
 * granule: with 48-bit VAs four levels (Arm ARM lookup levels 0-3 = our
 * P4D/PUD/PMD/PTE, 9 VA bits each from bit 12, so the indexing is the
 * same as x86-64's 4-level walk), with LPA2's 52-bit VAs a fifth (level
 * -1 = our PGD, 16 entries).  Descriptors, pgtable-hwdef.h:
 *   bits[1:0] 0b11  PUD_TYPE_TABLE / PMD_TYPE_TABLE at levels 0-2,
 *                   PTE_TYPE_PAGE at level 3;
 *   bits[1:0] 0b01  PUD_TYPE_SECT / PMD_TYPE_SECT: a 1 GiB (level 1) or
 *                   2 MiB (level 2) block; reserved (invalid) at level 3,
 *                   and at level 0 without FEAT_LPA2;
 *   bit 0 clear     invalid: translation fault;
 * output address bits[47:12] (PTE_ADDR_LOW), aligned down to the block
 * size for blocks, and with LPA2 OA[51:50] in bits[9:8] (arm64_oa());
 * FEAT_LPA's PTE_ADDR_HIGH bits[15:12] with 64K pages are not decoded.
 *
 * swapper_pg_dir's own PA, arch/arm64/include/asm/memory.h
 * __virt_to_phys_nodebug(): a linear-map address
 * (__is_lm_address: va - PAGE_OFFSET < PAGE_END - PAGE_OFFSET, PAGE_END =
 * PAGE_OFFSET + 2^(VA_BITS - 1) with VA_BITS_MIN = VA_BITS = 48) is
 * __lm_to_phys = va - PAGE_OFFSET + PHYS_OFFSET, anything else
 * __kimg_to_phys = va - kimage_voffset (swapper_pg_dir is a kernel-image
 * symbol, so this is __pa_symbol()).  5.4 .. 5.10 tested the bit
 * VA_BITS - 1 instead: the same set of TTBR1 addresses at 48 bits.
 * pfs_kvirt_to_phys() (kvirt.c) caches the translations, for every arch.
 */
#define A_TYPE_MASK  3ull
#define A_TYPE_BLOCK 1ull   /* PMD_TYPE_SECT / PUD_TYPE_SECT */
#define A_TYPE_TABLE 3ull   /* PMD_TYPE_TABLE / PTE_TYPE_PAGE */

static int arm64_va_to_pa_lm_or_kimg(const struct pfs_layout *lo, uint64_t va, uint64_t *pa)
{
	/* __is_lm_address(): va - PAGE_OFFSET < PAGE_END - PAGE_OFFSET, with
	 * PAGE_OFFSET = -(1 << VA_BITS) the configured size and PAGE_END =
	 * -(1 << (VA_BITS_MIN - 1)), VA_BITS_MIN = 48 for 48- and 52-bit
	 * kernels: 2^47 bytes at 48 bits, 2^52 - 2^47 at 52 */
	uint64_t lm_size = lo->page_offset_base >= 0 - (1ull << 48) ? 1ull << 47
			   : (0 - (1ull << 47)) - lo->page_offset_base;
	if (lo->page_offset_base && va - lo->page_offset_base < lm_size) {
		if (!pfs_layout_has(lo, phys_offset))
			return -1;
		*pa = va - lo->page_offset_base + lo->phys_offset;
		return 0;
	}
	if (!lo->kimage_voffset || va < lo->kimage_voffset)
		return -1;
	*pa = va - lo->kimage_voffset;
	return 0;
}

/* Kernel virtual -> physical (the steps of pfs_kvirt_to_phys): the root
 * is swapper_pg_dir, a kernel-image address; TTBR1 covers only the top of
 * the address space. */
static int arm64_kvirt_root(struct pfs_target *t, uint64_t va, uint64_t *table, unsigned *top)
{
	const struct pfs_layout *lo = t->lo;

	if (!((lo->va_bits == 48 && lo->pgtable_levels == 4) ||
	      (lo->va_bits == 52 && lo->pgtable_levels == 5)))
		return pfs_target_fail(t, PFS_ELAYOUT, "arm64: only 4K pages with 48-bit or 52-bit (LPA2) VA", va);
	if (!lo->init_top_pgt || arm64_va_to_pa_lm_or_kimg(lo, lo->init_top_pgt, table))
		return pfs_target_fail(t, PFS_ELAYOUT, "swapper_pg_dir", va);
	/* TTBR1 covers [2^64 - 2^va_bits, 2^64): bits 63..va_bits all ones (no
	 * TBI1 pointer tags: KASAN_SW/HW_TAGS addresses are not reset) */
	if ((va >> lo->va_bits) != (UINT64_MAX >> lo->va_bits))
		return pfs_target_fail(t, PFS_EFAULT, "not a kernel (TTBR1) address", va);
	/* at most five reads: a table that points to itself or an ancestor
	 * ends at level 3 like the hardware walk, it cannot loop.  With LPA2
	 * the top table is at level -1 (PGDIR_SHIFT 48) and has 16 entries:
	 * pfs_kvirt_to_phys sizes it from va_bits. */
	*top = lo->pgtable_levels == 5 ? PFS_LEVEL_PGD : PFS_LEVEL_P4D;
	return 0;
}

static enum pfs_kvirt_step arm64_kvirt_step(const struct pfs_layout *lo, uint64_t raw,
					    unsigned level, uint64_t *next)
{
	if (!(raw & A_VALID))
		return PFS_KVIRT_NOT_MAPPED;
	uint64_t type = raw & A_TYPE_MASK;
	int block = type == A_TYPE_BLOCK && (level == PFS_LEVEL_PMD || level == PFS_LEVEL_PUD);
	if (type == A_TYPE_BLOCK && !block)   /* reserved at level 3 (and level 0 w/o LPA2) */
		return PFS_KVIRT_INVALID;
	*next = arm64_oa(lo, raw);
	return level == PFS_LEVEL_PTE || block ? PFS_KVIRT_LEAF : PFS_KVIRT_TABLE;
}

/*
 * Not done for arm64 yet (x86-64 is complete):
 *  - 16K/64K granules, 3-level (VA_BITS 39) tables, 64K FEAT_LPA 52-bit
 *    PAs: kernel translation refuses them (PFS_ELAYOUT);
 *  - pointer tags (TBI1, KASAN_SW_TAGS/HW_TAGS) on kernel addresses;
 *  - MAIR AttrIndx cache attributes (no PWT/PCD/PAT equivalent decoded),
 *    MTE / BTI VMA flags.
 */
const struct pfs_arch_ops pfs_arch_arm64 = {
	.name = "arm64",
	.classify = arm64_classify,
	.decode = arm64_decode,
	.pte_pfn_mask = arm64_pte_pfn_mask,
	.kvirt_root = arm64_kvirt_root,
	.kvirt_step = arm64_kvirt_step,
};
