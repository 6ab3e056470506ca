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
 * excluded pages), whose pages src/readers/diskdump.c reads.
 * After the open, the first 64 pfns, 64 pfns spread over the first 4 GiB
 * and, for a diskdump, the first pfns its bitmap marks are read.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char page[4096];
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
	uint64_t sum = 0;
	const char *w = pfs_kdump_warning(k);
	if (w)
		sum += strlen(w);
	sum += pfs_kdump_damage(k)->missing_bytes;
	for (uint64_t pfn = 0; pfn < 64; pfn++)
		sum += (uint64_t)pfs_kdump_read_phys(k, pfn << 12, page, sizeof(page));
	for (uint64_t pfn = 0; pfn < (1ull << 20); pfn += 1ull << 14)
		sum += (uint64_t)pfs_kdump_read_phys(k, pfn << 12, page, 64);
	/* a range crossing pages */
	sum += (uint64_t)pfs_kdump_read_phys(k, 0xff0, page, 64);
	pfs_kdump_close(k);
	return sum == 0x12345 ? 0 : 0;
}
