/* SPDX-License-Identifier: MIT */
/* The JSON strings (docs/pfnscope.schema.json) for the enums of entry.h. */
#include "pfnscope/entry.h"
#include "pfnscope/json.h"

#define NAME(table, i) ((i) < sizeof(table) / sizeof(table[0]) && table[i] ? table[i] : "?")

const char *pfs_level_name(unsigned level)
{
	static const char *const n[] = { "pte", "pmd", "pud", "p4d", "pgd" };
	return NAME(n, level);
}

const char *pfs_kind_name(unsigned kind)
{
	static const char *const n[PFS_KIND__COUNT] = {
		[PFS_KIND_NONE] = "none", [PFS_KIND_PRESENT] = "present",
		[PFS_KIND_PROTNONE] = "protnone", [PFS_KIND_SWAP] = "swap",
		[PFS_KIND_MIGRATION] = "migration", [PFS_KIND_DEVICE] = "device",
		[PFS_KIND_MARKER] = "marker", [PFS_KIND_HWPOISON] = "hwpoison",
		[PFS_KIND_UNREADABLE] = "unreadable",
	};
	return NAME(n, kind);
}

const char *pfs_vnp_reason_name(unsigned reason)
{
	static const char *const n[PFS_VNP__COUNT] = {
		[PFS_VNP_NOT_PRESENT] = "not_present", [PFS_VNP_NOT_SPECIAL] = "not_special",
		[PFS_VNP_FIND_SPECIAL_PAGE] = "find_special_page", [PFS_VNP_PFNMAP] = "pfnmap",
		[PFS_VNP_MIXEDMAP] = "mixedmap", [PFS_VNP_MIXEDMAP_INVALID] = "mixedmap_invalid",
		[PFS_VNP_LINEAR_PFNMAP] = "linear_pfnmap", [PFS_VNP_PFNMAP_NOT_COW] = "pfnmap_not_cow",
		[PFS_VNP_ZERO_PFN] = "zero_pfn", [PFS_VNP_HUGE_ZERO] = "huge_zero",
		[PFS_VNP_DEVMAP] = "devmap", [PFS_VNP_BEYOND_HIGHEST_MEMMAP] = "beyond_highest_memmap",
		[PFS_VNP_BAD_SPECIAL] = "bad_special", [PFS_VNP_HUGETLB] = "hugetlb",
		[PFS_VNP_PMD_NOT_NORMAL] = "pmd_not_normal",
	};
	return NAME(n, reason);
}

const char *pfs_consumer_name(unsigned consumer)
{
	static const char *const n[PFS_C__COUNT] = {
		[PFS_C_GUP_FAST] = "gup_fast", [PFS_C_GUP] = "gup", [PFS_C_FOLLOW_PTE] = "follow_pte",
		[PFS_C_KVM] = "kvm", [PFS_C_VFIO] = "vfio",
		[PFS_C_ACCESS_PROCESS_VM] = "access_process_vm",
	};
	return NAME(n, consumer);
}

const char *pfs_consumer_verdict_name(unsigned v)
{
	static const char *const n[PFS_CV__COUNT] = {
		[PFS_CV_NA] = "n/a", [PFS_CV_PAGE] = "page", [PFS_CV_ZERO_PAGE] = "zero_page",
		[PFS_CV_PFN] = "pfn", [PFS_CV_PFN_REF] = "pfn_ref", [PFS_CV_FALLBACK] = "fallback",
		[PFS_CV_EFAULT] = "efault", [PFS_CV_EEXIST] = "eexist", [PFS_CV_FAULT_IN] = "fault_in",
	};
	return NAME(n, v);
}

const char *pfs_diag_name(unsigned diag)
{
	static const char *const n[PFS_D__COUNT] = {
		[PFS_D_BAD_SPECIAL] = "BAD_SPECIAL", [PFS_D_PFN_BEYOND_MEMMAP] = "PFN_BEYOND_MEMMAP",
		[PFS_D_MAPS_FREED_PAGE] = "MAPS_FREED_PAGE",
		[PFS_D_REFCOUNT_BELOW_MAPCOUNT] = "REFCOUNT_BELOW_MAPCOUNT",
		[PFS_D_PFNMAP_AND_MIXEDMAP] = "PFNMAP_AND_MIXEDMAP",
		[PFS_D_SPECIAL_OVER_RAM] = "SPECIAL_OVER_RAM",
		[PFS_D_NONSPECIAL_IN_PFNMAP] = "NONSPECIAL_IN_PFNMAP",
		[PFS_D_PFNMAP_NONLINEAR_COW] = "PFNMAP_NONLINEAR_COW",
		[PFS_D_PFNMAP_COW_ANON] = "PFNMAP_COW_ANON", [PFS_D_RESERVED_NORMAL] = "RESERVED_NORMAL",
		[PFS_D_PFNMAP_WITHOUT_IO] = "PFNMAP_WITHOUT_IO",
	};
	return NAME(n, diag);
}

/* docs/diagnoses.md: CRIT > HIGH > MED > LOW */
unsigned pfs_diag_severity(unsigned diag)
{
	static const unsigned char s[PFS_D__COUNT] = {
		[PFS_D_BAD_SPECIAL] = PFS_SEV_CRITICAL, [PFS_D_PFN_BEYOND_MEMMAP] = PFS_SEV_CRITICAL,
		[PFS_D_MAPS_FREED_PAGE] = PFS_SEV_CRITICAL,
		[PFS_D_REFCOUNT_BELOW_MAPCOUNT] = PFS_SEV_HIGH, [PFS_D_PFNMAP_AND_MIXEDMAP] = PFS_SEV_HIGH,
		[PFS_D_SPECIAL_OVER_RAM] = PFS_SEV_MEDIUM, [PFS_D_NONSPECIAL_IN_PFNMAP] = PFS_SEV_HIGH,
		[PFS_D_PFNMAP_NONLINEAR_COW] = PFS_SEV_MEDIUM, [PFS_D_PFNMAP_COW_ANON] = PFS_SEV_MEDIUM,
		[PFS_D_RESERVED_NORMAL] = PFS_SEV_MEDIUM, [PFS_D_PFNMAP_WITHOUT_IO] = PFS_SEV_LOW,
	};
	return diag < PFS_D__COUNT ? s[diag] : PFS_SEV_LOW;
}

const char *pfs_severity_name(unsigned sev)
{
	static const char *const n[] = { "low", "medium", "high", "critical" };
	return NAME(n, sev);
}

const char *pfs_changed_name(unsigned what)
{
	static const char *const n[] = { "none", "entry", "table", "page", "vma" };
	return NAME(n, what);
}


uint64_t pfs_level_size(unsigned level)
{
	switch (level) {
	case PFS_LEVEL_PTE: return 1ull << 12;
	case PFS_LEVEL_PMD: return 1ull << 21;
	case PFS_LEVEL_PUD: return 1ull << 30;
	case PFS_LEVEL_P4D: return 1ull << 39;
	default:            return 1ull << 48;
	}
}

const char *pfs_page_state_name(unsigned state)
{
	static const char *const names[] = { "none", "ok", "invalid", "unreadable" };
	return state < 4 ? names[state] : "?";
}
