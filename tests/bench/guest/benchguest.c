/* pfnscope benchmark guest program (static; PID 1's child in the bench VM).
 *
 *   benchguest OUTDIR [NSMALL] [ANON_MIB] [PFNMAP_MIB]
 *
 * Builds, in daemonized children that stay alive for the dumps:
 *   - one process with one populated anon VMA of ANON_MIB (default 1024 MiB):
 *     MADV_NOHUGEPAGE, every page written, so ANON_MIB*256 present ptes;
 *   - one process with a large pfnmap: /dev/mem MAP_SHARED over the largest
 *     non-RAM hole below 4 GiB that no resource claims (PFNMAP_MIB, default
 *     256 MiB, less when the hole is smaller), falling back to the QEMU std VGA
 *     BAR through PCI sysfs resource0;
 *   - NSMALL (default 200) processes with 8 small VMAs each (written anon
 *     pages and read-faulted zero pages, alternating so they do not merge).
 * Writes OUTDIR/bench.json: {"anon": {...pid, start, end, pages, present,
 * pfn_sum, pfn_xor}, "pfnmap": {...}, "small": {"count", "pids"}}.
 * The pfn checksums come from /proc/self/pagemap (root: real pfns). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define PM_PRESENT (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)

static int ready_fd = -1;
static char result[4096];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("benchguest: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void sleep_forever(void)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	for (;;)
		pause();
}

/* child -> parent: one line of JSON (the child's part of bench.json) */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(result, sizeof(result), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(result) || write(ready_fd, result, (size_t)n) != n)
		_exit(1);
	close(ready_fd);
}

static void pfn_sums(unsigned long start, unsigned long len, unsigned long *present,
		     uint64_t *sum, uint64_t *xr)
{
	static uint64_t buf[4096];
	int fd = open("/proc/self/pagemap", O_RDONLY);
	unsigned long n = len / PAGE, i, j;
	*present = 0;
	*sum = 0;
	*xr = 0;
	if (fd < 0)
		die("open pagemap: %s", strerror(errno));
	for (i = 0; i < n; i += 4096) {
		unsigned long k = n - i < 4096 ? n - i : 4096;
		ssize_t r = pread(fd, buf, k * 8, (off_t)((start / PAGE + i) * 8));
		if (r != (ssize_t)(k * 8))
			die("pread pagemap: %s", strerror(errno));
		for (j = 0; j < k; j++) {
			if (!(buf[j] & PM_PRESENT))
				continue;
			(*present)++;
			*sum += buf[j] & PM_PFN_MASK;
			*xr ^= buf[j] & PM_PFN_MASK;
		}
	}
	close(fd);
}

static int child_anon(unsigned long mib)
{
	unsigned long len = mib << 20, i, present;
	uint64_t sum, xr;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		die("mmap anon %lu MiB: %s", mib, strerror(errno));
	if (madvise(p, len, MADV_NOHUGEPAGE))
		die("madvise NOHUGEPAGE: %s", strerror(errno));
	for (i = 0; i < len / PAGE; i++)
		p[i * PAGE] = (unsigned char)(0x5a ^ i) | 1;
	pfn_sums((unsigned long)p, len, &present, &sum, &xr);
	report("\"anon\":{\"pid\":%d,\"start\":%lu,\"end\":%lu,\"pages\":%lu,\"present\":%lu,"
	       "\"pfn_sum\":%" PRIu64 ",\"pfn_xor\":%" PRIu64 "}",
	       (int)getpid(), (unsigned long)p, (unsigned long)p + len, len / PAGE, present, sum, xr);
	return 0;
}

/* the largest gap below 4 GiB above the top of System RAM that no iomem
 * resource (other than the PCI bus windows) covers */
static int find_hole(unsigned long long *hs, unsigned long long *he)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	unsigned long long r[256][2], ram_top = 0, lo, hi, best = 0;
	int n = 0, i, j;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f) && n < 256) {
		unsigned long long s, e;
		char *name = strstr(line, " : ");
		if (sscanf(line, " %llx-%llx", &s, &e) != 2 || !name)
			continue;
		name += 3;
		if (!strncmp(name, "PCI Bus", 7))
			continue;
		if (!strncmp(name, "System RAM", 10) && e < (1ULL << 32) && e + 1 > ram_top)
			ram_top = e + 1;
		r[n][0] = s;
		r[n][1] = e + 1;
		n++;
	}
	fclose(f);
	/* sort by start */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && r[j][0] < r[j - 1][0]; j--) {
			unsigned long long t0 = r[j][0], t1 = r[j][1];
			r[j][0] = r[j - 1][0];
			r[j][1] = r[j - 1][1];
			r[j - 1][0] = t0;
			r[j - 1][1] = t1;
		}
	lo = (ram_top + (2ULL << 20) - 1) & ~((2ULL << 20) - 1);
	for (i = 0; i <= n; i++) {
		unsigned long long s = i < n ? r[i][0] : 0xfec00000ULL;
		if (s > 0xfec00000ULL)
			s = 0xfec00000ULL;
		hi = s & ~((2ULL << 20) - 1);
		if (hi > lo && hi - lo > best) {
			best = hi - lo;
			*hs = lo;
			*he = hi;
		}
		if (i < n && r[i][1] > lo) {
			lo = (r[i][1] + (2ULL << 20) - 1) & ~((2ULL << 20) - 1);
		}
	}
	return best ? 0 : -1;
}

