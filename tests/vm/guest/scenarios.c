/*
 * scenarios OUTDIR -- build every healthy mapping kind of the pfnscope lab in live
 * processes and describe each in OUTDIR/manifest.jsonl (format: README.md).
 *
 * Each kind runs in its own daemonized child (fork + setsid): it builds the mapping,
 * appends its manifest line(s), reports ready through a pipe and then sleeps forever
 * so that the mapping is still there when the guest is dumped.  The parent waits for
 * each child with a timeout, writes an "error" line for a kind that failed or hung,
 * and exits 0 once every kind is either in place or reported as an error.
 */
#include "common.h"
#include <dirent.h>
#include <sched.h>
#include <setjmp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <arpa/inet.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif

static const char *manifest;
static char release[128];
static int kver;	/* major * 100 + minor, e.g. 510, 601, 612, 702 */
static int ready_fd = -1;
static const char *cur_kind;

/* ------------------------------------------------------------------ output */

static void line_start(struct sb *b, const char *kind, unsigned long start, unsigned long end)
{
	sb_add(b, "{\"kind\":");
	sb_str(b, kind);
	sb_add(b, ",\"pid\":%d,\"start\":\"0x%lx\",\"end\":\"0x%lx\",\"kernel\":", (int)getpid(), start, end);
	sb_str(b, release);
}

/* flags: space-separated smaps mnemonics */
static void add_flags(struct sb *b, const char *flags)
{
	char tmp[256], *save = NULL, *t;
	int first = 1;
	snprintf(tmp, sizeof(tmp), "%s", flags);
	sb_add(b, ",\"vm_flags_expect\":[");
	for (t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		sb_add(b, "%s", first ? "" : ",");
		sb_str(b, t);
		first = 0;
	}
	sb_add(b, "]");
}

static void add_expect(struct sb *b, int special, int normal, const char *level, const char *ekind)
{
	sb_add(b, ",\"expect\":{\"special\":%s,\"normal_page\":%s,\"level\":\"%s\",\"kind\":\"%s\"}",
	       tri(special), tri(normal), level, ekind);
}

static int npages_out;
static void pages_open(struct sb *b) { sb_add(b, ",\"pages\":["); npages_out = 0; }
static void pages_close(struct sb *b) { sb_add(b, "]"); }

/* pfn < 0: null.  extra: more JSON members (starting with ',') or NULL */
static void page_entry(struct sb *b, unsigned long addr, long long pfn, int special, int normal,
		       const char *kind, const char *note, const char *extra)
{
	sb_add(b, "%s{\"addr\":\"0x%lx\",\"pfn\":", npages_out++ ? "," : "", addr);
	if (pfn < 0)
		sb_add(b, "null");
	else
		sb_add(b, "%lld", pfn);
	sb_add(b, ",\"special\":%s,\"normal_page\":%s", tri(special), tri(normal));
	if (kind)
		sb_add(b, ",\"kind\":\"%s\"", kind);
	if (note) {
		sb_add(b, ",\"note\":");
		sb_str(b, note);
	}
	if (extra)
		sb_add(b, "%s", extra);
	sb_add(b, "}");
}

/* diags: space-separated codes that must fire; may: codes that may also fire */
static void line_end(struct sb *b, const char *diags, const char *may, const char *note)
{
	char tmp[256], *save = NULL, *t;
	int first = 1;
	snprintf(tmp, sizeof(tmp), "%s", diags ? diags : "");
	sb_add(b, ",\"diagnoses\":[");
	for (t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		sb_add(b, "%s\"%s\"", first ? "" : ",", t);
		first = 0;
	}
	sb_add(b, "]");
	if (may && *may) {
		snprintf(tmp, sizeof(tmp), "%s", may);
		sb_add(b, ",\"diagnoses_may\":[");
		first = 1;
		for (t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			sb_add(b, "%s\"%s\"", first ? "" : ",", t);
			first = 0;
		}
		sb_add(b, "]");
	}
	if (note) {
		sb_add(b, ",\"note\":");
		sb_str(b, note);
	}
	sb_add(b, "}\n");
	if (append_line(manifest, b->s, b->n))
		fprintf(stderr, "scenarios: cannot append to %s: %s\n", manifest, strerror(errno));
	sb_free(b);
}

static void error_line(const char *kind, pid_t pid, const char *fmt, ...)
{
	struct sb b = { 0 };
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sb_add(&b, "{\"kind\":");
	sb_str(&b, kind);
	sb_add(&b, ",\"pid\":%d,\"start\":null,\"end\":null,\"kernel\":", (int)pid);
	sb_str(&b, release);
	sb_add(&b, ",\"error\":");
	sb_str(&b, msg);
	sb_add(&b, "}\n");
	append_line(manifest, b.s, b.n);
	fprintf(stderr, "scenarios: %s: %s\n", kind, msg);
	sb_free(&b);
}

#define FAIL(...) do { error_line(cur_kind, getpid(), __VA_ARGS__); return -1; } while (0)

/* ------------------------------------------------------------------ probes */

/* pagemap pfn of a present page of this process, -1 if not present */
static long long pm_pfn(unsigned long addr)
{
	uint64_t v = pagemap_of(0, addr);
	if (!(v & PM_PRESENT))
		return -1;
	return (long long)(v & PM_PFN_MASK);
}

/* Raw pte through the optional pfnscope_buggy module (pfnmap VMAs are invisible to
 * pagemap).  0 when the module is not loaded or there is no pte. */
struct buggy_pte { uint64_t addr, pte; };
#define PFNSCOPE_BUGGY_PTE _IOWR('P', 1, struct buggy_pte)
static uint64_t mod_pte(unsigned long addr)
{
	static int fd = -2;
	struct buggy_pte q = { addr, 0 };
	if (fd == -2)
		fd = open("/dev/pfnscope_buggy", O_RDWR | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, PFNSCOPE_BUGGY_PTE, &q))
		return 0;
	return q.pte;
}
static long long pte_pfn_of(uint64_t pte)
{
	if (!(pte & 1))
		return -1;
	return (long long)((pte & 0x000ffffffffff000ULL) >> 12);
}

