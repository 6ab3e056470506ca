// SPDX-License-Identifier: MIT
/*
 * Serialization of entries, runs and VMAs: JSON lines (docs/pfnscope.schema.json) and
 * an aligned human table.  Everything is appended into one buffer with
 * hand-written number formatting (no printf per field); in fd mode the
 * buffer is written out whenever it fills up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfnscope/json.h"
#include "pfnscope/summary.h"

/* ---------------------------------------------------------------- buffer */

int pfs_buf_init(struct pfs_buf *b, size_t cap, int fd)
{
	if (cap < 4096)
		cap = 4096;
	b->data = malloc(cap);
	b->len = 0;
	b->cap = b->data ? cap : 0;
	b->fd = fd;
	b->written = 0;
	pfs_error_clear(&b->error);
	return b->data ? 0 : pfs_error_set(&b->error, PFS_ENOMEM, "output buffer", 0);
}

void pfs_buf_fini(struct pfs_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int pfs_buf_flush(struct pfs_buf *b)
{
	size_t off = 0;

	if (b->fd < 0)
		return -(int)b->error.code;
	while (off < b->len) {
		ssize_t n = write(b->fd, b->data + off, b->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (!b->error.code) {
				pfs_error_set(&b->error, PFS_EOS, "output", 0);
				b->error.errnum = errno;
			}
			break;
		}
		off += (size_t)n;
	}
	b->written += off;
	b->len = 0;  /* on error the rest is dropped: error reports it */
	return -(int)b->error.code;
}

char *pfs_buf_reserve(struct pfs_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return b->data + b->len;
	if (b->fd >= 0) {
		pfs_buf_flush(b);
		if (b->cap - b->len >= n)
			return b->data + b->len;
	}
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d) {
		if (!b->error.code)
			pfs_error_set(&b->error, PFS_ENOMEM, "output buffer", 0);
		return NULL;
	}
	b->data = d;
	b->cap = cap;
	return b->data + b->len;
}

void pfs_buf_put(struct pfs_buf *b, const char *s, size_t n)
{
	char *p = pfs_buf_reserve(b, n);
	if (!p)
		return;
	memcpy(p, s, n);
	b->len += n;
}

void pfs_buf_puts(struct pfs_buf *b, const char *s)
{
	pfs_buf_put(b, s, strlen(s));
}

void pfs_buf_putc(struct pfs_buf *b, char c)
{
	char *p = pfs_buf_reserve(b, 1);
	if (!p)
		return;
	*p = c;
	b->len++;
}

/* literal strings: length known at compile time */
#define PUTL(b, lit) pfs_buf_put((b), (lit), sizeof(lit) - 1)

static size_t fmt_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

static size_t fmt_hex(char *out, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	int shift = 60;

	out[0] = '0';
	out[1] = 'x';
	while (shift > 0 && !((v >> shift) & 0xf))
		shift -= 4;
	size_t n = 2;
	for (; shift >= 0; shift -= 4)
		out[n++] = digits[(v >> shift) & 0xf];
	return n;
}

void pfs_buf_u64(struct pfs_buf *b, uint64_t v)
{
	char *p = pfs_buf_reserve(b, 20);
	if (p)
		b->len += fmt_u64(p, v);
}

void pfs_buf_i64(struct pfs_buf *b, int64_t v)
{
	char *p = pfs_buf_reserve(b, 21);
	if (!p)
		return;
	if (v < 0) {
		*p++ = '-';
		b->len++;
		b->len += fmt_u64(p, (uint64_t)0 - (uint64_t)v);
	} else {
		b->len += fmt_u64(p, (uint64_t)v);
	}
}

void pfs_buf_hex(struct pfs_buf *b, uint64_t v)
{
	char *p = pfs_buf_reserve(b, 18);
	if (p)
		b->len += fmt_hex(p, v);
}

/* "0x" + 16 digits, zero padded (table columns) */
static void buf_hex16(struct pfs_buf *b, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char *p = pfs_buf_reserve(b, 18);
	if (!p)
		return;
	p[0] = '0';
	p[1] = 'x';
	for (int i = 0; i < 16; i++)
		p[2 + i] = digits[(v >> (60 - 4 * i)) & 0xf];
	b->len += 18;
}

/* "0x1f" in quotes */
static void buf_qhex(struct pfs_buf *b, uint64_t v)
{
	char *p = pfs_buf_reserve(b, 20);
	if (!p)
		return;
	p[0] = '"';
	size_t n = 1 + fmt_hex(p + 1, v);
	p[n++] = '"';
	b->len += n;
}

void pfs_buf_json_str(struct pfs_buf *b, const char *s)
{
	static const char digits[] = "0123456789abcdef";

	pfs_buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			pfs_buf_put(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', digits[c >> 4], digits[c & 0xf] };
			pfs_buf_put(b, e, 6);
		} else {
			pfs_buf_putc(b, (char)c);
		}
	}
	pfs_buf_putc(b, '"');
}

