/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_TEST_MOCK_H
#define PFNSCOPE_TEST_MOCK_H
/*
 * Mock target for unit tests and the fuzzer.
 *
 * struct mock_mem: sparse physical memory of 4 KiB pages, allocated on the
 * first write; a page never written reads as zeros (like RAM) unless
 * mem.strict is set (then it is unavailable, like a filtered dump page);
 * any page can be marked unreadable.  mock_read_phys is its
 * pfs_read_phys_fn (ctx = the struct mock_mem).
 *
 * struct mock_kernel: a Debian 6.1-like x86-64 kernel in that memory:
 * a pfs_layout with 6.1 struct page offsets (flags 0, compound_head 8,
 * mapping 24, index 32, private 40, _mapcount 48, _refcount 52; page[1]:
 * compound_order 17, compound_mapcount 20), or the folio fields of the
 * chosen version; kernel page tables (init_top_pgt, 4 or 5 levels) that map
 *   - the direct map at page_offset_base: PA [0, 64 GiB) with 1 GiB leaves,
 *   - the vmemmap at vmemmap_base with 2 MiB leaves, added on demand when a
 *     struct page is touched through mock_page_*,
 *   - the kernel image: start_kernel_map + x -> phys_base + x, 2 MiB leaves,
 *     [start_kernel_map, +64 MiB);
 * mem_section (SPARSEMEM_EXTREME) with RAM pfns [0, MOCK_RAM_PFNS) valid.
 * Physical map: kernel image at phys_base (0x2a000000); pages handed out by
 * mock_alloc_pfn from pfn MOCK_FIRST_ALLOC_PFN (4 GiB) up; vmemmap backing
 * from MOCK_VMEMMAP_BACKING_PFN (16 GiB) up; RAM ends at MOCK_RAM_PFNS
 * (highest_memmap_pfn = MOCK_RAM_PFNS - 1).  Pfns >= MOCK_RAM_PFNS have no
 * struct page (MMIO for tests).
 *
 * All mock_write_* helpers flush k->rd's cache, so a test may read, change
 * memory and read again.
 */
#include <stddef.h>
#include <stdint.h>
#include "pfnscope/layout.h"
#include "pfnscope/reader.h"
#include "pfnscope/target.h"

#define MOCK_RAM_PFNS            0x440000ull  /* 17 GiB */
#define MOCK_FIRST_ALLOC_PFN     0x100000ull  /* 4 GiB */
#define MOCK_VMEMMAP_BACKING_PFN 0x400000ull  /* 16 GiB */
#define MOCK_MMIO_PFN            0x8000000ull /* 512 GiB: no struct page */
#define MOCK_PHYS_BASE           0x2a000000ull
#define MOCK_DIRECT_MAP_GB       64

/* x86-64 entry bits for building raw entries */
#define MOCK_P     0x1ull
#define MOCK_RW    0x2ull
#define MOCK_US    0x4ull
#define MOCK_PWT   0x8ull
#define MOCK_PCD   0x10ull
#define MOCK_A     0x20ull
#define MOCK_D     0x40ull
#define MOCK_PSE   0x80ull
#define MOCK_G     0x100ull
#define MOCK_PROTNONE 0x100ull
#define MOCK_SPECIAL 0x200ull
#define MOCK_UFFD_WP 0x400ull
#define MOCK_SOFT_DIRTY 0x800ull
#define MOCK_NX    (1ull << 63)
#define MOCK_USER_PTE (MOCK_P | MOCK_RW | MOCK_US | MOCK_A | MOCK_D)
#define MOCK_PTE(pfn, bits)  (((uint64_t)(pfn) << 12) | (bits))