/* VmFlags of the VMA containing addr (from /proc/self/smaps), "" if not found */
static void smaps_flags(unsigned long addr, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	int in = 0;
	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = s <= addr && addr < e;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			char *p = line + 8;
			while (*p == ' ')
				p++;
			p[strcspn(p, "\n")] = 0;
			strncpy(out, p, cap - 1);
			out[cap - 1] = 0;
			break;
		}
	}
	fclose(f);
}

static int has_flag(const char *flags, const char *mn)
{
	size_t n = strlen(mn);
	const char *p = flags;
	while ((p = strstr(p, mn))) {
		if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
			return 1;
		p += n;
	}
	return 0;
}

static void add_seen(struct sb *b, unsigned long addr)
{
	char fl[256];
	smaps_flags(addr, fl, sizeof(fl));
	sb_add(b, ",\"vm_flags_seen\":");
	sb_str(b, fl);
}

/* find a /proc/self/maps entry by name ("[vvar]"); 0 if found */
static int find_map(const char *name, unsigned long *s, unsigned long *e)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int found = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *nm = strrchr(line, ' ');
		line[strcspn(line, "\n")] = 0;
		if (nm && !strcmp(nm + 1, name) && sscanf(line, "%lx-%lx", s, e) == 2) {
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

static void rnd_bytes(void *p, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, p, n) != (ssize_t)n) {
		unsigned char *c = p;
		size_t i;
		srand((unsigned)time(NULL) ^ (unsigned)getpid());
		for (i = 0; i < n; i++)
			c[i] = (unsigned char)rand();
	}
	if (fd >= 0)
		close(fd);
}

/* 64-byte pattern: "PREFIX-pid-tag-" + random hex; hex of all 64 bytes into hex[129] */
static void make_pattern(unsigned char pat[64], char hex[129], const char *prefix, int tag)
{
	unsigned char r[32];
	int n, i;
	rnd_bytes(r, sizeof(r));
	n = snprintf((char *)pat, 64, "%s-%d-%d-", prefix, (int)getpid(), tag);
	for (i = 0; n < 64; n++, i++)
		pat[n] = "0123456789abcdef"[(r[i / 2] >> ((i & 1) * 4)) & 15];
	for (i = 0; i < 64; i++)
		sprintf(hex + 2 * i, "%02x", pat[i]);
}

static volatile unsigned long sink;
static void touch_read(const void *p, size_t len)
{
	size_t off;
	for (off = 0; off < len; off += PAGE)
		sink += *(const volatile unsigned char *)((const char *)p + off);
}

static void fill(void *p, size_t len, int seed)
{
	size_t off;
	for (off = 0; off < len; off += PAGE)
		memset((char *)p + off, 0x40 + (int)((seed + off / PAGE) & 0x3f), PAGE);
}

/* anon pages present in this process: page entries from pagemap */
static void pages_from_pagemap(struct sb *b, unsigned long start, size_t len, int special, int normal,
			       const char *note)
{
	unsigned long a;
	for (a = start; a < start + len; a += PAGE) {
		uint64_t v = pagemap_of(0, a);
		if (v & PM_PRESENT)
			page_entry(b, a, (long long)(v & PM_PFN_MASK), special, normal, "present", note, NULL);
		else if (v & PM_SWAP)
			page_entry(b, a, -1, -1, -1, "swap", note, NULL);
	}
}

static void *xmap_anon(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* 2 MiB-aligned anon region of exactly len bytes (multiple of 2 MiB) */
static void *map_aligned(size_t len)
{
	char *p = mmap(NULL, len + HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;
	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	if ((uintptr_t)p + len + HPAGE > a + len)
		munmap((void *)(a + len), (uintptr_t)p + len + HPAGE - (a + len));
	return (void *)a;
}

/* ------------------------------------------------------------------ kinds */

static int k_anon_private_written(void)
{
	size_t len = 8 * PAGE;
	char *p = xmap_anon(len, PROT_READ | PROT_WRITE);
	struct sb b = { 0 };
	if (!p)
		FAIL("mmap: %s", strerror(errno));
	madvise(p, len, MADV_NOHUGEPAGE);
	fill(p, len, 1);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "rd wr mr mw me ac");
	add_seen(&b, (unsigned long)p);
	add_expect(&b, 0, 1, "pte", "present");
	pages_open(&b);
	pages_from_pagemap(&b, (unsigned long)p, len, 0, 1, "anon, rc=mc=1");
	pages_close(&b);
	line_end(&b, "", "", "private anon pages, written");
	return 0;
}

static int k_anon_zero_page(void)
{
	size_t len = 8 * PAGE;
	char *p = xmap_anon(len, PROT_READ | PROT_WRITE);
	struct sb b = { 0 };
	if (!p)
		FAIL("mmap: %s", strerror(errno));
	madvise(p, len, MADV_NOHUGEPAGE);
	touch_read(p, len);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "rd wr mr mw me ac");
	add_seen(&b, (unsigned long)p);
	add_expect(&b, 1, 0, "pte", "present");
	pages_open(&b);
	pages_from_pagemap(&b, (unsigned long)p, len, 1, 0, "zero page (pfn from pagemap = zero_pfn)");
	pages_close(&b);
	line_end(&b, "", "", "anon read faults map the shared zero page: special pte, vnp NULL");
	return 0;
}

/* /dev/mem mapping; written: page indexes to write (COW), -1 terminated */
static int devmem_kind(unsigned long phys, int npages, int shared, int prot, const int *written,
		       const char *flags, const char *note)
{
	int fd = open("/dev/mem", O_RDWR | O_SYNC | O_CLOEXEC);
	size_t len = (size_t)npages * PAGE;
	char *p;
	struct sb b = { 0 };
	int i, w;
	char hexes[32][129];
	int is_written[32] = { 0 };

	if (fd < 0)
		FAIL("open /dev/mem: %s", strerror(errno));
	p = mmap(NULL, len, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd, (off_t)phys);
	if (p == MAP_FAILED)
		FAIL("mmap /dev/mem 0x%lx: %s", phys, strerror(errno));
	for (i = 0; written && written[i] >= 0; i++) {
		unsigned char pat[64];
		w = written[i];
		make_pattern(pat, hexes[w], "PFNSCOPE-DEVMEM-COW", w);
		memcpy(p + (size_t)w * PAGE, pat, 64);
		is_written[w] = 1;
	}
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, flags);
	add_seen(&b, (unsigned long)p);
	sb_add(&b, ",\"phys\":\"0x%lx\"", phys);
	add_expect(&b, 1, 0, "pte", "present");
	pages_open(&b);
	for (i = 0; i < npages; i++) {
		unsigned long a = (unsigned long)p + (size_t)i * PAGE;
		if (is_written[i]) {
			char extra[4200];
			long long pfn = pte_pfn_of(mod_pte(a));
			snprintf(extra, sizeof(extra), ",\"pattern\":\"%s\"", hexes[i]);
			page_entry(&b, a, pfn, 0, 1, "present",
				   pfn >= 0 ? "COW anon page (pfn read by pfnscope_buggy ioctl)"
					    : "COW anon page; pfn unknown in the guest (pagemap skips "
					      "VM_PFNMAP): find the pattern in the dump",
				   extra);
		} else {
			page_entry(&b, a, (long long)(phys / PAGE + (unsigned long)i), 1, 0, "present",
				   "linear pfn = offset >> 12", NULL);
		}
	}
	pages_close(&b);
	line_end(&b, written && written[0] >= 0 ? "PFNMAP_COW_ANON" : "", "", note);
	return 0;
}

