/* SPDX-License-Identifier: MIT */
/* reader cache, layout, kernel-virtual translation (target.c, x86_64.c) */
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "pfnscope/arch.h"

TEST(reader_caches_pages_and_failures)
{
	struct mock_mem m;
	struct pfs_reader r;
	mock_mem_init(&m);
	REQUIRE(pfs_reader_init(&r, mock_read_phys, &m) == 0);
	uint64_t v = 0x1122334455667788ull;
	mock_mem_write(&m, 0x5008, &v, 8);
	mock_mem_set_unreadable(&m, 9, 1);

	uint64_t got = 0;
	CHECK_EQ(pfs_read_phys(&r, 0x5008, &got, 8), 0);
	CHECK_EQ(got, v);
	CHECK_EQ(r.stats_reads, 1);
	/* same page again: no new read */
	CHECK_EQ(pfs_read_phys(&r, 0x5000, &got, 8), 0);
	CHECK_EQ(got, 0);
	CHECK_EQ(r.stats_reads, 1);
	/* failure is cached too */
	CHECK(pfs_read_phys_page(&r, 9) == NULL);
	CHECK(pfs_read_phys_page(&r, 9) == NULL);
	CHECK_EQ(r.stats_reads, 2);
	/* a read crossing into the unreadable page fails */
	CHECK_EQ(pfs_read_phys(&r, 0x8ffc, &got, 8), -1);
	/* set associative with LRU: pfns 16 apart share a set of 4 */
	unsigned sets = PFS_READER_CACHE_BLOCKS / PFS_READER_WAYS;
	for (unsigned i = 1; i < PFS_READER_WAYS; i++)
		CHECK(pfs_read_phys_page(&r, 5 + i * sets) != NULL);
	CHECK_EQ(r.stats_reads, 3 + PFS_READER_WAYS - 1);   /* pages 5, 9, 8 before */
	CHECK(pfs_read_phys_page(&r, 5) != NULL);             /* hit, now most recent */
	CHECK(pfs_read_phys_page(&r, 5 + PFS_READER_WAYS * sets) != NULL);  /* evicts 5 + sets */
	CHECK(pfs_read_phys_page(&r, 5) != NULL);             /* still cached */
	uint64_t before = r.stats_reads;
	CHECK(pfs_read_phys_page(&r, 5 + sets) != NULL);      /* was evicted */
	CHECK_EQ(r.stats_reads, before + 1);
	/* bulk reads are uncached: one call each */
	uint64_t m0 = m.reads;
	unsigned char buf[3 * 4096];
	CHECK_EQ(pfs_read_phys_bulk(&r, 0x4000, buf, sizeof(buf)), 0);
	CHECK_EQ(m.reads, m0 + 1);
	CHECK(memcmp(buf + 0x1008, &v, 8) == 0);
	CHECK_EQ(pfs_read_phys_bulk(&r, 0x8000, buf, 8192), -1);
	/* absurd addresses fail without calling the reader */
	CHECK(pfs_read_phys_page(&r, 1ull << 50) == NULL);
	CHECK_EQ(pfs_read_phys_bulk(&r, UINT64_MAX - 10, buf, 100), -1);
	CHECK_EQ(m.reads, m0 + 2);
	CHECK_EQ(r.stats_reads, m.reads);
	pfs_reader_flush(&r);
	m0 = m.reads;
	CHECK(pfs_read_phys_page(&r, 5) != NULL);
	CHECK_EQ(m.reads, m0 + 1);
	pfs_reader_fini(&r);
	mock_mem_fini(&m);
}

TEST(reader_strict_mock_memory)
{
	struct mock_mem m;
	struct pfs_reader r;
	mock_mem_init(&m);
	m.strict = 1;
	REQUIRE(pfs_reader_init(&r, mock_read_phys, &m) == 0);
	CHECK(pfs_read_phys_page(&r, 77) == NULL);
	mock_mem_page(&m, 78);
	CHECK(pfs_read_phys_page(&r, 78) != NULL);
	pfs_reader_fini(&r);
	mock_mem_fini(&m);
}

