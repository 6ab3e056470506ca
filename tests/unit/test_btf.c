/* SPDX-License-Identifier: MIT */
/* The BTF reader (btf.c) on a hand-built blob: name lookup per namespace,
 * forward declarations, sizes through typedefs/qualifiers/arrays, member
 * paths through anonymous unions and array subscripts, bitfield offsets
 * (kind_flag), enum and enum64 values; malformed blobs are refused with a
 * message.  The kallsyms decoder (kallsyms.c) on a hand-built table, with
 * one- and two-byte name lengths. */
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "pfnscope/btf.h"
#include "pfnscope/kallsyms.h"

struct blob {
	uint8_t b[4096];
	size_t types, len;       /* type section start, end */
	char strs[512];
	size_t slen;
};

static void u32(struct blob *x, uint32_t v)
{
	memcpy(x->b + x->len, &v, 4);
	x->len += 4;
}

static uint32_t str(struct blob *x, const char *s)
{
	uint32_t off = (uint32_t)x->slen;
	memcpy(x->strs + x->slen, s, strlen(s) + 1);
	x->slen += strlen(s) + 1;
	return off;
}

static void type(struct blob *x, const char *name, int kind, int kflag, uint32_t vlen,
		 uint32_t size_or_type)
{
	u32(x, name ? str(x, name) : 0);
	u32(x, (uint32_t)kflag << 31 | (uint32_t)kind << 24 | vlen);
	u32(x, size_or_type);
}

static void member(struct blob *x, const char *name, uint32_t t, uint32_t bits)
{
	u32(x, name ? str(x, name) : 0);
	u32(x, t);
	u32(x, bits);
}

/* ids: 1 int, 2 unsigned long, 3 struct inner, 4 union (anon), 5 struct outer,
 * 6 array of 4 inner, 7 typedef outer_t, 8 const outer_t, 9 enum e,
 * 10 enum64 e64, 11 fwd struct outer, 12 ptr to 5, 13 struct bits (kflag) */
static size_t build(struct blob *x)
{
	memset(x, 0, sizeof(*x));
	x->slen = 1;                      /* "" at 0 */
	x->len = 24;                      /* header, filled below */
	x->types = x->len;
	type(x, "int", PFS_BTF_INT, 0, 0, 4);
	u32(x, 32);
	type(x, "unsigned long", PFS_BTF_INT, 0, 0, 8);
	u32(x, 64);
	type(x, "inner", PFS_BTF_STRUCT, 0, 2, 16);
	member(x, "a", 1, 0);
	member(x, "b", 2, 64);
	type(x, NULL, PFS_BTF_UNION, 0, 2, 16);
	member(x, "u_long", 2, 0);
	member(x, "u_inner", 3, 0);
	type(x, "outer", PFS_BTF_STRUCT, 0, 4, 96);
	member(x, "flags", 2, 0);
	member(x, NULL, 4, 64);           /* anonymous union at 8 */
	member(x, "arr", 6, 192);         /* at 24 */
	member(x, "p", 12, 88 * 8);       /* at 88 */
	type(x, NULL, PFS_BTF_ARRAY, 0, 0, 0);
	u32(x, 3);
	u32(x, 1);
	u32(x, 4);
	type(x, "outer_t", PFS_BTF_TYPEDEF, 0, 0, 5);
	type(x, NULL, PFS_BTF_CONST, 0, 0, 7);
	type(x, "e", PFS_BTF_ENUM, 1, 3, 4);
	u32(x, str(x, "E_A"));
	u32(x, 0);
	u32(x, str(x, "E_NEG"));
	u32(x, (uint32_t)-2);
	u32(x, str(x, "E_A"));            /* a duplicate name keeps both */
	u32(x, 7);
	type(x, "e64", PFS_BTF_ENUM64, 0, 1, 8);
	u32(x, str(x, "BIG"));
	u32(x, 0x1);
	u32(x, 0x2);
	type(x, "outer", PFS_BTF_FWD, 0, 0, 0);
	type(x, NULL, PFS_BTF_PTR, 0, 0, 5);
	type(x, "bits", PFS_BTF_STRUCT, 1, 2, 8);
	member(x, "lo", 1, 3u << 24 | 0);
	member(x, "hi", 1, 5u << 24 | 40);
	size_t type_len = x->len - x->types;
	memcpy(x->b + x->len, x->strs, x->slen);
	size_t str_off = type_len;
	x->len += x->slen;
	uint16_t magic = 0xeB9F;
	memcpy(x->b, &magic, 2);
	x->b[2] = 1;
	uint32_t hdr[5] = { 24, 0, (uint32_t)type_len, (uint32_t)str_off, (uint32_t)x->slen };
	memcpy(x->b + 4, hdr, sizeof(hdr));
	return x->len;
}

