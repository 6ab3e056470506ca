/* SPDX-License-Identifier: MIT */
/*
 * Test-only shared library for tests/python/test_core_ext.py: the unit
 * tests' mock kernel (tests/unit/mock.c) behind a ctypes-friendly API, plus
 * its layout as "name=value" text so Python can build a pfnscope._core.Layout
 * from exactly the struct the C tests use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mock.h"

struct mock_kernel *th_new(int levels, int major, int minor)
{
	struct mock_kernel *k = malloc(sizeof(*k));
	if (k)
		mock_kernel_init(k, levels, (unsigned)major, (unsigned)minor);
	return k;
}

void th_free(struct mock_kernel *k)
{
	mock_kernel_fini(k);
	free(k);
}

int th_read(struct mock_kernel *k, uint64_t pa, void *buf, size_t len)
{
	return mock_read_phys(&k->mem, pa, buf, len);
}

/* all integer layout fields as "name=value\n", then "pageflag.BIT=name\n" */
size_t th_layout_text(struct mock_kernel *k, char *buf, size_t len)
{
	size_t n = 0;
	const struct pfs_layout *lo = &k->lo;
#define PFS_LAYOUT_FIELD(type, f, init) \
	n += (size_t)snprintf(buf + (n < len ? n : len), n < len ? len - n : 0, \
			      "%s=%lld\n", #f, (long long)lo->f);
#include "pfnscope/layout-fields.def"
#undef PFS_LAYOUT_FIELD
	for (int i = 0; i < PFS_MAX_PAGEFLAGS; i++)
		if (lo->pageflag_names[i])
			n += (size_t)snprintf(buf + (n < len ? n : len), n < len ? len - n : 0,
					      "pageflag.%d=%s\n", i, lo->pageflag_names[i]);
	return n;
}
