/* SPDX-License-Identifier: MIT */
/* maple tree iteration (maple.c): shapes, loads, corrupted trees */
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "mock_mm.h"
#include "pfnscope/maple.h"

struct seen {
	unsigned n;
	uint64_t first[4096], last[4096], entry[4096];
	int stop_after;     /* 0: never */
};

static int collect(uint64_t first, uint64_t last, uint64_t entry, void *arg)
{
	struct seen *s = arg;
	if (s->n < 4096) {
		s->first[s->n] = first;
		s->last[s->n] = last;
		s->entry[s->n] = entry;
	}
	s->n++;
	if (s->stop_after && (int)s->n == s->stop_after)
		return 42;
	return 0;
}

static struct seen *seen_new(void)
{
	return calloc(1, sizeof(struct seen));
}

/* fake VMA pointers: any 8-aligned kernel-looking value will do here */
#define ENTRY(i) (0xffff888100000000ull + 0x100ull * (uint64_t)(i))

/* n VMAs of 3 pages with 1-page gaps from 0x400000 */
static uint64_t (*make_vmas(unsigned n))[3]
{
	uint64_t (*v)[3] = calloc(n, sizeof(*v));
	for (unsigned i = 0; i < n; i++) {
		v[i][0] = 0x400000ull + (uint64_t)i * 0x4000;
		v[i][1] = v[i][0] + 0x3000;
		v[i][2] = ENTRY(i);
	}
	return v;
}

static void check_all(struct mock_kernel *k, uint64_t root, uint64_t (*v)[3], unsigned n)
{
	struct seen *s = seen_new();
	CHECK_EQ(pfs_maple_for_each(&k->t, root, 0, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, n);
	for (unsigned i = 0; i < n && i < s->n; i++) {
		CHECK_EQ(s->first[i], v[i][0]);
		CHECK_EQ(s->last[i], v[i][1] - 1);
		CHECK_EQ(s->entry[i], v[i][2]);
	}
	/* mtree_load at the start, end and inside of every range, and in gaps */
	for (unsigned i = 0; i < n; i++) {
		uint64_t f, l, e;
		CHECK_EQ(pfs_maple_load(&k->t, root, v[i][0], &f, &l, &e), 0);
		CHECK_EQ(e, v[i][2]);
		CHECK_EQ(f, v[i][0]);
		CHECK_EQ(l, v[i][1] - 1);
		CHECK_EQ(pfs_maple_load(&k->t, root, v[i][1] - 1, &f, &l, &e), 0);
		CHECK_EQ(e, v[i][2]);
		CHECK_EQ(pfs_maple_load(&k->t, root, v[i][1], &f, &l, &e), 0);
		if (i + 1 < n && v[i + 1][0] != v[i][1]) {
			CHECK_EQ(e, 0);
			CHECK_EQ(f, v[i][1]);
		}
	}
	uint64_t f, l, e;
	CHECK_EQ(pfs_maple_load(&k->t, root, 0, &f, &l, &e), 0);
	CHECK_EQ(e, v[0][0] == 0 ? v[0][2] : 0);
	CHECK_EQ(pfs_maple_load(&k->t, root, UINT64_MAX, &f, &l, &e), 0);
	CHECK_EQ(e, 0);
	CHECK_EQ(l, UINT64_MAX);
	free(s);
}

TEST(maple_empty_and_root_entry)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	struct seen *s = seen_new();
	uint64_t f, l, e;

	CHECK_EQ(pfs_maple_for_each(&k.t, 0, 0, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, 0);
	CHECK_EQ(pfs_maple_load(&k.t, 0, 5, &f, &l, &e), 0);
	CHECK_EQ(e, 0);

	/* a root that is not a node is one entry at index 0 (mas_start) */
	CHECK_EQ(pfs_maple_for_each(&k.t, ENTRY(1), 0, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, 1);
	CHECK_EQ(s->first[0], 0);
	CHECK_EQ(s->last[0], 0);
	CHECK_EQ(s->entry[0], ENTRY(1));
	CHECK_EQ(pfs_maple_load(&k.t, ENTRY(1), 0, &f, &l, &e), 0);
	CHECK_EQ(e, ENTRY(1));
	CHECK_EQ(pfs_maple_load(&k.t, ENTRY(1), 1, &f, &l, &e), 0);
	CHECK_EQ(e, 0);
	/* starting past 0 skips it */
	s->n = 0;
	CHECK_EQ(pfs_maple_for_each(&k.t, ENTRY(1), 1, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, 0);
	/* XA_ZERO_ENTRY is skipped as mt_find() skips it */
	CHECK_EQ(pfs_maple_for_each(&k.t, PFS_XA_ZERO_ENTRY, 0, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, 0);
	free(s);
	mock_kernel_fini(&k);
}

TEST(maple_single_leaf)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t (*v)[3] = make_vmas(5);
	uint64_t root = mm_build_tree(&k, (const uint64_t (*)[3])v, 5, 16, PFS_MAPLE_ARANGE_64, 10);
	CHECK_EQ(pfs_mte_node_type(root), PFS_MAPLE_LEAF_64);
	check_all(&k, root, v, 5);
	free(v);
	mock_kernel_fini(&k);
}

/* 16 slots used (no metadata, slot 15 takes the node max) and 15 slots
 * used (last pivot == max: ma_data_end() without metadata) */
TEST(maple_full_leaf_and_pivot_equals_max)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	/* 8 VMAs + 8 gaps incl. the leading one = 16 ranges with the tail gap
	 * absorbed: VMAs back to back after the first produce fewer gaps, so
	 * build exact shapes by hand */
	struct mm_range r[16];
	for (unsigned i = 0; i < 16; i++)
		r[i] = (struct mm_range){ i * 0x1000ull, i * 0x1000ull + 0xfff, ENTRY(i) };
	r[15].hi = UINT64_MAX;
	uint64_t root = mm_root(mm_build_node(&k, PFS_MAPLE_LEAF_64, r, 16));
	struct seen *s = seen_new();
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, 16);
	CHECK_EQ(s->first[15], 0xf000);
	CHECK_EQ(s->last[15], UINT64_MAX);

	r[14].hi = UINT64_MAX;
	root = mm_root(mm_build_node(&k, PFS_MAPLE_LEAF_64, r, 15));
	s->n = 0;
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, 15);
	CHECK_EQ(s->last[14], UINT64_MAX);
	uint64_t f, l, e;
	CHECK_EQ(pfs_maple_load(&k.t, root, 0xe123, &f, &l, &e), 0);
	CHECK_EQ(e, ENTRY(14));
	CHECK_EQ(f, 0xe000);
	free(s);
	mock_kernel_fini(&k);
}

