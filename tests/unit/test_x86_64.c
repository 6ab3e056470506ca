/* SPDX-License-Identifier: MIT */
/* x86-64 and arm64 entry decode (x86_64.c, arm64.c, swapops.c) */
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "pfnscope/arch.h"

static struct pfs_entry dec(const struct pfs_layout *lo, uint64_t raw, unsigned level)
{
	struct pfs_entry e;
	memset(&e, 0xa5, sizeof(e));
	pfs_decode_entry(lo, raw, level, &e);
	return e;
}

static void lay(struct pfs_layout *lo, unsigned maj, unsigned min)
{
	pfs_layout_init(lo);
	pfs_layout_set_version(lo, maj, min, 0);
	lo->max_physmem_bits = 46;
}

/* arch __swp_entry + __swp_entry_to_pte for x86-64: type in 59..63, the
 * offset stored inverted from bit 9 */
static uint64_t x86_swp(unsigned type, uint64_t offset)
{
	return ((uint64_t)type << 59) | ((~offset << 14) >> 5);
}

TEST(x86_decode_none_and_present_bits)
{
	struct pfs_layout lo;
	lay(&lo, 6, 1);
	struct pfs_entry e = dec(&lo, 0, PFS_LEVEL_PTE);
	CHECK_EQ(e.kind, PFS_KIND_NONE);
	CHECK_EQ(e.pfn, PFS_NO_PFN);
	/* A/D only: still pte_none (KNL erratum) */
	e = dec(&lo, MOCK_A | MOCK_D, PFS_LEVEL_PTE);
	CHECK_EQ(e.kind, PFS_KIND_NONE);

	e = dec(&lo, MOCK_PTE(0x12345, MOCK_USER_PTE | MOCK_SPECIAL | MOCK_NX), PFS_LEVEL_PTE);
	CHECK_EQ(e.kind, PFS_KIND_PRESENT);
	CHECK_EQ(e.pfn, 0x12345);
	CHECK_EQ(e.bits, PFS_E_SPECIAL | PFS_E_WRITE | PFS_E_USER | PFS_E_ACCESSED | PFS_E_DIRTY | PFS_E_NX);
	CHECK_EQ(e.level, PFS_LEVEL_PTE);

	e = dec(&lo, MOCK_PTE(1, MOCK_P | MOCK_PWT | MOCK_PCD | MOCK_PSE | MOCK_G | MOCK_UFFD_WP | MOCK_SOFT_DIRTY),
		PFS_LEVEL_PTE);
	CHECK_EQ(e.bits, PFS_E_PWT | PFS_E_PCD | PFS_E_PAT | PFS_E_GLOBAL | PFS_E_UFFD_WP | PFS_E_SOFT_DIRTY);
	/* read-only */
	e = dec(&lo, MOCK_PTE(1, MOCK_P | MOCK_US), PFS_LEVEL_PTE);
	CHECK_EQ(e.bits, PFS_E_USER);
}

TEST(x86_decode_devmap_per_version)
{
	struct pfs_layout lo;
	lay(&lo, 6, 1);
	CHECK(dec(&lo, MOCK_PTE(1, MOCK_P) | (1ull << 58), 0).bits & PFS_E_DEVMAP);
	CHECK(!(dec(&lo, MOCK_PTE(1, MOCK_P) | (1ull << 57), 0).bits & PFS_E_DEVMAP));
	lay(&lo, 6, 6);
	CHECK(dec(&lo, MOCK_PTE(1, MOCK_P) | (1ull << 57), 0).bits & PFS_E_DEVMAP);
	struct pfs_entry e = dec(&lo, MOCK_PTE(1, MOCK_P) | (1ull << 58), 0);
	CHECK_EQ(e.bits, PFS_E_SAVED_DIRTY | PFS_E_DIRTY);
	lay(&lo, 6, 17);
	CHECK_EQ(dec(&lo, MOCK_PTE(1, MOCK_P) | (1ull << 57), 0).bits, 0);
}

