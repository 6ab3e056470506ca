/* SPDX-License-Identifier: MIT */
/*
 * Walks of one kernel on several threads at once, each with its own reader
 * and target over the same memory and the same layout, as the extension's
 * worker threads do (-j N): every thread sees exactly the entries of a walk
 * on one thread, whole VMA or cut in pieces at 2 MiB boundaries.  Under
 * ThreadSanitizer (make check-core-tsan) this proves the core keeps no
 * shared mutable state: nothing but the reader's context is shared, and
 * the mock's reader is serialized as a thread-safe reader (pread,
 * libkdumpfile clones) would be.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "pfnscope/walk.h"

#define VA 0x7f1234400000ull    /* 2 MiB aligned */
#define NPTE 2048               /* 8 MiB: four pte tables */
#define THREADS 4

/* the mock's reader counts reads: one lock around it, as in a reader that
 * is thread-safe by itself */
struct locked_mem {
	pthread_mutex_t lock;
	struct mock_mem *mem;
};

static int locked_read(void *ctx, uint64_t pa, void *buf, size_t len)
{
	struct locked_mem *l = ctx;
	pthread_mutex_lock(&l->lock);
	int r = mock_read_phys(l->mem, pa, buf, len);
	pthread_mutex_unlock(&l->lock);
	return r;
}

struct got {
	unsigned n, max;
	struct pfs_entry *e;
};

static int collect(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct got *g = arg;
	(void)vma;
	if (g->n < g->max)
		g->e[g->n] = *e;
	g->n++;
	return 0;
}

struct job {
	struct locked_mem *lm;
	const struct pfs_layout *lo;
	uint64_t pgd;
	const struct pfs_vma *vma;
	uint64_t start, end;        /* this thread's piece */
	unsigned flags;
	struct got got;
	int ret;
};

static void *run(void *arg)
{
	struct job *j = arg;
	struct pfs_reader rd;
	struct pfs_target t;
	if (pfs_reader_init(&rd, locked_read, j->lm)) {
		j->ret = -1;
		return NULL;
	}
	pfs_target_init(&t, j->lo, &rd);
	for (int round = 0; round < 3 && !j->ret; round++) {
		j->got.n = 0;
		j->ret = pfs_walk_vma(&t, j->pgd, j->vma, j->start, j->end, j->flags, collect, &j->got);
	}
	pfs_reader_fini(&rd);
	return NULL;
}

static int same_entries(const struct got *a, unsigned from, const struct got *b)
{
	for (unsigned i = 0; i < b->n; i++)
		if (memcmp(&a->e[from + i], &b->e[i], sizeof(b->e[i])) != 0)
			return 0;
	return 1;
}

static void build(struct mock_kernel *k, uint64_t pgd)
{
	/* normal anon pages, a special pte over RAM, a zero-page pte, swap
	 * entries, a pte beyond the memmap, a THP and an unreadable table */
	uint64_t base = mock_alloc_pfns(k, NPTE);
	for (unsigned i = 0; i < NPTE; i++) {
		uint64_t va = VA + ((uint64_t)i << 12);
		if (i >= 512 && i < 1024)
			continue;                    /* the THP's 2 MiB */
		switch (i % 7) {
		case 0:
			mock_map(k, pgd, va, PFS_LEVEL_PTE, MOCK_PTE(base + i, MOCK_USER_PTE | MOCK_SPECIAL));
			break;
		case 1:
			mock_map(k, pgd, va, PFS_LEVEL_PTE,
				 MOCK_PTE(k->lo.zero_pfn, MOCK_P | MOCK_US | MOCK_SPECIAL));
			break;
		case 2:
			mock_map(k, pgd, va, PFS_LEVEL_PTE, ((uint64_t)1 << 59) | ((~(uint64_t)i << 14) >> 5));
			break;
		case 3:
			mock_map(k, pgd, va, PFS_LEVEL_PTE, MOCK_PTE(MOCK_MMIO_PFN, MOCK_USER_PTE));
			break;
		case 4:
			break;                       /* none */
		default:
			mock_page_simple(k, base + i, 0, 1 + (int32_t)(i & 3), 1);
			mock_page_set_mapping(k, base + i, 0xffff888000100001ull);
			mock_map(k, pgd, va, PFS_LEVEL_PTE, MOCK_PTE(base + i, MOCK_USER_PTE | MOCK_NX));
		}
	}
	uint64_t thp = 0x200000;
	mock_page_compound(k, thp, 9);
	mock_page_set_refcount(k, thp, 512);
	mock_map(k, pgd, VA + (2ull << 20), PFS_LEVEL_PMD, (thp << 12) | MOCK_USER_PTE | MOCK_PSE);
	mock_set_unreadable(k, mock_table_pa(k, pgd, VA + (6ull << 20), PFS_LEVEL_PTE) >> 12, 1);
}

