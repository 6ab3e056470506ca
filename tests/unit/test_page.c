/* SPDX-License-Identifier: MIT */
/* struct page decode (page.c): pfn_valid, mapcount schemes, page types,
 * free buddy blocks, compound heads, unreadable memmap, batched reads */
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "pfnscope/page.h"

/* pfs_pfn_valid as 1 / 0 / negative code */
static int pfn_valid(struct pfs_target *t, uint64_t pfn)
{
	int valid, ret = pfs_pfn_valid(t, pfn, &valid);

	return ret < 0 ? ret : valid;
}

#define BASE 0x200000ull          /* 8 GiB: RAM with an early section */
#define ANON_VMA 0xffff888100200000ull
#define FILE_MAPPING 0xffff888100300000ull

static struct pfs_page_info dec(struct mock_kernel *k, uint64_t pfn)
{
	struct pfs_page_info p;
	pfs_page_decode(&k->t, pfn, &p);
	return p;
}

/* 6.1 page[1].compound_mapcount (within struct page: 20) */
static void set_cmc61(struct mock_kernel *k, uint64_t head, int32_t raw)
{
	mock_page_set(k, head, (int32_t)k->lo.page_size + k->lo.page_compound_mapcount, 4, (uint32_t)raw);
}
/* folio fields (offsets within struct folio) */
static void set_folio(struct mock_kernel *k, uint64_t head, int32_t off, int32_t raw)
{
	mock_page_set(k, head, off, 4, (uint32_t)raw);
}

/* pfs_page_decode_run() with same[]: every page it calls a repeat is the
 * page before stepped, as the plain decode has it; the number of repeats */
static unsigned check_same(struct mock_kernel *k, uint64_t pfn, unsigned n)
{
	struct pfs_page_info *want = calloc(n, sizeof(*want)), *got = calloc(n, sizeof(*got));
	uint8_t *same = malloc(n);
	unsigned repeats = 0, bad = 0;

	pfs_page_decode_run(&k->t, pfn, n, want, NULL, NULL);
	memset(got, 0xa5, n * sizeof(*got));
	memset(same, 0xa5, n);
	pfs_page_decode_run(&k->t, pfn, n, got, same, NULL);
	bad += same[0] != 0;
	for (unsigned i = 0; i < n; i++) {
		bad += same[i] > 1;
		if (i && same[i] == 1) {
			got[i] = got[i - 1];
			pfs_page_info_step(&got[i], pfn + i - 1, 1);
			repeats++;
		}
		bad += !pfs_page_info_equal(&got[i], &want[i]);
	}
	CHECK_EQ(bad, 0);
	free(want);
	free(got);
	free(same);
	return repeats;
}

TEST(page_pfn_valid_sections)
{
	for (int levels = 4; levels <= 5; levels++) {
		struct mock_kernel k;
		mock_kernel_init(&k, levels, 6, 1);
		CHECK_EQ(pfn_valid(&k.t, BASE), 1);
		CHECK_EQ(pfn_valid(&k.t, 0), 1);
		CHECK_EQ(pfn_valid(&k.t, MOCK_RAM_PFNS - 1), 1);
		/* no section beyond RAM; MMIO; beyond NR_MEM_SECTIONS; beyond 2^52 */
		CHECK_EQ(pfn_valid(&k.t, MOCK_RAM_PFNS + 0x8000), 0);
		CHECK_EQ(pfn_valid(&k.t, MOCK_MMIO_PFN), 0);
		CHECK_EQ(pfn_valid(&k.t, 1ull << 40), 0);
		CHECK_EQ(pfn_valid(&k.t, 1ull << 53), 0);
		struct pfs_page_info p = dec(&k, MOCK_MMIO_PFN);
		CHECK_EQ(p.state, PFS_PAGE_INVALID);

		/* a hot-plugged (not early) section: subsections 0 and 2 only */
		uint64_t s = MOCK_RAM_PFNS;   /* section aligned: 0x440000 */
		mock_set_mem_section(&k, s, 0x8000, MOCK_SECTION_PRESENT | MOCK_SECTION_HAS_MEM_MAP |
				     MOCK_SECTION_ONLINE, 0x5);
		CHECK_EQ(pfn_valid(&k.t, s), 1);
		CHECK_EQ(pfn_valid(&k.t, s + 511), 1);
		CHECK_EQ(pfn_valid(&k.t, s + 512), 0);
		CHECK_EQ(pfn_valid(&k.t, s + 1024 + 7), 1);
		CHECK_EQ(pfn_valid(&k.t, s + 0x7fff), 0);
		mock_page_simple(&k, s + 3, 0, 1, 1);
		p = dec(&k, s + 3);
		CHECK_EQ(p.state, PFS_PAGE_OK);
		CHECK(!(p.bits & PFS_PG_ZONE_DEVICE));
		CHECK_EQ(dec(&k, s + 600).state, PFS_PAGE_INVALID);
		/* the same section marked early: valid in full */
		mock_set_mem_section(&k, s, 0x8000, MOCK_SECTION_RAM, 0x5);
		CHECK_EQ(pfn_valid(&k.t, s + 600), 1);
		/* a present section without a memmap */
		mock_set_mem_section(&k, s, 0x8000, MOCK_SECTION_PRESENT, 0);
		CHECK_EQ(pfn_valid(&k.t, s), 0);
		/* ZONE_DEVICE */
		mock_set_mem_section(&k, s, 0x8000, MOCK_SECTION_PRESENT | MOCK_SECTION_HAS_MEM_MAP |
				     MOCK_SECTION_ZONE_DEVICE, ~0ull);
		p = dec(&k, s + 3);
		CHECK_EQ(p.state, PFS_PAGE_OK);
		CHECK(p.bits & PFS_PG_ZONE_DEVICE);

		/* usage == NULL on a non-early section: not valid (6.8+ READ_ONCE) */
		uint64_t nr = s >> 15, per = k.lo.sections_per_root;
		uint64_t root_va = mock_read_kva_u64(&k, k.mem_section_roots + (nr / per) * 8);
		uint64_t ms = root_va + (nr % per) * k.lo.mem_section_size;
		mock_write_kva_u64(&k, ms + (uint64_t)k.lo.mem_section_usage, 0);
		CHECK_EQ(pfn_valid(&k.t, s + 3), 0);

		/* mem_section root unreadable: an error, and an unreadable page */
		mock_write_kva_u64(&k, k.mem_section_roots + (nr / per) * 8, 0xffffc90000100000ull);
		CHECK(pfn_valid(&k.t, s + 3) < 0);
		CHECK_EQ(dec(&k, s + 3).state, PFS_PAGE_UNREADABLE);
		mock_kernel_fini(&k);
	}
}

