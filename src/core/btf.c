/* A reader of the kernel's BTF (include/uapi/linux/btf.h, the format that
 * kernel/bpf/btf.c btf_parse_vmlinux() reads at boot): the header, the type
 * records (one per id, from 1) and the string section.  Only what a layout
 * needs: names -> ids, sizes, member offsets, array lengths, enumerators.
 */
#include "pfnscope/btf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BTF_MAGIC 0xeB9F
#define BTF_HDR_MIN 24

struct pfs_btf {
	uint8_t *data;
	const uint8_t *types;
	const char *strs;
	uint32_t types_len, str_len;
	uint32_t n;          /* ids 0..n-1 (0 is void) */
	uint32_t *off;       /* record offset in types, by id */
	uint32_t *hash;      /* open addressing over named ids, 0 = empty */
	uint32_t hmask;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static const uint8_t *rec(const struct pfs_btf *b, uint32_t id)
{
	return id && id < b->n ? b->types + b->off[id] : NULL;
}

static uint32_t info_of(const uint8_t *t) { return rd32(t + 4); }
static int kind_of(const uint8_t *t) { return (info_of(t) >> 24) & 0x1f; }
static uint32_t vlen_of(const uint8_t *t) { return info_of(t) & 0xffff; }
static int kflag_of(const uint8_t *t) { return info_of(t) >> 31; }

static const char *name_at(const struct pfs_btf *b, uint32_t off)
{
	return off < b->str_len ? b->strs + off : "";
}

/* size of the record of kind with vlen entries; 0 for an unknown kind */
static size_t rec_size(int kind, uint32_t vlen)
{
	switch (kind) {
	case PFS_BTF_INT: case PFS_BTF_VAR: case PFS_BTF_DECL_TAG:
		return 16;
	case PFS_BTF_PTR: case PFS_BTF_FWD: case PFS_BTF_TYPEDEF: case PFS_BTF_VOLATILE:
	case PFS_BTF_CONST: case PFS_BTF_RESTRICT: case PFS_BTF_FUNC: case PFS_BTF_FLOAT:
	case PFS_BTF_TYPE_TAG:
		return 12;
	case PFS_BTF_ARRAY:
		return 24;
	case PFS_BTF_STRUCT: case PFS_BTF_UNION: case PFS_BTF_DATASEC: case PFS_BTF_ENUM64:
		return 12 + 12 * (size_t)vlen;
	case PFS_BTF_ENUM: case PFS_BTF_FUNC_PROTO:
		return 12 + 8 * (size_t)vlen;
	}
	return 0;
}

/* name classes: "struct X", "union X", "enum X" and the ordinary namespace */
enum { NS_ORD, NS_STRUCT, NS_UNION, NS_ENUM, NS_FUNC };

static int ns_of(const uint8_t *t)
{
	switch (kind_of(t)) {
	case PFS_BTF_STRUCT: return NS_STRUCT;
	case PFS_BTF_UNION: return NS_UNION;
	case PFS_BTF_FWD: return kflag_of(t) ? NS_UNION : NS_STRUCT;
	case PFS_BTF_ENUM: case PFS_BTF_ENUM64: return NS_ENUM;
	case PFS_BTF_TYPEDEF: case PFS_BTF_INT: case PFS_BTF_FLOAT: return NS_ORD;
	case PFS_BTF_FUNC: return NS_FUNC;
	}
	return -1;
}

static uint32_t hash_name(int ns, const char *s, size_t len)
{
	uint32_t h = 2166136261u ^ (uint32_t)ns;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

struct pfs_btf *pfs_btf_new(const void *data, size_t size, char *err, size_t errlen)
{
	const uint8_t *d = data;
	if (size < BTF_HDR_MIN) {
		seterr(err, errlen, "BTF: %zu bytes, shorter than its header", size);
		return NULL;
	}
	uint16_t magic;
	memcpy(&magic, d, 2);
	if (magic != BTF_MAGIC) {
		seterr(err, errlen, "BTF: bad magic %#x (not BTF, or another byte order)", magic);
		return NULL;
	}
	if (d[2] != 1) {
		seterr(err, errlen, "BTF: version %u (only 1 is known)", d[2]);
		return NULL;
	}
	uint32_t hdr_len = rd32(d + 4), type_off = rd32(d + 8), type_len = rd32(d + 12);
	uint32_t str_off = rd32(d + 16), str_len = rd32(d + 20);
	if (hdr_len < BTF_HDR_MIN || hdr_len > size ||
	    (uint64_t)hdr_len + type_off + type_len > size ||
	    (uint64_t)hdr_len + str_off + str_len > size || type_off % 4) {
		seterr(err, errlen, "BTF: sections past the end of the %zu-byte blob", size);
		return NULL;
	}
	struct pfs_btf *b = calloc(1, sizeof(*b));
	if (!b || !(b->data = malloc(size))) {
		free(b);
		seterr(err, errlen, "BTF: out of memory");
		return NULL;
	}
	memcpy(b->data, d, size);
	b->types = b->data + hdr_len + type_off;
	b->types_len = type_len;
	b->strs = (const char *)b->data + hdr_len + str_off;
	b->str_len = str_len;
	if (str_len && b->strs[str_len - 1] != 0) {
		seterr(err, errlen, "BTF: string section not NUL-terminated");
		goto fail;
	}
	/* count and index the records */
	uint32_t cap = 1024, n = 1;
	b->off = malloc(cap * sizeof(uint32_t));
	if (!b->off)
		goto oom;
	b->off[0] = 0;
	for (size_t pos = 0; pos < type_len;) {
		if (type_len - pos < 12) {
			seterr(err, errlen, "BTF: truncated type record at %zu", pos);
			goto fail;
		}
		const uint8_t *t = b->types + pos;
		size_t rs = rec_size(kind_of(t), vlen_of(t));
		if (!rs) {
			seterr(err, errlen, "BTF: type %u has unknown kind %d", n, kind_of(t));
			goto fail;
		}
		if (rs > type_len - pos) {
			seterr(err, errlen, "BTF: type %u runs past the type section", n);
			goto fail;
		}
		if (n == cap) {
			uint32_t *o = realloc(b->off, 2 * cap * sizeof(uint32_t));
			if (!o)
				goto oom;
			b->off = o;
			cap *= 2;
		}
		b->off[n++] = (uint32_t)pos;
		pos += rs;
	}
	b->n = n;
	/* name hash: at most half full */
	uint32_t hs = 1;
	while (hs < 2 * n)
		hs <<= 1;
	b->hash = calloc(hs, sizeof(uint32_t));
	if (!b->hash)
		goto oom;
	b->hmask = hs - 1;
	for (uint32_t id = 1; id < n; id++) {
		const uint8_t *t = rec(b, id);
		int ns = ns_of(t);
		const char *nm = name_at(b, rd32(t));
		if (ns < 0 || !*nm)
			continue;
		uint32_t h = hash_name(ns, nm, strlen(nm)) & b->hmask;
		while (b->hash[h])
			h = (h + 1) & b->hmask;
		b->hash[h] = id;
	}
	return b;
oom:
	seterr(err, errlen, "BTF: out of memory");
fail:
	pfs_btf_free(b);
	return NULL;
}

void pfs_btf_free(struct pfs_btf *b)
{
	if (!b)
		return;
	free(b->hash);
	free(b->off);
	free(b->data);
	free(b);
}

uint32_t pfs_btf_nr_types(const struct pfs_btf *b)
{
	return b->n;
}

static uint32_t find_ns(const struct pfs_btf *b, int ns, const char *cname)
{
	size_t len = strlen(cname);
	uint32_t h = hash_name(ns, cname, len) & b->hmask, fwd = 0;
	for (uint32_t id; (id = b->hash[h]); h = (h + 1) & b->hmask) {
		const uint8_t *t = rec(b, id);
		if (ns_of(t) != ns || strcmp(name_at(b, rd32(t)), cname))
			continue;
		if (kind_of(t) != PFS_BTF_FWD)
			return id;
		if (!fwd)
			fwd = id;
	}
	return fwd;
}

uint32_t pfs_btf_find_func(const struct pfs_btf *b, const char *name)
{
	return find_ns(b, NS_FUNC, name);
}

uint32_t pfs_btf_find(const struct pfs_btf *b, const char *cname)
{
	int ns = NS_ORD;
	static const struct { const char *kw; int ns; } kws[] = {
		{"struct ", NS_STRUCT}, {"union ", NS_UNION}, {"enum ", NS_ENUM},
	};
	for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
		size_t l = strlen(kws[i].kw);
		if (!strncmp(cname, kws[i].kw, l)) {
			ns = kws[i].ns;
			cname += l;
			break;
		}
	}
	return find_ns(b, ns, cname);
}

int pfs_btf_type_info(const struct pfs_btf *b, uint32_t id, int *kind, const char **name,
		      uint32_t *ref)
{
	const uint8_t *t = rec(b, id);
	if (!t)
		return -1;
	*kind = kind_of(t);
	*name = name_at(b, rd32(t));
	switch (*kind) {
	case PFS_BTF_PTR: case PFS_BTF_TYPEDEF: case PFS_BTF_VOLATILE: case PFS_BTF_CONST:
	case PFS_BTF_RESTRICT: case PFS_BTF_TYPE_TAG: case PFS_BTF_FUNC: case PFS_BTF_VAR:
	case PFS_BTF_FUNC_PROTO: case PFS_BTF_DECL_TAG:
		*ref = rd32(t + 8);
		break;
	case PFS_BTF_ARRAY:
		*ref = rd32(t + 12);
		break;
	default:
		*ref = 0;
	}
	return 0;
}

int pfs_btf_param_count(const struct pfs_btf *b, uint32_t id)
{
	const uint8_t *t = rec(b, id);
	if (t && kind_of(t) == PFS_BTF_FUNC)
		t = rec(b, rd32(t + 8));
	if (!t || kind_of(t) != PFS_BTF_FUNC_PROTO)
		return -1;
	return (int)vlen_of(t);
}

int pfs_btf_param(const struct pfs_btf *b, uint32_t id, int i, const char **name, uint32_t *type)
{
	int n = pfs_btf_param_count(b, id);
	if (n < 0 || i < 0 || i >= n)
		return -1;
	const uint8_t *t = rec(b, id);
	if (kind_of(t) == PFS_BTF_FUNC)
		t = rec(b, rd32(t + 8));
	const uint8_t *p = t + 12 + 8 * (size_t)i;
	*name = name_at(b, rd32(p));
	*type = rd32(p + 4);
	return 0;
}

int pfs_btf_kind(const struct pfs_btf *b, uint32_t id)
{
	const uint8_t *t = rec(b, id);
	return t ? kind_of(t) : 0;
}

uint32_t pfs_btf_resolve(const struct pfs_btf *b, uint32_t id)
{
	for (int depth = 0; depth < 64; depth++) {
		const uint8_t *t = rec(b, id);
		if (!t)
			return 0;
		switch (kind_of(t)) {
		case PFS_BTF_TYPEDEF: case PFS_BTF_VOLATILE: case PFS_BTF_CONST:
		case PFS_BTF_RESTRICT: case PFS_BTF_TYPE_TAG:
			id = rd32(t + 8);
			continue;
		}
		return id;
	}
	return 0;
}

static int64_t sizeof_depth(const struct pfs_btf *b, uint32_t id, int depth)
{
	if (depth > 32)
		return -1;
	id = pfs_btf_resolve(b, id);
	const uint8_t *t = rec(b, id);
	if (!t)
		return -1;
	switch (kind_of(t)) {
	case PFS_BTF_INT: case PFS_BTF_STRUCT: case PFS_BTF_UNION: case PFS_BTF_ENUM:
	case PFS_BTF_ENUM64: case PFS_BTF_FLOAT: case PFS_BTF_DATASEC:
		return rd32(t + 8);
	case PFS_BTF_PTR:
		return 8;  /* the 64-bit kernels pfnscope reads */
	case PFS_BTF_ARRAY: {
		int64_t es = sizeof_depth(b, rd32(t + 12), depth + 1), total;
		if (es < 0 || __builtin_mul_overflow(es, (int64_t)rd32(t + 20), &total))
			return -1;
		return total;
	}
	}
	return -1;
}

int64_t pfs_btf_sizeof(const struct pfs_btf *b, uint32_t id)
{
	return sizeof_depth(b, id, 0);
}

int64_t pfs_btf_array_len(const struct pfs_btf *b, uint32_t id)
{
	const uint8_t *t = rec(b, pfs_btf_resolve(b, id));
	if (!t || kind_of(t) != PFS_BTF_ARRAY)
		return -1;
	return rd32(t + 20);
}

/* One member lookup's bounds.  In C a struct cannot contain itself, and
 * an anonymous type searched without a match will not match later in the
 * same lookup (BTF dedup may share one anonymous type among members):
 * corrupt BTF whose anonymous members point back at shared or enclosing
 * types was searched exponentially often (the btf fuzz target: 17 s on a
 * 493-byte input).  The types searched in vain are skipped (the first 64),
 * and member visits are budgeted -- far above any kernel struct's. */
struct member_search {
	uint32_t miss[64];
	unsigned nmiss;
	uint32_t budget;
};

/* Member name[len] of struct/union sid, searching anonymous members depth
 * first in declaration order (as C and drgn.offsetof resolve them). */
static int find_member(const struct pfs_btf *b, uint32_t sid, const char *name, size_t len,
		       uint64_t *off, uint32_t *mtype, int depth, struct member_search *ms)
{
	const uint8_t *t = rec(b, sid);
	if (!t || depth > 16 || (kind_of(t) != PFS_BTF_STRUCT && kind_of(t) != PFS_BTF_UNION))
		return -1;
	for (unsigned i = 0; i < ms->nmiss; i++)
		if (ms->miss[i] == sid)
			return -1;
	int kflag = kflag_of(t);
	uint32_t vlen = vlen_of(t);
	for (uint32_t i = 0; i < vlen; i++) {
		if (!ms->budget)
			return -1;
		ms->budget--;
		const uint8_t *m = t + 12 + 12 * (size_t)i;
		uint32_t bits = rd32(m + 8);
		if (kflag)
			bits &= 0xffffff;  /* high byte: bitfield size */
		const char *mn = name_at(b, rd32(m));
		if (!*mn) {
			uint64_t sub;
			if (!find_member(b, pfs_btf_resolve(b, rd32(m + 4)), name, len, &sub, mtype,
					 depth + 1, ms)) {
				*off = bits / 8 + sub;
				return 0;
			}
		} else if (strlen(mn) == len && !memcmp(mn, name, len)) {
			*off = bits / 8;
			*mtype = rd32(m + 4);
			return 0;
		}
	}
	if (ms->nmiss < sizeof(ms->miss) / sizeof(ms->miss[0]))
		ms->miss[ms->nmiss++] = sid;
	return -1;
}

static int is_ident(char c, int first)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (!first && c >= '0' && c <= '9');
}

