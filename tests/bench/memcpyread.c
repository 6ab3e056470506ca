/* The floor of a walk on an ELF dump: plain memcpy of the pages it must
 * read (the LOG of tests/bench/floor.py, or of the walk's own reads) out
 * of the dump mapped in memory, through its PT_LOAD program headers --
 * no reader, no cache, no decode.
 *
 *   memcpyread DUMP LOG [REPEAT]
 *
 * LOG: binary pairs of little-endian u64 (paddr, len).  A first pass
 * faults the pages in (the page cache holds the file); each repetition
 * then copies every range into one buffer.
 * Prints: "reads=N bytes=B best=S median=S" (seconds). */
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
	uint64_t (*log)[2] = NULL, bytes = 0;
	size_t n = 0, cap = 0;
	int repeat = argc > 3 ? atoi(argv[3]) : 3;
	struct stat st;

	if (argc < 3) {
		fprintf(stderr, "usage: memcpyread DUMP LOG [REPEAT]\n");
		return 2;
	}
	FILE *f = fopen(argv[2], "rb");
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
		if (fread(log[n], 8, 2, f) != 2)
			break;
		bytes += log[n][1];
		n++;
	}
	fclose(f);
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 2;
	}
	const unsigned char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	const Elf64_Ehdr *eh = (const void *)map;
	if ((size_t)st.st_size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)st.st_size) {
		fprintf(stderr, "%s: not an ELF64 dump\n", argv[1]);
		return 2;
	}
	const Elf64_Phdr *ph = (const void *)(map + eh->e_phoff);
	/* file offset of each range, once: the timed loop copies only */
	const unsigned char **src = calloc(n, sizeof(*src));
	uint64_t maxlen = 0;
	for (size_t i = 0; i < n; i++) {
		for (unsigned p = 0; p < eh->e_phnum; p++) {
			if (ph[p].p_type != PT_LOAD || log[i][0] < ph[p].p_paddr ||
			    log[i][0] + log[i][1] > ph[p].p_paddr + ph[p].p_filesz)
				continue;
			uint64_t off = ph[p].p_offset + (log[i][0] - ph[p].p_paddr);
			if (off + log[i][1] <= (uint64_t)st.st_size)
				src[i] = map + off;
			break;
		}
		if (!src[i]) {
			fprintf(stderr, "%s: %#llx+%llu not in the dump\n", argv[1],
				(unsigned long long)log[i][0], (unsigned long long)log[i][1]);
			return 1;
		}
		if (log[i][1] > maxlen)
			maxlen = log[i][1];
	}
	unsigned char *buf = malloc(maxlen ? maxlen : 1);
	volatile unsigned sink = 0;
	for (size_t i = 0; i < n; i++)      /* fault the mapping in */
		sink += src[i][0];
	double *t = calloc((size_t)repeat, sizeof(*t));
	for (int r = 0; r < repeat; r++) {
		double t0 = now();
		for (size_t i = 0; i < n; i++) {
			memcpy(buf, src[i], log[i][1]);
			sink += buf[0];
		}
		t[r] = now() - t0;
	}
	qsort(t, (size_t)repeat, sizeof(*t), cmp);
	printf("reads=%zu bytes=%llu best=%.6f median=%.6f\n", n, (unsigned long long)bytes, t[0],
	       t[repeat / 2]);
	return 0;
}