TEST(page_small_anon_ksm_file_reserved_zero)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	const struct pfs_layout *lo = &k.lo;
	uint64_t pfn = BASE + 5;
	mock_page_simple(&k, pfn, mock_pg(&k, lo->pg_lru) | mock_pg(&k, lo->pg_swapbacked), 3, 2);
	mock_page_set_mapping(&k, pfn, ANON_VMA | 1);
	struct pfs_page_info p = dec(&k, pfn);
	CHECK_EQ(p.state, PFS_PAGE_OK);
	CHECK_EQ(p.refcount, 3);
	CHECK_EQ(p.page_refcount, 3);
	CHECK_EQ(p.mapcount, 2);
	CHECK_EQ(p.page_mapcount, 2);
	CHECK_EQ(p.raw_mapcount, 1);
	CHECK_EQ(p.head_pfn, pfn);
	CHECK_EQ(p.order, 0);
	CHECK_EQ(p.mapping, ANON_VMA | 1);
	CHECK_EQ(p.flags, mock_pg(&k, lo->pg_lru) | mock_pg(&k, lo->pg_swapbacked));
	CHECK_EQ(p.bits, PFS_PG_ANON);

	/* KSM: PAGE_MAPPING_KSM = ANON | MOVABLE */
	mock_page_set_mapping(&k, pfn, ANON_VMA | 3);
	p = dec(&k, pfn);
	CHECK_EQ(p.bits, PFS_PG_ANON | PFS_PG_KSM);
	/* movable non-LRU (mapping & 2 only) is not anon */
	mock_page_set_mapping(&k, pfn, FILE_MAPPING | 2);
	CHECK_EQ(dec(&k, pfn).bits, 0);
	/* file page */
	mock_page_set_mapping(&k, pfn, FILE_MAPPING);
	CHECK_EQ(dec(&k, pfn).bits, 0);

	/* the zero page: reserved, rc 1, mc 0 */
	p = dec(&k, lo->zero_pfn);
	CHECK_EQ(p.state, PFS_PAGE_OK);
	CHECK_EQ(p.bits, PFS_PG_ZERO | PFS_PG_RESERVED);
	CHECK_EQ(p.refcount, 1);
	CHECK_EQ(p.mapcount, 0);
	/* a vdso-like reserved page mapped twice: rc 3, mc 2 */
	mock_page_simple(&k, BASE + 9, mock_pg(&k, lo->pg_reserved), 3, 2);
	p = dec(&k, BASE + 9);
	CHECK_EQ(p.bits, PFS_PG_RESERVED);
	CHECK_EQ(p.mapcount, 2);
	/* hwpoison */
	mock_page_simple(&k, BASE + 11, mock_pg(&k, lo->pg_hwpoison), 1, 0);
	CHECK_EQ(dec(&k, BASE + 11).bits, PFS_PG_HWPOISON);
	/* pcp-free page: refcount 0, no type, not in a buddy block */
	mock_page_simple(&k, BASE + 13, 0, 0, 0);
	p = dec(&k, BASE + 13);
	CHECK_EQ(p.state, PFS_PAGE_OK);
	CHECK_EQ(p.refcount, 0);
	CHECK_EQ(p.bits, 0);
	mock_kernel_fini(&k);
}

