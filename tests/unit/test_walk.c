/* SPDX-License-Identifier: MIT */
/* the walker on synthetic page tables in mock memory, 4 and 5 levels */
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "pfnscope/arch.h"
#include "pfnscope/diagnose.h"
#include "pfnscope/consumer.h"
#include "pfnscope/vnp.h"
#include "pfnscope/walk.h"

#define VA 0x7f1234400000ull     /* 2 MiB aligned */

struct got {
	unsigned n, max;
	struct pfs_entry *e;
	unsigned stop_after;
};

static int collect(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct got *g = arg;
	(void)vma;
	if (g->n < g->max)
		g->e[g->n] = *e;
	g->n++;
	return g->stop_after && g->n >= g->stop_after ? 42 : 0;
}

static struct got *got_new(unsigned max)
{
	struct got *g = calloc(1, sizeof(*g));
	g->max = max;
	g->e = calloc(max, sizeof(*g->e));
	return g;
}

static void got_free(struct got *g)
{
	free(g->e);
	free(g);
}

static const struct pfs_entry *at(const struct got *g, uint64_t addr)
{
	for (unsigned i = 0; i < g->n && i < g->max; i++)
		if (g->e[i].addr == addr)
			return &g->e[i];
	return NULL;
}

static struct pfs_vma vma_of(uint64_t start, uint64_t end, uint64_t flags, uint64_t pgoff)
{
	struct pfs_vma v;
	memset(&v, 0, sizeof(v));
	v.start = start;
	v.end = end;
	v.vm_flags = flags;
	v.pgoff = pgoff;
	return v;
}

#define ANON (PFS_VM_READ | PFS_VM_WRITE | PFS_VM_MAYREAD | PFS_VM_MAYWRITE)
#define SHARED_PFNMAP (PFS_VM_READ | PFS_VM_SHARED | PFS_VM_MAYSHARE | PFS_VM_MAYREAD | PFS_VM_IO | PFS_VM_PFNMAP)