TEST(maple_three_levels_arange)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	unsigned n = 300;
	uint64_t (*v)[3] = make_vmas(n);
	/* 601 ranges / 16 = 38 leaves, / 10 = 4, / 10 = 1: three levels */
	uint64_t root = mm_build_tree(&k, (const uint64_t (*)[3])v, n, 16, PFS_MAPLE_ARANGE_64, 10);
	CHECK_EQ(pfs_mte_node_type(root), PFS_MAPLE_ARANGE_64);
	check_all(&k, root, v, n);

	/* a sub-range: only the overlapping VMAs */
	struct seen *s = seen_new();
	CHECK_EQ(pfs_maple_for_each(&k.t, root, v[100][0] + 0x1000, v[110][0], collect, s), 0);
	CHECK_EQ(s->n, 11);
	CHECK_EQ(s->entry[0], ENTRY(100));
	CHECK_EQ(s->entry[10], ENTRY(110));
	/* callback's stop value comes back */
	memset(s, 0, sizeof(*s));
	s->stop_after = 7;
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), 42);
	CHECK_EQ(s->n, 7);
	free(s);
	free(v);
	mock_kernel_fini(&k);
}

TEST(maple_deep_range64_small_fill_5level)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 5, 6, 12);
	unsigned n = 200;
	uint64_t (*v)[3] = make_vmas(n);
	/* fill 3: 401 ranges -> 134 -> 45 -> 15 -> 5 -> 2 -> 1: 7 levels */
	uint64_t root = mm_build_tree(&k, (const uint64_t (*)[3])v, n, 3, PFS_MAPLE_RANGE_64, 3);
	CHECK_EQ(pfs_mte_node_type(root), PFS_MAPLE_RANGE_64);
	check_all(&k, root, v, n);
	free(v);
	/* the same with arange_64 interior nodes */
	v = make_vmas(n);
	root = mm_build_tree(&k, (const uint64_t (*)[3])v, n, 4, PFS_MAPLE_ARANGE_64, 2);
	check_all(&k, root, v, n);
	free(v);
	mock_kernel_fini(&k);
}

