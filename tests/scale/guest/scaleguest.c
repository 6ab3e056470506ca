// SPDX-License-Identifier: MIT
/*
 * The scale guest's processes: NPROC processes sharing KIB_PER_PROC KiB of
 * populated memory each, in a mix of VMA kinds, then asleep while the guest
 * is dumped.  Run by tests/bench/init (installed as /bin/benchguest):
 *
 *   scaleguest OUTDIR [NPROC] [KIB_PER_PROC]
 *
 * Each process k has: a private anon VMA written (half its share), a
 * MAP_SHARED anon (shmem) VMA written (a quarter), a memfd mapped shared and
 * written (an eighth), a read-only private anon VMA read (zero-page ptes),
 * and every 8th process a 4 MiB MADV_HUGEPAGE region written (THPs under
 * transparent_hugepage=madvise).  Writes OUTDIR/bench.json:
 * {"scale":{"count":N,"kib_per_proc":K,"pids":[...]}}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096ul

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "scaleguest: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void touch(unsigned char *p, unsigned long len, int k)
{
	for (unsigned long o = 0; o < len; o += PAGE)
		p[o] = (unsigned char)(k + (o >> 12)) | 1;
}

static unsigned char *map(unsigned long len, int prot, int flags, int fd)
{
	unsigned char *p = mmap(NULL, len, prot, flags, fd, 0);
	if (p == MAP_FAILED)
		die("mmap %lu: %s", len, strerror(errno));
	return p;
}

static void child(int k, unsigned long kib, int fd_out)
{
	unsigned long share = kib * 1024;
	unsigned long anon = share / 2 & ~(PAGE - 1), shm = share / 4 & ~(PAGE - 1);
	unsigned long mfd = share / 8 & ~(PAGE - 1);
	touch(map(anon, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1), anon, k);
	touch(map(shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1), shm, k);
	int fd = memfd_create("scale", 0);
	if (fd < 0 || ftruncate(fd, (off_t)mfd))
		die("memfd: %s", strerror(errno));
	touch(map(mfd, PROT_READ | PROT_WRITE, MAP_SHARED, fd), mfd, k);
	unsigned char *ro = map(16 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	for (unsigned long o = 0; o < 16 * PAGE; o += PAGE)
		(void)*(volatile unsigned char *)(ro + o);
	if (k % 8 == 0) {
		/* 4 MiB aligned inside 6 MiB: two whole THP-sized ranges */
		unsigned char *h = map(6ul << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
		unsigned char *a = (unsigned char *)(((unsigned long)h + (2ul << 20) - 1) & ~((2ul << 20) - 1));
		madvise(a, 4ul << 20, MADV_HUGEPAGE);
		touch(a, 4ul << 20, k);
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
	if (write(fd_out, buf, (size_t)n) != n)
		_exit(1);
	close(fd_out);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	unsigned long nproc = argc > 2 ? strtoul(argv[2], NULL, 0) : 2000;
	unsigned long kib = argc > 3 ? strtoul(argv[3], NULL, 0) : 3072;
	char path[512], final[512];
	if (argc < 2)
		die("usage: scaleguest OUTDIR [NPROC] [KIB_PER_PROC]");
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "%s/bench.json.tmp", argv[1]);
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot create %s: %s", path, strerror(errno));
	fprintf(f, "{\"scale\":{\"count\":%lu,\"kib_per_proc\":%lu,\"pids\":[", nproc, kib);
	for (unsigned long k = 0; k < nproc; k++) {
		int p[2];
		char buf[32];
		if (pipe(p))
			die("pipe: %s", strerror(errno));
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0)
			die("fork %lu: %s", k, strerror(errno));
		if (pid == 0) {
			close(p[0]);
			setsid();
			signal(SIGHUP, SIG_IGN);
			child((int)k, kib, p[1]);
		}
		close(p[1]);
		ssize_t n = read(p[0], buf, sizeof(buf) - 1);
		close(p[0]);
		if (n <= 0)
			die("process %lu (pid %d) reported nothing", k, (int)pid);
		buf[n] = 0;
		fprintf(f, "%s%s", k ? "," : "", buf);
		if (k % 250 == 249)
			fprintf(stderr, "scaleguest: %lu processes\n", k + 1);
	}
	fprintf(f, "]}}\n");
	if (fclose(f))
		die("write %s: %s", path, strerror(errno));
	snprintf(final, sizeof(final), "%s/bench.json", argv[1]);
	if (rename(path, final))
		die("rename %s: %s", path, strerror(errno));
	fprintf(stderr, "scaleguest: %lu processes ready, %lu KiB each\n", nproc, kib);
	return 0;
}