static void walk_mixed_entries(int levels, unsigned maj, unsigned min)
{
	struct mock_kernel k;
	mock_kernel_init(&k, levels, maj, min);
	uint64_t pgd = mock_user_pgd(&k);
	uint64_t a = mock_alloc_pfn(&k), b = mock_alloc_pfn(&k);
	mock_page_simple(&k, a, 0, 1, 1);
	mock_page_set_mapping(&k, a, 0xffff888000100001ull);   /* anon */
	mock_page_simple(&k, b, 0, 1, 1);
	mock_map(&k, pgd, VA + 0x0000, PFS_LEVEL_PTE, MOCK_PTE(a, MOCK_USER_PTE | MOCK_NX));
	mock_map(&k, pgd, VA + 0x1000, PFS_LEVEL_PTE, MOCK_PTE(b, MOCK_USER_PTE | MOCK_SPECIAL));  /* bad special */
	mock_map(&k, pgd, VA + 0x2000, PFS_LEVEL_PTE, MOCK_PTE(k.lo.zero_pfn, MOCK_P | MOCK_US | MOCK_SPECIAL));
	mock_map(&k, pgd, VA + 0x3000, PFS_LEVEL_PTE, ((uint64_t)1 << 59) | ((~0x777ull << 14) >> 5)); /* swap */
	mock_map(&k, pgd, VA + 0x5000, PFS_LEVEL_PTE, MOCK_PTE(MOCK_MMIO_PFN, MOCK_USER_PTE));         /* beyond */
	/* a THP at VA + 2 MiB */
	uint64_t thp = 0x200000;   /* pfn 2 MiB aligned, RAM */
	mock_page_compound(&k, thp, 9);
	mock_page_set_refcount(&k, thp, 512);
	mock_page_set_mapping(&k, thp, 0xffff888000100001ull);
	if (k.lo.page_compound_mapcount != PFS_ABSENT)
		mock_page_set(&k, thp, (int32_t)k.lo.page_size + k.lo.page_compound_mapcount, 4, 0);
	if (k.lo.folio_large_mapcount != PFS_ABSENT)
		mock_page_set(&k, thp, k.lo.folio_large_mapcount, 4, 0);
	mock_map(&k, pgd, VA + (2ull << 20), PFS_LEVEL_PMD, (thp << 12) | MOCK_USER_PTE | MOCK_PSE);
	/* an unreadable pte table at VA + 4 MiB */
	uint64_t c = mock_alloc_pfn(&k);
	mock_map(&k, pgd, VA + (4ull << 20), PFS_LEVEL_PTE, MOCK_PTE(c, MOCK_USER_PTE));
	mock_set_unreadable(&k, mock_table_pa(&k, pgd, VA + (4ull << 20), PFS_LEVEL_PTE) >> 12, 1);

	struct pfs_vma v = vma_of(VA, VA + (6ull << 20), ANON, 0);
	struct got *g = got_new(4096);
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, 0, UINT64_MAX, 0, collect, g), 0);
	CHECK_EQ(g->n, 7);
	const struct pfs_entry *e = at(g, VA);
	REQUIRE(e);
	CHECK_EQ(e->kind, PFS_KIND_PRESENT);
	CHECK_EQ(e->pfn, a);
	CHECK_EQ(e->level, PFS_LEVEL_PTE);
	CHECK_EQ(e->normal_page, 1);
	CHECK_EQ(e->vnp_reason, PFS_VNP_NOT_SPECIAL);
	CHECK_EQ(e->page.state, PFS_PAGE_OK);
	CHECK_EQ(e->page.refcount, 1);
	CHECK_EQ(e->page.mapcount, 1);
	CHECK(e->page.bits & PFS_PG_ANON);
	CHECK_EQ(e->diag, 0);
	CHECK_EQ(e->consumers[PFS_C_GUP], PFS_CV_PAGE);
	e = at(g, VA + 0x1000);
	REQUIRE(e);
	CHECK_EQ(e->vnp_reason, PFS_VNP_BAD_SPECIAL);
	CHECK_EQ(e->diag, 1u << PFS_D_BAD_SPECIAL);
	e = at(g, VA + 0x2000);
	REQUIRE(e);
	CHECK_EQ(e->vnp_reason, PFS_VNP_ZERO_PFN);
	CHECK(e->page.bits & PFS_PG_RESERVED);
	CHECK_EQ(e->consumers[PFS_C_GUP], PFS_CV_ZERO_PAGE);
	CHECK_EQ(e->diag, 0);
	e = at(g, VA + 0x3000);
	REQUIRE(e);
	CHECK_EQ(e->kind, PFS_KIND_SWAP);
	CHECK_EQ(e->swp_type, 1);
	CHECK_EQ(e->swp_offset, 0x777);
	CHECK_EQ(e->page.state, PFS_PAGE_NONE);
	e = at(g, VA + 0x5000);
	REQUIRE(e);
	CHECK_EQ(e->page.state, PFS_PAGE_INVALID);
	CHECK_EQ(e->diag, 1u << PFS_D_PFN_BEYOND_MEMMAP);
	e = at(g, VA + (2ull << 20));
	REQUIRE(e);
	CHECK_EQ(e->level, PFS_LEVEL_PMD);
	CHECK_EQ(e->pfn, thp);
	CHECK(e->bits & PFS_E_LEAF);
	CHECK_EQ(e->normal_page, 1);
	CHECK(e->page.bits & PFS_PG_HEAD);
	CHECK_EQ(e->page.order, 9);
	e = at(g, VA + (4ull << 20));
	REQUIRE(e);
	CHECK_EQ(e->kind, PFS_KIND_UNREADABLE);
	CHECK_EQ(e->level, PFS_LEVEL_PTE);
	CHECK_EQ(pfs_entry_span(e), 2ull << 20);
	CHECK_EQ(pfs_entry_span(at(g, VA + (2ull << 20))), 2ull << 20);
	CHECK_EQ(pfs_entry_span(at(g, VA)), 4096);
	CHECK_EQ(e->consumers[PFS_C_GUP], PFS_CV_NA);

	/* entries come in address order */
	for (unsigned i = 1; i < g->n; i++)
		CHECK(g->e[i].addr > g->e[i - 1].addr);

	/* PFS_WALK_NONE: the none ptes of the first table, the none pmd at
	 * 6 MiB is outside; clamped to [VA, VA + 8 KiB) */
	g->n = 0;
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA, VA + 0x2000, PFS_WALK_NONE, collect, g), 0);
	CHECK_EQ(g->n, 2);
	g->n = 0;
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA + 0x3000, VA + 0x6000, PFS_WALK_NONE, collect, g), 0);
	CHECK_EQ(g->n, 3);
	CHECK_EQ(g->e[1].kind, PFS_KIND_NONE);
	/* a none pmd is one record at pmd level */
	struct pfs_vma v2 = vma_of(VA + (6ull << 20), VA + (8ull << 20), ANON, 0);
	g->n = 0;
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v2, 0, UINT64_MAX, PFS_WALK_NONE, collect, g), 0);
	CHECK_EQ(g->n, 1);
	CHECK_EQ(g->e[0].level, PFS_LEVEL_PMD);
	CHECK_EQ(g->e[0].kind, PFS_KIND_NONE);
	/* PFS_WALK_NO_PAGE: no struct page decode */
	g->n = 0;
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA, VA + 0x1000, PFS_WALK_NO_PAGE, collect, g), 0);
	CHECK_EQ(g->n, 1);
	CHECK_EQ(g->e[0].page.state, PFS_PAGE_NONE);
	CHECK_EQ(g->e[0].normal_page, 1);
	/* the callback stops the walk */
	g->n = 0;
	g->stop_after = 2;
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, 0, UINT64_MAX, 0, collect, g), 42);
	CHECK_EQ(g->n, 2);
	/* empty range */
	g->n = 0;
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA + (9ull << 20), UINT64_MAX, 0, collect, g), 0);
	CHECK_EQ(g->n, 0);
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, NULL, 0, 1, 0, collect, g), -PFS_EINVAL);
	got_free(g);
	mock_kernel_fini(&k);
}

