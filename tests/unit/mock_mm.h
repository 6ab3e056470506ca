/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_TEST_MOCK_MM_H
#define PFNSCOPE_TEST_MOCK_MM_H
/*
 * Builders for mm structures in a mock_kernel: maple trees laid out as
 * lib/maple_tree.c lays them out (encoded child pointers, pivots, metadata
 * end), vm_area_structs, mm_structs with either an mm_mt or a vm_next list,
 * and task_struct lists.  Header-only (static inline) so any test file can
 * use it without a build change.
 */
#include <stdlib.h>
#include <string.h>
#include "mock.h"
#include "pfnscope/maple.h"

/* mt_mk_node(): node | type << MAPLE_ENODE_TYPE_SHIFT | MAPLE_ENODE_NULL */
static inline uint64_t mm_enode(uint64_t node, unsigned type)
{
	return node | ((uint64_t)type << 3) | PFS_MAPLE_ENODE_NULL;
}
/* mte_mk_root() */
static inline uint64_t mm_root(uint64_t enode)
{
	return enode | PFS_MAPLE_ROOT_NODE;
}

static inline uint64_t mm_node_alloc(struct mock_kernel *k)
{
	return mock_kalloc(k, 256);
}
static inline unsigned mm_slots(unsigned type)
{
	return type == PFS_MAPLE_DENSE ? 31 : type == PFS_MAPLE_ARANGE_64 ? 10 : 16;
}
static inline void mm_set_pivot(struct mock_kernel *k, uint64_t node, unsigned i, uint64_t v)
{
	mock_write_kva_u64(k, node + 8 + 8 * i, v);
}
static inline void mm_set_slot(struct mock_kernel *k, uint64_t node, unsigned type, unsigned i, uint64_t v)
{
	uint64_t off = type == PFS_MAPLE_DENSE ? 8 : type == PFS_MAPLE_ARANGE_64 ? 80 : 128;
	mock_write_kva_u64(k, node + off + 8 * i, v);
}
/* struct maple_metadata.end */
static inline void mm_set_end(struct mock_kernel *k, uint64_t node, unsigned type, unsigned end)
{
	unsigned char b = (unsigned char)end;
	mock_write_kva(k, node + (type == PFS_MAPLE_ARANGE_64 ? 240 : 248), &b, 1);
}

struct mm_range { uint64_t lo, hi, entry; };

/* One node holding ranges r[0..n) (contiguous, r[n-1].hi is the node's
 * max): pivots as mab_mas_cp() writes them, metadata end where the node
 * is not full.  Returns the encoded node. */
static inline uint64_t mm_build_node(struct mock_kernel *k, unsigned type,
				     const struct mm_range *r, unsigned n)
{
	uint64_t node = mm_node_alloc(k);
	unsigned npiv = mm_slots(type) - 1;
	for (unsigned i = 0; i < n; i++) {
		mm_set_slot(k, node, type, i, r[i].entry);
		if (type != PFS_MAPLE_DENSE && i < npiv)
			mm_set_pivot(k, node, i, r[i].hi);
	}
	if (type == PFS_MAPLE_ARANGE_64 || (type == PFS_MAPLE_LEAF_64 && n - 1 < npiv) ||
	    (type == PFS_MAPLE_RANGE_64 && n - 1 < npiv))
		mm_set_end(k, node, type, n - 1);
	return mm_enode(node, type);
}

/* A whole tree over [0, ULONG_MAX] from sorted, non-overlapping [start, end)
 * ranges (gaps become NULL slots): leaves of leaf_fill slots, internal
 * nodes of `internal` type with int_fill slots.  Returns ma_root. */