/* VMAs back to back (no gaps) and one at 0 */
TEST(maple_adjacent_ranges)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	unsigned n = 50;
	uint64_t (*v)[3] = calloc(n, sizeof(*v));
	for (unsigned i = 0; i < n; i++) {
		v[i][0] = (uint64_t)i * 0x2000;
		v[i][1] = v[i][0] + 0x2000;
		v[i][2] = ENTRY(i);
	}
	uint64_t root = mm_build_tree(&k, (const uint64_t (*)[3])v, n, 5, PFS_MAPLE_ARANGE_64, 4);
	check_all(&k, root, v, n);
	free(v);
	mock_kernel_fini(&k);
}

/* a dense leaf (one index per slot) beside a leaf_64 under a range_64 */
TEST(maple_dense_node)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t dense = mm_node_alloc(&k);
	for (unsigned i = 0; i < 31; i++)
		if (i % 3 == 0)
			mm_set_slot(&k, dense, PFS_MAPLE_DENSE, i, ENTRY(i));
	struct mm_range lr[2] = { { 31, 99, ENTRY(100) }, { 100, UINT64_MAX, 0 } };
	uint64_t leaf = mm_build_node(&k, PFS_MAPLE_LEAF_64, lr, 2);
	struct mm_range rr[2] = { { 0, 30, mm_enode(dense, PFS_MAPLE_DENSE) }, { 31, UINT64_MAX, leaf } };
	uint64_t root = mm_root(mm_build_node(&k, PFS_MAPLE_RANGE_64, rr, 2));

	struct seen *s = seen_new();
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, 12);
	for (unsigned i = 0; i < 11 && i < s->n; i++) {
		CHECK_EQ(s->first[i], i * 3);
		CHECK_EQ(s->last[i], i * 3);
		CHECK_EQ(s->entry[i], ENTRY(i * 3));
	}
	CHECK_EQ(s->first[11], 31);
	CHECK_EQ(s->last[11], 99);
	uint64_t f, l, e;
	CHECK_EQ(pfs_maple_load(&k.t, root, 9, &f, &l, &e), 0);
	CHECK_EQ(e, ENTRY(9));
	CHECK_EQ(f, 9);
	CHECK_EQ(l, 9);
	CHECK_EQ(pfs_maple_load(&k.t, root, 10, &f, &l, &e), 0);
	CHECK_EQ(e, 0);
	CHECK_EQ(pfs_maple_load(&k.t, root, 50, &f, &l, &e), 0);
	CHECK_EQ(e, ENTRY(100));
	free(s);
	mock_kernel_fini(&k);
}

/* ---- corrupted trees: each ends with an error, never a hang ---- */

static uint64_t two_level(struct mock_kernel *k, uint64_t *inner_node, uint64_t *leaf_node)
{
	struct mm_range l0[2] = { { 0, 0xfff, 0 }, { 0x1000, 0x1fff, ENTRY(1) } };
	struct mm_range l1[2] = { { 0x2000, 0x2fff, ENTRY(2) }, { 0x3000, UINT64_MAX, 0 } };
	uint64_t a = mm_build_node(k, PFS_MAPLE_LEAF_64, l0, 2);
	uint64_t b = mm_build_node(k, PFS_MAPLE_LEAF_64, l1, 2);
	struct mm_range in[2] = { { 0, 0x1fff, a }, { 0x2000, UINT64_MAX, b } };
	uint64_t root = mm_build_node(k, PFS_MAPLE_ARANGE_64, in, 2);
	*inner_node = pfs_mte_to_node(root);
	*leaf_node = pfs_mte_to_node(a);
	return mm_root(root);
}

