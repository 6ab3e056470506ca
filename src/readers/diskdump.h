/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_READERS_DISKDUMP_H
#define PFNSCOPE_READERS_DISKDUMP_H
/*
 * Page reads of a whole kdump-compressed (makedumpfile "KDUMP   ") file
 * without libkdumpfile: private to src/readers (kdumpfile.c decides when
 * a file may be read this way and checks it against libkdumpfile first).
 *
 * The index (struct pfs_dd) is built once at open and only read after
 * that: any number of threads share it and its mapping of the file
 * (fmap.h).  Each reading thread has a cursor of its own: the last decoded
 * pages and an inflate state.
 */
#include <stddef.h>
#include <stdint.h>

/* makedumpfile diskdump_mod.h: page_desc.flags */
#define DUMP_DH_COMPRESSED_ZLIB    0x1
#define DUMP_DH_COMPRESSED_LZO     0x2
#define DUMP_DH_COMPRESSED_SNAPPY  0x4
#define DUMP_DH_COMPRESSED_ZSTD    0x20

/* makedumpfile diskdump_mod.h: one per dumpable page, in pfn order, right
 * after the bitmaps (64-bit layout: off_t offset) */
struct page_desc {
	uint64_t offset;        /* of the page data in the file */
	uint32_t size;          /* bytes of data there */
	uint32_t flags;         /* DUMP_DH_COMPRESSED_* */
	uint64_t page_flags;    /* unused by readers */
};

struct pfs_dd;
struct pfs_dd_cursor;

/* len bytes of fd at off (pread(2) until done): 0, or -1 at an error or
 * the end of the file.  The readers' one positioned read. */
int pfs_pread_all(int fd, void *buf, size_t len, uint64_t off);

/* What a page read gives. */
enum {
	PFS_DD_OK = 0,
	PFS_DD_EXCLUDED = 1,    /* not in the dump: pfn past max_pfn or its bit clear */
	PFS_DD_CORRUPT = 2,     /* its data does not decode to one page */
	PFS_DD_OTHER = 3,       /* not read here (another compression, an odd
				   descriptor, data past the end): ask libkdumpfile */
};

/* The index of the file_size-byte file fd whose dumpable bitmap (the second
 * bitmap) is the bm_len bytes at `bitmap` (copied): pfns below max_pfn (at
 * most bm_len * 8) are in the dump when their bit is set, their descriptor
 * the rank of that bit among the set ones, at desc_off + rank * 24.  The
 * file is mapped (fd may be closed after).  NULL when out of memory, when
 * the descriptors do not all lie in the file, or when it cannot be mapped. */
struct pfs_dd *pfs_dd_new(int fd, uint64_t file_size, const unsigned char *bitmap,
			  uint64_t bm_len, uint64_t max_pfn, uint64_t desc_off,
			  uint32_t page_size);
void pfs_dd_free(struct pfs_dd *dd);
uint32_t pfs_dd_page_size(const struct pfs_dd *dd);
uint64_t pfs_dd_max_pfn(const struct pfs_dd *dd);
/* dumpable pfns below max_pfn */
uint64_t pfs_dd_pages(const struct pfs_dd *dd);
/* the pfn of the rank-th dumpable page (rank < pfs_dd_pages()) */
uint64_t pfs_dd_nth_pfn(const struct pfs_dd *dd, uint64_t rank);

/* A reader's state over a shared index; NULL when out of memory. */
struct pfs_dd_cursor *pfs_dd_cursor_new(struct pfs_dd *dd);
void pfs_dd_cursor_free(struct pfs_dd_cursor *c);
/* The page pfn: PFS_DD_OK with *page pointing at its page_size bytes
 * (valid until the cursor's next read), or why not. */
int pfs_dd_read_page(struct pfs_dd_cursor *c, uint64_t pfn, const unsigned char **page);

#endif
