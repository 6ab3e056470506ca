/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_PAGE_H
#define PFNSCOPE_PAGE_H
/*
 * struct page / folio decode (include/linux/mm.h): refcount, mapcount per
 * generation, flags, compound head, anon/KSM, reserved, page type, free
 * buddy membership, pfn_valid via mem_section.
 */
#include <stdint.h>
#include "pfnscope/target.h"

enum pfs_page_state {
	PFS_PAGE_NONE = 0,        /* no pfn (non-present entry) */
	PFS_PAGE_OK = 1,          /* decoded */
	PFS_PAGE_INVALID = 2,     /* !pfn_valid: no struct page */
	PFS_PAGE_UNREADABLE = 3,  /* memmap or mem_section unreadable */
};

/* page bits */
#define PFS_PG_ANON       (1u << 0)
#define PFS_PG_KSM        (1u << 1)
#define PFS_PG_RESERVED   (1u << 2)
#define PFS_PG_HEAD       (1u << 3)
#define PFS_PG_TAIL       (1u << 4)
#define PFS_PG_BUDDY      (1u << 5)   /* PageBuddy on this page */
#define PFS_PG_FREE       (1u << 6)   /* inside a free buddy block: is_free_buddy_page() */
#define PFS_PG_SLAB       (1u << 7)
#define PFS_PG_PGTABLE    (1u << 8)
#define PFS_PG_OFFLINE    (1u << 9)
#define PFS_PG_HUGETLB    (1u << 10)
#define PFS_PG_TYPED      (1u << 11)  /* any page type: mapcount word is a type */
#define PFS_PG_ZONE_DEVICE (1u << 12)
#define PFS_PG_HWPOISON   (1u << 13)
#define PFS_PG_ZERO       (1u << 14)  /* zero_pfn or huge zero */

struct pfs_page_info {
	uint8_t state;            /* enum pfs_page_state */
	uint32_t bits;            /* PFS_PG_* */
	int32_t refcount;         /* folio_ref_count (head's _refcount) */
	int32_t page_refcount;    /* this struct page's own _refcount */
	int32_t mapcount;         /* folio_mapcount()-like total for the folio ... */
	int32_t page_mapcount;    /* ... and page_mapcount() of this page where defined */
	int32_t raw_mapcount;     /* _mapcount word as stored (-1 based) */
	uint64_t flags;           /* page->flags of the head (low bits = PG_*) */
	uint64_t head_pfn;
	unsigned order;           /* compound order of the head, 0 for small */
	uint64_t mapping;
};

/* pfn_valid() of include/linux/mmzone.h (SPARSEMEM[_EXTREME], subsections)
 * into *valid (1 or 0).  0, or a negative code (t->error says where) when
 * mem_section is unreadable. */
int pfs_pfn_valid(struct pfs_target *t, uint64_t pfn, int *valid);
/* Decode the struct page of pfn (state tells whether it worked). */
void pfs_page_decode(struct pfs_target *t, uint64_t pfn, struct pfs_page_info *out);
/* The candidate buddy heads that decodes looked at (is_free_buddy_page()),
 * kept by a walk across its page tables: consecutive pfns share their
 * candidate head at every order above the pfn's lowest set bit. */
#define PFS_NR_PAGE_ORDERS_MAX 16
struct pfs_buddy_memo {
	uint64_t pfn[PFS_NR_PAGE_ORDERS_MAX];   /* UINT64_MAX: none */
	int8_t buddy[PFS_NR_PAGE_ORDERS_MAX];   /* PageBuddy of order >= the index */
};
void pfs_buddy_memo_init(struct pfs_buddy_memo *m);

/* Decode n consecutive pfns with one memmap read per run.  With same not
 * NULL, same[i] is 1 when pfn + i decodes to what pfn + i - 1 does, stepped
 * by pfs_page_info_step(), and out[i] is then left unwritten; otherwise 0
 * and out[i] is written (same[0] is always 0).  A run of order-0 pages in
 * one state is then decoded once.  memo: the candidates of earlier runs
 * (NULL: none; the memmap read again). */
void pfs_page_decode_run(struct pfs_target *t, uint64_t pfn, unsigned n, struct pfs_page_info *out,
			 uint8_t *same, struct pfs_buddy_memo *memo);

/* every field of a and b alike */
static inline int pfs_page_info_equal(const struct pfs_page_info *a, const struct pfs_page_info *b)
{
	return a->state == b->state && a->bits == b->bits && a->refcount == b->refcount &&
	       a->page_refcount == b->page_refcount && a->mapcount == b->mapcount &&
	       a->page_mapcount == b->page_mapcount && a->raw_mapcount == b->raw_mapcount &&
	       a->flags == b->flags && a->head_pfn == b->head_pfn && a->order == b->order &&
	       a->mapping == b->mapping;
}

/* p, the page of pfn, made that of pfn + count when every page between
 * repeats the one before it (pfs_page_decode_run's same[]): an order-0
 * page is its own head. */
static inline void pfs_page_info_step(struct pfs_page_info *p, uint64_t pfn, uint64_t count)
{
	if (p->state == PFS_PAGE_OK && p->head_pfn == pfn)
		p->head_pfn = pfn + count;
}

#endif