/* 6.1: compound_mapcount in page[1], PageDoubleMap, file THP counts */
TEST(page_mapcount_6_1_compound)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	const struct pfs_layout *lo = &k.lo;
	uint64_t h = BASE + 512;
	struct pfs_page_info p;

	/* anon THP mapped by one PMD */
	mock_page_compound(&k, h, 9);
	mock_page_set_refcount(&k, h, 1);
	mock_page_set_mapping(&k, h, ANON_VMA | 1);
	for (unsigned i = 0; i < 512; i++)
		mock_page_set_mapcount_raw(&k, h + i, -1);
	set_cmc61(&k, h, 0);
	p = dec(&k, h);
	CHECK_EQ(p.bits, PFS_PG_HEAD | PFS_PG_ANON);
	CHECK_EQ(p.order, 9);
	CHECK_EQ(p.mapcount, 1);
	CHECK_EQ(p.page_mapcount, 1);
	p = dec(&k, h + 100);
	CHECK_EQ(p.bits, PFS_PG_TAIL | PFS_PG_ANON);
	CHECK_EQ(p.head_pfn, h);
	CHECK_EQ(p.refcount, 1);
	CHECK_EQ(p.page_refcount, 0);
	CHECK_EQ(p.mapcount, 1);
	CHECK_EQ(p.page_mapcount, 1);
	CHECK_EQ(p.order, 9);
	CHECK_EQ(p.flags, mock_pg(&k, lo->pg_head));

	/* PMD and PTE mapped (DoubleMap): subpage _mapcount carries +1 */
	for (unsigned i = 0; i < 512; i++)
		mock_page_set_mapcount_raw(&k, h + i, 1);
	mock_page_set(&k, h + 1, lo->page_flags, 8, mock_pg(&k, 6));
	p = dec(&k, h + 7);
	CHECK_EQ(p.mapcount, 1 + 512 * 2 - 512);
	CHECK_EQ(p.page_mapcount, 2 + 1 - 1);
	/* PTE-mapped only (PMD split, no DoubleMap) */
	mock_page_set(&k, h + 1, lo->page_flags, 8, 0);
	set_cmc61(&k, h, -1);
	for (unsigned i = 0; i < 512; i++)
		mock_page_set_mapcount_raw(&k, h + i, i < 10 ? 0 : -1);
	p = dec(&k, h + 3);
	CHECK_EQ(p.mapcount, 10);
	CHECK_EQ(p.page_mapcount, 1);
	CHECK_EQ(dec(&k, h + 300).page_mapcount, 0);

	/* file THP: subpage counts include the PMD mapping */
	mock_page_set_mapping(&k, h, FILE_MAPPING);
	set_cmc61(&k, h, 0);
	for (unsigned i = 0; i < 512; i++)
		mock_page_set_mapcount_raw(&k, h + i, i == 5 ? 1 : 0);
	p = dec(&k, h + 5);
	CHECK_EQ(p.bits, PFS_PG_TAIL);
	CHECK_EQ(p.mapcount, 1 + 513 - 512);
	CHECK_EQ(p.page_mapcount, 2);

	/* hugetlb: PageHuge() via page[1].compound_dtor == HUGETLB_PAGE_DTOR */
	mock_page_set(&k, h, 64 + 16, 1, 2);
	mock_page_set_mapping(&k, h, ANON_VMA | 1);
	for (unsigned i = 0; i < 512; i++)
		mock_page_set_mapcount_raw(&k, h + i, -1);
	set_cmc61(&k, h, 2);
	p = dec(&k, h + 9);
	CHECK_EQ(p.bits, PFS_PG_TAIL | PFS_PG_ANON | PFS_PG_HUGETLB);
	CHECK_EQ(p.mapcount, 3);
	CHECK_EQ(p.page_mapcount, 3);
	/* a typed small page counts 0 (page_mapcount undefined in 6.1) */
	mock_page_simple(&k, BASE + 3, 0, 1, 0);
	mock_page_set_mapcount_raw(&k, BASE + 3, (int32_t)(0xffffffffu & ~0x200u));
	p = dec(&k, BASE + 3);
	CHECK_EQ(p.mapcount, 0);
	CHECK_EQ(p.page_mapcount, 0);
	CHECK_EQ(p.raw_mapcount, (int32_t)0xfffffdff);
	mock_kernel_fini(&k);
}

/* 6.1, a THP partly unmapped (munmap of its first 4 KiB): the PMD was
 * split into 511 ptes, each holding a reference (__split_huge_pmd_locked);
 * page[1].flags carries real flag bits that must not be read as the order
 * (6.1's _flags_1 is page[1].flags; folio_order() reads _folio_order) */
