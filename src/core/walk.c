/* SPDX-License-Identifier: MIT */
/*
 * The page-table walker (cf. mm/pagewalk.c walk_pgd_range ... walk_pte_range).
 * Each table page is fetched once through the reader's page cache and its
 * entries are visited by index inside the requested range, so a garbage
 * table cannot make the walk loop; a table that points back to itself or
 * an ancestor is skipped, and a walk visits at most PFS_WALK_MAX_TABLES
 * tables.  For a pte table every entry is decoded first, then the pfns are
 * grouped into runs of consecutive pfns at consecutive entries and each run
 * costs one pfs_page_decode_run() (one memmap read); then the
 * vm_normal_page verdict, consumers and diagnoses are computed from the
 * record alone, once per run of entries in the same state.  A pte that
 * repeats the one before it (the pfn one up, the struct page alike) is not
 * decoded at all.  Scratch space is allocated once per walk.
 */
#include <stdlib.h>
#include <string.h>
#include "pfnscope/arch.h"
#include "pfnscope/consumer.h"
#include "pfnscope/diagnose.h"
#include "pfnscope/page.h"
#include "pfnscope/vnp.h"
#include "pfnscope/walk.h"
#include "internal.h"

#define PFS_WALK_MAX_TABLES (1u << 20)

struct walk {
	struct pfs_target *t;
	const struct pfs_layout *lo;
	const struct pfs_arch_ops *ops;
	const struct pfs_vma *vma;
	uint64_t start, end;          /* page aligned, inside the VMA */
	unsigned flags;
	pfs_entry_cb cb;
	void *arg;
	unsigned tables;
	uint64_t path[6];             /* table PAs from the top, by level */
	uint64_t pte_table;           /* PA of the pte table being walked */
	pfs_repeat_cb rcb;
	struct pfs_buddy_memo memo;   /* the candidate buddy heads of the walk's pages */
	uint64_t pte_pfn_mask;
	/* one pte table, by index: its ptes, whether each repeats the one
	 * before (rep: its pte, same: its struct page), the decoded entries
	 * that do not and their pages */
	uint64_t raw[512];
	uint8_t rep[512], same[512];
	uint16_t run_start[512], run_end[512];
	struct pfs_entry ents[512];
	struct pfs_page_info run[512];
	/* copies of the upper tables on the path: the reader's cache has
	 * PFS_READER_WAYS blocks a set, a child table may still evict its
	 * parent's block */
	uint64_t upper[5][512];
};

static int pfn_valid_of(const struct pfs_layout *lo, const struct pfs_entry *e)
{
	if (e->page.state == PFS_PAGE_INVALID)
		return 0;
	if (e->page.state == PFS_PAGE_NONE)
		return e->pfn <= lo->highest_memmap_pfn;
	return 1;
}

static int worth_confirming(const struct pfs_entry *e)
{
	return pfs_diag_max_severity(e->diag) >= PFS_SEV_MEDIUM;
}

/* read one table entry again, past the reader's cache; 0 when unreadable */
static int reread_u64(struct pfs_target *t, uint64_t pa, uint64_t *v)
{
	*v = 0;
	return pfs_read_phys_bulk(t->rd, pa, v, 8) == 0;
}

/*
 * PFS_WALK_CONFIRM: read again what the diagnoses of e were computed from.
 * A live kernel frees a page table only after clearing the entry that
 * points at it (free_pte_range: pmd_clear before pte_free_tlb; likewise
 * free_pmd_range, free_pud_range, free_p4d_range), so a table read after
 * it was freed or reused shows as a changed upper-level entry, read after
 * the table.  The struct page and the VMA are read again for the same
 * reason (a page freed and reallocated, a VMA split, merged or freed).
 * The walk's caches are left as they were (a re-read refreshes blocks it
 * finds cached).
 */