TEST(x86_decode_protnone_inverted_pfn)
{
	struct pfs_layout lo;
	lay(&lo, 6, 1);
	/* pte_modify to PROT_NONE: P cleared, PROTNONE set, pfn inverted
	 * (protnone_mask / flip_protnone_guard) */
	uint64_t pfn = 0x1234;
	uint64_t mask = ((1ull << 52) - 1) & ~0xfffull;
	uint64_t raw = ((~(pfn << 12)) & mask) | MOCK_PROTNONE | MOCK_US | MOCK_A | MOCK_SPECIAL;
	struct pfs_entry e = dec(&lo, raw, PFS_LEVEL_PTE);
	CHECK_EQ(e.kind, PFS_KIND_PROTNONE);
	CHECK_EQ(e.pfn, pfn);
	CHECK(e.bits & PFS_E_SPECIAL);
	CHECK(!(e.bits & PFS_E_GLOBAL));
	/* protnone pmd leaf */
	raw = ((~(0x200ull << 12)) & mask & ~((1ull << 21) - 1)) | MOCK_PROTNONE | MOCK_PSE | MOCK_US;
	e = dec(&lo, raw, PFS_LEVEL_PMD);
	CHECK_EQ(e.kind, PFS_KIND_PROTNONE);
	CHECK_EQ(e.pfn, 0x200);
	CHECK(e.bits & PFS_E_LEAF);
}

TEST(x86_decode_sme_mask_removed)
{
	struct pfs_layout lo;
	lay(&lo, 6, 1);
	lo.sme_mask = 1ull << 47;
	struct pfs_entry e = dec(&lo, MOCK_PTE(0x1234, MOCK_P) | (1ull << 47), PFS_LEVEL_PTE);
	CHECK_EQ(e.pfn, 0x1234);
	lo.sme_mask = 0;
	e = dec(&lo, MOCK_PTE(0x1234, MOCK_P) | (1ull << 47), PFS_LEVEL_PTE);
	CHECK_EQ(e.pfn, 0x1234 | (1ull << 35));
}

TEST(x86_decode_huge_leaves)
{
	struct pfs_layout lo;
	lay(&lo, 6, 12);
	/* 2 MiB leaf: pfn from bit 21, PAT is bit 12 */
	struct pfs_entry e = dec(&lo, (0x40000000ull) | (1ull << 12) | MOCK_PSE | MOCK_USER_PTE | MOCK_SPECIAL,
				 PFS_LEVEL_PMD);
	CHECK_EQ(e.kind, PFS_KIND_PRESENT);
	CHECK_EQ(e.pfn, 0x40000);
	CHECK_EQ(e.bits & (PFS_E_LEAF | PFS_E_PAT | PFS_E_SPECIAL), PFS_E_LEAF | PFS_E_PAT | PFS_E_SPECIAL);
	/* 1 GiB leaf: bits 21..29 are not pfn bits */
	e = dec(&lo, (3ull << 30) | (5ull << 21) | MOCK_PSE | MOCK_P, PFS_LEVEL_PUD);
	CHECK_EQ(e.pfn, (3ull << 30) >> 12);
	CHECK(e.bits & PFS_E_LEAF);
	CHECK(!(e.bits & PFS_E_PAT));
	/* splitting THP: P clear, PSE set: pmd_present() */
	e = dec(&lo, (0x200000ull) | MOCK_PSE | MOCK_US, PFS_LEVEL_PMD);
	CHECK_EQ(e.kind, PFS_KIND_PRESENT);
	/* classify */
	uint64_t next = 0;
	const struct pfs_arch_ops *ops = pfs_arch_get(&lo);
	CHECK_EQ(ops->classify(&lo, 0, PFS_LEVEL_PMD, &next), PFS_TE_NONE);
	CHECK_EQ(ops->classify(&lo, MOCK_A, PFS_LEVEL_PUD, &next), PFS_TE_NONE);
	CHECK_EQ(ops->classify(&lo, 0x5000 | 0x67, PFS_LEVEL_PMD, &next), PFS_TE_TABLE);
	CHECK_EQ(next, 0x5000);
	CHECK_EQ(ops->classify(&lo, 0x200000 | 0xe7, PFS_LEVEL_PMD, &next), PFS_TE_LEAF);
	CHECK_EQ(ops->classify(&lo, 0x40000000 | 0xe7, PFS_LEVEL_PUD, &next), PFS_TE_LEAF);
	CHECK_EQ(ops->classify(&lo, 0x5000 | 0xe7, PFS_LEVEL_P4D, &next), PFS_TE_BAD);
	CHECK_EQ(ops->classify(&lo, 0x5000 | 0x66, PFS_LEVEL_PGD, &next), PFS_TE_BAD);
	CHECK_EQ(ops->classify(&lo, 0x5000 | 0x66, PFS_LEVEL_PUD, &next), PFS_TE_BAD);
	/* THP migration entry at pmd level is decoded */
	CHECK_EQ(ops->classify(&lo, x86_swp(24, 0x1000), PFS_LEVEL_PMD, &next), PFS_TE_LEAF);
}

