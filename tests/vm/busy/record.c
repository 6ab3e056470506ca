/*
 * record OUTDIR PID... -- the kernel's own view of every page of the given
 * (frozen) processes:
 *   OUTDIR/maps/PID.maps, OUTDIR/maps/PID.smaps   copies of /proc/PID/{maps,smaps}
 *   OUTDIR/pagemap.jsonl  one line per present or swapped (or marker) pagemap
 *                         entry of every VMA: {"pid","addr","vma_start","pm":"0x..",
 *                         "present","swapped","pfn","swap_type","swap_offset",
 *                         "exclusive","file","uffd_wp","kpagecount","kpageflags"}
 *   OUTDIR/outside.jsonl  the present pages of the processes outside that list
 *                         (record_outside)
 * Before reading, the per-CPU LRU batches are drained (MADV_COLD on a page
 * of our own: madvise_cold() calls lru_add_drain(); the guest has one CPU),
 * so that PG_lru reads the same now as in the dumps taken later.
 * Exit 0, or 1 when something could not be recorded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096UL
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define PM_SOFT_DIRTY (1ULL << 55)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_UFFD_WP (1ULL << 57)
#define PM_FILE (1ULL << 61)
#define PM_SWAP (1ULL << 62)
#define PM_PRESENT (1ULL << 63)
#ifndef MADV_COLD
#define MADV_COLD 20
#endif

static int kfd_count = -1, kfd_flags = -1;

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 16, n = 0;
	char *b;
	ssize_t r;
	if (fd < 0)
		return NULL;
	b = malloc(cap);
	while (b && (r = read(fd, b + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (cap - n < 4096) {
			cap *= 2;
			b = realloc(b, cap);
		}
	}
	close(fd);
	if (!b)
		return NULL;
	b[n] = 0;
	if (len)
		*len = n;
	return b;
}

static int copy_file(const char *from, const char *to)
{
	size_t n;
	char *b = slurp(from, &n);
	int fd, ok;
	if (!b)
		return -1;
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ok = fd >= 0 && write(fd, b, n) == (ssize_t)n;
	if (fd >= 0)
		close(fd);
	free(b);
	return ok ? 0 : -1;
}

static void emit(FILE *out, int pid, unsigned long vs, unsigned long ve, int pmfd)
{
	enum { CHUNK = 4096 };
	static uint64_t ent[CHUNK];
	unsigned long a = vs;
	while (a < ve) {
		size_t want = (ve - a) / PAGE, i;
		ssize_t got;
		if (want > CHUNK)
			want = CHUNK;
		got = pread(pmfd, ent, want * 8, (off_t)(a / PAGE * 8));
		if (got <= 0)
			return;
		for (i = 0; i < (size_t)got / 8; i++) {
			uint64_t v = ent[i], kc, kf;
			unsigned long addr = a + i * PAGE;
			int present = !!(v & PM_PRESENT), swapped = !!(v & PM_SWAP);
			if (!present && !swapped)
				continue;
			fprintf(out, "{\"pid\":%d,\"addr\":\"0x%lx\",\"vma_start\":\"0x%lx\",\"pm\":\"0x%llx\","
				     "\"present\":%s,\"swapped\":%s,\"exclusive\":%s,\"file\":%s,\"uffd_wp\":%s,",
				pid, addr, vs, (unsigned long long)v, present ? "true" : "false",
				swapped ? "true" : "false", v & PM_EXCLUSIVE ? "true" : "false",
				v & PM_FILE ? "true" : "false", v & PM_UFFD_WP ? "true" : "false");
			if (present) {
				uint64_t pfn = v & PM_PFN_MASK;
				fprintf(out, "\"pfn\":%llu,", (unsigned long long)pfn);
				if (kfd_count >= 0 && pread(kfd_count, &kc, 8, (off_t)(pfn * 8)) == 8)
					fprintf(out, "\"kpagecount\":%llu,", (unsigned long long)kc);
				else
					fprintf(out, "\"kpagecount\":null,");
				if (kfd_flags >= 0 && pread(kfd_flags, &kf, 8, (off_t)(pfn * 8)) == 8)
					fprintf(out, "\"kpageflags\":\"0x%llx\"}\n", (unsigned long long)kf);
				else
					fprintf(out, "\"kpageflags\":null}\n");
			} else {
				fprintf(out, "\"pfn\":null,\"kpagecount\":null,\"kpageflags\":null,"
					     "\"swap_type\":%llu,\"swap_offset\":%llu}\n",
					(unsigned long long)(v & 0x1f), (unsigned long long)((v & PM_PFN_MASK) >> 5));
			}
		}
		a += (size_t)got / 8 * PAGE;
		if ((size_t)got < want * 8)
			return;
	}
}

/* OUTDIR/outside.jsonl: {"pid","comm","pfn","count"} for the present pages
 * of every process NOT in the frozen list (init, busy.sh, record itself):
 * their share of kpagecount, which the dumps taken after they changed or
 * exited no longer have. */
