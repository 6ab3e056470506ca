/* SPDX-License-Identifier: MIT */
/* diagnoses (diagnose.c), every code positive and negative */
#include <string.h>
#include "runner.h"
#include "pfnscope/diagnose.h"
#include "pfnscope/vnp.h"

#define RAM 0x1000ull
#define MMIO 0x9000000ull
#define ZERO 0x2c00ull
#define SPECIAL_OPS 0xffffffff82000000ull

static struct pfs_layout L(unsigned maj, unsigned min)
{
	struct pfs_layout lo;
	pfs_layout_init(&lo);
	pfs_layout_set_version(&lo, maj, min, 0);
	lo.highest_memmap_pfn = 0x43ffff;
	lo.zero_pfn = ZERO;
	lo.special_mapping_vmops = SPECIAL_OPS;
	return lo;
}

static struct pfs_vma V(uint64_t flags)
{
	struct pfs_vma v;
	memset(&v, 0, sizeof(v));
	v.start = 0x7f0000000000ull;
	v.end = v.start + (1ull << 20);
	v.vm_flags = flags;
	v.pgoff = MMIO;
	v.file = 0xffff888012345678ull;
	v.ops = 0xffffffff81e00000ull;
	return v;
}

static unsigned D(const struct pfs_layout *lo, const struct pfs_vma *v, unsigned kind, uint64_t pfn,
		  uint32_t bits, unsigned pstate, uint32_t pbits, int rc, int mc, int own_rc)
{
	struct pfs_entry e;
	memset(&e, 0, sizeof(e));
	e.addr = v->start + 0x3000;
	e.kind = (uint8_t)kind;
	e.pfn = pfn;
	e.bits = bits;
	e.page.state = (uint8_t)pstate;
	e.page.bits = pbits;
	e.page.refcount = rc;
	e.page.mapcount = mc;
	e.page.page_refcount = own_rc;
	pfs_vnp(lo, v, &e, pstate != PFS_PAGE_INVALID);
	pfs_diagnose_entry(lo, v, &e);
	return e.diag;
}

#define BIT(d) (1u << (d))
#define SHARED_PFNMAP (PFS_VM_READ | PFS_VM_SHARED | PFS_VM_MAYSHARE | PFS_VM_MAYREAD | PFS_VM_IO | PFS_VM_PFNMAP)
#define COW_PFNMAP (PFS_VM_READ | PFS_VM_MAYREAD | PFS_VM_MAYWRITE | PFS_VM_IO | PFS_VM_PFNMAP)
#define ANON (PFS_VM_READ | PFS_VM_WRITE | PFS_VM_MAYREAD | PFS_VM_MAYWRITE)
#define OK PFS_PAGE_OK
#define INV PFS_PAGE_INVALID
#define P PFS_KIND_PRESENT
#define S PFS_E_SPECIAL
#define LINEAR (MMIO + 3)

TEST(diag_clean_cases_have_no_findings)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma anon = V(ANON), shared = V(SHARED_PFNMAP), cow = V(COW_PFNMAP);
	anon.file = 0;
	anon.ops = 0;
	CHECK_EQ(D(&lo, &anon, P, RAM, 0, OK, PFS_PG_ANON, 1, 1, 1), 0);              /* anon page */
	CHECK_EQ(D(&lo, &anon, P, ZERO, S, OK, PFS_PG_RESERVED | PFS_PG_ZERO, 1, 0, 1), 0); /* zero page */
	CHECK_EQ(D(&lo, &shared, P, LINEAR, S, INV, 0, 0, 0, 0), 0);                 /* case A, linear */
	CHECK_EQ(D(&lo, &cow, P, LINEAR, S, INV, 0, 0, 0, 0), 0);                    /* private /dev/mem */
	shared.pgoff = 0x10 - 3;
	CHECK_EQ(D(&lo, &shared, P, 0x10, S, OK, PFS_PG_RESERVED, 1, 0, 1), 0);      /* /dev/mem < 1 MiB */
	shared.pgoff = MMIO;
	CHECK_EQ(D(&lo, &anon, PFS_KIND_SWAP, PFS_NO_PFN, 0, PFS_PAGE_NONE, 0, 0, 0, 0), 0);
	/* [vdso]: reserved page, normal pte, special_mapping_vmops */
	struct pfs_vma vdso = V(PFS_VM_READ | PFS_VM_EXEC | PFS_VM_MAYREAD);
	vdso.ops = SPECIAL_OPS;
	vdso.file = 0;
	CHECK_EQ(D(&lo, &vdso, P, RAM, 0, OK, PFS_PG_RESERVED, 3, 2, 3), 0);
	/* the same without the symbol: anonymous VMA with vm_ops */
	lo.special_mapping_vmops = PFS_ABSENT;
	CHECK_EQ(D(&lo, &vdso, P, RAM, 0, OK, PFS_PG_RESERVED, 3, 2, 3), 0);
	/* hugetlb: not judged */
	struct pfs_vma ht = V(ANON | PFS_VM_HUGETLB);
	CHECK_EQ(D(&lo, &ht, P, RAM, 0, OK, 0, 0, 0, 0), 0);
	CHECK_EQ(pfs_diagnose_vma(&lo, &anon), 0);
	CHECK_EQ(pfs_diagnose_vma(&lo, &shared), 0);
	CHECK_EQ(pfs_diag_max_severity(0), -1);
}

