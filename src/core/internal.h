/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_CORE_INTERNAL_H
#define PFNSCOPE_CORE_INTERNAL_H
/*
 * What the files of the core share and no front end needs (the public
 * headers are include/pfnscope/).
 */
#include <stddef.h>
#include <stdint.h>
#include "pfnscope/json.h"
#include "pfnscope/layout.h"

/* is_zero_pfn() (include/linux/pgtable.h) */
static inline int pfs_is_zero_pfn(const struct pfs_layout *lo, uint64_t pfn)
{
	return pfn == lo->zero_pfn;
}

/* is_huge_zero_pfn() (include/linux/huge_mm.h, 6.18): the pfn lies in the
 * huge zero folio */
static inline int pfs_is_huge_zero_pfn(const struct pfs_layout *lo, uint64_t pfn)
{
	return pfs_layout_has(lo, huge_zero_pfn) && (pfn & ~511ull) == lo->huge_zero_pfn;
}

/* append a string literal */
#define PUTL(b, lit) pfs_buf_put((b), (lit), sizeof(lit) - 1)

/* buf.c: decimal / hex digits of v into out (no NUL); their length */
size_t pfs_fmt_u64(char *out, uint64_t v);
size_t pfs_fmt_hex(char *out, uint64_t v);
/* buf.c: "0x" and 16 hex digits; the same quoted */
void pfs_buf_hex16(struct pfs_buf *b, uint64_t v);
void pfs_buf_qhex(struct pfs_buf *b, uint64_t v);
/* json.c: the diagnosis codes set in codes, as a JSON list or a table
 * field */
void pfs_changed_codes(struct pfs_buf *b, uint32_t codes, int as_json);

/* sparsemem.c: the last mem_section read, for runs of pfns in one section */
struct pfs_target;
/* pfn_valid() through sc: 1 valid, 0 not, negative code when mem_section
 * is unreadable; *zone_device (optional) the section's ZONE_DEVICE taint. */
int pfs_pfn_valid_cached(struct pfs_target *t, struct pfs_section_cache *sc, uint64_t pfn,
			 int *zone_device);
/* A section whose mem_section or subsection_map could not be read is read
 * again at the next pfs_pfn_valid_cached() (sc lives across a walk's runs:
 * one failed read per run, not one per pfn, and none kept for good). */
void pfs_section_cache_forget_errors(struct pfs_section_cache *sc);
/* pfs_pfn_valid_cached() answers the same for pfns equal but in their low
 * this many bits: those of one subsection (pfn_section_valid()) in one
 * section (its flags) */
int pfs_pfn_valid_shift(const struct pfs_layout *lo);

#endif
