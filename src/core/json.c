// SPDX-License-Identifier: MIT
/*
 * Entries, runs, VMAs and changed entries as JSON lines
 * (docs/pfnscope.schema.json), appended into a struct pfs_buf.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pfnscope/json.h"
#include "pfnscope/summary.h"


static inline void put_bool(struct pfs_buf *b, int v)
{
	if (v)
		PUTL(b, "true");
	else
		PUTL(b, "false");
}

static int has_swap(const struct pfs_entry *e)
{
	switch (e->kind) {
	case PFS_KIND_SWAP: case PFS_KIND_MIGRATION: case PFS_KIND_DEVICE:
	case PFS_KIND_MARKER: case PFS_KIND_HWPOISON:
		return 1;
	default:
		return 0;
	}
}

/* Cursor writers for the entry hot path: the caller reserved enough room
 * (entry_bound) so no capacity check is needed per field. */
#define CL(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) += sizeof(lit) - 1)

/* short names (enum strings): a byte loop beats a strlen + memcpy call */
static inline char *c_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static inline char *c_bool(char *p, int v)
{
	if (v)
		CL(p, "true");
	else
		CL(p, "false");
	return p;
}

static inline char *c_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return p + pfs_fmt_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return p + pfs_fmt_u64(p, (uint64_t)v);
}

static inline char *c_qhex(char *p, uint64_t v)
{
	*p++ = '"';
	p += pfs_fmt_hex(p, v);
	*p++ = '"';
	return p;
}

/* JSON string; needs 2 + 6 * strlen(s) bytes */
static char *c_json_str(char *p, const char *s)
{
	static const char digits[] = "0123456789abcdef";

	*p++ = '"';
	for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
		unsigned char c = *q;
		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			CL(p, "\\u00");
			*p++ = digits[c >> 4];
			*p++ = digits[c & 0xf];
		} else {
			*p++ = (char)c;
		}
	}
	*p++ = '"';
	return p;
}

/* The consumers object's members.  Consecutive entries of a VMA nearly
 * always share their verdicts, so the previous rendering is kept per thread
 * (the key is the verdict bytes; names are constants) and copied. */
static char *c_consumers(char *p, const uint8_t *v)
{
	static _Thread_local struct {
		int valid;
		uint8_t key[PFS_C__COUNT];
		size_t len;
		char s[384];
	} cache;
	char *p0 = p;

	if (cache.valid && memcmp(cache.key, v, PFS_C__COUNT) == 0) {
		memcpy(p, cache.s, cache.len);
		return p + cache.len;
	}
	for (unsigned c = 0; c < PFS_C__COUNT; c++) {
		if (c)
			*p++ = ',';
		*p++ = '"';
		p = c_str(p, pfs_consumer_name(c));
		CL(p, "\":\"");
		p = c_str(p, pfs_consumer_verdict_name(v[c]));
		*p++ = '"';
	}
	if ((size_t)(p - p0) <= sizeof(cache.s)) {
		memcpy(cache.key, v, PFS_C__COUNT);
		cache.len = (size_t)(p - p0);
		memcpy(cache.s, p0, cache.len);
		cache.valid = 1;
	}
	return p;
}

/* Upper bound of json_entry_body's output: fixed part + the flag names. */
static size_t entry_bound(const struct pfs_entry *e, const struct pfs_layout *lo)
{
	size_t n = 2048;

	if (e->page.state == PFS_PAGE_OK && lo)
		for (uint64_t m = e->page.flags; m; m &= m - 1) {
			const char *name = lo->pageflag_names[__builtin_ctzll(m)];
			if (name)
				n += 3 + 6 * strlen(name);
		}
	return n;
}

/* Where the numbers that change from one entry to the next were written:
 * the digits of addr and raw (after "0x"), of pfn and of head_pfn; an
 * absent number has an empty span. */
struct spans {
	char *addr, *addr_end, *raw, *raw_end, *pfn, *pfn_end, *head, *head_end;
};

