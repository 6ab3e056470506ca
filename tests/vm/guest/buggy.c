/*
 * buggy OUTDIR -- map every mode of /dev/pfnscope_buggy (tests/vm/module) in one
 * kept-alive process and append one manifest line per mode to OUTDIR/manifest.jsonl.
 *
 * The holder process never exits: unmapping these VMAs would print "Bad page map"
 * or free pages that were already freed.  pfns and vm_flags come from the module
 * (read() of the device); the raw pte of every page from its ioctl.
 */
#include "common.h"
#include <sys/ioctl.h>
#include <sys/utsname.h>

struct buggy_pte { uint64_t addr, pte; };
#define PFNSCOPE_BUGGY_PTE _IOWR('P', 1, struct buggy_pte)

struct mode {
	int mode;
	const char *name;
	int npages;
	int cow;		/* MAP_PRIVATE (COW) instead of MAP_SHARED */
	int special, normal;	/* expectation for untouched pages */
	const char *flags;	/* smaps mnemonics expected */
	const char *diag, *may, *note;
};

static const struct mode modes[] = {
	{ 1, "BAD_SPECIAL", 4, 0, 1, 0, "rd wr sh mr mw me ms de dd", "BAD_SPECIAL", "",
	  "remap_pfn_range of VGA pfns 0xa0.., then VM_PFNMAP|VM_IO cleared: special ptes in a plain VMA" },
	{ 2, "SPECIAL_OVER_RAM", 4, 0, 1, 0, "rd wr sh mr mw me ms io pf de dd", "SPECIAL_OVER_RAM", "",
	  "remap_pfn_range of alloc_pages RAM (split, rc=1, kept allocated): case C" },
	{ 3, "MAPS_FREED_PAGE", 16, 0, 1, 0, "rd wr sh mr mw me ms io pf de dd", "MAPS_FREED_PAGE",
	  "REFCOUNT_BELOW_MAPCOUNT SPECIAL_OVER_RAM",
	  "remap_pfn_range of the top 16 pages of an order-10 block, then the block freed to buddy" },
	{ 4, "NONSPECIAL_IN_PFNMAP", 4, 0, 0, 1, "rd wr sh mr mw me ms io pf de dd", "NONSPECIAL_IN_PFNMAP", "",
	  "vm_insert_page (normal ptes), then VM_MIXEDMAP replaced by VM_PFNMAP|VM_IO" },
	{ 5, "PFNMAP_AND_MIXEDMAP", 4, 0, 1, 0, "rd wr sh mr mw me ms io pf de dd mm", "PFNMAP_AND_MIXEDMAP", "",
	  "remap_pfn_range of VGA pfns, then VM_MIXEDMAP set as well" },
	{ 6, "REFCOUNT_BELOW_MAPCOUNT", 3, 0, 0, 1, "rd wr sh mr mw me ms mm", "REFCOUNT_BELOW_MAPCOUNT", "",
	  "one page vm_insert_page'd 3 times (mc=3), two references dropped (rc=2)" },
	{ 7, "PFNMAP_NONLINEAR_COW", 4, 1, 1, 0, "rd wr mr mw me io pf de dd", "PFNMAP_NONLINEAR_COW", "",
	  "MAP_PRIVATE (COW) pfnmap, special ptes to VGA pfns in reverse order, vm_pgoff=0xa0" },
	{ 8, "PFN_BEYOND_MEMMAP", 1, 0, 0, 0, "rd wr sh mr mw me ms mm de dd", "PFN_BEYOND_MEMMAP", "",
	  "non-special present pte to pfn 0xdead000 (no struct page) in a VM_MIXEDMAP VMA" },
	{ 9, "PFNMAP_WITHOUT_IO", 4, 0, 1, 0, "rd wr sh mr mw me ms pf de dd", "PFNMAP_WITHOUT_IO", "",
	  "remap_pfn_range of VGA pfns, then VM_IO cleared" },
	{ 10, "RESERVED_NORMAL", 2, 0, 0, 1, "rd wr sh mr mw me ms", "RESERVED_NORMAL", "",
	  "vm_insert_page of SetPageReserved alloc'd pages, VM_MIXEDMAP cleared (plain shared VMA)" },
	{ 11, "PFNMAP_COW_ANON", 8, 1, 1, 0, "rd wr mr mw me io pf de dd", "PFNMAP_COW_ANON", "",
	  "MAP_PRIVATE remap_pfn_range of VGA pfns, pages 1 and 3 written: COW anon pages (case B)" },
};
#define NMODES (int)(sizeof(modes) / sizeof(modes[0]))

