/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_ENTRY_H
#define PFNSCOPE_ENTRY_H
/*
 * One decoded page-table entry with everything pfnscope says about it: the
 * compact record the walker produces (no allocation per entry), and the
 * enums whose names are the JSON strings (docs/pfnscope.schema.json).
 */
#include <stdint.h>
#include "pfnscope/page.h"

#define PFS_NO_PFN UINT64_MAX

enum pfs_level { PFS_LEVEL_PTE = 0, PFS_LEVEL_PMD = 1, PFS_LEVEL_PUD = 2,
		 PFS_LEVEL_P4D = 3, PFS_LEVEL_PGD = 4 };

/* JSON "kind" */
enum pfs_kind {
	PFS_KIND_NONE = 0, PFS_KIND_PRESENT, PFS_KIND_PROTNONE, PFS_KIND_SWAP,
	PFS_KIND_MIGRATION, PFS_KIND_DEVICE, PFS_KIND_MARKER, PFS_KIND_HWPOISON,
	PFS_KIND_UNREADABLE,   /* the table page holding it could not be read */
	PFS_KIND__COUNT
};

/* decoded entry bits */
#define PFS_E_SPECIAL    (1u << 0)
#define PFS_E_DEVMAP     (1u << 1)
#define PFS_E_WRITE      (1u << 2)
#define PFS_E_USER       (1u << 3)
#define PFS_E_ACCESSED   (1u << 4)
#define PFS_E_DIRTY      (1u << 5)
#define PFS_E_LEAF       (1u << 6)   /* huge leaf at pmd/pud */
#define PFS_E_GLOBAL     (1u << 7)
#define PFS_E_NX         (1u << 8)
#define PFS_E_SOFT_DIRTY (1u << 9)
#define PFS_E_UFFD_WP    (1u << 10)
#define PFS_E_PWT        (1u << 11)
#define PFS_E_PCD        (1u << 12)
#define PFS_E_PAT        (1u << 13)
#define PFS_E_EXCLUSIVE  (1u << 14)  /* swap/migration exclusive */
#define PFS_E_SAVED_DIRTY (1u << 15)
#define PFS_E_CONT       (1u << 16)  /* arm64 PTE_CONT: part of a contiguous run */

/* vm_normal_page() reason, JSON "vnp_reason" */
enum pfs_vnp_reason {
	PFS_VNP_NOT_PRESENT = 0,   /* not a present entry: vnp not called */
	PFS_VNP_NOT_SPECIAL,       /* normal page (check_pfn passed) */
	PFS_VNP_FIND_SPECIAL_PAGE, /* vm_ops->find_special_page decides */
	PFS_VNP_PFNMAP,            /* special in PFNMAP: NULL */
	PFS_VNP_MIXEDMAP,          /* special in MIXEDMAP: NULL */
	PFS_VNP_MIXEDMAP_INVALID,  /* no-special arch: mixedmap !pfn_valid */
	PFS_VNP_LINEAR_PFNMAP,     /* no-special arch: pfn == vm_pgoff + off */
	PFS_VNP_PFNMAP_NOT_COW,    /* no-special arch: !is_cow_mapping */
	PFS_VNP_ZERO_PFN,
	PFS_VNP_HUGE_ZERO,
	PFS_VNP_DEVMAP,
	PFS_VNP_BEYOND_HIGHEST_MEMMAP, /* print_bad_pte + NULL */
	PFS_VNP_BAD_SPECIAL,       /* special elsewhere: print_bad_pte + NULL */
	PFS_VNP_HUGETLB,           /* hugetlb VMA: never goes through vnp */
	PFS_VNP_PMD_NOT_NORMAL,    /* vm_normal_page_pmd NULL for other reasons */
	PFS_VNP__COUNT
};

/* consumer verdicts, JSON "consumers" values */
enum pfs_consumer_verdict {
	PFS_CV_NA = 0,        /* "n/a": not present / not applicable */
	PFS_CV_PAGE,          /* gets (and refs/pins) the struct page */
	PFS_CV_ZERO_PAGE,     /* gets the zero page */
	PFS_CV_PFN,           /* gets the pfn, no page reference */
	PFS_CV_PFN_REF,       /* gets the pfn and takes a page reference (KVM) */
	PFS_CV_FALLBACK,      /* GUP-fast: bails out to slow GUP */
	PFS_CV_EFAULT,
	PFS_CV_EEXIST,
	PFS_CV_FAULT_IN,      /* not present: would fault */
	PFS_CV__COUNT
};
enum pfs_consumer { PFS_C_GUP_FAST = 0, PFS_C_GUP, PFS_C_FOLLOW_PTE, PFS_C_KVM,
		    PFS_C_VFIO, PFS_C_ACCESS_PROCESS_VM, PFS_C__COUNT };