static void parallel_walks(int levels, unsigned maj, unsigned min, unsigned flags)
{
	struct mock_kernel k;
	mock_kernel_init(&k, levels, maj, min);
	uint64_t pgd = mock_user_pgd(&k);
	build(&k, pgd);
	struct pfs_vma v;
	memset(&v, 0, sizeof(v));
	v.start = VA;
	v.end = VA + ((uint64_t)NPTE << 12);
	v.vm_flags = PFS_VM_READ | PFS_VM_WRITE | PFS_VM_MAYREAD | PFS_VM_MAYWRITE;

	/* the truth: one thread, the whole VMA */
	struct got one = { 0, 2 * NPTE, calloc(2 * NPTE, sizeof(struct pfs_entry)) };
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, 0, UINT64_MAX, flags, collect, &one), 0);
	REQUIRE(one.n > NPTE / 4 && one.n < one.max);

	struct locked_mem lm = { PTHREAD_MUTEX_INITIALIZER, &k.mem };
	struct job jobs[2 * THREADS];
	pthread_t th[2 * THREADS];
	/* THREADS threads walk the whole VMA, THREADS more one 2 MiB piece each */
	for (unsigned i = 0; i < 2 * THREADS; i++) {
		struct job *j = &jobs[i];
		memset(j, 0, sizeof(*j));
		j->lm = &lm;
		j->lo = &k.lo;
		j->pgd = pgd;
		j->vma = &v;
		j->flags = flags;
		j->start = i < THREADS ? 0 : VA + ((uint64_t)(i - THREADS) << 21);
		j->end = i < THREADS ? UINT64_MAX : VA + ((uint64_t)(i - THREADS + 1) << 21);
		j->got.max = 2 * NPTE;
		j->got.e = calloc(j->got.max, sizeof(struct pfs_entry));
		REQUIRE(pthread_create(&th[i], NULL, run, j) == 0);
	}
	for (unsigned i = 0; i < 2 * THREADS; i++)
		pthread_join(th[i], NULL);
	unsigned at = 0;
	for (unsigned i = 0; i < 2 * THREADS; i++) {
		struct job *j = &jobs[i];
		CHECK_EQ(j->ret, 0);
		if (i < THREADS) {
			CHECK_EQ(j->got.n, one.n);
			CHECK(same_entries(&one, 0, &j->got));
		} else {
			/* the pieces, one after the other, are the whole walk */
			REQUIRE(at + j->got.n <= one.n);
			CHECK(same_entries(&one, at, &j->got));
			at += j->got.n;
		}
		free(j->got.e);
	}
	CHECK_EQ(at, one.n);
	free(one.e);
	mock_kernel_fini(&k);
}

TEST(parallel_walks_4level_6_1) { parallel_walks(4, 6, 1, 0); }
TEST(parallel_walks_5level_7_2) { parallel_walks(5, 7, 2, 0); }
TEST(parallel_walks_none_entries) { parallel_walks(5, 6, 12, PFS_WALK_NONE); }
TEST(parallel_walks_no_page) { parallel_walks(4, 6, 12, PFS_WALK_NO_PAGE); }