TEST(x86_decode_swap_entries_6_1)
{
	struct pfs_layout lo;
	lay(&lo, 6, 1);
	/* an ordinary swap entry: type 1, offset 0x12345 */
	uint64_t raw = x86_swp(1, 0x12345);
	struct pfs_entry e = dec(&lo, raw, PFS_LEVEL_PTE);
	CHECK_EQ(e.kind, PFS_KIND_SWAP);
	CHECK_EQ(e.swp_type, 1);
	CHECK_EQ(e.swp_offset, 0x12345);
	CHECK_EQ(e.pfn, PFS_NO_PFN);
	/* swp soft-dirty / uffd-wp / exclusive bits 1, 2, 3 */
	e = dec(&lo, raw | 2 | 4 | 8, PFS_LEVEL_PTE);
	CHECK_EQ(e.bits, PFS_E_SOFT_DIRTY | PFS_E_UFFD_WP | PFS_E_EXCLUSIVE);
	CHECK_EQ(e.swp_offset, 0x12345);

	static const struct { unsigned type; unsigned kind; uint32_t bits; } c[] = {
		{ 22, PFS_KIND_HWPOISON, 0 },
		{ 23, PFS_KIND_MIGRATION, 0 },
		{ 24, PFS_KIND_MIGRATION, PFS_E_EXCLUSIVE },
		{ 25, PFS_KIND_MIGRATION, PFS_E_WRITE },
		{ 26, PFS_KIND_DEVICE, PFS_E_WRITE },
		{ 27, PFS_KIND_DEVICE, 0 },
		{ 28, PFS_KIND_DEVICE, PFS_E_WRITE | PFS_E_EXCLUSIVE },
		{ 29, PFS_KIND_DEVICE, PFS_E_EXCLUSIVE },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		e = dec(&lo, x86_swp(c[i].type, 0x4321), PFS_LEVEL_PTE);
		CHECK_EQ(e.kind, c[i].kind);
		CHECK_EQ(e.bits, c[i].bits);
		CHECK_EQ(e.pfn, 0x4321);
		CHECK_EQ(e.swp_type, c[i].type);
	}
	/* migration young/dirty above SWP_PFN_BITS (34 with 46-bit phys) */
	e = dec(&lo, x86_swp(25, 0x4321 | (1ull << 34) | (1ull << 35)), PFS_LEVEL_PTE);
	CHECK_EQ(e.pfn, 0x4321);
	CHECK_EQ(e.bits, PFS_E_WRITE | PFS_E_ACCESSED | PFS_E_DIRTY);
	/* pte marker with uffd-wp */
	e = dec(&lo, x86_swp(30, 1), PFS_LEVEL_PTE);
	CHECK_EQ(e.kind, PFS_KIND_MARKER);
	CHECK_EQ(e.bits, PFS_E_UFFD_WP);
	CHECK_EQ(e.pfn, PFS_NO_PFN);
	/* swapin error (6.1 only) */
	e = dec(&lo, x86_swp(31, 0), PFS_LEVEL_PTE);
	CHECK_EQ(e.kind, PFS_KIND_MARKER);
	/* the same type in 6.12 is the pte marker; 23 becomes hwpoison */
	lay(&lo, 6, 12);
	CHECK_EQ(dec(&lo, x86_swp(31, 4), 0).kind, PFS_KIND_MARKER);
	CHECK_EQ(dec(&lo, x86_swp(23, 4), 0).kind, PFS_KIND_HWPOISON);
	CHECK_EQ(dec(&lo, x86_swp(22, 4), 0).kind, PFS_KIND_SWAP);
	/* 7.2: one device-exclusive type */
	lay(&lo, 7, 2);
	e = dec(&lo, x86_swp(30, 7), 0);
	CHECK_EQ(e.kind, PFS_KIND_DEVICE);
	CHECK_EQ(e.bits, PFS_E_EXCLUSIVE);
	/* 5.4: migration read/write, device write/read */
	lay(&lo, 5, 4);
	CHECK_EQ(dec(&lo, x86_swp(29, 7), 0).bits, PFS_E_WRITE);
	CHECK_EQ(dec(&lo, x86_swp(29, 7), 0).kind, PFS_KIND_MIGRATION);
	CHECK_EQ(dec(&lo, x86_swp(30, 7), 0).kind, PFS_KIND_DEVICE);
	/* no A/D bits in migration entries before 6.1 */
	CHECK_EQ(dec(&lo, x86_swp(28, 7 | (1ull << 34)), 0).bits, 0);
	/* pmd-level migration entry */
	lay(&lo, 6, 1);
	e = dec(&lo, x86_swp(25, 0x400), PFS_LEVEL_PMD);
	CHECK_EQ(e.kind, PFS_KIND_MIGRATION);
	CHECK_EQ(e.pfn, 0x400);
	CHECK_EQ(e.level, PFS_LEVEL_PMD);
}

