// SPDX-License-Identifier: MIT
/*
 * Raw guest RAM (QEMU memory-backend-file): guest physical below the PCI
 * hole is the file offset; RAM above 4 GiB continues in the file after the
 * low part.  pread per request, no cache (the core caches table pages).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pfnscope/readers.h"

struct pfs_rawfile {
	int fd;
	uint64_t size, low_size, high_start;
};

struct pfs_rawfile *pfs_rawfile_open(const char *path, uint64_t low_size,
				     uint64_t high_start, char *err, size_t errlen)
{
	struct pfs_rawfile *r;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		snprintf(err, errlen, "%s: %s", path, st.st_size == 0 ? "empty file" : strerror(errno));
		close(fd);
		return NULL;
	}
	if (high_start < low_size) {
		snprintf(err, errlen, "%s: high RAM start below the low RAM size", path);
		close(fd);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	r->fd = fd;
	r->size = (uint64_t)st.st_size;
	r->low_size = low_size;
	r->high_start = high_start;
	return r;
}

void pfs_rawfile_close(struct pfs_rawfile *r)
{
	if (!r)
		return;
	close(r->fd);
	free(r);
}

uint64_t pfs_rawfile_size(const struct pfs_rawfile *r)
{
	return r->size;
}

int pfs_rawfile_read_phys(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	struct pfs_rawfile *r = ctx;
	uint64_t off, end = paddr + len;

	if (end < paddr)
		return -1;
	if (end <= r->low_size)
		off = paddr;
	else if (paddr >= r->high_start && paddr - r->high_start <= UINT64_MAX - r->low_size)
		off = r->low_size + (paddr - r->high_start);
	else
		return -1;   /* in the hole, or straddling it */
	if (off + len > r->size)
		return -1;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(r->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}
