/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_LAYOUT_H
#define PFNSCOPE_LAYOUT_H
/*
 * Everything the core must know about one target kernel: offsets and sizes
 * of the structures it decodes, symbol values, VMCOREINFO facts and the
 * semantics profile.  Front ends fill it once per target (from drgn types,
 * gdb types, or by hand in unit tests); pfs_layout_validate() names the
 * first missing field.  The members are listed once, with what "absent"
 * means for each, in pfnscope/layout-fields.def.  Offsets are bytes;
 * PFS_ABSENT marks a field the target does not have (detect from types,
 * not from the version: distribution kernels backport).
 */
#include <stdint.h>

/* "Absent": all ones in the member's type (-1, UINT32_MAX, UINT64_MAX),
 * the value no offset, bit number, pfn or address of a real kernel has.
 * Assign it as is; test it only with pfs_layout_has(). */
#define PFS_ABSENT (-1)

enum pfs_arch { PFS_ARCH_X86_64 = 1, PFS_ARCH_ARM64 = 2 };

/* vm_normal_page() semantics (mm/memory.c) per kernel generation. */
enum pfs_vnp_profile {
	PFS_VNP_LE_6_11 = 1,  /* 5.4 .. 6.11: print_bad_pte, _pmd without special */
	PFS_VNP_6_12 = 2,     /* 6.12 .. 6.17: pmd_special checked, devmap until 6.16 */
	PFS_VNP_6_18 = 3,     /* 6.18+: __vm_normal_page for pte/pmd/pud */
};

/* KVM hva_to_pfn_remapped() generations (virt/kvm/kvm_main.c). */
enum pfs_kvm_profile {
	PFS_KVM_5_4 = 1,      /* follow_pfn + kvm_get_pfn, no write check */
	PFS_KVM_5_15 = 2,     /* follow_pte + kvm_try_get_pfn */
	PFS_KVM_6_0 = 3,      /* kvm_pfn_to_refcounted_page (6.0 .. 6.12) */
	PFS_KVM_6_13 = 4,     /* never takes a reference */
};

/* follow_pte() / follow_pfnmap_start() generations (mm/memory.c). */
enum pfs_follow_profile {
	PFS_FOLLOW_PTE_MM = 1,        /* <= 6.9: follow_pte(mm, ...), any VMA */
	PFS_FOLLOW_PTE_VMA = 2,       /* 6.10 .. 6.11: follow_pte(vma), requires IO|PFNMAP */
	PFS_FOLLOW_PFNMAP_START = 3,  /* 6.12+: follow_pfnmap_start, PMD/PUD leaves too */
};

/* How page_type shares _mapcount (include/linux/page-flags.h). */
enum pfs_page_type_scheme {
	PFS_PGTYPE_6_1 = 1,   /* base 0xf0000000, type bit cleared when set */
	PFS_PGTYPE_PGTY = 2,  /* 6.12+: top byte is the PGTY_* value */
};

/* struct page mapcount generations (folio_mapcount(), include/linux/mm.h). */
enum pfs_mapcount_scheme {
	PFS_MAPCOUNT_COMPOUND = 1,  /* <= 6.1: compound_mapcount in page[1] */
	PFS_MAPCOUNT_ENTIRE = 2,    /* 6.2 .. 6.9: _entire_mapcount, _nr_pages_mapped */
	PFS_MAPCOUNT_LARGE = 3,     /* 6.10+: _large_mapcount */
};

#define PFS_MAX_PAGEFLAGS 64

struct pfs_layout {
#define PFS_LAYOUT_FIELD(type, name, init) type name;
#include "pfnscope/layout-fields.def"
#undef PFS_LAYOUT_FIELD
	/* names of the page flags indexed by bit, for printing (NULL where
	 * no name) */
	const char *pageflag_names[PFS_MAX_PAGEFLAGS];
};

/* pfs_layout_has(lo, name): whether member name of *lo is known (not
 * PFS_ABSENT), one function per member so the comparison is made in the
 * member's own type. */
#define PFS_LAYOUT_FIELD(type, name, init) \
	static inline int pfs_layout_has_##name(const struct pfs_layout *lo) \
	{ return lo->name != (type)PFS_ABSENT; }
#include "pfnscope/layout-fields.def"
#undef PFS_LAYOUT_FIELD
#define pfs_layout_has(lo, name) pfs_layout_has_##name(lo)

/* Give every field its init value of layout-fields.def (absent, or the
 * x86-64 default) and no page flag names. */
void pfs_layout_init(struct pfs_layout *lo);
/* Fill the version-derived facts (profiles, devmap bit, swap type numbers,
 * schemes not visible in types) from version_major/minor; front ends call it
 * after setting the version and may then override from types. */
void pfs_layout_set_version(struct pfs_layout *lo, unsigned major, unsigned minor, unsigned patch);
/* The page type values (pgtype_*) of a scheme for the layout's version:
 * the one place that knows them (pfs_layout_set_version() uses the
 * version's scheme; a front end that finds the other scheme in the types
 * asks for it). */
void pfs_layout_set_page_types(struct pfs_layout *lo, enum pfs_page_type_scheme scheme);
/* Swap-entry type numbers for a kernel whose MAX_SWAPFILES (the length of
 * swap_info[], mm/swapfile.c) is known; after pfs_layout_set_version().
 * -1 (layout unchanged) when no configuration of that version has it. */
int pfs_layout_set_max_swapfiles(struct pfs_layout *lo, int max_swapfiles);
/* The same from CONFIG_DEVICE_PRIVATE (on or off), the one configuration
 * MAX_SWAPFILES depends on when the other swap options are on: for a
 * source without the type of swap_info[] (BTF), told by kallsyms. */
int pfs_layout_set_device_private(struct pfs_layout *lo, int device_private);
/* 0 if usable; else -1 and *missing names the first missing field. */
int pfs_layout_validate(const struct pfs_layout *lo, const char **missing);

#endif
