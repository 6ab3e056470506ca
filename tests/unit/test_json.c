/* SPDX-License-Identifier: MIT */
/* Serializers (json.c) and run-length summaries (summary.c) on hand-made
 * entries: exact JSON bytes, number formatting, escaping, buffer growth and
 * fd flushing, run merging rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "runner.h"
#include "pfnscope/json.h"
#include "pfnscope/summary.h"

static struct pfs_entry mk(uint64_t addr, uint64_t pfn)
{
	struct pfs_entry e;
	memset(&e, 0, sizeof(e));
	e.addr = addr;
	e.pfn = pfn;
	e.raw = (pfn << 12) | 0x67;
	e.level = PFS_LEVEL_PTE;
	e.kind = PFS_KIND_PRESENT;
	e.bits = PFS_E_WRITE;
	e.normal_page = 1;
	e.vnp_reason = PFS_VNP_NOT_SPECIAL;
	e.page.state = PFS_PAGE_OK;
	e.page.refcount = 1;
	e.page.mapcount = 1;
	e.page.head_pfn = pfn;
	e.page.flags = (1ull << 3) | (1ull << 5) | (1ull << 40);  /* named, named, zone bits */
	e.page.bits = PFS_PG_ANON;
	return e;
}

static struct pfs_layout names_lo(void)
{
	struct pfs_layout lo;
	memset(&lo, 0, sizeof(lo));
	lo.pageflag_names[3] = "dirty";
	lo.pageflag_names[5] = "lru";
	return lo;
}

TEST(json_entry_exact)
{
	struct pfs_layout lo = names_lo();
	struct pfs_buf b;
	struct pfs_entry e = mk(0x7f0000001000ull, 0x1234);
	e.diag = (1u << PFS_D_BAD_SPECIAL) | (1u << PFS_D_PFNMAP_WITHOUT_IO);
	REQUIRE(pfs_buf_init(&b, 0, -1) == 0);
	pfs_json_entry(&b, &e, -1, 0x7f0000000000ull, &lo);
	pfs_buf_putc(&b, 0);
	const char *want =
		"{\"type\":\"entry\",\"pid\":-1,\"vma_start\":\"0x7f0000000000\",\"addr\":\"0x7f0000001000\","
		"\"level\":\"pte\",\"raw\":\"0x1234067\",\"kind\":\"present\",\"pfn\":4660,\"special\":false,"
		"\"devmap\":false,\"writable\":true,\"normal_page\":true,\"vnp_reason\":\"not_special\","
		"\"page_state\":\"ok\",\"page\":{\"refcount\":1,\"mapcount\":1,\"flags\":[\"dirty\",\"lru\"],"
		"\"anon\":true,\"reserved\":false,\"head_pfn\":4660,\"order\":0,\"page_refcount\":0,"
		"\"page_mapcount\":0,\"ksm\":false,\"free\":false,\"zero\":false,\"zone_device\":false,"
		"\"slab\":false,\"pgtable\":false},\"swap\":null,\"consumers\":{\"gup_fast\":\"n/a\","
		"\"gup\":\"n/a\",\"follow_pte\":\"n/a\",\"kvm\":\"n/a\",\"vfio\":\"n/a\","
		"\"access_process_vm\":\"n/a\"},\"diagnoses\":[{\"code\":\"BAD_SPECIAL\",\"severity\":"
		"\"critical\"},{\"code\":\"PFNMAP_WITHOUT_IO\",\"severity\":\"low\"}]}\n";
	CHECK_STR(b.data, want);
	pfs_buf_fini(&b);
}

/* One buffer writing a stream of entries (the memo of the last line raising
 * numbers in place, with carries into new digits, back to smaller numbers,
 * other fields changing) writes exactly what a fresh buffer writes for each. */
