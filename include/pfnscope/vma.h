/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_VMA_H
#define PFNSCOPE_VMA_H
/*
 * VMAs: the VM_* flags, struct vm_area_struct as the core reads it, and
 * the iteration of an mm's VMAs over the maple tree of 6.1+
 * (lib/maple_tree.c: dense, leaf_64, range_64, arange_64 nodes) or the
 * pre-6.1 mm->mmap list.  Every iteration is bounded: a node or list that
 * loops or points outside memory ends the walk with
 * PFS_ELOOP/PFS_ECORRUPT/PFS_EREAD.  Tasks are in task.h.
 */
#include <stdint.h>
#include "pfnscope/target.h"

/* VM_* values of include/linux/mm.h, stable since 5.4 */
#define PFS_VM_READ       0x1ull
#define PFS_VM_WRITE      0x2ull
#define PFS_VM_EXEC       0x4ull
#define PFS_VM_SHARED     0x8ull
#define PFS_VM_MAYREAD    0x10ull
#define PFS_VM_MAYWRITE   0x20ull
#define PFS_VM_MAYEXEC    0x40ull
#define PFS_VM_MAYSHARE   0x80ull
#define PFS_VM_GROWSDOWN  0x100ull
#define PFS_VM_UFFD_MISSING 0x200ull
#define PFS_VM_PFNMAP     0x400ull
#define PFS_VM_UFFD_WP    0x1000ull
#define PFS_VM_LOCKED     0x2000ull
#define PFS_VM_IO         0x4000ull
#define PFS_VM_SEQ_READ   0x8000ull
#define PFS_VM_RAND_READ  0x10000ull
#define PFS_VM_DONTCOPY   0x20000ull
#define PFS_VM_DONTEXPAND 0x40000ull
#define PFS_VM_LOCKONFAULT 0x80000ull
#define PFS_VM_ACCOUNT    0x100000ull
#define PFS_VM_NORESERVE  0x200000ull
#define PFS_VM_HUGETLB    0x400000ull
#define PFS_VM_SYNC       0x800000ull
#define PFS_VM_ARCH_1     0x1000000ull  /* x86 VM_PAT (<= 6.16) */
#define PFS_VM_WIPEONFORK 0x2000000ull
#define PFS_VM_DONTDUMP   0x4000000ull
#define PFS_VM_SOFTDIRTY  0x8000000ull
#define PFS_VM_MIXEDMAP   0x10000000ull
#define PFS_VM_HUGEPAGE   0x20000000ull
#define PFS_VM_NOHUGEPAGE 0x40000000ull
#define PFS_VM_MERGEABLE  0x80000000ull

/* is_cow_mapping() of include/linux/mm.h */
static inline int pfs_is_cow_mapping(uint64_t vm_flags)
{
	return (vm_flags & (PFS_VM_SHARED | PFS_VM_MAYWRITE)) == PFS_VM_MAYWRITE;
}

struct pfs_vma {
	uint64_t vma;       /* VA of the vm_area_struct */
	uint64_t start, end;
	uint64_t vm_flags;
	uint64_t pgoff;
	uint64_t mm;
	uint64_t file;      /* struct file *, 0 if anonymous */
	uint64_t ops;       /* vm_ops */
	uint64_t private_data;
	/* vm_ops->access and vm_ops->find_special_page (6.18: find_normal_page);
	 * 0 when vm_ops is NULL, the member is NULL or its offset is unknown */
	uint64_t vm_ops_access;
	uint64_t vm_ops_find_special_page;
};

/* Fill a pfs_vma from the vm_area_struct at va. */
int pfs_vma_read(struct pfs_target *t, uint64_t va, struct pfs_vma *out);

/* Called per VMA in address order; return non-zero to stop (that value is
 * returned by the iterator). */
typedef int (*pfs_vma_cb)(const struct pfs_vma *vma, void *arg);
/* Iterate the VMAs of mm (VA of a struct mm_struct).  Bounded. */
int pfs_for_each_vma(struct pfs_target *t, uint64_t mm, pfs_vma_cb cb, void *arg);
/* Find the VMA containing addr; PFS_ENOENT (negated) if none. */
int pfs_find_vma(struct pfs_target *t, uint64_t mm, uint64_t addr, struct pfs_vma *out);
/* Page-table root of mm: physical address of mm->pgd. */
int pfs_mm_pgd_phys(struct pfs_target *t, uint64_t mm, uint64_t *pgd_pa);

#endif