static const char *manifest;
static char release[128];

static void lower(char *dst, const char *src, size_t cap)
{
	size_t i;
	for (i = 0; src[i] && i < cap - 1; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] + 32) : src[i];
	dst[i] = 0;
}

static void error_line(const struct mode *m, const char *fmt, ...)
{
	struct sb b = { 0 };
	char msg[512], kind[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lower(kind, m->name, sizeof(kind));
	sb_add(&b, "{\"kind\":\"buggy_%s\",\"mode\":%d,\"pid\":%d,\"start\":null,\"end\":null,\"kernel\":",
	       kind, m->mode, (int)getpid());
	sb_str(&b, release);
	sb_add(&b, ",\"diagnoses\":[\"%s\"],\"error\":", m->diag);
	sb_str(&b, msg);
	sb_add(&b, "}\n");
	append_line(manifest, b.s, b.n);
	fprintf(stderr, "buggy: mode %d %s: %s\n", m->mode, m->name, msg);
	sb_free(&b);
}

static void add_words(struct sb *b, const char *key, const char *words)
{
	char tmp[256], *save = NULL, *t;
	int first = 1;
	snprintf(tmp, sizeof(tmp), "%s", words);
	sb_add(b, ",\"%s\":[", key);
	for (t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		sb_add(b, "%s\"%s\"", first ? "" : ",", t);
		first = 0;
	}
	sb_add(b, "]");
}

/* the module's record of the mapping at start: "mode=N ... start=0x.. flags=.. pgoff=.. pfns=.." */
static int find_rec(const char *txt, unsigned long start, unsigned long *flags, unsigned long *pgoff,
		    unsigned long *pfns, int max, char *note, size_t notecap)
{
	const char *l = txt;
	char key[64];
	snprintf(key, sizeof(key), " start=0x%lx ", start);
	while (l && *l) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		char line[1024];
		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, l, n);
		line[n] = 0;
		if (strstr(line, key)) {
			char *p = strstr(line, " flags=");
			int k = 0;
			if (p)
				*flags = strtoul(p + 7, NULL, 16);
			p = strstr(line, " pgoff=");
			if (p)
				*pgoff = strtoul(p + 7, NULL, 16);
			p = strstr(line, " pfns=");
			if (p) {
				p += 6;
				while (k < max && *p && *p != ' ') {
					pfns[k++] = strtoul(p, &p, 16);
					if (*p == ',')
						p++;
				}
			}
			p = strstr(line, " note=");
			snprintf(note, notecap, "%s", p ? p + 6 : "");
			return k;
		}
		l = e ? e + 1 : NULL;
	}
	return -1;
}