TEST(page_thp_partly_unmapped_6_1)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 5, 6, 1);
	const struct pfs_layout *lo = &k.lo;
	uint64_t h = BASE + 2048;
	mock_page_compound(&k, h, 9);
	/* page[1].flags: PG_head is on the head only; tails carry e.g.
	 * PG_referenced | PG_uptodate | PG_dirty | PG_active bits as set by
	 * folio flag ops (PF_SECOND / PF_ANY) */
	mock_page_set(&k, h + 1, lo->page_flags, 8, 0x2e);
	mock_page_set_refcount(&k, h, 511);
	mock_page_set_mapping(&k, h, ANON_VMA | 1);
	set_cmc61(&k, h, -1);
	mock_page_set_mapcount_raw(&k, h, -1);
	for (unsigned i = 1; i < 512; i++)
		mock_page_set_mapcount_raw(&k, h + i, 0);
	struct pfs_page_info p = dec(&k, h + 7);
	CHECK_EQ(p.order, 9);
	CHECK_EQ(p.refcount, 511);
	CHECK_EQ(p.mapcount, 511);
	CHECK_EQ(p.page_mapcount, 1);
	CHECK_EQ(p.bits & PFS_PG_HUGETLB, 0);
	/* page[1].flags bit 6 is PG_double_map on 6.1: then each subpage
	 * _mapcount carries one extra for the PMD (and __page_mapcount takes
	 * it back off) */
	mock_page_set(&k, h + 1, lo->page_flags, 8, 0x40);
	set_cmc61(&k, h, 0);
	for (unsigned i = 0; i < 512; i++)
		mock_page_set_mapcount_raw(&k, h + i, i == 5 ? 1 : 0);
	p = dec(&k, h + 5);
	CHECK_EQ(p.order, 9);
	CHECK_EQ(p.page_mapcount, 2 + 1 - 1);
	CHECK_EQ(dec(&k, h + 6).page_mapcount, 1 + 1 - 1);
	mock_kernel_fini(&k);
}

/* 6.2..6.9: _entire_mapcount and _nr_pages_mapped */
TEST(page_mapcount_6_5_entire)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 5);
	REQUIRE(k.lo.mapcount_scheme == PFS_MAPCOUNT_ENTIRE);
	uint64_t h = BASE + 1024;
	mock_page_compound(&k, h, 9);
	mock_page_set_refcount(&k, h, 5);
	mock_page_set_mapping(&k, h, ANON_VMA | 1);
	for (unsigned i = 0; i < 512; i++)
		mock_page_set_mapcount_raw(&k, h + i, -1);
	set_folio(&k, h, k.lo.folio_entire_mapcount, 0);
	set_folio(&k, h, k.lo.folio_nr_pages_mapped, 0);
	/* some subpage counts that must be ignored: nr_pages_mapped is 0 */
	mock_page_set_mapcount_raw(&k, h + 2, 4);
	struct pfs_page_info p = dec(&k, h + 1);
	CHECK_EQ(p.mapcount, 1);
	CHECK_EQ(p.page_mapcount, 1);
	CHECK_EQ(p.refcount, 5);
	/* 3 pages also PTE-mapped (ENTIRELY_MAPPED bit set too) */
	mock_page_set_mapcount_raw(&k, h + 2, 0);
	mock_page_set_mapcount_raw(&k, h + 3, 0);
	mock_page_set_mapcount_raw(&k, h + 4, 1);
	set_folio(&k, h, k.lo.folio_nr_pages_mapped, 0x800000 | 3);
	p = dec(&k, h + 4);
	CHECK_EQ(p.mapcount, 1 + 1 + 1 + 2);
	CHECK_EQ(p.page_mapcount, 2 + 1);
	CHECK_EQ(dec(&k, h + 100).page_mapcount, 1);
	mock_kernel_fini(&k);
}