static void confirm(struct walk *w, struct pfs_entry *e)
{
	struct pfs_target *t = w->t;
	const unsigned top = pfs_top_level(w->lo);
	uint64_t kv_va = t->kv_cache_va, kv_pa = t->kv_cache_pa, kv_len = t->kv_cache_len;
	struct pfs_error error = t->error;
	struct { uint64_t va, pa, len; } more[3];
	unsigned what = PFS_CHANGED_NO, level = e->level;
	uint64_t before = e->raw, after = e->raw, v;
	struct pfs_section_cache sc = t->sc;

	memcpy(more, t->kv_more, sizeof(more));
	t->kv_cache_len = 0;
	memset(t->kv_more, 0, sizeof(t->kv_more));
	t->sc.nr = UINT64_MAX;
	t->rd->nocache = 1;
	/* the path from the top: every entry that leads to e's table */
	for (unsigned l = top; l > e->level && l <= top; l--) {
		unsigned idx = (unsigned)((e->addr >> pfs_level_shift(l)) & 511);
		int ok = reread_u64(t, w->path[l] + idx * 8ull, &v);
		if (!ok || v != w->upper[l][idx]) {
			what = PFS_CHANGED_TABLE;
			level = l;
			before = w->upper[l][idx];
			after = v;
			break;
		}
	}
	if (what == PFS_CHANGED_NO) {
		uint64_t table = e->level == PFS_LEVEL_PTE ? w->pte_table : w->path[e->level];
		unsigned idx = (unsigned)((e->addr >> pfs_level_shift(e->level)) & 511);
		if (!reread_u64(t, table + idx * 8ull, &v) || v != e->raw) {
			what = PFS_CHANGED_ENTRY;
			after = v;
		}
	}
	if (what == PFS_CHANGED_NO && e->pfn != PFS_NO_PFN && !(w->flags & PFS_WALK_NO_PAGE)) {
		struct pfs_page_info p;
		memset(&p, 0, sizeof(p));
		pfs_page_decode_run(t, e->pfn, 1, &p, NULL, NULL);
		if (!pfs_page_info_equal(&p, &e->page))
			what = PFS_CHANGED_PAGE;
	}
	if (what == PFS_CHANGED_NO && w->vma->vma) {
		/* still the VMA the mm's tree holds at this address (a VMA
		 * unmapped meanwhile may keep its bytes in a freed slab object) */
		struct pfs_vma nv;
		const struct pfs_vma *ov = w->vma;
		int r = ov->mm ? pfs_find_vma(t, ov->mm, e->addr, &nv) : pfs_vma_read(t, ov->vma, &nv);
		if (r < 0 || nv.vma != ov->vma || nv.start != ov->start || nv.end != ov->end ||
		    nv.vm_flags != ov->vm_flags || nv.pgoff != ov->pgoff || nv.file != ov->file ||
		    nv.ops != ov->ops || (ov->mm && nv.mm != ov->mm))
			what = PFS_CHANGED_VMA;
	}
	t->rd->nocache = 0;
	t->kv_cache_va = kv_va;
	t->kv_cache_pa = kv_pa;
	t->kv_cache_len = kv_len;
	memcpy(t->kv_more, more, sizeof(more));
	t->sc = sc;
	t->error = error;
	if (what == PFS_CHANGED_NO)
		return;
	e->changed = (uint8_t)what;
	e->changed_level = (uint8_t)level;
	e->changed_raw_before = before;
	e->changed_raw_after = after;
	e->changed_diag = e->diag;
	e->diag = 0;
}

/* the verdicts of a decoded entry with its page filled (pure functions of
 * the entry, the VMA and the layout) */
static void verdicts(struct walk *w, struct pfs_entry *e)
{
	pfs_vnp(w->lo, w->vma, e, pfn_valid_of(w->lo, e));
	pfs_consumers(w->lo, w->vma, e);
	pfs_diagnose_entry(w->lo, w->vma, e);
}

/* confirmation and callback of an entry whose verdicts are set */
static int deliver(struct walk *w, struct pfs_entry *e)
{
	if ((w->flags & PFS_WALK_CONFIRM) && worth_confirming(e))
		confirm(w, e);
	return w->cb(e, w->vma, w->arg);
}

static int finish(struct walk *w, struct pfs_entry *e)
{
	verdicts(w, e);
	return deliver(w, e);
}

/* pfns that pfs_vnp(), pfs_consumers() and pfs_diagnose_entry() single out
 * by value: the zero page and the huge zero folio (is_zero_pfn,
 * is_huge_zero_pfn / is_huge_zero_pmd) */
