/*
 * truth OUTDIR -- record the kernel's own view of the lab's processes.
 *
 * Reads the pids of OUTDIR/manifest.jsonl and writes:
 *   OUTDIR/maps/PID.maps, OUTDIR/maps/PID.smaps   copies of /proc/PID/{maps,smaps}
 *   OUTDIR/pagemap.jsonl   one line per present or swapped page of every VMA of
 *                          those pids (pagemap shows VM_PFNMAP VMAs as holes: none)
 *   OUTDIR/kpages.jsonl    /proc/kpagecount + /proc/kpageflags of every pfn the
 *                          manifest names (also pfnmap pages that pagemap hides)
 *   OUTDIR/magic.json      the magic page of the manifest with its pagemap pfn
 * Format: README.md.  Exit 0 on success, 1 when something could not be recorded.
 */
#include "common.h"

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

/* value of "key": in a JSON line: numbers and strings only (no nesting needed) */
static int json_get(const char *line, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p;
	size_t n = 0;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	if (*p == '"') {
		p++;
		while (*p && *p != '"' && n < cap - 1)
			out[n++] = *p++;
	} else {
		while (*p && *p != ',' && *p != '}' && n < cap - 1)
			out[n++] = *p++;
	}
	out[n] = 0;
	return 0;
}

static int kfd_count = -1, kfd_flags = -1;

static void kpage_line(FILE *out, uint64_t pfn)
{
	uint64_t kc, kf;
	fprintf(out, "{\"pfn\":%llu,", (unsigned long long)pfn);
	if (kfd_count >= 0 && pread(kfd_count, &kc, 8, (off_t)(pfn * 8)) == 8)
		fprintf(out, "\"kpagecount\":%llu,", (unsigned long long)kc);
	else
		fprintf(out, "\"kpagecount\":null,");
	if (kfd_flags >= 0 && pread(kfd_flags, &kf, 8, (off_t)(pfn * 8)) == 8)
		fprintf(out, "\"kpageflags\":\"0x%llx\"}\n", (unsigned long long)kf);
	else
		fprintf(out, "\"kpageflags\":null}\n");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* every "pfn":N of the manifest text, sorted and unique, to OUTDIR/kpages.jsonl */
static int write_kpages(const char *dir, const char *man)
{
	char path[4096];
	size_t n = 0, cap = 1024, i;
	uint64_t *v = malloc(cap * sizeof(*v));
	const char *p = man;
	FILE *out;
	while (v && (p = strstr(p, "\"pfn\":"))) {
		p += 6;
		if (*p < '0' || *p > '9')
			continue;
		if (n == cap)
			v = realloc(v, (cap *= 2) * sizeof(*v));
		if (!v)
			break;
		v[n++] = strtoull(p, NULL, 10);
	}
	if (!v)
		return -1;
	qsort(v, n, sizeof(*v), cmp_u64);
	snprintf(path, sizeof(path), "%s/kpages.jsonl", dir);
	out = fopen(path, "w");
	if (!out) {
		free(v);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (i == 0 || v[i] != v[i - 1])
			kpage_line(out, v[i]);
	free(v);
	return fclose(out) ? -1 : 0;
}

static void emit_pages(FILE *out, int pid, unsigned long vs, unsigned long ve, int pmfd)
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
			fprintf(out, "{\"pid\":%d,\"addr\":\"0x%lx\",\"vma_start\":\"0x%lx\",\"present\":%s,"
				     "\"swapped\":%s,", pid, addr, vs, present ? "true" : "false",
				swapped ? "true" : "false");
			if (present) {
				uint64_t pfn = v & PM_PFN_MASK;
				fprintf(out, "\"pfn\":%llu,", (unsigned long long)pfn);
				fprintf(out, "\"exclusive\":%s,\"soft_dirty\":%s,\"file\":%s,",
					v & PM_EXCLUSIVE ? "true" : "false", v & PM_SOFT_DIRTY ? "true" : "false",
					v & PM_FILE ? "true" : "false");
				if (kfd_count >= 0 && pread(kfd_count, &kc, 8, (off_t)(pfn * 8)) == 8)
					fprintf(out, "\"kpagecount\":%llu,", (unsigned long long)kc);
				else
					fprintf(out, "\"kpagecount\":null,");
				if (kfd_flags >= 0 && pread(kfd_flags, &kf, 8, (off_t)(pfn * 8)) == 8)
					fprintf(out, "\"kpageflags\":\"0x%llx\"}\n", (unsigned long long)kf);
				else
					fprintf(out, "\"kpageflags\":null}\n");
			} else {
				fprintf(out, "\"pfn\":null,\"exclusive\":%s,\"soft_dirty\":%s,\"file\":%s,"
					     "\"kpagecount\":null,\"kpageflags\":null,\"swap_type\":%llu,"
					     "\"swap_offset\":%llu}\n",
					v & PM_EXCLUSIVE ? "true" : "false", v & PM_SOFT_DIRTY ? "true" : "false",
					v & PM_FILE ? "true" : "false", (unsigned long long)(v & 0x1f),
					(unsigned long long)((v & PM_PFN_MASK) >> 5));
			}
		}
		a += (size_t)got / 8 * PAGE;
		if ((size_t)got < want * 8)
			return;
	}
}

