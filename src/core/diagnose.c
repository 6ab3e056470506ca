/* SPDX-License-Identifier: MIT */
/*
 * Diagnoses (docs/diagnoses.md; the rule numbers below order them by
 * severity, worst first; severities in names.c).  Case A = special PTE in
 * a PFNMAP VMA (fine), B = non-special COWed anon PTE in a private PFNMAP
 * VMA (wp_page_copy, mm/memory.c), C = special PTE over non-reserved RAM
 * with a struct page.
 */
#include "pfnscope/diagnose.h"
#include "internal.h"

int pfs_vma_is_special_mapping(const struct pfs_layout *lo, const struct pfs_vma *vma)
{
	if (!vma->ops)
		return 0;
	if (pfs_layout_has(lo, special_mapping_vmops) ||
	    pfs_layout_has(lo, legacy_special_mapping_vmops))
		return (pfs_layout_has(lo, special_mapping_vmops) &&
			vma->ops == lo->special_mapping_vmops) ||
		       (pfs_layout_has(lo, legacy_special_mapping_vmops) &&
			vma->ops == lo->legacy_special_mapping_vmops);
	/* symbol not supplied: _install_special_mapping() (mm/mmap.c) VMAs are the
	 * anonymous ones (no vm_file) that have vm_ops; driver mappings have a
	 * file, anonymous and shmem memory no ops or a file */
	return !vma->file;
}

static int present(const struct pfs_entry *e)
{
	return e->kind == PFS_KIND_PRESENT || e->kind == PFS_KIND_PROTNONE;
}

static int page_ok(const struct pfs_entry *e)
{
	return e->page.state == PFS_PAGE_OK;
}

static int is_zero(const struct pfs_layout *lo, const struct pfs_entry *e)
{
	if (pfs_is_zero_pfn(lo, e->pfn))
		return 1;
	if (pfs_is_huge_zero_pfn(lo, e->pfn))
		return 1;
	return page_ok(e) && (e->page.bits & PFS_PG_ZERO);
}

/* RAM with a struct page the kernel allocated: valid, not reserved (holes,
 * memblock, kernel image, ZONE_DEVICE are reserved or device) */
static int ordinary_ram(const struct pfs_entry *e)
{
	return page_ok(e) && !(e->page.bits & (PFS_PG_RESERVED | PFS_PG_ZONE_DEVICE | PFS_PG_OFFLINE));
}

static int linear(const struct pfs_vma *vma, const struct pfs_entry *e)
{
	return e->pfn == vma->pgoff + ((e->addr - vma->start) >> 12);
}

/* the special bit at pmd/pud means something only from 6.12 (pmd_special) */
static int special_meaningful(const struct pfs_layout *lo, const struct pfs_entry *e)
{
	return e->level == PFS_LEVEL_PTE || lo->vnp_profile >= PFS_VNP_6_12;
}

