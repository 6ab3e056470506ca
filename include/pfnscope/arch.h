/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_ARCH_H
#define PFNSCOPE_ARCH_H
/*
 * Architecture table: everything the walker and kernel-virtual reads need
 * to know about one MMU format.  Levels are numbered as in entry.h (pte 0,
 * pmd 1, pud 2, p4d 3, pgd 4); the table at level L is indexed by VA bits
 * [12 + 9L, 21 + 9L).  With 4 levels the top table is level 3 (the
 * kernel's pgd with p4d folded into it).
 */
#include <stdint.h>
#include "pfnscope/entry.h"
#include "pfnscope/layout.h"
#include "pfnscope/target.h"

/* what an entry of a table above the pte level is */
enum pfs_table_entry {
	PFS_TE_NONE = 0,   /* pXd_none: nothing below */
	PFS_TE_TABLE,      /* points to the next-level table (*next_pa) */
	PFS_TE_LEAF,       /* huge leaf, or a non-present (swap/migration) entry: decode it */
	PFS_TE_BAD,        /* pXd_bad: the kernel would clear it; not walked */
};

/* what a descriptor of the kernel's own tables is, to pfs_kvirt_to_phys */
enum pfs_kvirt_step {
	PFS_KVIRT_TABLE,        /* *next: the next-level table */
	PFS_KVIRT_LEAF,         /* *next: the base of the page or block it maps */
	PFS_KVIRT_NOT_MAPPED,   /* not valid/present */
	PFS_KVIRT_INVALID,      /* a descriptor the MMU refuses at this level */
};

struct pfs_arch_ops {
	const char *name;
	/* Classify an entry of the table at level (>= PFS_LEVEL_PMD). */
	int (*classify)(const struct pfs_layout *lo, uint64_t raw, unsigned level, uint64_t *next_pa);
	/* Decode a pte, or a pmd/pud leaf or non-present entry: fills kind,
	 * bits, pfn, swp_type, swp_offset of e (raw and level too). */
	void (*decode)(const struct pfs_layout *lo, uint64_t raw, unsigned level, struct pfs_entry *e);
	/* The bits of a present pte that hold its pfn from bit 12 up, and
	 * nothing else the decode reads (pfs_pte_next). */
	uint64_t (*pte_pfn_mask)(const struct pfs_layout *lo);
	/* Kernel virtual -> physical through the kernel's own tables is one
	 * generic loop (pfs_kvirt_to_phys, like libaddrxlat's step.c) with
	 * two arch steps: the root table's PA and top level for va (or an
	 * error through pfs_target_fail), and what one descriptor is. */
	int (*kvirt_root)(struct pfs_target *t, uint64_t va, uint64_t *table, unsigned *top);
	enum pfs_kvirt_step (*kvirt_step)(const struct pfs_layout *lo, uint64_t raw, unsigned level,
					  uint64_t *next);
};

extern const struct pfs_arch_ops pfs_arch_x86_64;
extern const struct pfs_arch_ops pfs_arch_arm64;
/* The ops for lo->arch (x86-64 when unknown). */
const struct pfs_arch_ops *pfs_arch_get(const struct pfs_layout *lo);
/* Level of the top table: pgtable_levels - 1. */
static inline unsigned pfs_top_level(const struct pfs_layout *lo)
{
	return lo->pgtable_levels == 5 ? PFS_LEVEL_PGD : PFS_LEVEL_P4D;
}
static inline unsigned pfs_level_shift(unsigned level) { return 12 + 9 * level; }

/* The translation cache of struct pfs_target (kvirt.c): lookup returns 1
 * (and *pa, *run) on a hit, moving the hit to the front; insert makes
 * [va, va + size) -> pa the front entry and ages the others. */
int pfs_kv_cache_lookup(struct pfs_target *t, uint64_t va, uint64_t *pa, uint64_t *run);
void pfs_kv_cache_insert(struct pfs_target *t, uint64_t va, uint64_t pa, uint64_t size);

/* The pte that maps the page after the present pte raw's and otherwise
 * decodes the same: raw with its pfn one up, or 0 when that would carry out
 * of pfn_mask (the arch's pte_pfn_mask()). */
static inline uint64_t pfs_pte_next(uint64_t raw, uint64_t pfn_mask)
{
	uint64_t n = raw + (1ull << 12);

	return ((n ^ raw) & ~pfn_mask) ? 0 : n;
}

/* Decode through lo's arch. */
void pfs_decode_entry(const struct pfs_layout *lo, uint64_t raw, unsigned level, struct pfs_entry *e);

/* Arch-independent half of swap-entry decode (include/linux/swapops.h):
 * given the swp_type and swp_offset the arch extracted, set kind, pfn and
 * the bits carried by the type (write, exclusive) and offset (migration
 * young/dirty, pte marker uffd-wp). */
void pfs_decode_swp(const struct pfs_layout *lo, unsigned type, uint64_t offset, struct pfs_entry *e);

/* What every decode starts from: entry v at level, nothing known yet. */
static inline void pfs_decode_start(struct pfs_entry *e, uint64_t v, unsigned level)
{
	e->raw = v;
	e->level = (uint8_t)level;
	e->bits = 0;
	e->pfn = PFS_NO_PFN;
	e->swp_type = 0;
	e->swp_offset = 0;
}

/* A bit of a raw entry and the PFS_E_* bit it stands for: each arch lists
 * its own (x86_64.c, arm64.c), one line a bit, and decodes through
 * pfs_decode_bits(). */
struct pfs_entry_bit {
	uint64_t hw;
	uint32_t bit;
};
#define PFS_ENTRY_BITS_N(t) (sizeof(t) / sizeof((t)[0]))

/* The PFS_E_* bits of raw entry v under table t of n bits. */
static inline uint32_t pfs_decode_bits(uint64_t v, const struct pfs_entry_bit *t, unsigned n)
{
	uint32_t bits = 0;

	for (unsigned i = 0; i < n; i++)
		if (v & t[i].hw)
			bits |= t[i].bit;
	return bits;
}

#endif
