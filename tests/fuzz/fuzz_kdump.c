/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: opening a dump file and reading pages from it through
 * the libkdumpfile reader (src/readers/kdumpfile.c): the ELF program
 * headers and notes, the kdump-compressed header, sub-header, bitmaps and
 * page descriptors that pfnscope checks itself, and then libkdumpfile's
 * own parsing and page reads behind those checks (not instrumented for
 * coverage, but a crash there is a crash of pfnscope).  The input is the
 * file (in a memfd); seeds are the first blocks of the lab's real dumps
 * and one whole 40-pfn kdump-compressed file (raw, zlib, zero and
 * excluded pages), whose pages src/readers/diskdump.c reads, and one
 * whole 12-page ELF core (make_seeds.py whole_elf).
 * After the open, the first 64 pfns, 64 pfns spread over the first 4 GiB
 * and, for a diskdump, the first pfns its bitmap marks are read.  A file
 * opened without libkdumpfile (a whole ELF core: src/readers/elfcore.c)
 * is opened through libkdumpfile too (PFS_KDUMP_LIBKDUMPFILE_PAGES), which
 * must succeed with the same format, arch and VMCOREINFO, and read the
 * same bytes wherever pfnscope's reads succeed (libkdumpfile also reads
 * zeros for the rest of a page a segment starts or ends in).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "pfnscope/readers.h"

/* libkdumpfile trusts sizes in the file (notes, bitmaps) for malloc(): a
 * corrupt header makes it ask for petabytes, which fails (NULL) and is
 * reported as an open error.  Let the sanitizer's allocator fail the same
 * way instead of aborting (make passes -malloc_limit_mb high for the same
 * reason); a crash or memory error is still a finding. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/* libkdumpfile's own allocations lost on its error paths are not
 * pfnscope's leaks (the reader's are still reported). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libkdumpfile.so\n";
}

static int fd = -1;
static char path[64];

static int same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* one read of k and the same through the libkdumpfile open l; the bytes k
 * gives in place (pfs_kdump_map_phys), where it does, are the bytes read */
static uint64_t read_both(struct pfs_kdump *k, struct pfs_kdump *l, uint64_t paddr, size_t len)
{
	static unsigned char a[4096], b[4096];
	int r = pfs_kdump_read_phys(k, paddr, a, len);
	const unsigned char *m = pfs_kdump_map_phys(k, paddr, len);

	if (l && !r && (pfs_kdump_read_phys(l, paddr, b, len) || memcmp(a, b, len)))
		abort();   /* the file opened without libkdumpfile reads otherwise */
	if (m && (r || memcmp(m, a, len)))
		abort();   /* mapped bytes that a read does not give */
	return (uint64_t)r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfs_error err;
	struct pfs_kdump *k;

	if (fd < 0) {
		fd = memfd_create("pfnscope-fuzz-kdump", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	if (pfs_kdump_open(path, 0, &k, &err) < 0) {
		if (err.code != PFS_EDUMP || !err.message[0] || strchr(err.message, '\n') || k)
			abort();   /* an open error is one line naming the file */
		return 0;
	}
	struct pfs_kdump *l = NULL;
	if (!pfs_kdump_has_context(k)) {
		if (pfs_kdump_open(path, PFS_KDUMP_LIBKDUMPFILE_PAGES, &l, &err) < 0 ||
		    !same_str(pfs_kdump_format(k), pfs_kdump_format(l)) ||
		    !same_str(pfs_kdump_arch(k), pfs_kdump_arch(l)) ||
		    !same_str(pfs_kdump_vmcoreinfo(k), pfs_kdump_vmcoreinfo(l)) ||
		    pfs_kdump_warning(l))
			abort();   /* libkdumpfile opens it otherwise */
	}
	uint64_t sum = 0;
	const char *w = pfs_kdump_warning(k);
	if (w)
		sum += strlen(w);
	sum += pfs_kdump_damage(k)->missing_bytes;
	for (uint64_t pfn = 0; pfn < 64; pfn++)
		sum += read_both(k, l, pfn << 12, 4096);
	for (uint64_t pfn = 0; pfn < (1ull << 20); pfn += 1ull << 14)
		sum += read_both(k, l, pfn << 12, 64);
	/* a range crossing pages */
	sum += read_both(k, l, 0xff0, 64);
	pfs_kdump_close(l);
	pfs_kdump_close(k);
	return sum == 0x12345 ? 0 : 0;
}