int pfs_btf_offsetof(const struct pfs_btf *b, uint32_t id, const char *path,
		     uint64_t *offset, uint32_t *member_type)
{
	uint64_t off = 0;
	uint32_t cur = id;
	const char *p = path;
	int want_ident = 1;
	if (!rec(b, id))
		return -1;
	while (*p) {
		if (*p == '[') {
			char *end;
			unsigned long long idx = strtoull(p + 1, &end, 0);
			if (end == p + 1 || *end != ']')
				return -1;
			const uint8_t *t = rec(b, pfs_btf_resolve(b, cur));
			if (!t || kind_of(t) != PFS_BTF_ARRAY)
				return -1;
			int64_t es = pfs_btf_sizeof(b, rd32(t + 12));
			if (es < 0)
				return -1;
			off += idx * (uint64_t)es;
			cur = rd32(t + 12);
			p = end + 1;
			want_ident = 0;
		} else if (*p == '.' && !want_ident) {
			p++;
			want_ident = 1;
		} else if (want_ident && is_ident(*p, 1)) {
			const char *s = p;
			while (is_ident(*p, 0))
				p++;
			uint64_t moff;
			uint32_t mt;
			struct member_search ms = { .nmiss = 0, .budget = 1u << 16 };
			if (find_member(b, pfs_btf_resolve(b, cur), s, (size_t)(p - s), &moff, &mt, 0, &ms))
				return -1;
			off += moff;
			cur = mt;
			want_ident = 0;
		} else {
			return -1;
		}
	}
	if (want_ident)
		return -1;
	*offset = off;
	if (member_type)
		*member_type = cur;
	return 0;
}