/* 6.10+: _large_mapcount; PGTY page types (6.12) */
TEST(page_mapcount_6_12_large_and_pgty)
{
	for (int levels = 4; levels <= 5; levels++) {
		struct mock_kernel k;
		mock_kernel_init(&k, levels, 6, 12);
		const struct pfs_layout *lo = &k.lo;
		REQUIRE(lo->mapcount_scheme == PFS_MAPCOUNT_LARGE);
		REQUIRE(lo->page_type_scheme == PFS_PGTYPE_PGTY);
		uint64_t h = BASE + 64;
		/* an order-4 anon mTHP mapped by 16 PTEs in one process */
		mock_page_compound(&k, h, 4);
		mock_page_set_refcount(&k, h, 16);
		mock_page_set_mapping(&k, h, ANON_VMA | 1);
		for (unsigned i = 0; i < 16; i++)
			mock_page_set_mapcount_raw(&k, h + i, 0);
		set_folio(&k, h, lo->folio_large_mapcount, 15);
		set_folio(&k, h, lo->folio_entire_mapcount, -1);
		struct pfs_page_info p = dec(&k, h + 15);
		CHECK_EQ(p.bits, PFS_PG_TAIL | PFS_PG_ANON);
		CHECK_EQ(p.order, 4);
		CHECK_EQ(p.mapcount, 16);
		CHECK_EQ(p.page_mapcount, 1);
		CHECK_EQ(p.refcount, 16);

		/* hugetlb folio: PGTY_hugetlb on the head's word */
		uint64_t g = BASE + 2048;
		mock_page_compound(&k, g, 9);
		mock_page_set_mapcount_raw(&k, g, (int32_t)0xf4000000u);
		set_folio(&k, g, lo->folio_large_mapcount, 1);
		set_folio(&k, g, lo->folio_entire_mapcount, 1);
		p = dec(&k, g);
		CHECK_EQ(p.bits, PFS_PG_HEAD | PFS_PG_HUGETLB | PFS_PG_TYPED);
		CHECK_EQ(p.mapcount, 2);
		CHECK_EQ(p.page_mapcount, 2);     /* typed word counts 0, + entire */
		p = dec(&k, g + 1);
		CHECK_EQ(p.bits, PFS_PG_TAIL | PFS_PG_HUGETLB);

		/* small typed pages: buddy, page table, slab, offline */
		mock_page_simple(&k, BASE + 1, 0, 0, 0);
		mock_page_set_mapcount_raw(&k, BASE + 1, (int32_t)0xf0000000u);
		p = dec(&k, BASE + 1);
		CHECK_EQ(p.bits, PFS_PG_BUDDY | PFS_PG_TYPED | PFS_PG_FREE);
		CHECK_EQ(p.mapcount, 0);
		mock_page_simple(&k, BASE + 2, 0, 1, 0);
		mock_page_set_mapcount_raw(&k, BASE + 2, (int32_t)0xf2000000u);
		CHECK_EQ(dec(&k, BASE + 2).bits, PFS_PG_PGTABLE | PFS_PG_TYPED);
		mock_page_set_mapcount_raw(&k, BASE + 2, (int32_t)0xf5000000u);
		CHECK_EQ(dec(&k, BASE + 2).bits, PFS_PG_SLAB | PFS_PG_TYPED);
		mock_page_set_mapcount_raw(&k, BASE + 2, (int32_t)0xf1000000u);
		CHECK_EQ(dec(&k, BASE + 2).bits, PFS_PG_OFFLINE | PFS_PG_TYPED);
		/* a mapcount underflow (0xff top byte) is not a type */
		mock_page_set_mapcount_raw(&k, BASE + 2, -5);
		p = dec(&k, BASE + 2);
		CHECK_EQ(p.bits, 0);
		CHECK_EQ(p.mapcount, -4);
		mock_kernel_fini(&k);
	}
}

TEST(page_types_6_1)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	const struct pfs_layout *lo = &k.lo;
	uint64_t pfn = BASE + 0x40;
	mock_page_simple(&k, pfn, 0, 1, 0);
	mock_page_set_mapcount_raw(&k, pfn, (int32_t)(0xffffffffu & ~0x200u));  /* PG_table */
	CHECK_EQ(dec(&k, pfn).bits, PFS_PG_PGTABLE | PFS_PG_TYPED);
	mock_page_set_mapcount_raw(&k, pfn, (int32_t)(0xffffffffu & ~0x100u));  /* PG_offline */
	CHECK_EQ(dec(&k, pfn).bits, PFS_PG_OFFLINE | PFS_PG_TYPED);
	mock_page_set_mapcount_raw(&k, pfn, (int32_t)(0xffffffffu & ~0x400u));  /* PG_guard */
	CHECK_EQ(dec(&k, pfn).bits, PFS_PG_TYPED);
	/* slab is a flag in 6.1, on the head */
	mock_page_simple(&k, pfn, mock_pg(&k, lo->pg_slab), 1, 0);
	CHECK_EQ(dec(&k, pfn).bits, PFS_PG_SLAB);
	uint64_t h = BASE + 0x80;
	mock_page_compound(&k, h, 2);
	mock_page_set_flags(&k, h, mock_pg(&k, lo->pg_head) | mock_pg(&k, lo->pg_slab));
	CHECK_EQ(dec(&k, h + 3).bits, PFS_PG_TAIL | PFS_PG_SLAB);
	/* -129 .. : a negative mapcount below PAGE_MAPCOUNT_RESERVE is "typed" */
	mock_page_simple(&k, pfn, 0, 1, 0);
	mock_page_set_mapcount_raw(&k, pfn, -100);
	CHECK_EQ(dec(&k, pfn).bits, 0);
	mock_kernel_fini(&k);
}

