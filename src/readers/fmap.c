// SPDX-License-Identifier: MIT
/* A dump file mapped whole, its resident set bounded (see fmap.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "diskdump.h"   /* pfs_pread_all */
#include "fmap.h"

int pfs_fmap_init(struct pfs_fmap *m, int fd, uint64_t len)
{
	m->base = NULL;
	m->len = 0;
	m->seen = NULL;
	m->nseen = 0;
	m->preads = NULL;
	m->fd = fd;
	atomic_init(&m->touched, 0);
	if (!len || len > SIZE_MAX) {
		errno = EINVAL;
		return -1;
	}
	size_t nseen = (size_t)((len - 1) / PFS_FMAP_FAULT_AROUND / 64 + 1);
	size_t nblocks = (size_t)((len - 1) / PFS_FMAP_FAULT_AROUND + 1);
	m->seen = calloc(nseen, sizeof(*m->seen));
	m->preads = calloc(nblocks, sizeof(*m->preads));
	if (!m->seen || !m->preads)
		goto fail;
	for (size_t i = 0; i < nseen; i++)
		atomic_init(&m->seen[i], 0);
	for (size_t i = 0; i < nblocks; i++)
		atomic_init(&m->preads[i], 0);
	void *base = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		goto fail;
	m->base = base;
	m->len = (size_t)len;
	m->nseen = nseen;
	return 0;
fail:
	free(m->seen);
	free(m->preads);
	m->seen = NULL;
	m->preads = NULL;
	return -1;
}

void pfs_fmap_fini(struct pfs_fmap *m)
{
	if (m->base)
		munmap((void *)m->base, m->len);
	free(m->seen);
	free(m->preads);
	m->base = NULL;
	m->seen = NULL;
	m->preads = NULL;
}

void pfs_fmap_trim(struct pfs_fmap *m)
{
	atomic_store(&m->touched, 0);
	for (size_t i = 0; i < m->nseen; i++)
		atomic_store_explicit(&m->seen[i], 0, memory_order_relaxed);
	for (size_t i = 0, nb = (m->len - 1) / PFS_FMAP_FAULT_AROUND + 1; i < nb; i++)
		atomic_store_explicit(&m->preads[i], 0, memory_order_relaxed);
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

static int block_mapped(struct pfs_fmap *m, uint64_t b)
{
	return !!(atomic_load_explicit(&m->seen[b / 64], memory_order_relaxed) & (1ull << (b % 64)));
}

int pfs_fmap_read(struct pfs_fmap *m, void *buf, uint64_t off, size_t n)
{
	uint64_t b = off / PFS_FMAP_FAULT_AROUND;
	int one_block = (off + n - 1) / PFS_FMAP_FAULT_AROUND == b;

	if (n >= PFS_FMAP_PREAD_MIN ||
	    (one_block && !block_mapped(m, b) &&
	     atomic_fetch_add_explicit(&m->preads[b], 1, memory_order_relaxed) < PFS_FMAP_PREADS_BEFORE_MAP)) {
		/* (the count stops at PFS_FMAP_PREADS_BEFORE_MAP + 1: the read
		 * that finds it there maps the block) */
		return pfs_pread_all(m->fd, buf, n, off);
	}
	memcpy(buf, m->base + off, n);
	pfs_fmap_touched(m, off, n);
	return 0;
}

const void *pfs_fmap_view(struct pfs_fmap *m, uint64_t off, size_t n)
{
	pfs_fmap_touched(m, off, n);
	return m->base + off;
}