/* Everything of an entry object after the leading '{' and before the
 * closing '}': shared by entry and run objects.  p has entry_bound room. */
static char *json_entry_body(char *p, const struct pfs_entry *e, int32_t pid,
			     uint64_t vma_start, const struct pfs_layout *lo,
			     struct spans *sp)
{
	CL(p, "\"pid\":");
	p = c_i64(p, pid);
	CL(p, ",\"vma_start\":");
	p = c_qhex(p, vma_start);
	CL(p, ",\"addr\":");
	sp->addr = p + 3;
	p = c_qhex(p, e->addr);
	sp->addr_end = p - 1;
	CL(p, ",\"level\":\"");
	p = c_str(p, pfs_level_name(e->level));
	CL(p, "\",\"raw\":");
	sp->raw = p + 3;
	p = c_qhex(p, e->raw);
	sp->raw_end = p - 1;
	CL(p, ",\"kind\":\"");
	p = c_str(p, pfs_kind_name(e->kind));
	CL(p, "\",\"pfn\":");
	if (e->pfn == PFS_NO_PFN) {
		CL(p, "null");
		sp->pfn = p;    /* an empty span after it */
	} else {
		sp->pfn = p;
		p += pfs_fmt_u64(p, e->pfn);
	}
	sp->pfn_end = p;
	CL(p, ",\"special\":");
	p = c_bool(p, e->bits & PFS_E_SPECIAL);
	CL(p, ",\"devmap\":");
	p = c_bool(p, e->bits & PFS_E_DEVMAP);
	CL(p, ",\"writable\":");
	p = c_bool(p, e->bits & PFS_E_WRITE);
	/* only when set (uffd-wp tracking and arm64's contiguous bit are rare;
	 * an entry without them reads as before) */
	if (e->bits & PFS_E_UFFD_WP)
		CL(p, ",\"uffd_wp\":true");
	if (e->bits & PFS_E_CONT)
		CL(p, ",\"cont\":true");
	CL(p, ",\"normal_page\":");
	p = c_bool(p, e->normal_page);
	CL(p, ",\"vnp_reason\":\"");
	p = c_str(p, pfs_vnp_reason_name(e->vnp_reason));
	CL(p, "\",\"page_state\":\"");
	p = c_str(p, pfs_page_state_name(e->page.state));
	CL(p, "\",\"page\":");
	sp->head = sp->head_end = p;
	if (e->page.state == PFS_PAGE_OK) {
		const struct pfs_page_info *pg = &e->page;
		CL(p, "{\"refcount\":");
		p = c_i64(p, pg->refcount);
		CL(p, ",\"mapcount\":");
		p = c_i64(p, pg->mapcount);
		CL(p, ",\"flags\":[");
		int first = 1;
		for (uint64_t m = lo ? pg->flags : 0; m; m &= m - 1) {
			const char *name = lo->pageflag_names[__builtin_ctzll(m)];
			if (!name)
				continue;
			if (!first)
				*p++ = ',';
			first = 0;
			p = c_json_str(p, name);
		}
		CL(p, "],\"anon\":");
		p = c_bool(p, pg->bits & PFS_PG_ANON);
		CL(p, ",\"reserved\":");
		p = c_bool(p, pg->bits & PFS_PG_RESERVED);
		CL(p, ",\"head_pfn\":");
		sp->head = p;
		p += pfs_fmt_u64(p, pg->head_pfn);
		sp->head_end = p;
		CL(p, ",\"order\":");
		p += pfs_fmt_u64(p, pg->order);
		CL(p, ",\"page_refcount\":");
		p = c_i64(p, pg->page_refcount);
		CL(p, ",\"page_mapcount\":");
		p = c_i64(p, pg->page_mapcount);
		CL(p, ",\"ksm\":");
		p = c_bool(p, pg->bits & PFS_PG_KSM);
		CL(p, ",\"free\":");
		p = c_bool(p, pg->bits & PFS_PG_FREE);
		CL(p, ",\"zero\":");
		p = c_bool(p, pg->bits & PFS_PG_ZERO);
		CL(p, ",\"zone_device\":");
		p = c_bool(p, pg->bits & PFS_PG_ZONE_DEVICE);
		CL(p, ",\"slab\":");
		p = c_bool(p, pg->bits & PFS_PG_SLAB);
		CL(p, ",\"pgtable\":");
		p = c_bool(p, pg->bits & PFS_PG_PGTABLE);
		*p++ = '}';
	} else {
		CL(p, "null");
	}
	CL(p, ",\"swap\":");
	if (has_swap(e)) {
		CL(p, "{\"type\":");
		p += pfs_fmt_u64(p, e->swp_type);
		CL(p, ",\"offset\":");
		p += pfs_fmt_u64(p, e->swp_offset);
		*p++ = '}';
	} else {
		CL(p, "null");
	}
	CL(p, ",\"consumers\":{");
	p = c_consumers(p, e->consumers);
	CL(p, "},\"diagnoses\":[");
	int first = 1;
	for (uint32_t m = e->diag; m; m &= m - 1) {
		unsigned d = (unsigned)__builtin_ctz(m);
		if (d >= PFS_D__COUNT)
			break;
		if (!first)
			*p++ = ',';
		first = 0;
		CL(p, "{\"code\":\"");
		p = c_str(p, pfs_diag_name(d));
		CL(p, "\",\"severity\":\"");
		p = c_str(p, pfs_severity_name(pfs_diag_severity(d)));
		CL(p, "\"}");
	}
	*p++ = ']';
	return p;
}