/* is_free_buddy_page(): heads of several orders, merged pages */
static void buddy(unsigned major, unsigned minor, uint32_t buddy_word)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, major, minor);
	uint64_t b3 = BASE + 0x1000, b10 = BASE + 0x2000, b2 = BASE + 0x3000;

	/* an order-3 free block; pfn b3+5 merged into it and lost PageBuddy */
	mock_page_simple(&k, b3, 0, 0, 0);
	mock_page_set_mapcount_raw(&k, b3, (int32_t)buddy_word);
	mock_page_set_private(&k, b3, 3);
	for (unsigned i = 1; i < 8; i++)
		mock_page_simple(&k, b3 + i, 0, 0, 0);
	struct pfs_page_info p = dec(&k, b3);
	CHECK_EQ(p.bits, PFS_PG_BUDDY | PFS_PG_TYPED | PFS_PG_FREE);
	p = dec(&k, b3 + 5);
	CHECK_EQ(p.bits, PFS_PG_FREE);
	CHECK_EQ(p.refcount, 0);
	CHECK_EQ(dec(&k, b3 + 7).bits, PFS_PG_FREE);
	CHECK_EQ(dec(&k, b3 + 8).bits, 0);
	CHECK_EQ(dec(&k, b3 - 1).bits, 0);

	/* an order-10 block (the largest): every page of it is free */
	mock_page_simple(&k, b10, 0, 0, 0);
	mock_page_set_mapcount_raw(&k, b10, (int32_t)buddy_word);
	mock_page_set_private(&k, b10, 10);
	CHECK(dec(&k, b10 + 1023).bits & PFS_PG_FREE);
	CHECK(dec(&k, b10 + 513).bits & PFS_PG_FREE);
	CHECK(!(dec(&k, b10 + 1024).bits & PFS_PG_FREE));
	/* an order-11 head is beyond NR_PAGE_ORDERS: its pages at offsets
	 * >= 1024 are not found (the candidate at order 11 is not checked) */

	/* an order-2 block: its head's order is too small to cover b2+4 */
	mock_page_simple(&k, b2, 0, 0, 0);
	mock_page_set_mapcount_raw(&k, b2, (int32_t)buddy_word);
	mock_page_set_private(&k, b2, 2);
	CHECK(dec(&k, b2 + 3).bits & PFS_PG_FREE);
	CHECK(!(dec(&k, b2 + 4).bits & PFS_PG_FREE));
	CHECK(!(dec(&k, b2 + 6).bits & PFS_PG_FREE));

	/* a run over the order-3 block and its neighbours */
	struct pfs_page_info run[16];
	pfs_page_decode_run(&k.t, b3 - 4, 16, run, NULL, NULL);
	for (unsigned i = 0; i < 16; i++)
		CHECK_EQ(!!(run[i].bits & PFS_PG_FREE), i >= 4 && i < 12);

	/* repeats: none inside a free block, nor over a PageBuddy head */
	check_same(&k, b3 - 4, 16);
	check_same(&k, b10 - 8, 1040);
	check_same(&k, b2 - 3, 12);

	/* an unreadable candidate struct page does not make a page free, nor
	 * break its decode: hide the memmap block of b10 */
	uint64_t blk = mock_page_pa(&k, b10) >> 12;
	mock_set_unreadable(&k, blk, 1);
	p = dec(&k, b10 + 1000);
	CHECK_EQ(p.state, PFS_PAGE_OK);
	CHECK(!(p.bits & PFS_PG_FREE));
	CHECK_EQ(dec(&k, b10).state, PFS_PAGE_UNREADABLE);
	mock_kernel_fini(&k);
}

TEST(page_buddy_free_6_1) { buddy(6, 1, 0xffffffffu & ~0x80u); }
TEST(page_buddy_free_6_12) { buddy(6, 12, 0xf0000000u); }