static int child_pfnmap(unsigned long mib)
{
	unsigned long long hs = 0, he = 0;
	unsigned long len = mib << 20;
	unsigned char *p = MAP_FAILED;
	volatile unsigned char sink;
	const char *how = "devmem";
	int fd;
	if (find_hole(&hs, &he) == 0) {
		if (he - hs < len)
			len = (unsigned long)(he - hs);
		fd = open("/dev/mem", O_RDWR | O_SYNC);
		if (fd >= 0) {
			p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)hs);
			if (p == MAP_FAILED)
				fprintf(stderr, "benchguest: mmap /dev/mem 0x%llx+%lu: %s\n", hs, len,
					strerror(errno));
			close(fd);
		}
	}
	if (p == MAP_FAILED) {
		/* fall back: the QEMU std VGA framebuffer BAR (00:02.0 on the pc machine) */
		const char *res = "/sys/bus/pci/devices/0000:00:02.0/resource0";
		struct stat st;
		how = "vga-bar";
		fd = open(res, O_RDWR);
		if (fd < 0 || fstat(fd, &st))
			die("no pfnmap: /dev/mem and %s failed: %s", res, strerror(errno));
		len = (unsigned long)st.st_size;
		hs = 0;
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			die("mmap %s: %s", res, strerror(errno));
		close(fd);
	}
	sink = p[0];
	(void)sink;
	report("\"pfnmap\":{\"pid\":%d,\"start\":%lu,\"end\":%lu,\"pages\":%lu,\"phys\":%llu,\"how\":\"%s\"}",
	       (int)getpid(), (unsigned long)p, (unsigned long)p + len, len / PAGE, hs, how);
	return 0;
}

static int child_small(int k)
{
	int i;
	for (i = 0; i < 8; i++) {
		unsigned long pages = 1 + (unsigned long)((k * 3 + i * 5) % 16), j;
		int wr = i % 2 == 0;
		unsigned char *p = mmap(NULL, pages * PAGE, wr ? PROT_READ | PROT_WRITE : PROT_READ,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap small: %s", strerror(errno));
		for (j = 0; j < pages; j++) {
			if (wr)
				p[j * PAGE] = (unsigned char)(k + j) | 1;
			else
				(void)*(volatile unsigned char *)(p + j * PAGE);
		}
	}
	report("%d", (int)getpid());
	return 0;
}

/* fork a daemonized child running FN(ARG); returns what it reported */
static const char *spawn(int (*fn)(unsigned long), unsigned long arg)
{
	static char buf[4096];
	int p[2], st;
	ssize_t n, got = 0;
	pid_t pid;
	if (pipe(p))
		die("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		setsid();
		signal(SIGHUP, SIG_IGN);
		ready_fd = p[1];
		if (fn(arg))
			_exit(1);
		sleep_forever();
	}
	close(p[1]);
	while ((n = read(p[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(p[0]);
	buf[got] = 0;
	if (!got) {
		waitpid(pid, &st, 0);
		die("child %d reported nothing (status 0x%x)", (int)pid, st);
	}
	return buf;
}

static int small_fn(unsigned long k) { return child_small((int)k); }

int main(int argc, char **argv)
{
	char path[512];
	unsigned long nsmall = argc > 2 ? strtoul(argv[2], NULL, 0) : 200;
	unsigned long anon_mib = argc > 3 ? strtoul(argv[3], NULL, 0) : 1024;
	unsigned long pfnmap_mib = argc > 4 ? strtoul(argv[4], NULL, 0) : 256;
	unsigned long k;
	FILE *f;
	if (argc < 2)
		die("usage: benchguest OUTDIR [NSMALL] [ANON_MIB] [PFNMAP_MIB]");
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "%s/bench.json.tmp", argv[1]);
	f = fopen(path, "w");
	if (!f)
		die("cannot create %s: %s", path, strerror(errno));
	fprintf(f, "{%s,", spawn(child_pfnmap, pfnmap_mib));
	fflush(f);
	fprintf(stderr, "benchguest: pfnmap ready\n");
	fprintf(f, "%s,\"small\":{\"count\":%lu,\"pids\":[", spawn(child_anon, anon_mib), nsmall);
	fprintf(stderr, "benchguest: anon ready\n");
	for (k = 0; k < nsmall; k++)
		fprintf(f, "%s%s", k ? "," : "", spawn(small_fn, k));
	fprintf(f, "]}}\n");
	if (fclose(f))
		die("write %s: %s", path, strerror(errno));
	{
		char final[512];
		snprintf(final, sizeof(final), "%s/bench.json", argv[1]);
		if (rename(path, final))
			die("rename %s: %s", path, strerror(errno));
	}
	fprintf(stderr, "benchguest: %lu small processes ready\n", nsmall);
	return 0;
}