/*
 * The last entry line written to a buffer.  Consecutive entries of a VMA
 * mostly differ only in addr, raw, pfn and head_pfn, each a little larger
 * than before: such an entry is the memo's line with those digits raised
 * in place, copied out whole.  Anything else, or a number that needs one
 * more digit, renders afresh.
 */
#define MEMO_LINE 4096
struct pfs_json_memo {
	int valid;
	int32_t pid;
	uint64_t vma_start;
	const struct pfs_layout *lo;
	struct pfs_entry e;
	size_t len;
	/* offsets into line of the spans (struct spans) */
	uint32_t addr, addr_end, raw, raw_end, pfn, pfn_end, head, head_end;
	char line[MEMO_LINE];
};

/* Everything json_entry_body prints but the four numbers. */
static int memo_fits(const struct pfs_json_memo *m, const struct pfs_entry *e,
		     int32_t pid, uint64_t vma_start, const struct pfs_layout *lo)
{
	const struct pfs_entry *o = &m->e;

	if (!m->valid || m->pid != pid || m->vma_start != vma_start || m->lo != lo)
		return 0;
	if (o->level != e->level || o->kind != e->kind || o->bits != e->bits ||
	    o->diag != e->diag || o->normal_page != e->normal_page ||
	    o->vnp_reason != e->vnp_reason ||
	    memcmp(o->consumers, e->consumers, PFS_C__COUNT) != 0)
		return 0;
	if ((o->pfn == PFS_NO_PFN) != (e->pfn == PFS_NO_PFN) || e->pfn < o->pfn)
		return 0;
	if (e->addr < o->addr || e->raw < o->raw)
		return 0;
	if (has_swap(e) && (o->swp_type != e->swp_type || o->swp_offset != e->swp_offset))
		return 0;
	const struct pfs_page_info *a = &o->page, *b = &e->page;
	if (a->state != b->state)
		return 0;
	if (b->state == PFS_PAGE_OK &&
	    (a->refcount != b->refcount || a->mapcount != b->mapcount ||
	     a->flags != b->flags || a->bits != b->bits || a->order != b->order ||
	     a->page_refcount != b->page_refcount ||
	     a->page_mapcount != b->page_mapcount || b->head_pfn < a->head_pfn))
		return 0;
	return 1;
}

