/* SPDX-License-Identifier: MIT */
/* Targets and the dispatch to their architecture. */
#include <string.h>
#include "pfnscope/arch.h"
#include "pfnscope/target.h"

void pfs_target_init(struct pfs_target *t, const struct pfs_layout *lo, struct pfs_reader *rd)
{
	memset(t, 0, sizeof(*t));
	t->lo = lo;
	t->rd = rd;
	t->sc.nr = UINT64_MAX;
}

void pfs_target_flush(struct pfs_target *t)
{
	t->kv_cache_len = 0;
	memset(t->kv_more, 0, sizeof(t->kv_more));
	t->sc.nr = UINT64_MAX;
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