static int zeroish(const struct pfs_layout *lo, uint64_t pfn)
{
	return pfs_is_zero_pfn(lo, pfn) || pfs_is_huge_zero_pfn(lo, pfn);
}

/*
 * 1 when the pte e, following p in the same table, has p's verdicts: the
 * verdict functions read of an entry its kind, level, bits, the page's
 * state, bits, refcounts and mapcounts, and of its pfn and address only
 * whether the pfn is PFS_NO_PFN, is the zero page or in the huge zero
 * folio, lies above highest_memmap_pfn, and equals vm_pgoff plus the page
 * offset in the VMA (the same for consecutive pfns at consecutive
 * addresses).  So a run of ptes equal but for a pfn that goes up by one per
 * entry, over struct pages in the same state, is decided once.
 */
static int same_state(const struct pfs_layout *lo, const struct pfs_entry *p, const struct pfs_entry *e)
{
	if (e->kind != p->kind || e->bits != p->bits || e->level != p->level ||
	    e->page.state != p->page.state || e->page.bits != p->page.bits ||
	    e->page.refcount != p->page.refcount || e->page.mapcount != p->page.mapcount ||
	    e->page.page_refcount != p->page.page_refcount)
		return 0;
	if (e->pfn == PFS_NO_PFN || p->pfn == PFS_NO_PFN)
		return e->pfn == p->pfn;
	return e->pfn == p->pfn + 1 && e->addr == p->addr + PFS_PAGE_SIZE &&
	       !zeroish(lo, e->pfn) && !zeroish(lo, p->pfn) &&
	       (e->pfn > lo->highest_memmap_pfn) == (p->pfn > lo->highest_memmap_pfn);
}

static void blank(struct pfs_entry *e, uint64_t addr, unsigned level)
{
	/* a copy, not memset(): glibc's rep stosq costs more than the rest of
	 * a pte's decode */
	static const struct pfs_entry zero;
	*e = zero;
	e->addr = addr;
	e->level = (uint8_t)level;
	e->pfn = PFS_NO_PFN;
}

static int emit_simple(struct walk *w, uint64_t addr, unsigned level, unsigned kind, uint64_t raw)
{
	struct pfs_entry *e = &w->ents[0];
	blank(e, addr, level);
	e->kind = (uint8_t)kind;
	e->raw = raw;
	return finish(w, e);
}

/* The verdicts of an entry as decided, before PFS_WALK_CONFIRM may have
 * withdrawn its diagnoses. */
struct verdict {
	uint8_t normal_page, vnp_reason, consumers[PFS_C__COUNT];
	uint32_t diag;
};

static void verdict_save(struct verdict *v, const struct pfs_entry *e)
{
	v->normal_page = e->normal_page;
	v->vnp_reason = e->vnp_reason;
	memcpy(v->consumers, e->consumers, sizeof(v->consumers));
	v->diag = e->diag;
}

static void verdict_set(struct pfs_entry *e, const struct verdict *v)
{
	e->normal_page = v->normal_page;
	e->vnp_reason = v->vnp_reason;
	memcpy(e->consumers, v->consumers, sizeof(v->consumers));
	e->diag = v->diag;
	e->changed = 0;
	e->changed_level = 0;
	e->changed_diag = 0;
	e->changed_raw_before = e->changed_raw_after = 0;
}

/* How many repeats from the pte at pfn q on, at most max, decide as the pte
 * before each did (same_state()): the pfns from q to the last repeat's are
 * none the zero page nor in the huge zero folio, and all on one side of
 * highest_memmap_pfn. */
static unsigned repeats_decide_alike(const struct pfs_layout *lo, uint64_t q, unsigned max)
{
	uint64_t m = max, hz = lo->huge_zero_pfn;

	if (zeroish(lo, q))
		return 0;
	if (lo->zero_pfn > q && lo->zero_pfn - q - 1 < m)
		m = lo->zero_pfn - q - 1;
	/* (a huge zero pfn not 512-aligned names no pfn: pfs_is_huge_zero_pfn) */
	if (pfs_layout_has(lo, huge_zero_pfn) && !(hz & 511) && hz > q && hz - q - 1 < m)
		m = hz - q - 1;
	if (q <= lo->highest_memmap_pfn && lo->highest_memmap_pfn - q < m)
		m = lo->highest_memmap_pfn - q;
	return (unsigned)m;
}

