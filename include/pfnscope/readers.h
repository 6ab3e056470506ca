/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_READERS_H
#define PFNSCOPE_READERS_H
/*
 * Physical-memory readers over files (pfs_read_phys_fn implementations):
 * libkdumpfile (kdump-compressed, ELF vmcores, QEMU dumps) and a raw
 * guest-RAM file (QEMU memory-backend-file).  The openers return 0 or
 * -PFS_EDUMP with err naming the file and the problem.
 */
#include <stddef.h>
#include <stdint.h>
#include "pfnscope/error.h"

/* ---- libkdumpfile ---- */
struct pfs_kdump;

/* pfs_kdump_open() flags */
/* rebuild a makedumpfile *flattened* file (QEMU dump-guest-memory -z) into
 * $TMPDIR first, as `makedumpfile -R` does (a note goes to stderr); without
 * it such a file is refused with an error saying so */
#define PFS_KDUMP_CONVERT_FLAT       0x1u
/* every page through libkdumpfile: no pages read by pfnscope itself (a
 * whole ELF file from its mapping, a whole kdump-compressed file by its
 * own diskdump reader), and every file opened by libkdumpfile; see
 * pfs_kdump_pages_reader(), pfs_kdump_has_context() */
#define PFS_KDUMP_LIBKDUMPFILE_PAGES 0x2u

/* Open a dump with flags PFS_KDUMP_*.  A damaged dump opens with
 * pfs_kdump_damage() set.
 * 0 with *out set, or -PFS_EDUMP with err filled (err may be NULL). */
int pfs_kdump_open(const char *path, unsigned flags, struct pfs_kdump **out,
		   struct pfs_error *err);
void pfs_kdump_close(struct pfs_kdump *k);
/* pfs_read_phys_fn over KDUMP_MACHPHYSADDR (thread-safe: one lock). */
int pfs_kdump_read_phys(void *ctx, uint64_t paddr, void *buf, size_t len);
/* pfs_map_phys_fn: a whole ELF dump's bytes where the file is mapped (the
 * range within one segment's file bytes), NULL for any other dump. */
const void *pfs_kdump_map_phys(void *ctx, uint64_t paddr, size_t len);
/* Another context on the same dump, for one other thread (a libkdumpfile
 * context of its own on the same descriptor, its own page cache; with
 * pfnscope's own page reads, their state of its own and a libkdumpfile
 * context only if a page needs one); its reads take no lock.  The view
 * must be closed before the dump.  0, or -PFS_ENOMEM. */
struct pfs_kdump_view;
int pfs_kdump_clone(struct pfs_kdump *k, struct pfs_kdump_view **out);
void pfs_kdump_view_close(struct pfs_kdump_view *v);
int pfs_kdump_view_read_phys(void *ctx, uint64_t paddr, void *buf, size_t len);
const void *pfs_kdump_view_map_phys(void *ctx, uint64_t paddr, size_t len);
/* VMCOREINFO raw text or NULL; libkdumpfile's file.format ("elf",
 * "diskdump", ...); arch.name; 1 if rebuilt from the flattened form. */
const char *pfs_kdump_vmcoreinfo(const struct pfs_kdump *k);
const char *pfs_kdump_format(const struct pfs_kdump *k);
const char *pfs_kdump_arch(const struct pfs_kdump *k);
int pfs_kdump_rebuilt(const struct pfs_kdump *k);
/* Who reads the pages: "elf" (a whole ELF file, copied out of its
 * mapping), "diskdump" (a whole kdump-compressed file of raw and zlib
 * pages, pfnscope's own reader) or "libkdumpfile" (every other file, a
 * damaged one, or PFS_KDUMP_LIBKDUMPFILE_PAGES). */
const char *pfs_kdump_pages_reader(const struct pfs_kdump *k);
/* 1 if a libkdumpfile context is open on the file; 0 for a whole ELF
 * file of a machine pfnscope knows, whose format, arch and VMCOREINFO
 * are read from the file as libkdumpfile gives them (not with
 * PFS_KDUMP_LIBKDUMPFILE_PAGES). */
int pfs_kdump_has_context(const struct pfs_kdump *k);
/* What a damaged dump lacks, found at open.  A file cut short
 * (truncated: missing_bytes past its end, missing_pages dumped pages whose
 * data or descriptor is gone), corrupt page descriptors, bitmap blocks
 * that contradict each other (a dumpable page not present) or a bitmap that
 * disagrees with the descriptor table (pages from lost_from_pfn on cannot
 * be located).  The pages concerned fail to read, like filtered pages. */
struct pfs_kdump_damage {
	int truncated;
	int incomplete;             /* makedumpfile's DUMP_DH_COMPRESSED_INCOMPLETE */
	uint64_t missing_bytes;
	uint64_t missing_pages;
	uint64_t bad_descriptors;
	uint64_t bad_bitmap_blocks;
	int bitmap_mismatch;
	uint64_t dumpable, descriptors; /* bits set vs descriptors, on a mismatch */
	uint64_t lost_from_pfn;
	uint64_t lost_pages;        /* dumped pages in corrupt bitmap blocks or after */
};
const struct pfs_kdump_damage *pfs_kdump_damage(const struct pfs_kdump *k);
/* One line describing the damage, NULL when the dump is whole. */
const char *pfs_kdump_warning(const struct pfs_kdump *k);
/* 1 if the first bytes of the file are makedumpfile's flattened header. */
int pfs_is_flattened(const char *path);

/* ---- raw guest RAM file ---- */
struct pfs_rawfile;

/* guest physical [0, low_size) = file [0, low_size);
 * guest physical [high_start, ...) = file [low_size, ...). */
int pfs_rawfile_open(const char *path, uint64_t low_size, uint64_t high_start,
		     struct pfs_rawfile **out, struct pfs_error *err);
void pfs_rawfile_close(struct pfs_rawfile *r);
int pfs_rawfile_read_phys(void *ctx, uint64_t paddr, void *buf, size_t len);
uint64_t pfs_rawfile_size(const struct pfs_rawfile *r);

#endif
