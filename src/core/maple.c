// SPDX-License-Identifier: MIT
/*
 * Read-only maple tree walk over a target kernel's memory.
 *
 * Mirrors lib/maple_tree.c: mte_node_type()/mte_to_node() decode the
 * encoded node pointer (bits 3-6 type, MAPLE_NODE_MASK 255), ma_pivots()/
 * ma_slots() locate the arrays per enum maple_type, ma_data_end() finds the
 * last used slot (metadata end for arange_64, and for range_64/leaf_64 when
 * the last pivot is 0), mtree_range_walk() gives slot `end` the node's max,
 * and mas_validate_limits() (mt_validate) is the set of checks applied to
 * every node we read.  A node is read as one kernel-virtual read of
 * maple_node_size (256) bytes.  Depth is capped at MAPLE_HEIGHT_MAX and the
 * node count at PFS_MAPLE_MAX_NODES, so a node pointing at itself or at an
 * ancestor ends the walk with -PFS_ELOOP (or -PFS_ECORRUPT when its pivots
 * betray it first), never a hang.
 */
#include <string.h>
#include "pfnscope/maple.h"

struct mnode {
	unsigned char buf[PFS_MAPLE_NODE_SIZE_MAX];
	uint64_t addr;      /* mte_to_node(): VA of the maple_node */
	uint64_t min, max;  /* range the parent gives this node */
	unsigned type;      /* enum maple_type */
	unsigned end;       /* ma_data_end(): last used slot */
	unsigned nslots;    /* mt_slots[type] */
	int32_t piv_off, slot_off;
	unsigned idx;       /* iteration: next slot to visit */
	uint64_t lo;        /* iteration: first index of slot idx */
};