TEST(diag_bad_special)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma anon = V(ANON);
	CHECK_EQ(D(&lo, &anon, P, RAM, S, OK, 0, 1, 1, 1), BIT(PFS_D_BAD_SPECIAL));
	CHECK_EQ(D(&lo, &anon, P, MMIO, S, INV, 0, 0, 0, 0), BIT(PFS_D_BAD_SPECIAL));
	/* devmap (<= 6.16) is legitimate, zero pfn too */
	CHECK_EQ(D(&lo, &anon, P, RAM, S | PFS_E_DEVMAP, OK, PFS_PG_ZONE_DEVICE, 1, 1, 1), 0);
	lo = L(6, 17);
	CHECK_EQ(D(&lo, &anon, P, RAM, S | PFS_E_DEVMAP, OK, 0, 1, 1, 1), BIT(PFS_D_BAD_SPECIAL));
	CHECK_EQ(pfs_diag_max_severity(BIT(PFS_D_BAD_SPECIAL)), PFS_SEV_CRITICAL);
}

TEST(diag_pfn_beyond_memmap)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma anon = V(ANON);
	CHECK_EQ(D(&lo, &anon, P, MMIO, 0, INV, 0, 0, 0, 0), BIT(PFS_D_PFN_BEYOND_MEMMAP));
	/* in a pfnmap the same non-special pte is also mislabeled */
	struct pfs_vma shared = V(SHARED_PFNMAP);
	CHECK_EQ(D(&lo, &shared, P, MMIO + 9, 0, INV, 0, 0, 0, 0),
		 BIT(PFS_D_PFN_BEYOND_MEMMAP) | BIT(PFS_D_NONSPECIAL_IN_PFNMAP));
}

TEST(diag_maps_freed_page)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma shared = V(SHARED_PFNMAP);
	/* io_uring PBUF_RING after free: special pte over a free buddy page */
	unsigned d = D(&lo, &shared, P, RAM, S, OK, PFS_PG_FREE, 0, 0, 0);
	CHECK(d & BIT(PFS_D_MAPS_FREED_PAGE));
	CHECK(d & BIT(PFS_D_SPECIAL_OVER_RAM));
	struct pfs_vma anon = V(ANON);
	CHECK(D(&lo, &anon, P, RAM, 0, OK, PFS_PG_BUDDY | PFS_PG_TYPED, 0, 0, 0) & BIT(PFS_D_MAPS_FREED_PAGE));
	CHECK(D(&lo, &anon, P, RAM, 0, OK, PFS_PG_SLAB | PFS_PG_TYPED, 1, 0, 1) & BIT(PFS_D_MAPS_FREED_PAGE));
	CHECK(D(&lo, &anon, P, RAM, 0, OK, PFS_PG_PGTABLE | PFS_PG_TYPED, 1, 0, 1) & BIT(PFS_D_MAPS_FREED_PAGE));
}

