/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_VNP_H
#define PFNSCOPE_VNP_H
/*
 * vm_normal_page() / vm_normal_page_pmd() / vm_normal_page_pud() of
 * mm/memory.c, per semantics profile (enum pfs_vnp_profile).
 */
#include "pfnscope/entry.h"
#include "pfnscope/layout.h"
#include "pfnscope/vma.h"

/*
 * Fill e->normal_page and e->vnp_reason for the decoded entry e (kind,
 * bits, pfn, level) mapped at e->addr in vma.  pfn_valid: 1/0, the
 * pfn_valid() the no-special-bit MIXEDMAP path asks.  Entries that are not
 * present (or protnone: the kernel's pte_present() is true for those)
 * get PFS_VNP_NOT_PRESENT.  find_special_page (Xen gntdev only) cannot be
 * called: when vma->vm_ops_find_special_page is set the reason is
 * PFS_VNP_FIND_SPECIAL_PAGE and normal_page is pfn_valid (gntdev returns
 * the granted page it mapped).
 */
void pfs_vnp(const struct pfs_layout *lo, const struct pfs_vma *vma, struct pfs_entry *e, int pfn_valid);

/* The kernel would print "Bad page map" (print_bad_pte/print_bad_page_map)
 * for this verdict: zap, fork and GUP hit it. */
int pfs_vnp_is_bad_map(const struct pfs_layout *lo, const struct pfs_entry *e);

#endif