static uint64_t get_u64(const unsigned char *buf, int32_t off)
{
	uint64_t v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

static uint32_t node_size(const struct pfs_layout *lo)
{
	if (lo->maple_node_size == 0 || lo->maple_node_size > PFS_MAPLE_NODE_SIZE_MAX)
		return PFS_MAPLE_NODE_SIZE_MAX;
	return lo->maple_node_size;
}

static int is_leaf(unsigned type)
{
	/* ma_is_leaf(): type < maple_range_64 */
	return type < PFS_MAPLE_RANGE_64;
}

/* mt_slot() of an already-read node, without bounds trust. */
static uint64_t node_slot(const struct mnode *n, unsigned i)
{
	return get_u64(n->buf, n->slot_off + (int32_t)(8 * i));
}

static uint64_t node_pivot(const struct mnode *n, unsigned i)
{
	return get_u64(n->buf, n->piv_off + (int32_t)(8 * i));
}

/* Last index covered by slot i (mas_safe_pivot() with mtree_range_walk()'s
 * rule that slot `end` reaches the node's max). */
static uint64_t node_hi(const struct mnode *n, unsigned i)
{
	if (n->type == PFS_MAPLE_DENSE)
		return n->min + i;
	if (i >= n->end)
		return n->max;
	return node_pivot(n, i);
}

/* Read and validate the node encoded as enode covering [min, max]. */
static int mnode_read(struct pfs_target *t, uint64_t enode, uint64_t min, uint64_t max,
		      struct mnode *n)
{
	const struct pfs_layout *lo = t->lo;
	uint32_t size = node_size(lo);
	int32_t meta = -1;
	unsigned npiv = 0, i;
	int ret;

	n->addr = pfs_mte_to_node(enode);
	n->type = pfs_mte_node_type(enode);
	n->min = min;
	n->max = max;
	n->idx = 0;
	n->lo = min;
	if (min > max)
		return pfs_target_fail(t, PFS_ECORRUPT, "maple node range", n->addr);

	switch (n->type) {
	case PFS_MAPLE_DENSE:
		n->nslots = lo->maple_dense_slots > 0 ? (unsigned)lo->maple_dense_slots : 31;
		n->slot_off = lo->maple_node_slot > 0 ? lo->maple_node_slot : 8;
		n->piv_off = -1;
		break;
	case PFS_MAPLE_LEAF_64:
	case PFS_MAPLE_RANGE_64:
		n->nslots = lo->maple_range64_slots > 0 ? (unsigned)lo->maple_range64_slots : 16;
		n->piv_off = pfs_layout_has(lo, maple_range64_pivot) ? lo->maple_range64_pivot : 8;
		n->slot_off = pfs_layout_has(lo, maple_range64_slot) ? lo->maple_range64_slot : 128;
		/* struct maple_metadata sits in slot[nslots - 1] (pad[15]) */
		meta = lo->maple_range64_meta > 0 ? lo->maple_range64_meta
			: n->slot_off + 8 * (int32_t)(n->nslots - 1);
		npiv = n->nslots - 1;
		break;
	case PFS_MAPLE_ARANGE_64:
		n->nslots = lo->maple_arange64_slots > 0 ? (unsigned)lo->maple_arange64_slots : 10;
		n->piv_off = pfs_layout_has(lo, maple_arange64_pivot) ? lo->maple_arange64_pivot : 8;
		n->slot_off = pfs_layout_has(lo, maple_arange64_slot) ? lo->maple_arange64_slot : 80;
		/* after slot[10] and gap[10] */
		meta = lo->maple_arange64_meta > 0 ? lo->maple_arange64_meta
			: n->slot_off + 16 * (int32_t)n->nslots;
		npiv = n->nslots - 1;
		break;
	default:
		/* enum maple_type has 4 values; anything else is not a node */
		return pfs_target_fail(t, PFS_ECORRUPT, "maple node type", n->addr);
	}
	/* A layout that would read beyond the node is a layout error. */
	if (n->nslots == 0 || n->slot_off < 0 ||
	    (uint64_t)n->slot_off + 8ull * n->nslots > size ||
	    (n->piv_off >= 0 && (uint64_t)n->piv_off + 8ull * npiv > size) ||
	    (meta >= 0 && (uint64_t)meta + 2 > size))
		return pfs_target_fail(t, PFS_ELAYOUT, "maple node layout", n->addr);

	ret = pfs_read_kvirt(t, n->addr, n->buf, size);
	if (ret < 0)
		return pfs_target_fail(t, -ret, "maple node", n->addr);

	if (n->type == PFS_MAPLE_DENSE) {
		/* one index per slot */
		uint64_t span = max - min;

		n->end = span < n->nslots - 1 ? (unsigned)span : n->nslots - 1;
		return 0;
	}

	/* ma_data_end() */
	if (n->type == PFS_MAPLE_ARANGE_64 || node_pivot(n, npiv - 1) == 0)
		n->end = n->buf[meta];          /* ma_meta_end() */
	else if (node_pivot(n, npiv - 1) == max)
		n->end = npiv - 1;
	else
		n->end = npiv;
	if (n->end >= n->nslots)
		return pfs_target_fail(t, PFS_ECORRUPT, "maple metadata end", n->addr);

	/* mas_validate_limits(): pivots before `end` are non-zero (except
	 * slot 0), strictly increasing, and inside [min, max) so that every
	 * slot covers a non-empty sub-range and slot `end` keeps one too. */
	for (i = 0; i < n->end; i++) {
		uint64_t piv = node_pivot(n, i);

		if ((i != 0 && piv == 0) || piv < min || piv >= max ||
		    (i != 0 && piv <= node_pivot(n, i - 1)))
			return pfs_target_fail(t, PFS_ECORRUPT, "maple pivot", n->addr);
	}
	return 0;
}

int pfs_maple_for_each(struct pfs_target *t, uint64_t ma_root, uint64_t start,
		       uint64_t last, pfs_maple_cb cb, void *arg)
{
	/* One node per level: the walk is depth-first with an explicit stack
	 * bounded by MAPLE_HEIGHT_MAX (about 8 KiB, no allocation). */
	struct mnode stack[PFS_MAPLE_HEIGHT_MAX];
	unsigned depth;
	uint64_t nodes = 0;
	int ret;

	if (start > last)
		return 0;
	if (ma_root == 0)
		return 0;                       /* empty tree */
	if (!pfs_xa_is_node(ma_root)) {
		/* mas_start(): a root that is not a node is one entry at 0 */
		if (start == 0 && ma_root != PFS_XA_ZERO_ENTRY)
			return cb(0, 0, ma_root, arg);
		return 0;
	}

	ret = mnode_read(t, ma_root, 0, UINT64_MAX, &stack[0]);
	if (ret < 0)
		return ret;
	nodes = 1;
	depth = 1;
	while (depth > 0) {
		struct mnode *n = &stack[depth - 1];
		uint64_t lo, hi, slot;

		if (n->idx > n->end || n->lo > last) {
			depth--;
			continue;
		}
		lo = n->lo;
		hi = node_hi(n, n->idx);
		slot = node_slot(n, n->idx);
		n->idx++;
		if (hi == UINT64_MAX)
			n->idx = n->end + 1;    /* nothing follows ULONG_MAX */
		else
			n->lo = hi + 1;
		if (hi < start)
			continue;

		if (is_leaf(n->type)) {
			if (slot == 0 || slot == PFS_XA_ZERO_ENTRY)
				continue;
			ret = cb(lo, hi, slot, arg);
			if (ret)
				return ret;
			continue;
		}
		/* internal node: every slot up to `end` is a child node */
		if (!pfs_mte_is_child(slot))
			return pfs_target_fail(t, PFS_ECORRUPT, "maple child", n->addr);
		if (depth >= PFS_MAPLE_HEIGHT_MAX)
			return pfs_target_fail(t, PFS_ELOOP, "maple depth", n->addr);
		if (++nodes > PFS_MAPLE_MAX_NODES)
			return pfs_target_fail(t, PFS_ELOOP, "maple node count", n->addr);
		ret = mnode_read(t, slot, lo, hi, &stack[depth]);
		if (ret < 0)
			return ret;
		depth++;
	}
	return 0;
}

int pfs_maple_load(struct pfs_target *t, uint64_t ma_root, uint64_t index,
		   uint64_t *first, uint64_t *last, uint64_t *entry)
{
	struct mnode n;
	uint64_t enode = ma_root, min = 0, max = UINT64_MAX;
	unsigned depth;

	*entry = 0;
	*first = 0;
	*last = UINT64_MAX;
	if (ma_root == 0)
		return 0;
	if (!pfs_xa_is_node(ma_root)) {
		if (index == 0) {
			*last = 0;
			*entry = ma_root == PFS_XA_ZERO_ENTRY ? 0 : ma_root;
		} else {
			*first = 1;
		}
		return 0;
	}
	/* mtree_range_walk(): descend through the slot whose range holds index */
	for (depth = 0; depth < PFS_MAPLE_HEIGHT_MAX; depth++) {
		unsigned i;
		uint64_t lo = min, slot;
		int ret = mnode_read(t, enode, min, max, &n);

		if (ret < 0)
			return ret;
		for (i = 0; i < n.end && node_hi(&n, i) < index; i++)
			lo = node_hi(&n, i) + 1;
		if (n.type == PFS_MAPLE_DENSE) {
			if (index - min > n.end) {
				*first = *last = index;
				return 0;       /* beyond the dense node's slots: empty */
			}
			lo = index;
			i = (unsigned)(index - min);
		}
		slot = node_slot(&n, i);
		min = lo;
		max = node_hi(&n, i);
		if (is_leaf(n.type)) {
			*first = min;
			*last = max;
			*entry = slot == PFS_XA_ZERO_ENTRY ? 0 : slot;
			return 0;
		}
		if (!pfs_mte_is_child(slot))
			return pfs_target_fail(t, PFS_ECORRUPT, "maple child", n.addr);
		enode = slot;
	}
	return pfs_target_fail(t, PFS_ELOOP, "maple depth", pfs_mte_to_node(enode));
}
