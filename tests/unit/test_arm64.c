/* SPDX-License-Identifier: MIT */
/* arm64 kernel-virtual translation through swapper_pg_dir (arm64.c) and a
 * user walk on an arm64 layout */
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "mock_arm64.h"
#include "pfnscope/walk.h"

#define LM(m, pa) (MOCK_A64_PAGE_OFFSET + (pa) - MOCK_A64_PHYS_OFFSET)

TEST(arm64_kvirt_block_1g_2m_and_page)
{
	struct mock_a64 m;
	mock_a64_init(&m, 6, 1);
	/* linear map: a 1 GiB block (level 1) at PAGE_OFFSET -> PHYS_OFFSET */
	mock_a64_map(&m, MOCK_A64_PAGE_OFFSET, PFS_LEVEL_PUD,
		     MOCK_A64_PHYS_OFFSET | MOCK_A64_BLOCK | MOCK_A64_KERN);
	/* kernel image: a 2 MiB block (level 2) */
	mock_a64_map(&m, MOCK_A64_KIMAGE_VADDR, PFS_LEVEL_PMD,
		     MOCK_A64_KIMAGE_PA | MOCK_A64_BLOCK | MOCK_A64_KERN);
	/* vmalloc-like 4 KiB page (level 3); the UXN/PXN/DBM bits above the
	 * output address are not address bits */
	uint64_t vm = 0xffff800000123000ull;
	mock_a64_map(&m, vm, PFS_LEVEL_PTE, 0x87654000ull | MOCK_A64_PAGE | MOCK_A64_KERN);

	uint64_t pa = 0, run = 0;
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET + 0x12345678, &pa, &run), 0);
	CHECK_EQ(pa, MOCK_A64_PHYS_OFFSET + 0x12345678);
	CHECK_EQ(run, (1ull << 30) - 0x12345678);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_KIMAGE_VADDR + 0x1fff00, &pa, &run), 0);
	CHECK_EQ(pa, MOCK_A64_KIMAGE_PA + 0x1fff00);
	CHECK_EQ(run, 0x100);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, vm + 0xabc, &pa, &run), 0);
	CHECK_EQ(pa, 0x87654abcull);
	CHECK_EQ(run, 0x1000 - 0xabc);
	/* a block descriptor's output address is aligned to the block size */
	mock_a64_map(&m, MOCK_A64_KIMAGE_VADDR + (2ull << 20), PFS_LEVEL_PMD,
		     (MOCK_A64_KIMAGE_PA + (2ull << 20) + 0x5000) | MOCK_A64_BLOCK | MOCK_A64_KERN);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_KIMAGE_VADDR + (2ull << 20) + 8, &pa, NULL), 0);
	CHECK_EQ(pa, MOCK_A64_KIMAGE_PA + (2ull << 20) + 8);

	/* pfs_read_kvirt across two 4 KiB pages with unrelated PAs */
	mock_a64_map(&m, vm + 0x1000, PFS_LEVEL_PTE, 0x91000000ull | MOCK_A64_PAGE | MOCK_A64_KERN);
	uint64_t lo64 = 0x1122334455667788ull;
	mock_mem_write(&m.mem, 0x87654ffcull, &lo64, 4);
	mock_mem_write(&m.mem, 0x91000000ull, (const char *)&lo64 + 4, 4);
	uint64_t got = 0;
	CHECK_EQ(pfs_read_kvirt_u64(&m.t, vm + 0xffc, &got), 0);
	CHECK_EQ(got, lo64);
	mock_a64_fini(&m);
}

TEST(arm64_kvirt_cache_and_flush)
{
	struct mock_a64 m;
	mock_a64_init(&m, 6, 12);
	mock_a64_map(&m, MOCK_A64_PAGE_OFFSET, PFS_LEVEL_PUD,
		     MOCK_A64_PHYS_OFFSET | MOCK_A64_BLOCK | MOCK_A64_KERN);
	uint64_t pa;
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET + 0x1000, &pa, NULL), 0);
	/* the leaf is cached: no table read for the same block */
	uint64_t pud = mock_a64_table(&m, MOCK_A64_PAGE_OFFSET, PFS_LEVEL_PUD);
	mock_mem_set_unreadable(&m.mem, pud >> 12, 1);
	pfs_reader_flush(&m.rd);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET + 0x3fff0000, &pa, NULL), 0);
	CHECK_EQ(pa, MOCK_A64_PHYS_OFFSET + 0x3fff0000);
	/* unreadable table once the cache is dropped */
	pfs_target_flush(&m.t);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET + 0x1000, &pa, NULL), -PFS_EREAD);
	mock_a64_fini(&m);
}

