/* SPDX-License-Identifier: MIT */
/*
 * Kernel-virtual reads: the translation through the kernel's own page
 * tables (one generic descent, per-arch steps: the model of libaddrxlat's
 * step.c) and the cache of the last translations that makes vmemmap and
 * direct-map runs cost no table read.
 */
#include <string.h>
#include "pfnscope/arch.h"
#include "pfnscope/target.h"

int pfs_kv_cache_lookup(struct pfs_target *t, uint64_t va, uint64_t *pa, uint64_t *run)
{
	if (t->kv_cache_len && va - t->kv_cache_va < t->kv_cache_len) {
		*pa = t->kv_cache_pa + (va - t->kv_cache_va);
		if (run)
			*run = t->kv_cache_len - (va - t->kv_cache_va);
		return 1;
	}
	if (!t->kv_cache_len)   /* invalidated by the front end */
		memset(t->kv_more, 0, sizeof(t->kv_more));
	for (unsigned i = 0; i < 3; i++) {
		if (t->kv_more[i].len && va - t->kv_more[i].va < t->kv_more[i].len) {
			uint64_t v = t->kv_more[i].va, p = t->kv_more[i].pa, l = t->kv_more[i].len;
			t->kv_more[i].va = t->kv_cache_va;
			t->kv_more[i].pa = t->kv_cache_pa;
			t->kv_more[i].len = t->kv_cache_len;
			t->kv_cache_va = v;
			t->kv_cache_pa = p;
			t->kv_cache_len = l;
			*pa = p + (va - v);
			if (run)
				*run = l - (va - v);
			return 1;
		}
	}
	return 0;
}

void pfs_kv_cache_insert(struct pfs_target *t, uint64_t va, uint64_t pa, uint64_t size)
{
	if (t->kv_cache_len) {   /* age the front entry */
		t->kv_more[2] = t->kv_more[1];
		t->kv_more[1] = t->kv_more[0];
		t->kv_more[0].va = t->kv_cache_va;
		t->kv_more[0].pa = t->kv_cache_pa;
		t->kv_more[0].len = t->kv_cache_len;
	}
	t->kv_cache_va = va;
	t->kv_cache_pa = pa;
	t->kv_cache_len = size;
}

int pfs_kvirt_to_phys(struct pfs_target *t, uint64_t va, uint64_t *pa, uint64_t *run)
{
	const struct pfs_arch_ops *arch = pfs_arch_get(t->lo);
	uint64_t table;
	unsigned top;
	int err;

	if (pfs_kv_cache_lookup(t, va, pa, run))
		return 0;
	err = arch->kvirt_root(t, va, &table, &top);
	if (err)
		return err;
	for (int level = (int)top; level >= PFS_LEVEL_PTE; level--) {
		unsigned shift = pfs_level_shift((unsigned)level);
		uint64_t raw, next = 0;
		/* the top table has 2^(va_bits - shift) entries (PTRS_PER_PGD):
		 * 16 for arm64's LPA2 level -1, 512 everywhere else */
		uint64_t nidx = level == (int)top && t->lo->va_bits && t->lo->va_bits - shift < 9
			? (1ull << (t->lo->va_bits - shift)) - 1 : 511;
		if (pfs_read_phys(t->rd, (table & ~0xfffull) + ((va >> shift) & nidx) * 8, &raw, 8))
			return pfs_target_fail(t, PFS_EREAD, "kernel page table", va);
		switch (arch->kvirt_step(t->lo, raw, (unsigned)level, &next)) {
		case PFS_KVIRT_NOT_MAPPED:
			return pfs_target_fail(t, PFS_EFAULT, "kernel address not mapped", va);
		case PFS_KVIRT_INVALID:
			return pfs_target_fail(t, PFS_EFAULT, "invalid kernel descriptor", va);
		case PFS_KVIRT_LEAF: {
			uint64_t size = 1ull << shift;
			uint64_t base = next & ~(size - 1);
			pfs_kv_cache_insert(t, va & ~(size - 1), base, size);
			*pa = base + (va & (size - 1));
			if (run)
				*run = size - (va & (size - 1));
			return 0;
		}
		case PFS_KVIRT_TABLE:
			table = next;
			break;
		}
	}
	return pfs_target_fail(t, PFS_ECORRUPT, "kernel page table", va);
}

int pfs_read_kvirt(struct pfs_target *t, uint64_t va, void *buf, size_t len)
{
	unsigned char *out = buf;

	while (len) {
		uint64_t pa, run;
		int err = pfs_kvirt_to_phys(t, va, &pa, &run);
		if (err)
			return err;
		/* stay within one 4 KiB block per cached read */
		uint64_t n = PFS_PAGE_SIZE - (pa & (PFS_PAGE_SIZE - 1));
		if (n > run)
			n = run;
		if (n > len)
			n = len;
		if (pfs_read_phys(t->rd, pa, out, n))
			return pfs_target_fail(t, PFS_EREAD, "kernel memory", va);
		out += n;
		va += n;
		len -= n;
	}
	return 0;
}

int pfs_read_kvirt_u64(struct pfs_target *t, uint64_t va, uint64_t *val)
{
	return pfs_read_kvirt(t, va, val, sizeof(*val));
}
