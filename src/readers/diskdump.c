// SPDX-License-Identifier: MIT
/*
 * Pages of a whole kdump-compressed file, read without libkdumpfile (see
 * diskdump.h; kdumpfile.c's check_diskdump() and diskdump_direct_open()
 * decide when).
 *
 * libkdumpfile decodes a page through its generic page cache: a miss walks
 * every list of it, then zlib's inflateInit/inflate/inflateEnd allocate and
 * free a window per page (util.c uncompress_page_gzip), and each page
 * descriptor costs a pread(2) of 24 bytes (diskdump.c diskdump_read_page).
 * Here a pfn finds its descriptor through a rank index over the dumpable
 * bitmap, descriptors are read 128 at a time (a run of struct pages or a
 * page table's children are near each other in pfn order), page data is
 * read ahead while pages are read in file order, the last 32 pages are
 * kept, and a page is inflated by libdeflate into its slot in one call.
 *
 * What libkdumpfile 0.5.1 does with a page (diskdump.c diskdump_read_page)
 * is what is done here for the two kinds makedumpfile writes with -c and
 * QEMU with kdump-zlib: flags 0 and size == the page size (copied), or
 * DUMP_DH_COMPRESSED_ZLIB alone, no larger than a page (inflated; anything
 * but exactly one page out is an error, as uncompress_page_gzip's
 * "Wrong uncompressed size").  A pfn at or past max_pfn, or whose bit is
 * clear, is excluded (its KDUMP_ERR_NODATA "Out-of-bounds PFN", "Excluded
 * page").  Every other descriptor is left to libkdumpfile (PFS_DD_OTHER).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libdeflate.h>

#include "diskdump.h"

_Static_assert(sizeof(struct page_desc) == 24, "makedumpfile's 64-bit page_desc");

/* Set bits are counted before every RANK_BITS pfns (crash's diskdump.c
 * keeps the same counts, valid_pages[], per BITMAP_SECT_LEN pfns): a rank
 * is one count plus at most RANK_WORDS - 1 word popcounts and one part. */
#define RANK_WORDS 8u
#define RANK_BITS (RANK_WORDS * 64u)
#define DESC_BATCH 128u
#define CACHE_PAGES 32u
#define NO_PFN UINT64_MAX
/* Page data is read ahead this far when a page's data starts where the
 * last one's ended: makedumpfile and QEMU write the pages in pfn order
 * (write_kdump_pages_cyclic, write_dump_pages), and a run of struct pages
 * or a table's leaves is read in pfn order.  Other reads take one page's
 * data: a page-table page is rarely next to the last one read. */
#define READ_AHEAD (64u << 10)

struct pfs_dd {
	int fd;
	uint32_t page_size;
	uint64_t max_pfn;       /* pfns at or past it are not in the dump */
	uint64_t *bits;         /* the dumpable bitmap up to max_pfn, rest clear */
	uint64_t nwords;
	uint64_t *rank;         /* set bits before word i * RANK_WORDS; [nblocks] = all */
	uint64_t desc_off;
};

struct pfs_dd_cursor {
	const struct pfs_dd *dd;
	/* descriptors [desc_first, desc_first + desc_n) */
	struct page_desc desc[DESC_BATCH];
	uint64_t desc_first, desc_n;
	/* the last pages decoded: slot i holds pfn[i] (NO_PFN: empty), used
	 * at clock tick used[i]; the least recently used one is replaced */
	uint64_t pfn[CACHE_PAGES];
	uint64_t used[CACHE_PAGES];
	uint64_t clock;
	unsigned last;          /* the slot of the last hit */
	unsigned char *pages;   /* CACHE_PAGES * page_size */
	/* file bytes [win_off, win_off + win_len) in win (READ_AHEAD bytes);
	 * next_off: where the last page's data ended */
	unsigned char *win;
	uint64_t win_off, win_len, next_off;
	struct libdeflate_decompressor *inflate;
};

