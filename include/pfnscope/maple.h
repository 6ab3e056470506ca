/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_MAPLE_H
#define PFNSCOPE_MAPLE_H
/*
 * A bounded, read-only maple-tree iterator for a target kernel's memory
 * (lib/maple_tree.c, include/linux/maple_tree.h, 6.1+).  mm->mm_mt maps
 * [vm_start, vm_end - 1] to the vm_area_struct; this walks it the way
 * mt_for_each() / mtree_load() do, but every node is validated like
 * mt_validate() would (type, pivot order and limits, data end), depth is
 * capped at MAPLE_HEIGHT_MAX and the number of nodes visited is capped, so
 * a looping or garbage tree ends with -PFS_ELOOP / -PFS_ECORRUPT (or the
 * read error), never a hang.
 */
#include <stdint.h>
#include "pfnscope/target.h"

/* include/linux/maple_tree.h / lib/maple_tree.c constants (64-bit) */
#define PFS_MAPLE_NODE_MASK      255ull   /* MAPLE_NODE_MASK */
#define PFS_MAPLE_NODE_TYPE_SHIFT 3       /* MAPLE_NODE_TYPE_SHIFT */
#define PFS_MAPLE_NODE_TYPE_MASK 0x0f     /* MAPLE_NODE_TYPE_MASK */
#define PFS_MAPLE_HEIGHT_MAX     31       /* MAPLE_HEIGHT_MAX */
#define PFS_MAPLE_NODE_SIZE_MAX  256      /* sizeof(struct maple_node) */
/* No real tree comes near this: 65530 VMAs (max_map_count) need < 10k nodes. */
#define PFS_MAPLE_MAX_NODES      (1u << 20)
#define PFS_XA_ZERO_ENTRY        0x406ull /* xa_mk_internal(257) */

/* enum maple_type */
enum pfs_maple_type {
	PFS_MAPLE_DENSE = 0,
	PFS_MAPLE_LEAF_64 = 1,
	PFS_MAPLE_RANGE_64 = 2,
	PFS_MAPLE_ARANGE_64 = 3,
};

/* xa_is_node(): an internal entry above 4096 (include/linux/xarray.h) */
static inline int pfs_xa_is_node(uint64_t entry)
{
	return (entry & 3) == 2 && entry > 4096;
}
/* A child slot of an internal node: mt_mk_node() = node | type << 3 |
 * MAPLE_ENODE_NULL (bit 2, cleared by mte_set_full()); bits 0-1 are clear
 * (only the root carries MAPLE_ROOT_NODE, bit 1, via mte_mk_root()). */
#define PFS_MAPLE_ROOT_NODE  0x02ull   /* MAPLE_ROOT_NODE */
#define PFS_MAPLE_ENODE_NULL 0x04ull   /* MAPLE_ENODE_NULL */
static inline int pfs_mte_is_child(uint64_t slot)
{
	return (slot & 3) == 0 && (slot & ~0xffull) != 0;
}
/* mte_node_type() */
static inline unsigned pfs_mte_node_type(uint64_t enode)
{
	return (unsigned)(enode >> PFS_MAPLE_NODE_TYPE_SHIFT) & PFS_MAPLE_NODE_TYPE_MASK;
}
/* mte_to_node() */
static inline uint64_t pfs_mte_to_node(uint64_t enode)
{
	return enode & ~PFS_MAPLE_NODE_MASK;
}

/* Called once per non-empty range [first, last] in index order (NULL and
 * XA_ZERO_ENTRY slots are skipped, as mt_find() does).  Non-zero return
 * stops the walk and is returned by the iterator. */
typedef int (*pfs_maple_cb)(uint64_t first, uint64_t last, uint64_t entry, void *arg);

/* Visit every entry of the tree whose root is ma_root (the value of
 * struct maple_tree.ma_root) that overlaps [start, last].  0 when the
 * whole tree was visited, a negative PFS_E* on a bad tree, or the
 * callback's non-zero value. */
int pfs_maple_for_each(struct pfs_target *t, uint64_t ma_root, uint64_t start,
		       uint64_t last, pfs_maple_cb cb, void *arg);

/* mtree_load(): the entry at index and the range it covers (entry 0 and
 * the empty range around index when nothing is stored there).  0 or a
 * negative PFS_E*. */
int pfs_maple_load(struct pfs_target *t, uint64_t ma_root, uint64_t index,
		   uint64_t *first, uint64_t *last, uint64_t *entry);

#endif
