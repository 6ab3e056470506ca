/* SPDX-License-Identifier: MIT */
/* vm_normal_page() / _pmd / _pud emulation, every branch of every profile */
#include <string.h>
#include "runner.h"
#include "pfnscope/vnp.h"

#define RAM_PFN 0x1000ull
#define MMIO_PFN 0x9000000ull
#define ZERO 0x2c00ull
#define HZERO 0x40000ull

static struct pfs_layout L(unsigned maj, unsigned min)
{
	struct pfs_layout lo;
	pfs_layout_init(&lo);
	pfs_layout_set_version(&lo, maj, min, 0);
	lo.highest_memmap_pfn = 0x43ffff;
	lo.zero_pfn = ZERO;
	lo.huge_zero_pfn = HZERO;
	return lo;
}

static struct pfs_vma V(uint64_t flags)
{
	struct pfs_vma v;
	memset(&v, 0, sizeof(v));
	v.start = 0x7f0000000000ull;
	v.end = v.start + (64ull << 20);
	v.vm_flags = flags;
	v.pgoff = 0x500;
	return v;
}

static struct pfs_entry E(unsigned level, uint64_t pfn, uint32_t bits)
{
	struct pfs_entry e;
	memset(&e, 0, sizeof(e));
	e.addr = 0x7f0000000000ull + (3ull << 12);
	e.level = (uint8_t)level;
	e.kind = PFS_KIND_PRESENT;
	e.pfn = pfn;
	e.bits = bits | (level ? PFS_E_LEAF : 0);
	return e;
}

#define SHARED_PFNMAP (PFS_VM_READ | PFS_VM_SHARED | PFS_VM_MAYSHARE | PFS_VM_MAYWRITE | PFS_VM_IO | PFS_VM_PFNMAP)
#define COW_PFNMAP (PFS_VM_READ | PFS_VM_MAYREAD | PFS_VM_MAYWRITE | PFS_VM_IO | PFS_VM_PFNMAP)
#define ANON (PFS_VM_READ | PFS_VM_WRITE | PFS_VM_MAYREAD | PFS_VM_MAYWRITE)
#define MIXED (PFS_VM_READ | PFS_VM_SHARED | PFS_VM_MIXEDMAP)

static void expect(const struct pfs_layout *lo, const struct pfs_vma *v, struct pfs_entry e,
		   int valid, int normal, unsigned reason, const char *what, int line)
{
	pfs_vnp(lo, v, &e, valid);
	if (e.normal_page != normal || e.vnp_reason != reason) {
		fprintf(stderr, "test_vnp.c:%d: %s (%u.%u): got normal=%d %s, want normal=%d %s\n", line, what,
			lo->version_major, lo->version_minor, e.normal_page, pfs_vnp_reason_name(e.vnp_reason),
			normal, pfs_vnp_reason_name(reason));
		test_failures++;
	}
}
#define EXPECT(lo, v, e, valid, normal, reason) expect(lo, v, e, valid, normal, reason, #e, __LINE__)

