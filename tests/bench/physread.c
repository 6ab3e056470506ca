/* The physical limit of a walk: the same physical reads the walk made (every
 * page-table page and every struct-page run, as logged by bench.py through a
 * logging reader), replayed with plain reads through pfnscope's own libkdumpfile
 * reader (src/readers/kdumpfile.c), nothing else.
 *
 *   physread DUMP LOG [REPEAT]
 *
 * LOG: binary pairs of little-endian u64 (paddr, len).  Each repetition opens the
 * dump afresh (cold libkdumpfile caches, as a fresh walk) and times only the reads.
 * Prints: "reads=N bytes=B best=S median=S" (seconds). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int main(int argc, char **argv)
{
	struct pfs_error err;
	uint64_t (*log)[2] = NULL, bytes = 0, maxlen = 0;
	size_t n = 0, cap = 0, i;
	int repeat = argc > 3 ? atoi(argv[3]) : 3, r, failed = 0;
	double *t;
	unsigned char *buf;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: physread DUMP LOG [REPEAT]\n");
		return 2;
	}
	f = fopen(argv[2], "rb");
	if (!f) {
		perror(argv[2]);
		return 2;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			log = realloc(log, cap * sizeof(*log));
			if (!log)
				return 2;
		}
		if (fread(log[n], sizeof(log[n]), 1, f) != 1)
			break;
		bytes += log[n][1];
		if (log[n][1] > maxlen)
			maxlen = log[n][1];
		n++;
	}
	fclose(f);
	if (repeat < 1)
		repeat = 1;
	t = calloc((size_t)repeat, sizeof(*t));
	buf = malloc(maxlen ? maxlen : 1);
	if (!t || !buf)
		return 2;
	for (r = 0; r < repeat; r++) {
		struct pfs_kdump *k;
		double t0;
		if (pfs_kdump_open(argv[1], 0, &k, &err) < 0) {
			fprintf(stderr, "physread: %s: %s\n", err.file, err.message);
			return 2;
		}
		failed = 0;
		t0 = now();
		for (i = 0; i < n; i++)
			if (pfs_kdump_read_phys(k, log[i][0], buf, log[i][1]))
				failed++;
		t[r] = now() - t0;
		pfs_kdump_close(k);
	}
	qsort(t, (size_t)repeat, sizeof(*t), cmp);
	printf("reads=%zu bytes=%llu failed=%d best=%.6f median=%.6f\n", n,
	       (unsigned long long)bytes, failed, t[0], t[repeat / 2]);
	return 0;
}
