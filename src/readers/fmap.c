// SPDX-License-Identifier: MIT
/* A dump file mapped whole, its resident set bounded (see fmap.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "fmap.h"

int pfs_fmap_init(struct pfs_fmap *m, int fd, uint64_t len)
{
	m->base = NULL;
	m->len = 0;
	m->seen = NULL;
	m->nseen = 0;
	atomic_init(&m->touched, 0);
	if (!len || len > SIZE_MAX) {
		errno = EINVAL;
		return -1;
	}
	size_t nseen = (size_t)((len - 1) / PFS_FMAP_FAULT_AROUND / 64 + 1);
	m->seen = calloc(nseen, sizeof(*m->seen));
	if (!m->seen)
		return -1;
	for (size_t i = 0; i < nseen; i++)
		atomic_init(&m->seen[i], 0);
	void *base = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		free(m->seen);
		m->seen = NULL;
		return -1;
	}
	m->base = base;
	m->len = (size_t)len;
	m->nseen = nseen;
	return 0;
}

void pfs_fmap_fini(struct pfs_fmap *m)
{
	if (m->base)
		munmap((void *)m->base, m->len);
	free(m->seen);
	m->base = NULL;
	m->seen = NULL;
}

void pfs_fmap_trim(struct pfs_fmap *m)
{
	atomic_store(&m->touched, 0);
	for (size_t i = 0; i < m->nseen; i++)
		atomic_store_explicit(&m->seen[i], 0, memory_order_relaxed);
	madvise((void *)m->base, m->len, MADV_DONTNEED);
}

void pfs_fmap_touched(struct pfs_fmap *m, uint64_t off, size_t n)
{
	uint64_t last = (off + n - 1) / PFS_FMAP_FAULT_AROUND, fresh = 0;

	for (uint64_t b = off / PFS_FMAP_FAULT_AROUND; b <= last; b++) {
		atomic_ullong *w = &m->seen[b / 64];
		unsigned long long bit = 1ull << (b % 64);
		if (atomic_load_explicit(w, memory_order_relaxed) & bit)
			continue;
		if (!(atomic_fetch_or_explicit(w, bit, memory_order_relaxed) & bit))
			fresh++;
	}
	if (fresh && atomic_fetch_add(&m->touched, fresh) + fresh >=
			     PFS_FMAP_TRIM_BYTES / PFS_FMAP_FAULT_AROUND)
		pfs_fmap_trim(m);
}