TEST(arm64_kvirt_unmapped_and_invalid)
{
	struct mock_a64 m;
	mock_a64_init(&m, 6, 1);
	uint64_t pa;
	/* empty swapper_pg_dir */
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET, &pa, NULL), -PFS_EFAULT);
	/* a table at level 2 whose pte is missing / invalid (bit 0 clear) */
	uint64_t va = 0xffff800000200000ull;
	mock_a64_map(&m, va, PFS_LEVEL_PTE, 0x80000000ull | MOCK_A64_PAGE | MOCK_A64_KERN);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, va + 0x1000, &pa, NULL), -PFS_EFAULT);
	mock_a64_map(&m, va + 0x2000, PFS_LEVEL_PTE, 0x80002000ull | 2 | MOCK_A64_KERN);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, va + 0x2000, &pa, NULL), -PFS_EFAULT);
	/* 0b01 is reserved at level 3 and (without LPA2) at level 0 */
	mock_a64_map(&m, va + 0x3000, PFS_LEVEL_PTE, 0x80003000ull | MOCK_A64_BLOCK | MOCK_A64_KERN);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, va + 0x3000, &pa, NULL), -PFS_EFAULT);
	uint64_t l0 = 0xffff008000000000ull;   /* another level-0 slot */
	mock_a64_map(&m, l0, PFS_LEVEL_P4D, 0x0ull | MOCK_A64_BLOCK | MOCK_A64_KERN);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, l0, &pa, NULL), -PFS_EFAULT);
	/* not a TTBR1 address (bits 63..48 not all ones) */
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, 0x0000ffff80000000ull, &pa, NULL), -PFS_EFAULT);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, 0xfffe800000200000ull, &pa, NULL), -PFS_EFAULT);
	/* still fine */
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, va + 0x10, &pa, NULL), 0);
	CHECK_EQ(pa, 0x80000010ull);
	mock_a64_fini(&m);
}

TEST(arm64_kvirt_unreadable_table)
{
	struct mock_a64 m;
	mock_a64_init(&m, 6, 1);
	uint64_t va = 0xffff800000400000ull, pa;
	mock_a64_map(&m, va, PFS_LEVEL_PTE, 0x80000000ull | MOCK_A64_PAGE | MOCK_A64_KERN);
	mock_mem_set_unreadable(&m.mem, mock_a64_table(&m, va, PFS_LEVEL_PMD) >> 12, 1);
	pfs_target_flush(&m.t);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, va, &pa, NULL), -PFS_EREAD);
	CHECK(m.t.error.what != NULL);
	CHECK_EQ(m.t.error.address, va);
	/* swapper_pg_dir itself unreadable */
	mock_mem_set_unreadable(&m.mem, m.swapper_pa >> 12, 1);
	pfs_target_flush(&m.t);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, va, &pa, NULL), -PFS_EREAD);
	mock_a64_fini(&m);
}

TEST(arm64_kvirt_looping_table_is_bounded)
{
	struct mock_a64 m;
	mock_a64_init(&m, 6, 1);
	/* swapper_pg_dir's last slot points to itself (a recursive mapping):
	 * every level reads the same table, level 3 takes it as a page */
	uint64_t self = m.swapper_pa | MOCK_A64_TABLE | MOCK_A64_KERN;
	mock_mem_write(&m.mem, m.swapper_pa + 511 * 8, &self, 8);
	uint64_t pa, va = 0xffffffffffffffe8ull;   /* index 511 at every level */
	uint64_t reads = m.mem.reads;
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, va, &pa, NULL), 0);
	CHECK_EQ(pa, m.swapper_pa + 0xfe8);
	CHECK(m.mem.reads - reads <= 4);
	/* a level-2 table pointing back to level 1: ends at level 3 too */
	uint64_t va2 = 0xffff800000600000ull;
	mock_a64_map(&m, va2, PFS_LEVEL_PMD, 0);
	uint64_t pud = mock_a64_table(&m, va2, PFS_LEVEL_PUD);
	uint64_t pmd = mock_a64_table(&m, va2, PFS_LEVEL_PMD);
	uint64_t back = pud | MOCK_A64_TABLE;
	mock_mem_write(&m.mem, pmd + ((va2 >> 21) & 511) * 8, &back, 8);
	pfs_target_flush(&m.t);
	int r = pfs_kvirt_to_phys(&m.t, va2, &pa, NULL);
	/* pud[idx(level 3 bits)] is whatever is there: here the entry for
	 * va2's level-1 index, a table -> returned as a "page" */
	CHECK(r == 0 || r == -PFS_EFAULT);
	mock_a64_fini(&m);
}

