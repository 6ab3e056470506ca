/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: entry decoder + walker + maple-tree VMA iteration on a
 * mock kernel built from the input.  Any crash, sanitizer report, leak or
 * timeout is a finding.  Input layout:
 *   byte 0      bit 0: 5 levels; bits 1-3: kernel version (table below);
 *               bit 4: PFS_WALK_NONE; bit 5: PFS_WALK_NO_PAGE; bit 6: arm64 layout;
 *               bit 7: the repeat walk decodes struct pages where the reader
 *               maps them (mock_map_phys)
 *   bytes 1-8   vm_flags of the walked VMA
 *   bytes 9-12  vm_pgoff;  13-15: VMA start page (24 bits) above BASE;
 *   bytes 16-17 VMA length in pages - 1 (12 bits: at most 16 MiB)
 *   then 11-byte records: op (1), idx (2, LE), val (8, LE)
 *     op & 7 = table number T (8 tables; T0 is hung under the pgd entry
 *     of BASE), (op >> 3) & 7 = mode:
 *       0 T[t][idx] = val                       raw entry
 *       1 T[t][idx] = PA(T[val & 7]) | (val >> 8 & 0xfff) | flags in high bits
 *       2 T[t][idx] = pfn pool[val & 1023] << 12 | (val >> 16)  (a leaf)
 *       3 struct page of pool[idx & 1023]: u32 at (val & 63) = val >> 32
 *       4 maple area u64 [idx % 4096] = val
 *       5 maple area u64 [idx % 4096] = node(val & 127) | (val >> 8 & 0xff)
 *       6 pgd[idx] = val (raw)
 *       7 mm->mm_mt.ma_root = node(val & 127) | (val >> 8 & 0xff)
 * The walk of the header VMA with the repeat callback (pfs_walk_vma_repeats)
 * must deliver what the plain walk does, entry for entry.
 * The mock kernel of each (levels, version) is built once and rolled back
 * after every input (fuzz_common.h).
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mock.h"
#include "fuzz_common.h"
#include "pfnscope/arch.h"
#include "pfnscope/diagnose.h"
#include "pfnscope/vma.h"
#include "pfnscope/walk.h"

#define BASE 0x7f0000000000ull
#define MAX_VMAS 16

struct ctx {
	struct mock_kernel *k;
	uint64_t pgd;
	unsigned flags, vmas;
	uint64_t sum;
};

static int on_entry(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct ctx *c = arg;
	(void)vma;
	/* touch everything the front ends print */
	c->sum += e->addr ^ e->raw ^ e->pfn ^ e->diag;
	c->sum += (uintptr_t)pfs_kind_name(e->kind) + (uintptr_t)pfs_level_name(e->level) +
		  (uintptr_t)pfs_vnp_reason_name(e->vnp_reason);
	for (unsigned i = 0; i < PFS_C__COUNT; i++)
		c->sum += (uintptr_t)pfs_consumer_verdict_name(e->consumers[i]);
	return 0;
}

/* Every field of the entries a walk delivers, in order, one digest each:
 * the walk of the header VMA is run again with the repeat callback, which
 * must deliver the same entries (pfs_walk_vma_repeats). */
#define MAX_DIGESTS 16384
struct digests {
	uint64_t d[MAX_DIGESTS];
	size_t n;
};

static uint64_t fold(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x100000001b3ull;
}

static uint64_t entry_digest(const struct pfs_entry *e)
{
	const struct pfs_page_info *p = &e->page;
	uint64_t h = 0xcbf29ce484222325ull;
	uint64_t v[] = { e->addr, e->raw, e->pfn, e->swp_offset, e->bits, e->diag, e->level,
			 e->kind, e->swp_type, e->normal_page, e->vnp_reason, e->changed,
			 e->changed_diag, p->state, p->bits, (uint32_t)p->refcount,
			 (uint32_t)p->page_refcount, (uint32_t)p->mapcount,
			 (uint32_t)p->page_mapcount, (uint32_t)p->raw_mapcount, p->flags,
			 p->head_pfn, p->order, p->mapping };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		h = fold(h, v[i]);
	for (unsigned i = 0; i < PFS_C__COUNT; i++)
		h = fold(h, e->consumers[i]);
	return h;
}

static int keep_digest(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct digests *d = arg;
	(void)vma;
	if (d->n < MAX_DIGESTS)
		d->d[d->n] = entry_digest(e);
	d->n++;
	return 0;
}

static int keep_repeats(const struct pfs_entry *e, uint64_t count, const uint64_t *raw,
			const struct pfs_vma *vma, void *arg)
{
	struct pfs_entry x = *e;
	for (uint64_t i = 0; i < count; i++) {
		pfs_entry_step(&x, 1, raw[i]);
		keep_digest(&x, vma, arg);
	}
	return 0;
}

static int on_vma(const struct pfs_vma *vma, void *arg)
{
	struct ctx *c = arg;
	c->sum += pfs_diagnose_vma(&c->k->lo, vma);
	/* walk at most 256 KiB of each VMA the tree yields */
	uint64_t end = vma->start + (256ull << 10);
	if (end < vma->start)
		end = UINT64_MAX;
	pfs_walk_vma(&c->k->t, c->pgd, vma, vma->start, end, c->flags, on_entry, c);
	return ++c->vmas >= MAX_VMAS;
}