int main(int argc, char **argv)
{
	char path[4096], path2[4096];
	char *man, *line, *save = NULL;
	int pids[4096], npids = 0, i, j, rc = 0;
	char mpid[64] = "", maddr[64] = "", mpat[256] = "";
	FILE *out;

	if (argc != 2)
		die("usage: truth OUTDIR");
	snprintf(path, sizeof(path), "%s/manifest.jsonl", argv[1]);
	man = slurp(path, NULL);
	if (!man)
		die("truth: cannot read %s: %s", path, strerror(errno));
	kfd_count = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	kfd_flags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (write_kpages(argv[1], man)) {
		fprintf(stderr, "truth: cannot write kpages.jsonl\n");
		rc = 1;
	}
	for (line = strtok_r(man, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char v[64], kind[64] = "";
		int pid;
		if (json_get(line, "pid", v, sizeof(v)) || (pid = atoi(v)) <= 0)
			continue;
		for (j = 0; j < npids && pids[j] != pid; j++)
			;
		if (j == npids && npids < (int)(sizeof(pids) / sizeof(pids[0])))
			pids[npids++] = pid;
		json_get(line, "kind", kind, sizeof(kind));
		if (!strcmp(kind, "magic_page") && !strstr(line, "\"error\":")) {
			snprintf(mpid, sizeof(mpid), "%s", v);
			json_get(line, "addr", maddr, sizeof(maddr));
			json_get(line, "pattern", mpat, sizeof(mpat));
		}
	}
	snprintf(path, sizeof(path), "%s/maps", argv[1]);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/pagemap.jsonl", argv[1]);
	out = fopen(path, "w");
	if (!out)
		die("truth: cannot create %s: %s", path, strerror(errno));
	for (i = 0; i < npids; i++) {
		char *maps, *ml, *s2 = NULL;
		int pmfd;
		snprintf(path, sizeof(path), "/proc/%d/maps", pids[i]);
		snprintf(path2, sizeof(path2), "%s/maps/%d.maps", argv[1], pids[i]);
		if (copy_file(path, path2)) {
			struct stat st;
			snprintf(path, sizeof(path), "/proc/%d", pids[i]);
			/* pids of kinds that failed (their process exited) are expected to be gone */
			if (stat(path, &st) == 0) {
				fprintf(stderr, "truth: cannot copy maps of %d\n", pids[i]);
				rc = 1;
			}
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/smaps", pids[i]);
		snprintf(path2, sizeof(path2), "%s/maps/%d.smaps", argv[1], pids[i]);
		if (copy_file(path, path2)) {
			fprintf(stderr, "truth: cannot copy smaps of %d\n", pids[i]);
			rc = 1;
		}
		snprintf(path, sizeof(path), "%s/maps/%d.maps", argv[1], pids[i]);
		maps = slurp(path, NULL);
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pids[i]);
		pmfd = open(path, O_RDONLY | O_CLOEXEC);
		if (!maps || pmfd < 0) {
			fprintf(stderr, "truth: cannot read pagemap of %d\n", pids[i]);
			rc = 1;
			free(maps);
			if (pmfd >= 0)
				close(pmfd);
			continue;
		}
		for (ml = strtok_r(maps, "\n", &s2); ml; ml = strtok_r(NULL, "\n", &s2)) {
			unsigned long vs, ve;
			if (sscanf(ml, "%lx-%lx", &vs, &ve) == 2)
				emit_pages(out, pids[i], vs, ve, pmfd);
		}
		close(pmfd);
		free(maps);
	}
	if (fclose(out)) {
		fprintf(stderr, "truth: writing pagemap.jsonl failed\n");
		rc = 1;
	}
	if (mpid[0] && maddr[0]) {
		unsigned long a = strtoul(maddr, NULL, 16);
		uint64_t v = pagemap_of(atoi(mpid), a);
		snprintf(path, sizeof(path), "%s/magic.json", argv[1]);
		out = fopen(path, "w");
		if (!out || !(v & PM_PRESENT)) {
			fprintf(stderr, "truth: magic page of %s at %s not present\n", mpid, maddr);
			rc = 1;
		} else {
			fprintf(out, "{\"pid\":%s,\"addr\":\"%s\",\"pfn\":%llu,\"pattern\":\"%s\"}\n", mpid, maddr,
				(unsigned long long)(v & PM_PFN_MASK), mpat);
		}
		if (out)
			fclose(out);
	} else {
		fprintf(stderr, "truth: no magic_page in the manifest\n");
		rc = 1;
	}
	free(man);
	return rc;
}