TEST(arm64_kvirt_root_in_linear_map_and_layout_errors)
{
	struct mock_a64 m;
	mock_a64_init(&m, 6, 1);
	mock_a64_map(&m, MOCK_A64_PAGE_OFFSET, PFS_LEVEL_PUD,
		     MOCK_A64_PHYS_OFFSET | MOCK_A64_BLOCK | MOCK_A64_KERN);
	uint64_t pa;
	/* the root named by its linear-map alias: __lm_to_phys */
	m.lo.init_top_pgt = LM(&m, m.swapper_pa);
	pfs_target_flush(&m.t);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET + 8, &pa, NULL), 0);
	CHECK_EQ(pa, MOCK_A64_PHYS_OFFSET + 8);

	/* what the translation refuses: 0 / unknown fields, other configs */
	struct pfs_layout saved = m.lo;
	m.lo.va_bits = 39;
	pfs_target_flush(&m.t);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET, &pa, NULL), -PFS_ELAYOUT);
	m.lo = saved;
	m.lo.pgtable_levels = 5;
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET, &pa, NULL), -PFS_ELAYOUT);
	m.lo = saved;
	m.lo.phys_offset = UINT64_MAX;   /* root in the linear map, PHYS_OFFSET unknown */
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET, &pa, NULL), -PFS_ELAYOUT);
	m.lo = saved;
	m.lo.init_top_pgt = MOCK_A64_KIMAGE_VADDR + MOCK_A64_SWAPPER_OFF;
	m.lo.kimage_voffset = 0;         /* root in the image, kimage_voffset unknown */
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET, &pa, NULL), -PFS_ELAYOUT);
	m.lo.init_top_pgt = 0;
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, MOCK_A64_PAGE_OFFSET, &pa, NULL), -PFS_ELAYOUT);
	m.lo = saved;
	mock_a64_fini(&m);
}

TEST(arm64_layout_validate_fields)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	const char *missing = NULL;
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), 0);   /* x86: not needed */
	CHECK_EQ(k.lo.phys_offset, UINT64_MAX);
	k.lo.arch = PFS_ARCH_ARM64;
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), -1);
	CHECK_STR(missing, "va_bits/pgtable_levels (arm64: 48/4 or 52/5)");
	k.lo.va_bits = 48;
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), -1);
	CHECK_STR(missing, "kimage_voffset");
	k.lo.kimage_voffset = 0xffff80003fe00000ull;
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), -1);
	CHECK_STR(missing, "phys_offset");
	k.lo.phys_offset = 0;   /* PHYS_OFFSET 0 is valid */
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), 0);
	k.lo.pgtable_levels = 5;   /* 5 levels need 52-bit VAs (LPA2) */
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), -1);
	CHECK_STR(missing, "va_bits/pgtable_levels (arm64: 48/4 or 52/5)");
	k.lo.va_bits = 52;
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), 0);
	mock_kernel_fini(&k);
}

/* 52-bit VA with FEAT_LPA2 (6.9+ kernels on a CPU with LPA2, e.g. QEMU -cpu
 * max): five levels, a 16-entry top table indexed by VA bits 51:48, and
 * OA[51:50] in descriptor bits 9:8 (the 48-bit format's shareability) */
TEST(arm64_lpa2_kvirt_5_levels_and_high_oa)
{
	struct mock_a64 m;
	mock_a64_init(&m, 6, 12);
	const uint64_t po52 = 0xfff0000000000000ull;   /* _PAGE_OFFSET(52) */
	m.lo.va_bits = 52;
	m.lo.pgtable_levels = 5;
	m.lo.page_offset_base = po52;
	/* swapper (level -1) -> level 0 -> level 1 blocks, by hand */
	uint64_t l0 = mock_a64_alloc(&m), l1 = mock_a64_alloc(&m);
	uint64_t e = l0 | MOCK_A64_TABLE;
	mock_mem_write(&m.mem, m.swapper_pa + ((po52 >> 48) & 15) * 8, &e, 8);
	e = l1 | MOCK_A64_TABLE;
	mock_mem_write(&m.mem, l0 + ((po52 >> 39) & 511) * 8, &e, 8);
	e = MOCK_A64_PHYS_OFFSET | MOCK_A64_BLOCK | MOCK_A64_KERN;
	mock_mem_write(&m.mem, l1 + 0, &e, 8);
	/* 1 GiB block at PA 2^50 + 2 GiB: OA bit 50 is descriptor bit 8 */
	e = 0x80000000ull | (1ull << 8) | MOCK_A64_BLOCK | MOCK_A64_KERN;
	mock_mem_write(&m.mem, l1 + 8, &e, 8);
	/* the kernel image (swapper_pg_dir) is reached through kimage_voffset */
	uint64_t pa = 0, run = 0;
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, po52 + 0x1234, &pa, &run), 0);
	CHECK_EQ(pa, MOCK_A64_PHYS_OFFSET + 0x1234);
	CHECK_EQ(run, (1ull << 30) - 0x1234);
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, po52 + (1ull << 30) + 0x10, &pa, NULL), 0);
	CHECK_EQ(pa, (1ull << 50) + 0x80000000ull + 0x10);
	/* a 48-bit address is not a TTBR1 address of a 52-bit kernel's walk */
	CHECK_EQ(pfs_kvirt_to_phys(&m.t, 0x000f000000000000ull, &pa, NULL), -PFS_EFAULT);
	mock_a64_fini(&m);
}

