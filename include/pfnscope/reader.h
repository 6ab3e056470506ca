/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_READER_H
#define PFNSCOPE_READER_H
/*
 * Physical-memory reader: the only way the core touches target memory.
 * Modelled on libkdumpfile's addrxlat "read a physical range" callback.
 * Front ends (drgn, libkdumpfile, raw RAM file, gdb) provide read_phys; the
 * core adds a small cache of page-sized blocks in front of it, so a
 * page-table page costs one read however many entries are decoded from it.
 */
#include <stddef.h>
#include <stdint.h>
#include "pfnscope/error.h"

#define PFS_PAGE_SIZE 4096u

/* Return 0 when all len bytes were read, -PFS_EREAD when any byte is
 * unavailable (filtered out of a dump, beyond the end of a file, not RAM). */
typedef int (*pfs_read_phys_fn)(void *ctx, uint64_t paddr, void *buf, size_t len);
/* Optional: the len bytes at paddr where they already lie in this process
 * (a dump file mapped whole), valid for as long as ctx is open, or NULL:
 * the caller reads them with read_phys.  Nothing is copied: a run of
 * struct pages is decoded where it lies (a fresh mapping of a page cache
 * that holds the file in large folios faults in 2 MiB at a time, where
 * pread(2) copies every byte). */
typedef const void *(*pfs_map_phys_fn)(void *ctx, uint64_t paddr, size_t len);

#define PFS_READER_CACHE_BLOCKS 64
#define PFS_READER_WAYS 4

struct pfs_reader {
	pfs_read_phys_fn read_phys;
	pfs_map_phys_fn map_phys;   /* NULL: every read copies */
	void *ctx;
	/* cache of whole 4 KiB physical blocks, by pfn: PFS_READER_WAYS-way
	 * set associative, least recently used replaced (a direct-mapped
	 * cache thrashed on aligned kernel tables vs. vmemmap blocks) */
	struct pfs_reader_block {
		uint64_t pfn;       /* UINT64_MAX: empty */
		uint64_t used;      /* LRU stamp */
		int valid;          /* 1 data ok, 0 read failed (negative cache) */
		unsigned char data[PFS_PAGE_SIZE];
	} *cache;
	uint64_t clock;             /* LRU stamps */
	int nocache;                /* every lookup reads again (a cache hit is refreshed) */
	uint64_t stats_reads;       /* calls into read_phys */
	uint64_t stats_bytes;
};

/* 0 or -PFS_ENOMEM. */
int pfs_reader_init(struct pfs_reader *r, pfs_read_phys_fn fn, void *ctx);
void pfs_reader_fini(struct pfs_reader *r);
void pfs_reader_flush(struct pfs_reader *r);
/* Read through the page cache (for page-table pages and small objects):
 * 0 or -PFS_EREAD. */
int pfs_read_phys(struct pfs_reader *r, uint64_t paddr, void *buf, size_t len);
/* Pointer to the cached 4 KiB block holding pfn, or NULL if unreadable. */
const unsigned char *pfs_read_phys_page(struct pfs_reader *r, uint64_t pfn);
/* Uncached bulk read (runs of struct page): one read_phys call; 0 or the
 * reader's negative code. */
int pfs_read_phys_bulk(struct pfs_reader *r, uint64_t paddr, void *buf, size_t len);
/* The reader's map_phys (pfs_reader_init leaves it NULL). */
void pfs_reader_set_map(struct pfs_reader *r, pfs_map_phys_fn fn);
/* A bulk read without the copy: the len bytes at paddr where they lie
 * (map_phys), or NULL when the reader has no such view of them (read them
 * with pfs_read_phys_bulk). */
const unsigned char *pfs_map_phys_bulk(struct pfs_reader *r, uint64_t paddr, size_t len);

#endif