static inline unsigned hex_value(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/* Add delta to the hex digits [at, end); -1 when a digit would be added. */
static int bump_hex(char *at, char *end, uint64_t delta)
{
	static const char digits[] = "0123456789abcdef";
	unsigned carry = 0;

	while (delta || carry) {
		if (end == at)
			return -1;
		--end;
		unsigned d = hex_value(*end) + (unsigned)(delta & 0xf) + carry;
		delta >>= 4;
		carry = d >> 4;
		*end = digits[d & 0xf];
	}
	return 0;
}

/* The same for decimal digits. */
static int bump_dec(char *at, char *end, uint64_t delta)
{
	unsigned carry = 0;

	while (delta || carry) {
		if (end == at)
			return -1;
		--end;
		unsigned d = (unsigned)(*end - '0') + (unsigned)(delta % 10) + carry;
		delta /= 10;
		carry = d >= 10;
		*end = (char)('0' + (carry ? d - 10 : d));
	}
	return 0;
}

/* Raise the memo's numbers to e's; on failure the memo is left invalid. */
static int memo_bump(struct pfs_json_memo *m, const struct pfs_entry *e)
{
	char *l = m->line;

	if (bump_hex(l + m->addr, l + m->addr_end, e->addr - m->e.addr) ||
	    bump_hex(l + m->raw, l + m->raw_end, e->raw - m->e.raw) ||
	    (e->pfn != PFS_NO_PFN &&
	     bump_dec(l + m->pfn, l + m->pfn_end, e->pfn - m->e.pfn)) ||
	    (e->page.state == PFS_PAGE_OK &&
	     bump_dec(l + m->head, l + m->head_end, e->page.head_pfn - m->e.page.head_pfn))) {
		m->valid = 0;
		return -1;
	}
	m->e.addr = e->addr;
	m->e.raw = e->raw;
	m->e.pfn = e->pfn;
	m->e.page.head_pfn = e->page.head_pfn;
	return 0;
}

/* Keep the line just rendered at p0 (len bytes, spans sp) for the next. */
static void memo_keep(struct pfs_buf *b, const char *p0, size_t len, const struct spans *sp,
		      const struct pfs_entry *e, int32_t pid, uint64_t vma_start,
		      const struct pfs_layout *lo)
{
	struct pfs_json_memo *m = b->memo;

	if (!m) {
		m = b->memo = malloc(sizeof(*m));
		if (!m)
			return;  /* no memo: every entry renders */
	}
	m->valid = 0;
	if (len > sizeof(m->line))
		return;
	memcpy(m->line, p0, len);
	m->len = len;
	m->addr = (uint32_t)(sp->addr - p0);
	m->addr_end = (uint32_t)(sp->addr_end - p0);
	m->raw = (uint32_t)(sp->raw - p0);
	m->raw_end = (uint32_t)(sp->raw_end - p0);
	m->pfn = (uint32_t)(sp->pfn - p0);
	m->pfn_end = (uint32_t)(sp->pfn_end - p0);
	m->head = (uint32_t)(sp->head - p0);
	m->head_end = (uint32_t)(sp->head_end - p0);
	m->e = *e;
	m->pid = pid;
	m->vma_start = vma_start;
	m->lo = lo;
	m->valid = 1;
}

void pfs_json_entry(struct pfs_buf *b, const struct pfs_entry *e, int32_t pid,
		    uint64_t vma_start, const struct pfs_layout *lo)
{
	struct pfs_json_memo *m = b->memo;
	char *p;

	if (m && memo_fits(m, e, pid, vma_start, lo) && memo_bump(m, e) == 0) {
		p = pfs_buf_reserve(b, m->len);
		if (!p)
			return;
		memcpy(p, m->line, m->len);
		b->len += m->len;
		return;
	}
	p = pfs_buf_reserve(b, entry_bound(e, lo));
	if (!p)
		return;
	char *p0 = p;
	struct spans sp;
	CL(p, "{\"type\":\"entry\",");
	p = json_entry_body(p, e, pid, vma_start, lo, &sp);
	CL(p, "}\n");
	b->len += (size_t)(p - p0);
	memo_keep(b, p0, (size_t)(p - p0), &sp, e, pid, vma_start, lo);
}

void pfs_json_run(struct pfs_buf *b, const struct pfs_run *r, int32_t pid,
		  uint64_t vma_start, const struct pfs_layout *lo)
{
	char *p = pfs_buf_reserve(b, entry_bound(&r->first, lo) + 64);
	if (!p)
		return;
	char *p0 = p;
	struct spans sp;
	CL(p, "{\"type\":\"run\",");
	p = json_entry_body(p, &r->first, pid, vma_start, lo, &sp);
	CL(p, ",\"count\":");
	p += pfs_fmt_u64(p, r->count);
	CL(p, ",\"end\":");
	p = c_qhex(p, r->end);
	CL(p, "}\n");
	b->len += (size_t)(p - p0);
}

void pfs_json_vma(struct pfs_buf *b, const struct pfs_vma *v, int32_t pid,
		  const char *file)
{
	PUTL(b, "{\"type\":\"vma\",\"pid\":");
	pfs_buf_i64(b, pid);
	PUTL(b, ",\"start\":");
	pfs_buf_qhex(b, v->start);
	PUTL(b, ",\"end\":");
	pfs_buf_qhex(b, v->end);
	PUTL(b, ",\"flags\":");
	pfs_buf_qhex(b, v->vm_flags);
	PUTL(b, ",\"flag_names\":[");
	size_t nflags;
	const struct pfs_flag_name *flag = pfs_vma_flag_table(&nflags);
	int first = 1;
	for (size_t i = 0; i < nflags; i++) {
		if (!(v->vm_flags & flag[i].bit))
			continue;
		if (!first)
			pfs_buf_putc(b, ',');
		first = 0;
		pfs_buf_putc(b, '"');
		pfs_buf_puts(b, flag[i].name);
		pfs_buf_putc(b, '"');
	}
	PUTL(b, "],\"pgoff\":");
	pfs_buf_u64(b, v->pgoff);
	PUTL(b, ",\"file\":");
	if (file)
		pfs_buf_json_str(b, file);
	else
		PUTL(b, "null");
	PUTL(b, ",\"cow\":");
	put_bool(b, pfs_is_cow_mapping(v->vm_flags));
	PUTL(b, "}\n");
}

void pfs_changed_codes(struct pfs_buf *b, uint32_t codes, int as_json)
{
	int first = 1;
	for (uint32_t m = codes; m; m &= m - 1) {
		unsigned d = (unsigned)__builtin_ctz(m);
		if (!first)
			pfs_buf_putc(b, ',');
		first = 0;
		if (as_json)
			pfs_buf_json_str(b, pfs_diag_name(d));
		else
			pfs_buf_puts(b, pfs_diag_name(d));
	}
}

void pfs_json_changed(struct pfs_buf *b, int32_t pid, uint64_t vma_start, uint64_t addr,
		      uint64_t raw_before, uint64_t raw_after, int level, unsigned what,
		      uint32_t codes)
{
	pfs_buf_puts(b, "{\"type\":\"changed\",\"pid\":");
	pfs_buf_i64(b, pid);
	pfs_buf_puts(b, ",\"vma_start\":");
	pfs_buf_qhex(b, vma_start);
	pfs_buf_puts(b, ",\"addr\":");
	pfs_buf_qhex(b, addr);
	pfs_buf_puts(b, ",\"raw_before\":");
	pfs_buf_qhex(b, raw_before);
	pfs_buf_puts(b, ",\"raw_after\":");
	pfs_buf_qhex(b, raw_after);
	if (level >= 0) {
		pfs_buf_puts(b, ",\"level\":");
		pfs_buf_json_str(b, pfs_level_name((unsigned)level));
	}
	if (what) {
		pfs_buf_puts(b, ",\"what\":");
		pfs_buf_json_str(b, pfs_changed_name(what));
		pfs_buf_puts(b, ",\"codes\":[");
		pfs_changed_codes(b, codes, 1);
		pfs_buf_putc(b, ']');
	}
	pfs_buf_puts(b, "}\n");
}