TEST(vnp_pte_with_special_bit_all_profiles)
{
	static const unsigned ver[][2] = { { 5, 4 }, { 5, 15 }, { 6, 1 }, { 6, 6 }, { 6, 12 }, { 6, 16 },
					   { 6, 17 }, { 6, 18 }, { 7, 2 } };
	for (unsigned i = 0; i < sizeof(ver) / sizeof(ver[0]); i++) {
		struct pfs_layout lo = L(ver[i][0], ver[i][1]);
		struct pfs_vma anon = V(ANON), pfn = V(SHARED_PFNMAP), mixed = V(MIXED);
		struct pfs_vma gnt = V(SHARED_PFNMAP);
		gnt.vm_ops_find_special_page = 0xffffffff81000000ull;
		/* not special -> check_pfn */
		EXPECT(&lo, &anon, E(0, RAM_PFN, 0), 1, 1, PFS_VNP_NOT_SPECIAL);
		EXPECT(&lo, &pfn, E(0, RAM_PFN, 0), 1, 1, PFS_VNP_NOT_SPECIAL);   /* case B */
		EXPECT(&lo, &anon, E(0, MMIO_PFN, 0), 0, 0, PFS_VNP_BEYOND_HIGHEST_MEMMAP);
		/* special */
		EXPECT(&lo, &gnt, E(0, RAM_PFN, PFS_E_SPECIAL), 1, 1, PFS_VNP_FIND_SPECIAL_PAGE);
		EXPECT(&lo, &pfn, E(0, MMIO_PFN, PFS_E_SPECIAL), 0, 0, PFS_VNP_PFNMAP);
		EXPECT(&lo, &mixed, E(0, RAM_PFN, PFS_E_SPECIAL), 1, 0, PFS_VNP_MIXEDMAP);
		EXPECT(&lo, &anon, E(0, ZERO, PFS_E_SPECIAL), 1, 0, PFS_VNP_ZERO_PFN);
		/* devmap (<= 6.16): pte_devmap also sets special on x86 */
		if (lo.vnp_profile < PFS_VNP_6_18 && lo.devmap_bit > 0)
			EXPECT(&lo, &anon, E(0, RAM_PFN, PFS_E_SPECIAL | PFS_E_DEVMAP), 1, 0, PFS_VNP_DEVMAP);
		EXPECT(&lo, &anon, E(0, RAM_PFN, PFS_E_SPECIAL), 1, 0, PFS_VNP_BAD_SPECIAL);
		/* huge zero pfn at pte level: 6.18+ only */
		EXPECT(&lo, &anon, E(0, HZERO + 3, PFS_E_SPECIAL), 1, 0,
		       lo.vnp_profile >= PFS_VNP_6_18 ? PFS_VNP_HUGE_ZERO : PFS_VNP_BAD_SPECIAL);
		/* protnone entries go through vnp too */
		struct pfs_entry pn = E(0, RAM_PFN, 0);
		pn.kind = PFS_KIND_PROTNONE;
		EXPECT(&lo, &anon, pn, 1, 1, PFS_VNP_NOT_SPECIAL);
		/* not present */
		struct pfs_entry sw = E(0, PFS_NO_PFN, 0);
		sw.kind = PFS_KIND_SWAP;
		EXPECT(&lo, &anon, sw, 0, 0, PFS_VNP_NOT_PRESENT);
		/* hugetlb never goes through vnp */
		struct pfs_vma ht = V(ANON | PFS_VM_HUGETLB);
		EXPECT(&lo, &ht, E(1, RAM_PFN, 0), 1, 1, PFS_VNP_HUGETLB);
	}
	/* bad special with the pte_devmap bit but devmap gone (6.17) */
	struct pfs_layout lo = L(6, 17);
	struct pfs_vma anon = V(ANON);
	EXPECT(&lo, &anon, E(0, RAM_PFN, PFS_E_SPECIAL), 1, 0, PFS_VNP_BAD_SPECIAL);
}

TEST(vnp_pte_without_special_bit)
{
	static const unsigned ver[][2] = { { 5, 4 }, { 6, 1 }, { 6, 10 }, { 6, 12 }, { 6, 18 } };
	for (unsigned i = 0; i < sizeof(ver) / sizeof(ver[0]); i++) {
		struct pfs_layout lo = L(ver[i][0], ver[i][1]);
		lo.has_pte_special = 0;
		struct pfs_vma anon = V(ANON), shared = V(SHARED_PFNMAP), cow = V(COW_PFNMAP), mixed = V(MIXED);
		uint64_t linear = 0x500 + 3;
		/* MIXEDMAP: !pfn_valid -> NULL, else normal (zero pfn NULL from 6.10) */
		EXPECT(&lo, &mixed, E(0, MMIO_PFN, 0), 0, 0, PFS_VNP_MIXEDMAP_INVALID);
		EXPECT(&lo, &mixed, E(0, RAM_PFN, 0), 1, 1, PFS_VNP_NOT_SPECIAL);
		int zero_null = ver[i][0] > 6 || (ver[i][0] == 6 && ver[i][1] >= 10);
		EXPECT(&lo, &mixed, E(0, ZERO, 0), 1, !zero_null, zero_null ? PFS_VNP_ZERO_PFN : PFS_VNP_NOT_SPECIAL);
		/* PFNMAP: linear -> NULL; !cow -> NULL; else COWed anon */
		EXPECT(&lo, &cow, E(0, linear, 0), 1, 0, PFS_VNP_LINEAR_PFNMAP);
		EXPECT(&lo, &shared, E(0, RAM_PFN, 0), 1, 0, PFS_VNP_PFNMAP_NOT_COW);
		EXPECT(&lo, &cow, E(0, RAM_PFN, 0), 1, 1, PFS_VNP_NOT_SPECIAL);
		/* all: zero pfn, then highest_memmap */
		EXPECT(&lo, &anon, E(0, ZERO, 0), 1, 0, PFS_VNP_ZERO_PFN);
		EXPECT(&lo, &cow, E(0, MMIO_PFN, 0), 0, 0, PFS_VNP_BEYOND_HIGHEST_MEMMAP);
		EXPECT(&lo, &anon, E(0, RAM_PFN, 0), 1, 1, PFS_VNP_NOT_SPECIAL);
	}
}