int pfs_btf_enum_count(const struct pfs_btf *b, uint32_t id)
{
	const uint8_t *t = rec(b, pfs_btf_resolve(b, id));
	if (!t || (kind_of(t) != PFS_BTF_ENUM && kind_of(t) != PFS_BTF_ENUM64))
		return -1;
	return (int)vlen_of(t);
}

int pfs_btf_enumerator(const struct pfs_btf *b, uint32_t id, int i, const char **name,
		       int64_t *value)
{
	const uint8_t *t = rec(b, pfs_btf_resolve(b, id));
	int n = pfs_btf_enum_count(b, id);
	if (n < 0 || i < 0 || i >= n)
		return -1;
	/* kind_flag: signed values (btf_type_kflag in the kernel, 6.0+); older
	 * BTF wrote the kernel's (non-negative in practice) values unflagged */
	if (kind_of(t) == PFS_BTF_ENUM) {
		const uint8_t *e = t + 12 + 8 * (size_t)i;
		uint32_t v = rd32(e + 4);
		*name = name_at(b, rd32(e));
		*value = kflag_of(t) ? (int64_t)(int32_t)v : (int64_t)v;
	} else {
		const uint8_t *e = t + 12 + 12 * (size_t)i;
		uint64_t v = (uint64_t)rd32(e + 8) << 32 | rd32(e + 4);
		*name = name_at(b, rd32(e));
		*value = (int64_t)v;
	}
	return 0;
}
