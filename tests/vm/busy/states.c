/*
 * states OUTDIR -- build the large-folio and marker states a busy system has,
 * deterministically, one paused process (or pair) per state, next to the
 * random ones of stress-ng.  Appends one manifest line per state to
 * OUTDIR/manifest.jsonl: {"kind","pid","start","end","note"} or, when the
 * running kernel cannot build it, {"kind","pid":null,"error":"why"}.
 *
 * The processes pause forever; busy.sh freezes them (SIGSTOP) with the rest.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define HPAGE (2UL << 20)
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static const char *outdir;

static void line(const char *kind, pid_t pid, unsigned long start, unsigned long end, const char *note)
{
	char p[4096];
	FILE *f;
	snprintf(p, sizeof(p), "%s/manifest.jsonl", outdir);
	f = fopen(p, "a");
	if (!f)
		return;
	fprintf(f, "{\"kind\":\"%s\",\"pid\":%d,\"start\":\"0x%lx\",\"end\":\"0x%lx\",\"note\":\"%s\"}\n",
		kind, (int)pid, start, end, note);
	fclose(f);
}

static void error_line(const char *kind, const char *why)
{
	char p[4096];
	FILE *f;
	snprintf(p, sizeof(p), "%s/manifest.jsonl", outdir);
	f = fopen(p, "a");
	if (!f)
		return;
	fprintf(f, "{\"kind\":\"%s\",\"pid\":null,\"error\":\"%s: %s\"}\n", kind, why, strerror(errno));
	fclose(f);
}

/* 2 MiB-aligned anonymous area of n huge pages (plus slack) */
static char *thp_area(size_t n)
{
	char *p = mmap(NULL, (n + 1) * HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;
	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((unsigned long)p + HPAGE - 1) & ~(HPAGE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + n * HPAGE < p + (n + 1) * HPAGE)
		munmap(a + n * HPAGE, (size_t)(p + (n + 1) * HPAGE - (a + n * HPAGE)));
	madvise(a, n * HPAGE, MADV_HUGEPAGE);
	return a;
}

static void fill(char *a, size_t len, int seed)
{
	for (size_t i = 0; i < len; i += PAGE)
		memset(a + i, (int)(1 + (i / PAGE + (size_t)seed) % 250), 64);
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void forever(void)
{
	for (;;)
		pause();
}

/* Run fn in a daemon child; wait until it says ready (or 20 s). */
static void state(const char *kind, void (*fn)(const char *kind, int ready))
{
	int pfd[2];
	pid_t pid;
	char c;
	if (pipe(pfd))
		return;
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		setsid();
		fn(kind, pfd[1]);
		forever();
	}
	close(pfd[1]);
	alarm(20);
	if (read(pfd[0], &c, 1) != 1) {
		errno = ETIMEDOUT;
		error_line(kind, "no ready byte");
	}
	alarm(0);
	close(pfd[0]);
}

static void ready(int fd)
{
	if (write(fd, "r", 1) != 1)
		_exit(1);
	close(fd);
}

/* A THP whose first 4 KiB is unmapped: the PMD is split, the large folio is
 * pte-mapped 511 times and queued for deferred split (mm/huge_memory.c). */
static void partial_unmap(const char *kind, int r)
{
	char *a = thp_area(1);
	if (!a)
		return error_line(kind, "mmap");
	fill(a, HPAGE, 1);
	munmap(a, PAGE);
	line(kind, getpid(), (unsigned long)a + PAGE, (unsigned long)a + HPAGE, "munmap of the first 4 KiB");
	ready(r);
}

/* Two THPs mremapped: one to a 2 MiB-aligned address (move_huge_pmd keeps
 * the PMD), one to an address 4 KiB off (the PMD is split, ptes move). */
static void mremapped(const char *kind, int r)
{
	char *a = thp_area(2), *dst = thp_area(3), *m1, *m2;
	if (!a || !dst)
		return error_line(kind, "mmap");
	fill(a, 2 * HPAGE, 2);
	munmap(dst, 3 * HPAGE);
	m1 = mremap(a, HPAGE, HPAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	m2 = mremap(a + HPAGE, HPAGE, HPAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst + HPAGE + PAGE);
	if (m1 == MAP_FAILED || m2 == MAP_FAILED)
		return error_line(kind, "mremap");
	line(kind, getpid(), (unsigned long)m1, (unsigned long)m1 + HPAGE, "aligned: PMD kept");
	line(kind, getpid(), (unsigned long)m2, (unsigned long)m2 + HPAGE, "misaligned: pte-mapped");
	ready(r);
}

/* mprotect of one page in the middle of a THP: VMA split, PMD split. */
static void mprotect_split(const char *kind, int r)
{
	char *a = thp_area(1);
	if (!a)
		return error_line(kind, "mmap");
	fill(a, HPAGE, 3);
	if (mprotect(a + 17 * PAGE, PAGE, PROT_READ))
		return error_line(kind, "mprotect");
	line(kind, getpid(), (unsigned long)a, (unsigned long)a + HPAGE, "page 17 read-only");
	ready(r);
}

/* fork-shared THP, then one page mprotected in the parent: the parent maps
 * the folio with ptes, the child with the PMD (PG_double_map before 6.2).
 * A second THP is written by the child after fork: the child's PMD is split
 * and one page copied (do_huge_pmd_wp_page fallback). */
static void fork_split(const char *kind, int r)
{
	char *a = thp_area(2);
	int cp[2];
	pid_t child;
	char c;
	if (!a || pipe(cp))
		return error_line(kind, "mmap");
	fill(a, 2 * HPAGE, 4);
	child = fork();
	if (child == 0) {
		close(cp[0]);
		a[HPAGE + 5 * PAGE] = 'c';
		line("thp_fork_child", getpid(), (unsigned long)a, (unsigned long)a + 2 * HPAGE,
		     "PMD-mapped shared THP + a THP split by a COW write");
		ready(cp[1]);
		forever();
	}
	close(cp[1]);
	if (read(cp[0], &c, 1) != 1)
		return error_line(kind, "child");
	if (mprotect(a + 100 * PAGE, PAGE, PROT_READ))
		return error_line(kind, "mprotect");
	line(kind, getpid(), (unsigned long)a, (unsigned long)a + 2 * HPAGE,
	     "pte-mapped in the parent, PMD-mapped in the child");
	ready(r);
}

/* Huge zero page (read fault of a THP-enabled area), a hugetlb page, an
 * mlocked THP and small anon pages read (zero page). */
static void zero_huge_mlock(const char *kind, int r)
{
	char *z = thp_area(1), *m = thp_area(1), *s;
	volatile char sum = 0;
	void *h;
	if (!z || !m)
		return error_line(kind, "mmap");
	for (size_t i = 0; i < HPAGE; i += PAGE)
		sum += z[i];
	line("huge_zero", getpid(), (unsigned long)z, (unsigned long)z + HPAGE, "read only");
	fill(m, HPAGE, 5);
	if (mlock(m, HPAGE) == 0)
		line("thp_mlocked", getpid(), (unsigned long)m, (unsigned long)m + HPAGE, "mlock");
	else
		error_line("thp_mlocked", "mlock");
	s = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s != MAP_FAILED) {
		madvise(s, 16 * PAGE, MADV_NOHUGEPAGE);
		for (size_t i = 0; i < 16 * PAGE; i += PAGE)
			sum += s[i];
		line("zero_pages", getpid(), (unsigned long)s, (unsigned long)s + 16 * PAGE, "read only");
	}
	h = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (h != MAP_FAILED) {
		fill(h, HPAGE, 6);
		line("hugetlb", getpid(), (unsigned long)h, (unsigned long)h + HPAGE, "MAP_HUGETLB");
	} else {
		error_line("hugetlb", "mmap MAP_HUGETLB");
	}
	(void)sum;
	ready(r);
}

/* KSM: 64 identical pages in each of two ranges, MADV_MERGEABLE (busy.sh
 * runs ksmd and waits for pages_sharing). */
static void ksm(const char *kind, int r)
{
	size_t len = 64 * PAGE;
	char *a = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return error_line(kind, "mmap");
	madvise(a, 2 * len, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < 2 * len; i += PAGE)
		memset(a + i, 'K' + (int)((i / PAGE) % 4), PAGE);
	if (madvise(a, 2 * len, MADV_MERGEABLE))
		return error_line(kind, "MADV_MERGEABLE");
	line(kind, getpid(), (unsigned long)a, (unsigned long)a + 2 * len, "4 distinct contents x 32");
	ready(r);
}

/* Swap: 64 pages paged out (zram); pages 0-31 brought back into the swap
 * cache by MADV_WILLNEED (still swap ptes); pages 0-7 then read (present;
 * PG_swapcache while the read fault keeps the swap slot, do_swap_page).
 * Then a child shares the swap entries (fork: swap_duplicate) and reads
 * pages 32-39: a swap count of 2 goes through the swap cache and the folio
 * stays there while the parent's entries refer to it. */
static void swap(const char *kind, int r)
{
	size_t len = 64 * PAGE;
	volatile char sum = 0;
	int cp[2];
	pid_t child;
	char c;
	char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || pipe(cp))
		return error_line(kind, "mmap");
	madvise(a, len, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < len; i += PAGE)
		for (size_t j = 0; j < PAGE; j += 8)
			*(uint64_t *)(a + i + j) = (uint64_t)random() * 2654435761u + j;
	for (int t = 0; t < 5; t++)
		madvise(a, len, MADV_PAGEOUT);
	madvise(a, 32 * PAGE, MADV_WILLNEED);
	usleep(200000);
	for (size_t i = 0; i < 8 * PAGE; i += PAGE)
		sum += a[i];
	child = fork();
	if (child == 0) {
		close(cp[0]);
		for (size_t i = 32 * PAGE; i < 40 * PAGE; i += PAGE)
			sum += a[i];
		line("swap_child", getpid(), (unsigned long)a, (unsigned long)a + len,
		     "fork-shared swap entries; 32-39 read: swap cache");
		ready(cp[1]);
		forever();
	}
	close(cp[1]);
	if (child < 0 || read(cp[0], &c, 1) != 1)
		error_line("swap_child", "fork");
	close(cp[0]);
	(void)sum;
	line(kind, getpid(), (unsigned long)a, (unsigned long)a + len,
	     "paged out; 0-31 willneed; 0-7 read back");
	ready(r);
}