/* The end of the stretch of entries from i (below n) that repeat the one
 * before, pte and struct page (rep[] and same[] hold 0 or 1), 8 at a time */
static unsigned repeats_from(const struct walk *w, unsigned i, unsigned n)
{
	const uint64_t ones = 0x0101010101010101ull;
	unsigned j = i;

	for (uint64_t r, s; j + 8 <= n; j += 8) {
		memcpy(&r, w->rep + j, 8);
		memcpy(&s, w->same + j, 8);
		if ((r & s) != ones)
			break;
	}
	while (j < n && w->rep[j] && w->same[j])
		j++;
	return j;
}

/*
 * The ptes [lo_va, hi_va) of the table tbl.  A pte that is the one before it
 * with its pfn one up (pfs_pte_next), over a struct page that decodes as
 * the one before it (pfs_page_decode_run's same[]), is a repeat: it is
 * neither decoded nor decided again, and a run of them goes to the repeat
 * callback at once when there is one.
 */
static int walk_ptes(struct walk *w, const unsigned char *tbl, uint64_t lo_va, uint64_t hi_va)
{
	const struct pfs_layout *lo = w->lo;
	unsigned first = (unsigned)((lo_va >> 12) & 511);
	unsigned n = (unsigned)((hi_va - lo_va) >> 12);
	int want_page = !(w->flags & PFS_WALK_NO_PAGE);

	/* decode every pte that is not a repeat of the one before; the runs
	 * of consecutive pfns at consecutive entries start where a decoded
	 * pte's pfn does not follow the one before (a repeat's always does) */
	unsigned nruns = 0;
	int open = 0;                   /* a run is open: run_start[nruns - 1] */
	/* (locals: a store through rep, a byte, may alias w's members) */
	const uint64_t *raws = w->raw;
	const uint64_t pfn_mask = w->pte_pfn_mask;
	uint8_t *rep = w->rep;
	uint64_t pfn = 0;               /* the pfn of the pte before */
	int present = 0;                /* the pte before is present, with a pfn */
	memcpy(w->raw, tbl + first * 8, (size_t)n * 8);
	for (unsigned i = 0; i < n;) {
		if (present) {
			/* the repeats from i: each the pte before with its
			 * pfn one up, none carrying out of the pfn's bits
			 * (pfs_pte_next).  A carry out of them changes the
			 * bit above the pfn's lowest bits (at least 35 of
			 * them), once in 512 steps: a stretch whose last pte
			 * differs from the pte before it only in pfn bits
			 * had none. */
			unsigned j = i;
			uint64_t base = raws[i - 1], want = base + (1ull << 12);

			/* four at a time, one branch for the four */
			while (j + 4 <= n && !((raws[j] ^ want) | (raws[j + 1] ^ (want + (1ull << 12))) |
					       (raws[j + 2] ^ (want + (2ull << 12))) |
					       (raws[j + 3] ^ (want + (3ull << 12))))) {
				j += 4;
				want += 4ull << 12;
			}
			while (j < n && raws[j] == want) {
				j++;
				want += 1ull << 12;
			}
			if (j > i && ((raws[j - 1] ^ base) & ~pfn_mask)) {
				/* a carry: where the first was */
				for (j = i; j < n; j++) {
					uint64_t nx = pfs_pte_next(raws[j - 1], pfn_mask);
					if (!nx || raws[j] != nx)
						break;
				}
			}
			if (j > i) {
				memset(rep + i, 1, j - i);
				pfn += j - i;
				i = j;
				continue;
			}
		}
		uint64_t raw = raws[i];
		struct pfs_entry *e = &w->ents[i];
		rep[i] = 0;
		blank(e, lo_va + ((uint64_t)i << 12), PFS_LEVEL_PTE);
		w->ops->decode(lo, raw, PFS_LEVEL_PTE, e);
		e->addr = lo_va + ((uint64_t)i << 12);
		present = e->kind == PFS_KIND_PRESENT && e->pfn != PFS_NO_PFN;
		if (open && (e->pfn == PFS_NO_PFN || e->pfn != pfn + 1)) {
			w->run_end[nruns - 1] = (uint16_t)i;
			open = 0;
		}
		if (e->pfn != PFS_NO_PFN && !open) {
			w->run_start[nruns++] = (uint16_t)i;
			open = 1;
		}
		pfn = e->pfn;
		i++;
	}
	if (open)
		w->run_end[nruns - 1] = (uint16_t)n;
	/* one memmap read per run */
	memset(w->same, !want_page, n);
	for (unsigned r = 0; want_page && r < nruns; r++) {
		unsigned i = w->run_start[r];
		pfs_page_decode_run(w->t, w->ents[i].pfn, w->run_end[r] - i, &w->run[i], &w->same[i], &w->memo);
	}
	/* verdicts once per run of entries in the same state (same_state) */
	struct pfs_entry *cur = NULL;   /* entry i - 1, as decided */
	struct verdict v = { 0, 0, { 0 }, 0 };
	for (unsigned i = 0; i < n;) {
		if (cur && w->rep[i] && w->same[i]) {
			unsigned j = repeats_from(w, i, n);
			j = i + repeats_decide_alike(lo, cur->pfn, j - i);
			if (j > i) {
				int r = 0;
				/* cur's diagnoses read again: each repeat's too */
				int confirming = (w->flags & PFS_WALK_CONFIRM) &&
						 pfs_diag_max_severity(v.diag) >= PFS_SEV_MEDIUM;
				if (w->rcb && !confirming) {
					r = w->rcb(cur, j - i, &w->raw[i], w->vma, w->arg);
					pfs_entry_step(cur, j - i, w->raw[j - 1]);
				} else {
					for (unsigned k = i; k < j && !r; k++) {
						pfs_entry_step(cur, 1, w->raw[k]);
						verdict_set(cur, &v);
						r = deliver(w, cur);
					}
				}
				if (r)
					return r;
				i = j;
				continue;
			}
		}
		struct pfs_entry *e = &w->ents[i];
		if (w->rep[i]) {
			/* cur's pte stepped, over a page of its own */
			*e = *cur;
			pfs_entry_step(e, 1, w->raw[i]);
			verdict_set(e, &v);
			if (!w->same[i])
				e->page = w->run[i];
		} else if (want_page && e->pfn != PFS_NO_PFN) {
			if (w->same[i]) {
				e->page = cur->page;
				pfs_page_info_step(&e->page, cur->pfn, 1);
			} else {
				e->page = w->run[i];
			}
		}
		i++;
		if (e->kind == PFS_KIND_NONE && !(w->flags & PFS_WALK_NONE)) {
			cur = NULL;
			continue;
		}
		if (cur && same_state(lo, cur, e)) {
			verdict_set(e, &v);
		} else {
			verdicts(w, e);
			verdict_save(&v, e);
		}
		cur = e;
		int r = deliver(w, e);
		if (r)
			return r;
	}
	return 0;
}