static int run(int ready)
{
	int fd = open("/dev/pfnscope_buggy", O_RDWR | O_CLOEXEC), i;
	char *maps[NMODES];
	char txt[65536];
	ssize_t n;
	if (fd < 0) {
		for (i = 0; i < NMODES; i++)
			error_line(&modes[i], "open /dev/pfnscope_buggy: %s (module not loaded?)", strerror(errno));
		return -1;
	}
	for (i = 0; i < NMODES; i++) {
		const struct mode *m = &modes[i];
		size_t len = (size_t)m->npages * PAGE;
		maps[i] = mmap(NULL, len, PROT_READ | PROT_WRITE, m->cow ? MAP_PRIVATE : MAP_SHARED, fd,
			       (off_t)m->mode * (off_t)PAGE);
		if (maps[i] == MAP_FAILED) {
			error_line(m, "mmap mode %d: %s", m->mode, strerror(errno));
			maps[i] = NULL;
			continue;
		}
		if (m->mode == 11) {
			maps[i][1 * PAGE] = 'B';
			maps[i][3 * PAGE] = 'B';
		}
	}
	n = pread(fd, txt, sizeof(txt) - 1, 0);
	txt[n > 0 ? n : 0] = 0;
	for (i = 0; i < NMODES; i++) {
		const struct mode *m = &modes[i];
		unsigned long s = (unsigned long)maps[i], flags = 0, pgoff = 0, pfns[32];
		char kind[64], note[128];
		struct sb b = { 0 };
		int k, j;
		if (!maps[i])
			continue;
		k = find_rec(txt, s, &flags, &pgoff, pfns, 32, note, sizeof(note));
		if (k < 0) {
			error_line(m, "no record of the mapping at 0x%lx in the device", s);
			continue;
		}
		lower(kind, m->name, sizeof(kind));
		sb_add(&b, "{\"kind\":\"buggy_%s\",\"mode\":%d,\"pid\":%d,\"start\":\"0x%lx\",\"end\":\"0x%lx\","
			   "\"kernel\":", kind, m->mode, (int)getpid(), s, s + (size_t)m->npages * PAGE);
		sb_str(&b, release);
		add_words(&b, "vm_flags_expect", m->flags);
		sb_add(&b, ",\"vm_flags_raw\":\"0x%lx\",\"vm_pgoff\":\"0x%lx\"", flags, pgoff);
		sb_add(&b, ",\"expect\":{\"special\":%s,\"normal_page\":%s,\"level\":\"pte\",\"kind\":\"present\"}",
		       tri(m->special), tri(m->normal));
		sb_add(&b, ",\"pages\":[");
		for (j = 0; j < m->npages; j++) {
			struct buggy_pte q = { s + (size_t)j * PAGE, 0 };
			int written = m->mode == 11 && (j == 1 || j == 3);
			long long pfn = j < k ? (long long)pfns[j] : -1;
			ioctl(fd, PFNSCOPE_BUGGY_PTE, &q);
			if (written && (q.pte & 1))
				pfn = (long long)((q.pte & 0x000ffffffffff000ULL) >> 12);
			sb_add(&b, "%s{\"addr\":\"0x%lx\",\"pfn\":", j ? "," : "", q.addr);
			if (pfn < 0)
				sb_add(&b, "null");
			else
				sb_add(&b, "%lld", pfn);
			sb_add(&b, ",\"special\":%s,\"normal_page\":%s,\"kind\":\"present\",\"pte\":\"0x%llx\"",
			       tri(written ? 0 : m->special), tri(written ? 1 : m->normal),
			       (unsigned long long)q.pte);
			if (written)
				sb_add(&b, ",\"note\":\"written: COW anon page (pfn from the raw pte)\"");
			sb_add(&b, "}");
		}
		sb_add(&b, "]");
		add_words(&b, "diagnoses", m->diag);
		if (m->may[0])
			add_words(&b, "diagnoses_may", m->may);
		sb_add(&b, ",\"note\":");
		sb_str(&b, m->note);
		sb_add(&b, ",\"module_note\":");
		sb_str(&b, note);
		sb_add(&b, "}\n");
		append_line(manifest, b.s, b.n);
		sb_free(&b);
	}
	/* fd stays open: the holder keeps everything alive */
	if (write(ready, "R", 1) != 1)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static char mpath[4096];
	struct utsname u;
	int p[2];
	pid_t pid;
	if (argc != 2)
		die("usage: buggy OUTDIR");
	mkdir(argv[1], 0755);
	snprintf(mpath, sizeof(mpath), "%s/manifest.jsonl", argv[1]);
	manifest = mpath;
	uname(&u);
	snprintf(release, sizeof(release), "%s", u.release);
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
		if (run(p[1]))
			_exit(1);
		close(p[1]);
		daemon_stdio();
		sleep_forever();
	}
	close(p[1]);
	if (!wait_ready(p[0], 30000)) {
		fprintf(stderr, "buggy: holder %d failed or timed out (see manifest)\n", (int)pid);
		return 1;
	}
	fprintf(stderr, "buggy: all modes mapped in pid %d\n", (int)pid);
	return 0;
}