TEST(btf_lookup_sizes_offsets)
{
	static struct blob x;
	char err[128];
	size_t n = build(&x);
	struct pfs_btf *b = pfs_btf_new(x.b, n, err, sizeof(err));
	REQUIRE(b);
	CHECK_EQ(pfs_btf_nr_types(b), 14);
	uint32_t outer = pfs_btf_find(b, "struct outer");
	CHECK_EQ(outer, 5);             /* the definition, not the fwd (11) */
	CHECK_EQ(pfs_btf_find(b, "outer"), 0);        /* no typedef "outer" */
	CHECK_EQ(pfs_btf_find(b, "union outer"), 0);
	CHECK_EQ(pfs_btf_find(b, "outer_t"), 7);
	CHECK_EQ(pfs_btf_find(b, "enum e"), 9);
	CHECK_EQ(pfs_btf_find(b, "enum e64"), 10);
	CHECK_EQ(pfs_btf_find(b, "unsigned long"), 2);
	CHECK_EQ(pfs_btf_find(b, "struct nosuch"), 0);
	CHECK_EQ(pfs_btf_sizeof(b, outer), 96);
	CHECK_EQ(pfs_btf_sizeof(b, 8), 96);           /* const outer_t */
	CHECK_EQ(pfs_btf_sizeof(b, 6), 64);           /* inner[4] */
	CHECK_EQ(pfs_btf_sizeof(b, 12), 8);
	CHECK_EQ(pfs_btf_sizeof(b, 11), -1);          /* fwd has no size */
	CHECK_EQ(pfs_btf_resolve(b, 8), 5);

	uint64_t off;
	uint32_t mt;
	REQUIRE(!pfs_btf_offsetof(b, outer, "flags", &off, &mt));
	CHECK_EQ(off, 0);
	CHECK_EQ(mt, 2);
	REQUIRE(!pfs_btf_offsetof(b, outer, "u_long", &off, &mt));   /* in the anon union */
	CHECK_EQ(off, 8);
	REQUIRE(!pfs_btf_offsetof(b, outer, "u_inner.b", &off, &mt));
	CHECK_EQ(off, 16);
	REQUIRE(!pfs_btf_offsetof(b, 8, "arr[2].b", &off, &mt));     /* through const typedef */
	CHECK_EQ(off, 24 + 2 * 16 + 8);
	CHECK_EQ(mt, 2);
	REQUIRE(!pfs_btf_offsetof(b, outer, "arr", &off, &mt));
	CHECK_EQ(pfs_btf_array_len(b, mt), 4);
	CHECK_EQ(pfs_btf_array_len(b, 2), -1);
	REQUIRE(!pfs_btf_offsetof(b, outer, "p", &off, &mt));
	CHECK_EQ(off, 88);
	CHECK_EQ(pfs_btf_kind(b, mt), PFS_BTF_PTR);
	REQUIRE(!pfs_btf_offsetof(b, 13, "hi", &off, &mt));          /* kflag bitfield */
	CHECK_EQ(off, 5);
	CHECK(pfs_btf_offsetof(b, outer, "nosuch", &off, &mt));
	CHECK(pfs_btf_offsetof(b, outer, "flags.x", &off, &mt));     /* not a struct */
	CHECK(pfs_btf_offsetof(b, outer, "flags[1]", &off, &mt));    /* not an array */
	CHECK(pfs_btf_offsetof(b, outer, "arr[", &off, &mt));
	CHECK(pfs_btf_offsetof(b, outer, "arr.", &off, &mt));
	CHECK(pfs_btf_offsetof(b, outer, ".flags", &off, &mt));
	CHECK(pfs_btf_offsetof(b, outer, "", &off, &mt));
	CHECK(pfs_btf_offsetof(b, 999, "flags", &off, &mt));

	const char *name;
	int64_t v;
	CHECK_EQ(pfs_btf_enum_count(b, 9), 3);
	REQUIRE(!pfs_btf_enumerator(b, 9, 1, &name, &v));
	CHECK_STR(name, "E_NEG");
	CHECK_EQ(v, -2);                                /* kind_flag: signed */
	REQUIRE(!pfs_btf_enumerator(b, 10, 0, &name, &v));
	CHECK_STR(name, "BIG");
	CHECK_EQ(v, 0x200000001ull);
	CHECK(pfs_btf_enumerator(b, 9, 3, &name, &v));
	CHECK_EQ(pfs_btf_enum_count(b, 5), -1);
	pfs_btf_free(b);
}

