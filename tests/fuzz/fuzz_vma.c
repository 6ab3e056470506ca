/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: VMA iteration of an mm from a memory image — the maple
 * tree of 6.1+ (lib/maple_tree.c nodes as found in dumps) and the vm_next
 * list before it — plus pfs_find_vma and pfs_maple_load.  Input
 * (fuzz_common.h): byte 0 bit 0: 5 levels, bits 1-3: kernel version
 * (5.4 and 5.15 use mm->mmap, later ones mm->mm_mt); then 4 u64:
 *   p0  mm->mm_mt.ma_root (maple) or mm->mmap (list): a seed-window pointer
 *   p1-p3  addresses looked up with pfs_find_vma / pfs_maple_load
 * then memory records (maple nodes verbatim from a dump; vm_area_structs
 * re-encoded in the mock's layout: vm_start 0, vm_end 8, vm_mm 16,
 * vm_flags 32, vm_ops 96, vm_pgoff 104, vm_file 112, vm_next 136).
 */
#include <stdint.h>
#include <stddef.h>
#include "mock.h"
#include "fuzz_common.h"
#include "pfnscope/maple.h"
#include "pfnscope/vma.h"

struct ctx {
	uint64_t sum;
	unsigned n;
};

static int on_vma(const struct pfs_vma *v, void *arg)
{
	struct ctx *c = arg;
	c->sum += v->start ^ v->end ^ v->vm_flags ^ v->pgoff ^ v->file ^ v->ops;
	return ++c->n >= 100000;
}

static int on_range(uint64_t first, uint64_t last, uint64_t entry, void *arg)
{
	struct ctx *c = arg;
	c->sum += first ^ last ^ entry;
	return ++c->n >= 100000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 + 8 * FUZZ_NPARAMS)
		return 0;
	struct mock_kernel *k = fuzz_kernel(data[0] & 1, (data[0] >> 1) & 7, NULL);
	uint64_t p[FUZZ_NPARAMS];
	for (unsigned i = 0; i < FUZZ_NPARAMS; i++)
		p[i] = fuzz_rebase(k, fuzz_rd64(data + 1 + 8 * i));
	fuzz_apply_records(k, data + 1 + 8 * FUZZ_NPARAMS, size - 1 - 8 * FUZZ_NPARAMS);

	uint64_t mm = mock_kalloc(k, 4096);
	if (k->lo.mm_mm_mt != PFS_ABSENT)
		mock_write_kva_u64(k, mm + (uint64_t)k->lo.mm_mm_mt + (uint64_t)k->lo.maple_tree_ma_root, p[0]);
	else
		mock_write_kva_u64(k, mm + (uint64_t)k->lo.mm_mmap, p[0]);

	struct ctx c = { 0, 0 };
	c.sum += (uint64_t)pfs_for_each_vma(&k->t, mm, on_vma, &c);
	for (unsigned i = 1; i < FUZZ_NPARAMS; i++) {
		struct pfs_vma v;
		c.sum += (uint64_t)pfs_find_vma(&k->t, mm, p[i], &v);
		if (k->lo.mm_mm_mt != PFS_ABSENT) {
			uint64_t first, last, entry;
			c.sum += (uint64_t)pfs_maple_load(&k->t, p[0], p[i], &first, &last, &entry);
		}
	}
	if (k->lo.mm_mm_mt != PFS_ABSENT) {
		c.n = 0;
		c.sum += (uint64_t)pfs_maple_for_each(&k->t, p[0], p[1] < p[2] ? p[1] : 0,
						      p[1] < p[2] ? p[2] : UINT64_MAX, on_range, &c);
	}
	fuzz_done(k);
	return c.sum == 0x12345 ? 0 : 0;
}