static int walk_leaf(struct walk *w, uint64_t raw, unsigned level, uint64_t addr)
{
	struct pfs_entry *e = &w->ents[0];
	blank(e, addr, level);
	w->ops->decode(w->lo, raw, level, e);
	e->addr = addr;
	if (e->pfn != PFS_NO_PFN && !(w->flags & PFS_WALK_NO_PAGE))
		pfs_page_decode_run(w->t, e->pfn, 1, &e->page, NULL, &w->memo);
	return finish(w, e);
}

/* the table at `level` (PA table_pa) maps [lo_va, hi_va) of the range */
static int walk_table(struct walk *w, uint64_t table_pa, unsigned level, uint64_t lo_va, uint64_t hi_va)
{
	if (++w->tables > PFS_WALK_MAX_TABLES)
		return pfs_target_fail(w->t, PFS_ELOOP, "page-table walk exceeds its bound", lo_va);
	const unsigned char *tbl = pfs_read_phys_page(w->t->rd, table_pa >> 12);
	if (!tbl)
		return emit_simple(w, lo_va, level, PFS_KIND_UNREADABLE, table_pa);
	if (level == PFS_LEVEL_PTE) {
		w->pte_table = table_pa & ~0xfffull;
		return walk_ptes(w, tbl, lo_va, hi_va);
	}

	w->path[level] = table_pa & ~0xfffull;
	uint64_t *ents = w->upper[level];
	/* a top table smaller than a page sits inside it: arm64 pgd_alloc()
	 * takes PGD_SIZE < PAGE_SIZE tables (16 entries with 52-bit LPA2
	 * VAs) from its pgd_cache (arch/arm64/mm/pgd.c) */
	unsigned off = (unsigned)(table_pa & 0xfff);
	memset(ents, 0, PFS_PAGE_SIZE);
	memcpy(ents, tbl + off, PFS_PAGE_SIZE - off);
	unsigned shift = pfs_level_shift(level);
	uint64_t span = 1ull << shift;
	uint64_t va = lo_va;
	while (va < hi_va) {
		unsigned idx = (unsigned)((va >> shift) & 511);
		uint64_t next = (va & ~(span - 1)) + span;   /* 0 on wrap */
		uint64_t sub_hi = (next == 0 || next > hi_va) ? hi_va : next;
		uint64_t raw, next_pa = 0;
		raw = ents[idx];
		int r = 0;
		switch (w->ops->classify(w->lo, raw, level, &next_pa)) {
		case PFS_TE_NONE:
			if (w->flags & PFS_WALK_NONE)
				r = emit_simple(w, va, level, PFS_KIND_NONE, raw);
			break;
		case PFS_TE_LEAF:
			r = walk_leaf(w, raw, level, va);
			break;
		case PFS_TE_TABLE: {
			int loop = 0;
			for (unsigned l = level; l <= pfs_top_level(w->lo); l++)
				loop |= w->path[l] == (next_pa & ~0xfffull);
			if (!loop)
				r = walk_table(w, next_pa, level - 1, va, sub_hi);
			break;
		}
		default:   /* pXd_bad: the kernel clears it, nothing below is mapped */
			break;
		}
		if (r)
			return r;
		if (next == 0)
			break;
		va = sub_hi;
	}
	w->path[level] = UINT64_MAX;
	return 0;
}