/* <= 6.9: a THP pmd invalidated by pmdp_invalidate() (PMD_PRESENT_INVALID,
 * bit 59, VALID clear) is pmd_present(); the same bits in a pte are a swap
 * entry, and from 6.10 bit 59 means nothing (PTE_PRESENT_INVALID is nG) */
TEST(arm64_pmd_present_invalid_le_6_9)
{
	struct mock_a64 m;
	mock_a64_init(&m, 6, 1);
	struct pfs_entry e;
	uint64_t raw = (0x40200000ull | MOCK_A64_BLOCK | MOCK_A64_USER | MOCK_A64_AF | MOCK_A64_NG |
			(1ull << 59)) & ~MOCK_A64_VALID;
	pfs_decode_entry(&m.lo, raw, PFS_LEVEL_PMD, &e);
	CHECK_EQ(e.kind, PFS_KIND_PRESENT);
	CHECK_EQ(e.pfn, 0x40200ull);
	pfs_decode_entry(&m.lo, raw, PFS_LEVEL_PTE, &e);
	CHECK(e.kind != PFS_KIND_PRESENT && e.kind != PFS_KIND_PROTNONE);
	pfs_layout_set_version(&m.lo, 6, 12, 0);
	/* 6.12: nG with VALID clear is PRESENT_INVALID: PROT_NONE */
	pfs_decode_entry(&m.lo, raw, PFS_LEVEL_PMD, &e);
	CHECK_EQ(e.kind, PFS_KIND_PROTNONE);
	mock_a64_fini(&m);
}

TEST(arm64_lpa2_entry_oa_bits)
{
	struct mock_a64 m;
	mock_a64_init(&m, 6, 12);
	struct pfs_entry e;
	uint64_t raw = 0x1234000ull | (2ull << 8) | MOCK_A64_USER_PTE;
	/* 48-bit format: bits 9:8 are SH (inner shareable 0b11 on real ptes) */
	pfs_decode_entry(&m.lo, raw, PFS_LEVEL_PTE, &e);
	CHECK_EQ(e.pfn, 0x1234ull);
	m.lo.va_bits = 52;
	m.lo.pgtable_levels = 5;
	pfs_decode_entry(&m.lo, raw, PFS_LEVEL_PTE, &e);
	CHECK_EQ(e.pfn, ((2ull << 50) | 0x1234000ull) >> 12);
	/* bits 50/51 (GP, DBM) are not address bits in the LPA2 format */
	raw = 0x3000ull | (1ull << 50) | MOCK_A64_DBM | MOCK_A64_USER_PTE;
	pfs_decode_entry(&m.lo, raw, PFS_LEVEL_PTE, &e);
	CHECK_EQ(e.pfn, 3ull);
	mock_a64_fini(&m);
}

struct got {
	unsigned n;
	struct pfs_entry e[16];
};

static int collect(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct got *g = arg;
	(void)vma;
	if (g->n < 16)
		g->e[g->n] = *e;
	g->n++;
	return 0;
}

#define UVA 0x0000ffff9a400000ull   /* 2 MiB aligned user address */
#define ANON (PFS_VM_READ | PFS_VM_WRITE | PFS_VM_MAYREAD | PFS_VM_MAYWRITE)

