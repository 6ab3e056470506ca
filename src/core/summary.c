// SPDX-License-Identifier: MIT
/*
 * Run-length summaries of walked entries (see summary.h for the rule).
 */
#include <string.h>

#include "pfnscope/json.h"
#include "pfnscope/summary.h"

void pfs_summary_init(struct pfs_summary *s, pfs_run_cb cb, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->cb = cb;
	s->arg = arg;
}

int pfs_run_extends(const struct pfs_run *r, const struct pfs_entry *e)
{
	const struct pfs_entry *f = &r->first;
	const uint32_t cls = PFS_E_SPECIAL | PFS_E_DEVMAP | PFS_E_WRITE | PFS_E_UFFD_WP | PFS_E_CONT;

	if (e->addr != r->end || e->level != f->level || e->kind != f->kind ||
	    (e->bits & cls) != (f->bits & cls) || e->normal_page != f->normal_page ||
	    e->vnp_reason != f->vnp_reason || e->diag != f->diag ||
	    memcmp(e->consumers, f->consumers, sizeof(e->consumers)) != 0)
		return 0;
	if (f->pfn == PFS_NO_PFN || e->pfn == PFS_NO_PFN)
		return f->pfn == e->pfn;
	return e->pfn == r->next_pfn;
}

static void run_start(struct pfs_run *r, const struct pfs_entry *e)
{
	uint64_t size = pfs_level_size(e->level);

	r->first = *e;
	r->count = 1;
	r->end = e->addr + size;
	r->next_pfn = e->pfn == PFS_NO_PFN ? PFS_NO_PFN : e->pfn + (size >> 12);
}

int pfs_summary_add(struct pfs_summary *s, const struct pfs_entry *e)
{
	if (s->active && pfs_run_extends(&s->cur, e)) {
		uint64_t size = pfs_level_size(e->level);
		s->cur.count++;
		s->cur.end += size;
		if (s->cur.next_pfn != PFS_NO_PFN)
			s->cur.next_pfn += size >> 12;
		return 0;
	}
	int ret = pfs_summary_flush(s);
	run_start(&s->cur, e);
	s->active = 1;
	return ret;
}

int pfs_summary_add_repeats(struct pfs_summary *s, const struct pfs_entry *e, uint64_t count,
			    const uint64_t *raw)
{
	/* e ends the run: each repeat extends it (same class, the address and
	 * the pfn one page on) */
	const uint64_t size = 1ull << 12;

	if (s->active && e->level == PFS_LEVEL_PTE && e->pfn != PFS_NO_PFN &&
	    s->cur.end == e->addr + size && s->cur.next_pfn == e->pfn + 1) {
		s->cur.count += count;
		s->cur.end += count * size;
		s->cur.next_pfn += count;
		return 0;
	}
	struct pfs_entry x = *e;
	for (uint64_t k = 0; k < count; k++) {
		pfs_entry_step(&x, 1, raw[k]);
		int r = pfs_summary_add(s, &x);
		if (r)
			return r;
	}
	return 0;
}

int pfs_summary_flush(struct pfs_summary *s)
{
	if (!s->active)
		return 0;
	s->active = 0;
	s->runs++;
	return s->cb ? s->cb(&s->cur, s->arg) : 0;
}
