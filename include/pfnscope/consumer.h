/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_CONSUMER_H
#define PFNSCOPE_CONSUMER_H
/*
 * What the kernel's users of page tables would do with one entry
 * (mm/gup.c, mm/memory.c, virt/kvm/kvm_main.c, drivers/vfio/vfio_iommu_type1.c):
 * GUP-fast, GUP (slow), follow_pte /
 * follow_pfnmap_start, KVM hva_to_pfn, VFIO type1 vaddr_get_pfns and
 * access_process_vm.  Modelled for a read access (no FOLL_WRITE).
 */
#include "pfnscope/entry.h"
#include "pfnscope/layout.h"
#include "pfnscope/vma.h"

/* Fill e->consumers[] from the decoded entry, its vnp verdict (pfs_vnp
 * first) and e->page (state PFS_PAGE_NONE: page facts unknown, judged
 * from the pfn against highest_memmap_pfn). */
void pfs_consumers(const struct pfs_layout *lo, const struct pfs_vma *vma, struct pfs_entry *e);

#endif