TEST(layout_validate_names_missing_field)
{
	struct pfs_layout lo;
	const char *missing = NULL;
	pfs_layout_init(&lo);
	CHECK_EQ(pfs_layout_validate(&lo, &missing), -1);
	CHECK_STR(missing, "version");
	for (int levels = 4; levels <= 5; levels++) {
		struct mock_kernel k;
		mock_kernel_init(&k, levels, 6, 1);
		CHECK_EQ(pfs_layout_validate(&k.lo, &missing), 0);
		CHECK(missing == NULL);
		k.lo.page_refcount = PFS_ABSENT;
		CHECK_EQ(pfs_layout_validate(&k.lo, &missing), -1);
		CHECK_STR(missing, "page._refcount");
		mock_kernel_fini(&k);
	}
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 12);
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), 0);
	k.lo.folio_large_mapcount = PFS_ABSENT;
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), -1);
	CHECK_STR(missing, "folio._large_mapcount");
	mock_kernel_fini(&k);
	mock_kernel_init(&k, 4, 5, 15);
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), 0);
	k.lo.vma_vm_next = PFS_ABSENT;
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), -1);
	CHECK_STR(missing, "vm_area_struct.vm_next");
	mock_kernel_fini(&k);
}

TEST(layout_version_profiles)
{
	struct pfs_layout lo;
	static const struct {
		unsigned maj, min;
		int vnp, kvm, follow, devmap, saved_dirty, pgtype, mapcount;
	} cases[] = {
		{ 5, 4, PFS_VNP_LE_6_11, PFS_KVM_5_4, PFS_FOLLOW_PTE_MM, 58, -1, PFS_PGTYPE_6_1, PFS_MAPCOUNT_COMPOUND },
		{ 5, 15, PFS_VNP_LE_6_11, PFS_KVM_5_15, PFS_FOLLOW_PTE_MM, 58, -1, PFS_PGTYPE_6_1, PFS_MAPCOUNT_COMPOUND },
		{ 6, 1, PFS_VNP_LE_6_11, PFS_KVM_6_0, PFS_FOLLOW_PTE_MM, 58, -1, PFS_PGTYPE_6_1, PFS_MAPCOUNT_COMPOUND },
		{ 6, 5, PFS_VNP_LE_6_11, PFS_KVM_6_0, PFS_FOLLOW_PTE_MM, 58, -1, PFS_PGTYPE_6_1, PFS_MAPCOUNT_ENTIRE },
		{ 6, 6, PFS_VNP_LE_6_11, PFS_KVM_6_0, PFS_FOLLOW_PTE_MM, 57, 58, PFS_PGTYPE_6_1, PFS_MAPCOUNT_ENTIRE },
		{ 6, 10, PFS_VNP_LE_6_11, PFS_KVM_6_0, PFS_FOLLOW_PTE_VMA, 57, 58, PFS_PGTYPE_6_1, PFS_MAPCOUNT_LARGE },
		{ 6, 11, PFS_VNP_LE_6_11, PFS_KVM_6_0, PFS_FOLLOW_PTE_VMA, 57, 58, PFS_PGTYPE_6_1, PFS_MAPCOUNT_LARGE },
		{ 6, 12, PFS_VNP_6_12, PFS_KVM_6_0, PFS_FOLLOW_PFNMAP_START, 57, 58, PFS_PGTYPE_PGTY, PFS_MAPCOUNT_LARGE },
		{ 6, 13, PFS_VNP_6_12, PFS_KVM_6_13, PFS_FOLLOW_PFNMAP_START, 57, 58, PFS_PGTYPE_PGTY, PFS_MAPCOUNT_LARGE },
		{ 6, 16, PFS_VNP_6_12, PFS_KVM_6_13, PFS_FOLLOW_PFNMAP_START, 57, 58, PFS_PGTYPE_PGTY, PFS_MAPCOUNT_LARGE },
		{ 6, 17, PFS_VNP_6_12, PFS_KVM_6_13, PFS_FOLLOW_PFNMAP_START, -1, 58, PFS_PGTYPE_PGTY, PFS_MAPCOUNT_LARGE },
		{ 6, 18, PFS_VNP_6_18, PFS_KVM_6_13, PFS_FOLLOW_PFNMAP_START, -1, 58, PFS_PGTYPE_PGTY, PFS_MAPCOUNT_LARGE },
		{ 7, 2, PFS_VNP_6_18, PFS_KVM_6_13, PFS_FOLLOW_PFNMAP_START, -1, 58, PFS_PGTYPE_PGTY, PFS_MAPCOUNT_LARGE },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pfs_layout_init(&lo);
		pfs_layout_set_version(&lo, cases[i].maj, cases[i].min, 0);
		CHECK_EQ(lo.vnp_profile, cases[i].vnp);
		CHECK_EQ(lo.kvm_profile, cases[i].kvm);
		CHECK_EQ(lo.follow_profile, cases[i].follow);
		CHECK_EQ(lo.devmap_bit, cases[i].devmap);
		CHECK_EQ(lo.saved_dirty_bit, cases[i].saved_dirty);
		CHECK_EQ(lo.page_type_scheme, cases[i].pgtype);
		CHECK_EQ(lo.mapcount_scheme, cases[i].mapcount);
	}
	pfs_layout_init(&lo);
	lo.arch = PFS_ARCH_ARM64;
	pfs_layout_set_version(&lo, 6, 1, 0);
	CHECK_EQ(lo.devmap_bit, 57);
}

