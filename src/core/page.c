// SPDX-License-Identifier: MIT
/*
 * struct page / folio decode (include/linux/mm_types.h, include/linux/mm.h).
 *
 * The kernel functions mirrored here, per generation (pfn_valid() is in
 * sparsemem.c):
 *   _compound_head(), page_fixed_fake_head(), PageType()/page_has_type()
 *   (6.1 PAGE_TYPE_BASE scheme) and page_type_has_type()/PGTY_* (6.12+)
 *                                                    include/linux/page-flags.h
 *   page_ref_count(), folio_ref_count()              include/linux/page_ref.h
 *   6.1:  __page_mapcount(), folio_mapcount()        mm/util.c
 *         compound_order(), PageHuge() (compound_dtor == HUGETLB_PAGE_DTOR)
 *   6.2-6.9: page_mapcount(), folio_total_mapcount() include/linux/mm.h, mm/rmap.c
 *   6.10+: folio_mapcount(), folio_large_mapcount(), page_mapcount() (to 6.11)
 *   is_free_buddy_page()                             mm/page_alloc.c
 *   PageAnon() / PageKsm(): mapping & PAGE_MAPPING_ANON / PAGE_MAPPING_KSM
 *
 * Reads: the struct pages of a run of valid pfns are decoded where the
 * reader maps them (a whole ELF dump: pfs_map_phys_bulk), else read as one
 * bulk physical read per leaf of the vmemmap mapping (2 MiB leaves
 * normally, so one read for a page table's 512 pages); the head page,
 * page[1] and the buddy-order candidates outside that run go through the
 * reader's block cache.  Folio-level results are memoised across the run, so a
 * PTE-mapped THP costs one subpage scan, not one per PTE, and buddy
 * candidates across a walk's runs (struct pfs_buddy_memo).  An order-0 page
 * whose words are those of the page before it is not decoded again
 * (repeats_prev()).
 * Arithmetic on counts is done in 64 bits: a dump may hold any value.
 */
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#define ALIKE_AVX2 1
#include <immintrin.h>  /* alike_from_avx2 */
#else
#define ALIKE_AVX2 0
#endif
#include "internal.h"
#include "pfnscope/page.h"

/* 6.1 page-flags.h: PAGE_TYPE_BASE, PAGE_MAPCOUNT_RESERVE */
#define PAGE_TYPE_BASE        0xf0000000u
#define PAGE_MAPCOUNT_RESERVE (-128)
/* 6.12+ page-flags.h: PGTY_mapcount_underflow = 0xff */
#define PGTY_MAPCOUNT_UNDERFLOW 0xffu
/* 6.2-6.9 FOLIO_PAGES_MAPPED = ENTIRELY_MAPPED (COMPOUND_MAPPED) - 1 */
#define FOLIO_PAGES_MAPPED    0x7fffffu

#define PFS_NR_PAGE_ORDERS_DEFAULT 11   /* x86-64/arm64 4K: MAX_ORDER 11 / MAX_PAGE_ORDER 10 */
/* Largest folio we scan: 1 GiB gigantic pages are order 18. */
#define PFS_MAX_FOLIO_ORDER        20
#define PFS_STRUCT_PAGE_MAX        256
/* One bulk read buffer: a whole page table of 64-byte struct pages. */
#define PFS_RUN_BUF_BYTES          (512u * 64u)

/* The words of a struct page that hold the fields an order-0 page decodes
 * from (same_mask_init()): one each at most. */
#define PFS_SAME_WORDS             5

/* Folio-level facts, computed once per head in a run. */
struct folio_info {
	uint64_t head_pfn;      /* UINT64_MAX: none */
	int ok;
	uint64_t flags, mapping;
	int32_t refcount;
	uint32_t word;          /* head's mapcount/page_type word */
	unsigned order;
	int large, hugetlb, slab, anon, ksm, double_map, head_typed;
	int64_t entire;         /* folio_entire_mapcount() */
	int64_t mapcount;       /* folio_mapcount() */
};

struct decode_ctx {
	struct pfs_target *t;
	const struct pfs_layout *lo;
	uint32_t ps;
	/* the run: struct pages of [buf_pfn, buf_pfn + buf_n), in buf or
	 * where the reader maps them (run_fill) */
	uint64_t buf_pfn;
	unsigned buf_n, buf_cap;
	const unsigned char *run;
	unsigned char *buf;
	unsigned char *buf_ok;          /* per page: read succeeded */
	/* buddy candidates: result per order for the last candidate pfn */
	struct pfs_buddy_memo *memo;
	struct folio_info fi;
	/* the bytes of a struct page repeats_prev() compares: the 8-byte words
	 * at same_off[], under same_mask[] (same_ok 0: no repeats) */
	int same_ok;
	int32_t same_off[PFS_SAME_WORDS];
	uint64_t same_mask[PFS_SAME_WORDS];
	/* a 64-byte struct page: its bytes compared, compound_head's bit 0
	 * among them (same_avx2 0: the page is larger or a field lies past
	 * 64 bytes) */
	int same_avx2;
	unsigned char same_bytes[64];
	unsigned char scratch[PFS_STRUCT_PAGE_MAX];
	unsigned char scratch2[PFS_STRUCT_PAGE_MAX];
};