TEST(walk_4level_6_1) { walk_mixed_entries(4, 6, 1); }
TEST(walk_5level_6_1) { walk_mixed_entries(5, 6, 1); }
TEST(walk_4level_6_12) { walk_mixed_entries(4, 6, 12); }
TEST(walk_5level_7_2) { walk_mixed_entries(5, 7, 2); }

TEST(walk_pud_leaf_and_pfnmap)
{
	for (int levels = 4; levels <= 5; levels++) {
		struct mock_kernel k;
		mock_kernel_init(&k, levels, 6, 12);
		uint64_t pgd = mock_user_pgd(&k);
		uint64_t base = 0x7f0000000000ull;   /* 1 GiB aligned */
		uint64_t mmio = MOCK_MMIO_PFN;
		/* huge pfnmap: special pud leaf (6.12+) and 512 special ptes */
		mock_map(&k, pgd, base, PFS_LEVEL_PUD, (mmio << 12) | MOCK_USER_PTE | MOCK_PSE | MOCK_SPECIAL);
		for (unsigned i = 0; i < 512; i++)
			mock_map(&k, pgd, base + (1ull << 30) + i * 4096ull, PFS_LEVEL_PTE,
				 MOCK_PTE(mmio + (1 << 18) + i, MOCK_USER_PTE | MOCK_SPECIAL | MOCK_PCD));
		struct pfs_vma v = vma_of(base, base + (1ull << 30) + (2ull << 20), SHARED_PFNMAP, mmio);
		struct got *g = got_new(1024);
		CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, 0, UINT64_MAX, 0, collect, g), 0);
		CHECK_EQ(g->n, 513);
		CHECK_EQ(g->e[0].level, PFS_LEVEL_PUD);
		CHECK_EQ(g->e[0].pfn, mmio);
		CHECK_EQ(g->e[0].vnp_reason, PFS_VNP_PMD_NOT_NORMAL);
		CHECK_EQ(g->e[0].consumers[PFS_C_FOLLOW_PTE], PFS_CV_PFN);
		CHECK_EQ(g->e[0].page.state, PFS_PAGE_INVALID);
		CHECK_EQ(g->e[1].vnp_reason, PFS_VNP_PFNMAP);
		CHECK(g->e[1].bits & PFS_E_PCD);
		CHECK_EQ(g->e[1].consumers[PFS_C_VFIO], PFS_CV_PFN);
		CHECK_EQ(g->e[1].diag, 0);   /* linear: pgoff + off */
		CHECK_EQ(pfs_diagnose_vma(&k.lo, &v), 0);
		got_free(g);
		mock_kernel_fini(&k);
	}
}

/* a full table of consecutive pfns: 1 table read + 1 memmap read */
static uint64_t count_pa, count_hits, count_big;
static int counting_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
	if (pa == count_pa)
		count_hits++;
	if (len > PFS_PAGE_SIZE)
		count_big++;   /* only struct page runs are read in bulk */
	return mock_read_phys(ctx, pa, buf, len);
}

