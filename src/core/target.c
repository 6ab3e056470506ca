/* SPDX-License-Identifier: MIT */
/* Targets and kernel-virtual reads (translation is per arch). */
#include <string.h>
#include "pfnscope/arch.h"
#include "pfnscope/target.h"

void pfs_target_init(struct pfs_target *t, const struct pfs_layout *lo, struct pfs_reader *rd)
{
	memset(t, 0, sizeof(*t));
	t->lo = lo;
	t->rd = rd;
}

void pfs_target_flush(struct pfs_target *t)
{
	t->kv_cache_len = 0;
	memset(t->kv_more, 0, sizeof(t->kv_more));
	if (t->rd)
		pfs_reader_flush(t->rd);
}

int pfs_target_fail(struct pfs_target *t, int err, const char *what, uint64_t addr)
{
	return pfs_error_set(&t->error, err, what, addr);
}

const struct pfs_arch_ops *pfs_arch_get(const struct pfs_layout *lo)
{
	return lo->arch == PFS_ARCH_ARM64 ? &pfs_arch_arm64 : &pfs_arch_x86_64;
}

void pfs_decode_entry(const struct pfs_layout *lo, uint64_t raw, unsigned level, struct pfs_entry *e)
{
	pfs_arch_get(lo)->decode(lo, raw, level, e);
}

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
	return pfs_arch_get(t->lo)->kvirt_to_phys(t, va, pa, run);
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