static inline uint64_t mm_build_tree(struct mock_kernel *k, const uint64_t (*vmas)[3], unsigned nvma,
				     unsigned leaf_fill, unsigned internal, unsigned int_fill)
{
	struct mm_range *r = calloc(2 * nvma + 2, sizeof(*r));
	unsigned n = 0;
	uint64_t next = 0;
	for (unsigned i = 0; i < nvma; i++) {
		if (vmas[i][0] > next)
			r[n++] = (struct mm_range){ next, vmas[i][0] - 1, 0 };
		r[n++] = (struct mm_range){ vmas[i][0], vmas[i][1] - 1, vmas[i][2] };
		next = vmas[i][1];
	}
	if (next != 0 || n == 0)
		r[n++] = (struct mm_range){ next, UINT64_MAX, 0 };
	unsigned type = PFS_MAPLE_LEAF_64, fill = leaf_fill;
	while (n > 1 || type == PFS_MAPLE_LEAF_64) {
		unsigned m = 0;
		struct mm_range *up = calloc(n / fill + 2, sizeof(*up));
		for (unsigned i = 0; i < n; i += fill) {
			unsigned c = n - i < fill ? n - i : fill;
			up[m++] = (struct mm_range){ r[i].lo, r[i + c - 1].hi,
						     mm_build_node(k, type, r + i, c) };
		}
		free(r);
		r = up;
		n = m;
		type = internal;
		fill = int_fill;
	}
	uint64_t root = mm_root(r[0].entry);
	free(r);
	return root;
}

/* vm_area_struct at a fresh direct-map page */
static inline uint64_t mm_vma(struct mock_kernel *k, uint64_t mm, uint64_t start, uint64_t end,
			      uint64_t flags)
{
	const struct pfs_layout *lo = &k->lo;
	uint64_t v = mock_kalloc(k, lo->vma_size ? lo->vma_size : 256);
	mock_write_kva_u64(k, v + (uint64_t)lo->vma_vm_start, start);
	mock_write_kva_u64(k, v + (uint64_t)lo->vma_vm_end, end);
	mock_write_kva_u64(k, v + (uint64_t)lo->vma_vm_flags, flags);
	mock_write_kva_u64(k, v + (uint64_t)lo->vma_vm_mm, mm);
	mock_write_kva_u64(k, v + (uint64_t)lo->vma_vm_pgoff, start >> 12);
	return v;
}

static inline uint64_t mm_mm_alloc(struct mock_kernel *k)
{
	return mock_kalloc(k, 4096);
}
static inline void mm_set_ma_root(struct mock_kernel *k, uint64_t mm, uint64_t root)
{
	mock_write_kva_u64(k, mm + (uint64_t)k->lo.mm_mm_mt + (uint64_t)k->lo.maple_tree_ma_root, root);
}

/* Switch the mock to the <= 6.0 vm_next list layout. */
static inline void mm_use_list_layout(struct mock_kernel *k)
{
	k->lo.mm_mm_mt = PFS_ABSENT;
	k->lo.mm_mmap = 0;
	k->lo.vma_vm_next = 136;
}
/* mm->mmap and vm_next links over vmas[0..n) */
static inline void mm_link_list(struct mock_kernel *k, uint64_t mm, const uint64_t *vma, unsigned n)
{
	mock_write_kva_u64(k, mm + (uint64_t)k->lo.mm_mmap, n ? vma[0] : 0);
	for (unsigned i = 0; i < n; i++)
		mock_write_kva_u64(k, vma[i] + (uint64_t)k->lo.vma_vm_next, i + 1 < n ? vma[i + 1] : 0);
}

/* A task_struct (kernel image would be static; a direct-map page is a
 * slab-like allocation), linked after init_task's last task. */
static inline uint64_t mm_task(struct mock_kernel *k, int32_t pid, uint64_t mm, const char *comm)
{
	const struct pfs_layout *lo = &k->lo;
	uint64_t task = mock_kalloc(k, 0x800);
	mock_write_kva_u32(k, task + (uint64_t)lo->task_pid, (uint32_t)pid);
	mock_write_kva_u32(k, task + (uint64_t)lo->task_tgid, (uint32_t)pid);
	mock_write_kva_u64(k, task + (uint64_t)lo->task_mm, mm);
	mock_write_kva(k, task + (uint64_t)lo->task_comm, comm, strlen(comm) + 1);
	/* list_add_tail(&task->tasks, &init_task.tasks) */
	uint64_t head = lo->init_task + (uint64_t)lo->task_tasks;
	uint64_t node = task + (uint64_t)lo->task_tasks;
	uint64_t prev = mock_read_kva_u64(k, head + 8);
	mock_write_kva_u64(k, node, head);
	mock_write_kva_u64(k, node + 8, prev);
	mock_write_kva_u64(k, prev, node);
	mock_write_kva_u64(k, head + 8, node);
	return task;
}

#endif