static int k_devmem_shared_hole(void)
{
	return devmem_kind(0xa0000, 16, 1, PROT_READ | PROT_WRITE, NULL,
			   "rd wr sh mr mw me ms io pf de dd",
			   "/dev/mem MAP_SHARED over the legacy VGA window (non-RAM hole)");
}

static int k_devmem_shared_lowram(void)
{
	return devmem_kind(0x20000, 8, 1, PROT_READ, NULL, "rd sh mr me ms io pf de dd",
			   "/dev/mem MAP_SHARED over low RAM (<1 MiB, PG_reserved, rc=1)");
}

static int k_devmem_private_hole_cow(void)
{
	static const int w[] = { 2, 5, 9, -1 };
	return devmem_kind(0xa0000, 16, 0, PROT_READ | PROT_WRITE, w, "rd wr mr mw me io pf de dd",
			   "/dev/mem MAP_PRIVATE O_RDWR over the VGA hole; pages 2,5,9 written: "
			   "COW anon pages inside a VM_PFNMAP VMA (case B)");
}

static int k_devmem_private_lowram_cow(void)
{
	static const int w[] = { 1, 4, -1 };
	return devmem_kind(0x30000, 8, 0, PROT_READ | PROT_WRITE, w, "rd wr mr mw me io pf de dd",
			   "/dev/mem MAP_PRIVATE O_RDWR over low RAM; pages 1,4 written (case B)");
}

static sigjmp_buf bus_jmp;
static void on_bus(int sig) { (void)sig; siglongjmp(bus_jmp, 1); }

/* read one byte at addr; 0 if the fault gave SIGBUS/SIGSEGV */
static __attribute__((noinline)) int try_touch(unsigned long addr)
{
	if (sigsetjmp(bus_jmp, 1) == 0) {
		sink += *(volatile unsigned char *)addr;
		return 1;
	}
	return 0;
}

/* touch every page of [vvar]-like VMAs and emit their lines; timens: 1 in a time ns */
static int vvar_lines(int timens)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int found = 0;
	struct sigaction sa = { .sa_handler = on_bus }, osa_bus, osa_segv;
	if (!f)
		FAIL("maps: %s", strerror(errno));
	sigaction(SIGBUS, &sa, &osa_bus);
	sigaction(SIGSEGV, &sa, &osa_segv);
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, a;
		char *nm = strrchr(line, ' ');
		char kind[64], fl[256];
		struct sb b = { 0 };
		int special, idx;
		line[strcspn(line, "\n")] = 0;
		if (!nm || strncmp(nm + 1, "[vvar", 5) || sscanf(line, "%lx-%lx", &s, &e) != 2)
			continue;
		found++;
		/* "[vvar]" -> vvar, "[vvar_vclock]" -> vvar_vclock (6.15+) */
		snprintf(kind, sizeof(kind), "%.*s%s", (int)strlen(nm + 2) - 1, nm + 2, timens ? "_timens" : "");
		int ok[64] = { 0 };
		for (a = s, idx = 0; a < e && idx < 64; a += PAGE, idx++)
			ok[idx] = try_touch(a);
		smaps_flags(s, fl, sizeof(fl));
		special = has_flag(fl, "pf") ? 1 : -1;
		line_start(&b, kind, s, e);
		add_flags(&b, kver < 613 ? "rd mr pf io de dd" : "rd mr de dd");
		sb_add(&b, ",\"vm_flags_seen\":");
		sb_str(&b, fl);
		add_expect(&b, special, special == 1 ? 0 : -1, "pte", "present");
		pages_open(&b);
		for (a = s, idx = 0; a < e && idx < 64; a += PAGE, idx++) {
			const char *note = NULL;
			long long pfn = ok[idx] ? pte_pfn_of(mod_pte(a)) : -1;
			if (!ok[idx]) {
				page_entry(&b, a, -1, -1, -1, "none", "fault gave SIGBUS: no pte", NULL);
				continue;
			}
			if (kver <= 612 && !strcmp(kind, timens ? "vvar_timens" : "vvar")) {
				/* x86 5.10-6.12 layout (vdso-layout.lds.S): vvar_page, pvclock, hvclock, timens_page */
				if (idx == 0)
					note = timens ? "vvar_page offset: the time namespace page, alloc_page RAM (case C)"
						      : "__vvar_page (kernel image, PG_reserved)";
				else if (idx == 3)
					note = "timens offset: __vvar_page (kernel image, PG_reserved)";
			}
			page_entry(&b, a, pfn, special, special == 1 ? 0 : -1, "present",
				   note ? note : (pfn >= 0 ? "pfn read by pfnscope_buggy ioctl"
							   : "pfn unknown in the guest (pagemap skips VM_PFNMAP)"),
				   NULL);
		}
		pages_close(&b);
		/* case C: special pte over ordinary RAM, only where the timens page is mapped */
		line_end(&b, timens && special == 1 && !strcmp(kind, "vvar_timens") ? "SPECIAL_OVER_RAM" : "", "",
			 timens ? "[vvar] of a process in a new time namespace (unshare(CLONE_NEWTIME) + fork)"
				: "[vvar]: vmf_insert_pfn special ptes");
	}
	fclose(f);
	sigaction(SIGBUS, &osa_bus, NULL);
	sigaction(SIGSEGV, &osa_segv, NULL);
	if (!found)
		FAIL("no [vvar] in /proc/self/maps");
	return 0;
}

