/* SPDX-License-Identifier: MIT */
/*
 * PFS_WALK_CONFIRM on mock memory that changes under the walk: a reader
 * that, once a watched physical address has been read, writes new bytes
 * into memory (as a running kernel would between the walk's first read
 * and its re-read).  A finding whose entry, parent entry, struct page or
 * VMA changed in between must come back as a changed entry without
 * diagnoses; an unchanged one keeps its diagnoses.
 */
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "mock_mm.h"
#include "pfnscope/diagnose.h"
#include "pfnscope/json.h"
#include "pfnscope/walk.h"

#define VA 0x7f1234400000ull     /* 2 MiB aligned */
#define ANON (PFS_VM_READ | PFS_VM_WRITE | PFS_VM_MAYREAD | PFS_VM_MAYWRITE)

/* one mutation, applied after the first read that covers `watch` */
struct mutating {
	struct mock_kernel *k;
	uint64_t watch;          /* PA whose first read triggers the write */
	uint64_t pa, val;        /* the u64 written then */
	int fired;
	unsigned reads_after;    /* reads after the mutation (re-reads) */
};

static int mutating_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
	struct mutating *m = ctx;
	int r = mock_read_phys(&m->k->mem, pa, buf, len);
	if (m->fired)
		m->reads_after++;
	if (!m->fired && m->watch >= pa && m->watch < pa + len) {
		m->fired = 1;
		/* memory only: the walk's cache keeps what it read first */
		mock_mem_write(&m->k->mem, m->pa, &m->val, 8);
	}
	return r;
}

struct one {
	unsigned n;
	struct pfs_entry e[4];
};

static int keep(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct one *o = arg;
	(void)vma;
	if (o->n < 4)
		o->e[o->n] = *e;
	o->n++;
	return 0;
}

struct setup {
	struct mock_kernel k;
	uint64_t pgd, pfn, vma_va, mm;
	struct pfs_vma v;
	struct mutating m;
};

/* a special pte over a refcounted RAM page in an anonymous VMA (BAD_SPECIAL,
 * critical) at VA, plus a plain anon page at VA + 4 KiB */
static void setup(struct setup *s)
{
	memset(s, 0, sizeof(*s));
	mock_kernel_init(&s->k, 4, 6, 1);
	s->pgd = mock_user_pgd(&s->k);
	s->pfn = mock_alloc_pfn(&s->k);
	mock_page_simple(&s->k, s->pfn, 0, 1, 1);
	uint64_t anon = mock_alloc_pfn(&s->k);
	mock_page_simple(&s->k, anon, 0, 1, 1);
	mock_page_set_mapping(&s->k, anon, 0xffff888000100001ull);
	mock_map(&s->k, s->pgd, VA, PFS_LEVEL_PTE, MOCK_PTE(s->pfn, MOCK_USER_PTE | MOCK_SPECIAL));
	mock_map(&s->k, s->pgd, VA + 0x1000, PFS_LEVEL_PTE, MOCK_PTE(anon, MOCK_USER_PTE));
	uint64_t mm = mm_mm_alloc(&s->k);
	uint64_t v[1][3] = { { VA, VA + 0x2000, 0 } };
	s->vma_va = v[0][2] = mm_vma(&s->k, mm, VA, VA + 0x2000, ANON);
	mm_set_ma_root(&s->k, mm, mm_build_tree(&s->k, (const uint64_t (*)[3])v, 1, 16,
						PFS_MAPLE_ARANGE_64, 10));
	s->mm = mm;
	REQUIRE(pfs_find_vma(&s->k.t, mm, VA, &s->v) == 0);
	REQUIRE(s->v.vma == s->vma_va && s->v.mm == mm);
	s->m.k = &s->k;
	s->m.watch = UINT64_MAX;
	pfs_reader_flush(&s->k.rd);
	s->k.rd.read_phys = mutating_read;
	s->k.rd.ctx = &s->m;
}

static void walk(struct setup *s, unsigned flags, struct one *o)
{
	memset(o, 0, sizeof(*o));
	pfs_target_flush(&s->k.t);
	CHECK_EQ(pfs_walk_vma(&s->k.t, s->pgd, &s->v, 0, UINT64_MAX, flags, keep, o), 0);
	CHECK_EQ(o->n, 2);
}