TEST(x86_swp_offset_semantics)
{
	/* __swp_offset(x) = ~x.val << SWP_TYPE_BITS >> SWP_OFFSET_SHIFT:
	 * a raw value with all offset bits clear is the largest offset */
	struct pfs_layout lo;
	lay(&lo, 6, 1);
	struct pfs_entry e = dec(&lo, 1ull << 59 | 0x2, PFS_LEVEL_PTE);   /* type 1, offset bits 0 */
	CHECK_EQ(e.kind, PFS_KIND_SWAP);
	CHECK_EQ(e.swp_offset, (1ull << 50) - 1);
	e = dec(&lo, (1ull << 59) | (((1ull << 59) - 1) & ~0x1ffull), PFS_LEVEL_PTE);
	CHECK_EQ(e.swp_offset, 0);
}

TEST(arm64_decode)
{
	struct pfs_layout lo;
	pfs_layout_init(&lo);
	lo.arch = PFS_ARCH_ARM64;
	pfs_layout_set_version(&lo, 6, 1, 0);
	lo.max_physmem_bits = 48;
	const struct pfs_arch_ops *ops = pfs_arch_get(&lo);
	CHECK_STR(ops->name, "arm64");
	uint64_t page = 0x3ull | (0x1234ull << 12) | (1ull << 6) | (1ull << 10) | (1ull << 11) |
			(1ull << 51) | (1ull << 54) | (1ull << 56) | (1ull << 55);
	struct pfs_entry e = dec(&lo, page, PFS_LEVEL_PTE);
	CHECK_EQ(e.kind, PFS_KIND_PRESENT);
	CHECK_EQ(e.pfn, 0x1234);
	CHECK_EQ(e.bits, PFS_E_USER | PFS_E_ACCESSED | PFS_E_WRITE | PFS_E_NX | PFS_E_SPECIAL | PFS_E_DIRTY);
	/* hardware dirty: DBM without RDONLY */
	e = dec(&lo, 0x3ull | (1ull << 51), 0);
	CHECK(e.bits & PFS_E_DIRTY);
	e = dec(&lo, 0x3ull | (1ull << 51) | (1ull << 7), 0);
	CHECK(!(e.bits & PFS_E_DIRTY));
	CHECK(e.bits & PFS_E_GLOBAL);
	/* devmap 57 */
	CHECK(dec(&lo, 0x3ull | (1ull << 57), 0).bits & PFS_E_DEVMAP);
	/* PROT_NONE <= 6.9: bit 58, VALID clear */
	e = dec(&lo, (0x55ull << 12) | (1ull << 58), 0);
	CHECK_EQ(e.kind, PFS_KIND_PROTNONE);
	CHECK_EQ(e.pfn, 0x55);
	/* swap: type bits 3..7, offset from 8; exclusive bit 2 */
	e = dec(&lo, (1ull << 3) | (0x99ull << 8) | 4, 0);
	CHECK_EQ(e.kind, PFS_KIND_SWAP);
	CHECK_EQ(e.swp_type, 1);
	CHECK_EQ(e.swp_offset, 0x99);
	CHECK_EQ(e.bits, PFS_E_EXCLUSIVE);
	e = dec(&lo, (23ull << 3) | (0x99ull << 8), 0);
	CHECK_EQ(e.kind, PFS_KIND_MIGRATION);
	CHECK_EQ(e.pfn, 0x99);
	/* block at pmd level */
	e = dec(&lo, 0x1ull | (0x40000000ull) | (1ull << 10), PFS_LEVEL_PMD);
	CHECK_EQ(e.pfn, 0x40000);
	CHECK(e.bits & PFS_E_LEAF);
	uint64_t next = 0;
	CHECK_EQ(ops->classify(&lo, 0x3 | 0x7000, PFS_LEVEL_PMD, &next), PFS_TE_TABLE);
	CHECK_EQ(next, 0x7000);
	CHECK_EQ(ops->classify(&lo, 0x1 | 0x40000000, PFS_LEVEL_PUD, &next), PFS_TE_LEAF);
	CHECK_EQ(ops->classify(&lo, 0x1 | 0x40000000, PFS_LEVEL_P4D, &next), PFS_TE_BAD);
	CHECK_EQ(ops->classify(&lo, 0, PFS_LEVEL_P4D, &next), PFS_TE_NONE);
	/* 6.12: PRESENT_INVALID = nG, bit 58 uffd-wp, swap type at 6..10 */
	pfs_layout_set_version(&lo, 6, 12, 0);
	e = dec(&lo, (0x55ull << 12) | (1ull << 11), 0);
	CHECK_EQ(e.kind, PFS_KIND_PROTNONE);
	e = dec(&lo, 0x3ull | (1ull << 58), 0);
	CHECK(e.bits & PFS_E_UFFD_WP);
	e = dec(&lo, (2ull << 6) | (0x77ull << 12) | 8, 0);
	CHECK_EQ(e.kind, PFS_KIND_SWAP);
	CHECK_EQ(e.swp_type, 2);
	CHECK_EQ(e.swp_offset, 0x77);
	CHECK_EQ(e.bits, PFS_E_UFFD_WP);
	/* PTE_CONT (bit 52) on a present pte: the entry keeps its own pfn; on a
	 * swap pte bit 52 is offset (bit 40 of it), never "cont" */
	e = dec(&lo, 0x3ull | (0x44913ull << 12) | (1ull << 52) | (1ull << 51), 0);
	CHECK_EQ(e.pfn, 0x44913);
	CHECK_EQ(e.bits & (PFS_E_CONT | PFS_E_WRITE), PFS_E_CONT | PFS_E_WRITE);
	e = dec(&lo, (1ull << 6) | (1ull << 52), 0);
	CHECK_EQ(e.kind, PFS_KIND_SWAP);
	CHECK_EQ(e.swp_offset, 1ull << 40);
	CHECK(!(e.bits & PFS_E_CONT));
}