void pfs_buf_pad(struct pfs_buf *b, size_t from, size_t width)
{
	size_t have = b->len - from;

	if (b->len < from)  /* flushed in between: cannot align, one space */
		have = width;
	size_t n = have < width ? width - have : 1;
	char *p = pfs_buf_reserve(b, n);
	if (!p)
		return;
	memset(p, ' ', n);
	b->len += n;
}

/* ---------------------------------------------------------------- names */

uint64_t pfs_level_size(unsigned level)
{
	switch (level) {
	case PFS_LEVEL_PTE: return 1ull << 12;
	case PFS_LEVEL_PMD: return 1ull << 21;
	case PFS_LEVEL_PUD: return 1ull << 30;
	case PFS_LEVEL_P4D: return 1ull << 39;
	default:            return 1ull << 48;
	}
}

const char *pfs_page_state_name(unsigned state)
{
	static const char *const names[] = { "none", "ok", "invalid", "unreadable" };
	return state < 4 ? names[state] : "?";
}

static const struct pfs_flag_name vm_flag_table[] = {
	{ PFS_VM_READ, "read" },           { PFS_VM_WRITE, "write" },
	{ PFS_VM_EXEC, "exec" },           { PFS_VM_SHARED, "shared" },
	{ PFS_VM_MAYREAD, "mayread" },     { PFS_VM_MAYWRITE, "maywrite" },
	{ PFS_VM_MAYEXEC, "mayexec" },     { PFS_VM_MAYSHARE, "mayshare" },
	{ PFS_VM_GROWSDOWN, "growsdown" }, { PFS_VM_UFFD_MISSING, "uffd_missing" },
	{ PFS_VM_PFNMAP, "pfnmap" },       { PFS_VM_UFFD_WP, "uffd_wp" },
	{ PFS_VM_LOCKED, "locked" },       { PFS_VM_IO, "io" },
	{ PFS_VM_SEQ_READ, "seqread" },    { PFS_VM_RAND_READ, "randread" },
	{ PFS_VM_DONTCOPY, "dontcopy" },   { PFS_VM_DONTEXPAND, "dontexpand" },
	{ PFS_VM_LOCKONFAULT, "lockonfault" }, { PFS_VM_ACCOUNT, "account" },
	{ PFS_VM_NORESERVE, "noreserve" }, { PFS_VM_HUGETLB, "hugetlb" },
	{ PFS_VM_SYNC, "sync" },           { PFS_VM_ARCH_1, "pat" },
	{ PFS_VM_WIPEONFORK, "wipeonfork" }, { PFS_VM_DONTDUMP, "dontdump" },
	{ PFS_VM_SOFTDIRTY, "softdirty" }, { PFS_VM_MIXEDMAP, "mixedmap" },
	{ PFS_VM_HUGEPAGE, "hugepage" },   { PFS_VM_NOHUGEPAGE, "nohugepage" },
	{ PFS_VM_MERGEABLE, "mergeable" },
};

const struct pfs_flag_name *pfs_vma_flag_table(size_t *n)
{
	*n = sizeof(vm_flag_table) / sizeof(vm_flag_table[0]);
	return vm_flag_table;
}

size_t pfs_vma_flag_names(uint64_t flags, const char **names, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(vm_flag_table) / sizeof(vm_flag_table[0]); i++) {
		if (!(flags & vm_flag_table[i].bit))
			continue;
		if (n < max)
			names[n] = vm_flag_table[i].name;
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------- JSON */

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
		return p + fmt_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return p + fmt_u64(p, (uint64_t)v);
}