int pfs_walk_vma(struct pfs_target *t, uint64_t pgd_pa, const struct pfs_vma *vma,
		 uint64_t start, uint64_t end, unsigned flags, pfs_entry_cb cb, void *arg)
{
	return pfs_walk_vma_repeats(t, pgd_pa, vma, start, end, flags, cb, NULL, arg);
}

int pfs_walk_vma_repeats(struct pfs_target *t, uint64_t pgd_pa, const struct pfs_vma *vma,
			 uint64_t start, uint64_t end, unsigned flags, pfs_entry_cb cb,
			 pfs_repeat_cb rcb, void *arg)
{
	if (!t || !t->lo || !t->rd || !vma || !cb)
		return -PFS_EINVAL;
	if (start < vma->start)
		start = vma->start;
	if (end > vma->end)
		end = vma->end;
	start &= ~0xfffull;
	end = (end + 0xfff) & ~0xfffull;
	if (end == 0 && vma->end != 0)
		end = vma->end & ~0xfffull;   /* rounding wrapped */
	if (start >= end)
		return 0;
	struct walk *w = malloc(sizeof(*w));
	if (!w)
		return -PFS_ENOMEM;
	w->t = t;
	w->lo = t->lo;
	w->ops = pfs_arch_get(t->lo);
	w->pte_pfn_mask = w->ops->pte_pfn_mask(t->lo);
	w->vma = vma;
	w->start = start;
	w->end = end;
	w->flags = flags;
	w->cb = cb;
	w->rcb = rcb;
	w->arg = arg;
	w->tables = 0;
	pfs_buddy_memo_init(&w->memo);
	for (unsigned i = 0; i < 6; i++)
		w->path[i] = UINT64_MAX;
	int r = walk_table(w, pgd_pa, pfs_top_level(t->lo), start, end);
	free(w);
	return r;
}
