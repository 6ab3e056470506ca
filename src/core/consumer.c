/* SPDX-License-Identifier: MIT */
/*
 * Consumer verdicts (mm/gup.c, mm/memory.c, virt/kvm/kvm_main.c,
 * drivers/vfio/vfio_iommu_type1.c); each function names the kernel
 * function it mirrors.  A read access is modelled (no FOLL_WRITE), so
 * write-permission checks (pte_access_permitted for writes, KVM's
 * pte_write test in 5.15+) do not refuse anything here.
 */
#include "pfnscope/consumer.h"
#include "internal.h"

static int present(const struct pfs_entry *e)
{
	return e->kind == PFS_KIND_PRESENT || e->kind == PFS_KIND_PROTNONE;
}

static int fault_can_fix(const struct pfs_entry *e)
{
	/* a fault would populate / swap in / wait for migration */
	return e->kind == PFS_KIND_NONE || e->kind == PFS_KIND_SWAP ||
	       e->kind == PFS_KIND_MIGRATION || e->kind == PFS_KIND_DEVICE ||
	       e->kind == PFS_KIND_MARKER || e->kind == PFS_KIND_PROTNONE;
}

/* pfn_valid() (include/linux/mmzone.h), from the decoded page when there
 * is one */
static int pfn_valid(const struct pfs_layout *lo, const struct pfs_entry *e)
{
	switch (e->page.state) {
	case PFS_PAGE_OK:
	case PFS_PAGE_UNREADABLE:
		return 1;
	case PFS_PAGE_INVALID:
		return 0;
	default:
		return e->pfn <= lo->highest_memmap_pfn;
	}
}

static int reserved(const struct pfs_entry *e)
{
	return e->page.state == PFS_PAGE_OK && (e->page.bits & PFS_PG_RESERVED);
}

static int zone_device(const struct pfs_entry *e)
{
	return e->page.state == PFS_PAGE_OK && (e->page.bits & PFS_PG_ZONE_DEVICE);
}

/* this struct page's own _refcount (get_page_unless_zero on the page) */
static int page_rc_zero(const struct pfs_entry *e)
{
	return e->page.state == PFS_PAGE_OK && e->page.page_refcount <= 0;
}

/* the folio's refcount (try_grab_folio / try_get_folio) */
static int folio_rc_zero(const struct pfs_entry *e)
{
	return e->page.state == PFS_PAGE_OK && e->page.refcount <= 0;
}

/* mm/gup.c gup_fast_pte_range / gup_fast_pmd_leaf (gup_pte_range,
 * gup_huge_pmd in 6.1): never looks at the VMA. */
static unsigned gup_fast(const struct pfs_entry *e)
{
	if (e->kind != PFS_KIND_PRESENT)
		return PFS_CV_FALLBACK;          /* !pte_present, pte_protnone */
	if (e->bits & PFS_E_DEVMAP)
		return PFS_CV_PAGE;              /* __gup_device_huge / dev_pagemap */
	if (e->bits & PFS_E_SPECIAL)
		return PFS_CV_FALLBACK;          /* pte_special (pmd_special 6.12+) */
	if (e->pfn == PFS_NO_PFN || e->page.state == PFS_PAGE_INVALID || folio_rc_zero(e))
		return PFS_CV_FALLBACK;          /* try_grab_folio fails */
	return PFS_CV_PAGE;
}

/* mm/gup.c __get_user_pages: check_vma_flags, then follow_page_mask /
 * follow_page_pte (vm_normal_page, zero page, follow_pfn_pte -EEXIST),
 * faultin_page for what is not present. */
