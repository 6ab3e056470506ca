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
 * bitmap, descriptors and page data are read in place from the file mapped
 * whole (fmap.h: no system call per page, the resident set trimmed), the
 * last CACHE_PAGES pages decoded are kept, and a page is inflated by
 * libdeflate into its slot in one call.
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
#include "fmap.h"

_Static_assert(sizeof(struct page_desc) == 24, "makedumpfile's 64-bit page_desc");

/* Set bits are counted before every RANK_BITS pfns (crash's diskdump.c
 * keeps the same counts, valid_pages[], per BITMAP_SECT_LEN pfns): a rank
 * is one count plus at most RANK_WORDS - 1 word popcounts and one part. */
#define RANK_WORDS 8u
#define RANK_BITS (RANK_WORDS * 64u)
/* The pages decoded last: CACHE_SETS sets of CACHE_WAYS, a pfn's set
 * chosen by a hash of it, the least recently used way of the set replaced.
 * A whole-system check of an 8 GiB guest (2,000 processes of small VMAs)
 * reads 54,900 distinct pages 213,000 times: the least recently used of 32
 * pages decoded 84,900, of 128 57,100; 64 sets of 4 (1 MiB) decode 54,800,
 * for four comparisons a lookup. */
#define CACHE_WAYS 4u
#define CACHE_SET_BITS 6u
#define CACHE_SETS (1u << CACHE_SET_BITS)
#define CACHE_PAGES (CACHE_WAYS * CACHE_SETS)
#define NO_PFN UINT64_MAX

struct pfs_dd {
	struct pfs_fmap file;   /* the whole file */
	uint32_t page_size;
	uint64_t max_pfn;       /* pfns at or past it are not in the dump */
	uint64_t *bits;         /* the dumpable bitmap up to max_pfn, rest clear */
	uint64_t nwords;
	uint64_t *rank;         /* set bits before word i * RANK_WORDS; [nblocks] = all */
	uint64_t desc_off;
};

struct pfs_dd_cursor {
	struct pfs_dd *dd;
	/* the last pages decoded: slot i holds pfn[i] (NO_PFN: empty), used
	 * at clock tick used[i]; set s is slots [s * CACHE_WAYS, + CACHE_WAYS) */
	uint64_t pfn[CACHE_PAGES];
	uint64_t used[CACHE_PAGES];
	uint64_t clock;
	unsigned last;          /* the slot of the last hit */
	unsigned char *pages;   /* CACHE_PAGES * page_size */
	struct libdeflate_decompressor *inflate;
};

int pfs_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

struct pfs_dd *pfs_dd_new(int fd, uint64_t file_size, const unsigned char *bitmap,
			  uint64_t bm_len, uint64_t max_pfn, uint64_t desc_off,
			  uint32_t page_size)
{
	struct pfs_dd *dd;

	if (!page_size || bm_len > (UINT64_MAX >> 4))
		return NULL;
	if (max_pfn > bm_len * 8)
		max_pfn = bm_len * 8;
	dd = calloc(1, sizeof(*dd));
	if (!dd)
		return NULL;
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
	/* every descriptor in the file: dd_desc() reads them in place */
	if (desc_off > file_size || n > (file_size - desc_off) / sizeof(struct page_desc) ||
	    pfs_fmap_init(&dd->file, fd, file_size)) {
		pfs_dd_free(dd);
		return NULL;
	}
	return dd;
}

void pfs_dd_free(struct pfs_dd *dd)
{
	if (!dd)
		return;
	pfs_fmap_fini(&dd->file);
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

struct pfs_dd_cursor *pfs_dd_cursor_new(struct pfs_dd *dd)
{
	struct pfs_dd_cursor *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->dd = dd;
	c->pages = malloc((size_t)dd->page_size * CACHE_PAGES);
	c->inflate = libdeflate_alloc_decompressor();
	if (!c->pages || !c->inflate) {
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
	free(c);
}

/* descriptor idx (< pfs_dd_pages(), all in the file: pfs_dd_new) */
static const struct page_desc *dd_desc(struct pfs_dd_cursor *c, uint64_t idx)
{
	uint64_t off = c->dd->desc_off + idx * sizeof(struct page_desc);

	pfs_fmap_touched(&c->dd->file, off, sizeof(struct page_desc));
	return (const struct page_desc *)(c->dd->file.base + off);
}

/* the size (<= page size) bytes of file at off, or NULL when the file
 * does not hold them */
static const unsigned char *dd_data(struct pfs_dd_cursor *c, uint64_t off, uint32_t size)
{
	const struct pfs_fmap *f = &c->dd->file;

	if (off > f->len || size > f->len - off)
		return NULL;
	pfs_fmap_touched(&c->dd->file, off, size);
	return f->base + off;
}

/* the set of pfn's slots: a multiplicative hash (page tables and runs of
 * struct pages are near each other in pfn order, and spread over sets) */
static unsigned dd_set(uint64_t pfn)
{
	return (unsigned)((pfn * 0x9e3779b97f4a7c15ull) >> (64 - CACHE_SET_BITS)) * CACHE_WAYS;
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
	unsigned set = dd_set(pfn), slot = set;
	for (unsigned i = set; i < set + CACHE_WAYS; i++) {
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
