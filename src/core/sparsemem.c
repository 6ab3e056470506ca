// SPDX-License-Identifier: MIT
/*
 * pfn_valid() for SPARSEMEM[_EXTREME] with subsections, as
 * include/linux/mmzone.h has it: __nr_to_section(), valid_section(),
 * early_section(), pfn_section_valid(), subsection_map_index().  Whether a
 * pfn has a struct page at all, before page.c decodes it.
 */
#include <stdint.h>
#include <string.h>
#include "internal.h"
#include "pfnscope/page.h"

/* include/linux/mmzone.h: enum { SECTION_MARKED_PRESENT_BIT, ... } */
#define SECTION_HAS_MEM_MAP        (1ull << 1)
#define SECTION_IS_EARLY           (1ull << 3)
#define SECTION_TAINT_ZONE_DEVICE  (1ull << 4)

/* NR_MEM_SECTIONS = 1 << (MAX_PHYSMEM_BITS - SECTION_SIZE_BITS) */
static uint64_t nr_mem_sections(const struct pfs_layout *lo)
{
	int bits = (int)lo->max_physmem_bits - lo->section_size_bits;

	if (lo->max_physmem_bits == 0 || lo->section_size_bits <= 0 || bits <= 0 || bits >= 63)
		return UINT64_MAX;
	return 1ull << bits;
}

/* PFN_SECTION_SHIFT; a value no kernel has (garbage layout) falls back to
 * x86-64's 15 rather than shifting out of range */
static int pfn_section_shift(const struct pfs_layout *lo)
{
	int s = lo->pfn_section_shift > 0 ? lo->pfn_section_shift : lo->section_size_bits - 12;

	return s > 0 && s < 40 ? s : 15;
}

/* __nr_to_section() + reading section_mem_map and usage into sc. */
static int section_load(struct pfs_target *t, struct pfs_section_cache *sc, uint64_t nr)
{
	const struct pfs_layout *lo = t->lo;
	uint64_t per_root, roots, root, root_va, ms;
	int ret;

	if (sc->nr == nr)
		return sc->state;
	sc->nr = nr;
	sc->word_state = 0;
	sc->smm = sc->usage = 0;
	if (lo->mem_section_size == 0 || !pfs_layout_has(lo, mem_section_section_mem_map))
		return sc->state = pfs_target_fail(t, PFS_ELAYOUT, "mem_section layout", nr);
	if (nr >= nr_mem_sections(lo))
		return sc->state = 0;
	/* SECTIONS_PER_ROOT = PAGE_SIZE / sizeof(struct mem_section) (EXTREME) */
	per_root = lo->sections_per_root ? lo->sections_per_root
		: (lo->sparsemem_extreme ? PFS_PAGE_SIZE / lo->mem_section_size : 1);
	roots = lo->nr_section_roots ? lo->nr_section_roots
		: (nr_mem_sections(lo) + per_root - 1) / per_root;
	root = nr / per_root;
	if (root >= roots)
		return sc->state = 0;
	if (lo->sparsemem_extreme) {
		/* mem_section is a pointer to an array of root pointers */
		if (lo->mem_section == 0)
			return sc->state = 0;
		ret = pfs_read_kvirt_u64(t, lo->mem_section + root * 8, &root_va);
		if (ret < 0)
			return sc->state = pfs_target_fail(t, -ret, "mem_section root", lo->mem_section + root * 8);
		if (root_va == 0)
			return sc->state = 0;
	} else {
		/* static mem_section[NR_SECTION_ROOTS][SECTIONS_PER_ROOT] at lo->mem_section */
		root_va = lo->mem_section + root * per_root * lo->mem_section_size;
	}
	ms = root_va + (nr % per_root) * lo->mem_section_size;
	ret = pfs_read_kvirt_u64(t, ms + (uint64_t)lo->mem_section_section_mem_map, &sc->smm);
	if (ret == 0 && pfs_layout_has(lo, mem_section_usage))
		ret = pfs_read_kvirt_u64(t, ms + (uint64_t)lo->mem_section_usage, &sc->usage);
	if (ret < 0)
		return sc->state = pfs_target_fail(t, -ret, "mem_section", ms);
	/* valid_section(): SECTION_HAS_MEM_MAP */
	return sc->state = (sc->smm & SECTION_HAS_MEM_MAP) ? 1 : 0;
}

/* SUBSECTION_SHIFT - PAGE_SHIFT */
static int pfn_subsection_shift(const struct pfs_layout *lo)
{
	return (lo->subsection_shift > 12 && lo->subsection_shift < 52 ? lo->subsection_shift : 21) - 12;
}

int pfs_pfn_valid_shift(const struct pfs_layout *lo)
{
	int shift = pfn_section_shift(lo), sub_shift = pfn_subsection_shift(lo);

	return shift < sub_shift ? shift : sub_shift;
}

/* pfn_valid() with the section flags for ZONE_DEVICE. */
void pfs_section_cache_forget_errors(struct pfs_section_cache *sc)
{
	if (sc->state < 0 || sc->word_state < 0)
		sc->nr = UINT64_MAX;
}

int pfs_pfn_valid_cached(struct pfs_target *t, struct pfs_section_cache *sc, uint64_t pfn, int *zone_device)
{
	const struct pfs_layout *lo = t->lo;
	int shift = pfn_section_shift(lo);
	int sub_shift = pfn_subsection_shift(lo);
	uint64_t idx, widx;
	int ret;

	if (zone_device)
		*zone_device = 0;
	/* PHYS_PFN(PFN_PHYS(pfn)) != pfn */
	if (pfn >> (64 - 12))
		return 0;
	ret = section_load(t, sc, pfn >> shift);
	if (ret <= 0)
		return ret;
	if (zone_device)
		*zone_device = !!(sc->smm & SECTION_TAINT_ZONE_DEVICE);
	/* early_section(): boot memory is valid for the whole section */
	if (sc->smm & SECTION_IS_EARLY)
		return 1;
	/* pfn_section_valid(): usage may be NULL (READ_ONCE in 6.8+) */
	if (sc->usage == 0 || !pfs_layout_has(lo, usage_subsection_map))
		return 0;
	/* subsection_map_index() */
	idx = (pfn & ((1ull << shift) - 1)) >> (shift > sub_shift ? sub_shift : 0);
	widx = idx / 64;
	if (sc->word_state == 0 || sc->word_idx != widx) {
		uint64_t va = sc->usage + (uint64_t)lo->usage_subsection_map + widx * 8;

		sc->word_idx = widx;
		ret = pfs_read_kvirt_u64(t, va, &sc->word);
		sc->word_state = ret < 0 ? pfs_target_fail(t, -ret, "mem_section_usage", va) : 1;
	}
	if (sc->word_state < 0)
		return sc->word_state;
	return (sc->word >> (idx % 64)) & 1;
}

int pfs_pfn_valid(struct pfs_target *t, uint64_t pfn, int *valid)
{
	struct pfs_section_cache sc = { .nr = UINT64_MAX };
	int ret = pfs_pfn_valid_cached(t, &sc, pfn, NULL);

	*valid = ret > 0;
	return ret < 0 ? ret : 0;
}

