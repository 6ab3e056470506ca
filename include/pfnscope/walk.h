/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_WALK_H
#define PFNSCOPE_WALK_H
/*
 * The page-table walker: pgd -> p4d -> pud -> pmd -> pte over a VA range of
 * one VMA, one 4 KiB read per table page and one memmap read per run of
 * struct pages, then per entry: decode, vm_normal_page verdict, struct page,
 * consumer verdicts and diagnoses.  Unreadable tables yield records of kind
 * PFS_KIND_UNREADABLE (one per unreadable table, at its level), never abort.
 */
#include <stdint.h>
#include "pfnscope/entry.h"
#include "pfnscope/vma.h"

#define PFS_WALK_NONE     (1u << 0)  /* also emit none entries (else skipped) */
#define PFS_WALK_NO_PAGE  (1u << 1)  /* skip struct page decode (and page-based diagnoses) */
/* Live targets (the memory keeps changing under the walk): an entry with a
 * diagnosis at medium or above is read again before it is passed on -- the
 * entry, every upper-level entry on its path, its struct page(s) and its
 * vm_area_struct, all bypassing the reader's cache.  A page-table page
 * freed and reused meanwhile shows as a changed parent entry.  When
 * anything differs, the diagnoses are withdrawn and pfs_entry.changed says
 * what differed. */
#define PFS_WALK_CONFIRM  (1u << 2)

/* Called once per entry in address order; non-zero return stops the walk
 * and is returned by pfs_walk_vma. */
typedef int (*pfs_entry_cb)(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg);

/* Called for the count ptes after e (the entry last passed to either
 * callback), each e one page on (pfs_entry_step) with the value raw[k]:
 * the pte that maps the next pfn over a struct page in the same state, so
 * with e's verdicts.  Non-zero return stops the walk. */
typedef int (*pfs_repeat_cb)(const struct pfs_entry *e, uint64_t count, const uint64_t *raw,
			     const struct pfs_vma *vma, void *arg);

/* Walk [start, end) (clamped to the VMA) of the page tables rooted at the
 * physical address pgd_pa. */
int pfs_walk_vma(struct pfs_target *t, uint64_t pgd_pa, const struct pfs_vma *vma,
		 uint64_t start, uint64_t end, unsigned flags, pfs_entry_cb cb, void *arg);
/* The same, runs of ptes that repeat the one before them (the pfn one up,
 * the struct page in the same state: decided once) passed to rcb at once
 * when rcb is not NULL.  An entry whose diagnoses PFS_WALK_CONFIRM reads
 * again is never repeated through rcb. */
int pfs_walk_vma_repeats(struct pfs_target *t, uint64_t pgd_pa, const struct pfs_vma *vma,
			 uint64_t start, uint64_t end, unsigned flags, pfs_entry_cb cb,
			 pfs_repeat_cb rcb, void *arg);

#endif