static unsigned gup(const struct pfs_layout *lo, const struct pfs_vma *vma, const struct pfs_entry *e)
{
	if (vma->vm_flags & (PFS_VM_IO | PFS_VM_PFNMAP))
		return PFS_CV_EFAULT;
	if (!(vma->vm_flags & (PFS_VM_READ | PFS_VM_MAYREAD)))
		return PFS_CV_EFAULT;            /* check_vma_flags: !(vm_flags & VM_READ) w/o FOLL_FORCE */
	if (e->kind == PFS_KIND_HWPOISON)
		return PFS_CV_EFAULT;            /* -EHWPOISON */
	if (e->kind == PFS_KIND_PROTNONE && !(vma->vm_flags & (PFS_VM_READ | PFS_VM_WRITE | PFS_VM_EXEC)))
		return PFS_CV_EFAULT;
	if (!present(e) || e->kind == PFS_KIND_PROTNONE)
		return fault_can_fix(e) ? PFS_CV_FAULT_IN : PFS_CV_EFAULT;
	if (e->normal_page || (e->bits & PFS_E_DEVMAP))
		return folio_rc_zero(e) ? PFS_CV_EFAULT : PFS_CV_PAGE;
	if (pfs_is_zero_pfn(lo, e->pfn) || e->vnp_reason == PFS_VNP_ZERO_PFN ||
	    e->vnp_reason == PFS_VNP_HUGE_ZERO)
		return PFS_CV_ZERO_PAGE;
	return PFS_CV_EEXIST;                    /* follow_pfn_pte */
}

static int pfnmap_vma(const struct pfs_vma *vma)
{
	return (vma->vm_flags & (PFS_VM_IO | PFS_VM_PFNMAP)) != 0;
}

/* mm/memory.c follow_pte (<= 6.9: any mm; 6.10-6.11: the VMA must be
 * IO|PFNMAP) and follow_pfnmap_start (6.12+, pmd/pud leaves too). */
static unsigned follow_pte(const struct pfs_layout *lo, const struct pfs_vma *vma, const struct pfs_entry *e)
{
	if (lo->follow_profile >= PFS_FOLLOW_PTE_VMA && !pfnmap_vma(vma))
		return PFS_CV_EFAULT;            /* -EINVAL */
	if (e->level != PFS_LEVEL_PTE && lo->follow_profile < PFS_FOLLOW_PFNMAP_START)
		return PFS_CV_EFAULT;            /* pmd leaf: pmd_bad / pmd_trans_huge -> -EINVAL */
	if (!present(e))
		return PFS_CV_EFAULT;            /* !pte_present -> -EINVAL */
	return PFS_CV_PFN;
}

/* fixup_user_fault() + retry for what a fault would fix */
static unsigned follow_fault(const struct pfs_layout *lo, const struct pfs_vma *vma, const struct pfs_entry *e)
{
	if (!present(e) && fault_can_fix(e))
		return PFS_CV_FAULT_IN;
	return follow_pte(lo, vma, e);
}

/* virt/kvm/kvm_main.c hva_to_pfn: fast GUP, slow GUP, then
 * hva_to_pfn_remapped for IO|PFNMAP VMAs. */
static unsigned kvm(const struct pfs_layout *lo, const struct pfs_vma *vma, const struct pfs_entry *e,
		    unsigned gup_fast_v, unsigned gup_v)
{
	if (gup_fast_v == PFS_CV_PAGE || gup_v == PFS_CV_PAGE)
		return PFS_CV_PAGE;
	if (gup_v == PFS_CV_ZERO_PAGE)
		return PFS_CV_ZERO_PAGE;
	if (gup_v == PFS_CV_FAULT_IN)
		return PFS_CV_FAULT_IN;
	if (!pfnmap_vma(vma))
		return PFS_CV_EFAULT;
	unsigned f = follow_fault(lo, vma, e);
	if (f != PFS_CV_PFN)
		return f;
	int valid = pfn_valid(lo, e);
	switch (lo->kvm_profile) {
	case PFS_KVM_5_4:
		/* kvm_get_pfn: get_page unless kvm_is_reserved_pfn (!valid || Reserved) */
		return valid && !reserved(e) ? PFS_CV_PFN_REF : PFS_CV_PFN;
	case PFS_KVM_5_15:
		/* kvm_try_get_pfn: get_page_unless_zero unless reserved */
		if (!valid || reserved(e))
			return PFS_CV_PFN;
		return page_rc_zero(e) ? PFS_CV_EFAULT : PFS_CV_PFN_REF;
	case PFS_KVM_6_0:
		/* kvm_pfn_to_refcounted_page: valid && (!Reserved || zero || ZONE_DEVICE),
		 * then get_page_unless_zero (a tail page with rc 0 -> -EFAULT) */
		if (!valid || (reserved(e) && !pfs_is_zero_pfn(lo, e->pfn) && !zone_device(e)))
			return PFS_CV_PFN;
		return page_rc_zero(e) ? PFS_CV_EFAULT : PFS_CV_PFN_REF;
	case PFS_KVM_6_13:
	default:
		return PFS_CV_PFN;   /* "Stop grabbing references to PFNMAP'd pages" */
	}
}