TEST(json_entry_memo_writes_what_a_fresh_buffer_writes)
{
	struct pfs_layout lo = names_lo();
	struct pfs_buf b;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	uint64_t addr = 0xffe000ull, pfn = 9990, head = 9990;
	unsigned mismatches = 0, n = 0, addr_grew = 0, pfn_grew = 0;

	REQUIRE(pfs_buf_init(&b, 0, -1) == 0);
	for (unsigned i = 0; i < 2400; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned r = (unsigned)(seed >> 33);
		struct pfs_entry e = mk(addr, pfn);
		e.page.head_pfn = head;
		switch (r % 16) {
		case 0: e.page.refcount = 2; break;
		case 1: e.kind = PFS_KIND_SWAP; e.pfn = PFS_NO_PFN; e.page.state = PFS_PAGE_NONE;
			e.swp_type = 1; e.swp_offset = i / 4; break;
		case 2: e.pfn = PFS_NO_PFN; e.page.state = PFS_PAGE_NONE; break;
		case 3: e.diag = 1u << PFS_D_BAD_SPECIAL; break;
		case 4: e.consumers[0] = 1; break;
		default: break;
		}
		size_t before = b.len;
		pfs_json_entry(&b, &e, (int32_t)(i / 600), 0x1000, &lo);
		struct pfs_buf f;
		REQUIRE(pfs_buf_init(&f, 0, -1) == 0);
		pfs_json_entry(&f, &e, (int32_t)(i / 600), 0x1000, &lo);
		if (b.len - before != f.len || memcmp(b.data + before, f.data, f.len) != 0)
			mismatches++;
		pfs_buf_fini(&f);
		n++;
		/* mostly the next page; now and then a 2 MiB step, a THP
		 * (head kept), or back to a lower address */
		if (r % 97 == 0) {
			addr = 0xff000ull + (r % 5) * 0x1000;
			pfn = 99 + r % 3;
		} else {
			addr += (r % 13 == 0) ? 0x200000 : 0x1000;
			pfn += (r % 11 == 0) ? 1000 : 1;
		}
		head = (r % 7 == 0) ? head : pfn;
		/* a digit more than the line before */
		addr_grew += 64 - __builtin_clzll(addr) > 64 - __builtin_clzll(e.addr) &&
			     (64 - __builtin_clzll(addr)) % 4 == 1;
		char d0[24], d1[24];
		pfn_grew += snprintf(d1, sizeof(d1), "%llu", (unsigned long long)pfn) >
			    snprintf(d0, sizeof(d0), "%llu", (unsigned long long)e.pfn) &&
			    e.pfn != PFS_NO_PFN;
	}
	CHECK_EQ(mismatches, 0);
	CHECK_EQ(n, 2400);
	/* the stream did carry into new digits */
	CHECK(addr_grew > 0);
	CHECK(pfn_grew > 0);
	pfs_buf_fini(&b);
}

TEST(json_entry_uffd_wp_and_cont_only_when_set)
{
	struct pfs_layout lo = names_lo();
	struct pfs_buf b;
	struct pfs_entry e = mk(0x7f0000001000ull, 0x1234);
	REQUIRE(pfs_buf_init(&b, 0, -1) == 0);
	e.bits |= PFS_E_UFFD_WP | PFS_E_CONT;
	pfs_json_entry(&b, &e, -1, 0x7f0000000000ull, &lo);
	e.bits &= ~(PFS_E_UFFD_WP | PFS_E_CONT);
	pfs_json_entry(&b, &e, -1, 0x7f0000000000ull, &lo);
	pfs_buf_putc(&b, 0);
	const char *second = strchr(b.data, '\n');
	REQUIRE(second != NULL);
	CHECK(strstr(b.data, "\"writable\":true,\"uffd_wp\":true,\"cont\":true,\"normal_page\"") != NULL);
	CHECK(strstr(second, "uffd_wp") == NULL);
	CHECK(strstr(second, "\"cont\"") == NULL);
	pfs_buf_fini(&b);
}

TEST(json_numbers_and_escapes)
{
	struct pfs_buf b;
	REQUIRE(pfs_buf_init(&b, 0, -1) == 0);
	pfs_buf_u64(&b, 0); pfs_buf_putc(&b, ' ');
	pfs_buf_u64(&b, UINT64_MAX); pfs_buf_putc(&b, ' ');
	pfs_buf_i64(&b, INT64_MIN); pfs_buf_putc(&b, ' ');
	pfs_buf_hex(&b, 0); pfs_buf_putc(&b, ' ');
	pfs_buf_hex(&b, UINT64_MAX); pfs_buf_putc(&b, ' ');
	pfs_buf_json_str(&b, "a\"b\\c\n\x01\x7f\xc3\xa9");
	pfs_buf_putc(&b, 0);
	CHECK_STR(b.data, "0 18446744073709551615 -9223372036854775808 0x0 0xffffffffffffffff "
		  "\"a\\\"b\\\\c\\u000a\\u0001\\u007f\xc3\xa9\"");
	pfs_buf_fini(&b);
}