static int k_vvar(void)
{
	return vvar_lines(0);
}

static int k_vdso(void)
{
	unsigned long s, e;
	struct sb b = { 0 };
	if (find_map("[vdso]", &s, &e))
		FAIL("no [vdso] in /proc/self/maps");
	touch_read((void *)s, e - s);
	line_start(&b, cur_kind, s, e);
	add_flags(&b, "rd ex mr mw me de");
	add_seen(&b, s);
	add_expect(&b, 0, 1, "pte", "present");
	pages_open(&b);
	pages_from_pagemap(&b, s, e - s, 0, 1, "vdso text page: PG_reserved, rmap-counted (vdso-like)");
	pages_close(&b);
	line_end(&b, "", "", "[vdso]: normal ptes to reserved kernel-image pages");
	return 0;
}

static int k_vvar_timens(void)
{
	int p[2];
	pid_t pid;
	if (unshare(CLONE_NEWTIME))
		FAIL("unshare(CLONE_NEWTIME): %s", strerror(errno));
	/* offsets may only be set before the namespace has a task */
	write_file("/proc/self/timens_offsets", "monotonic 86400 0\n");
	if (pipe(p))
		FAIL("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		if (vvar_lines(1) == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			if (write(p[1], "R", 1) != 1)
				_exit(1);
		}
		close(p[1]);
		daemon_stdio();
		sleep_forever();
	}
	close(p[1]);
	if (!wait_ready(p[0], 20000)) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == 0)
			FAIL("time-namespace child %d did not report", (int)pid);
		return -1; /* the grandchild wrote its error line */
	}
	return 0;
}

static int k_pci_bar_resource(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *de;
	char path[512], buf[256];
	unsigned long long bs = 0, be = 0, fl = 0;
	struct sb b = { 0 };
	int fd, i, npages = 16;
	char *p;
	if (!d)
		FAIL("no /sys/bus/pci/devices: %s", strerror(errno));
	path[0] = 0;
	while ((de = readdir(d))) {
		char v[32] = "", dv[32] = "";
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", de->d_name);
		read_file(path, v, sizeof(v));
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", de->d_name);
		read_file(path, dv, sizeof(dv));
		if (!strncmp(v, "0x1234", 6) && !strncmp(dv, "0x1111", 6))
			break;
		path[0] = 0;
	}
	if (!de) {
		closedir(d);
		FAIL("no PCI device 1234:1111 (QEMU std VGA)");
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", de->d_name);
	if (read_file(path, buf, sizeof(buf)) <= 0 || sscanf(buf, "%llx %llx %llx", &bs, &be, &fl) != 3 || !bs) {
		closedir(d);
		FAIL("cannot read %s", path);
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", de->d_name);
	closedir(d);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	p = mmap(NULL, (size_t)npages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		FAIL("mmap %s: %s", path, strerror(errno));
	touch_read(p, (size_t)npages * PAGE);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + (size_t)npages * PAGE);
	/* no "me": kernfs sets SB_I_NOEXEC (since 4.8), so do_mmap() clears VM_MAYEXEC */
	add_flags(&b, "rd wr sh mr mw ms io pf de dd");
	add_seen(&b, (unsigned long)p);
	sb_add(&b, ",\"bar\":\"0x%llx\",\"bar_end\":\"0x%llx\",\"file\":", bs, be);
	sb_str(&b, path);
	add_expect(&b, 1, 0, "pte", "present");
	pages_open(&b);
	for (i = 0; i < npages; i++)
		page_entry(&b, (unsigned long)p + (size_t)i * PAGE, (long long)(bs / PAGE + (unsigned)i), 1, 0,
			   "present", "BAR pfn (from sysfs resource)", NULL);
	pages_close(&b);
	line_end(&b, "", "", "PCI sysfs resource0 of the QEMU std VGA framebuffer BAR (io_remap_pfn_range)");
	return 0;
}

static int k_af_packet_rx_ring(void)
{
	int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)), v = TPACKET_V2;
	struct tpacket_req req = { .tp_block_size = 4096, .tp_block_nr = 4, .tp_frame_size = 2048,
				   .tp_frame_nr = 8 };
	size_t len = 4 * PAGE;
	struct sb b = { 0 };
	char *p;
	if (s < 0)
		FAIL("socket(AF_PACKET): %s (af_packet module loaded?)", strerror(errno));
	if (setsockopt(s, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)))
		FAIL("PACKET_VERSION: %s", strerror(errno));
	if (setsockopt(s, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)))
		FAIL("PACKET_RX_RING: %s", strerror(errno));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
	if (p == MAP_FAILED)
		FAIL("mmap packet ring: %s", strerror(errno));
	touch_read(p, len);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "rd wr sh mr mw me ms mm");
	add_seen(&b, (unsigned long)p);
	add_expect(&b, 0, 1, "pte", "present");
	pages_open(&b);
	pages_from_pagemap(&b, (unsigned long)p, len, 0, 1, "ring block page (vm_insert_page), rc=1+N mc=N");
	pages_close(&b);
	line_end(&b, "", "", "AF_PACKET TPACKET_V2 PACKET_RX_RING, 4 blocks of 4 KiB (VM_MIXEDMAP)");
	return 0;
}

/* ring mapping of io_uring or perf: expectation from the VMA the kernel built */
static void counted_or_pfnmap_pages(struct sb *b, unsigned long s, size_t len, const char *fl,
				    const char *what)
{
	if (has_flag(fl, "pf")) {
		unsigned long a;
		for (a = s; a < s + len; a += PAGE)
			page_entry(b, a, pte_pfn_of(mod_pte(a)), 1, 0, "present",
				   "remap_pfn_range of kernel RAM (case C)", NULL);
	} else {
		pages_from_pagemap(b, s, len, 0, 1, what);
	}
}

/* io_uring failures are reported under each of the three kind names */
#define IOFAIL(...) do { error_line("io_uring_sq_ring", getpid(), __VA_ARGS__); \
	error_line("io_uring_cq_ring", getpid(), __VA_ARGS__); \
	error_line("io_uring_sqes", getpid(), __VA_ARGS__); return -1; } while (0)