struct mock_page;
struct mock_undo;
struct mock_mem {
	struct mock_page **slots;   /* open-addressing hash by pfn */
	size_t cap, n;
	int strict;                 /* unwritten pages are unavailable */
	uint64_t reads, bytes;      /* calls to mock_read_phys */
	/* journal (mock_mem_checkpoint/rollback): each page changed since
	 * the checkpoint, as it was */
	int journaling;
	uint64_t epoch;
	struct mock_undo *undo;
	size_t nundo, capundo;
	/* mock_map_phys: the copies it handed out (freed with the memory),
	 * and how many */
	void **views;
	size_t nviews;
};

void mock_mem_init(struct mock_mem *m);
void mock_mem_fini(struct mock_mem *m);
int mock_read_phys(void *ctx, uint64_t paddr, void *buf, size_t len);
/* pfs_map_phys_fn over the same memory: the bytes mock_read_phys reads,
 * copied once into a buffer of exactly len bytes that lives until the
 * memory is rolled back or freed (ASan sees a read past it), NULL where
 * mock_read_phys fails. */
const void *mock_map_phys(void *ctx, uint64_t paddr, size_t len);
/* Writable pointer to the 4 KiB page of pfn (allocated zeroed on demand). */
unsigned char *mock_mem_page(struct mock_mem *m, uint64_t pfn);
void mock_mem_write(struct mock_mem *m, uint64_t pa, const void *buf, size_t len);
void mock_mem_set_unreadable(struct mock_mem *m, uint64_t pfn, int unreadable);
/* Journal every change from now on; rollback puts memory back as it was
 * at the checkpoint (pages first written since read as never written)
 * and starts a new epoch.  For fuzzers: one base image, many inputs. */
void mock_mem_checkpoint(struct mock_mem *m);
void mock_mem_rollback(struct mock_mem *m);

struct mock_kernel {
	struct mock_mem mem;
	struct pfs_layout lo;
	struct pfs_reader rd;
	struct pfs_target t;
	int levels;
	uint64_t top_pgt_pa;        /* PA of init_top_pgt */
	uint64_t next_pfn;          /* mock_alloc_pfn bump pointer */
	uint64_t kimage_next;       /* mock_kimage_alloc bump pointer (VA) */
	uint64_t vmemmap_next_pfn;  /* next 2 MiB vmemmap backing block */
	uint64_t mem_section_roots; /* VA of the root pointer array */
	/* mock_kernel_checkpoint's copy of what rollback restores */
	struct pfs_layout saved_lo;
	uint64_t saved_next_pfn, saved_kimage_next, saved_vmemmap_next_pfn;
};

/* levels 4 or 5; version e.g. (6, 1): pfs_layout_set_version + mock offsets. */
void mock_kernel_init(struct mock_kernel *k, int levels, unsigned major, unsigned minor);
void mock_kernel_fini(struct mock_kernel *k);
/* Checkpoint the kernel (memory, layout, allocators); rollback returns to
 * it and drops the reader's and target's caches. */
void mock_kernel_checkpoint(struct mock_kernel *k);
void mock_kernel_rollback(struct mock_kernel *k);

/* Physical memory */
uint64_t mock_alloc_pfn(struct mock_kernel *k);                 /* zeroed page */
uint64_t mock_alloc_pfns(struct mock_kernel *k, unsigned n);    /* contiguous */
void mock_write_u64(struct mock_kernel *k, uint64_t pa, uint64_t v);
uint64_t mock_read_u64(struct mock_kernel *k, uint64_t pa);
void mock_write(struct mock_kernel *k, uint64_t pa, const void *buf, size_t len);
void mock_set_unreadable(struct mock_kernel *k, uint64_t pfn, int unreadable);