TEST(walk_reads_once_per_table_and_run)
{
	for (int levels = 4; levels <= 5; levels++) {
		struct mock_kernel k;
		mock_kernel_init(&k, levels, 6, 1);
		uint64_t pgd = mock_user_pgd(&k);
		uint64_t first = mock_alloc_pfns(&k, 1024);
		for (unsigned i = 0; i < 1024; i++) {
			mock_page_simple(&k, first + i, 0, 1, 1);
			mock_page_set_mapping(&k, first + i, 0xffff888000100001ull);
		}
		/* table 1: one run of 512; table 2: two runs of 256 */
		for (unsigned i = 0; i < 512; i++) {
			mock_map(&k, pgd, VA + i * 4096ull, PFS_LEVEL_PTE, MOCK_PTE(first + i, MOCK_USER_PTE));
			uint64_t pfn2 = i < 256 ? first + 512 + i : first + 512 + 300 + i;
			if (i >= 256) {
				mock_page_simple(&k, pfn2, 0, 1, 1);
				mock_page_set_mapping(&k, pfn2, 0xffff888000100001ull);
			}
			mock_map(&k, pgd, VA + (2ull << 20) + i * 4096ull, PFS_LEVEL_PTE,
				 MOCK_PTE(pfn2, MOCK_USER_PTE));
		}
		struct pfs_vma v = vma_of(VA, VA + (4ull << 20), ANON, 0);
		struct got *g = got_new(1024);
		k.rd.read_phys = counting_read;

		/* cold: the pte table is read once, the run in one bulk read */
		count_pa = mock_table_pa(&k, pgd, VA, PFS_LEVEL_PTE);
		count_hits = count_big = 0;
		CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA, VA + (2ull << 20), 0, collect, g), 0);
		CHECK_EQ(g->n, 512);
		CHECK_EQ(count_hits, 1);
		CHECK_EQ(count_big, 1);
		/* warm: the table is cached, only the memmap run is read */
		uint64_t r0 = k.rd.stats_reads;
		g->n = 0;
		CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA, VA + (2ull << 20), 0, collect, g), 0);
		CHECK_EQ(k.rd.stats_reads - r0, 1);
		/* second table, two runs: one table read, two bulk reads */
		count_pa = mock_table_pa(&k, pgd, VA + (2ull << 20), PFS_LEVEL_PTE);
		count_hits = count_big = 0;
		g->n = 0;
		CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA + (2ull << 20), VA + (4ull << 20), 0, collect, g), 0);
		CHECK_EQ(g->n, 512);
		CHECK_EQ(count_hits, 1);
		CHECK_EQ(count_big, 2);
		r0 = k.rd.stats_reads;
		g->n = 0;
		CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA + (2ull << 20), VA + (4ull << 20), 0, collect, g), 0);
		CHECK_EQ(k.rd.stats_reads - r0, 2);
		for (unsigned i = 0; i < 512 && i < g->n; i++)
			if (g->e[i].page.refcount != 1 || g->e[i].diag) {
				CHECK_EQ(g->e[i].page.refcount, 1);
				CHECK_EQ(g->e[i].diag, 0);
				break;
			}
		/* no page decode: the table read only */
		r0 = k.rd.stats_reads;
		pfs_target_flush(&k.t);
		g->n = 0;
		CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA, VA + (2ull << 20), PFS_WALK_NO_PAGE, collect, g), 0);
		CHECK_EQ(k.rd.stats_reads - r0, (uint64_t)levels);
		got_free(g);
		mock_kernel_fini(&k);
	}
}

TEST(walk_garbage_tables_are_bounded)
{
	for (int levels = 4; levels <= 5; levels++) {
		struct mock_kernel k;
		mock_kernel_init(&k, levels, 6, 1);
		uint64_t pgd = mock_user_pgd(&k);
		/* every pgd entry points to the pgd itself: a loop */
		for (unsigned i = 0; i < 512; i++)
			mock_write_u64(&k, pgd + i * 8, pgd | 0x67);
		struct pfs_vma v = vma_of(0x1000, 0x7ffffffff000ull, ANON, 0);
		struct got *g = got_new(16);
		CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, 0, UINT64_MAX, 0, collect, g), 0);
		CHECK_EQ(g->n, 0);
		/* a pud table whose entries all point to one pmd table whose
		 * entries are garbage swap-like values: visited by index only */
		uint64_t pgd2 = mock_user_pgd(&k);
		uint64_t pud = mock_alloc_pfn(&k) << 12, pmd = mock_alloc_pfn(&k) << 12;
		mock_map(&k, pgd2, 0x7f0000000000ull, levels == 5 ? PFS_LEVEL_P4D : PFS_LEVEL_PGD, 0);
		for (unsigned i = 0; i < 512; i++)
			mock_write_u64(&k, pmd + i * 8, 0x8000000000000000ull | (i << 12) | 0x2);
		for (unsigned i = 0; i < 4; i++)
			mock_write_u64(&k, pud + i * 8, pmd | 0x67);
		uint64_t top_idx = (0x7f0000000000ull >> 39) & 511;
		if (levels == 5) {
			uint64_t p4d = mock_read_u64(&k, pgd2) & 0x000ffffffffff000ull;
			if (!p4d) {
				p4d = mock_alloc_pfn(&k) << 12;
				mock_write_u64(&k, pgd2, p4d | 0x67);
			}
			mock_write_u64(&k, p4d + top_idx * 8, pud | 0x67);
		} else {
			mock_write_u64(&k, pgd2 + top_idx * 8, pud | 0x67);
		}
		struct pfs_vma v2 = vma_of(0x7f0000000000ull, 0x7f0000000000ull + (4ull << 30), ANON, 0);
		g->n = 0;
		CHECK_EQ(pfs_walk_vma(&k.t, pgd2, &v2, 0, UINT64_MAX, 0, collect, g), 0);
		CHECK_EQ(g->n, 4 * 512);
		got_free(g);
		mock_kernel_fini(&k);
	}
}