TEST(json_vma_and_none_entry)
{
	struct pfs_buf b;
	struct pfs_vma v;
	memset(&v, 0, sizeof(v));
	v.start = 0x1000;
	v.end = 0x5000;
	v.vm_flags = PFS_VM_READ | PFS_VM_MAYWRITE | PFS_VM_PFNMAP | PFS_VM_IO;
	v.pgoff = 9;
	REQUIRE(pfs_buf_init(&b, 0, -1) == 0);
	pfs_json_vma(&b, &v, 3, "/dev/mem");
	pfs_buf_putc(&b, 0);
	CHECK_STR(b.data, "{\"type\":\"vma\",\"pid\":3,\"start\":\"0x1000\",\"end\":\"0x5000\","
		  "\"flags\":\"0x4421\",\"flag_names\":[\"read\",\"maywrite\",\"pfnmap\",\"io\"],"
		  "\"pgoff\":9,\"file\":\"/dev/mem\",\"cow\":true}\n");
	b.len = 0;
	struct pfs_entry e = mk(0x2000, PFS_NO_PFN);
	e.kind = PFS_KIND_SWAP;
	e.normal_page = 0;
	e.vnp_reason = PFS_VNP_NOT_PRESENT;
	e.page.state = PFS_PAGE_NONE;
	e.swp_type = 1;
	e.swp_offset = 77;
	pfs_json_entry(&b, &e, 3, 0x1000, NULL);
	pfs_buf_putc(&b, 0);
	CHECK(strstr(b.data, "\"pfn\":null,") != NULL);
	CHECK(strstr(b.data, "\"page\":null,\"swap\":{\"type\":1,\"offset\":77},") != NULL);
	pfs_buf_fini(&b);
}

struct runs { struct pfs_run r[16]; int n; };
static int collect(const struct pfs_run *r, void *arg)
{
	struct runs *rs = arg;
	if (rs->n < 16)
		rs->r[rs->n++] = *r;
	return 0;
}

TEST(summary_merging)
{
	struct runs rs = { .n = 0 };
	struct pfs_summary s;
	pfs_summary_init(&s, collect, &rs);
	/* 3 contiguous */
	for (int i = 0; i < 3; i++) {
		struct pfs_entry e = mk(0x10000 + i * 4096, 100 + i);
		pfs_summary_add(&s, &e);
	}
	/* pfn jump -> new run */
	struct pfs_entry e = mk(0x13000, 200);
	pfs_summary_add(&s, &e);
	/* address gap -> new run */
	e = mk(0x15000, 201);
	pfs_summary_add(&s, &e);
	/* same pfn progression but a diagnosis -> new run */
	e = mk(0x16000, 202);
	e.diag = 1u << PFS_D_RESERVED_NORMAL;
	pfs_summary_add(&s, &e);
	/* consumers differ -> new run */
	e = mk(0x17000, 203);
	e.diag = 1u << PFS_D_RESERVED_NORMAL;
	e.consumers[PFS_C_KVM] = PFS_CV_PFN;
	pfs_summary_add(&s, &e);
	/* no-pfn entries merge by address */
	for (int i = 0; i < 2; i++) {
		e = mk(0x18000 + i * 4096, PFS_NO_PFN);
		e.kind = PFS_KIND_SWAP;
		pfs_summary_add(&s, &e);
	}
	/* pmd entries: pfn advances by 512 */
	for (int i = 0; i < 2; i++) {
		e = mk(0x200000 + i * 0x200000ull, 0x1000 + i * 512);
		e.level = PFS_LEVEL_PMD;
		pfs_summary_add(&s, &e);
	}
	pfs_summary_flush(&s);
	REQUIRE(rs.n == 7);
	CHECK_EQ(rs.r[0].count, 3);
	CHECK_EQ(rs.r[0].end, 0x13000);
	CHECK_EQ(rs.r[1].count, 1);
	CHECK_EQ(rs.r[2].first.addr, 0x15000);
	CHECK_EQ(rs.r[3].first.diag, 1u << PFS_D_RESERVED_NORMAL);
	CHECK_EQ(rs.r[4].count, 1);
	CHECK_EQ(rs.r[5].count, 2);
	CHECK_EQ(rs.r[5].end, 0x1a000);
	CHECK_EQ(rs.r[6].count, 2);   /* the two pmds: pfn advances by 512 */
	CHECK_EQ(rs.r[6].end, 0x600000);
	CHECK_EQ(s.runs, 7);
	/* two pmds in a row merge */
	rs.n = 0;
	pfs_summary_init(&s, collect, &rs);
	for (int i = 0; i < 3; i++) {
		e = mk(0x200000 + i * 0x200000ull, 0x1000 + i * 512);
		e.level = PFS_LEVEL_PMD;
		pfs_summary_add(&s, &e);
	}
	pfs_summary_flush(&s);
	REQUIRE(rs.n == 1);
	CHECK_EQ(rs.r[0].count, 3);
	CHECK_EQ(rs.r[0].end, 0x800000);
	/* 16 contpte entries merge; the next, not contiguous-bit, starts a run;
	 * then uffd-wp entries form their own */
	rs.n = 0;
	pfs_summary_init(&s, collect, &rs);
	for (int i = 0; i < 20; i++) {
		e = mk(0x40000 + i * 4096ull, 0x44910 + i);
		if (i < 16)
			e.bits |= PFS_E_CONT;
		if (i >= 18)
			e.bits |= PFS_E_UFFD_WP;
		pfs_summary_add(&s, &e);
	}
	pfs_summary_flush(&s);
	REQUIRE(rs.n == 3);
	CHECK_EQ(rs.r[0].count, 16);
	CHECK_EQ(rs.r[1].count, 2);
	CHECK_EQ(rs.r[2].count, 2);
	CHECK(rs.r[2].first.bits & PFS_E_UFFD_WP);
}