static int k_io_uring(void)
{
	struct io_uring_params p;
	int fd, i;
	struct { const char *kind; off_t off; size_t len; void *m; } r[3];
	memset(&p, 0, sizeof(p));
	fd = (int)syscall(__NR_io_uring_setup, 8, &p);
	if (fd < 0)
		IOFAIL("io_uring_setup: %s", strerror(errno));
	r[0].kind = "io_uring_sq_ring";
	r[0].off = IORING_OFF_SQ_RING;
	r[0].len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	r[1].kind = "io_uring_cq_ring";
	r[1].off = IORING_OFF_CQ_RING;
	r[1].len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	r[2].kind = "io_uring_sqes";
	r[2].off = IORING_OFF_SQES;
	r[2].len = p.sq_entries * sizeof(struct io_uring_sqe);
	for (i = 0; i < 3; i++) {
		r[i].len = (r[i].len + PAGE - 1) & ~(PAGE - 1);
		r[i].m = mmap(NULL, r[i].len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, r[i].off);
		if (r[i].m == MAP_FAILED)
			IOFAIL("mmap %s: %s", r[i].kind, strerror(errno));
		touch_read(r[i].m, r[i].len);
	}
	for (i = 0; i < 3; i++) {
		struct sb b = { 0 };
		char fl[256];
		unsigned long s = (unsigned long)r[i].m;
		int pf;
		smaps_flags(s, fl, sizeof(fl));
		pf = has_flag(fl, "pf");
		line_start(&b, r[i].kind, s, s + r[i].len);
		add_flags(&b, pf ? "rd wr sh mr mw me ms io pf de dd" : "rd wr sh mr mw me ms mm de");
		sb_add(&b, ",\"vm_flags_seen\":");
		sb_str(&b, fl);
		add_expect(&b, pf, !pf, "pte", "present");
		pages_open(&b);
		counted_or_pfnmap_pages(&b, s, r[i].len, fl, "ring page (vm_insert_pages), counted");
		pages_close(&b);
		/* remap_pfn_range() only sets vm_pgoff = pfn for COW mappings: a
		 * MAP_SHARED ring keeps its IORING_OFF_* offset, a non-linear non-COW
		 * pfnmap, which vm_normal_page() allows (it reads vm_pgoff only for
		 * COW mappings): nothing to report but case C */
		line_end(&b, pf ? "SPECIAL_OVER_RAM" : "", pf ? "REFCOUNT_BELOW_MAPCOUNT" : "",
			 pf ? "io_uring ring via remap_pfn_range (upstream <6.10, e.g. 5.10): case C"
			    : "io_uring ring via vm_insert_pages (>=6.10, Debian 6.1.192 backport)");
	}
	return 0;
}

static int k_perf_ring(void)
{
	struct perf_event_attr a;
	int fd;
	size_t len = 5 * PAGE;
	char *p, fl[256];
	struct sb b = { 0 };
	int pf;
	write_file("/proc/sys/kernel/perf_event_paranoid", "-1");
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.sample_period = 100000;
	a.sample_type = PERF_SAMPLE_IP;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	fd = (int)syscall(__NR_perf_event_open, &a, 0, -1, -1, 0);
	if (fd < 0) {
		a.config = PERF_COUNT_SW_DUMMY;
		fd = (int)syscall(__NR_perf_event_open, &a, 0, -1, -1, 0);
	}
	if (fd < 0)
		FAIL("perf_event_open: %s", strerror(errno));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		FAIL("mmap perf ring: %s", strerror(errno));
	touch_read(p, len);
	smaps_flags((unsigned long)p, fl, sizeof(fl));
	pf = has_flag(fl, "pf");
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, pf ? "rd wr sh mr mw me ms io pf dc de dd" : "rd wr sh mr mw me ms dc de dd");
	sb_add(&b, ",\"vm_flags_seen\":");
	sb_str(&b, fl);
	add_expect(&b, pf, !pf, "pte", "present");
	pages_open(&b);
	counted_or_pfnmap_pages(&b, (unsigned long)p, len, fl, "perf ring page (fault handler), counted");
	pages_close(&b);
	line_end(&b, pf ? "SPECIAL_OVER_RAM" : "", "",
		 "perf_event ring, 1+4 pages; 6.1 faults in normal ptes, ~6.15+ remap_pfn_range (case C)");
	return 0;
}

static int k_thp_anon(void)
{
	char *p = map_aligned(HPAGE);
	struct sb b = { 0 };
	uint64_t kf;
	long long pfn;
	char thp[128] = "";
	if (!p)
		FAIL("mmap: %s", strerror(errno));
	read_file("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof(thp));
	thp[strcspn(thp, "\n")] = 0;
	if (madvise(p, HPAGE, MADV_HUGEPAGE))
		FAIL("MADV_HUGEPAGE: %s (THP enabled: %s)", strerror(errno), thp);
	fill(p, HPAGE, 3);
	pfn = pm_pfn((unsigned long)p);
	kf = pfn >= 0 ? kpageflags_of((uint64_t)pfn) : 0;
	if (!(kf & (1ULL << KPF_THP))) {
		madvise(p, HPAGE, MADV_COLLAPSE);
		pfn = pm_pfn((unsigned long)p);
		kf = pfn >= 0 ? kpageflags_of((uint64_t)pfn) : 0;
	}
	if (!(kf & (1ULL << KPF_THP)))
		FAIL("no THP obtained (enabled: %s; kpageflags 0x%llx)", thp, (unsigned long long)kf);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + HPAGE);
	add_flags(&b, "rd wr mr mw me ac hg");
	add_seen(&b, (unsigned long)p);
	add_expect(&b, 0, 1, "pmd", "present");
	pages_open(&b);
	page_entry(&b, (unsigned long)p, pfn, 0, 1, "present", "PMD leaf: head pfn of the THP", NULL);
	page_entry(&b, (unsigned long)p + HPAGE - PAGE, pm_pfn((unsigned long)p + HPAGE - PAGE), 0, 1,
		   "present", "last subpage (pfn = head + 511)", NULL);
	pages_close(&b);
	line_end(&b, "", "", "anon THP (MADV_HUGEPAGE, 2 MiB aligned, written): PMD leaf");
	return 0;
}

