/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_SUMMARY_H
#define PFNSCOPE_SUMMARY_H
/*
 * Run-length summaries: consecutive entries with equal level, kind, special,
 * devmap, writable, uffd_wp, cont, normal_page, vnp_reason, consumers and diagnoses, whose
 * addresses advance by the entry size and whose pfns advance by the entry
 * size in pages (or which both have no pfn), merge into one run.
 */
#include <stdint.h>
#include "pfnscope/entry.h"

struct pfs_run {
	struct pfs_entry first;  /* the first entry of the run, as walked */
	uint64_t count;          /* entries merged */
	uint64_t end;            /* exclusive end address */
	uint64_t next_pfn;       /* expected pfn of the next entry (internal) */
};

/* Called once per completed run; non-zero stops (returned by add/flush). */
typedef int (*pfs_run_cb)(const struct pfs_run *r, void *arg);

struct pfs_summary {
	struct pfs_run cur;
	int active;
	pfs_run_cb cb;
	void *arg;
	uint64_t runs;           /* runs emitted */
};

void pfs_summary_init(struct pfs_summary *s, pfs_run_cb cb, void *arg);
/* 1 if b may extend the run r (same class and contiguous). */
int pfs_run_extends(const struct pfs_run *r, const struct pfs_entry *e);
/* Add an entry; emits the previous run when e does not extend it. */
int pfs_summary_add(struct pfs_summary *s, const struct pfs_entry *e);
/* Add the count entries after e, the entry last added (pfs_repeat_cb). */
int pfs_summary_add_repeats(struct pfs_summary *s, const struct pfs_entry *e, uint64_t count,
			    const uint64_t *raw);
/* Emit the pending run, if any. */
int pfs_summary_flush(struct pfs_summary *s);

#endif
