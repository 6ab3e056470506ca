/* SPDX-License-Identifier: MIT */
/*
 * The physical-memory reader and its page cache.  Page-table pages are read
 * whole (one read_phys call per 4 KiB table, however many entries are
 * decoded from it); failures are cached too, so an unreadable table costs
 * one failed read, not one per entry.  Runs of struct page go through
 * pfs_read_phys_bulk, uncached: they are read once per walk anyway.
 */
#include <stdlib.h>
#include <string.h>
#include "pfnscope/reader.h"

/* pfns that do not fit a 52-bit physical address can't be asked for */
#define PFS_MAX_PFN ((1ull << (52 - 12)) - 1)

int pfs_reader_init(struct pfs_reader *r, pfs_read_phys_fn fn, void *ctx)
{
	memset(r, 0, sizeof(*r));
	r->read_phys = fn;
	r->ctx = ctx;
	r->cache = malloc(sizeof(*r->cache) * PFS_READER_CACHE_BLOCKS);
	if (!r->cache)
		return -PFS_ENOMEM;
	pfs_reader_flush(r);
	return 0;
}

void pfs_reader_fini(struct pfs_reader *r)
{
	free(r->cache);
	r->cache = NULL;
}

void pfs_reader_flush(struct pfs_reader *r)
{
	if (!r->cache)
		return;
	for (unsigned i = 0; i < PFS_READER_CACHE_BLOCKS; i++) {
		r->cache[i].pfn = UINT64_MAX;
		r->cache[i].used = 0;
		r->cache[i].valid = 0;
	}
}

const unsigned char *pfs_read_phys_page(struct pfs_reader *r, uint64_t pfn)
{
	if (pfn > PFS_MAX_PFN)
		return NULL;
	/* consecutive pfns land in consecutive sets */
	unsigned sets = PFS_READER_CACHE_BLOCKS / PFS_READER_WAYS;
	struct pfs_reader_block *set = &r->cache[(pfn % sets) * PFS_READER_WAYS];
	struct pfs_reader_block *b = NULL, *victim = &set[0];
	for (unsigned i = 0; i < PFS_READER_WAYS; i++) {
		if (set[i].pfn == pfn) {
			b = &set[i];
			break;
		}
		if (set[i].used < victim->used)
			victim = &set[i];
	}
	if (!b || r->nocache) {
		if (!b)
			b = victim;
		r->stats_reads++;
		r->stats_bytes += PFS_PAGE_SIZE;
		b->pfn = pfn;
		b->valid = r->read_phys(r->ctx, pfn << 12, b->data, PFS_PAGE_SIZE) == 0;
	}
	b->used = ++r->clock;
	return b->valid ? b->data : NULL;
}

int pfs_read_phys(struct pfs_reader *r, uint64_t paddr, void *buf, size_t len)
{
	unsigned char *out = buf;

	while (len) {
		size_t off = paddr & (PFS_PAGE_SIZE - 1);
		size_t n = PFS_PAGE_SIZE - off < len ? PFS_PAGE_SIZE - off : len;
		const unsigned char *p = pfs_read_phys_page(r, paddr >> 12);
		if (!p)
			return -PFS_EREAD;
		memcpy(out, p + off, n);
		out += n;
		paddr += n;
		len -= n;
	}
	return 0;
}

/* paddr + len - 1 a physical address (len > 0) */
static int range_ok(uint64_t paddr, size_t len)
{
	return (paddr >> 12) <= PFS_MAX_PFN && ((paddr + len - 1) >> 12) <= PFS_MAX_PFN &&
	       paddr + len >= paddr;
}

int pfs_read_phys_bulk(struct pfs_reader *r, uint64_t paddr, void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (!range_ok(paddr, len))
		return -PFS_EREAD;
	r->stats_reads++;
	r->stats_bytes += len;
	return r->read_phys(r->ctx, paddr, buf, len) == 0 ? 0 : -PFS_EREAD;
}

void pfs_reader_set_map(struct pfs_reader *r, pfs_map_phys_fn fn)
{
	r->map_phys = fn;
}

const unsigned char *pfs_map_phys_bulk(struct pfs_reader *r, uint64_t paddr, size_t len)
{
	const unsigned char *p;

	if (!r->map_phys || len == 0 || !range_ok(paddr, len))
		return NULL;
	p = r->map_phys(r->ctx, paddr, len);
	if (p) {
		r->stats_reads++;
		r->stats_bytes += len;
	}
	return p;
}