static int k_huge_zero_page(void)
{
	char *p = map_aligned(HPAGE), uzp[32] = "";
	struct sb b = { 0 };
	long long pfn;
	uint64_t kf;
	int sp = kver >= 618;
	if (!p)
		FAIL("mmap: %s", strerror(errno));
	if (madvise(p, HPAGE, MADV_HUGEPAGE))
		FAIL("MADV_HUGEPAGE: %s", strerror(errno));
	read_file("/sys/kernel/mm/transparent_hugepage/use_zero_page", uzp, sizeof(uzp));
	touch_read(p, HPAGE);
	pfn = pm_pfn((unsigned long)p);
	kf = pfn >= 0 ? kpageflags_of((uint64_t)pfn) : 0;
	if (!(kf & (1ULL << KPF_ZERO_PAGE)) || !(kf & (1ULL << KPF_THP)))
		FAIL("no huge zero page (use_zero_page=%.1s, pfn %lld kpageflags 0x%llx)", uzp, pfn,
		     (unsigned long long)kf);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + HPAGE);
	add_flags(&b, "rd wr mr mw me ac hg");
	add_seen(&b, (unsigned long)p);
	add_expect(&b, sp, 0, "pmd", "present");
	pages_open(&b);
	page_entry(&b, (unsigned long)p, pfn, sp, 0, "present", "huge zero page (head pfn)", NULL);
	pages_close(&b);
	line_end(&b, "", "", "2 MiB aligned MADV_HUGEPAGE anon region, read only: huge zero PMD "
		 "(not special before 6.18; vm_normal_page_pmd NULL)");
	return 0;
}

static int hugetlb_common(char *p, size_t len, const char *flags, const char *note)
{
	struct sb b = { 0 };
	unsigned long a;
	fill(p, len, 5);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, flags);
	add_seen(&b, (unsigned long)p);
	add_expect(&b, 0, -1, "pmd", "present");
	pages_open(&b);
	for (a = (unsigned long)p; a < (unsigned long)p + len; a += HPAGE)
		page_entry(&b, a, pm_pfn(a), 0, -1, "present",
			   "hugetlb 2 MiB page (PMD leaf, never goes through vm_normal_page)", NULL);
	pages_close(&b);
	line_end(&b, "", "", note);
	return 0;
}

static int k_hugetlb_anon(void)
{
	size_t len = 2 * HPAGE;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
	if (p == MAP_FAILED)
		FAIL("mmap MAP_HUGETLB: %s (nr_hugepages?)", strerror(errno));
	return hugetlb_common(p, len, "rd wr mr mw me de ht",
			      "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB, 2 x 2 MiB, written");
}

static int k_hugetlbfs_file(void)
{
	char path[128];
	int fd;
	char *p;
	snprintf(path, sizeof(path), "/dev/hugepages/pfnscope-%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		FAIL("open %s: %s (hugetlbfs mounted at /dev/hugepages?)", path, strerror(errno));
	if (ftruncate(fd, (off_t)HPAGE))
		FAIL("ftruncate %s: %s", path, strerror(errno));
	p = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		FAIL("mmap %s: %s", path, strerror(errno));
	return hugetlb_common(p, HPAGE, "rd wr sh mr mw me ms de ht",
			      "hugetlbfs file in /dev/hugepages, MAP_SHARED, 2 MiB, written");
}

static int shared_file_kind(int fd, const char *what)
{
	size_t len = 4 * PAGE;
	char *p;
	struct sb b = { 0 };
	if (ftruncate(fd, (off_t)len))
		FAIL("ftruncate: %s", strerror(errno));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	fill(p, len, 7);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "rd wr sh mr mw me ms");
	add_seen(&b, (unsigned long)p);
	add_expect(&b, 0, 1, "pte", "present");
	pages_open(&b);
	pages_from_pagemap(&b, (unsigned long)p, len, 0, 1, "shmem folio in page cache, rc >= mc+1");
	pages_close(&b);
	line_end(&b, "", "", what);
	return 0;
}

static int k_memfd_shared(void)
{
	int fd = (int)syscall(__NR_memfd_create, "pfnscope", 0);
	if (fd < 0)
		FAIL("memfd_create: %s", strerror(errno));
	return shared_file_kind(fd, "memfd, MAP_SHARED, written");
}