TEST(walk_diagnoses_on_real_struct_pages)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t pgd = mock_user_pgd(&k);
	/* io_uring-like: special ptes over a freed (buddy) block in a pfnmap */
	uint64_t blk = mock_alloc_pfns(&k, 8);
	blk = (blk + 7) & ~7ull;
	mock_alloc_pfns(&k, 8);
	mock_page_set_mapcount_raw(&k, blk, (int32_t)0xffffff7f);   /* 6.1 PageBuddy */
	mock_page_set_private(&k, blk, 3);
	mock_page_set_refcount(&k, blk, 0);
	for (unsigned i = 0; i < 4; i++)
		mock_map(&k, pgd, VA + i * 4096ull, PFS_LEVEL_PTE, MOCK_PTE(blk + i, MOCK_USER_PTE | MOCK_SPECIAL));
	struct pfs_vma v = vma_of(VA, VA + 0x4000, SHARED_PFNMAP, blk);
	struct got *g = got_new(16);
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, 0, UINT64_MAX, 0, collect, g), 0);
	CHECK_EQ(g->n, 4);
	for (unsigned i = 0; i < 4 && i < g->n; i++) {
		CHECK(g->e[i].diag & (1u << PFS_D_MAPS_FREED_PAGE));
		CHECK(g->e[i].diag & (1u << PFS_D_SPECIAL_OVER_RAM));
		CHECK_EQ(pfs_diag_max_severity(g->e[i].diag), PFS_SEV_CRITICAL);
	}
	/* case B: COWed anon page in a private /dev/mem mapping */
	uint64_t anon = mock_alloc_pfn(&k);
	mock_page_simple(&k, anon, 0, 1, 1);
	mock_page_set_mapping(&k, anon, 0xffff888000100001ull);
	uint64_t va2 = VA + (2ull << 20);
	mock_map(&k, pgd, va2, PFS_LEVEL_PTE, MOCK_PTE(0x10, MOCK_P | MOCK_US | MOCK_SPECIAL));
	mock_map(&k, pgd, va2 + 0x1000, PFS_LEVEL_PTE, MOCK_PTE(anon, MOCK_USER_PTE));
	struct pfs_vma cow = vma_of(va2, va2 + 0x2000,
				    PFS_VM_READ | PFS_VM_WRITE | PFS_VM_MAYREAD | PFS_VM_MAYWRITE | PFS_VM_IO | PFS_VM_PFNMAP,
				    0x10);
	mock_page_simple(&k, 0x10, mock_pg(&k, k.lo.pg_reserved), 1, 0);
	g->n = 0;
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &cow, 0, UINT64_MAX, 0, collect, g), 0);
	CHECK_EQ(g->n, 2);
	CHECK_EQ(g->e[0].diag, 0);
	CHECK_EQ(g->e[0].vnp_reason, PFS_VNP_PFNMAP);
	CHECK_EQ(g->e[1].diag, 1u << PFS_D_PFNMAP_COW_ANON);
	CHECK_EQ(g->e[1].consumers[PFS_C_GUP_FAST], PFS_CV_PAGE);
	CHECK_EQ(g->e[1].consumers[PFS_C_VFIO], PFS_CV_EFAULT);
	got_free(g);
	mock_kernel_fini(&k);
}

/* Verdicts decided once per run of ptes in the same state (walk_ptes) are
 * those each entry gets alone: a run of 512 contiguous anon pages broken by
 * a refcount-0 page, a mapcount-0 page, the zero pfn, highest_memmap_pfn
 * and a special pte. */
