/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_FUZZ_COMMON_H
#define PFNSCOPE_FUZZ_COMMON_H
/*
 * Shared by the libFuzzer targets that read kernel structures from a mock
 * kernel's memory (fuzz_vma.c, fuzz_task.c, fuzz_page.c, fuzz_walk.c).
 *
 * Speed: a mock kernel is built once per (paging levels, version) and
 * checkpointed; each input's writes are journaled and rolled back after
 * the run (mock_kernel_checkpoint/rollback), so an input costs what it
 * writes and what the core reads, not a kernel's construction.
 *
 * Memory-image input (after a target-specific header of 1 config byte and
 * FUZZ_NPARAMS u64 parameters), a list of records:
 *   u32 where (LE): bit 31 clear: bytes go to physical memory at
 *       (FUZZ_IMG_PFN + (where & FUZZ_IMG_MASK)) << 12, plus off;
 *       bit 31 set: to the struct pages of pfn FUZZ_IMG_PFN + (where &
 *       FUZZ_IMG_MASK) on, plus off (the vmemmap is mapped on demand);
 *   u16 off, u16 len, then len bytes (cut at the end of the input).
 * Seeds come from real dumps (tests/fuzz/make_seeds.py): real pages are
 * placed at their pfn + FUZZ_IMG_PFN, and the pointers in them were
 * rebased by the extractor to the fixed windows below, which are rebased
 * again here to the mock kernel's own (any u64 of the records and params
 * that falls in a window is rewritten, so the fuzzer also finds valid
 * pointers easily):
 *   SEED_POB + x      -> direct map of PA FUZZ_IMG_PFN * 4096 + x
 *   SEED_VMEMMAP + y  -> struct page array, shifted by FUZZ_IMG_PFN pages
 *   SEED_IMAGE + z    -> the mock's init_task + z (the kernel image objects
 *                        a list may point back to)
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mock.h"

#define FUZZ_IMG_PFN   0x200000ull        /* 8 GiB: free in the mock's map */
#define FUZZ_IMG_MASK  0x1fffffu          /* real pfns below 8 GiB */
#define SEED_POB       0xffff888000000000ull
#define SEED_VMEMMAP   0xffffea0000000000ull
#define SEED_IMAGE     0xffffffff90000000ull
#define SEED_WINDOW    (8ull << 30)
#define SEED_IMAGE_WINDOW 0x4000ull
#define FUZZ_NPARAMS   4

static const unsigned fuzz_versions[8][2] = {
	{ 5, 4 }, { 5, 15 }, { 6, 1 }, { 6, 6 }, { 6, 12 }, { 6, 17 }, { 6, 18 }, { 7, 2 },
};

static struct mock_kernel *fuzz_bases[2][8];

/* The checkpointed mock kernel for (levels 4/5, version index 0-7);
 * prepare (optional) adds target-specific layout before the checkpoint. */
static inline struct mock_kernel *fuzz_kernel(int five, unsigned vi,
					      void (*prepare)(struct mock_kernel *))
{
	struct mock_kernel **slot = &fuzz_bases[five ? 1 : 0][vi & 7];
	if (!*slot) {
		struct mock_kernel *k = calloc(1, sizeof(*k));
		if (!k)
			abort();
		mock_kernel_init(k, five ? 5 : 4, fuzz_versions[vi & 7][0], fuzz_versions[vi & 7][1]);
		/* the vmemmap of the image window, mapped once (2 MiB leaves):
		 * struct page records then cost only the pages they write */
		for (uint64_t pfn = FUZZ_IMG_PFN; pfn <= FUZZ_IMG_PFN + FUZZ_IMG_MASK;
		     pfn += (2ull << 20) / k->lo.page_size)
			(void)mock_page_pa(k, pfn);
		if (prepare)
			prepare(k);
		mock_kernel_checkpoint(k);
		*slot = k;
	}
	return *slot;
}

/* Roll k back after an input.  Pages an input creates stay allocated (as
 * never-written pages) after a rollback, so a long run touching random
 * pfns of the window would grow without bound: past FUZZ_MAX_PAGES the
 * kernel is dropped and rebuilt on next use. */
#ifndef FUZZ_MAX_PAGES
#define FUZZ_MAX_PAGES 65536   /* 256 MiB of mock memory */
#endif
static inline void fuzz_done(struct mock_kernel *k)
{
	mock_kernel_rollback(k);
	if (k->mem.n <= FUZZ_MAX_PAGES)
		return;
	for (unsigned l = 0; l < 2; l++)
		for (unsigned v = 0; v < 8; v++)
			if (fuzz_bases[l][v] == k)
				fuzz_bases[l][v] = NULL;
	mock_kernel_fini(k);
	free(k);
}

static inline uint64_t fuzz_rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* A seed-window value as the mock kernel sees it. */
static inline uint64_t fuzz_rebase(const struct mock_kernel *k, uint64_t v)
{
	if (v - SEED_POB < SEED_WINDOW)
		return k->lo.page_offset_base + (FUZZ_IMG_PFN << 12) + (v - SEED_POB);
	if (v - SEED_VMEMMAP < SEED_WINDOW)
		return k->lo.vmemmap_base + FUZZ_IMG_PFN * k->lo.page_size + (v - SEED_VMEMMAP);
	if (v - SEED_IMAGE < SEED_IMAGE_WINDOW)
		return k->lo.init_task + (v - SEED_IMAGE);
	return v;
}

/* Apply the records in data[0..size) to k's memory. */
static inline void fuzz_apply_records(struct mock_kernel *k, const uint8_t *data, size_t size)
{
	static uint8_t buf[65536 + 8];
	size_t off = 0;
	while (off + 8 <= size) {
		uint32_t where;
		uint16_t o, len;
		memcpy(&where, data + off, 4);
		memcpy(&o, data + off + 4, 2);
		memcpy(&len, data + off + 6, 2);
		off += 8;
		if (len > size - off)
			len = (uint16_t)(size - off);
		memcpy(buf, data + off, len);
		off += len;
		/* rebase the aligned words (records of real objects are whole) */
		for (size_t i = 0; i + 8 <= len; i += 8) {
			uint64_t v = fuzz_rebase(k, fuzz_rd64(buf + i));
			memcpy(buf + i, &v, 8);
		}
		uint64_t pfn = FUZZ_IMG_PFN + (where & FUZZ_IMG_MASK);
		if (where & 0x80000000u) {
			/* struct pages past the window's mapped vmemmap are dropped */
			uint64_t end = FUZZ_IMG_PFN + FUZZ_IMG_MASK + 1;
			uint64_t room = (end - pfn) * k->lo.page_size;
			if (len && o < room)
				mock_write_kva(k, mock_page_va(k, pfn) + o, buf,
					       len < room - o ? len : (size_t)(room - o));
		} else if (len) {
			mock_write(k, (pfn << 12) + o, buf, len);
		}
	}
}

#endif
