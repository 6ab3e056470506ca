/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_READERS_FMAP_H
#define PFNSCOPE_READERS_FMAP_H
/*
 * A dump file mapped whole and read-only, for the readers that take their
 * bytes straight from it (a whole ELF dump: kdumpfile.c elf_direct_read;
 * a whole kdump-compressed one: diskdump.c), private to src/readers.
 *
 * The pages of a file mapping count in the process's resident set, and a
 * walk of a large dump touches most of the file.  libkdumpfile's own
 * mapping keeps every chunk it mapped (343 MiB after a check of an 8 GiB
 * guest's ELF dump); reading through read(2) instead costs ~1.9x the CPU
 * on an ELF dump, and on a compressed one a pread(2) per page's data and
 * per batch of descriptors (108,648 for that guest's kdump).  Here the
 * mapping is dropped from the page tables (MADV_DONTNEED: the page cache
 * keeps the data, a later read faults it back) once PFS_FMAP_TRIM_BYTES
 * of it have been touched since the last time, counted in the blocks of
 * the kernel's fault-around (mm/memory.c do_fault_around():
 * fault_around_bytes, 64 KiB, mapped per fault), each once: a bitmap
 * holds the blocks touched (a compressed dump's pages are read in no
 * order, and one counted at each read would trim a 59 MB kdump 214 times
 * in one check).
 *
 * pfs_fmap_read() decides how each copy is served: a large one, or one of
 * a block read only once or twice so far, with pread(2); others out of the
 * mapping.  pfs_fmap_view() copies nothing: a walk's runs of struct pages
 * (32 KiB a pte table, read once each) are decoded where they are mapped.
 * A fault maps a large folio of the page cache as far as the fault-around
 * block, or a 2 MiB one with one pmd where the mapping is aligned to it,
 * while pread(2) copies every byte: the 4,616 table and memmap pages of a
 * 1 GiB VMA took 2.0 ms by pread(2), 0.4-0.9 ms mapped afresh and read in
 * place (ext4 on 6.18, its page cache in large folios).
 *
 * Any number of threads read through one map: the counts are atomic, and
 * a trim only drops page-table entries, so a pointer into the mapping
 * stays valid through it.  The file must hold every byte read: the
 * callers check their ranges against the size at open (a file truncated
 * while mapped raises SIGBUS, as any mapping of it would).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PFS_FMAP_TRIM_BYTES (32ull << 20)
#define PFS_FMAP_FAULT_AROUND (64u << 10)
/* A copy of this much or more (a run of struct pages that could not be
 * given in place: across two segments) is a pread(2): it copies as fast,
 * and maps nothing (pfs_fmap_read). */
#define PFS_FMAP_PREAD_MIN (16u << 10)
/* A block not mapped yet is read with pread(2) this many times before a
 * read maps it: a fault costs ~5 us where page tables are shadowed (a
 * paravirtualized guest), a 4 KiB pread(2) ~0.5 us, so the blocks read
 * once or twice (a walk's page tables, scattered) are not mapped, and those
 * read often (slab pages of tasks, mms and maple nodes) are. */
#define PFS_FMAP_PREADS_BEFORE_MAP 2

struct pfs_fmap {
	const unsigned char *base;  /* the whole file, PROT_READ; NULL: not mapped */
	size_t len;
	atomic_ullong touched;      /* fault-around blocks touched since the last trim */
	atomic_ullong *seen;        /* which: a bit per block */
	size_t nseen;               /* words of seen */
	atomic_uchar *preads;       /* pread(2)s of each block since the last trim */
	int fd;
};

/* Map the len bytes of fd: 0, or -1 (errno set) with m->base NULL. */
int pfs_fmap_init(struct pfs_fmap *m, int fd, uint64_t len);
void pfs_fmap_fini(struct pfs_fmap *m);
/* Count the bytes [off, off + n) (n > 0) of the file as read, trimming
 * the mapping when PFS_FMAP_TRIM_BYTES of blocks have been touched. */
void pfs_fmap_touched(struct pfs_fmap *m, uint64_t off, size_t n);
/* Drop every page of the mapping from the page tables now. */
void pfs_fmap_trim(struct pfs_fmap *m);
/* The bytes [off, off + n) (n > 0, within the file's length) where they
 * are mapped, counted as read (pfs_fmap_touched). */
const void *pfs_fmap_view(struct pfs_fmap *m, uint64_t off, size_t n);
/* Copy the bytes [off, off + n) of the file (within its length) to buf:
 * out of the mapping, or with pread(2) (PFS_FMAP_PREAD_MIN,
 * PFS_FMAP_PREADS_BEFORE_MAP).  0, or -1 when pread(2) failed. */
int pfs_fmap_read(struct pfs_fmap *m, void *buf, uint64_t off, size_t n);

#endif