TEST(maple_corrupt_self_pointer)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t inner, leaf, f, l, e;
	uint64_t root = two_level(&k, &inner, &leaf);
	struct seen *s = seen_new();
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, 2);

	/* slot 1 points at the node itself: its pivot 0x1fff lies below the
	 * child's range [0x2000, max] */
	mm_set_slot(&k, inner, PFS_MAPLE_ARANGE_64, 1, mm_enode(inner, PFS_MAPLE_ARANGE_64));
	s->n = 0;
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_ECORRUPT);
	CHECK_EQ(pfs_maple_load(&k.t, root, 0x5000, &f, &l, &e), -PFS_ECORRUPT);

	/* a one-slot node whose only child is itself: same range at every
	 * level, only the depth bound ends it */
	uint64_t self = mm_node_alloc(&k);
	mm_set_slot(&k, self, PFS_MAPLE_ARANGE_64, 0, mm_enode(self, PFS_MAPLE_ARANGE_64));
	mm_set_end(&k, self, PFS_MAPLE_ARANGE_64, 0);
	uint64_t sroot = mm_root(mm_enode(self, PFS_MAPLE_ARANGE_64));
	CHECK_EQ(pfs_maple_for_each(&k.t, sroot, 0, UINT64_MAX, collect, s), -PFS_ELOOP);
	CHECK_EQ(pfs_maple_load(&k.t, sroot, 77, &f, &l, &e), -PFS_ELOOP);

	/* a child pointing back at the root with the root's range */
	uint64_t a = mm_node_alloc(&k), b = mm_node_alloc(&k);
	mm_set_slot(&k, a, PFS_MAPLE_RANGE_64, 0, mm_enode(b, PFS_MAPLE_RANGE_64));
	mm_set_slot(&k, b, PFS_MAPLE_RANGE_64, 0, mm_enode(a, PFS_MAPLE_RANGE_64));
	mm_set_end(&k, a, PFS_MAPLE_RANGE_64, 0);
	mm_set_end(&k, b, PFS_MAPLE_RANGE_64, 0);
	CHECK_EQ(pfs_maple_for_each(&k.t, mm_root(mm_enode(a, PFS_MAPLE_RANGE_64)), 0, UINT64_MAX,
				    collect, s), -PFS_ELOOP);
	free(s);
	mock_kernel_fini(&k);
}

TEST(maple_corrupt_unreadable_and_unmapped)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t inner, leaf, f, l, e;
	uint64_t root = two_level(&k, &inner, &leaf);
	struct seen *s = seen_new();

	/* the leaf's memory cannot be read (filtered from the dump) */
	mock_set_unreadable(&k, mock_kva_to_pa(&k, leaf) >> 12, 1);
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_EREAD);
	CHECK_EQ(k.t.error.address, leaf);
	/* entries after it are not reached; entries before are */
	CHECK_EQ(s->n, 0);
	CHECK_EQ(pfs_maple_load(&k.t, root, 0x1000, &f, &l, &e), -PFS_EREAD);
	/* the other subtree is still reachable by load */
	CHECK_EQ(pfs_maple_load(&k.t, root, 0x2000, &f, &l, &e), 0);
	CHECK_EQ(e, ENTRY(2));
	mock_set_unreadable(&k, mock_kva_to_pa(&k, leaf) >> 12, 0);

	/* a child in unmapped kernel space (vmalloc area, nothing mapped) */
	mm_set_slot(&k, inner, PFS_MAPLE_ARANGE_64, 1,
		    mm_enode(0xffffc90000123400ull, PFS_MAPLE_LEAF_64));
	s->n = 0;
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_EFAULT);
	CHECK_EQ(s->n, 1);   /* the first leaf was visited */
	/* the root itself unreadable */
	CHECK_EQ(pfs_maple_for_each(&k.t, mm_root(mm_enode(0xffffc90000123400ull, PFS_MAPLE_LEAF_64)),
				    0, UINT64_MAX, collect, s), -PFS_EFAULT);
	free(s);
	mock_kernel_fini(&k);
}