TEST(arm64_walk_user_pages_through_kvirt)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 12);
	uint64_t pgd = mock_user_pgd(&k);
	uint64_t a = mock_alloc_pfn(&k), b = mock_alloc_pfn(&k);
	mock_page_simple(&k, a, 0, 1, 1);
	mock_page_set_mapping(&k, a, 0xffff888000100001ull);   /* anon */
	mock_page_simple(&k, b, 0, 1, 1);
	uint64_t thp = 0x200000;
	mock_page_compound(&k, thp, 9);
	mock_page_set_refcount(&k, thp, 512);
	mock_page_set_mapping(&k, thp, 0xffff888000100001ull);
	if (k.lo.folio_large_mapcount != PFS_ABSENT)
		mock_page_set(&k, thp, k.lo.folio_large_mapcount, 4, 0);
	/* struct pages exist now: build the arm64 swapper_pg_dir */
	mock_arm64_mirror(&k);
	const char *missing = NULL;
	CHECK_EQ(pfs_layout_validate(&k.lo, &missing), 0);

	/* the vmemmap through arm64 translation = the mock's own tables */
	uint64_t pa;
	CHECK_EQ(pfs_kvirt_to_phys(&k.t, mock_page_va(&k, a), &pa, NULL), 0);
	CHECK_EQ(pa, mock_kva_to_pa(&k, mock_page_va(&k, a)));
	CHECK_EQ(pfs_kvirt_to_phys(&k.t, k.lo.init_task, &pa, NULL), 0);
	CHECK_EQ(pa, mock_kva_to_pa(&k, k.lo.init_task));

	mock_map(&k, pgd, UVA, PFS_LEVEL_PTE, (a << 12) | MOCK_A64_USER_PTE);
	mock_map(&k, pgd, UVA + 0x1000, PFS_LEVEL_PTE, (b << 12) | MOCK_A64_USER_PTE | MOCK_A64_SPECIAL);
	mock_map(&k, pgd, UVA + (2ull << 20), PFS_LEVEL_PMD,
		 (thp << 12) | MOCK_A64_BLOCK | MOCK_A64_USER | MOCK_A64_AF | MOCK_A64_NG | MOCK_A64_UXN);

	struct pfs_vma v;
	memset(&v, 0, sizeof(v));
	v.start = UVA;
	v.end = UVA + (4ull << 20);
	v.vm_flags = ANON;
	struct got g;
	memset(&g, 0, sizeof(g));
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, 0, UINT64_MAX, 0, collect, &g), 0);
	REQUIRE(g.n == 3);
	const struct pfs_entry *e = &g.e[0];
	CHECK_EQ(e->addr, UVA);
	CHECK_EQ(e->kind, PFS_KIND_PRESENT);
	CHECK_EQ(e->level, PFS_LEVEL_PTE);
	CHECK_EQ(e->pfn, a);
	CHECK_EQ(e->bits, PFS_E_WRITE | PFS_E_USER | PFS_E_ACCESSED | PFS_E_DIRTY | PFS_E_NX);
	CHECK_EQ(e->page.state, PFS_PAGE_OK);
	CHECK_EQ(e->page.refcount, 1);
	CHECK_EQ(e->page.mapcount, 1);
	CHECK(e->page.bits & PFS_PG_ANON);
	CHECK_EQ(e->normal_page, 1);
	CHECK_EQ(e->vnp_reason, PFS_VNP_NOT_SPECIAL);
	CHECK_EQ(e->diag, 0);
	e = &g.e[1];
	CHECK_EQ(e->addr, UVA + 0x1000);
	CHECK_EQ(e->page.state, PFS_PAGE_OK);
	CHECK_EQ(e->vnp_reason, PFS_VNP_BAD_SPECIAL);
	CHECK_EQ(e->diag, 1u << PFS_D_BAD_SPECIAL);
	e = &g.e[2];
	CHECK_EQ(e->addr, UVA + (2ull << 20));
	CHECK_EQ(e->level, PFS_LEVEL_PMD);
	CHECK_EQ(e->pfn, thp);
	CHECK(e->bits & PFS_E_LEAF);
	CHECK_EQ(e->page.state, PFS_PAGE_OK);
	CHECK_EQ(e->page.refcount, 512);
	CHECK(e->page.bits & PFS_PG_ANON);
	CHECK_EQ(e->normal_page, 1);

	/* the memmap unreadable on the arm64 path: the page decode says so */
	k.lo.kimage_voffset = 0;
	k.lo.phys_offset = UINT64_MAX;
	pfs_target_flush(&k.t);
	memset(&g, 0, sizeof(g));
	CHECK_EQ(pfs_walk_vma(&k.t, pgd, &v, 0, UINT64_MAX, 0, collect, &g), 0);
	REQUIRE(g.n == 3);
	CHECK_EQ(g.e[0].page.state, PFS_PAGE_UNREADABLE);
	mock_kernel_fini(&k);
}