TEST(page_compound_head_forms)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 12);
	const struct pfs_layout *lo = &k.lo;
	uint64_t h = BASE + 0x4000;      /* 512-aligned: its folio's memmap is 32 KiB aligned */
	mock_page_compound(&k, h, 9);
	mock_page_set_refcount(&k, h, 7);

	/* 7.1 compound_info as a mask: head = page & info */
	k.lo.compound_info_is_mask = 1;
	uint64_t mask = ~((512ull * lo->page_size) - 1) | 1;
	for (unsigned i = 1; i < 512; i++)
		mock_page_set_compound_head(&k, h + i, mask);
	struct pfs_page_info p = dec(&k, h + 300);
	CHECK_EQ(p.head_pfn, h);
	CHECK_EQ(p.refcount, 7);
	CHECK(p.bits & PFS_PG_TAIL);
	k.lo.compound_info_is_mask = 0;
	for (unsigned i = 1; i < 512; i++)
		mock_page_set_compound_head(&k, h + i, mock_page_va(&k, h) | 1);

	/* HVO fake head: a page-aligned struct page (h + 64) that reads as a
	 * head; page[1] names the real head (page_fixed_fake_head()) */
	mock_page_set_flags(&k, h + 64, mock_pg(&k, lo->pg_head));
	mock_page_set_compound_head(&k, h + 64, 0);
	p = dec(&k, h + 64);
	CHECK_EQ(p.head_pfn, h);
	CHECK_EQ(p.refcount, 7);
	CHECK_EQ(p.bits & (PFS_PG_TAIL | PFS_PG_HEAD), PFS_PG_TAIL);
	/* the genuine head is not mistaken for a fake one */
	p = dec(&k, h);
	CHECK_EQ(p.head_pfn, h);
	CHECK(p.bits & PFS_PG_HEAD);

	/* garbage head pointers: outside vmemmap, above the page, misaligned */
	mock_page_set_compound_head(&k, h + 5, 0xffff888000001001ull);
	p = dec(&k, h + 5);
	CHECK_EQ(p.state, PFS_PAGE_OK);
	CHECK_EQ(p.head_pfn, UINT64_MAX);
	CHECK(p.bits & PFS_PG_TAIL);
	mock_page_set_compound_head(&k, h + 5, mock_page_va(&k, h + 9) | 1);
	CHECK_EQ(dec(&k, h + 5).head_pfn, UINT64_MAX);
	mock_page_set_compound_head(&k, h + 5, (mock_page_va(&k, h) + 8) | 1);
	CHECK_EQ(dec(&k, h + 5).head_pfn, UINT64_MAX);
	/* a head whose own struct page is unreadable */
	mock_page_set_compound_head(&k, h + 5, mock_page_va(&k, 0x3f0000) | 1);
	p = dec(&k, h + 5);
	CHECK(p.state == PFS_PAGE_UNREADABLE || p.head_pfn == UINT64_MAX);
	mock_kernel_fini(&k);
}

TEST(page_huge_zero)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 12);
	uint64_t h = BASE + 0x6000;
	mock_page_compound(&k, h, 9);
	k.lo.huge_zero_pfn = h;
	CHECK(dec(&k, h).bits & PFS_PG_ZERO);
	CHECK(dec(&k, h + 77).bits & PFS_PG_ZERO);
	CHECK(!(dec(&k, h + 512).bits & PFS_PG_ZERO));
	mock_kernel_fini(&k);
}

/* order-0 pages in one state repeat; any word decode reads, a tail, the
 * zero page or the huge zero folio's head breaks the run */
TEST(page_run_repeats)
{
	/* 6.1 and 6.12, with a 64-byte struct page (compared 32 bytes at a
	 * time where the CPU can: alike_from_avx2) and an 80-byte one (word
	 * by word) */
	for (unsigned v = 0; v < 4; v++) {
		unsigned minor = v & 1 ? 12 : 1;
		struct mock_kernel k;
		mock_kernel_init(&k, 4, 6, minor);
		if (v & 2)
			k.lo.page_size = 80;
		uint64_t start = BASE + 0x10000;
		for (unsigned i = 0; i < 512; i++) {
			mock_page_simple(&k, start + i, mock_pg(&k, k.lo.pg_uptodate), 1, 1);
			mock_page_set_mapping(&k, start + i, ANON_VMA | 1);
		}
		/* (80-byte pages: the run buffer holds 409, and the first
		 * page of its next fill is compared with none) */
		const unsigned refill = v & 2 ? 1 : 0;
		CHECK_EQ(check_same(&k, start, 512), 511 - refill);
		mock_page_set_refcount(&k, start + 10, 2);
		mock_page_set_mapcount_raw(&k, start + 20, 1);
		mock_page_set_mapping(&k, start + 30, ANON_VMA + 0x40 + 1);
		mock_page_set_flags(&k, start + 40, mock_pg(&k, k.lo.pg_uptodate) | mock_pg(&k, k.lo.pg_reserved));
		mock_page_compound(&k, start + 64, 3);
		k.lo.zero_pfn = start + 100;
		k.lo.huge_zero_pfn = start + 200;
		/* a tail whose head is no head (a dump taken as a folio split) */
		mock_page_set_compound_head(&k, start + 300, mock_page_va(&k, start + 290) | 1);
		pfs_reader_flush(&k.rd);
		/* each change breaks the run twice (at it and after it), the
		 * folio at its head, its 7 tails and after it */
		CHECK_EQ(check_same(&k, start, 512), 511 - 5 * 2 - 9 - 2 * 2 - refill);
		mock_kernel_fini(&k);
	}
	/* page_type in a word of its own, not _mapcount's: a free buddy page
	 * among order-0 ones breaks the run (6.1's page types clear a bit) */
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	k.lo.page_page_type = 32;
	uint64_t start = BASE + 0x10000;
	for (unsigned i = 0; i < 512; i++) {
		mock_page_simple(&k, start + i, mock_pg(&k, k.lo.pg_uptodate), 1, 1);
		mock_page_set(&k, start + i, 32, 4, 0xffffffffu);
	}
	pfs_reader_flush(&k.rd);
	CHECK_EQ(check_same(&k, start, 512), 511);
	mock_page_set(&k, start + 150, 32, 4, 0xffffff7fu);   /* PG_buddy */
	pfs_reader_flush(&k.rd);
	CHECK_EQ(dec(&k, start + 150).bits & PFS_PG_BUDDY, PFS_PG_BUDDY);
	CHECK_EQ(check_same(&k, start, 512), 509);
	mock_kernel_fini(&k);
}