static int k_tmpfs_shared(void)
{
	char path[128];
	int fd;
	snprintf(path, sizeof(path), "/tmp/pfnscope-shared-%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	return shared_file_kind(fd, "tmpfs file in /tmp, MAP_SHARED, written");
}

static int k_file_private_cow(void)
{
	char path[128], buf[PAGE];
	size_t len = 4 * PAGE;
	int fd, i;
	char *p;
	struct sb b = { 0 };
	snprintf(path, sizeof(path), "/tmp/pfnscope-private-%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	for (i = 0; i < 4; i++) {
		memset(buf, 'a' + i, sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			FAIL("write %s: %s", path, strerror(errno));
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	touch_read(p, len);
	p[1 * PAGE] = 'X';
	p[3 * PAGE] = 'Y';
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "rd wr mr mw me ac");
	add_seen(&b, (unsigned long)p);
	sb_add(&b, ",\"file\":");
	sb_str(&b, path);
	add_expect(&b, 0, 1, "pte", "present");
	pages_open(&b);
	for (i = 0; i < 4; i++) {
		unsigned long a = (unsigned long)p + (size_t)i * PAGE;
		page_entry(&b, a, pm_pfn(a), 0, 1, "present",
			   (i == 1 || i == 3) ? "written: anon COW copy of the page-cache page"
					      : "read only: page-cache page (write-protected)", NULL);
	}
	pages_close(&b);
	line_end(&b, "", "", "MAP_PRIVATE tmpfs file, pages 1 and 3 written (COW of page cache)");
	return 0;
}

static int k_file_readonly(void)
{
	static const char *cands[] = { "/host/usr/lib/x86_64-linux-gnu/libc.so.6", "/host/bin/busybox",
				       "/bin/busybox", "/proc/self/exe", NULL };
	const char *path = NULL;
	struct stat st;
	int fd = -1, i;
	size_t len;
	char *p;
	struct sb b = { 0 };
	char real[512] = "";
	for (i = 0; cands[i]; i++) {
		fd = open(cands[i], O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && !fstat(fd, &st) && st.st_size >= (off_t)(8 * PAGE)) {
			path = cands[i];
			break;
		}
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	if (!path)
		FAIL("no readable file of >= 32 KiB");
	if (!strcmp(path, "/proc/self/exe") && readlink(path, real, sizeof(real) - 1) > 0)
		path = real;
	len = 8 * PAGE;
	p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		FAIL("mmap %s: %s", path, strerror(errno));
	touch_read(p, len);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "rd mr mw me");
	add_seen(&b, (unsigned long)p);
	sb_add(&b, ",\"file\":");
	sb_str(&b, path);
	add_expect(&b, 0, 1, "pte", "present");
	pages_open(&b);
	pages_from_pagemap(&b, (unsigned long)p, len, 0, 1, "page-cache page, read only");
	pages_close(&b);
	line_end(&b, "", "", "read-only MAP_PRIVATE file mapping, all 8 pages read");
	return 0;
}

static int k_protnone(void)
{
	size_t len = 6 * PAGE;
	char *p = xmap_anon(len, PROT_READ | PROT_WRITE);
	long long pfn[6];
	struct sb b = { 0 };
	int i;
	if (!p)
		FAIL("mmap: %s", strerror(errno));
	madvise(p, len, MADV_NOHUGEPAGE);
	fill(p, 4 * PAGE, 9);
	touch_read(p + 4 * PAGE, 2 * PAGE);
	for (i = 0; i < 6; i++)
		pfn[i] = pm_pfn((unsigned long)p + (size_t)i * PAGE);
	if (mprotect(p, len, PROT_NONE))
		FAIL("mprotect: %s", strerror(errno));
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "mr mw me ac");
	add_seen(&b, (unsigned long)p);
	add_expect(&b, 0, 1, "pte", "protnone");
	pages_open(&b);
	for (i = 0; i < 6; i++) {
		unsigned long a = (unsigned long)p + (size_t)i * PAGE;
		long long now = pm_pfn(a);
		if (i < 4)
			page_entry(&b, a, now >= 0 ? now : pfn[i], 0, 1, "protnone",
				   "written anon page, then PROT_NONE (P=0, PROTNONE bit, pfn inverted)", NULL);
		else
			page_entry(&b, a, now >= 0 ? now : pfn[i], 1, 0, "protnone",
				   "zero page read, then PROT_NONE: protnone special pte in an inaccessible VMA",
				   NULL);
	}
	pages_close(&b);
	line_end(&b, "", "", "anon, 4 pages written + 2 read (zero page), then mprotect(PROT_NONE)");
	return 0;
}

static int k_swap_anon(void)
{
	size_t len = 16 * PAGE;
	char *p, swaps[4096] = "";
	struct sb b = { 0 };
	int tries, nswapped = 0;
	unsigned long a;
	read_file("/proc/swaps", swaps, sizeof(swaps));
	if (!strchr(swaps, '\n') || !strchr(strchr(swaps, '\n') + 1, '/'))
		FAIL("no active swap device in /proc/swaps");
	p = xmap_anon(len, PROT_READ | PROT_WRITE);
	if (!p)
		FAIL("mmap: %s", strerror(errno));
	madvise(p, len, MADV_NOHUGEPAGE);
	rnd_bytes(p, len); /* incompressible-ish, nonzero */
	for (tries = 0; tries < 20; tries++) {
		if (madvise(p, len, MADV_PAGEOUT))
			FAIL("MADV_PAGEOUT: %s", strerror(errno));
		nswapped = 0;
		for (a = (unsigned long)p; a < (unsigned long)p + len; a += PAGE)
			nswapped += !!(pagemap_of(0, a) & PM_SWAP);
		if (nswapped == 16)
			break;
		usleep(100000);
	}
	if (!nswapped)
		FAIL("MADV_PAGEOUT left no page swapped out");
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "rd wr mr mw me ac");
	add_seen(&b, (unsigned long)p);
	add_expect(&b, -1, -1, "pte", "swap");
	pages_open(&b);
	for (a = (unsigned long)p; a < (unsigned long)p + len; a += PAGE) {
		uint64_t v = pagemap_of(0, a);
		char extra[96];
		if (v & PM_SWAP) {
			snprintf(extra, sizeof(extra), ",\"swap_type\":%llu,\"swap_offset\":%llu",
				 (unsigned long long)(v & 0x1f), (unsigned long long)((v & PM_PFN_MASK) >> 5));
			page_entry(&b, a, -1, -1, -1, "swap", "swap entry (pagemap swapped bit)", extra);
		} else if (v & PM_PRESENT) {
			page_entry(&b, a, (long long)(v & PM_PFN_MASK), 0, 1, "present",
				   "not paged out", NULL);
		}
	}
	pages_close(&b);
	line_end(&b, "", "", "anon pages written then MADV_PAGEOUT to zram swap");
	return 0;
}

static int k_anon_fork_shared(void)
{
	size_t len = 8 * PAGE;
	char *p = xmap_anon(len, PROT_READ | PROT_WRITE);
	int q[2];
	pid_t pid;
	struct sb b = { 0 };
	if (!p)
		FAIL("mmap: %s", strerror(errno));
	madvise(p, len, MADV_NOHUGEPAGE);
	fill(p, len, 11);
	if (pipe(q))
		FAIL("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		close(q[0]);
		line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
		add_flags(&b, "rd wr mr mw me ac");
		add_seen(&b, (unsigned long)p);
		sb_add(&b, ",\"role\":\"child\",\"peer_pid\":%d", (int)getppid());
		add_expect(&b, 0, 1, "pte", "present");
		pages_open(&b);
		pages_from_pagemap(&b, (unsigned long)p, len, 0, 1, "shared with the parent after fork: mapcount 2");
		pages_close(&b);
		line_end(&b, "", "", "fork()ed child sharing the parent's anon pages (not written after fork)");
		if (write(q[1], "R", 1) != 1)
			_exit(1);
		close(q[1]);
		daemon_stdio();
		sleep_forever();
	}
	close(q[1]);
	if (!wait_ready(q[0], 20000))
		FAIL("forked child did not report");
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "rd wr mr mw me ac");
	add_seen(&b, (unsigned long)p);
	sb_add(&b, ",\"role\":\"parent\",\"peer_pid\":%d", (int)pid);
	add_expect(&b, 0, 1, "pte", "present");
	pages_open(&b);
	pages_from_pagemap(&b, (unsigned long)p, len, 0, 1, "shared with the child after fork: mapcount 2");
	pages_close(&b);
	line_end(&b, "", "", "anon pages written, then fork(); parent and child both alive, no writes");
	return 0;
}

