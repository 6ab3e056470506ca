/* SPDX-License-Identifier: MIT */
/* KVM TDP MMU table scan: leaves at every level, children, non-present values of 6.1 and 6.10+ */
#include <string.h>
#include "runner.h"
#include "pfnscope/spte.h"

#define LEAF 0xe67ull     /* P W U A D host-writable mmu-writable MMU-present (a 6.1 dump) */
#define NONLEAF 0x827ull  /* P W U A MMU-present */
#define NONPRESENT_6_10 (1ull << 63)

static uint64_t T[PFS_SPTE_ENTRIES];
static struct pfs_spte_ref leaves[PFS_SPTE_ENTRIES], children[PFS_SPTE_ENTRIES];

static void fill(uint64_t v)
{
	for (int i = 0; i < PFS_SPTE_ENTRIES; i++)
		T[i] = v;
}

TEST(spte_scan_level1)
{
	size_t nc = 99;
	fill(NONPRESENT_6_10);
	T[0] = 0x2d79000ull | LEAF;
	T[160] = 0xa0000ull | LEAF;
	T[161] = NONPRESENT_6_10 | 0x5a0;   /* FROZEN_SPTE */
	size_t n = pfs_spte_scan(T, 1, 0x200, leaves, children, &nc);
	CHECK_EQ(n, 2);
	CHECK_EQ(nc, 0);
	CHECK_EQ(leaves[0].gfn, 0x200);
	CHECK_EQ(leaves[1].gfn, 0x200 + 160);
	CHECK_EQ(leaves[1].raw, 0xa0000ull | LEAF);
	CHECK_EQ(leaves[1].level, 1);
	CHECK_EQ(leaves[1].index, 160);
}

TEST(spte_scan_large_and_children)
{
	size_t nc = 0;
	fill(0);                             /* 6.1: non-present is 0 */
	T[0] = 0x3000ull | NONLEAF;
	T[1] = 0x40000000ull | LEAF | PFS_SPTE_PAGE_SIZE;  /* 1 GiB leaf */
	T[2] = 0x5a0;                        /* REMOVED_SPTE */
	T[3] = 0x8000000000001ull | 0xa0000; /* MMIO SPTE (NPT): no bit 11 */
	size_t n = pfs_spte_scan(T, 3, 0, leaves, children, &nc);
	CHECK_EQ(n, 1);
	CHECK_EQ(leaves[0].gfn, 1ull << 18);
	CHECK_EQ(leaves[0].level, 3);
	CHECK_EQ(nc, 1);
	CHECK_EQ(children[0].gfn, 0);
	CHECK_EQ(children[0].raw, 0x3000ull | NONLEAF);
}

TEST(spte_scan_bad_level)
{
	size_t nc = 7;
	fill(LEAF);
	CHECK_EQ(pfs_spte_scan(T, 0, 0, leaves, children, &nc), 0);
	CHECK_EQ(nc, 0);
	CHECK_EQ(pfs_spte_scan(T, 6, 0, leaves, children, &nc), 0);
	CHECK_EQ(pfs_spte_scan(NULL, 1, 0, leaves, children, &nc), 0);
	/* level 5: an entry covers 2^36 frames */
	CHECK_EQ(pfs_spte_scan(T, 5, 0, leaves, children, &nc), 0);
	CHECK_EQ(nc, 512);
	CHECK_EQ(children[511].gfn, 511ull << 36);
}