static int record_outside(const char *dir, int argc, char **argv)
{
	char path[4096];
	FILE *out;
	DIR *d = opendir("/proc");
	struct dirent *de;
	if (!d)
		return -1;
	snprintf(path, sizeof(path), "%s/outside.jsonl", dir);
	out = fopen(path, "w");
	if (!out) {
		closedir(d);
		return -1;
	}
	while ((de = readdir(d))) {
		int pid = atoi(de->d_name), frozen = 0, pmfd;
		char *maps, *ml, *s2 = NULL, comm[64] = "";
		FILE *cf;
		if (pid <= 0)
			continue;
		for (int i = 2; i < argc; i++)
			frozen |= atoi(argv[i]) == pid;
		if (frozen)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		maps = slurp(path, NULL);
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
		pmfd = open(path, O_RDONLY | O_CLOEXEC);
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		if ((cf = fopen(path, "r"))) {
			if (fgets(comm, sizeof(comm), cf))
				comm[strcspn(comm, "\n\"\\")] = 0;
			fclose(cf);
		}
		for (ml = maps ? strtok_r(maps, "\n", &s2) : NULL; pmfd >= 0 && ml;
		     ml = strtok_r(NULL, "\n", &s2)) {
			unsigned long vs, ve, a;
			uint64_t v;
			if (sscanf(ml, "%lx-%lx", &vs, &ve) != 2 || strstr(ml, "[vsyscall]"))
				continue;
			for (a = vs; a < ve; a += PAGE)
				if (pread(pmfd, &v, 8, (off_t)(a / PAGE * 8)) == 8 && (v & PM_PRESENT))
					fprintf(out, "{\"pid\":%d,\"comm\":\"%s\",\"addr\":\"0x%lx\",\"pfn\":%llu}\n",
						pid, comm, a, (unsigned long long)(v & PM_PFN_MASK));
		}
		if (pmfd >= 0)
			close(pmfd);
		free(maps);
	}
	closedir(d);
	return fclose(out) ? -1 : 0;
}

int main(int argc, char **argv)
{
	char path[4096], path2[4096];
	int i, rc = 0;
	FILE *out;
	char *own;

	if (argc < 3) {
		fprintf(stderr, "usage: record OUTDIR PID...\n");
		return 2;
	}
	own = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (own != MAP_FAILED) {
		own[0] = 1;
		madvise(own, PAGE, MADV_COLD);
	}
	kfd_count = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	kfd_flags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (kfd_count < 0 || kfd_flags < 0) {
		fprintf(stderr, "record: /proc/kpagecount or kpageflags: %s\n", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/maps", argv[1]);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/pagemap.jsonl", argv[1]);
	out = fopen(path, "w");
	if (!out) {
		fprintf(stderr, "record: cannot create %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (i = 2; i < argc; i++) {
		int pid = atoi(argv[i]), pmfd;
		char *maps, *ml, *s2 = NULL;
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		snprintf(path2, sizeof(path2), "%s/maps/%d.maps", argv[1], pid);
		if (copy_file(path, path2)) {
			fprintf(stderr, "record: cannot copy maps of %d\n", pid);
			rc = 1;
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
		snprintf(path2, sizeof(path2), "%s/maps/%d.smaps", argv[1], pid);
		if (copy_file(path, path2)) {
			fprintf(stderr, "record: cannot copy smaps of %d\n", pid);
			rc = 1;
		}
		snprintf(path, sizeof(path), "%s/maps/%d.maps", argv[1], pid);
		maps = slurp(path, NULL);
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
		pmfd = open(path, O_RDONLY | O_CLOEXEC);
		if (!maps || pmfd < 0) {
			fprintf(stderr, "record: cannot read pagemap of %d\n", pid);
			rc = 1;
			free(maps);
			if (pmfd >= 0)
				close(pmfd);
			continue;
		}
		for (ml = strtok_r(maps, "\n", &s2); ml; ml = strtok_r(NULL, "\n", &s2)) {
			unsigned long vs, ve;
			if (sscanf(ml, "%lx-%lx", &vs, &ve) == 2 && !strstr(ml, "[vsyscall]"))
				emit(out, pid, vs, ve, pmfd);
		}
		close(pmfd);
		free(maps);
	}
	if (fclose(out)) {
		fprintf(stderr, "record: writing pagemap.jsonl failed\n");
		rc = 1;
	}
	if (record_outside(argv[1], argc, argv)) {
		fprintf(stderr, "record: writing outside.jsonl failed\n");
		rc = 1;
	}
	return rc;
}