TEST(layout_kvm_profile_5_10_stable)
{
	/* 5.10.47+ carries the kvm_try_get_pfn backport (Debian 5.10.223 does) */
	struct pfs_layout lo;
	pfs_layout_init(&lo);
	pfs_layout_set_version(&lo, 5, 10, 0);
	CHECK_EQ(lo.kvm_profile, PFS_KVM_5_4);
	pfs_layout_init(&lo);
	pfs_layout_set_version(&lo, 5, 10, 46);
	CHECK_EQ(lo.kvm_profile, PFS_KVM_5_4);
	pfs_layout_init(&lo);
	pfs_layout_set_version(&lo, 5, 10, 223);
	CHECK_EQ(lo.kvm_profile, PFS_KVM_5_15);
	pfs_layout_init(&lo);
	pfs_layout_set_version(&lo, 5, 4, 223);
	CHECK_EQ(lo.kvm_profile, PFS_KVM_5_4);
}

TEST(layout_page_types_before_5_11)
{
	/* include/linux/page-flags.h: 5.10 has PG_kmemcg 0x200, PG_table 0x400;
	 * 5.11 dropped PG_kmemcg and moved PG_table to 0x200 */
	static const struct { unsigned maj, min; uint32_t table; } c[] = {
		{ 5, 4, 0x400 }, { 5, 10, 0x400 }, { 5, 11, 0x200 }, { 5, 15, 0x200 }, { 6, 1, 0x200 },
	};
	struct pfs_layout lo;
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		pfs_layout_init(&lo);
		pfs_layout_set_version(&lo, c[i].maj, c[i].min, 0);
		CHECK_EQ(lo.pgtype_buddy, 0x80);
		CHECK_EQ(lo.pgtype_offline, 0x100);
		CHECK_EQ(lo.pgtype_table, c[i].table);
	}
}

TEST(layout_swap_types_per_version)
{
	struct pfs_layout lo;
	static const struct {
		unsigned maj, min;
		int max, hwp, mr, mrx, mw, dw, dr, dxw, dxr, marker, swapin;
	} c[] = {
		{ 5, 4, 27, 27, 28, -1, 29, 30, 31, -1, -1, -1, -1 },
		{ 5, 15, 25, 25, 26, -1, 27, 28, 29, 30, 31, -1, -1 },
		{ 6, 1, 22, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 },
		{ 6, 6, 23, 23, 24, 25, 26, 27, 28, 29, 30, 31, -1 },
		{ 6, 12, 23, 23, 24, 25, 26, 27, 28, 29, 30, 31, -1 },
		{ 7, 2, 24, 24, 25, 26, 27, 28, 29, 30, 30, 31, -1 },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		pfs_layout_init(&lo);
		pfs_layout_set_version(&lo, c[i].maj, c[i].min, 0);
		CHECK_EQ(lo.max_swapfiles, c[i].max);
		CHECK_EQ(lo.swp_hwpoison, c[i].hwp);
		CHECK_EQ(lo.swp_migration_read, c[i].mr);
		CHECK_EQ(lo.swp_migration_read_exclusive, c[i].mrx);
		CHECK_EQ(lo.swp_migration_write, c[i].mw);
		CHECK_EQ(lo.swp_device_write, c[i].dw);
		CHECK_EQ(lo.swp_device_read, c[i].dr);
		CHECK_EQ(lo.swp_device_exclusive_write, c[i].dxw);
		CHECK_EQ(lo.swp_device_exclusive_read, c[i].dxr);
		CHECK_EQ(lo.swp_pte_marker, c[i].marker);
		CHECK_EQ(lo.swp_swapin_error, c[i].swapin);
	}
}

