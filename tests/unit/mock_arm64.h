/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_TEST_MOCK_ARM64_H
#define PFNSCOPE_TEST_MOCK_ARM64_H
/*
 * arm64 helpers for unit tests (header only: static functions).
 *
 * struct mock_a64: a bare arm64 kernel (4 KiB granule, VA_BITS 48, 4
 * levels) in sparse mock memory, only its swapper_pg_dir: QEMU-virt-like
 * PHYS_OFFSET 0x40000000, linear map at PAGE_OFFSET 0xffff000000000000,
 * kernel image at KIMAGE_VADDR 0xffff800080000000 loaded at PA 0x40200000
 * (kimage_voffset = their difference), swapper_pg_dir MOCK_A64_SWAPPER_OFF
 * into the image.  mock_a64_map writes a raw descriptor for a VA at a
 * level, creating table descriptors (0b11) above it.
 *
 * mock_arm64_mirror: turns a struct mock_kernel (x86-64 mock, mock.h) into
 * an arm64 target: it copies the mock's kernel page tables into a new
 * arm64-format swapper_pg_dir (x86 PSE leaves become 0b01 blocks, 4K
 * ptes 0b11 pages, AF set), placed in the linear map (PHYS_OFFSET 0:
 * init_top_pgt = page_offset_base + PA), and switches the layout to arm64
 * (pfs_layout_set_version again, va_bits, kimage_voffset, phys_offset).
 * User tables built with mock_map stay usable: the x86 user table entry
 * 0x67 has bits[1:0] = 0b11, an arm64 table descriptor.  Call it after
 * every mock_page_* call: vmemmap mapped later lands only in the x86 copy
 * (calling it again builds a fresh mirror).
 */
#include <stdlib.h>
#include <string.h>
#include "mock.h"
#include "pfnscope/arch.h"

/* descriptor bits, arch/arm64/include/asm/pgtable-hwdef.h / pgtable-prot.h */
#define MOCK_A64_VALID   0x1ull
#define MOCK_A64_BLOCK   0x1ull          /* bits[1:0] 0b01: PMD/PUD_TYPE_SECT */
#define MOCK_A64_TABLE   0x3ull          /* bits[1:0] 0b11: table / PTE_TYPE_PAGE */
#define MOCK_A64_PAGE    0x3ull
#define MOCK_A64_USER    (1ull << 6)     /* AP[1] */
#define MOCK_A64_RDONLY  (1ull << 7)     /* AP[2] */
#define MOCK_A64_AF      (1ull << 10)
#define MOCK_A64_NG      (1ull << 11)
#define MOCK_A64_DBM     (1ull << 51)    /* PTE_WRITE */
#define MOCK_A64_PXN     (1ull << 53)
#define MOCK_A64_UXN     (1ull << 54)
#define MOCK_A64_SPECIAL (1ull << 56)
#define MOCK_A64_ADDR    0x0000fffffffff000ull
/* a user read-write data page (PAGE_SHARED-like, young, hw-dirty) */
#define MOCK_A64_USER_PTE (MOCK_A64_PAGE | MOCK_A64_USER | MOCK_A64_AF | MOCK_A64_NG | \
			   MOCK_A64_DBM | MOCK_A64_PXN | MOCK_A64_UXN)
/* kernel data: PROT_NORMAL-like, no user, global */
#define MOCK_A64_KERN    (MOCK_A64_AF | MOCK_A64_DBM | MOCK_A64_PXN | MOCK_A64_UXN)

#define MOCK_A64_PHYS_OFFSET 0x40000000ull
#define MOCK_A64_PAGE_OFFSET 0xffff000000000000ull
#define MOCK_A64_KIMAGE_VADDR 0xffff800080000000ull
#define MOCK_A64_KIMAGE_PA   0x40200000ull
#define MOCK_A64_SWAPPER_OFF 0x1000000ull   /* swapper_pg_dir in the image */
#define MOCK_A64_FIRST_TABLE_PFN 0x48000ull /* tables handed out from PA 0x48000000 */

struct mock_a64 {
	struct mock_mem mem;
	struct pfs_layout lo;
	struct pfs_reader rd;
	struct pfs_target t;
	uint64_t swapper_pa;
	uint64_t next_pfn;
};

static inline uint64_t mock_a64_alloc(struct mock_a64 *m)
{
	uint64_t pfn = m->next_pfn++;
	memset(mock_mem_page(&m->mem, pfn), 0, 4096);
	return pfn << 12;
}