TEST(buf_fd_flush)
{
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	struct pfs_buf b;
	REQUIRE(pfs_buf_init(&b, 4096, fds[1]) == 0);
	struct pfs_layout lo = names_lo();
	struct pfs_entry e = mk(0x1000, 1);
	size_t total = 0;
	for (int i = 0; i < 20; i++) {   /* ~ 20 * 700 bytes > 4096: flushes */
		size_t before = b.written + b.len;
		pfs_json_entry(&b, &e, 1, 0, &lo);
		total += b.written + b.len - before;
	}
	CHECK(b.written > 0);
	CHECK_EQ(pfs_buf_flush(&b), 0);
	CHECK_EQ(b.written, total);
	pfs_buf_fini(&b);
	close(fds[1]);
	char *got = malloc(total + 1);
	size_t n = 0;
	ssize_t r;
	while ((r = read(fds[0], got + n, total + 1 - n)) > 0)
		n += (size_t)r;
	close(fds[0]);
	CHECK_EQ(n, total);
	int lines = 0;
	for (size_t i = 0; i < n; i++)
		lines += got[i] == '\n';
	CHECK_EQ(lines, 20);
	free(got);
}

TEST(table_alignment)
{
	struct pfs_layout lo = names_lo();
	struct pfs_buf b;
	REQUIRE(pfs_buf_init(&b, 0, -1) == 0);
	pfs_table_header(&b, 0);
	pfs_buf_putc(&b, '\n');
	size_t h = b.len;
	struct pfs_entry e = mk(0x7f0000001000ull, 0x1234);
	pfs_table_entry(&b, &e, &lo);
	pfs_buf_putc(&b, 0);
	const char *hdr = b.data, *line = b.data + h;
	/* "KIND" and "PFN" columns line up */
	CHECK(strncmp(strstr(hdr, "KIND") - hdr + line, "present", 7) == 0);
	CHECK(strncmp(strstr(hdr, "PFN") - hdr + line, "0x1234", 6) == 0);
	CHECK(strncmp(strstr(hdr, "RC/MC") - hdr + line, "1/1", 3) == 0);
	CHECK(strncmp(strstr(hdr, "PAGE_FLAGS") - hdr + line, "dirty,lru", 9) == 0);
	pfs_buf_fini(&b);
}

size_t pfs_fmt_u64(char *out, uint64_t v);   /* src/core/internal.h */

/* decimal formatting against snprintf at every digit-count boundary */
TEST(fmt_u64_matches_printf)
{
	unsigned bad = 0;
	uint64_t p = 1;
	for (int k = 0; k <= 20; k++) {
		uint64_t vs[] = { p - 1, p, p + 1, p * 5, p + 99, UINT64_MAX - p };
		for (unsigned i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
			char a[32], b[32];
			size_t n = pfs_fmt_u64(a, vs[i]);
			a[n] = 0;
			snprintf(b, sizeof(b), "%llu", (unsigned long long)vs[i]);
			bad += strcmp(a, b) != 0;
		}
		if (k < 19)
			p *= 10;
	}
	CHECK_EQ(bad, 0);
}
