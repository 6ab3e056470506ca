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

int pfs_rawfile_open(const char *path, uint64_t low_size, uint64_t high_start,
		     struct pfs_rawfile **out, struct pfs_error *err)
{
	struct pfs_rawfile *r;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return pfs_error_file(err, PFS_EDUMP, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		pfs_error_file(err, PFS_EDUMP, path, "%s",
			       st.st_size == 0 ? "empty file" : strerror(errno));
		close(fd);
		return -PFS_EDUMP;
	}
	if (high_start < low_size) {
		close(fd);
		return pfs_error_file(err, PFS_EDUMP, path, "high RAM start below the low RAM size");
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		return pfs_error_file(err, PFS_EDUMP, path, "out of memory");
	}
	r->fd = fd;
	r->size = (uint64_t)st.st_size;
	r->low_size = low_size;
	r->high_start = high_start;
	*out = r;
	return 0;
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
		return -PFS_EREAD;
	if (end <= r->low_size)
		off = paddr;
	else if (paddr >= r->high_start && paddr - r->high_start <= UINT64_MAX - r->low_size)
		off = r->low_size + (paddr - r->high_start);
	else
		return -PFS_EREAD;   /* in the hole, or straddling it */
	if (off + len > r->size)
		return -PFS_EREAD;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(r->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -PFS_EREAD;
		done += (size_t)n;
	}
	return 0;
}