static inline void mock_a64_init(struct mock_a64 *m, unsigned major, unsigned minor)
{
	memset(m, 0, sizeof(*m));
	mock_mem_init(&m->mem);
	pfs_layout_init(&m->lo);
	m->lo.arch = PFS_ARCH_ARM64;
	pfs_layout_set_version(&m->lo, major, minor, 0);
	m->lo.pgtable_levels = 4;
	m->lo.va_bits = 48;
	m->lo.page_offset_base = MOCK_A64_PAGE_OFFSET;
	m->lo.phys_offset = MOCK_A64_PHYS_OFFSET;
	m->lo.kimage_voffset = MOCK_A64_KIMAGE_VADDR - MOCK_A64_KIMAGE_PA;
	m->lo.init_top_pgt = MOCK_A64_KIMAGE_VADDR + MOCK_A64_SWAPPER_OFF;
	m->swapper_pa = MOCK_A64_KIMAGE_PA + MOCK_A64_SWAPPER_OFF;
	memset(mock_mem_page(&m->mem, m->swapper_pa >> 12), 0, 4096);
	m->next_pfn = MOCK_A64_FIRST_TABLE_PFN;
	if (pfs_reader_init(&m->rd, mock_read_phys, &m->mem))
		abort();
	pfs_target_init(&m->t, &m->lo, &m->rd);
}

static inline void mock_a64_fini(struct mock_a64 *m)
{
	pfs_reader_fini(&m->rd);
	mock_mem_fini(&m->mem);
}

static inline uint64_t mock_a64_read(struct mock_a64 *m, uint64_t pa)
{
	uint64_t v;
	memcpy(&v, mock_mem_page(&m->mem, pa >> 12) + (pa & 0xfff), 8);
	return v;
}

/* PA of the table at level on va's path (created when missing) */
static inline uint64_t mock_a64_table(struct mock_a64 *m, uint64_t va, int level)
{
	uint64_t table = m->swapper_pa;
	for (int l = PFS_LEVEL_P4D; l > level; l--) {
		uint64_t epa = table + ((va >> pfs_level_shift((unsigned)l)) & 511) * 8;
		uint64_t e = mock_a64_read(m, epa);
		if ((e & 3) != MOCK_A64_TABLE) {
			if (e)
				abort();   /* something else in the way */
			e = mock_a64_alloc(m) | MOCK_A64_TABLE;
			mock_mem_write(&m->mem, epa, &e, 8);
		}
		table = e & MOCK_A64_ADDR;
	}
	return table;
}

static inline void mock_a64_map(struct mock_a64 *m, uint64_t va, int level, uint64_t raw)
{
	uint64_t epa = mock_a64_table(m, va, level) + ((va >> pfs_level_shift((unsigned)level)) & 511) * 8;
	mock_mem_write(&m->mem, epa, &raw, 8);
	pfs_target_flush(&m->t);
}

/* --- mirroring a mock_kernel's x86 kernel tables --- */
static inline uint64_t mock_arm64_mirror_table(struct mock_kernel *k, uint64_t src, int level)
{
	uint64_t dst = mock_alloc_pfn(k) << 12;
	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = mock_read_u64(k, src + i * 8), out;
		if (!(e & MOCK_P))
			continue;
		uint64_t size = 1ull << pfs_level_shift((unsigned)level);
		if (level == PFS_LEVEL_PTE)
			out = (e & MOCK_A64_ADDR) | MOCK_A64_PAGE | MOCK_A64_KERN;
		else if (level <= PFS_LEVEL_PUD && (e & MOCK_PSE))
			out = (e & MOCK_A64_ADDR & ~(size - 1)) | MOCK_A64_BLOCK | MOCK_A64_KERN;
		else
			out = mock_arm64_mirror_table(k, e & MOCK_A64_ADDR, level - 1) | MOCK_A64_TABLE;
		mock_write_u64(k, dst + i * 8, out);
	}
	return dst;
}

/* returns the PA of the new swapper_pg_dir */
static inline uint64_t mock_arm64_mirror(struct mock_kernel *k)
{
	if (k->levels != 4)
		abort();
	uint64_t root = mock_arm64_mirror_table(k, k->top_pgt_pa, PFS_LEVEL_P4D);
	struct pfs_layout *lo = &k->lo;
	lo->arch = PFS_ARCH_ARM64;
	pfs_layout_set_version(lo, lo->version_major, lo->version_minor, lo->version_patch);
	lo->va_bits = 48;
	lo->phys_offset = 0;
	lo->kimage_voffset = lo->start_kernel_map - lo->phys_base;
	lo->init_top_pgt = lo->page_offset_base + root;   /* a linear-map address */
	pfs_target_flush(&k->t);
	return root;
}

#endif