TEST(confirm_static_finding_stands)
{
	struct setup s;
	struct one o;
	setup(&s);
	walk(&s, PFS_WALK_CONFIRM, &o);
	CHECK_EQ(o.e[0].diag, 1u << PFS_D_BAD_SPECIAL);
	CHECK_EQ(o.e[0].changed, PFS_CHANGED_NO);
	CHECK_EQ(o.e[1].diag, 0);
	CHECK_EQ(o.e[1].changed, PFS_CHANGED_NO);
	/* the same walk with CONFIRM: identical records */
	struct one plain;
	walk(&s, 0, &plain);
	CHECK(memcmp(&plain.e[0], &o.e[0], sizeof(o.e[0])) == 0);
	mock_kernel_fini(&s.k);
}

TEST(confirm_entry_changed)
{
	struct setup s;
	struct one o;
	setup(&s);
	uint64_t pte_pa = mock_table_pa(&s.k, s.pgd, VA, PFS_LEVEL_PTE);
	/* the pte is zapped once its table has been read */
	s.m.watch = pte_pa;
	s.m.pa = pte_pa;
	s.m.val = 0;
	walk(&s, PFS_WALK_CONFIRM, &o);
	CHECK(s.m.fired && s.m.reads_after > 0);
	CHECK_EQ(o.e[0].diag, 0);
	CHECK_EQ(o.e[0].changed, PFS_CHANGED_ENTRY);
	CHECK_EQ(o.e[0].changed_diag, 1u << PFS_D_BAD_SPECIAL);
	CHECK_EQ(o.e[0].changed_level, PFS_LEVEL_PTE);
	CHECK_EQ(o.e[0].changed_raw_before, MOCK_PTE(s.pfn, MOCK_USER_PTE | MOCK_SPECIAL));
	CHECK_EQ(o.e[0].changed_raw_after, 0);
	/* the record still says what was read first */
	CHECK_EQ(o.e[0].raw, MOCK_PTE(s.pfn, MOCK_USER_PTE | MOCK_SPECIAL));
	CHECK_EQ(o.e[1].changed, PFS_CHANGED_NO);
	mock_kernel_fini(&s.k);
}

TEST(confirm_without_flag_reports_first_read)
{
	struct setup s;
	struct one o;
	setup(&s);
	uint64_t pte_pa = mock_table_pa(&s.k, s.pgd, VA, PFS_LEVEL_PTE);
	s.m.watch = pte_pa;
	s.m.pa = pte_pa;
	s.m.val = 0;
	walk(&s, 0, &o);   /* a dump: no re-read */
	CHECK(s.m.fired);
	CHECK_EQ(o.e[0].diag, 1u << PFS_D_BAD_SPECIAL);
	CHECK_EQ(o.e[0].changed, PFS_CHANGED_NO);
	mock_kernel_fini(&s.k);
}

TEST(confirm_table_freed_and_reused)
{
	struct setup s;
	struct one o;
	setup(&s);
	uint64_t pte_pa = mock_table_pa(&s.k, s.pgd, VA, PFS_LEVEL_PTE);
	uint64_t pmd_tbl = mock_table_pa(&s.k, s.pgd, VA, PFS_LEVEL_PMD);
	uint64_t pmd_pa = pmd_tbl + ((VA >> 21) & 511) * 8;
	uint64_t pmd_before = mock_read_u64(&s.k, pmd_pa);
	/* free_pte_range: the pmd now points at another table (the old one
	 * reused, its bytes still those the walk read) */
	uint64_t other = mock_alloc_pfn(&s.k);
	s.m.watch = pte_pa;
	s.m.pa = pmd_pa;
	s.m.val = (other << 12) | 0x67;
	walk(&s, PFS_WALK_CONFIRM, &o);
	CHECK_EQ(o.e[0].diag, 0);
	CHECK_EQ(o.e[0].changed, PFS_CHANGED_TABLE);
	CHECK_EQ(o.e[0].changed_level, PFS_LEVEL_PMD);
	CHECK_EQ(o.e[0].changed_raw_before, pmd_before);
	CHECK_EQ(o.e[0].changed_raw_after, (other << 12) | 0x67);
	CHECK_EQ(o.e[0].changed_diag, 1u << PFS_D_BAD_SPECIAL);
	/* the JSON record */
	struct pfs_buf b;
	REQUIRE(pfs_buf_init(&b, 256, -1) == 0);
	pfs_json_changed(&b, 7, VA, o.e[0].addr, o.e[0].changed_raw_before, o.e[0].changed_raw_after,
			 o.e[0].changed_level, o.e[0].changed, o.e[0].changed_diag);
	pfs_buf_putc(&b, 0);
	CHECK(strstr(b.data, "{\"type\":\"changed\",\"pid\":7,\"vma_start\":\"0x7f1234400000\","
			     "\"addr\":\"0x7f1234400000\",\"raw_before\":\"0x") == b.data);
	CHECK(strstr(b.data, ",\"level\":\"pmd\",\"what\":\"table\",\"codes\":[\"BAD_SPECIAL\"]}\n") != NULL);
	pfs_buf_fini(&b);
	mock_kernel_fini(&s.k);
}

