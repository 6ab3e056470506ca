/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_DIAGNOSE_H
#define PFNSCOPE_DIAGNOSE_H
/*
 * Diagnoses (docs/diagnoses.md: each code's kernel rule and source).  Entry
 * codes go to e->diag; the VMA-level ones (PFNMAP_AND_MIXEDMAP, and the
 * flag half of PFNMAP_WITHOUT_IO) come from pfs_diagnose_vma() once per
 * VMA and are not repeated on every entry.
 */
#include "pfnscope/entry.h"
#include "pfnscope/layout.h"
#include "pfnscope/vma.h"

/* Set e->diag (bit per enum pfs_diag) for one entry: needs kind, bits,
 * pfn, vnp verdict and page. */
void pfs_diagnose_entry(const struct pfs_layout *lo, const struct pfs_vma *vma, struct pfs_entry *e);
/* VMA-level diagnoses: bit per enum pfs_diag. */
unsigned pfs_diagnose_vma(const struct pfs_layout *lo, const struct pfs_vma *vma);
/* A [vdso]/[vvar]-like mapping (special_mapping_vmops): its reserved
 * normal pages and non-linear pfns are legitimate. */
int pfs_vma_is_special_mapping(const struct pfs_layout *lo, const struct pfs_vma *vma);
/* Highest severity among the bits of mask, -1 when mask is 0. */
int pfs_diag_max_severity(unsigned mask);

#endif