void pfs_diagnose_entry(const struct pfs_layout *lo, const struct pfs_vma *vma, struct pfs_entry *e)
{
	unsigned d = 0;
	uint64_t f = vma->vm_flags;

	e->diag = 0;
	if (!present(e) || e->pfn == PFS_NO_PFN || (f & PFS_VM_HUGETLB))
		return;
	int special = (e->bits & PFS_E_SPECIAL) && special_meaningful(lo, e);
	int pfnmap = (f & PFS_VM_PFNMAP) != 0;

	/* 1. CRIT: special outside PFNMAP/MIXEDMAP, not zero, not devmap:
	 * exactly vm_normal_page's print_bad_pte branch */
	if (e->vnp_reason == PFS_VNP_BAD_SPECIAL)
		d |= 1u << PFS_D_BAD_SPECIAL;

	/* 2. CRIT: non-special with pfn > highest_memmap_pfn */
	if (!special && !(e->bits & PFS_E_DEVMAP) && e->vnp_reason == PFS_VNP_BEYOND_HIGHEST_MEMMAP)
		d |= 1u << PFS_D_PFN_BEYOND_MEMMAP;

	/* 3. CRIT: maps a free (buddy) page or a slab / page-table page:
	 * use after free; special PTEs hold no reference (CVE-2024-0582) */
	if (page_ok(e) && !is_zero(lo, e) &&
	    (e->page.bits & (PFS_PG_FREE | PFS_PG_BUDDY | PFS_PG_SLAB | PFS_PG_PGTABLE)))
		d |= 1u << PFS_D_MAPS_FREED_PAGE;

	/* 4. HIGH: normal mapping with refcount < mapcount or mapcount 0; or a
	 * head/order-0 page with refcount 0 under a special PTE (freed, or a
	 * non-__GFP_COMP tail) */
	if (page_ok(e) && !(e->page.bits & PFS_PG_TYPED)) {
		if (e->normal_page && (e->page.refcount < e->page.mapcount || e->page.mapcount <= 0))
			d |= 1u << PFS_D_REFCOUNT_BELOW_MAPCOUNT;
		else if (special && !(e->page.bits & PFS_PG_TAIL) && ordinary_ram(e) &&
			 !is_zero(lo, e) && e->page.page_refcount == 0)
			d |= 1u << PFS_D_REFCOUNT_BELOW_MAPCOUNT;
	}

	/* 6. MED: case C: special over ordinary RAM in a pfn/mixed map.  Legal
	 * and common in healthy drivers: drm_gem_shmem_fault() inserts shmem
	 * pages with vmf_insert_pfn() (drivers/gpu/drm/drm_gem_shmem_helper.c:
	 * vgem, virtio-gpu), as do the time-namespace [vvar] and the perf ring
	 * (remap_pfn_range per page, kernel/events/core.c).  Worth showing
	 * because hva_to_pfn_remapped() before 6.13 takes a reference the
	 * mapping's owner does not know of.  The hazard itself, a refcount-0
	 * page under a special pte, is rule 4. */
	if (special && (f & (PFS_VM_PFNMAP | PFS_VM_MIXEDMAP)) && ordinary_ram(e) && !is_zero(lo, e))
		d |= 1u << PFS_D_SPECIAL_OVER_RAM;

	/* 7. HIGH: non-special in a PFNMAP VMA that is not COW, or maps a
	 * non-anon page, or sits at the linear pfn: rmap-accounted on zap */
	if (pfnmap && !special && !(e->bits & PFS_E_DEVMAP) && lo->has_pte_special &&
	    special_meaningful(lo, e)) {
		int anon = page_ok(e) ? (e->page.bits & PFS_PG_ANON) != 0 : 1;
		if (!pfs_is_cow_mapping(f) || !anon || linear(vma, e))
			d |= 1u << PFS_D_NONSPECIAL_IN_PFNMAP;
		else
			/* 9. MED: case B: legal COWed anon page; follow_pte users see
			 * an anon pfn (KVM <= 6.12 refs it, VFIO refuses, ...) */
			d |= 1u << PFS_D_PFNMAP_COW_ANON;
	}

	/* 8. MED: special in a COW PFNMAP VMA off the linear pfn: breaks the
	 * rule that no-special-bit arches rely on (remap_pfn_range on a COW
	 * VMA must set vm_pgoff = pfn) */
	if (pfnmap && special && pfs_is_cow_mapping(f) && !linear(vma, e))
		d |= 1u << PFS_D_PFNMAP_NONLINEAR_COW;

	/* 10. MED: normal mapping of a reserved page outside vdso-like VMAs */
	if (e->normal_page && page_ok(e) && (e->page.bits & PFS_PG_RESERVED) &&
	    !is_zero(lo, e) && !pfs_vma_is_special_mapping(lo, vma))
		d |= 1u << PFS_D_RESERVED_NORMAL;

	/* 11. LOW, entry half: a protnone special PTE in an accessible VMA
	 * (NUMA hinting never makes special PTEs protnone).  A non-linear pfn
	 * in a non-COW pfnmap is not an oddity: vm_normal_page() consults
	 * vm_pgoff only for is_cow_mapping() VMAs (mm/memory.c), so drivers
	 * map any pfn there (vfio-pci BARs at vm_pgoff = region offset, the
	 * perf ring, DRM); the COW case is rule 8. */
	if (special && e->kind == PFS_KIND_PROTNONE &&
	    (f & (PFS_VM_READ | PFS_VM_WRITE | PFS_VM_EXEC)))
		d |= 1u << PFS_D_PFNMAP_WITHOUT_IO;

	e->diag = d;
}

unsigned pfs_diagnose_vma(const struct pfs_layout *lo, const struct pfs_vma *vma)
{
	unsigned d = 0;
	uint64_t f = vma->vm_flags;

	/* 5. HIGH: PFNMAP and MIXEDMAP together: vmf_insert_pfn BUG()s */
	if ((f & PFS_VM_PFNMAP) && (f & PFS_VM_MIXEDMAP))
		d |= 1u << PFS_D_PFNMAP_AND_MIXEDMAP;
	/* 11. LOW: PFNMAP without IO, IO without PFNMAP (remap_pfn_range
	 * always sets both); [vvar]-like special mappings are legitimate
	 * (7.2 [vvar] is IO|MIXEDMAP) */
	if (!pfs_vma_is_special_mapping(lo, vma) &&
	    (((f & PFS_VM_PFNMAP) && !(f & PFS_VM_IO)) || ((f & PFS_VM_IO) && !(f & PFS_VM_PFNMAP))))
		d |= 1u << PFS_D_PFNMAP_WITHOUT_IO;
	return d;
}

int pfs_diag_max_severity(unsigned mask)
{
	int best = -1;
	for (unsigned i = 0; i < PFS_D__COUNT; i++)
		if ((mask & (1u << i)) && (int)pfs_diag_severity(i) > best)
			best = (int)pfs_diag_severity(i);
	return best;
}