/* drivers/vfio/vfio_iommu_type1.c vaddr_get_pfns: pin_user_pages_remote,
 * then for VM_PFNMAP follow_fault_pfn accepted if is_invalid_reserved_pfn. */
static unsigned vfio(const struct pfs_layout *lo, const struct pfs_vma *vma, const struct pfs_entry *e,
		     unsigned gup_v)
{
	if (gup_v == PFS_CV_PAGE || gup_v == PFS_CV_ZERO_PAGE || gup_v == PFS_CV_FAULT_IN)
		return gup_v;
	if (!(vma->vm_flags & PFS_VM_PFNMAP))
		return PFS_CV_EFAULT;
	unsigned f = follow_fault(lo, vma, e);
	if (f != PFS_CV_PFN)
		return f;
	return !pfn_valid(lo, e) || reserved(e) ? PFS_CV_PFN : PFS_CV_EFAULT;
}

/* mm/memory.c __access_remote_vm: get_user_pages_remote(FOLL_FORCE), else
 * vm_ops->access = generic_access_phys: follow_pte + ioremap_prot, which on
 * x86 refuses RAM that is not reserved (__ioremap_check_ram). */
static unsigned access_process_vm(const struct pfs_layout *lo, const struct pfs_vma *vma,
				  const struct pfs_entry *e, unsigned gup_v)
{
	if (gup_v == PFS_CV_PAGE || gup_v == PFS_CV_ZERO_PAGE || gup_v == PFS_CV_FAULT_IN)
		return gup_v;
	if (!vma->vm_ops_access)
		return PFS_CV_EFAULT;
	if (!present(e) || e->level != PFS_LEVEL_PTE)
		return PFS_CV_EFAULT;
	return !pfn_valid(lo, e) || reserved(e) ? PFS_CV_PFN : PFS_CV_EFAULT;
}

void pfs_consumers(const struct pfs_layout *lo, const struct pfs_vma *vma, struct pfs_entry *e)
{
	if (e->kind == PFS_KIND_UNREADABLE) {
		for (unsigned i = 0; i < PFS_C__COUNT; i++)
			e->consumers[i] = PFS_CV_NA;
		return;
	}
	unsigned gf = gup_fast(e);
	unsigned g = gup(lo, vma, e);
	e->consumers[PFS_C_GUP_FAST] = (uint8_t)gf;
	e->consumers[PFS_C_GUP] = (uint8_t)g;
	e->consumers[PFS_C_FOLLOW_PTE] = (uint8_t)follow_pte(lo, vma, e);
	e->consumers[PFS_C_KVM] = (uint8_t)kvm(lo, vma, e, gf, g);
	e->consumers[PFS_C_VFIO] = (uint8_t)vfio(lo, vma, e, g);
	e->consumers[PFS_C_ACCESS_PROCESS_VM] = (uint8_t)access_process_vm(lo, vma, e, g);
}
