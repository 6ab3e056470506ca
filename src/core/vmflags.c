// SPDX-License-Identifier: MIT
/* The smaps-like names of the VM_* flags (include/linux/mm.h, and
 * show_smap_vma_flags() in fs/proc/task_mmu.c for the names). */
#include "pfnscope/json.h"

static const struct pfs_flag_name vm_flag_table[] = {
	{ PFS_VM_READ, "read" },           { PFS_VM_WRITE, "write" },
	{ PFS_VM_EXEC, "exec" },           { PFS_VM_SHARED, "shared" },
	{ PFS_VM_MAYREAD, "mayread" },     { PFS_VM_MAYWRITE, "maywrite" },
	{ PFS_VM_MAYEXEC, "mayexec" },     { PFS_VM_MAYSHARE, "mayshare" },
	{ PFS_VM_GROWSDOWN, "growsdown" }, { PFS_VM_UFFD_MISSING, "uffd_missing" },
	{ PFS_VM_PFNMAP, "pfnmap" },       { PFS_VM_UFFD_WP, "uffd_wp" },
	{ PFS_VM_LOCKED, "locked" },       { PFS_VM_IO, "io" },
	{ PFS_VM_SEQ_READ, "seqread" },    { PFS_VM_RAND_READ, "randread" },
	{ PFS_VM_DONTCOPY, "dontcopy" },   { PFS_VM_DONTEXPAND, "dontexpand" },
	{ PFS_VM_LOCKONFAULT, "lockonfault" }, { PFS_VM_ACCOUNT, "account" },
	{ PFS_VM_NORESERVE, "noreserve" }, { PFS_VM_HUGETLB, "hugetlb" },
	{ PFS_VM_SYNC, "sync" },           { PFS_VM_ARCH_1, "pat" },
	{ PFS_VM_WIPEONFORK, "wipeonfork" }, { PFS_VM_DONTDUMP, "dontdump" },
	{ PFS_VM_SOFTDIRTY, "softdirty" }, { PFS_VM_MIXEDMAP, "mixedmap" },
	{ PFS_VM_HUGEPAGE, "hugepage" },   { PFS_VM_NOHUGEPAGE, "nohugepage" },
	{ PFS_VM_MERGEABLE, "mergeable" },
};

const struct pfs_flag_name *pfs_vma_flag_table(size_t *n)
{
	*n = sizeof(vm_flag_table) / sizeof(vm_flag_table[0]);
	return vm_flag_table;
}

size_t pfs_vma_flag_names(uint64_t flags, const char **names, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(vm_flag_table) / sizeof(vm_flag_table[0]); i++) {
		if (!(flags & vm_flag_table[i].bit))
			continue;
		if (n < max)
			names[n] = vm_flag_table[i].name;
		n++;
	}
	return n;
}