/* Corrupt BTF whose anonymous members point back at their own struct, or
 * at types shared along a deep chain: the member search skips a type it
 * already searched in vain and is budgeted, so a lookup ends (before, 8
 * self-members and the depth bound of 16 meant 8^16 visits: the btf fuzz
 * target timed out on a 493-byte input); a name that is there is still
 * found first in declaration order through shared anonymous types. */
static size_t build_shared(struct blob *x)
{
	memset(x, 0, sizeof(*x));
	x->slen = 1;
	x->len = 24;
	x->types = x->len;
	type(x, "int", PFS_BTF_INT, 0, 0, 4);      /* 1 */
	u32(x, 32);
	type(x, "loop", PFS_BTF_STRUCT, 0, 8, 64); /* 2: 8 anonymous members of itself */
	for (int i = 0; i < 8; i++)
		member(x, NULL, 2, 0);
	/* 3..14: chain c_k with 8 anonymous members of c_{k+1}; 15 holds "x" at 4 */
	for (uint32_t k = 3; k <= 14; k++) {
		type(x, NULL, PFS_BTF_STRUCT, 0, 8, 64);
		for (int i = 0; i < 8; i++)
			member(x, NULL, k + 1, (uint32_t)i * 64);
	}
	type(x, NULL, PFS_BTF_STRUCT, 0, 2, 8);    /* 15 */
	member(x, "y", 1, 0);
	member(x, "x", 1, 32);
	type(x, "top", PFS_BTF_STRUCT, 0, 1, 64);  /* 16 */
	member(x, NULL, 3, 0);
	size_t type_len = x->len - x->types;
	memcpy(x->b + x->len, x->strs, x->slen);
	x->len += x->slen;
	uint16_t magic = 0xeB9F;
	memcpy(x->b, &magic, 2);
	x->b[2] = 1;
	uint32_t hdr[5] = { 24, 0, (uint32_t)type_len, (uint32_t)type_len, (uint32_t)x->slen };
	memcpy(x->b + 4, hdr, sizeof(hdr));
	return x->len;
}

TEST(btf_member_search_bounded)
{
	static struct blob x;
	char err[128];
	size_t n = build_shared(&x);
	struct pfs_btf *b = pfs_btf_new(x.b, n, err, sizeof(err));
	REQUIRE(b);
	uint64_t off = 1;
	uint32_t mt = 0;
	CHECK_EQ(pfs_btf_offsetof(b, pfs_btf_find(b, "struct loop"), "nosuch", &off, &mt), -1);
	CHECK_EQ(pfs_btf_offsetof(b, pfs_btf_find(b, "struct top"), "nosuch", &off, &mt), -1);
	/* found through 12 shared levels, each the first member: offset 4 */
	CHECK_EQ(pfs_btf_offsetof(b, pfs_btf_find(b, "struct top"), "x", &off, &mt), 0);
	CHECK_EQ(off, 4);
	CHECK_EQ(mt, 1);
	pfs_btf_free(b);
}