/* MAX_SWAPFILES read from the kernel (ARRAY_SIZE(swap_info)) decides
 * CONFIG_DEVICE_PRIVATE: Debian's 6.1 (26) and 6.12 (27) are built
 * without it, its 7.2 (24) with it */
TEST(layout_swap_types_from_max_swapfiles)
{
	struct pfs_layout lo;
	static const struct {
		unsigned maj, min;
		int max, hwp, mr, mrx, mw, dw, dxr, marker, swapin;
	} c[] = {
		{ 6, 1, 26, 26, 27, 28, 29, -1, -1, 30, 31 },
		{ 6, 1, 22, 22, 23, 24, 25, 26, 29, 30, 31 },
		{ 6, 12, 27, 27, 28, 29, 30, -1, -1, 31, -1 },
		{ 7, 2, 24, 24, 25, 26, 27, 28, 30, 31, -1 },
		{ 5, 10, 29, 29, 30, -1, 31, -1, -1, -1, -1 },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		pfs_layout_init(&lo);
		pfs_layout_set_version(&lo, c[i].maj, c[i].min, 0);
		CHECK_EQ(pfs_layout_set_max_swapfiles(&lo, c[i].max), 0);
		CHECK_EQ(lo.max_swapfiles, c[i].max);
		CHECK_EQ(lo.swp_hwpoison, c[i].hwp);
		CHECK_EQ(lo.swp_migration_read, c[i].mr);
		CHECK_EQ(lo.swp_migration_read_exclusive, c[i].mrx);
		CHECK_EQ(lo.swp_migration_write, c[i].mw);
		CHECK_EQ(lo.swp_device_write, c[i].dw);
		CHECK_EQ(lo.swp_device_exclusive_read, c[i].dxr);
		CHECK_EQ(lo.swp_pte_marker, c[i].marker);
		CHECK_EQ(lo.swp_swapin_error, c[i].swapin);
	}
	/* a count no configuration of 6.1 has leaves the layout alone */
	pfs_layout_init(&lo);
	pfs_layout_set_version(&lo, 6, 1, 0);
	CHECK_EQ(pfs_layout_set_max_swapfiles(&lo, 20), -1);
	CHECK_EQ(lo.max_swapfiles, 22);
	CHECK_EQ(lo.swp_hwpoison, 22);
}

