/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: struct page / folio decode (pfs_page_decode_run and
 * pfs_page_decode, pfn_valid through mem_section) of memmap runs as found
 * in a dump.  Input (fuzz_common.h): byte 0 bit 0: 5 levels, bits 1-3:
 * kernel version (the flag and field generation decoded), bit 4: the runs
 * with repeats decoded where the reader maps them (mock_map_phys); then 4 u64:
 *   p0  first pfn of the decoded run, relative to FUZZ_IMG_PFN (low 21 bits)
 *   p1  run length (low 9 bits, +1); the rest: where the run is cut in two
 *       for the check of repeats (pfs_page_decode_run's same[]) against it
 *   p2  a pfn decoded alone (relative; bit 63: absolute, e.g. MMIO)
 *   p3  mem_section flags written over the run's section (0: unchanged)
 * then memory records: struct page runs (where bit 31) verbatim from a
 * dump's memmap (compound_head and other vmemmap pointers in the seed
 * window), and any other memory.
 */
#include <stdint.h>
#include <stddef.h>
#include "mock.h"
#include "fuzz_common.h"
#include "pfnscope/page.h"

static uint64_t mix(const struct pfs_page_info *pi)
{
	return pi->state ^ pi->bits ^ (uint64_t)pi->refcount ^ (uint64_t)pi->page_refcount ^
	       (uint64_t)pi->mapcount ^ (uint64_t)pi->page_mapcount ^ pi->flags ^ pi->head_pfn ^
	       pi->order ^ pi->mapping;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pfs_page_info run[512];
	if (size < 1 + 8 * FUZZ_NPARAMS)
		return 0;
	struct mock_kernel *k = fuzz_kernel(data[0] & 1, (data[0] >> 1) & 7, NULL);
	uint64_t p[FUZZ_NPARAMS];
	for (unsigned i = 0; i < FUZZ_NPARAMS; i++)
		p[i] = fuzz_rd64(data + 1 + 8 * i);
	fuzz_apply_records(k, data + 1 + 8 * FUZZ_NPARAMS, size - 1 - 8 * FUZZ_NPARAMS);

	uint64_t first = FUZZ_IMG_PFN + (p[0] & FUZZ_IMG_MASK);
	unsigned n = (unsigned)(p[1] & 511) + 1;
	if (p[3] & 0xff)
		mock_set_mem_section(k, first, n, p[3] & 0x1f, p[3] >> 8);
	uint64_t sum = 0;
	pfs_page_decode_run(&k->t, first, n, run, NULL, NULL);
	for (unsigned i = 0; i < n; i++)
		sum += mix(&run[i]);
	/* the same pfns in two runs sharing a buddy memo, with repeats: each
	 * repeat stepped from the page before is the plain decode's page */
	static struct pfs_page_info rep[512];
	static uint8_t same[512];
	struct pfs_buddy_memo memo;
	unsigned cut = (unsigned)((p[1] >> 9) % n);
	pfs_buddy_memo_init(&memo);
	pfs_reader_set_map(&k->rd, data[0] & 0x10 ? mock_map_phys : NULL);
	if (cut)
		pfs_page_decode_run(&k->t, first, cut, rep, same, &memo);
	pfs_page_decode_run(&k->t, first + cut, n - cut, rep + cut, same + cut, &memo);
	pfs_reader_set_map(&k->rd, NULL);
	for (unsigned i = 0; i < n; i++) {
		if (same[i] > 1 || (same[i] && (i == 0 || i == cut)))
			__builtin_trap();
		if (same[i]) {
			rep[i] = rep[i - 1];
			pfs_page_info_step(&rep[i], first + i - 1, 1);
		}
		if (!pfs_page_info_equal(&rep[i], &run[i]))
			__builtin_trap();
	}
	struct pfs_page_info one;
	uint64_t alone = (p[2] >> 63) ? p[2] & ((1ull << 52) - 1) : FUZZ_IMG_PFN + (p[2] & FUZZ_IMG_MASK);
	pfs_page_decode(&k->t, alone, &one);
	int valid = 0;
	sum += mix(&one) + (uint64_t)pfs_pfn_valid(&k->t, alone, &valid) + (uint64_t)valid;
	fuzz_done(k);
	return sum == 0x12345 ? 0 : 0;
}