TEST(vnp_pmd_profiles)
{
	/* <= 6.11: always the !special rules, devmap, huge zero, silent highest */
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma anon = V(ANON), shared = V(SHARED_PFNMAP), cow = V(COW_PFNMAP), mixed = V(MIXED);
	EXPECT(&lo, &anon, E(1, 0x200, 0), 1, 1, PFS_VNP_NOT_SPECIAL);                 /* THP */
	EXPECT(&lo, &anon, E(1, HZERO, 0), 1, 0, PFS_VNP_HUGE_ZERO);
	EXPECT(&lo, &anon, E(1, 0x200, PFS_E_DEVMAP), 1, 0, PFS_VNP_DEVMAP);           /* DAX */
	EXPECT(&lo, &anon, E(1, MMIO_PFN, 0), 0, 0, PFS_VNP_BEYOND_HIGHEST_MEMMAP);
	EXPECT(&lo, &mixed, E(1, MMIO_PFN, 0), 0, 0, PFS_VNP_MIXEDMAP_INVALID);
	EXPECT(&lo, &mixed, E(1, 0x200, 0), 1, 1, PFS_VNP_NOT_SPECIAL);
	EXPECT(&lo, &shared, E(1, 0x200, 0), 1, 0, PFS_VNP_PFNMAP_NOT_COW);
	struct pfs_entry lin = E(1, 0x500, 0);
	lin.addr = cow.start;
	EXPECT(&lo, &cow, lin, 1, 0, PFS_VNP_LINEAR_PFNMAP);
	/* the special bit means nothing at pmd level before 6.12 */
	EXPECT(&lo, &anon, E(1, 0x200, PFS_E_SPECIAL), 1, 1, PFS_VNP_NOT_SPECIAL);
	struct pfs_entry pe = E(1, 0x200, 0);
	CHECK(!pfs_vnp_is_bad_map(&lo, &pe));
	pe.vnp_reason = PFS_VNP_BEYOND_HIGHEST_MEMMAP;
	CHECK(!pfs_vnp_is_bad_map(&lo, &pe));   /* silent in vm_normal_page_pmd */
	pe.level = 0;
	CHECK(pfs_vnp_is_bad_map(&lo, &pe));
	/* pud: no vm_normal_page_pud before 6.18 */
	EXPECT(&lo, &anon, E(2, 0x40000, PFS_E_DEVMAP), 1, 0, PFS_VNP_PMD_NOT_NORMAL);

	/* 6.12 .. 6.17: pmd_special first */
	lo = L(6, 12);
	EXPECT(&lo, &shared, E(1, MMIO_PFN, PFS_E_SPECIAL), 0, 0, PFS_VNP_PFNMAP);
	EXPECT(&lo, &mixed, E(1, MMIO_PFN, PFS_E_SPECIAL), 0, 0, PFS_VNP_MIXEDMAP);
	EXPECT(&lo, &anon, E(1, 0x200, PFS_E_SPECIAL), 1, 0, PFS_VNP_PMD_NOT_NORMAL);
	EXPECT(&lo, &anon, E(1, HZERO, 0), 1, 0, PFS_VNP_HUGE_ZERO);
	EXPECT(&lo, &anon, E(1, 0x200, 0), 1, 1, PFS_VNP_NOT_SPECIAL);
	EXPECT(&lo, &anon, E(2, 0x40000, PFS_E_SPECIAL), 1, 0, PFS_VNP_PMD_NOT_NORMAL);

	/* 6.18: __vm_normal_page at every level */
	lo = L(6, 18);
	EXPECT(&lo, &shared, E(1, MMIO_PFN, PFS_E_SPECIAL), 0, 0, PFS_VNP_PFNMAP);
	EXPECT(&lo, &shared, E(2, MMIO_PFN, PFS_E_SPECIAL), 0, 0, PFS_VNP_PFNMAP);
	EXPECT(&lo, &anon, E(1, HZERO, PFS_E_SPECIAL), 1, 0, PFS_VNP_HUGE_ZERO);   /* huge zero is special */
	EXPECT(&lo, &anon, E(1, 0x200, PFS_E_SPECIAL), 1, 0, PFS_VNP_BAD_SPECIAL);
	EXPECT(&lo, &anon, E(1, MMIO_PFN, 0), 0, 0, PFS_VNP_BEYOND_HIGHEST_MEMMAP);
	EXPECT(&lo, &anon, E(2, 0x40000, 0), 1, 1, PFS_VNP_NOT_SPECIAL);
	pe = E(1, MMIO_PFN, 0);
	pe.vnp_reason = PFS_VNP_BEYOND_HIGHEST_MEMMAP;
	CHECK(pfs_vnp_is_bad_map(&lo, &pe));   /* print_bad_page_map at any level */
	pe.vnp_reason = PFS_VNP_BAD_SPECIAL;
	CHECK(pfs_vnp_is_bad_map(&lo, &pe));
	/* arm64 has no PUD pfnmap: the !special rules at pud level */
	lo.arch = PFS_ARCH_ARM64;
	EXPECT(&lo, &shared, E(2, 0x40000, PFS_E_SPECIAL), 1, 0, PFS_VNP_PFNMAP_NOT_COW);
	EXPECT(&lo, &anon, E(2, HZERO, 0), 1, 0, PFS_VNP_HUGE_ZERO);
	EXPECT(&lo, &anon, E(2, ZERO, 0), 1, 0, PFS_VNP_ZERO_PFN);
	EXPECT(&lo, &shared, E(1, 0x200, PFS_E_SPECIAL), 1, 0, PFS_VNP_PFNMAP);
	/* 6.18 without special bit at all */
	lo = L(6, 18);
	lo.has_pte_special = 0;
	EXPECT(&lo, &mixed, E(0, MMIO_PFN, 0), 0, 0, PFS_VNP_MIXEDMAP_INVALID);
	EXPECT(&lo, &cow, E(0, 0x503, 0), 1, 0, PFS_VNP_LINEAR_PFNMAP);
	EXPECT(&lo, &shared, E(0, RAM_PFN, 0), 1, 0, PFS_VNP_PFNMAP_NOT_COW);
	EXPECT(&lo, &mixed, E(0, RAM_PFN, 0), 1, 1, PFS_VNP_NOT_SPECIAL);
	EXPECT(&lo, &anon, E(0, ZERO, 0), 1, 0, PFS_VNP_ZERO_PFN);
	EXPECT(&lo, &anon, E(0, HZERO + 1, 0), 1, 0, PFS_VNP_HUGE_ZERO);
}