static inline char *c_qhex(char *p, uint64_t v)
{
	*p++ = '"';
	p += fmt_hex(p, v);
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
		p += fmt_u64(p, e->pfn);
	CL(p, ",\"special\":");
	p = c_bool(p, e->bits & PFS_E_SPECIAL);
	CL(p, ",\"devmap\":");
	p = c_bool(p, e->bits & PFS_E_DEVMAP);
	CL(p, ",\"writable\":");
	p = c_bool(p, e->bits & PFS_E_WRITE);
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
		p += fmt_u64(p, pg->head_pfn);
		CL(p, ",\"order\":");
		p += fmt_u64(p, pg->order);
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
		p += fmt_u64(p, e->swp_type);
		CL(p, ",\"offset\":");
		p += fmt_u64(p, e->swp_offset);
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
	p += fmt_u64(p, r->count);
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
	buf_qhex(b, v->start);
	PUTL(b, ",\"end\":");
	buf_qhex(b, v->end);
	PUTL(b, ",\"flags\":");
	buf_qhex(b, v->vm_flags);
	PUTL(b, ",\"flag_names\":[");
	int first = 1;
	for (size_t i = 0; i < sizeof(vm_flag_table) / sizeof(vm_flag_table[0]); i++) {
		if (!(v->vm_flags & vm_flag_table[i].bit))
			continue;
		if (!first)
			pfs_buf_putc(b, ',');
		first = 0;
		pfs_buf_putc(b, '"');
		pfs_buf_puts(b, vm_flag_table[i].name);
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

/* ---------------------------------------------------------------- table */

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
	size_t s = b->len;

	PUTL(b, "ADDRESS");
	pfs_buf_pad(b, s, W_ADDR); s = b->len;
	if (summary) {
		PUTL(b, "END");
		pfs_buf_pad(b, s, W_ADDR); s = b->len;
		PUTL(b, "COUNT");
		pfs_buf_pad(b, s, W_COUNT); s = b->len;
	}
	PUTL(b, "LVL");
	pfs_buf_pad(b, s, W_LVL); s = b->len;
	PUTL(b, "RAW");
	pfs_buf_pad(b, s, W_RAW); s = b->len;
	PUTL(b, "KIND");
	pfs_buf_pad(b, s, W_KIND); s = b->len;
	PUTL(b, "PFN");
	pfs_buf_pad(b, s, W_PFN); s = b->len;
	PUTL(b, "SPC");
	pfs_buf_pad(b, s, W_SPC); s = b->len;
	PUTL(b, "VNP");
	pfs_buf_pad(b, s, W_VNP); s = b->len;
	PUTL(b, "VNP_REASON");
	pfs_buf_pad(b, s, W_WHY); s = b->len;
	PUTL(b, "RC/MC");
	pfs_buf_pad(b, s, W_RCMC); s = b->len;
	PUTL(b, "PAGE_FLAGS");
	pfs_buf_pad(b, s, W_FLAGS);
	PUTL(b, "DIAGNOSES");
}

static void table_cols(struct pfs_buf *b, const struct pfs_entry *e,
		       const struct pfs_layout *lo, size_t s)
{
	pfs_buf_puts(b, pfs_level_name(e->level));
	pfs_buf_pad(b, s, W_LVL); s = b->len;
	buf_hex16(b, e->raw);
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
	buf_hex16(b, e->addr);
	pfs_buf_pad(b, s, W_ADDR);
	table_cols(b, e, lo, b->len);
}

void pfs_table_run(struct pfs_buf *b, const struct pfs_run *r,
		   const struct pfs_layout *lo)
{
	pfs_buf_reserve(b, LINE_RESERVE);
	size_t s = b->len;
	buf_hex16(b, r->first.addr);
	pfs_buf_pad(b, s, W_ADDR); s = b->len;
	buf_hex16(b, r->end);
	pfs_buf_pad(b, s, W_ADDR); s = b->len;
	pfs_buf_u64(b, r->count);
	pfs_buf_pad(b, s, W_COUNT);
	table_cols(b, &r->first, lo, b->len);
}

static void changed_codes(struct pfs_buf *b, uint32_t codes, int as_json)
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
	buf_qhex(b, vma_start);
	pfs_buf_puts(b, ",\"addr\":");
	buf_qhex(b, addr);
	pfs_buf_puts(b, ",\"raw_before\":");
	buf_qhex(b, raw_before);
	pfs_buf_puts(b, ",\"raw_after\":");
	buf_qhex(b, raw_after);
	if (level >= 0) {
		pfs_buf_puts(b, ",\"level\":");
		pfs_buf_json_str(b, pfs_level_name((unsigned)level));
	}
	if (what) {
		pfs_buf_puts(b, ",\"what\":");
		pfs_buf_json_str(b, pfs_changed_name(what));
		pfs_buf_puts(b, ",\"codes\":[");
		changed_codes(b, codes, 1);
		pfs_buf_putc(b, ']');
	}
	pfs_buf_puts(b, "}\n");
}

void pfs_table_changed(struct pfs_buf *b, uint64_t addr, uint64_t raw_before, uint64_t raw_after,
		       int level, unsigned what, uint32_t codes)
{
	pfs_buf_puts(b, "# changed during the walk: ");
	buf_hex16(b, addr);
	pfs_buf_puts(b, " raw ");
	buf_hex16(b, raw_before);
	pfs_buf_puts(b, " -> ");
	buf_hex16(b, raw_after);
	if (what) {
		pfs_buf_puts(b, " (");
		if (level >= 0) {
			pfs_buf_puts(b, pfs_level_name((unsigned)level));
			pfs_buf_putc(b, ' ');
		}
		pfs_buf_puts(b, pfs_changed_name(what));
		pfs_buf_puts(b, " changed; not confirmed: ");
		changed_codes(b, codes, 0);
		pfs_buf_putc(b, ')');
	}
	pfs_buf_putc(b, '\n');
}