TEST(diag_refcount_below_mapcount)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma anon = V(ANON);
	CHECK_EQ(D(&lo, &anon, P, RAM, 0, OK, PFS_PG_ANON, 1, 2, 1), BIT(PFS_D_REFCOUNT_BELOW_MAPCOUNT));
	CHECK_EQ(D(&lo, &anon, P, RAM, 0, OK, PFS_PG_ANON, 1, 0, 1), BIT(PFS_D_REFCOUNT_BELOW_MAPCOUNT));
	CHECK_EQ(D(&lo, &anon, P, RAM, 0, OK, PFS_PG_ANON, 5, 2, 5), 0);
	/* special pte over an order-0 page with refcount 0 (non-__GFP_COMP) */
	struct pfs_vma shared = V(SHARED_PFNMAP);
	shared.pgoff = RAM - 3;
	CHECK_EQ(D(&lo, &shared, P, RAM, S, OK, 0, 0, 0, 0),
		 BIT(PFS_D_REFCOUNT_BELOW_MAPCOUNT) | BIT(PFS_D_SPECIAL_OVER_RAM));
	/* a __GFP_COMP tail with own refcount 0 is normal: only case C */
	CHECK_EQ(D(&lo, &shared, P, RAM, S, OK, PFS_PG_TAIL, 1, 0, 0), BIT(PFS_D_SPECIAL_OVER_RAM));
}

TEST(diag_pfnmap_and_mixedmap_is_per_vma)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma both = V(SHARED_PFNMAP | PFS_VM_MIXEDMAP);
	CHECK_EQ(pfs_diagnose_vma(&lo, &both), BIT(PFS_D_PFNMAP_AND_MIXEDMAP));
	CHECK_EQ(D(&lo, &both, P, LINEAR, S, INV, 0, 0, 0, 0), 0);
	CHECK_EQ(pfs_diag_max_severity(BIT(PFS_D_PFNMAP_AND_MIXEDMAP) | BIT(PFS_D_PFNMAP_WITHOUT_IO)),
		 PFS_SEV_HIGH);
}

TEST(diag_special_over_ram_case_C)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma shared = V(SHARED_PFNMAP);
	CHECK_EQ(D(&lo, &shared, P, LINEAR, S, OK, PFS_PG_HEAD, 2, 0, 2), BIT(PFS_D_SPECIAL_OVER_RAM));
	struct pfs_vma mixed = V(PFS_VM_READ | PFS_VM_SHARED | PFS_VM_MIXEDMAP | PFS_VM_IO);
	CHECK_EQ(D(&lo, &mixed, P, RAM, S, OK, 0, 1, 0, 1), BIT(PFS_D_SPECIAL_OVER_RAM));
	/* reserved, zone-device and the zero page are not "RAM the mapping doesn't own" */
	CHECK_EQ(D(&lo, &shared, P, LINEAR, S, OK, PFS_PG_RESERVED, 1, 0, 1), 0);
	CHECK_EQ(D(&lo, &shared, P, LINEAR, S, OK, PFS_PG_ZONE_DEVICE, 1, 0, 1), 0);
	CHECK_EQ(D(&lo, &mixed, P, ZERO, S, OK, PFS_PG_RESERVED | PFS_PG_ZERO, 1, 0, 1), 0);
}