static int uffd_open(uint64_t features, uint64_t *got)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return -1;
	}
	*got = api.features;
	return fd;
}

static int uffd_wp(int fd, char *a, size_t len)
{
	struct uffdio_register reg = { .range = { (unsigned long)a, len }, .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .range = { (unsigned long)a, len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		return -1;
	return ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
}

/* uffd-wp: anon pages write-protected (the pte's uffd-wp bit, 5.7+); shmem
 * (memfd) pages 0-7 written, 8-15 never: write-protecting the range puts
 * PTE markers in the none ptes (6.0+, PTE_MARKER_UFFD_WP). */
static void uffd(const char *kind, int r)
{
	uint64_t got = 0;
	size_t len = 16 * PAGE;
	int fd = uffd_open(0, &got), mfd;
	char *a, *s;
	if (fd < 0)
		return error_line(kind, "userfaultfd");
	a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return error_line(kind, "mmap");
	madvise(a, len, MADV_NOHUGEPAGE);
	fill(a, len, 7);
	if (uffd_wp(fd, a, len))
		error_line("uffd_wp_anon", "UFFDIO_WRITEPROTECT anon");
	else
		line("uffd_wp_anon", getpid(), (unsigned long)a, (unsigned long)a + len, "wp present ptes");
	fd = uffd_open(0, &got);
	mfd = (int)syscall(SYS_memfd_create, "busy-uffd", 0);
	if (fd < 0 || mfd < 0 || ftruncate(mfd, (off_t)len))
		return error_line("uffd_wp_shmem", "memfd");
	s = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (s == MAP_FAILED)
		return error_line("uffd_wp_shmem", "mmap memfd");
	fill(s, len / 2, 8);
	if (uffd_wp(fd, s, len))
		error_line("uffd_wp_shmem", "UFFDIO_WRITEPROTECT shmem");
	else
		line("uffd_wp_shmem", getpid(), (unsigned long)s, (unsigned long)s + len,
		     "0-7 wp present, 8-15 markers");
	ready(r);
}

/* Guard regions (6.13+): pages 4-7 of 16 written pages get guard markers. */
static void guard(const char *kind, int r)
{
	size_t len = 16 * PAGE;
	char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return error_line(kind, "mmap");
	madvise(a, len, MADV_NOHUGEPAGE);
	fill(a, len, 9);
	if (madvise(a + 4 * PAGE, 4 * PAGE, MADV_GUARD_INSTALL))
		error_line(kind, "MADV_GUARD_INSTALL");
	else
		line(kind, getpid(), (unsigned long)a, (unsigned long)a + len, "4-7 guard markers");
	ready(r);
}

/* Anon mTHP (6.8+ with hugepages-64kB enabled): a 512 KiB area written;
 * also a 64 KiB folio partly unmapped. */
static void mthp(const char *kind, int r)
{
	size_t len = 512 * 1024;
	char *p = mmap(NULL, len + 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;
	if (p == MAP_FAILED)
		return error_line(kind, "mmap");
	a = (char *)(((unsigned long)p + 65535) & ~65535UL);
	fill(a, len, 10);
	munmap(a + len - 65536 + 3 * PAGE, PAGE);
	line(kind, getpid(), (unsigned long)a, (unsigned long)a + len, "64 KiB folios; one has a hole");
	ready(r);
}

/* shmem THP: a 4 MiB file on the huge=always tmpfs (busy.sh mounts it on
 * /hugetmp) mapped shared at a 2 MiB-aligned address (PMD), and its second
 * huge page mapped again 4 KiB off (pte-mapped large shmem folio); a read-only
 * private mapping of the first (page cache, no COW). */
static void shmem_thp(const char *kind, int r)
{
	int fd = open("/hugetmp/busy-shmem", O_RDWR | O_CREAT | O_TRUNC, 0600);
	char *a = thp_area(2), *b, *c;
	if (fd < 0 || !a || ftruncate(fd, (off_t)(2 * HPAGE)))
		return error_line(kind, "open /hugetmp/busy-shmem");
	munmap(a, 2 * HPAGE);
	a = mmap(a, 2 * HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (a == MAP_FAILED)
		return error_line(kind, "mmap");
	fill(a, 2 * HPAGE, 11);
	b = mmap(NULL, HPAGE + PAGE, PROT_READ, MAP_SHARED, fd, (off_t)HPAGE);
	c = mmap(NULL, HPAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (b == MAP_FAILED || c == MAP_FAILED)
		return error_line(kind, "mmap 2");
	/* b: one page before the file's second huge page would not be file
	 * offset aligned; map it at b + PAGE by fixed mapping */
	munmap(b, HPAGE + PAGE);
	b = mmap(b + PAGE, HPAGE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, (off_t)HPAGE);
	if (b == MAP_FAILED)
		return error_line(kind, "mmap 3");
	volatile char sum = 0;
	for (size_t i = 0; i < HPAGE; i += PAGE)
		sum += b[i] + c[i];
	(void)sum;
	line(kind, getpid(), (unsigned long)a, (unsigned long)a + 2 * HPAGE, "PMD-mapped shmem THP");
	line("shmem_thp_pte", getpid(), (unsigned long)b, (unsigned long)b + HPAGE, "same folio, ptes");
	line("shmem_thp_private", getpid(), (unsigned long)c, (unsigned long)c + HPAGE, "private read");
	ready(r);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *kind;
		void (*fn)(const char *, int);
	} states[] = {
		{ "thp_partial_unmap", partial_unmap }, { "thp_mremap", mremapped },
		{ "thp_mprotect_split", mprotect_split }, { "thp_fork_parent", fork_split },
		{ "zero_huge_mlock", zero_huge_mlock }, { "ksm", ksm }, { "swap", swap },
		{ "uffd", uffd }, { "guard", guard }, { "mthp", mthp }, { "shmem_thp", shmem_thp },
	};
	if (argc != 2) {
		fprintf(stderr, "usage: states OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	{
		/* alarm() must interrupt the ready read(): no SA_RESTART */
		struct sigaction sa = { .sa_handler = on_alarm };
		sigaction(SIGALRM, &sa, NULL);
	}
	srandom(42);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		state(states[i].kind, states[i].fn);
	return 0;
}