/* pfs_pte_next(): for any present pte it accepts, the pte it gives decodes as
 * the pte with its pfn one up and nothing else changed; it refuses a
 * carry out of the pfn field (into the SME C-bit, a flag, LPA2's GP) */
static unsigned pte_next_checked(const struct pfs_layout *lo, const uint64_t *edge, unsigned nedge)
{
	const struct pfs_arch_ops *ops = pfs_arch_get(lo);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned bad = 0, taken = 0;

	for (unsigned i = 0; i < 200000 + nedge; i++) {
		uint64_t v;
		if (i < nedge) {
			v = edge[i];
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* long runs of ones in the pfn field now and then */
			v = (i & 7) ? x : x | (((1ull << (x % 40)) - 1) << 12);
		}
		struct pfs_entry a = dec(lo, v, PFS_LEVEL_PTE);
		uint64_t n = pfs_pte_next(v, ops->pte_pfn_mask(lo));
		if (a.kind != PFS_KIND_PRESENT || !n)
			continue;
		taken++;
		struct pfs_entry b = dec(lo, n, PFS_LEVEL_PTE);
		bad += b.kind != a.kind || b.bits != a.bits || b.pfn != a.pfn + 1 || b.raw != n;
	}
	CHECK_EQ(bad, 0);
	CHECK(taken > 1000);
	return taken;
}