TEST(names_are_the_json_strings)
{
	CHECK_STR(pfs_level_name(PFS_LEVEL_PMD), "pmd");
	CHECK_STR(pfs_level_name(99), "?");
	CHECK_STR(pfs_kind_name(PFS_KIND_UNREADABLE), "unreadable");
	CHECK_STR(pfs_kind_name(PFS_KIND_HWPOISON), "hwpoison");
	CHECK_STR(pfs_vnp_reason_name(PFS_VNP_BEYOND_HIGHEST_MEMMAP), "beyond_highest_memmap");
	CHECK_STR(pfs_vnp_reason_name(PFS_VNP_PMD_NOT_NORMAL), "pmd_not_normal");
	CHECK_STR(pfs_consumer_name(PFS_C_ACCESS_PROCESS_VM), "access_process_vm");
	CHECK_STR(pfs_consumer_verdict_name(PFS_CV_NA), "n/a");
	CHECK_STR(pfs_consumer_verdict_name(PFS_CV_FAULT_IN), "fault_in");
	CHECK_STR(pfs_diag_name(PFS_D_PFNMAP_WITHOUT_IO), "PFNMAP_WITHOUT_IO");
	CHECK_EQ(pfs_diag_severity(PFS_D_MAPS_FREED_PAGE), PFS_SEV_CRITICAL);
	CHECK_EQ(pfs_diag_severity(PFS_D_PFNMAP_COW_ANON), PFS_SEV_MEDIUM);
	CHECK_STR(pfs_severity_name(PFS_SEV_HIGH), "high");
	for (unsigned i = 0; i < PFS_KIND__COUNT; i++)
		CHECK(strcmp(pfs_kind_name(i), "?") != 0);
	for (unsigned i = 0; i < PFS_VNP__COUNT; i++)
		CHECK(strcmp(pfs_vnp_reason_name(i), "?") != 0);
	for (unsigned i = 0; i < PFS_CV__COUNT; i++)
		CHECK(strcmp(pfs_consumer_verdict_name(i), "?") != 0);
	for (unsigned i = 0; i < PFS_D__COUNT; i++)
		CHECK(strcmp(pfs_diag_name(i), "?") != 0);
}
