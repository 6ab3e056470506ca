// SPDX-License-Identifier: MIT
/*
 * Entries, runs, VMAs and changed entries as JSON lines
 * (docs/pfnscope.schema.json), appended into a struct pfs_buf.
 */
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

/* Everything of an entry object after the leading '{' and before the
 * closing '}': shared by entry and run objects.  p has entry_bound room. */
static char *json_entry_body(char *p, const struct pfs_entry *e, int32_t pid,
			     uint64_t vma_start, const struct pfs_layout *lo)
{
	CL(p, "\"pid\":");
	p = c_i64(p, pid);
	CL(p, ",\"vma_start\":");
	p = c_qhex(p, vma_start);
	CL(p, ",\"addr\":");
	p = c_qhex(p, e->addr);
	CL(p, ",\"level\":\"");
	p = c_str(p, pfs_level_name(e->level));
	CL(p, "\",\"raw\":");
	p = c_qhex(p, e->raw);
	CL(p, ",\"kind\":\"");
	p = c_str(p, pfs_kind_name(e->kind));
	CL(p, "\",\"pfn\":");
	if (e->pfn == PFS_NO_PFN)
		CL(p, "null");
	else
		p += pfs_fmt_u64(p, e->pfn);
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
		p += pfs_fmt_u64(p, pg->head_pfn);
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

void pfs_json_entry(struct pfs_buf *b, const struct pfs_entry *e, int32_t pid,
		    uint64_t vma_start, const struct pfs_layout *lo)
{
	char *p = pfs_buf_reserve(b, entry_bound(e, lo));
	if (!p)
		return;
	char *p0 = p;
	CL(p, "{\"type\":\"entry\",");
	p = json_entry_body(p, e, pid, vma_start, lo);
	CL(p, "}\n");
	b->len += (size_t)(p - p0);
}

void pfs_json_run(struct pfs_buf *b, const struct pfs_run *r, int32_t pid,
		  uint64_t vma_start, const struct pfs_layout *lo)
{
	char *p = pfs_buf_reserve(b, entry_bound(&r->first, lo) + 64);
	if (!p)
		return;
	char *p0 = p;
	CL(p, "{\"type\":\"run\",");
	p = json_entry_body(p, &r->first, pid, vma_start, lo);
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