static int k_mlocked(void)
{
	size_t len = 4 * PAGE;
	char *p = xmap_anon(len, PROT_READ | PROT_WRITE);
	struct sb b = { 0 };
	if (!p)
		FAIL("mmap: %s", strerror(errno));
	if (mlock(p, len))
		FAIL("mlock: %s", strerror(errno));
	fill(p, len, 13);
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + len);
	add_flags(&b, "rd wr mr mw me lo ac");
	add_seen(&b, (unsigned long)p);
	add_expect(&b, 0, 1, "pte", "present");
	pages_open(&b);
	pages_from_pagemap(&b, (unsigned long)p, len, 0, 1, "mlocked anon page (PG_mlocked)");
	pages_close(&b);
	line_end(&b, "", "", "anon pages mlock()ed and written");
	return 0;
}

static int k_magic_page(void)
{
	char *p = xmap_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char pat[64];
	char hex[129];
	struct sb b = { 0 };
	long long pfn;
	if (!p)
		FAIL("mmap: %s", strerror(errno));
	madvise(p, PAGE, MADV_NOHUGEPAGE);
	if (mlock(p, PAGE))
		FAIL("mlock: %s", strerror(errno));
	make_pattern(pat, hex, "PFNSCOPE-MAGIC", 0);
	memcpy(p, pat, 64);
	pfn = pm_pfn((unsigned long)p);
	if (pfn < 0)
		FAIL("magic page not present in pagemap");
	line_start(&b, cur_kind, (unsigned long)p, (unsigned long)p + PAGE);
	add_flags(&b, "rd wr mr mw me lo ac");
	add_seen(&b, (unsigned long)p);
	sb_add(&b, ",\"addr\":\"0x%lx\",\"pfn\":%lld,\"pattern\":\"%s\"", (unsigned long)p, pfn, hex);
	add_expect(&b, 0, 1, "pte", "present");
	pages_open(&b);
	page_entry(&b, (unsigned long)p, pfn, 0, 1, "present", "magic pattern at offset 0", NULL);
	pages_close(&b);
	line_end(&b, "", "", "mlocked anon page holding the 64-byte magic pattern");
	return 0;
}

/* ------------------------------------------------------------------ driver */

struct kind { const char *name; int (*fn)(void); };
static const struct kind kinds[] = {
	{ "anon_private_written", k_anon_private_written },
	{ "anon_zero_page", k_anon_zero_page },
	{ "devmem_shared_hole", k_devmem_shared_hole },
	{ "devmem_shared_lowram", k_devmem_shared_lowram },
	{ "devmem_private_hole_cow", k_devmem_private_hole_cow },
	{ "devmem_private_lowram_cow", k_devmem_private_lowram_cow },
	{ "vvar", k_vvar },
	{ "vdso", k_vdso },
	{ "vvar_timens", k_vvar_timens },
	{ "pci_bar_resource", k_pci_bar_resource },
	{ "af_packet_rx_ring", k_af_packet_rx_ring },
	{ "io_uring", k_io_uring },
	{ "perf_ring", k_perf_ring },
	{ "thp_anon", k_thp_anon },
	{ "huge_zero_page", k_huge_zero_page },
	{ "hugetlb_anon", k_hugetlb_anon },
	{ "hugetlbfs_file", k_hugetlbfs_file },
	{ "memfd_shared", k_memfd_shared },
	{ "tmpfs_shared", k_tmpfs_shared },
	{ "file_private_cow", k_file_private_cow },
	{ "file_readonly", k_file_readonly },
	{ "protnone", k_protnone },
	{ "swap_anon", k_swap_anon },
	{ "anon_fork_shared", k_anon_fork_shared },
	{ "mlocked", k_mlocked },
	{ "magic_page", k_magic_page },
};

int main(int argc, char **argv)
{
	static char mpath[4096];
	struct utsname u;
	int maj = 0, min = 0, timeout_ms = 30000, nfail = 0;
	size_t i;
	const char *only = getenv("SCENARIOS_ONLY"); /* optional: comma list of kinds */

	if (argc != 2)
		die("usage: scenarios OUTDIR");
	mkdir(argv[1], 0755);
	snprintf(mpath, sizeof(mpath), "%s/manifest.jsonl", argv[1]);
	manifest = mpath;
	if (getenv("SCENARIOS_TIMEOUT"))
		timeout_ms = atoi(getenv("SCENARIOS_TIMEOUT")) * 1000;
	{
		int fd = open(mpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die("scenarios: cannot create %s: %s", mpath, strerror(errno));
		close(fd);
	}
	uname(&u);
	snprintf(release, sizeof(release), "%s", u.release);
	sscanf(u.release, "%d.%d", &maj, &min);
	kver = maj * 100 + min;
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		int p[2];
		pid_t pid;
		if (only && !strstr(only, kinds[i].name))
			continue;
		cur_kind = kinds[i].name;
		if (pipe(p))
			die("pipe: %s", strerror(errno));
		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			error_line(cur_kind, getpid(), "fork: %s", strerror(errno));
			continue;
		}
		if (pid == 0) {
			close(p[0]);
			setsid();
			signal(SIGHUP, SIG_IGN);
			ready_fd = p[1];
			if (kinds[i].fn() == 0) {
				if (write(ready_fd, "R", 1) != 1)
					_exit(1);
				close(ready_fd);
				daemon_stdio();
				sleep_forever();
			}
			_exit(1); /* error line already written */
		}
		close(p[1]);
		if (!wait_ready(p[0], timeout_ms)) {
			int st;
			pid_t w = waitpid(pid, &st, WNOHANG);
			nfail++;
			if (w == 0) {
				error_line(cur_kind, pid, "timed out after %d s", timeout_ms / 1000);
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
			} else {
				fprintf(stderr, "scenarios: %s failed (see manifest)\n", cur_kind);
			}
		} else {
			fprintf(stderr, "scenarios: %s ready (pid %d)\n", cur_kind, (int)pid);
		}
		close(p[0]);
	}
	fprintf(stderr, "scenarios: done, %d kind(s) failed\n", nfail);
	return 0;
}
