// SPDX-License-Identifier: MIT
/*
 * Entries, runs and changed entries as the aligned human table, appended
 * into a struct pfs_buf.
 */
#include <string.h>

#include "internal.h"
#include "pfnscope/json.h"
#include "pfnscope/summary.h"


/* column widths */
#define W_ADDR  19
#define W_COUNT 9
#define W_LVL   4
#define W_RAW   19
#define W_KIND  11
#define W_PFN   13
#define W_SPC   4
#define W_VNP   5
#define W_WHY   22
#define W_RCMC  12
#define W_FLAGS 32

void pfs_table_header(struct pfs_buf *b, int summary)
{
	static const struct { const char *name; size_t width; int summary_only; } cols[] = {
		{ "ADDRESS", W_ADDR, 0 }, { "END", W_ADDR, 1 }, { "COUNT", W_COUNT, 1 },
		{ "LVL", W_LVL, 0 }, { "RAW", W_RAW, 0 }, { "KIND", W_KIND, 0 },
		{ "PFN", W_PFN, 0 }, { "SPC", W_SPC, 0 }, { "VNP", W_VNP, 0 },
		{ "VNP_REASON", W_WHY, 0 }, { "RC/MC", W_RCMC, 0 }, { "PAGE_FLAGS", W_FLAGS, 0 },
	};
	size_t s = b->len;

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		if (cols[i].summary_only && !summary)
			continue;
		pfs_buf_puts(b, cols[i].name);
		pfs_buf_pad(b, s, cols[i].width);
		s = b->len;
	}
	PUTL(b, "DIAGNOSES");
}

static void table_cols(struct pfs_buf *b, const struct pfs_entry *e,
		       const struct pfs_layout *lo, size_t s)
{
	pfs_buf_puts(b, pfs_level_name(e->level));
	pfs_buf_pad(b, s, W_LVL); s = b->len;
	pfs_buf_hex16(b, e->raw);
	pfs_buf_pad(b, s, W_RAW); s = b->len;
	pfs_buf_puts(b, pfs_kind_name(e->kind));
	pfs_buf_pad(b, s, W_KIND); s = b->len;
	if (e->pfn == PFS_NO_PFN)
		pfs_buf_putc(b, '-');
	else
		pfs_buf_hex(b, e->pfn);
	pfs_buf_pad(b, s, W_PFN); s = b->len;
	if (e->bits & PFS_E_SPECIAL)
		PUTL(b, "S");
	else
		PUTL(b, "-");
	pfs_buf_pad(b, s, W_SPC); s = b->len;
	if (e->kind != PFS_KIND_PRESENT && e->kind != PFS_KIND_PROTNONE)
		PUTL(b, "-");
	else if (e->normal_page)
		PUTL(b, "page");
	else
		PUTL(b, "NULL");
	pfs_buf_pad(b, s, W_VNP); s = b->len;
	pfs_buf_puts(b, pfs_vnp_reason_name(e->vnp_reason));
	pfs_buf_pad(b, s, W_WHY); s = b->len;
	if (e->page.state == PFS_PAGE_OK) {
		pfs_buf_i64(b, e->page.refcount);
		pfs_buf_putc(b, '/');
		pfs_buf_i64(b, e->page.mapcount);
	} else if (e->page.state == PFS_PAGE_NONE) {
		pfs_buf_putc(b, '-');
	} else {
		pfs_buf_puts(b, pfs_page_state_name(e->page.state));
	}
	pfs_buf_pad(b, s, W_RCMC); s = b->len;
	int first = 1;
	if (e->page.state == PFS_PAGE_OK && lo) {
		for (uint64_t m = e->page.flags; m; m &= m - 1) {
			const char *name = lo->pageflag_names[__builtin_ctzll(m)];
			if (!name)
				continue;
			if (!first)
				pfs_buf_putc(b, ',');
			first = 0;
			pfs_buf_puts(b, name);
		}
	}
	if (first)
		pfs_buf_putc(b, '-');
	pfs_buf_pad(b, s, W_FLAGS);
	first = 1;
	for (uint32_t m = e->diag; m; m &= m - 1) {
		unsigned d = (unsigned)__builtin_ctz(m);
		if (d >= PFS_D__COUNT)
			break;
		if (!first)
			pfs_buf_putc(b, ',');
		first = 0;
		pfs_buf_puts(b, pfs_diag_name(d));
		pfs_buf_putc(b, '(');
		pfs_buf_puts(b, pfs_severity_name(pfs_diag_severity(d)));
		pfs_buf_putc(b, ')');
	}
	if (first)
		pfs_buf_putc(b, '-');
	pfs_buf_putc(b, '\n');
}

/* Each line needs a few hundred bytes at most: reserving up front keeps the
 * line in the buffer (no flush in the middle), so padding is exact. */
#define LINE_RESERVE 4096

void pfs_table_entry(struct pfs_buf *b, const struct pfs_entry *e,
		     const struct pfs_layout *lo)
{
	pfs_buf_reserve(b, LINE_RESERVE);
	size_t s = b->len;
	pfs_buf_hex16(b, e->addr);
	pfs_buf_pad(b, s, W_ADDR);
	table_cols(b, e, lo, b->len);
}

void pfs_table_run(struct pfs_buf *b, const struct pfs_run *r,
		   const struct pfs_layout *lo)
{
	pfs_buf_reserve(b, LINE_RESERVE);
	size_t s = b->len;
	pfs_buf_hex16(b, r->first.addr);
	pfs_buf_pad(b, s, W_ADDR); s = b->len;
	pfs_buf_hex16(b, r->end);
	pfs_buf_pad(b, s, W_ADDR); s = b->len;
	pfs_buf_u64(b, r->count);
	pfs_buf_pad(b, s, W_COUNT);
	table_cols(b, &r->first, lo, b->len);
}

void pfs_table_changed(struct pfs_buf *b, uint64_t addr, uint64_t raw_before, uint64_t raw_after,
		       int level, unsigned what, uint32_t codes)
{
	pfs_buf_puts(b, "# changed during the walk: ");
	pfs_buf_hex16(b, addr);
	pfs_buf_puts(b, " raw ");
	pfs_buf_hex16(b, raw_before);
	pfs_buf_puts(b, " -> ");
	pfs_buf_hex16(b, raw_after);
	if (what) {
		pfs_buf_puts(b, " (");
		if (level >= 0) {
			pfs_buf_puts(b, pfs_level_name((unsigned)level));
			pfs_buf_putc(b, ' ');
		}
		pfs_buf_puts(b, pfs_changed_name(what));
		pfs_buf_puts(b, " changed; not confirmed: ");
		pfs_changed_codes(b, codes, 0);
		pfs_buf_putc(b, ')');
	}
	pfs_buf_putc(b, '\n');
}