TEST(kvirt_translation_4_and_5_level)
{
	for (int levels = 4; levels <= 5; levels++) {
		struct mock_kernel k;
		mock_kernel_init(&k, levels, 6, 1);
		uint64_t pa, run;
		/* direct map, 1 GiB leaf */
		uint64_t va = mock_kalloc(&k, 4096);
		mock_write_kva_u64(&k, va + 16, 0xabcdefull);
		CHECK_EQ(pfs_kvirt_to_phys(&k.t, va + 16, &pa, &run), 0);
		CHECK_EQ(pa, va - k.lo.page_offset_base + 16);
		uint64_t got = 0;
		CHECK_EQ(pfs_read_kvirt_u64(&k.t, va + 16, &got), 0);
		CHECK_EQ(got, 0xabcdef);
		/* kernel image, 2 MiB leaf */
		uint64_t img = mock_kimage_alloc(&k, 64);
		mock_write_kva_u64(&k, img, 42);
		CHECK_EQ(pfs_kvirt_to_phys(&k.t, img, &pa, &run), 0);
		CHECK_EQ(pa, img - k.lo.start_kernel_map + k.lo.phys_base);
		CHECK_EQ(run, (2ull << 20) - (img & ((2ull << 20) - 1)));
		/* vmemmap, on demand */
		mock_page_set_refcount(&k, 0x123456, 7);
		CHECK_EQ(pfs_kvirt_to_phys(&k.t, mock_page_va(&k, 0x123456), &pa, NULL), 0);
		CHECK_EQ(pa, mock_page_pa(&k, 0x123456));
		int32_t rc = 0;
		CHECK_EQ(pfs_read_kvirt(&k.t, mock_page_va(&k, 0x123456) + 52, &rc, 4), 0);
		CHECK_EQ(rc, 7);
		/* the last leaf is cached: a neighbour costs no page-table read */
		uint64_t reads = k.rd.stats_reads;
		CHECK_EQ(pfs_kvirt_to_phys(&k.t, mock_page_va(&k, 0x123457), &pa, NULL), 0);
		CHECK_EQ(k.rd.stats_reads, reads);
		/* 4 KiB leaf */
		uint64_t pfn = mock_alloc_pfn(&k);
		uint64_t kva = 0xffffc90000000000ull + (levels == 5 ? 0 : 0x1000);
		if (levels == 5)
			kva = 0xffa0000000000000ull;
		mock_map(&k, k.top_pgt_pa, kva, PFS_LEVEL_PTE, MOCK_PTE(pfn, 0x63));
		mock_write_kva_u64(&k, kva + 8, 99);
		CHECK_EQ(pfs_read_kvirt_u64(&k.t, kva + 8, &got), 0);
		CHECK_EQ(got, 99);
		CHECK_EQ(pfs_kvirt_to_phys(&k.t, kva + 8, &pa, &run), 0);
		CHECK_EQ(run, 4096 - 8);
		/* unmapped, and unreadable table */
		CHECK_EQ(pfs_kvirt_to_phys(&k.t, 0xffffffff00000000ull & ~(1ull << 40), &pa, NULL), -PFS_EFAULT);
		CHECK(k.t.error.what != NULL);
		mock_set_unreadable(&k, mock_table_pa(&k, k.top_pgt_pa, kva, PFS_LEVEL_PTE) >> 12, 1);
		k.t.kv_cache_len = 0;
		CHECK_EQ(pfs_read_kvirt_u64(&k.t, kva, &got), -PFS_EREAD);
		CHECK_STR(pfs_strerror(-PFS_EREAD), "memory not readable");
		CHECK_STR(pfs_strerror(99), "unknown error");
		/* reads crossing a page boundary */
		uint64_t two = mock_kalloc(&k, 8192);
		mock_write_kva_u64(&k, two + 4092, 0x0102030405060708ull);
		CHECK_EQ(pfs_read_kvirt_u64(&k.t, two + 4092, &got), 0);
		CHECK_EQ(got, 0x0102030405060708ull);
		mock_kernel_fini(&k);
	}
}

TEST(kvirt_layout_errors)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t pa;
	k.lo.init_top_pgt = 0;
	CHECK_EQ(pfs_kvirt_to_phys(&k.t, k.lo.page_offset_base, &pa, NULL), -PFS_ELAYOUT);
	k.lo.arch = PFS_ARCH_ARM64;
	CHECK_EQ(pfs_kvirt_to_phys(&k.t, k.lo.page_offset_base, &pa, NULL), -PFS_ELAYOUT);
	mock_kernel_fini(&k);
}

/* The fuzzers' journal: after a rollback memory reads as at the
 * checkpoint, pages first written since read as never written (strict:
 * unavailable), unreadable marks are undone, allocators restart. */
TEST(mock_checkpoint_rollback)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t pfn = mock_alloc_pfn(&k);
	mock_write_u64(&k, pfn << 12, 0x1111);
	mock_kernel_checkpoint(&k);
	uint64_t lo_before = k.lo.init_top_pgt, next = k.next_pfn;

	for (int round = 0; round < 3; round++) {
		mock_write_u64(&k, pfn << 12, 0x2222);
		mock_write_u64(&k, (pfn << 12) + 8, 0x3333);
		uint64_t fresh = mock_alloc_pfn(&k);
		mock_write_u64(&k, fresh << 12, 0x4444);
		mock_set_unreadable(&k, pfn, 1);
		k.lo.init_top_pgt = 0;
		CHECK_EQ(mock_read_u64(&k, fresh << 12), 0x4444);
		mock_kernel_rollback(&k);

		CHECK_EQ(mock_read_u64(&k, pfn << 12), 0x1111);
		CHECK_EQ(mock_read_u64(&k, (pfn << 12) + 8), 0);
		CHECK_EQ(mock_read_u64(&k, fresh << 12), 0);
		CHECK_EQ(k.lo.init_top_pgt, lo_before);
		CHECK_EQ(k.next_pfn, next);
		uint64_t v = 0;
		CHECK_EQ(mock_read_phys(&k.mem, pfn << 12, &v, 8), 0);
		CHECK_EQ(v, 0x1111);
		k.mem.strict = 1;
		CHECK_EQ(mock_read_phys(&k.mem, fresh << 12, &v, 8), -1);
		k.mem.strict = 0;
	}
	mock_kernel_fini(&k);
}
