/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_LAYOUT_H
#define PFNSCOPE_LAYOUT_H
/*
 * Everything the core must know about one target kernel: offsets and sizes
 * of the structures it decodes, symbol values, VMCOREINFO facts and the
 * semantics profile.  Front ends fill it once per target (from drgn types,
 * gdb types, or by hand in unit tests); pfs_layout_validate() names the
 * first missing field.  Offsets are bytes; PFS_ABSENT marks a field the
 * target's types do not have (detect from types, not from the version:
 * distribution kernels backport).
 */
#include <stdint.h>

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
	/* --- target facts --- */
	enum pfs_arch arch;
	unsigned int version_major, version_minor, version_patch; /* from UTS_RELEASE */
	enum pfs_vnp_profile vnp_profile;
	enum pfs_kvm_profile kvm_profile;
	int pgtable_levels;          /* 4 or 5 (VMCOREINFO pgtable_l5_enabled) */
	int has_pte_special;         /* CONFIG_ARCH_HAS_PTE_SPECIAL: 1 on x86-64/arm64 */
	enum pfs_follow_profile follow_profile;
	int devmap_bit;              /* x86: 58 (<=6.5), 57 (6.6..6.16), -1 (6.17+) */
	int saved_dirty_bit;         /* x86: 58 from 6.6 (_PAGE_BIT_SAVED_DIRTY), else -1 */
	uint64_t sme_mask;           /* VMCOREINFO NUMBER(sme_mask) */
	uint64_t phys_base;          /* VMCOREINFO NUMBER(phys_base) */
	uint64_t kaslr_offset;       /* VMCOREINFO KERNELOFFSET */
	uint64_t page_offset_base;   /* direct map base */
	uint64_t vmemmap_base;
	uint64_t init_top_pgt;       /* VA of init_top_pgt / swapper_pg_dir (relocated) */
	uint64_t start_kernel_map;   /* __START_KERNEL_map, 0xffffffff80000000 on x86-64 */
	uint64_t max_physmem_bits;   /* 46 (4-level) or 52 (5-level) */
	/* arm64 only (required by pfs_layout_validate for PFS_ARCH_ARM64; the
	 * root table is init_top_pgt = swapper_pg_dir, the linear map base is
	 * page_offset_base = PAGE_OFFSET), arch/arm64/include/asm/memory.h:
	 *   __kimg_to_phys(va) = va - kimage_voffset     (kernel image)
	 *   __lm_to_phys(va) = va - PAGE_OFFSET + PHYS_OFFSET  (linear map) */
	uint64_t kimage_voffset;     /* VMCOREINFO NUMBER(kimage_voffset); 0 = unknown */
	uint64_t phys_offset;        /* VMCOREINFO NUMBER(PHYS_OFFSET) (memstart_addr); UINT64_MAX = unknown */
	uint32_t va_bits;            /* VMCOREINFO NUMBER(VA_BITS); only 48 (4K, 4 levels) supported */

	/* swap-entry type numbers (include/linux/swap.h) for this kernel */
	int max_swapfiles;           /* first non-swap-device type */
	int swp_hwpoison, swp_migration_read, swp_migration_read_exclusive,
	    swp_migration_write, swp_device_read, swp_device_write,
	    swp_device_exclusive_read, swp_device_exclusive_write,
	    swp_pte_marker, swp_swapin_error;   /* -1 when absent */
	/* PTE_MARKER_* bits (include/linux/swapops.h), -1 when absent */
	int pte_marker_uffd_wp, pte_marker_poisoned, pte_marker_guard;

	/* --- symbol values (already read by the front end) --- */
	uint64_t init_task;          /* VA of init_task */
	uint64_t highest_memmap_pfn; /* value of highest_memmap_pfn */
	uint64_t zero_pfn;           /* value of zero_pfn / zero_page_pfn */
	uint64_t huge_zero_pfn;      /* value of huge_zero_pfn, UINT64_MAX if unused */
	uint64_t mem_section;        /* value of mem_section (SPARSEMEM_EXTREME: pointer to roots) */
	int sparsemem_extreme;
	uint64_t nr_section_roots;   /* NR_SECTION_ROOTS */
	uint64_t sections_per_root;  /* SECTIONS_PER_ROOT */
	int section_size_bits;       /* SECTION_SIZE_BITS: 27 on x86-64 */
	int pfn_section_shift;       /* SECTION_SIZE_BITS - PAGE_SHIFT */
	int subsection_shift;        /* SUBSECTION_SHIFT: 21 */

	/* --- struct page --- */
	uint32_t page_size;          /* sizeof(struct page), usually 64 */
	int32_t page_flags;          /* flags */
	int32_t page_refcount;       /* _refcount */
	int32_t page_mapcount;       /* _mapcount (also page_type in some kernels) */
	int32_t page_page_type;      /* page_type when it is its own field, else PFS_ABSENT */
	int32_t page_mapping;        /* mapping */
	int32_t page_index;          /* index */
	int32_t page_private;        /* private (buddy order) */
	int32_t page_compound_head;  /* compound_head, or compound_info (7.1+) */
	int compound_info_is_mask;   /* 7.1+ compound_info may hold a mask */
	int32_t page_compound_mapcount;  /* 6.1 page[1].compound_mapcount, else ABSENT */
	int32_t folio_entire_mapcount;   /* 6.2..6.9 folio._entire_mapcount (offset in folio) */
	int32_t folio_nr_pages_mapped;
	int32_t folio_large_mapcount;    /* 6.10+ folio._large_mapcount */
	int32_t page_compound_order;     /* page[1].compound_order (<= 6.1) or folio._folio_order
					  * (6.1 .. 6.5), u8; else ABSENT */
	int32_t folio_flags_1;           /* folio._flags_1: the order in its low byte from 6.6,
					  * used only when page_compound_order is ABSENT */
	/* Every field below is "absent when
	 * <= 0" so a zero-filled layout stays safe (0 is never a valid value
	 * for any of them).  Offsets of page[1] fields may be given either
	 * within struct page or within struct folio (>= page_size). */
	int32_t page_compound_dtor;      /* 6.1 page[1].compound_dtor, 6.2..6.8 folio._folio_dtor (u8) */
	int hugetlb_page_dtor;           /* VMCOREINFO NUMBER(HUGETLB_PAGE_DTOR) where dtors exist */
	int pg_double_map;               /* <= 6.1 PG_double_map (= PG_workingset, on page[1]) */
	int pg_hugetlb_second;           /* 6.6 .. 6.8 PG_hugetlb, a page[1] flag */
	int nr_page_orders;              /* NR_PAGE_ORDERS (MAX_ORDER on <= 6.3); 0 means 11 */
	enum pfs_page_type_scheme page_type_scheme;
	enum pfs_mapcount_scheme mapcount_scheme;
	/* page types; 6.1 values are bit masks (PG_buddy 0x80, PG_table 0x200,
	 * PG_offline 0x100, PG_guard 0x400); PGTY values are top-byte codes */
	uint32_t pgtype_buddy, pgtype_table, pgtype_slab, pgtype_offline, pgtype_hugetlb;
	/* enum pageflags: value of each PG_ name, -1 when absent */
	int pg_locked, pg_reserved, pg_head, pg_slab, pg_lru, pg_swapbacked,
	    pg_swapcache, pg_hwpoison, pg_private, pg_dirty, pg_uptodate, pg_mlocked;
	/* names indexed by bit, for printing (NULL where no name) */
	const char *pageflag_names[PFS_MAX_PAGEFLAGS];

	/* --- struct mem_section / mem_section_usage --- */
	uint32_t mem_section_size;
	int32_t mem_section_section_mem_map;
	int32_t mem_section_usage;
	int32_t usage_subsection_map;

	/* --- vm_area_struct --- */
	int32_t vma_vm_start, vma_vm_end, vma_vm_flags, vma_vm_pgoff, vma_vm_mm,
	        vma_vm_file, vma_vm_ops, vma_vm_private_data;
	int32_t vma_vm_next;         /* <= 6.0 list; ABSENT on 6.1+ */
	uint32_t vma_size;

	/* --- mm_struct --- */
	int32_t mm_pgd;
	int32_t mm_mm_mt;            /* mm_mt (struct maple_tree), ABSENT before 6.1 */
	int32_t mm_mmap;             /* <= 6.0 mmap list head, else ABSENT */
	int32_t maple_tree_ma_root;  /* offset of ma_root in struct maple_tree */

	/* --- maple_node (lib/maple_tree.c) --- */
	uint32_t maple_node_size;    /* 256 */
	int maple_range64_slots;     /* MAPLE_RANGE64_SLOTS: 16 */
	int maple_arange64_slots;    /* MAPLE_ARANGE64_SLOTS: 10 */
	int maple_dense_slots;       /* MAPLE_NODE_SLOTS: 31 */
	int32_t maple_range64_pivot, maple_range64_slot;   /* offsets in maple_node */
	int32_t maple_arange64_pivot, maple_arange64_slot;
	/* <= 0 means "derive from the above":
	 * struct maple_metadata (end, gap) follows slot[15] of maple_range_64
	 * (248) and gap[] of maple_arange_64 (240); dense slots start at 8. */
	int32_t maple_range64_meta, maple_arange64_meta, maple_node_slot;

	/* --- task_struct --- */
	int32_t task_tasks, task_pid, task_tgid, task_mm, task_comm, task_flags;
	uint32_t task_comm_len;      /* TASK_COMM_LEN */
	/* pid idr, the fallback when the task list is broken (optional:
	 * init_pid_ns 0 / offsets PFS_ABSENT disable it) */
	uint64_t init_pid_ns;        /* VA of init_pid_ns */
	int32_t pidns_idr_xa_head;   /* pid_namespace.idr.idr_rt.xa_head */
	int32_t xa_node_shift, xa_node_slots;   /* struct xa_node */
	uint32_t xa_chunk_size;      /* XA_CHUNK_SIZE: ARRAY_SIZE(xa_node.slots), 64 */
	int32_t pid_tasks0;          /* struct pid.tasks[PIDTYPE_PID].first */
	int32_t pid_nr0;             /* struct pid.numbers[0].nr */
	int32_t task_pid_links0;     /* task_struct.pid_links[PIDTYPE_PID] */

	/* --- file / path / dentry for the VMA file name (optional) --- */
	int32_t file_f_path, path_dentry, dentry_d_name, qstr_name;
	/* vm_operations_struct pointers that name legitimate mappings (optional, 0) */
	uint64_t special_mapping_vmops; /* VA of special_mapping_vmops ([vdso]/[vvar]) */
	uint64_t legacy_special_mapping_vmops;
	/* offsets in struct vm_operations_struct, PFS_ABSENT when unknown; the
	 * VMA reader fills pfs_vma.vm_ops_access / vm_ops_find_special_page */
	int32_t vmops_access, vmops_find_special_page;
};

/* Fill every field with PFS_ABSENT / 0 / -1 defaults. */
void pfs_layout_init(struct pfs_layout *lo);
/* Fill the version-derived facts (profiles, devmap bit, swap type numbers,
 * schemes not visible in types) from version_major/minor; front ends call it
 * after setting the version and may then override from types. */
void pfs_layout_set_version(struct pfs_layout *lo, unsigned major, unsigned minor, unsigned patch);
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
