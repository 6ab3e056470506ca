/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_TARGET_H
#define PFNSCOPE_TARGET_H
/*
 * A target = one kernel image to inspect: its layout plus a reader.  Holds
 * the translation caches that make kernel-virtual reads cheap (vmemmap and
 * slab objects are read through the kernel's own page tables, like drgn's
 * arch_x86_64.c page-table iterator with its whole-table cache).
 */
#include <stdint.h>
#include <stddef.h>
#include "pfnscope/error.h"
#include "pfnscope/layout.h"
#include "pfnscope/reader.h"

/* The last mem_section that pfn_valid() read (sparsemem.c), and its
 * subsection_map word */
struct pfs_section_cache {
	uint64_t nr;            /* UINT64_MAX: nothing cached */
	int state;              /* < 0 error, 0 no memmap, 1 has memmap */
	uint64_t smm;           /* section_mem_map */
	uint64_t usage;         /* mem_section_usage * */
	uint64_t word_idx;      /* cached subsection_map word */
	uint64_t word;
	int word_state;         /* 0 none, 1 ok, < 0 error */
};

struct pfs_target {
	const struct pfs_layout *lo;
	struct pfs_reader *rd;
	/* last kernel-virtual translation (vmemmap/direct map runs); setting
	 * kv_cache_len to 0 (or pfs_target_flush) drops all of them */
	uint64_t kv_cache_va, kv_cache_pa, kv_cache_len;
	/* older translations: page decode alternates between the direct map
	 * (mem_section) and the vmemmap */
	struct { uint64_t va, pa, len; } kv_more[3];
	/* the page decodes' pfn_valid(): consecutive runs of struct pages
	 * (a walk's pte tables) mostly lie in one section */
	struct pfs_section_cache sc;
	/* the last error: what was being read where */
	struct pfs_error error;
};

void pfs_target_init(struct pfs_target *t, const struct pfs_layout *lo, struct pfs_reader *rd);
/* Drop the translation caches and the reader's page cache (after the
 * target's memory changed, e.g. a live kernel between two walks). */
void pfs_target_flush(struct pfs_target *t);
/* Record an error (code, what was being read at addr) in t->error and
 * return -err. */
int pfs_target_fail(struct pfs_target *t, int err, const char *what, uint64_t addr);

/* Kernel virtual -> physical through init_top_pgt (any level, leaves of any
 * size).  *run (optional) receives the bytes left in the same leaf mapping. */
int pfs_kvirt_to_phys(struct pfs_target *t, uint64_t va, uint64_t *pa, uint64_t *run);
/* Read kernel-virtual memory (crossing pages as needed). */
int pfs_read_kvirt(struct pfs_target *t, uint64_t va, void *buf, size_t len);
int pfs_read_kvirt_u64(struct pfs_target *t, uint64_t va, uint64_t *val);

#endif