TEST(walk_run_verdicts_equal_per_entry)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t pgd = mock_user_pgd(&k);
	uint64_t first = mock_alloc_pfns(&k, 512);
	for (unsigned i = 0; i < 512; i++) {
		mock_page_simple(&k, first + i, 0, 1, 1);
		mock_page_set_mapping(&k, first + i, 0xffff888000100001ull);
		mock_map(&k, pgd, VA + i * 4096ull, PFS_LEVEL_PTE,
			 MOCK_PTE(first + i, MOCK_USER_PTE | (i == 450 ? MOCK_SPECIAL : 0)));
	}
	mock_page_set_refcount(&k, first + 100, 0);
	mock_page_set_mapcount_raw(&k, first + 200, -1);
	k.lo.zero_pfn = first + 300;
	k.lo.highest_memmap_pfn = first + 400;
	struct pfs_vma v = vma_of(VA, VA + (2ull << 20), ANON, 0);
	struct got *g = got_new(512);
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, VA, VA + (2ull << 20), 0, collect, g), 0);
	CHECK_EQ(g->n, 512);
	unsigned bad = 0;
	for (unsigned i = 0; i < 512 && i < g->n; i++) {
		struct pfs_entry e = g->e[i];
		int valid = e.page.state == PFS_PAGE_INVALID ? 0 :
			    e.page.state == PFS_PAGE_NONE ? e.pfn <= k.lo.highest_memmap_pfn : 1;
		pfs_vnp(&k.lo, &v, &e, valid);
		pfs_consumers(&k.lo, &v, &e);
		pfs_diagnose_entry(&k.lo, &v, &e);
		if (e.normal_page != g->e[i].normal_page || e.vnp_reason != g->e[i].vnp_reason ||
		    e.diag != g->e[i].diag || memcmp(e.consumers, g->e[i].consumers, sizeof(e.consumers)))
			bad++;
	}
	CHECK_EQ(bad, 0);
	/* the breaks are there to be found */
	CHECK(g->e[100].diag & (1u << PFS_D_REFCOUNT_BELOW_MAPCOUNT));
	CHECK(!(g->e[99].diag & (1u << PFS_D_REFCOUNT_BELOW_MAPCOUNT)));
	CHECK(!(g->e[101].diag & (1u << PFS_D_REFCOUNT_BELOW_MAPCOUNT)));
	CHECK(g->e[200].diag & (1u << PFS_D_REFCOUNT_BELOW_MAPCOUNT));
	CHECK_EQ(g->e[401].vnp_reason, PFS_VNP_BEYOND_HIGHEST_MEMMAP);
	CHECK_EQ(g->e[400].vnp_reason, PFS_VNP_NOT_SPECIAL);
	CHECK(g->e[450].diag & (1u << PFS_D_BAD_SPECIAL));
	got_free(g);
	mock_kernel_fini(&k);
}

static int entry_eq(const struct pfs_entry *a, const struct pfs_entry *b)
{
	const struct pfs_page_info *p = &a->page, *q = &b->page;

	return a->addr == b->addr && a->raw == b->raw && a->pfn == b->pfn &&
	       a->swp_offset == b->swp_offset && a->bits == b->bits && a->diag == b->diag &&
	       a->level == b->level && a->kind == b->kind && a->swp_type == b->swp_type &&
	       a->normal_page == b->normal_page && a->vnp_reason == b->vnp_reason &&
	       !memcmp(a->consumers, b->consumers, sizeof(a->consumers)) &&
	       a->changed == b->changed && a->changed_diag == b->changed_diag &&
	       p->state == q->state && p->bits == q->bits && p->refcount == q->refcount &&
	       p->page_refcount == q->page_refcount && p->mapcount == q->mapcount &&
	       p->page_mapcount == q->page_mapcount && p->raw_mapcount == q->raw_mapcount &&
	       p->flags == q->flags && p->head_pfn == q->head_pfn && p->order == q->order &&
	       p->mapping == q->mapping;
}

/* the entry of one pte decided on its own: no run, no repeat */
static struct pfs_entry lone_entry(struct mock_kernel *k, const struct pfs_vma *v, uint64_t addr,
				   uint64_t raw)
{
	struct pfs_entry e;
	memset(&e, 0, sizeof(e));
	e.pfn = PFS_NO_PFN;
	pfs_decode_entry(&k->lo, raw, PFS_LEVEL_PTE, &e);
	e.addr = addr;
	if (e.pfn != PFS_NO_PFN)
		pfs_page_decode(&k->t, e.pfn, &e.page);
	int valid = e.page.state == PFS_PAGE_INVALID ? 0 :
		    e.page.state == PFS_PAGE_NONE ? e.pfn <= k->lo.highest_memmap_pfn : 1;
	pfs_vnp(&k->lo, v, &e, valid);
	pfs_consumers(&k->lo, v, &e);
	pfs_diagnose_entry(&k->lo, v, &e);
	return e;
}