TEST(diag_nonspecial_in_pfnmap_and_cow_anon)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma shared = V(SHARED_PFNMAP), cow = V(COW_PFNMAP);
	/* non-COW */
	CHECK_EQ(D(&lo, &shared, P, RAM, 0, OK, PFS_PG_ANON, 1, 1, 1), BIT(PFS_D_NONSPECIAL_IN_PFNMAP));
	/* COW but not anon */
	CHECK_EQ(D(&lo, &cow, P, RAM, 0, OK, 0, 2, 1, 2), BIT(PFS_D_NONSPECIAL_IN_PFNMAP));
	/* COW, anon, but at the linear pfn */
	CHECK_EQ(D(&lo, &cow, P, LINEAR, 0, INV, 0, 0, 0, 0),
		 BIT(PFS_D_NONSPECIAL_IN_PFNMAP) | BIT(PFS_D_PFN_BEYOND_MEMMAP));
	/* case B */
	CHECK_EQ(D(&lo, &cow, P, RAM, 0, OK, PFS_PG_ANON, 1, 1, 1), BIT(PFS_D_PFNMAP_COW_ANON));
	CHECK_EQ(pfs_diag_max_severity(BIT(PFS_D_PFNMAP_COW_ANON)), PFS_SEV_MEDIUM);
	/* page facts unknown: judged by flags and linearity only */
	CHECK_EQ(D(&lo, &cow, P, RAM, 0, PFS_PAGE_NONE, 0, 0, 0, 0), BIT(PFS_D_PFNMAP_COW_ANON));
	/* pmd level before 6.12: no special bit, no verdict */
	struct pfs_entry e;
	memset(&e, 0, sizeof(e));
	e.addr = shared.start;
	e.kind = P;
	e.level = PFS_LEVEL_PMD;
	e.pfn = 0x200;
	e.bits = PFS_E_LEAF;
	pfs_vnp(&lo, &shared, &e, 1);
	pfs_diagnose_entry(&lo, &shared, &e);
	CHECK_EQ(e.diag, 0);
	lo = L(6, 12);
	pfs_vnp(&lo, &shared, &e, 1);
	pfs_diagnose_entry(&lo, &shared, &e);
	CHECK_EQ(e.diag, BIT(PFS_D_NONSPECIAL_IN_PFNMAP));
}

TEST(diag_pfnmap_nonlinear_cow)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma cow = V(COW_PFNMAP);
	CHECK_EQ(D(&lo, &cow, P, MMIO + 100, S, INV, 0, 0, 0, 0), BIT(PFS_D_PFNMAP_NONLINEAR_COW));
	CHECK_EQ(D(&lo, &cow, P, LINEAR, S, INV, 0, 0, 0, 0), 0);
}

TEST(diag_reserved_normal)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma mixed = V(PFS_VM_READ | PFS_VM_SHARED | PFS_VM_MIXEDMAP);
	CHECK_EQ(D(&lo, &mixed, P, RAM, 0, OK, PFS_PG_RESERVED, 2, 1, 2), BIT(PFS_D_RESERVED_NORMAL));
	struct pfs_vma anon = V(ANON);
	CHECK_EQ(D(&lo, &anon, P, RAM, 0, OK, PFS_PG_RESERVED | PFS_PG_ANON, 2, 1, 2), BIT(PFS_D_RESERVED_NORMAL));
	CHECK_EQ(pfs_diag_max_severity(BIT(PFS_D_RESERVED_NORMAL)), PFS_SEV_MEDIUM);
}

TEST(diag_pfnmap_without_io)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma noio = V(PFS_VM_READ | PFS_VM_SHARED | PFS_VM_PFNMAP);
	CHECK_EQ(pfs_diagnose_vma(&lo, &noio), BIT(PFS_D_PFNMAP_WITHOUT_IO));
	struct pfs_vma io = V(PFS_VM_READ | PFS_VM_SHARED | PFS_VM_IO);
	CHECK_EQ(pfs_diagnose_vma(&lo, &io), BIT(PFS_D_PFNMAP_WITHOUT_IO));
	/* 7.2 [vvar]: IO|MIXEDMAP special mapping is legitimate */
	struct pfs_vma vvar = V(PFS_VM_READ | PFS_VM_IO | PFS_VM_MIXEDMAP);
	vvar.ops = SPECIAL_OPS;
	vvar.file = 0;
	CHECK_EQ(pfs_diagnose_vma(&lo, &vvar), 0);
	CHECK(pfs_vma_is_special_mapping(&lo, &vvar));
	/* entry half: protnone special pte in an accessible VMA */
	struct pfs_vma shared = V(SHARED_PFNMAP);
	CHECK_EQ(D(&lo, &shared, PFS_KIND_PROTNONE, LINEAR, S, INV, 0, 0, 0, 0), BIT(PFS_D_PFNMAP_WITHOUT_IO));
	struct pfs_vma protnone = V(PFS_VM_SHARED | PFS_VM_IO | PFS_VM_PFNMAP);
	CHECK_EQ(D(&lo, &protnone, PFS_KIND_PROTNONE, LINEAR, S, INV, 0, 0, 0, 0), 0);
	/* a non-linear special in a non-COW pfnmap is legal: vm_normal_page()
	 * reads vm_pgoff only for COW mappings */
	CHECK_EQ(D(&lo, &shared, P, MMIO + 77, S, INV, 0, 0, 0, 0), 0);
	struct pfs_vma vvar61 = V(PFS_VM_READ | PFS_VM_IO | PFS_VM_PFNMAP);
	vvar61.ops = SPECIAL_OPS;
	vvar61.file = 0;
	CHECK_EQ(D(&lo, &vvar61, P, MMIO + 77, S, INV, 0, 0, 0, 0), 0);
	CHECK_EQ(pfs_diag_max_severity(BIT(PFS_D_PFNMAP_WITHOUT_IO)), PFS_SEV_LOW);
}