/* diagnoses (docs/diagnoses.md); bit n of pfs_entry.diag */
enum pfs_diag {
	PFS_D_BAD_SPECIAL = 0, PFS_D_PFN_BEYOND_MEMMAP, PFS_D_MAPS_FREED_PAGE,
	PFS_D_REFCOUNT_BELOW_MAPCOUNT, PFS_D_PFNMAP_AND_MIXEDMAP, PFS_D_SPECIAL_OVER_RAM,
	PFS_D_NONSPECIAL_IN_PFNMAP, PFS_D_PFNMAP_NONLINEAR_COW, PFS_D_PFNMAP_COW_ANON,
	PFS_D_RESERVED_NORMAL, PFS_D_PFNMAP_WITHOUT_IO, PFS_D__COUNT
};
enum pfs_severity { PFS_SEV_LOW = 0, PFS_SEV_MEDIUM, PFS_SEV_HIGH, PFS_SEV_CRITICAL };

struct pfs_entry {
	uint64_t addr;        /* first VA the entry maps */
	uint64_t raw;
	uint64_t pfn;         /* PFS_NO_PFN if none (swap offset is in swp_offset) */
	uint64_t swp_offset;
	uint32_t bits;        /* PFS_E_* */
	uint32_t diag;        /* bit per enum pfs_diag */
	uint8_t level;        /* enum pfs_level */
	uint8_t kind;         /* enum pfs_kind */
	uint8_t swp_type;
	uint8_t normal_page;  /* vm_normal_page*() returns a page */
	uint8_t vnp_reason;   /* enum pfs_vnp_reason */
	uint8_t consumers[PFS_C__COUNT];  /* enum pfs_consumer_verdict */
	struct pfs_page_info page;        /* state PFS_PAGE_NONE when no pfn */
	/* PFS_WALK_CONFIRM: a diagnosis at medium or above that a re-read did
	 * not confirm.  changed is what differed (enum pfs_changed); its diag
	 * bits moved to changed_diag (diag is then 0); changed_level and the
	 * raw values are those of the entry that differed (the entry itself,
	 * or for PFS_CHANGED_TABLE the upper-level entry pointing at the
	 * table); for PFS_CHANGED_PAGE/VMA both raws are the entry's. */
	uint8_t changed;
	uint8_t changed_level;
	uint32_t changed_diag;
	uint64_t changed_raw_before, changed_raw_after;
};

/* e, a pte, made the pte count pages on whose value is raw, where every pte
 * between repeats the one before it (pfs_repeat_cb): the pfn count up, an
 * order-0 page its own head, all else the same */
static inline void pfs_entry_step(struct pfs_entry *e, uint64_t count, uint64_t raw)
{
	pfs_page_info_step(&e->page, e->pfn, count);
	e->addr += count << 12;
	e->pfn += count;
	e->raw = raw;
}

/* what a confirmation re-read found different (pfs_entry.changed) */
enum pfs_changed {
	PFS_CHANGED_NO = 0,
	PFS_CHANGED_ENTRY,   /* the entry itself */
	PFS_CHANGED_TABLE,   /* an upper-level entry on its path (table freed or replaced) */
	PFS_CHANGED_PAGE,    /* the struct page(s) behind the pfn */
	PFS_CHANGED_VMA,     /* the vm_area_struct */
	PFS_CHANGED__COUNT
};

/* Bytes of address space one record covers (for run-length summaries): the
 * entry's page size (4 KiB, 2 MiB, 1 GiB), or for PFS_KIND_UNREADABLE the
 * whole range of the unreadable table at that level (512 entries), of
 * which the walked range may use only a part starting at addr. */
static inline uint64_t pfs_entry_span(const struct pfs_entry *e)
{
	unsigned shift = 12 + 9 * (unsigned)e->level;
	if (e->kind == PFS_KIND_UNREADABLE)
		shift += 9;
	return shift >= 64 ? 0 : 1ull << shift;
}

/* Whether the entry maps a pfn in [lo, hi]: a leaf's pfn, or any pfn of a
 * PMD/PUD leaf; PFN swap entries (migration, device) name their pfn too.
 * What an rmap walk over page tables finds (special entries included,
 * which the kernel's own rmap cannot). */
static inline int pfs_entry_maps_pfn(const struct pfs_entry *e, uint64_t lo, uint64_t hi)
{
	uint64_t n;

	if (e->pfn == PFS_NO_PFN || e->kind == PFS_KIND_UNREADABLE || e->pfn > hi)
		return 0;
	n = pfs_entry_span(e) >> 12;
	return n && e->pfn + (n - 1) >= lo;
}

const char *pfs_level_name(unsigned level);       /* "pte" "pmd" "pud" */
const char *pfs_kind_name(unsigned kind);          /* "present" ... "unreadable" */
const char *pfs_vnp_reason_name(unsigned reason);  /* "not_special" ... */
const char *pfs_consumer_name(unsigned consumer);  /* "gup_fast" ... */
const char *pfs_consumer_verdict_name(unsigned v); /* "page" "pfn" "efault" ... */
const char *pfs_diag_name(unsigned diag);          /* "BAD_SPECIAL" ... */
unsigned pfs_diag_severity(unsigned diag);         /* enum pfs_severity */
const char *pfs_severity_name(unsigned sev);       /* "low" "medium" "high" "critical" */
const char *pfs_changed_name(unsigned what);       /* "entry" "table" "page" "vma" */

#endif
