/* SPDX-License-Identifier: MIT */
/*
 * arm64, 4 KiB granule, 48-bit VA (4 levels): arch/arm64/include/asm/
 * pgtable-hwdef.h, pgtable-prot.h, pgtable.h.  Entry decode and walking
 * are complete for that configuration; what remains is listed at the end.
 */
#include "pfnscope/arch.h"

#define A_VALID   (1ull << 0)
#define A_TABLE   (1ull << 1)   /* PTE_TABLE_BIT: table at L0-L2, page at L3 */
#define A_USER    (1ull << 6)   /* AP[1] */
#define A_RDONLY  (1ull << 7)   /* AP[2] */
#define A_AF      (1ull << 10)
#define A_NG      (1ull << 11)  /* 6.10+: also PTE_PRESENT_INVALID when !VALID */
#define A_DBM     (1ull << 51)  /* PTE_WRITE */
#define A_PXN     (1ull << 53)
#define A_UXN     (1ull << 54)
#define A_DIRTY   (1ull << 55)  /* software dirty */
#define A_SPECIAL (1ull << 56)
#define A_BIT58   (1ull << 58)  /* PTE_PROT_NONE <= 6.9, PTE_UFFD_WP 6.10+ */
#define A_ADDR    0x0000fffffffff000ull  /* PTE_ADDR_LOW, 48-bit PA */
#define A_SWP_EXCLUSIVE (1ull << 2)
#define A_SWP_UFFD_WP   (1ull << 3)     /* 6.10+ */

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

static int arm64_classify(const struct pfs_layout *lo, uint64_t raw, unsigned level, uint64_t *next_pa)
{
	if (raw == 0)
		return PFS_TE_NONE;
	if ((raw & (A_VALID | A_TABLE)) == (A_VALID | A_TABLE)) {
		*next_pa = raw & A_ADDR;
		return PFS_TE_TABLE;
	}
	/* a block (0b01) at L1/L2, or a non-present pmd (THP migration) */
	if (level <= PFS_LEVEL_PUD && ((raw & A_VALID) || level == PFS_LEVEL_PMD || arm64_present(lo, raw)))
		return PFS_TE_LEAF;
	return PFS_TE_BAD;
}

static void arm64_decode(const struct pfs_layout *lo, uint64_t v, unsigned level, struct pfs_entry *e)
{
	e->raw = v;
	e->level = (uint8_t)level;
	e->bits = 0;
	e->pfn = PFS_NO_PFN;
	e->swp_type = 0;
	e->swp_offset = 0;

	if (v == 0) {
		e->kind = PFS_KIND_NONE;
		return;
	}
	if (!arm64_present(lo, v)) {
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
	e->kind = (v & A_VALID) ? PFS_KIND_PRESENT : PFS_KIND_PROTNONE;
	int leaf = level >= PFS_LEVEL_PMD;
	uint64_t mask = A_ADDR;
	if (leaf) {
		mask &= ~((1ull << pfs_level_shift(level)) - 1);
		e->bits |= PFS_E_LEAF;
	}
	e->pfn = (v & mask) >> 12;
	if (v & A_DBM)
		e->bits |= PFS_E_WRITE;
	if (v & A_USER)
		e->bits |= PFS_E_USER;
	if (v & A_AF)
		e->bits |= PFS_E_ACCESSED;
	/* pte_dirty(): software dirty, or hardware dirty (DBM && !RDONLY) */
	if ((v & A_DIRTY) || ((v & A_DBM) && !(v & A_RDONLY)))
		e->bits |= PFS_E_DIRTY;
	if (!(v & A_NG) && (v & A_VALID))
		e->bits |= PFS_E_GLOBAL;
	if (v & A_UXN)
		e->bits |= PFS_E_NX;
	if (v & A_SPECIAL)
		e->bits |= PFS_E_SPECIAL;
	if (lo->devmap_bit > 0 && (v & (1ull << lo->devmap_bit)))
		e->bits |= PFS_E_DEVMAP;
	if (new_format(lo) && (v & A_BIT58))
		e->bits |= PFS_E_UFFD_WP;
	(void)A_PXN;
}

/*
 * Not done for arm64 yet (x86-64 is complete):
 *  - kernel virtual translation through swapper_pg_dir (TTBR1, VA_BITS,
 *    kimage_voffset): returns PFS_ELAYOUT;
 *  - 16K/64K granules, 52-bit VA/PA (LPA/LPA2 address bits), 3-level tables;
 *  - contiguous-bit (PTE_CONT) runs, MAIR AttrIndx cache attributes (no
 *    PWT/PCD/PAT equivalent decoded), MTE / BTI VMA flags.
 */
static int arm64_kvirt_to_phys(struct pfs_target *t, uint64_t va, uint64_t *pa, uint64_t *run)
{
	(void)pa;
	(void)run;
	return pfs_target_fail(t, PFS_ELAYOUT, "arm64 kernel translation not implemented", va);
}

const struct pfs_arch_ops pfs_arch_arm64 = {
	.name = "arm64",
	.classify = arm64_classify,
	.decode = arm64_decode,
	.kvirt_to_phys = arm64_kvirt_to_phys,
};