/* at least min and at most max bytes at off: how many, or -1 */
static ssize_t pread_some(int fd, void *buf, size_t min, size_t max, uint64_t off)
{
	size_t done = 0;

	while (done < min) {
		ssize_t n = pread(fd, (char *)buf + done, max - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int pfs_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	return pread_some(fd, buf, len, len, off) < 0 ? -1 : 0;
}

struct pfs_dd *pfs_dd_new(int fd, const unsigned char *bitmap, uint64_t bm_len,
			  uint64_t max_pfn, uint64_t desc_off, uint32_t page_size)
{
	struct pfs_dd *dd;

	if (!page_size || bm_len > (UINT64_MAX >> 4))
		return NULL;
	if (max_pfn > bm_len * 8)
		max_pfn = bm_len * 8;
	dd = calloc(1, sizeof(*dd));
	if (!dd)
		return NULL;
	dd->fd = fd;
	dd->page_size = page_size;
	dd->max_pfn = max_pfn;
	dd->desc_off = desc_off;
	dd->nwords = (max_pfn + 63) / 64;
	uint64_t nblocks = (dd->nwords + RANK_WORDS - 1) / RANK_WORDS;
	/* whole blocks of words, so that a rank never reads past the end */
	dd->bits = calloc(nblocks * RANK_WORDS + 1, sizeof(*dd->bits));
	dd->rank = calloc(nblocks + 1, sizeof(*dd->rank));
	if (!dd->bits || !dd->rank) {
		pfs_dd_free(dd);
		return NULL;
	}
	/* the bitmap is little-endian bytes: bit b of byte i is pfn 8i + b,
	 * as libkdumpfile's pfn_regions_from_bitmap() and makedumpfile's
	 * is_dumpable() read it */
	for (uint64_t i = 0; i < (max_pfn + 7) / 8; i++)
		dd->bits[i / 8] |= (uint64_t)bitmap[i] << (8 * (i % 8));
	if (max_pfn % 64)
		dd->bits[max_pfn / 64] &= (1ull << (max_pfn % 64)) - 1;
	uint64_t n = 0;
	for (uint64_t b = 0; b < nblocks; b++) {
		dd->rank[b] = n;
		for (unsigned w = 0; w < RANK_WORDS; w++)
			n += (uint64_t)__builtin_popcountll(dd->bits[b * RANK_WORDS + w]);
	}
	dd->rank[nblocks] = n;
	return dd;
}

void pfs_dd_free(struct pfs_dd *dd)
{
	if (!dd)
		return;
	free(dd->bits);
	free(dd->rank);
	free(dd);
}

uint32_t pfs_dd_page_size(const struct pfs_dd *dd) { return dd->page_size; }
uint64_t pfs_dd_max_pfn(const struct pfs_dd *dd) { return dd->max_pfn; }

uint64_t pfs_dd_pages(const struct pfs_dd *dd)
{
	return dd->rank[(dd->nwords + RANK_WORDS - 1) / RANK_WORDS];
}

/* set bits below pfn (pfn < max_pfn) */
static uint64_t dd_rank(const struct pfs_dd *dd, uint64_t pfn)
{
	uint64_t w = pfn / 64, first = w & ~(uint64_t)(RANK_WORDS - 1);
	uint64_t n = dd->rank[w / RANK_WORDS];

	for (uint64_t i = first; i < w; i++)
		n += (uint64_t)__builtin_popcountll(dd->bits[i]);
	if (pfn % 64)
		n += (uint64_t)__builtin_popcountll(dd->bits[w] & ((1ull << (pfn % 64)) - 1));
	return n;
}

uint64_t pfs_dd_nth_pfn(const struct pfs_dd *dd, uint64_t rank)
{
	uint64_t lo = 0, hi = (dd->nwords + RANK_WORDS - 1) / RANK_WORDS;

	/* the last block whose count before it is <= rank */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (dd->rank[mid] <= rank)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t left = rank - dd->rank[lo];
	for (uint64_t w = lo * RANK_WORDS; w < dd->nwords; w++) {
		uint64_t v = dd->bits[w];
		unsigned c = (unsigned)__builtin_popcountll(v);
		if (left >= c) {
			left -= c;
			continue;
		}
		while (left--)
			v &= v - 1;
		return w * 64 + (uint64_t)__builtin_ctzll(v);
	}
	return NO_PFN;
}

struct pfs_dd_cursor *pfs_dd_cursor_new(const struct pfs_dd *dd)
{
	struct pfs_dd_cursor *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->dd = dd;
	c->pages = malloc((size_t)dd->page_size * CACHE_PAGES);
	c->win = malloc(dd->page_size > READ_AHEAD ? dd->page_size : READ_AHEAD);
	c->next_off = UINT64_MAX;
	c->inflate = libdeflate_alloc_decompressor();
	if (!c->pages || !c->win || !c->inflate) {
		pfs_dd_cursor_free(c);
		return NULL;
	}
	for (unsigned i = 0; i < CACHE_PAGES; i++)
		c->pfn[i] = NO_PFN;
	return c;
}

void pfs_dd_cursor_free(struct pfs_dd_cursor *c)
{
	if (!c)
		return;
	if (c->inflate)
		libdeflate_free_decompressor(c->inflate);
	free(c->pages);
	free(c->win);
	free(c);
}

/* descriptor idx (< pfs_dd_pages()), or NULL when it cannot be read */
static const struct page_desc *dd_desc(struct pfs_dd_cursor *c, uint64_t idx)
{
	if (idx - c->desc_first >= c->desc_n) {
		uint64_t first = idx & ~(uint64_t)(DESC_BATCH - 1), all = pfs_dd_pages(c->dd);
		uint64_t n = all - first < DESC_BATCH ? all - first : DESC_BATCH;
		c->desc_n = 0;
		if (pfs_pread_all(c->dd->fd, c->desc, n * sizeof(c->desc[0]),
			      c->dd->desc_off + first * sizeof(c->desc[0])))
			return NULL;
		c->desc_first = first;
		c->desc_n = n;
	}
	return &c->desc[idx - c->desc_first];
}

/* the size (<= page size) bytes of file at off, or NULL when they cannot
 * be read */
static const unsigned char *dd_data(struct pfs_dd_cursor *c, uint64_t off, uint32_t size)
{
	size_t max = c->dd->page_size > READ_AHEAD ? c->dd->page_size : READ_AHEAD;

	if (off >= c->win_off && off - c->win_off <= c->win_len &&
	    size <= c->win_len - (off - c->win_off)) {
		c->next_off = off + size;
		return c->win + (off - c->win_off);
	}
	ssize_t got = pread_some(c->dd->fd, c->win, size, off == c->next_off ? max : size, off);
	c->win_len = 0;
	if (got < 0)
		return NULL;
	c->win_off = off;
	c->win_len = (uint64_t)got;
	c->next_off = off + size;
	return c->win;
}

int pfs_dd_read_page(struct pfs_dd_cursor *c, uint64_t pfn, const unsigned char **page)
{
	const struct pfs_dd *dd = c->dd;
	const size_t ps = dd->page_size;

	if (pfn >= dd->max_pfn || !(dd->bits[pfn / 64] >> (pfn % 64) & 1))
		return PFS_DD_EXCLUDED;
	if (c->pfn[c->last] == pfn) {
		c->used[c->last] = ++c->clock;
		*page = c->pages + c->last * ps;
		return PFS_DD_OK;
	}
	unsigned slot = 0;
	for (unsigned i = 0; i < CACHE_PAGES; i++) {
		if (c->pfn[i] == pfn) {
			c->last = i;
			c->used[i] = ++c->clock;
			*page = c->pages + i * ps;
			return PFS_DD_OK;
		}
		if (c->used[i] < c->used[slot])
			slot = i;
	}

	const struct page_desc *pd = dd_desc(c, dd_rank(dd, pfn));
	if (!pd)
		return PFS_DD_OTHER;
	unsigned char *out = c->pages + slot * ps;
	const unsigned char *data;
	c->pfn[slot] = NO_PFN;
	if (pd->flags == 0 && pd->size == ps) {
		if (!(data = dd_data(c, pd->offset, pd->size)))
			return PFS_DD_OTHER;
		memcpy(out, data, ps);
	} else if (pd->flags == DUMP_DH_COMPRESSED_ZLIB && pd->size && pd->size <= ps) {
		if (!(data = dd_data(c, pd->offset, pd->size)))
			return PFS_DD_OTHER;
		/* no actual_out_nbytes_ret: anything but exactly ps bytes out
		 * is LIBDEFLATE_SHORT_OUTPUT or _INSUFFICIENT_SPACE */
		if (libdeflate_zlib_decompress(c->inflate, data, pd->size, out, ps, NULL) !=
		    LIBDEFLATE_SUCCESS)
			return PFS_DD_CORRUPT;
	} else {
		return PFS_DD_OTHER;
	}
	c->pfn[slot] = pfn;
	c->used[slot] = ++c->clock;
	c->last = slot;
	*page = out;
	return PFS_DD_OK;
}
