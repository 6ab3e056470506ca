/* The physical limit of a walk, and the floor of one on an ELF dump: a log of
 * physical reads replayed with nothing else.
 *
 *   physread DUMP LOG [REPEAT]            through pfnscope's own dump reader
 *   physread --memcpy DUMP LOG [REPEAT]   plain memcpy out of the mapped ELF
 *   physread --memcpy-fresh DUMP LOG [REPEAT]   the same out of a mapping made
 *                                          afresh for each repetition
 *
 * LOG: binary pairs of little-endian u64 (paddr, len): the walk's own reads
 * (every page-table page and every struct-page run, logged by bench.py
 * through a logging reader) or the pages tests/bench/floor.py found.
 * Through the reader (src/readers/kdumpfile.c), each repetition opens the
 * dump afresh (cold caches, as a fresh walk) and times only the reads.
 * With --memcpy the dump is mapped and each range located through its
 * PT_LOAD program headers first; a first pass faults the pages in (the page
 * cache holds the file), then each repetition copies every range into one
 * buffer -- no reader, no cache, no decode.  With --memcpy-fresh the file
 * is mapped anew before each repetition (not timed) and the copies fault
 * its pages in, as a fresh process's first walk does: the page cache holds
 * the file either way, so the difference is the cost of mapping it.
 * Prints: "reads=N bytes=B [failed=F ]best=S median=S" (seconds). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pfnscope/readers.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint64_t (*log_)[2];
static size_t n;
static uint64_t bytes, maxlen;

static int load_log(const char *path)
{
	size_t cap = 0;
	FILE *f = fopen(path, "rb");

	if (!f) {
		perror(path);
		return -1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			log_ = realloc(log_, cap * sizeof(*log_));
			if (!log_)
				return -1;
		}
		if (fread(log_[n], sizeof(log_[n]), 1, f) != 1)
			break;
		bytes += log_[n][1];
		if (log_[n][1] > maxlen)
			maxlen = log_[n][1];
		n++;
	}
	fclose(f);
	return 0;
}

/* through the reader: a fresh context per repetition */
static int time_reader(const char *dump, double *t, int repeat, int *failed)
{
	struct pfs_error err;
	unsigned char *buf = malloc(maxlen ? maxlen : 1);

	if (!buf)
		return -1;
	for (int r = 0; r < repeat; r++) {
		struct pfs_kdump *k;
		if (pfs_kdump_open(dump, 0, &k, &err) < 0) {
			fprintf(stderr, "physread: %s: %s\n", err.file, err.message);
			return -1;
		}
		*failed = 0;
		double t0 = now();
		for (size_t i = 0; i < n; i++)
			if (pfs_kdump_read_phys(k, log_[i][0], buf, log_[i][1]))
				(*failed)++;
		t[r] = now() - t0;
		pfs_kdump_close(k);
	}
	free(buf);
	return 0;
}

/* plain memcpy out of the mapped ELF file (fresh: mapped anew each time) */
static int time_memcpy(const char *dump, double *t, int repeat, int fresh)
{
	struct stat st;
	int fd = open(dump, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(dump);
		return -1;
	}
	const unsigned char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return -1;
	}
	const Elf64_Ehdr *eh = (const void *)map;
	if ((size_t)st.st_size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)st.st_size) {
		fprintf(stderr, "%s: not an ELF64 dump\n", dump);
		return -1;
	}
	const Elf64_Phdr *ph = (const void *)(map + eh->e_phoff);
	/* file offset of each range, once: the timed loop copies only */
	const unsigned char **src = calloc(n ? n : 1, sizeof(*src));
	unsigned char *buf = malloc(maxlen ? maxlen : 1);
	if (!src || !buf)
		return -1;
	for (size_t i = 0; i < n; i++) {
		for (unsigned p = 0; p < eh->e_phnum; p++) {
			if (ph[p].p_type != PT_LOAD || log_[i][0] < ph[p].p_paddr ||
			    log_[i][0] + log_[i][1] > ph[p].p_paddr + ph[p].p_filesz)
				continue;
			uint64_t off = ph[p].p_offset + (log_[i][0] - ph[p].p_paddr);
			if (off + log_[i][1] <= (uint64_t)st.st_size)
				src[i] = map + off;
			break;
		}
		if (!src[i]) {
			fprintf(stderr, "%s: %#llx+%llu not in the dump\n", dump,
				(unsigned long long)log_[i][0], (unsigned long long)log_[i][1]);
			return -1;
		}
	}
	volatile unsigned sink = 0;
	for (size_t i = 0; i < n; i++)      /* fault the mapping in */
		sink += src[i][0];
	for (int r = 0; r < repeat; r++) {
		if (fresh) {
			/* the same address: src[] stays right */
			if (munmap((void *)map, (size_t)st.st_size) ||
			    mmap((void *)map, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_FIXED,
				 fd, 0) != map) {
				perror("mmap");
				return -1;
			}
		}
		double t0 = now();
		for (size_t i = 0; i < n; i++) {
			memcpy(buf, src[i], log_[i][1]);
			sink += buf[0];
		}
		t[r] = now() - t0;
	}
	free(buf);
	free(src);
	return 0;
}

int main(int argc, char **argv)
{
	int fresh = argc > 1 && !strcmp(argv[1], "--memcpy-fresh");
	int use_memcpy = fresh || (argc > 1 && !strcmp(argv[1], "--memcpy"));
	int failed = 0;

	argv += use_memcpy;
	argc -= use_memcpy;
	if (argc < 3) {
		fprintf(stderr, "usage: physread [--memcpy | --memcpy-fresh] DUMP LOG [REPEAT]\n");
		return 2;
	}
	int repeat = argc > 3 ? atoi(argv[3]) : 3;
	if (repeat < 1)
		repeat = 1;
	double *t = calloc((size_t)repeat, sizeof(*t));
	if (!t || load_log(argv[2]) < 0)
		return 2;
	if (use_memcpy ? time_memcpy(argv[1], t, repeat, fresh) : time_reader(argv[1], t, repeat, &failed))
		return use_memcpy ? 1 : 2;
	qsort(t, (size_t)repeat, sizeof(*t), cmp);
	if (use_memcpy)
		printf("reads=%zu bytes=%llu best=%.6f median=%.6f\n", n,
		       (unsigned long long)bytes, t[0], t[repeat / 2]);
	else
		printf("reads=%zu bytes=%llu failed=%d best=%.6f median=%.6f\n", n,
		       (unsigned long long)bytes, failed, t[0], t[repeat / 2]);
	return 0;
}