TEST(btf_malformed)
{
	static struct blob x;
	char err[128];
	size_t n = build(&x);
	CHECK(!pfs_btf_new(x.b, 10, err, sizeof(err)));
	CHECK(strstr(err, "shorter"));
	for (size_t cut = 25; cut < n; cut += 7) {      /* every truncation refused */
		CHECK(!pfs_btf_new(x.b, cut, err, sizeof(err)));
	}
	static struct blob y;
	memcpy(&y, &x, sizeof(y));
	y.b[0] ^= 1;
	CHECK(!pfs_btf_new(y.b, n, err, sizeof(err)));
	CHECK(strstr(err, "magic"));
	memcpy(&y, &x, sizeof(y));
	y.b[24 + 7] = 31;                               /* type 1: kind 31 */
	CHECK(!pfs_btf_new(y.b, n, err, sizeof(err)));
	CHECK(strstr(err, "unknown kind"));
	memcpy(&y, &x, sizeof(y));
	y.b[24 + 4] = 0xff;                             /* type 1: vlen past the end */
	y.b[24 + 5] = 0xff;
	y.b[24 + 7] = PFS_BTF_STRUCT;
	CHECK(!pfs_btf_new(y.b, n, err, sizeof(err)));
	memcpy(&y, &x, sizeof(y));
	y.b[n - 1] = 'x';                               /* strings not terminated */
	CHECK(!pfs_btf_new(y.b, n, err, sizeof(err)));
	/* a typedef loop resolves to nothing instead of hanging */
	memcpy(&y, &x, sizeof(y));
	uint32_t self = 7;
	/* type 7 (typedef) at 24 + 16 + 16 + 36 + 36 + 60 + 24, its type at +8 */
	memcpy(y.b + 24 + 16 + 16 + 36 + 36 + 60 + 24 + 8, &self, 4);
	struct pfs_btf *b = pfs_btf_new(y.b, n, err, sizeof(err));
	REQUIRE(b);
	CHECK_EQ(pfs_btf_resolve(b, 7), 0);
	CHECK_EQ(pfs_btf_sizeof(b, 7), -1);
	pfs_btf_free(b);
}

struct hits { uint32_t idx[4]; char type[4]; int n[4]; };

static void on_hit(void *ctx, size_t w, uint32_t index, char type)
{
	struct hits *h = ctx;
	h->idx[w] = index;
	h->type[w] = type;
	h->n[w]++;
}

TEST(kallsyms_decode)
{
	/* tokens: 0 "T", 1 "init_", 2 "task", 3 "d", 4 "x", 5 "D" */
	static const char table[] = "T\0init_\0task\0d\0x\0D";
	uint16_t index[256] = { 0 };
	index[0] = 0; index[1] = 2; index[2] = 8; index[3] = 13; index[4] = 15; index[5] = 17;
	/* symbols: "Tinit_task", "dx", a long one "d" + 130 x "x", "Dinit_task" */
	static uint8_t names[512];
	size_t p = 0;
	names[p++] = 3; names[p++] = 0; names[p++] = 1; names[p++] = 2;
	names[p++] = 2; names[p++] = 3; names[p++] = 4;
	names[p++] = 0x80 | (131 & 0x7f); names[p++] = 131 >> 7; names[p++] = 3;
	for (int i = 0; i < 130; i++)
		names[p++] = 4;
	names[p++] = 3; names[p++] = 5; names[p++] = 1; names[p++] = 2;
	struct pfs_kallsyms_tables t = { names, p, 4, table, sizeof(table), index, 1 };
	const char *wanted[] = { "init_task", "x", "nosuch" };
	struct hits h;
	memset(&h, 0, sizeof(h));
	CHECK_EQ(pfs_kallsyms_find(&t, wanted, 3, on_hit, &h), p);
	CHECK_EQ(h.n[0], 2);           /* both, in order: the last one reported last */
	CHECK_EQ(h.idx[0], 3);
	CHECK_EQ(h.type[0], 'D');
	CHECK_EQ(h.n[1], 1);
	CHECK_EQ(h.idx[1], 1);
	CHECK_EQ(h.type[1], 'd');
	CHECK_EQ(h.n[2], 0);
	/* read as one-byte lengths (before v6.1), 0x83 is a 131-token name that
	 * swallows the next one: the last init_task is lost */
	t.long_names = 0;
	memset(&h, 0, sizeof(h));
	pfs_kallsyms_find(&t, wanted, 3, on_hit, &h);
	CHECK_EQ(h.n[0], 1);
	t.long_names = 1;
	t.names_len = p - 1;           /* the last name cut */
	CHECK_EQ(pfs_kallsyms_find(&t, wanted, 3, on_hit, &h), -1);
	t.names_len = p;
	index[4] = 500;                /* a token outside the table */
	CHECK_EQ(pfs_kallsyms_find(&t, wanted, 3, on_hit, &h), -1);
}