TEST(pte_next_steps_the_pfn_only)
{
	struct pfs_layout lo;
	lay(&lo, 6, 1);
	uint64_t x86_edge[] = {
		0x000ffffffffff067ull,   /* pfn field full: no next */
		0x0000fffffffff067ull,   /* carry into bit 48 */
		0x00007ffffffff067ull,   /* carry into bit 47: the C-bit with SME */
	};
	pte_next_checked(&lo, x86_edge, 3);
	CHECK_EQ(pfs_pte_next(x86_edge[0], pfs_arch_get(&lo)->pte_pfn_mask(&lo)), 0);
	lo.sme_mask = 1ull << 47;
	pte_next_checked(&lo, x86_edge, 3);
	CHECK_EQ(pfs_pte_next(x86_edge[2], pfs_arch_get(&lo)->pte_pfn_mask(&lo)), 0);
	CHECK_EQ(pfs_pte_next(0x3ffffffff067ull, pfs_arch_get(&lo)->pte_pfn_mask(&lo)), 0x3ffffffff067ull + 0x1000);

	pfs_layout_init(&lo);
	lo.arch = PFS_ARCH_ARM64;
	pfs_layout_set_version(&lo, 6, 12, 0);
	lo.max_physmem_bits = 48;
	lo.va_bits = 48;
	uint64_t a64_edge[] = {
		0x0000fffffffff003ull,   /* OA field full: carry into bit 48 */
		0x0003fffffffff003ull,   /* LPA2's full field: carry into GP */
		0x0000fffffffff303ull,
	};
	pte_next_checked(&lo, a64_edge, 3);
	CHECK_EQ(pfs_pte_next(a64_edge[0], pfs_arch_get(&lo)->pte_pfn_mask(&lo)), 0);
	lo.va_bits = 52;
	pte_next_checked(&lo, a64_edge, 3);
	CHECK_EQ(pfs_pte_next(a64_edge[0], pfs_arch_get(&lo)->pte_pfn_mask(&lo)), a64_edge[0] + 0x1000);
	CHECK_EQ(pfs_pte_next(a64_edge[1], pfs_arch_get(&lo)->pte_pfn_mask(&lo)), 0);
}