/* case C is medium on every kernel, whatever the VMA: healthy drivers do it
 * (drm_gem_shmem_fault -> vmf_insert_pfn); the code always fires */
static unsigned sev_over_ram(const struct pfs_layout *lo, const struct pfs_vma *v)
{
	struct pfs_entry e;
	memset(&e, 0, sizeof(e));
	e.addr = v->start;
	e.kind = PFS_KIND_PRESENT;
	e.pfn = RAM;
	e.bits = PFS_E_SPECIAL;
	e.page.state = PFS_PAGE_OK;
	e.page.refcount = e.page.page_refcount = 1;
	pfs_vnp(lo, v, &e, 1);
	pfs_diagnose_entry(lo, v, &e);
	CHECK(e.diag & BIT(PFS_D_SPECIAL_OVER_RAM));
	CHECK_EQ(e.diag & BIT(PFS_D_REFCOUNT_BELOW_MAPCOUNT), 0);
	return pfs_diag_max_severity(e.diag);
}

TEST(diag_special_over_ram_severity)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma drv = V(SHARED_PFNMAP);
	drv.pgoff = RAM;
	CHECK_EQ(sev_over_ram(&lo, &drv), PFS_SEV_MEDIUM);
	lo = L(6, 12);
	CHECK_EQ(sev_over_ram(&lo, &drv), PFS_SEV_MEDIUM);
	lo = L(6, 13);
	CHECK_EQ(sev_over_ram(&lo, &drv), PFS_SEV_MEDIUM);
	lo = L(6, 1);
	struct pfs_vma vvar = V(PFS_VM_READ | PFS_VM_MAYREAD | PFS_VM_IO | PFS_VM_PFNMAP |
				PFS_VM_DONTEXPAND | PFS_VM_DONTDUMP);
	vvar.file = 0;
	vvar.ops = SPECIAL_OPS;
	CHECK_EQ(sev_over_ram(&lo, &vvar), PFS_SEV_MEDIUM);
}

/* the hazard under case C stays high: a refcount-0 head page under a
 * special pte (freed while mapped, or a non-__GFP_COMP tail) */
TEST(diag_special_over_freed_ram_high)
{
	struct pfs_layout lo = L(6, 13);
	struct pfs_vma drv = V(SHARED_PFNMAP);
	struct pfs_entry e;
	memset(&e, 0, sizeof(e));
	e.addr = drv.start;
	e.kind = PFS_KIND_PRESENT;
	e.pfn = RAM;
	e.bits = PFS_E_SPECIAL;
	e.page.state = PFS_PAGE_OK;
	pfs_vnp(&lo, &drv, &e, 1);
	pfs_diagnose_entry(&lo, &drv, &e);
	CHECK(e.diag & BIT(PFS_D_REFCOUNT_BELOW_MAPCOUNT));
	CHECK_EQ(pfs_diag_max_severity(e.diag), PFS_SEV_HIGH);
}

/* a vfio-pci BAR: VM_IO|VM_PFNMAP, shared, vm_pgoff the region offset
 * (vfio_pci_core_mmap), pfns the BAR's: nothing to report */
TEST(diag_vfio_bar_quiet)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma bar = V(SHARED_PFNMAP);
	bar.pgoff = 0;
	CHECK_EQ(D(&lo, &bar, P, MMIO + 7, S, INV, 0, 0, 0, 0), 0);
	CHECK_EQ(pfs_diagnose_vma(&lo, &bar), 0);
}