/* Kernel virtual memory */
uint64_t mock_kalloc(struct mock_kernel *k, size_t size);   /* direct-map VA, zeroed, page aligned */
uint64_t mock_kimage_alloc(struct mock_kernel *k, size_t size); /* kernel-image VA (static data), 64-byte aligned */
uint64_t mock_kva_to_pa(struct mock_kernel *k, uint64_t va); /* through the mock's own tables; aborts if unmapped */
void mock_write_kva(struct mock_kernel *k, uint64_t va, const void *buf, size_t len);
void mock_write_kva_u64(struct mock_kernel *k, uint64_t va, uint64_t v);
void mock_write_kva_u32(struct mock_kernel *k, uint64_t va, uint32_t v);
uint64_t mock_read_kva_u64(struct mock_kernel *k, uint64_t va);
static inline uint64_t mock_direct_va(struct mock_kernel *k, uint64_t pa)
{ return k->lo.page_offset_base + pa; }

/* Page tables.  mock_user_pgd: a new, empty top-level table (PA).
 * mock_map: write raw at the entry for va at level (PFS_LEVEL_PTE/PMD/PUD,
 * or P4D/PGD to plant garbage), creating missing intermediate tables
 * (user tables 0x67, kernel 0x63).  mock_table_pa: PA of the table page
 * holding that entry, 0 if the path is missing. */
uint64_t mock_user_pgd(struct mock_kernel *k);
void mock_map(struct mock_kernel *k, uint64_t pgd_pa, uint64_t va, int level, uint64_t raw);
uint64_t mock_table_pa(struct mock_kernel *k, uint64_t pgd_pa, uint64_t va, int level);

/* struct page of pfn */
uint64_t mock_page_va(struct mock_kernel *k, uint64_t pfn);
uint64_t mock_page_pa(struct mock_kernel *k, uint64_t pfn);  /* maps vmemmap on demand */
/* write a field at a byte offset of pfn's struct page (size 1, 2, 4, 8) */
void mock_page_set(struct mock_kernel *k, uint64_t pfn, int32_t off, unsigned size, uint64_t val);
void mock_page_set_flags(struct mock_kernel *k, uint64_t pfn, uint64_t flags);
void mock_page_set_refcount(struct mock_kernel *k, uint64_t pfn, int32_t rc);
void mock_page_set_mapcount_raw(struct mock_kernel *k, uint64_t pfn, int32_t raw); /* _mapcount word */
void mock_page_set_mapping(struct mock_kernel *k, uint64_t pfn, uint64_t mapping);
void mock_page_set_private(struct mock_kernel *k, uint64_t pfn, uint64_t v);
void mock_page_set_compound_head(struct mock_kernel *k, uint64_t pfn, uint64_t v);
/* an order-0 in-use page: flags, _refcount rc, _mapcount mc-1 */
void mock_page_simple(struct mock_kernel *k, uint64_t pfn, uint64_t flags, int32_t rc, int32_t mc);
/* a compound page: head PG_head, tails compound_head = head|1, order in
 * page[1] (6.1 compound_order, or folio _flags_1 low byte) */
void mock_page_compound(struct mock_kernel *k, uint64_t head_pfn, unsigned order);
static inline uint64_t mock_pg(const struct mock_kernel *k, int pg_bit)
{ (void)k; return pg_bit < 0 ? 0 : 1ull << pg_bit; }

/* mem_section: mark sections of [pfn, pfn+n) with flags (SECTION_* bits:
 * PRESENT 1, HAS_MEM_MAP 2, ONLINE 4, EARLY 8, ZONE_DEVICE 16) and the
 * given subsection_map (used when EARLY is clear); flags 0 clears. */
#define MOCK_SECTION_PRESENT     0x1ull
#define MOCK_SECTION_HAS_MEM_MAP 0x2ull
#define MOCK_SECTION_ONLINE      0x4ull
#define MOCK_SECTION_EARLY       0x8ull
#define MOCK_SECTION_ZONE_DEVICE 0x10ull
#define MOCK_SECTION_RAM (MOCK_SECTION_PRESENT | MOCK_SECTION_HAS_MEM_MAP | MOCK_SECTION_ONLINE | MOCK_SECTION_EARLY)
void mock_set_mem_section(struct mock_kernel *k, uint64_t pfn, uint64_t n, uint64_t flags,
			  uint64_t subsection_map);

#endif