TEST(maple_corrupt_bad_type_and_child)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t inner, leaf, f, l, e;
	uint64_t root = two_level(&k, &inner, &leaf);
	struct seen *s = seen_new();

	/* type 5 is no enum maple_type */
	mm_set_slot(&k, inner, PFS_MAPLE_ARANGE_64, 0, mm_enode(leaf, 5));
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_ECORRUPT);
	CHECK_EQ(pfs_maple_load(&k.t, root, 0x1000, &f, &l, &e), -PFS_ECORRUPT);
	/* a root with a bad type */
	CHECK_EQ(pfs_maple_for_each(&k.t, mm_root(mm_enode(leaf, 9)), 0, UINT64_MAX, collect, s),
		 -PFS_ECORRUPT);
	/* an internal slot holding a value, not a node */
	mm_set_slot(&k, inner, PFS_MAPLE_ARANGE_64, 0, ENTRY(3) | 2);
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_ECORRUPT);
	/* an internal slot that is NULL inside the data */
	mm_set_slot(&k, inner, PFS_MAPLE_ARANGE_64, 0, 0);
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_ECORRUPT);
	free(s);
	mock_kernel_fini(&k);
}

TEST(maple_corrupt_pivots_and_metadata)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	struct seen *s = seen_new();
	uint64_t f, l, e;
	struct mm_range r[5];
	for (unsigned i = 0; i < 5; i++)
		r[i] = (struct mm_range){ i * 0x1000ull, i * 0x1000ull + 0xfff, ENTRY(i) };
	r[4].hi = UINT64_MAX;
	uint64_t enode = mm_build_node(&k, PFS_MAPLE_LEAF_64, r, 5);
	uint64_t node = pfs_mte_to_node(enode), root = mm_root(enode);
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), 0);
	CHECK_EQ(s->n, 5);

	/* pivots out of order */
	mm_set_pivot(&k, node, 2, 0x500);
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_ECORRUPT);
	CHECK_EQ(pfs_maple_load(&k.t, root, 0x3000, &f, &l, &e), -PFS_ECORRUPT);
	/* equal pivots (an empty range) */
	mm_set_pivot(&k, node, 2, 0x1fff);
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_ECORRUPT);
	/* a zero pivot inside the data ("Missing node limit pivot") */
	mm_set_pivot(&k, node, 2, 0);
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_ECORRUPT);
	mm_set_pivot(&k, node, 2, 0x2fff);
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), 0);
	/* metadata end beyond the slots */
	mm_set_end(&k, node, PFS_MAPLE_LEAF_64, 40);
	CHECK_EQ(pfs_maple_for_each(&k.t, root, 0, UINT64_MAX, collect, s), -PFS_ECORRUPT);
	mm_set_end(&k, node, PFS_MAPLE_LEAF_64, 4);

	/* a child whose pivots exceed the range its parent gives it */
	struct mm_range l0[2] = { { 0, 0xfff, ENTRY(7) }, { 0x1000, 0x1fff, ENTRY(8) } };
	uint64_t a = mm_build_node(&k, PFS_MAPLE_LEAF_64, l0, 2);
	mm_set_pivot(&k, pfs_mte_to_node(a), 0, 0x5000);   /* > 0x1fff */
	struct mm_range l1[1] = { { 0x2000, UINT64_MAX, 0 } };
	uint64_t b = mm_build_node(&k, PFS_MAPLE_LEAF_64, l1, 1);
	struct mm_range in[2] = { { 0, 0x1fff, a }, { 0x2000, UINT64_MAX, b } };
	uint64_t root2 = mm_root(mm_build_node(&k, PFS_MAPLE_ARANGE_64, in, 2));
	CHECK_EQ(pfs_maple_for_each(&k.t, root2, 0, UINT64_MAX, collect, s), -PFS_ECORRUPT);
	free(s);
	mock_kernel_fini(&k);
}

/* every slot of a wide node points back at the root */
TEST(maple_corrupt_all_slots_to_root)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t n = mm_node_alloc(&k);
	for (unsigned i = 0; i < 10; i++) {
		mm_set_slot(&k, n, PFS_MAPLE_ARANGE_64, i, mm_enode(n, PFS_MAPLE_ARANGE_64));
		if (i < 9)
			mm_set_pivot(&k, n, i, (i + 1) * 0x1000ull);
	}
	mm_set_end(&k, n, PFS_MAPLE_ARANGE_64, 9);
	struct seen *s = seen_new();
	int ret = pfs_maple_for_each(&k.t, mm_root(mm_enode(n, PFS_MAPLE_ARANGE_64)), 0, UINT64_MAX,
				     collect, s);
	CHECK(ret == -PFS_ECORRUPT || ret == -PFS_ELOOP);
	CHECK_EQ(s->n, 0);
	free(s);
	mock_kernel_fini(&k);
}