struct got_repeats {
	struct got *g;
	uint64_t calls, entries;
};

static int collect_entry(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct got_repeats *r = arg;
	return collect(e, vma, r->g);
}

/* the repeat callback, each entry made from the one before */
static int collect_repeats(const struct pfs_entry *e, uint64_t count, const uint64_t *raw,
			   const struct pfs_vma *vma, void *arg)
{
	struct got_repeats *r = arg;
	struct pfs_entry x = *e;
	r->calls++;
	r->entries += count;
	for (uint64_t i = 0; i < count; i++) {
		pfs_entry_step(&x, 1, raw[i]);
		collect(&x, vma, r->g);
	}
	return 0;
}

/* The walk of the 1024 ptes raw at VA over an anon VMA, the zero page, the
 * huge zero folio and highest_memmap_pfn where given, with and without the
 * repeat callback, in every mode, gives the entries each pte decides on its
 * own; the fewest repeats delivered through the callback and the fewest and
 * most calls. */
static void walk_repeats_check(struct mock_kernel *k, uint64_t pgd, const uint64_t *raw,
			       uint64_t zero_pfn, uint64_t huge_zero_pfn, uint64_t highest,
			       uint64_t *min_entries, uint64_t *min_calls, uint64_t *max_calls)
{
	k->lo.zero_pfn = zero_pfn;
	k->lo.huge_zero_pfn = huge_zero_pfn;
	k->lo.highest_memmap_pfn = highest;
	pfs_reader_flush(&k->rd);
	struct pfs_vma vma = vma_of(VA, VA + (4ull << 20), ANON, 0), *v = &vma;
	*min_entries = *min_calls = UINT64_MAX;
	*max_calls = 0;
	for (int with_rcb = 0; with_rcb <= 1; with_rcb++) {
		for (unsigned flags = 0; flags <= (PFS_WALK_NONE | PFS_WALK_NO_PAGE); flags++) {
			struct got_repeats r = { got_new(1024), 0, 0 };
			CHECK_EQ(pfs_walk_vma_repeats(&k->t, pgd, v, VA, VA + (4ull << 20), flags,
						      collect_entry, with_rcb ? collect_repeats : NULL, &r), 0);
			unsigned bad = 0, n = 0;
			for (unsigned i = 0; i < 1024; i++) {
				if (!raw[i] && !(flags & PFS_WALK_NONE))
					continue;
				struct pfs_entry want = lone_entry(k, v, VA + i * 4096ull, raw[i]);
				if (flags & PFS_WALK_NO_PAGE) {
					memset(&want.page, 0, sizeof(want.page));
					pfs_vnp(&k->lo, v, &want, want.pfn <= k->lo.highest_memmap_pfn);
					pfs_consumers(&k->lo, v, &want);
					pfs_diagnose_entry(&k->lo, v, &want);
				}
				bad += n >= r.g->n || !entry_eq(&r.g->e[n], &want);
				n++;
			}
			CHECK_EQ(r.g->n, n);
			CHECK_EQ(bad, 0);
			if (with_rcb) {
				*min_entries = r.entries < *min_entries ? r.entries : *min_entries;
				*min_calls = r.calls < *min_calls ? r.calls : *min_calls;
				*max_calls = r.calls > *max_calls ? r.calls : *max_calls;
			}
			got_free(r.g);
		}
	}
}

/* Entries that repeat the one before (pte and struct page) are the entries
 * each pte decides on its own, through the entry callback and through the
 * repeat callback; the repeats are there to be found. */