TEST(confirm_upper_table_cleared)
{
	struct setup s;
	struct one o;
	setup(&s);
	uint64_t pte_pa = mock_table_pa(&s.k, s.pgd, VA, PFS_LEVEL_PTE);
	uint64_t pud_tbl = mock_table_pa(&s.k, s.pgd, VA, PFS_LEVEL_PUD);
	/* free_pmd_range: pud_clear (the process exits) */
	s.m.watch = pte_pa;
	s.m.pa = pud_tbl + ((VA >> 30) & 511) * 8;
	s.m.val = 0;
	walk(&s, PFS_WALK_CONFIRM, &o);
	CHECK_EQ(o.e[0].changed, PFS_CHANGED_TABLE);
	CHECK_EQ(o.e[0].changed_level, PFS_LEVEL_PUD);
	CHECK_EQ(o.e[0].changed_raw_after, 0);
	CHECK_EQ(o.e[0].diag, 0);
	mock_kernel_fini(&s.k);
}

TEST(confirm_page_changed)
{
	struct setup s;
	struct one o;
	setup(&s);
	/* the page is freed once its struct page has been read: refcount 0 */
	uint64_t page_pa = mock_page_pa(&s.k, s.pfn);
	uint64_t word = page_pa + (uint64_t)s.k.lo.page_refcount;
	uint64_t old = mock_read_u64(&s.k, word & ~7ull);
	unsigned shift = (unsigned)(word & 7) * 8;
	s.m.watch = page_pa;
	s.m.pa = word & ~7ull;
	s.m.val = old & ~(0xffffffffull << shift);
	walk(&s, PFS_WALK_CONFIRM, &o);
	CHECK(s.m.fired);
	CHECK_EQ(o.e[0].page.refcount, 1);
	CHECK_EQ(o.e[0].changed, PFS_CHANGED_PAGE);
	CHECK_EQ(o.e[0].diag, 0);
	CHECK_EQ(o.e[0].changed_raw_before, o.e[0].raw);
	CHECK_EQ(o.e[0].changed_raw_after, o.e[0].raw);
	mock_kernel_fini(&s.k);
}

TEST(confirm_vma_unmapped)
{
	struct setup s;
	struct one o;
	setup(&s);
	uint64_t pte_pa = mock_table_pa(&s.k, s.pgd, VA, PFS_LEVEL_PTE);
	/* munmap: the tree no longer holds the VMA; its bytes stay as they were */
	s.m.watch = pte_pa;
	s.m.pa = mock_kva_to_pa(&s.k, s.mm + (uint64_t)s.k.lo.mm_mm_mt + (uint64_t)s.k.lo.maple_tree_ma_root);
	s.m.val = 0;
	walk(&s, PFS_WALK_CONFIRM, &o);
	CHECK_EQ(o.e[0].changed, PFS_CHANGED_VMA);
	CHECK_EQ(o.e[0].diag, 0);
	mock_kernel_fini(&s.k);
}

TEST(confirm_vma_changed)
{
	struct setup s;
	struct one o;
	setup(&s);
	uint64_t pte_pa = mock_table_pa(&s.k, s.pgd, VA, PFS_LEVEL_PTE);
	/* the VMA becomes a pfnmap (freed and reused) after the table was read */
	s.m.watch = pte_pa;
	s.m.pa = mock_kva_to_pa(&s.k, s.vma_va + (uint64_t)s.k.lo.vma_vm_flags);
	s.m.val = ANON | PFS_VM_PFNMAP | PFS_VM_IO;
	walk(&s, PFS_WALK_CONFIRM, &o);
	CHECK_EQ(o.e[0].changed, PFS_CHANGED_VMA);
	CHECK_EQ(o.e[0].diag, 0);
	CHECK_EQ(o.e[0].changed_diag, 1u << PFS_D_BAD_SPECIAL);
	mock_kernel_fini(&s.k);
}