static uint64_t rd_u64(const unsigned char *p, int32_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint32_t rd_u32(const unsigned char *p, int32_t off)
{
	uint32_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static int32_t clamp32(int64_t v)
{
	if (v > INT32_MAX)
		return INT32_MAX;
	if (v < INT32_MIN)
		return INT32_MIN;
	return (int32_t)v;
}

static int test_pg(uint64_t flags, int bit)
{
	return bit >= 0 && bit < 64 && ((flags >> bit) & 1);
}

/* ------------------------------------------------------------ memmap reads */

static uint64_t page_va(const struct decode_ctx *c, uint64_t pfn)
{
	return c->lo->vmemmap_base + pfn * c->ps;
}

/* Offsets of page[1] fields may be given in struct page or in struct folio. */
static uint64_t second_off(const struct decode_ctx *c, int32_t off)
{
	return (uint64_t)off < c->ps ? c->ps + (uint64_t)off : (uint64_t)off;
}

/* The run: the struct pages of [pfn, pfn + n) where the reader maps them
 * when one leaf of the vmemmap mapping holds them all, else read into the
 * run buffer: one bulk read per leaf; a leaf that fails is retried page by
 * page through the block cache so one bad block does not hide its
 * neighbours. */
static void run_fill(struct decode_ctx *c, uint64_t pfn, unsigned n)
{
	uint64_t va = page_va(c, pfn), len = (uint64_t)n * c->ps, done = 0;

	c->buf_pfn = pfn;
	c->buf_n = n;
	c->run = c->buf;
	memset(c->buf_ok, 1, n);
	while (done < len) {
		uint64_t pa, run, chunk;
		int ok = pfs_kvirt_to_phys(c->t, va + done, &pa, &run) == 0;

		chunk = len - done;
		if (ok && run < chunk)
			chunk = run;
		if (ok && chunk == len) {
			const unsigned char *p = pfs_map_phys_bulk(c->t->rd, pa, len);

			if (p) {
				c->run = p;
				return;
			}
		}
		if (!ok) {
			/* unmapped: skip to the next 4 KiB of vmemmap */
			chunk = PFS_PAGE_SIZE - ((va + done) & (PFS_PAGE_SIZE - 1));
			if (chunk > len - done)
				chunk = len - done;
		}
		if (ok && pfs_read_phys_bulk(c->t->rd, pa, c->buf + done, chunk) == 0) {
			done += chunk;
			continue;
		}
		/* salvage: every struct page wholly or partly in the chunk */
		for (uint64_t i = done / c->ps; i < n && i * c->ps < done + chunk; i++)
			if (!c->buf_ok[i] ||
			    pfs_read_kvirt(c->t, va + i * c->ps, c->buf + i * c->ps, c->ps) < 0)
				c->buf_ok[i] = 0;
		done += chunk;
	}
}

/* The struct page of pfn: from the run buffer, or read into dst. */
static const unsigned char *get_page(struct decode_ctx *c, uint64_t pfn, unsigned char *dst)
{
	if (pfn >= c->buf_pfn && pfn - c->buf_pfn < c->buf_n) {
		uint64_t i = pfn - c->buf_pfn;

		return c->buf_ok[i] ? c->run + i * c->ps : NULL;
	}
	if (pfs_read_kvirt(c->t, page_va(c, pfn), dst, c->ps) < 0)
		return NULL;
	return dst;
}

/* A field of a struct page at VA base + off (page[1] fields of a head). */
static int read_field(struct decode_ctx *c, uint64_t head_pfn, uint64_t off, void *out, size_t size)
{
	uint64_t pfn = head_pfn + off / c->ps, in = off % c->ps;

	if (in + size <= c->ps && pfn >= c->buf_pfn && pfn - c->buf_pfn < c->buf_n &&
	    c->buf_ok[pfn - c->buf_pfn]) {
		memcpy(out, c->run + (pfn - c->buf_pfn) * c->ps + in, size);
		return 0;
	}
	return pfs_read_kvirt(c->t, page_va(c, head_pfn) + off, out, size);
}

/* ------------------------------------------------------------- page types */

/* The word holding the page type: its own field (PFS_ABSENT when it is
 * the _mapcount union member, as in 6.1 .. 6.12). */
static uint32_t type_word(const struct decode_ctx *c, const unsigned char *pg)
{
	int32_t off = pfs_layout_has(c->lo, page_page_type) ? c->lo->page_page_type : c->lo->page_mapcount;

	return rd_u32(pg, off);
}

/* page_has_type() */
static int has_type(const struct pfs_layout *lo, uint32_t w)
{
	if (lo->page_type_scheme == PFS_PGTYPE_PGTY)
		/* page_type_has_type(): page_type < PGTY_mapcount_underflow << 24 (signed) */
		return (int32_t)w < (int32_t)(PGTY_MAPCOUNT_UNDERFLOW << 24);
	return (int32_t)w < PAGE_MAPCOUNT_RESERVE;
}

/* PageType(page, flag) (6.1) / page_type >> 24 == PGTY_x (6.12+) */
static int page_type_is(const struct pfs_layout *lo, uint32_t w, uint32_t type)
{
	if (type == (uint32_t)PFS_ABSENT)
		return 0;       /* this kernel has no such type */
	if (lo->page_type_scheme == PFS_PGTYPE_PGTY)
		return (w >> 24) == type;
	return (w & (PAGE_TYPE_BASE | type)) == PAGE_TYPE_BASE;
}

/* The _mapcount + 1 of one page, 0 for typed pages (6.10+ rule; earlier
 * kernels leave page_mapcount() undefined for them, mm.h says so). */
static int64_t own_mapcount(const struct decode_ctx *c, const unsigned char *pg)
{
	uint32_t w = rd_u32(pg, c->lo->page_mapcount);

	if (!pfs_layout_has(c->lo, page_page_type) && has_type(c->lo, w))
		return 0;
	return (int64_t)(int32_t)w + 1;
}

/* --------------------------------------------------------------- buddy */

/* PageBuddy(page) && buddy_order_unsafe(page) >= order, memoised per
 * order: consecutive pfns share their candidate head at every order > 0. */
static int buddy_candidate(struct decode_ctx *c, unsigned order, uint64_t cand)
{
	const struct pfs_layout *lo = c->lo;
	const unsigned char *pg;
	int res = 0;

	if (c->memo->pfn[order] == cand)
		return c->memo->buddy[order];
	pg = get_page(c, cand, c->scratch2);
	/* unreadable memmap: not provably a free block */
	if (pg && page_type_is(lo, type_word(c, pg), lo->pgtype_buddy)) {
		/* buddy_order_unsafe(): READ_ONCE(page_private(page)) */
		uint64_t bo = pfs_layout_has(lo, page_private) ? rd_u64(pg, lo->page_private) : 0;

		res = bo >= order;
	}
	c->memo->pfn[order] = cand;
	c->memo->buddy[order] = (int8_t)res;
	return res;
}

/* is_free_buddy_page() (mm/page_alloc.c): a PageBuddy head of sufficient
 * order at some order covering pfn.  A page that merged into a larger
 * block lost PageBuddy itself, so every order must be looked at. */
static int is_free_buddy_page(struct decode_ctx *c, uint64_t pfn)
{
	unsigned nr = c->lo->nr_page_orders > 0 ? (unsigned)c->lo->nr_page_orders
		: PFS_NR_PAGE_ORDERS_DEFAULT;

	if (nr > PFS_NR_PAGE_ORDERS_MAX)
		nr = PFS_NR_PAGE_ORDERS_MAX;
	for (unsigned order = 0; order < nr; order++)
		if (buddy_candidate(c, order, pfn & ~((1ull << order) - 1)))
			return 1;
	return 0;
}

/* ---------------------------------------------------------------- folios */

/* Sum of _mapcount + 1 over the first nr pages from head (the loop of 6.1
 * folio_mapcount() and of folio_total_mapcount()).  Unreadable subpages
 * add nothing. */
static int64_t subpages_mapcount(struct decode_ctx *c, uint64_t head_pfn, uint64_t nr)
{
	int64_t sum = 0;

	for (uint64_t i = 0; i < nr; i++) {
		uint64_t pfn = head_pfn + i;
		const unsigned char *pg;

		if (pfn < c->buf_pfn || pfn - c->buf_pfn >= c->buf_n) {
			/* Outside the run: refill the run buffer with the rest of
			 * the folio, one bulk read instead of nr small ones. */
			uint64_t left = nr - i;

			run_fill(c, pfn, left < c->buf_cap ? (unsigned)left : c->buf_cap);
		}
		pg = get_page(c, pfn, c->scratch2);
		if (pg)
			sum += (int64_t)(int32_t)rd_u32(pg, c->lo->page_mapcount) + 1;
	}
	return sum;
}

static int32_t second_i32(struct decode_ctx *c, uint64_t head_pfn, int32_t off, int *ok)
{
	uint32_t v = 0;

	if (off < 0 || read_field(c, head_pfn, second_off(c, off), &v, sizeof(v)) < 0)
		*ok = 0;
	return (int32_t)v;
}

/* Folio facts of the head at head_pfn whose struct page is hp. */
static void folio_load(struct decode_ctx *c, uint64_t head_pfn, const unsigned char *hp)
{
	const struct pfs_layout *lo = c->lo;
	struct folio_info *fi = &c->fi;
	int ok = 1;

	static const struct folio_info zero_fi;
	*fi = zero_fi;   /* a copy: memset() of a small struct is a slow rep stosq */
	fi->head_pfn = head_pfn;
	fi->ok = 1;
	fi->flags = rd_u64(hp, lo->page_flags);
	fi->mapping = rd_u64(hp, lo->page_mapping);
	fi->refcount = (int32_t)rd_u32(hp, lo->page_refcount);
	fi->word = type_word(c, hp);
	fi->head_typed = has_type(lo, fi->word);
	/* PageAnon(): mapping & PAGE_MAPPING_ANON; PageKsm(): (mapping & 3) == 3 */
	fi->anon = (fi->mapping & 1) != 0;
	fi->ksm = (fi->mapping & 3) == 3;
	/* folio_test_large() = folio_test_head(): PG_head on the head */
	fi->large = test_pg(fi->flags, lo->pg_head);
	/* folio_test_slab(): PG_slab (<= 6.9) or the slab page type (6.10+) */
	fi->slab = test_pg(fi->flags, lo->pg_slab) || page_type_is(lo, fi->word, lo->pgtype_slab);

	if (fi->large) {
		uint8_t order = 0, dtor = 0;

		/* compound_order() / folio_order(): page[1].compound_order (to
		 * 6.1) or folio._folio_order (6.1 .. 6.5) where the kernel has
		 * them; from commit ebc1baf5c9b4 ("mm: free up a word in the
		 * first tail page") (in v6.6) the low byte of folio._flags_1.  6.1 has a _flags_1 too,
		 * but there it is page[1].flags, not the order. */
		if (pfs_layout_has(lo, page_compound_order))
			read_field(c, head_pfn, second_off(c, lo->page_compound_order), &order, 1);
		else if (pfs_layout_has(lo, folio_flags_1))
			read_field(c, head_pfn, second_off(c, lo->folio_flags_1), &order, 1);
		fi->order = order;
		/* folio_test_hugetlb() (include/linux/page-flags.h), by
		 * generation: the hugetlb page type, commit d99e3140a4d3 ("mm:
		 * turn folio_test_hugetlb into a PageType") (in v6.9);
		 * PG_hugetlb on page[1], commit 9c5ccf2db04b ("mm: remove
		 * HUGETLB_PAGE_DTOR") (in v6.6); before, PageHuge()
		 * (mm/hugetlb.c): compound_dtor == HUGETLB_PAGE_DTOR */
		if (page_type_is(lo, fi->word, lo->pgtype_hugetlb)) {
			fi->hugetlb = 1;
		} else if (pfs_layout_has(lo, pg_hugetlb_second)) {
			uint64_t f1 = 0;

			if (read_field(c, head_pfn, c->ps + (uint64_t)lo->page_flags, &f1, 8) == 0)
				fi->hugetlb = test_pg(f1, lo->pg_hugetlb_second);
		} else if (pfs_layout_has(lo, page_compound_dtor) && pfs_layout_has(lo, hugetlb_page_dtor) &&
			   read_field(c, head_pfn, second_off(c, lo->page_compound_dtor), &dtor, 1) == 0) {
			fi->hugetlb = dtor == (uint8_t)lo->hugetlb_page_dtor;
		}
		/* PageDoubleMap(): PG_double_map on page[1] (PF_SECOND, <= 6.1) */
		if (pfs_layout_has(lo, pg_double_map)) {
			uint64_t f1 = 0;

			if (read_field(c, head_pfn, c->ps + (uint64_t)lo->page_flags, &f1, 8) == 0)
				fi->double_map = test_pg(f1, lo->pg_double_map);
		}
	}

	if (!fi->large) {
		/* small folio: _mapcount + 1, 0 if page_has_type() (6.10
		 * folio_mapcount(); same value as 6.1 for mappable pages) */
		fi->mapcount = own_mapcount(c, hp);
		return;
	}
	{
		uint64_t nr = fi->order <= PFS_MAX_FOLIO_ORDER ? 1ull << fi->order : 0;

		switch (lo->mapcount_scheme) {
		case PFS_MAPCOUNT_COMPOUND: {
			/* 6.1 mm/util.c folio_mapcount() */
			int64_t sum;

			fi->entire = (int64_t)second_i32(c, head_pfn, lo->page_compound_mapcount, &ok) + 1;
			if (fi->hugetlb) {
				fi->mapcount = fi->entire;
				break;
			}
			sum = fi->entire + subpages_mapcount(c, head_pfn, nr);
			/* File pages has compound_mapcount included in _mapcount */
			if (!fi->anon)
				sum -= fi->entire * (int64_t)nr;
			else if (fi->double_map)
				sum -= (int64_t)nr;
			fi->mapcount = sum;
			break;
		}
		case PFS_MAPCOUNT_ENTIRE: {
			/* 6.3..6.9 folio_total_mapcount() (6.2 total_compound_mapcount()) */
			int32_t mapped = 1;

			fi->entire = (int64_t)second_i32(c, head_pfn, lo->folio_entire_mapcount, &ok) + 1;
			fi->mapcount = fi->entire;
			if (pfs_layout_has(lo, folio_nr_pages_mapped)) {
				int ok2 = 1;

				mapped = second_i32(c, head_pfn, lo->folio_nr_pages_mapped, &ok2);
				if (!ok2)
					mapped = 1;
			}
			/* the common case skips the loop when no page is PTE-mapped */
			if ((uint32_t)mapped & FOLIO_PAGES_MAPPED)
				fi->mapcount += subpages_mapcount(c, head_pfn, nr);
			break;
		}
		case PFS_MAPCOUNT_LARGE:
		default:
			/* 6.10+ folio_large_mapcount(): _large_mapcount + 1 */
			fi->mapcount = (int64_t)second_i32(c, head_pfn, lo->folio_large_mapcount, &ok) + 1;
			if (pfs_layout_has(lo, folio_entire_mapcount)) {
				int ok2 = 1;
				int32_t e = second_i32(c, head_pfn, lo->folio_entire_mapcount, &ok2);

				fi->entire = ok2 ? (int64_t)e + 1 : 0;
			}
			break;
		}
	}
	(void)ok;   /* unreadable page[1] fields count as 0 (-1 + 1) */
}

/* ------------------------------------------------------------- decoding */

/* _compound_head(): the head page of pfn, or UINT64_MAX if the tail's
 * pointer does not name a struct page at or below it within a folio. */
static uint64_t compound_head(struct decode_ctx *c, uint64_t pfn, const unsigned char *pg, int *tail)
{
	const struct pfs_layout *lo = c->lo;
	uint64_t info = rd_u64(pg, lo->page_compound_head), va = page_va(c, pfn), head_va, hpfn;

	*tail = 0;
	if (!(info & 1)) {
		/* page_fixed_fake_head(): with HVO, a page-aligned struct page
		 * with PG_head may be a read-only copy of the head; the real
		 * head is then in page[1].compound_head.  On a genuine head,
		 * page[1] points back to itself, so this is always safe. */
		if (!lo->compound_info_is_mask && (va & (PFS_PAGE_SIZE - 1)) == 0 &&
		    test_pg(rd_u64(pg, lo->page_flags), lo->pg_head)) {
			uint64_t h1 = 0;

			if (read_field(c, pfn, c->ps + (uint64_t)lo->page_compound_head, &h1, 8) == 0 &&
			    (h1 & 1) && h1 - 1 != va) {
				head_va = h1 - 1;
				*tail = 1;
				goto check;
			}
		}
		return pfn;
	}
	*tail = 1;
	/* 7.1 compound_info: either head | 1 or a mask (head = page & info) */
	head_va = lo->compound_info_is_mask ? (va & info) : info - 1;
check:
	if (head_va < lo->vmemmap_base || (head_va - lo->vmemmap_base) % c->ps)
		return UINT64_MAX;
	hpfn = (head_va - lo->vmemmap_base) / c->ps;
	if (hpfn > pfn || pfn - hpfn >= (1ull << PFS_MAX_FOLIO_ORDER))
		return UINT64_MAX;
	return hpfn;
}

/* v: pfn_valid() of pfn (pfs_pfn_valid_cached), zone_device its section's
 * ZONE_DEVICE taint */
static void decode_one(struct decode_ctx *c, uint64_t pfn, struct pfs_page_info *out,
		       int v, int zone_device)
{
	const struct pfs_layout *lo = c->lo;
	const unsigned char *pg, *hp;
	struct folio_info *fi = &c->fi;
	uint64_t head_pfn, own_flags;
	uint32_t own_word;
	int tail;
	int64_t pmc;
	static const struct pfs_page_info zero_info;

	*out = zero_info;   /* a copy: memset() of a small struct is a slow rep stosq */
	if (v < 0) {
		out->state = PFS_PAGE_UNREADABLE;
		return;
	}
	if (v == 0) {
		out->state = PFS_PAGE_INVALID;
		return;
	}
	pg = get_page(c, pfn, c->scratch);
	if (!pg) {
		out->state = PFS_PAGE_UNREADABLE;
		return;
	}
	own_flags = rd_u64(pg, lo->page_flags);
	own_word = type_word(c, pg);
	out->page_refcount = (int32_t)rd_u32(pg, lo->page_refcount);
	out->raw_mapcount = (int32_t)rd_u32(pg, lo->page_mapcount);

	head_pfn = compound_head(c, pfn, pg, &tail);
	if (head_pfn == UINT64_MAX) {
		/* a tail whose head pointer is garbage: decode it alone */
		out->bits |= PFS_PG_TAIL;
		head_pfn = pfn;
		out->head_pfn = UINT64_MAX;
	} else {
		out->head_pfn = head_pfn;
		if (tail)
			out->bits |= PFS_PG_TAIL;
	}
	if (head_pfn == pfn && !tail && !test_pg(own_flags, lo->pg_head)) {
		/* a small folio: folio_load() reads no other page */
		folio_load(c, head_pfn, pg);
	} else if (fi->head_pfn != head_pfn || !fi->ok) {
		/* copy: folio_load() may refill the run buffer */
		unsigned char hcopy[PFS_STRUCT_PAGE_MAX];
		uint64_t buf_pfn = c->buf_pfn;
		unsigned buf_n = c->buf_n;

		hp = head_pfn == pfn ? pg : get_page(c, head_pfn, c->scratch2);
		if (!hp) {
			out->state = PFS_PAGE_UNREADABLE;
			return;
		}
		memcpy(hcopy, hp, c->ps);
		folio_load(c, head_pfn, hcopy);
		if (c->buf_pfn != buf_pfn || c->buf_n != buf_n) {
			/* folio_load() moved the run buffer; pg may point into it */
			pg = get_page(c, pfn, c->scratch);
			if (!pg) {
				out->state = PFS_PAGE_UNREADABLE;
				return;
			}
		}
	}

	out->state = PFS_PAGE_OK;
	out->flags = fi->flags;
	out->mapping = fi->mapping;
	out->refcount = fi->refcount;           /* folio_ref_count() */
	out->order = fi->order;
	out->mapcount = clamp32(fi->mapcount);  /* folio_mapcount() */
	if (fi->large && !tail)
		out->bits |= PFS_PG_HEAD;
	if (fi->anon)
		out->bits |= PFS_PG_ANON;
	if (fi->ksm)
		out->bits |= PFS_PG_KSM;
	if (fi->slab)
		out->bits |= PFS_PG_SLAB;
	if (fi->hugetlb)
		out->bits |= PFS_PG_HUGETLB;
	/* per-page types and flags (PF_NO_COMPOUND / PF_ANY in page-flags.h);
	 * TYPED says this page's own word is a page type (page_has_type()) */
	if (has_type(lo, own_word))
		out->bits |= PFS_PG_TYPED;
	if (page_type_is(lo, own_word, lo->pgtype_buddy))
		out->bits |= PFS_PG_BUDDY;
	if (page_type_is(lo, own_word, lo->pgtype_table))
		out->bits |= PFS_PG_PGTABLE;
	if (page_type_is(lo, own_word, lo->pgtype_offline))
		out->bits |= PFS_PG_OFFLINE;
	if (test_pg(own_flags, lo->pg_reserved))
		out->bits |= PFS_PG_RESERVED;
	if (test_pg(own_flags, lo->pg_hwpoison))
		out->bits |= PFS_PG_HWPOISON;
	if (zone_device)
		out->bits |= PFS_PG_ZONE_DEVICE;
	if ((pfs_layout_has(lo, zero_pfn) && pfn == lo->zero_pfn) ||
	    (pfs_layout_has(lo, huge_zero_pfn) &&
	     (pfn == lo->huge_zero_pfn || head_pfn == lo->huge_zero_pfn)))
		out->bits |= PFS_PG_ZERO;
	if (is_free_buddy_page(c, pfn))
		out->bits |= PFS_PG_FREE;

	/* page_mapcount() of this page */
	pmc = own_mapcount(c, pg);
	if (fi->large) {
		switch (lo->mapcount_scheme) {
		case PFS_MAPCOUNT_COMPOUND:
			/* 6.1 __page_mapcount(): file THP subpage counts
			 * already include PMD mappings */
			if (fi->anon || fi->hugetlb)
				pmc += fi->entire - (fi->double_map ? 1 : 0);
			break;
		default:
			/* 6.2 .. 6.11 page_mapcount(): + folio_entire_mapcount() */
			pmc += fi->entire;
			break;
		}
	}
	out->page_mapcount = clamp32(pmc);
}

/* The memo after is_free_buddy_page() found each of the pfns [first, last]
 * no PageBuddy, one after the other (repeats_prev()): a pfn is its own
 * candidate up to order ctz(pfn), and its candidates above are those of the
 * pfn before it.  So at each order the candidate is the last multiple of
 * 2^order in [first, last], where there is one. */
static void buddy_memo_not_buddy(struct decode_ctx *c, uint64_t first, uint64_t last)
{
	unsigned nr = c->lo->nr_page_orders > 0 ? (unsigned)c->lo->nr_page_orders
		: PFS_NR_PAGE_ORDERS_DEFAULT;

	if (nr > PFS_NR_PAGE_ORDERS_MAX)
		nr = PFS_NR_PAGE_ORDERS_MAX;
	for (unsigned o = 0; o < nr; o++) {
		uint64_t x = last & ~((1ull << o) - 1);
		if (x < first)
			break;
		c->memo->pfn[o] = x;
		c->memo->buddy[o] = 0;
	}
}

/* The words decode_one() reads of an order-0 page, as masks over the
 * 8-byte words of its struct page that hold them: flags, mapping,
 * _refcount, the _mapcount and page_type words.  Words no field needs have
 * mask 0.  None when the struct page is not whole words (no repeats). */
static void same_mask_init(struct decode_ctx *c)
{
	const struct pfs_layout *lo = c->lo;
	struct { int32_t off; unsigned len; } f[] = {
		{ lo->page_flags, 8 }, { lo->page_mapping, 8 }, { lo->page_refcount, 4 },
		{ lo->page_mapcount, 4 },
		{ pfs_layout_has(lo, page_page_type) ? lo->page_page_type : lo->page_mapcount, 4 },
	};
	unsigned nw = 0;
	int in64 = 1;           /* every byte compared within same_bytes */

	c->same_ok = 0;
	for (unsigned w = 0; w < PFS_SAME_WORDS; w++) {
		c->same_off[w] = 0;
		c->same_mask[w] = 0;
	}
	if (c->ps % 8)
		return;
	for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		for (unsigned b = (unsigned)f[i].off; b < (unsigned)f[i].off + f[i].len; b++) {
			int32_t woff = (int32_t)(b & ~7u);
			unsigned w = 0;
			while (w < nw && c->same_off[w] != woff)
				w++;
			if (w == nw) {
				if (nw == PFS_SAME_WORDS)
					return;
				c->same_off[nw++] = woff;
			}
			/* the byte's place in the word as rd_u64() loads it */
			unsigned char m[8] = { 0 };
			uint64_t bit;
			m[b & 7] = 0xff;
			memcpy(&bit, m, 8);
			c->same_mask[w] |= bit;
			if (b < sizeof(c->same_bytes))
				c->same_bytes[b] = 0xff;
			else
				in64 = 0;
		}
	}
	c->same_ok = 1;
	c->same_avx2 = in64 && c->ps == sizeof(c->same_bytes) && lo->page_compound_head >= 0 &&
		       (size_t)lo->page_compound_head < sizeof(c->same_bytes);
	if (c->same_avx2)
		c->same_bytes[lo->page_compound_head] |= 1;
}

/* Ask for the struct pages two 4 KiB pages on while these are compared: a
 * run read in place (pfs_map_phys_bulk) crosses a page of the mapping
 * every 64 struct pages, each a TLB miss the stream would otherwise wait
 * on (about a tenth of a summary walk of a 1 GiB VMA); a prefetch of an
 * address past the run, or not mapped, is dropped. */
static inline void prefetch_ahead(const unsigned char *pg)
{
	__builtin_prefetch((const void *)((uintptr_t)pg + 8192));
}

/* The first index from k (below j) of the run buffer whose struct page's
 * first nw words under same_mask[] (nw a constant where it is inlined: the
 * loop unrolled) differ from the page before's, or whose compound_head has
 * bit 0 set; j when none.  Pages equal to the page before, one after the
 * other, are all equal to the page before k: each is compared with that
 * one's words, read once. */
static inline __attribute__((always_inline)) unsigned
alike_from(const struct decode_ctx *c, unsigned k, unsigned j, const unsigned nw)
{
	const int32_t ch = c->lo->page_compound_head;
	const size_t ps = c->ps;
	const unsigned char *const run = c->run, *pg = run + (size_t)k * ps;
	const unsigned char *const end = run + (size_t)j * ps;
	int32_t off[PFS_SAME_WORDS];
	uint64_t mask[PFS_SAME_WORDS], ref[PFS_SAME_WORDS];

	memcpy(off, c->same_off, sizeof(off));
	memcpy(mask, c->same_mask, sizeof(mask));
#pragma GCC unroll 8
	for (unsigned w = 0; w < nw; w++)
		ref[w] = rd_u64(pg - ps, off[w]) & mask[w];
	for (; pg < end; pg += ps) {
		uint64_t d = rd_u64(pg, ch) & 1;
		prefetch_ahead(pg);
#pragma GCC unroll 8
		for (unsigned w = 0; w < nw; w++)
			d |= (rd_u64(pg, off[w]) & mask[w]) ^ ref[w];
		if (d)
			break;
	}
	return (unsigned)((size_t)(pg - run) / ps);
}

/* alike_from() with nw a constant, each a function of its own: inlined
 * into its caller the scan's words and masks do not stay in registers */
static __attribute__((noinline)) unsigned
alike_from3(const struct decode_ctx *c, unsigned k, unsigned j)
{
	return alike_from(c, k, j, 3);
}

static __attribute__((noinline)) unsigned
alike_from5(const struct decode_ctx *c, unsigned k, unsigned j)
{
	return alike_from(c, k, j, PFS_SAME_WORDS);
}

#if ALIKE_AVX2
/* alike_from() for a 64-byte struct page with AVX2: its bytes under
 * same_bytes as two 32-byte masks, a page two loads and one test; every
 * page's compound_head bit 0 is compared with a clear one (a tail's is
 * set) */
static __attribute__((target("avx2"), noinline)) unsigned
alike_from_avx2(const struct decode_ctx *c, unsigned k, unsigned j)
{
	const unsigned char *const m = c->same_bytes;
	const unsigned char *const run = c->run, *pg = run + (size_t)k * 64;
	const unsigned char *const end = run + (size_t)j * 64;
	unsigned char r[64];

	for (unsigned b = 0; b < 64; b++)
		r[b] = pg[(ptrdiff_t)b - 64] & m[b];
	r[c->lo->page_compound_head] &= (unsigned char)~1u;
	const __m256i m0 = _mm256_loadu_si256((const __m256i *)m);
	const __m256i m1 = _mm256_loadu_si256((const __m256i *)(m + 32));
	const __m256i r0 = _mm256_loadu_si256((const __m256i *)r);
	const __m256i r1 = _mm256_loadu_si256((const __m256i *)(r + 32));
	for (; pg < end; pg += 64) {
		__m256i lo = _mm256_loadu_si256((const __m256i *)pg);
		__m256i hi = _mm256_loadu_si256((const __m256i *)(pg + 32));
		__m256i d = _mm256_or_si256(_mm256_xor_si256(_mm256_and_si256(lo, m0), r0),
					    _mm256_xor_si256(_mm256_and_si256(hi, m1), r1));

		prefetch_ahead(pg);
		if (!_mm256_testz_si256(d, d))
			break;
	}
	return (unsigned)((size_t)(pg - run) / 64);
}

#endif

/*
 * The pages from index i of the run buffer on (at most up to index j) that
 * each decode to what the page before did, that page being an order-0 page
 * in the state prev (its own head: the caller checks): both read, the
 * words decode_one() reads equal (same_mask_init()), the page no tail
 * (compound_head bit 0 clear; PG_head is in the equal flags), neither the
 * zero page nor the huge zero folio's head, and prev neither PageBuddy nor
 * inside a free block: is_free_buddy_page() is then 0 as well, for a
 * page's candidate heads above order ctz(pfn) are those of the pfn before
 * and the others are the page itself, whose page type is prev's.
 */
static unsigned repeats_prev(const struct decode_ctx *c, unsigned i, unsigned j,
			     const struct pfs_page_info *prev, int zone_device)
{
	const struct pfs_layout *lo = c->lo;
	const uint32_t not = PFS_PG_HEAD | PFS_PG_TAIL | PFS_PG_BUDDY | PFS_PG_FREE | PFS_PG_ZERO;
	unsigned k = i;

	if (!c->same_ok || prev->state != PFS_PAGE_OK || (prev->bits & not) ||
	    !(prev->bits & PFS_PG_ZONE_DEVICE) != !zone_device || i == 0 || !c->buf_ok[i - 1])
		return 0;
	if (j > c->buf_n)
		j = c->buf_n;
	/* stop before the zero page and the huge zero folio's head */
	if (pfs_layout_has(lo, zero_pfn) && lo->zero_pfn >= c->buf_pfn + i &&
	    lo->zero_pfn < c->buf_pfn + j)
		j = (unsigned)(lo->zero_pfn - c->buf_pfn);
	if (pfs_layout_has(lo, huge_zero_pfn) && lo->huge_zero_pfn >= c->buf_pfn + i &&
	    lo->huge_zero_pfn < c->buf_pfn + j)
		j = (unsigned)(lo->huge_zero_pfn - c->buf_pfn);
	if (j <= k)
		return 0;
	/* stop before the first struct page not read */
	const unsigned char *bad = memchr(c->buf_ok + k, 0, j - k);
	if (bad)
		j = (unsigned)(bad - c->buf_ok);
	/* 6.1 holds the fields in three words (flags, mapping, _refcount with
	 * _mapcount): the scan unrolled for three, or for all five */
#if ALIKE_AVX2
	if (c->same_avx2 && __builtin_cpu_supports("avx2"))
		return alike_from_avx2(c, k, j) - i;
#endif
	if (!c->same_mask[3] && !c->same_mask[4])
		return alike_from3(c, k, j) - i;
	return alike_from5(c, k, j) - i;
}

void pfs_buddy_memo_init(struct pfs_buddy_memo *m)
{
	for (unsigned o = 0; o < PFS_NR_PAGE_ORDERS_MAX; o++) {
		m->pfn[o] = UINT64_MAX;
		m->buddy[o] = 0;
	}
}

void pfs_page_decode_run(struct pfs_target *t, uint64_t pfn, unsigned n, struct pfs_page_info *out,
			 uint8_t *same, struct pfs_buddy_memo *memo)
{
	const struct pfs_layout *lo = t->lo;
	/* Small runs (a single pfn, a PMD leaf's head) decode from a stack
	 * buffer: no allocation per entry.  Page-table runs use one heap
	 * buffer that holds a whole table's struct pages. */
	unsigned char small_buf[4096], small_ok[4096 / 16];
	struct decode_ctx ctx, *c = &ctx;
	unsigned i = 0, last = 0;       /* last: the last out[] written */
	struct pfs_buddy_memo local_memo;
	int heap = 0;

	if (n == 0)
		return;
	if (same)
		memset(same, 0, n);
	memset(c, 0, sizeof(*c));
	if (lo->page_size >= 16 && lo->page_size <= PFS_STRUCT_PAGE_MAX) {
		if ((uint64_t)n * lo->page_size <= sizeof(small_buf)) {
			c->buf_cap = (unsigned)(sizeof(small_buf) / lo->page_size);
			c->buf = small_buf;
			c->buf_ok = small_ok;
		} else {
			heap = 1;
			c->buf_cap = PFS_RUN_BUF_BYTES / lo->page_size;
			c->buf = malloc((size_t)c->buf_cap * lo->page_size);
			c->buf_ok = malloc(c->buf_cap);
		}
	}
	/* layout sanity: every struct page field we read lies in the struct */
	if (!c->buf || !c->buf_ok || !pfs_layout_has(lo, page_flags) || !pfs_layout_has(lo, page_refcount) ||
	    !pfs_layout_has(lo, page_mapcount) || !pfs_layout_has(lo, page_mapping) || !pfs_layout_has(lo, page_compound_head) ||
	    (uint64_t)lo->page_flags + 8 > lo->page_size ||
	    (uint64_t)lo->page_refcount + 4 > lo->page_size ||
	    (uint64_t)lo->page_mapcount + 4 > lo->page_size ||
	    (uint64_t)lo->page_mapping + 8 > lo->page_size ||
	    (uint64_t)lo->page_compound_head + 8 > lo->page_size ||
	    (pfs_layout_has(lo, page_private) && (uint64_t)lo->page_private + 8 > lo->page_size) ||
	    (pfs_layout_has(lo, page_page_type) && (uint64_t)lo->page_page_type + 4 > lo->page_size)) {
		for (i = 0; i < n; i++) {
			memset(&out[i], 0, sizeof(out[i]));
			out[i].state = PFS_PAGE_UNREADABLE;
		}
		if (heap) {
			free(c->buf);
			free(c->buf_ok);
		}
		pfs_target_fail(t, PFS_ELAYOUT, "struct page layout", pfn);
		return;
	}
	c->t = t;
	c->lo = lo;
	c->ps = lo->page_size;
	pfs_section_cache_forget_errors(&t->sc);
	c->fi.head_pfn = UINT64_MAX;
	c->buf_pfn = UINT64_MAX;
	if (!memo) {
		pfs_buddy_memo_init(&local_memo);
		memo = &local_memo;
	}
	c->memo = memo;
	if (same)
		same_mask_init(c);

	const uint64_t vmask = (1ull << pfs_pfn_valid_shift(lo)) - 1;
	while (i < n) {
		unsigned j = i;
		int v = 0, zd = 0, zd_run = 0;

		/* the longest stretch of valid pfns from i that fits the buffer,
		 * in one ZONE_DEVICE state, asked once per subsection */
		while (j < n && j - i < c->buf_cap) {
			v = pfs_pfn_valid_cached(t, &t->sc, pfn + j, &zd);
			if (v != 1 || (j != i && zd != zd_run))
				break;
			zd_run = zd;
			/* on to the next subsection */
			uint64_t next = ((pfn + j) | vmask) + 1 - pfn;
			j = next < n && next - i < c->buf_cap ? (unsigned)next :
			    n < i + c->buf_cap ? n : i + c->buf_cap;
		}
		if (j == i) {
			/* invalid (a run of them is one state) or unreadable */
			if (same && i > 0 && v == 0 && out[last].state == PFS_PAGE_INVALID) {
				same[i++] = 1;
				continue;
			}
			decode_one(c, pfn + i, &out[i], v, zd);
			last = i++;
			continue;
		}
		run_fill(c, pfn + i, j - i);
		for (; i < j; i++) {
			/* a folio scan may have moved the buffer: bring the run back */
			if (pfn + i < c->buf_pfn || pfn + i - c->buf_pfn >= c->buf_n)
				run_fill(c, pfn + i, j - i);
			/* the page before is out[last] stepped (pfs_page_info_step):
			 * an order-0 page if out[last] was its own head */
			if (same && i > 0 && out[last].head_pfn == pfn + last && pfn + i > c->buf_pfn) {
				unsigned b = (unsigned)(pfn + i - c->buf_pfn);
				unsigned r = repeats_prev(c, b, b + (j - i), &out[last], zd_run);
				if (r) {
					buddy_memo_not_buddy(c, pfn + i, pfn + i + r - 1);
					memset(same + i, 1, r);
					i += r - 1;
					continue;
				}
			}
			decode_one(c, pfn + i, &out[i], 1, zd_run);
			last = i;
		}
	}
	if (heap) {
		free(c->buf);
		free(c->buf_ok);
	}
}

void pfs_page_decode(struct pfs_target *t, uint64_t pfn, struct pfs_page_info *out)
{
	pfs_page_decode_run(t, pfn, 1, out, NULL, NULL);
}