TEST(walk_repeats_equal_lone_entries)
{
	/* a 64-byte struct page (compared 32 bytes at a time where the CPU
	 * can: alike_from_avx2) and an 80-byte one (word by word) */
	for (unsigned ps = 64; ps <= 80; ps += 16) {
		struct mock_kernel k;
		mock_kernel_init(&k, 4, 6, 1);
		k.lo.page_size = ps;
		uint64_t pgd = mock_user_pgd(&k);
		uint64_t first = mock_alloc_pfns(&k, 1024), raw[1024];
		for (unsigned i = 0; i < 1024; i++) {
			uint64_t pfn = first + i, bits = MOCK_USER_PTE;
			mock_page_simple(&k, pfn, 0, 1, 1);
			mock_page_set_mapping(&k, pfn, 0xffff888000100001ull);
			if (i == 50)
				bits &= ~MOCK_D;
			if (i == 450)
				bits |= MOCK_SPECIAL;
			if (i >= 600 && i < 700)
				pfn = first + i - 600 + 20;    /* the same pages again */
			raw[i] = i == 60 || i == 512 + 7 ? 0 : MOCK_PTE(pfn, bits);
			mock_map(&k, pgd, VA + i * 4096ull, PFS_LEVEL_PTE, raw[i]);
		}
		mock_page_compound(&k, first + 72, 3);
		mock_page_set_refcount(&k, first + 100, 0);
		/* and the same with the struct pages decoded where the reader
		 * maps them (pfs_map_phys_bulk) instead of copied */
		for (int map = 0; map <= 1; map++) {
			uint64_t entries, min_calls, max_calls;
			pfs_reader_set_map(&k.rd, map ? mock_map_phys : NULL);
			size_t views = k.mem.nviews;
			walk_repeats_check(&k, pgd, raw, first + 300, first + 320, first + 400,
					   &entries, &min_calls, &max_calls);
			/* a run from each break to the next: breaks at 0, 50,
			 * 51, the none pte and after it, the THP and after it,
			 * ... */
			CHECK(min_calls >= 10 && max_calls <= 40);
			CHECK(entries >= 900);
			CHECK_EQ(k.mem.nviews > views, map);
		}
		mock_kernel_fini(&k);
	}
}

/* A stretch of ptes each the one before with its pfn one up ends where the
 * pfn field would carry out of its bits: into bit 52 (a bit the decode
 * ignores), or into the SME C-bit (bit 47); the ptes from there decode on
 * their own, as pfs_pte_next() says. */
TEST(walk_repeats_stop_at_a_carry)
{
	for (int sme = 0; sme <= 1; sme++) {
		struct mock_kernel k;
		mock_kernel_init(&k, 4, 6, 1);
		if (sme)
			k.lo.sme_mask = 1ull << 47;
		uint64_t pgd = mock_user_pgd(&k);
		uint64_t top = sme ? (1ull << 35) - 1 : (1ull << 40) - 1, raw[1024];
		for (unsigned i = 0; i < 1024; i++) {
			/* the pfn field full at i = 700, the carry at 701 */
			raw[i] = MOCK_PTE(top - 700 + i, MOCK_USER_PTE);
			mock_map(&k, pgd, VA + i * 4096ull, PFS_LEVEL_PTE, raw[i]);
		}
		CHECK_EQ(pfs_pte_next(raw[700], pfs_arch_get(&k.lo)->pte_pfn_mask(&k.lo)), 0);
		uint64_t entries, min_calls, max_calls;
		walk_repeats_check(&k, pgd, raw, 0, 0, 1ull << 30, &entries, &min_calls, &max_calls);
		/* the stretch up to the carry taken whole, another after it
		 * (over the struct pages of pfns 0 up) */
		CHECK(min_calls >= 2);
		CHECK(entries >= 699);
		mock_kernel_fini(&k);
	}
}

/* Repeats stop at the zero page, at highest_memmap_pfn and at the huge zero
 * folio, whose 512 pages each decide on their own (zeroish()). */
TEST(walk_repeats_stop_at_zero_pages)
{
	/* 6.18: __vm_normal_page() tells the huge zero folio's ptes apart */
	static const unsigned minor[] = { 1, 18 };
	for (unsigned m = 0; m < 2; m++) {
		struct mock_kernel k;
		mock_kernel_init(&k, 4, 6, minor[m]);
		uint64_t pgd = mock_user_pgd(&k);
		uint64_t first = mock_alloc_pfns(&k, 2048), raw[1024];
		/* pte i maps pfn p + i; the huge zero folio from pte 256 to 767,
		 * across the pte tables' boundary */
		uint64_t p = ((first + 511) & ~511ull) + 256;
		for (unsigned i = 0; i < 1024; i++) {
			mock_page_simple(&k, p + i, 0, 1, 1);
			/* special: the huge zero folio's ptes are (vm_normal_page
			 * tells them by pfn, the diagnoses too) */
			raw[i] = MOCK_PTE(p + i, MOCK_USER_PTE | MOCK_SPECIAL);
			mock_map(&k, pgd, VA + i * 4096ull, PFS_LEVEL_PTE, raw[i]);
		}
		uint64_t entries, min_calls, max_calls;
		walk_repeats_check(&k, pgd, raw, p + 100, p + 256, p + 200,
				   &entries, &min_calls, &max_calls);
		/* repeats in [1, 99], [102, 200], [202, 255], [769, 1023] */
		CHECK(entries >= 490 && entries <= 510);
		CHECK(min_calls >= 4);
		mock_kernel_fini(&k);
	}
}