TEST(page_unreadable_memmap_and_runs)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	struct pfs_page_info run[600];

	/* a valid pfn whose vmemmap 2 MiB block was never populated */
	uint64_t far = 0x3f0000;
	CHECK_EQ(pfn_valid(&k.t, far), 1);
	CHECK_EQ(dec(&k, far).state, PFS_PAGE_UNREADABLE);

	/* a run crossing from RAM into no-section space, with one unreadable
	 * memmap block in the middle */
	uint64_t start = MOCK_RAM_PFNS - 512;
	for (unsigned i = 0; i < 512; i++)
		mock_page_simple(&k, start + i, 0, 1, 1);
	mock_set_unreadable(&k, mock_page_pa(&k, start + 128) >> 12, 1);
	pfs_page_decode_run(&k.t, start, 600, run, NULL, NULL);
	/* every page repeats the one before but the first, the unreadable
	 * ones, the first readable after them and the first invalid one */
	CHECK_EQ(check_same(&k, start, 600), 600 - 1 - 64 - 1 - 1);
	for (unsigned i = 0; i < 600; i++) {
		unsigned want = i >= 512 ? PFS_PAGE_INVALID
			: (i >= 128 && i < 192) ? PFS_PAGE_UNREADABLE : PFS_PAGE_OK;
		CHECK_EQ(run[i].state, want);
		if (want == PFS_PAGE_OK)
			CHECK_EQ(run[i].mapcount, 1);
	}
	mock_kernel_fini(&k);
}

/* one bulk read per run of struct pages */
TEST(page_run_batched_reads)
{
	for (int levels = 4; levels <= 5; levels++) {
		struct mock_kernel k;
		mock_kernel_init(&k, levels, 6, 1);
		static struct pfs_page_info run[512], one[512];
		uint64_t start = BASE + 0x8000;
		for (unsigned i = 0; i < 512; i++) {
			mock_page_simple(&k, start + i, 0, (int32_t)i + 1, 1);
			mock_page_set_mapping(&k, start + i, ANON_VMA | 1);
		}
		/* a PTE-mapped THP inside the run */
		mock_page_compound(&k, start + 256, 6);
		pfs_reader_flush(&k.rd);
		uint64_t reads0 = k.rd.stats_reads, bytes0 = k.rd.stats_bytes;
		pfs_page_decode_run(&k.t, start, 512, run, NULL, NULL);
		uint64_t reads = k.rd.stats_reads - reads0, bytes = k.rd.stats_bytes - bytes0;
		/* mem_section (2 blocks), vmemmap page tables (3-4 blocks), one
		 * 32 KiB bulk read, and the order-10 buddy candidate block */
		CHECK(reads <= 10);
		CHECK(bytes <= 32768 + 10 * 4096);
		/* the same again: the bulk read, plus blocks the direct-mapped
		 * reader cache lost to collisions (5-level tables) */
		reads0 = k.rd.stats_reads;
		bytes0 = k.rd.stats_bytes;
		pfs_page_decode_run(&k.t, start, 512, run, NULL, NULL);
		CHECK(k.rd.stats_reads - reads0 <= 4);
		CHECK(k.rd.stats_bytes - bytes0 >= 32768);
		/* page by page gives the same answers */
		for (unsigned i = 0; i < 512; i++)
			pfs_page_decode(&k.t, start + i, &one[i]);
		for (unsigned i = 0; i < 512; i++) {
			CHECK_EQ(run[i].state, PFS_PAGE_OK);
			CHECK_EQ(run[i].refcount, one[i].refcount);
			CHECK_EQ(run[i].mapcount, one[i].mapcount);
			CHECK_EQ(run[i].page_mapcount, one[i].page_mapcount);
			CHECK_EQ(run[i].bits, one[i].bits);
			CHECK_EQ(run[i].head_pfn, one[i].head_pfn);
		}
		CHECK_EQ(run[300].head_pfn, start + 256);
		CHECK_EQ(run[300].refcount, 257);
		CHECK_EQ(run[10].refcount, 11);
		mock_kernel_fini(&k);
	}
}

/* a layout that does not fit struct page is refused, not read past */
TEST(page_bad_layout)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	k.lo.page_refcount = 62;
	struct pfs_page_info p = dec(&k, BASE);
	CHECK_EQ(p.state, PFS_PAGE_UNREADABLE);
	k.lo.page_refcount = 52;
	k.lo.page_size = 0;
	CHECK_EQ(dec(&k, BASE).state, PFS_PAGE_UNREADABLE);
	mock_kernel_fini(&k);
}