static uint64_t rd64(const uint8_t *p)
{
	return fuzz_rd64(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 18)
		return 0;
	const unsigned *ver = fuzz_versions[(data[0] >> 1) & 7];
	struct mock_kernel *kp = fuzz_kernel(data[0] & 1, (data[0] >> 1) & 7, NULL);
	if (data[0] & 0x40) {
		kp->lo.arch = PFS_ARCH_ARM64;
		pfs_layout_set_version(&kp->lo, ver[0], ver[1], 0);
	}
	kp->lo.huge_zero_pfn = MOCK_FIRST_ALLOC_PFN + 0x200;
	struct ctx c = { .k = kp, .flags = (data[0] >> 4) & 3 };

	uint64_t tables[8];
	c.pgd = mock_user_pgd(kp);
	for (int i = 0; i < 8; i++)
		tables[i] = mock_alloc_pfn(kp) << 12;
	uint64_t top_idx = (BASE >> pfs_level_shift(pfs_top_level(&kp->lo))) & 511;
	mock_write_u64(kp, c.pgd + top_idx * 8, tables[0] | 0x67);
	uint64_t pool = mock_alloc_pfns(kp, 1024);
	uint64_t maple = mock_kalloc(kp, 128 * 256);
	uint64_t mm = mock_kalloc(kp, 4096);

	struct pfs_vma v;
	memset(&v, 0, sizeof(v));
	v.vm_flags = rd64(data + 1);
	v.pgoff = (uint64_t)data[9] | (uint64_t)data[10] << 8 | (uint64_t)data[11] << 16 | (uint64_t)data[12] << 24;
	v.start = BASE + (((uint64_t)data[13] | (uint64_t)data[14] << 8 | (uint64_t)data[15] << 16) << 12);
	v.end = v.start + (((uint64_t)data[16] | (uint64_t)(data[17] & 0x0f) << 8) + 1) * 4096;
	v.ops = (v.vm_flags & 0x800) && pfs_layout_has(&kp->lo, special_mapping_vmops) ?
		kp->lo.special_mapping_vmops : 0;
	v.vm_ops_access = v.vm_flags >> 63;

	for (size_t off = 18; off + 11 <= size; off += 11) {
		unsigned op = data[off], t = op & 7, mode = (op >> 3) & 7;
		unsigned idx = data[off + 1] | (unsigned)data[off + 2] << 8;
		uint64_t val = rd64(data + off + 3);
		switch (mode) {
		case 0:
			mock_write_u64(kp, tables[t] + (idx & 511) * 8, val);
			break;
		case 1:
			mock_write_u64(kp, tables[t] + (idx & 511) * 8,
				       tables[val & 7] | ((val >> 8) & 0xfff) | (val & 0xfff0000000000000ull));
			break;
		case 2:
			mock_write_u64(kp, tables[t] + (idx & 511) * 8, ((pool + (val & 1023)) << 12) | (val >> 16 & 0xfff) |
				       (val & 0xfff0000000000000ull));
			break;
		case 3:
			mock_page_set(kp, pool + (idx & 1023), (int32_t)(val & 63) & ~3, 4, val >> 32);
			break;
		case 4:
			mock_write_kva_u64(kp, maple + (idx % 4096) * 8, val);
			break;
		case 5:
			mock_write_kva_u64(kp, maple + (idx % 4096) * 8, maple + (val & 127) * 256 + ((val >> 8) & 0xff));
			break;
		case 6:
			mock_write_u64(kp, c.pgd + (idx & 511) * 8, val);
			break;
		case 7:
			mock_write_kva_u64(kp, mm + (uint64_t)kp->lo.mm_mm_mt + (uint64_t)kp->lo.maple_tree_ma_root,
					   maple + (val & 127) * 256 + ((val >> 8) & 0xff));
			break;
		}
	}

	/* the decoder on every raw value of the input, at every level */
	for (size_t off = 1; off + 8 <= size; off += 8) {
		struct pfs_entry e;
		for (unsigned l = 0; l <= PFS_LEVEL_PUD; l++) {
			pfs_decode_entry(&kp->lo, rd64(data + off), l, &e);
			c.sum += e.pfn + e.kind;
		}
	}
	/* the walker on the VMA of the header */
	pfs_walk_vma(&kp->t, c.pgd, &v, 0, UINT64_MAX, c.flags, on_entry, &c);
	c.sum += pfs_diagnose_vma(&kp->lo, &v);
	static struct digests one, rep;
	one.n = rep.n = 0;
	int r1 = pfs_walk_vma(&kp->t, c.pgd, &v, 0, UINT64_MAX, c.flags, keep_digest, &one);
	pfs_reader_set_map(&kp->rd, data[0] & 0x80 ? mock_map_phys : NULL);
	int r2 = pfs_walk_vma_repeats(&kp->t, c.pgd, &v, 0, UINT64_MAX, c.flags, keep_digest,
				      keep_repeats, &rep);
	pfs_reader_set_map(&kp->rd, NULL);
	if (r1 != r2 || one.n != rep.n ||
	    memcmp(one.d, rep.d, (one.n < MAX_DIGESTS ? one.n : MAX_DIGESTS) * sizeof(one.d[0])))
		__builtin_trap();
	/* maple iteration (6.1+ layouts), walking each VMA found */
	if (kp->lo.mm_mm_mt != PFS_ABSENT) {
		mock_write_kva_u64(kp, mm + (uint64_t)kp->lo.mm_pgd, mock_direct_va(kp, c.pgd));
		pfs_for_each_vma(&kp->t, mm, on_vma, &c);
	}
	fuzz_done(kp);
	return c.sum == 0x12345 ? 0 : 0;
}
