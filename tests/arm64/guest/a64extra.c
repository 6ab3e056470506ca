/*
 * a64extra OUTDIR -- the arm64 lab's mappings the x86 lab has no equivalent of,
 * built by one kept-alive process and recorded as the kernel reports them:
 *
 *   contpte_anon   a 256 KiB anon VMA, 64 KiB aligned, MADV_HUGEPAGE, written with
 *                  the 64 KiB mTHP size enabled ("madvise") for the faults only:
 *                  do_anonymous_page() maps 64 KiB folios with set_ptes(), which
 *                  arm64 folds into contiguous (PTE_CONT) runs of CONT_PTES = 16
 *                  when the folio is naturally aligned (contpte_set_ptes(),
 *                  arch/arm64/mm/contpte.c, v6.9 "arm64/mm: Wire up PTE_CONT for
 *                  user mappings").
 *   uffd_wp_anon   16 anon pages registered UFFDIO_REGISTER_MODE_WP (with
 *                  UFFD_FEATURE_WP_UNPOPULATED when the kernel offers it), pages
 *                  0-11 written, then UFFDIO_WRITEPROTECT over all 16: present
 *                  ptes get PTE_UFFD_WP, pages 8-11 are then paged out (swap ptes
 *                  keep PTE_SWP_UFFD_WP) and 12-15 get PTE_MARKER_UFFD_WP markers.
 *                  arm64 has uffd-wp since v6.10 ("arm64/mm: Add uffd
 *                  write-protect support").
 *
 * For each built kind one manifest line (OUTDIR/manifest.jsonl, the format of
 * tests/vm/guest/README.md) whose "pages" carry, per page, what pagemap says
 * ("pagemap" raw, "pfn", "uffd_wp" = PM_UFFD_WP bit 57, "present"/"swap"),
 * kpageflags, and the raw pte the kernel holds when /dev/pfnscope_buggy (the
 * lab's test module, buggy fixtures) can read it ("pte").  What a kernel does not
 * offer (6.1: no mTHP sysfs, no arm64 uffd-wp) goes to OUTDIR/arm64-extra.json
 * with the reason, as does what was built:
 *   {"contpte": {"built": bool, "why": ".."}, "uffd_wp": {...}}
 * Runs after the buggy module is loaded (the lab's /bin/truth wrapper) and exits
 * 0 once its process holds the mappings, 1 when something failed unexpectedly.
 */
#include "../../vm/guest/common.h"
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)	/* v6.4 */
#endif
#define PM_UFFD_WP (1ULL << 57)
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16

struct buggy_pte { uint64_t addr, pte; };
#define PFNSCOPE_BUGGY_PTE _IOWR('P', 1, struct buggy_pte)

#define CONT_SIZE (64UL << 10)
#define CONT_VMA (256UL << 10)
#define UFFD_PAGES 16
#define MTHP64 "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled"

static const char *out_dir;
static char release[128];
static int ptefd = -1;
static struct sb status;	/* the arm64-extra.json body */

static uint64_t raw_pte(unsigned long addr)
{
	struct buggy_pte q = { addr, 0 };
	if (ptefd < 0 || ioctl(ptefd, PFNSCOPE_BUGGY_PTE, &q))
		return 0;
	return q.pte;
}

/* one page as pagemap shows it; SWAP_KIND names what a PM_SWAP entry is here
 * ("swap" for a page the guest paged out, "marker" for a never-faulted page:
 * pagemap reports pte markers as swap entries of type SWP_PTE_MARKER,
 * fs/proc/task_mmu.c pte_to_pagemap_entry()) */
static void page_json(struct sb *b, unsigned long addr, const char *swap_kind)
{
	uint64_t v = pagemap_of(0, addr);
	sb_add(b, "{\"addr\":\"0x%lx\",\"pagemap\":\"0x%llx\",\"uffd_wp\":%s", addr,
	       (unsigned long long)v, v & PM_UFFD_WP ? "true" : "false");
	if (v & PM_PRESENT) {
		uint64_t pfn = v & PM_PFN_MASK;
		sb_add(b, ",\"kind\":\"present\",\"pfn\":%llu,\"special\":false,\"normal_page\":true"
			  ",\"kpageflags\":\"0x%llx\"", (unsigned long long)pfn,
		       (unsigned long long)kpageflags_of(pfn));
	} else if (v & PM_SWAP) {
		sb_add(b, ",\"kind\":\"%s\",\"swap_type\":%llu,\"swap_offset\":%llu", swap_kind,
		       (unsigned long long)(v & 0x1f), (unsigned long long)((v & PM_PFN_MASK) >> 5));
	} else {
		sb_add(b, ",\"kind\":\"none\"");
	}
	if (ptefd >= 0)
		sb_add(b, ",\"pte\":\"0x%llx\"", (unsigned long long)raw_pte(addr));
	sb_add(b, "}");
}

static void manifest_line(const char *kind, unsigned long start, unsigned long end,
			  const char *flags, const char *note, struct sb *pages)
{
	struct sb b = { 0 };
	char path[4096];
	sb_add(&b, "{\"kind\":\"%s\",\"pid\":%d,\"start\":\"0x%lx\",\"end\":\"0x%lx\",\"kernel\":",
	       kind, (int)getpid(), start, end);
	sb_str(&b, release);
	sb_add(&b, ",\"vm_flags_expect\":[%s],\"expect\":{\"special\":false,\"normal_page\":true,"
		   "\"level\":\"pte\",\"kind\":null},\"pages\":[%s],\"diagnoses\":[],\"note\":",
	       flags, pages->s ? pages->s : "");
	sb_str(&b, note);
	sb_add(&b, "}\n");
	snprintf(path, sizeof(path), "%s/manifest.jsonl", out_dir);
	if (append_line(path, b.s, b.n))
		die("a64extra: cannot append to %s: %s", path, strerror(errno));
	sb_free(&b);
}

static void say(const char *what, int built, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	sb_add(&status, "%s\"%s\":{\"built\":%s,\"why\":", status.n > 1 ? "," : "", what,
	       built ? "true" : "false");
	sb_str(&status, why);
	sb_add(&status, "}");
}

/* mmap LEN bytes aligned to ALIGN, the rest unmapped: the VMA is exactly LEN */
static char *map_aligned(size_t len, size_t align)
{
	char *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;
	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((char *)a + len, (uintptr_t)p + len + align - a - len);
	return (char *)a;
}

static int contpte(void)
{
	char old[256] = "", *sel, *p;
	struct sb pages = { 0 };
	unsigned long i;
	if (read_file(MTHP64, old, sizeof(old)) < 0) {
		say("contpte", 0, "no %s: %s (mTHP sizes: v6.8)", MTHP64, strerror(errno));
		return 0;
	}
	/* the selected value is in brackets: "always inherit madvise [never]" */
	sel = strchr(old, '[');
	p = sel ? strchr(sel, ']') : NULL;
	if (!sel || !p) {
		say("contpte", 0, "cannot parse %s: %s", MTHP64, old);
		return 1;
	}
	*p = 0;
	sel++;
	p = map_aligned(CONT_VMA, CONT_SIZE);
	if (!p) {
		say("contpte", 0, "mmap: %s", strerror(errno));
		return 1;
	}
	/* only this VMA (VM_HUGEPAGE) may take 64 KiB folios, and it is too small
	 * for a PMD THP */
	if (madvise(p, CONT_VMA, MADV_HUGEPAGE)) {
		say("contpte", 0, "MADV_HUGEPAGE: %s", strerror(errno));
		return 1;
	}
	if (write_file(MTHP64, "madvise")) {
		say("contpte", 0, "write madvise to %s: %s", MTHP64, strerror(errno));
		return 1;
	}
	for (i = 0; i < CONT_VMA; i += PAGE)
		memset(p + i, (int)(0x40 + i / PAGE), 64);
	if (write_file(MTHP64, sel))
		die("a64extra: cannot restore %s to %s", MTHP64, sel);
	for (i = 0; i < CONT_VMA; i += PAGE) {
		if (i)
			sb_add(&pages, ",");
		page_json(&pages, (unsigned long)p + i, "swap");
	}
	manifest_line("contpte_anon", (unsigned long)p, (unsigned long)p + CONT_VMA, "\"rd\",\"wr\",\"hg\"",
		      "64 KiB anon folios (hugepages-64kB=madvise while faulting): contpte_set_ptes() "
		      "folds each aligned run of 16 ptes (PTE_CONT); per page: pagemap, kpageflags, "
		      "raw pte (module ioctl) when available", &pages);
	say("contpte", 1, "256 KiB at 0x%lx, hugepages-64kB %s during the faults, %s after",
	    (unsigned long)p, "madvise", sel);
	sb_free(&pages);
	return 0;
}

static int uffd_wp(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	struct uffdio_register reg;
	struct uffdio_writeprotect wp;
	struct sb pages = { 0 };
	uint64_t feat;
	char *p;
	int fd, i, try, unpop;

	fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		say("uffd_wp", 0, "userfaultfd: %s", strerror(errno));
		return 0;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		say("uffd_wp", 0, "UFFDIO_API: %s", strerror(errno));
		return 1;
	}
	feat = api.features;
	close(fd);
	if (!(feat & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		say("uffd_wp", 0, "UFFDIO_API features 0x%llx: no UFFD_FEATURE_PAGEFAULT_FLAG_WP "
			"(no CONFIG_HAVE_ARCH_USERFAULTFD_WP)", (unsigned long long)feat);
		return 0;
	}
	unpop = !!(feat & UFFD_FEATURE_WP_UNPOPULATED);
	fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	api.api = UFFD_API;
	api.features = unpop ? UFFD_FEATURE_WP_UNPOPULATED : 0;
	if (fd < 0 || ioctl(fd, UFFDIO_API, &api)) {
		say("uffd_wp", 0, "second userfaultfd/UFFDIO_API: %s", strerror(errno));
		return 1;
	}
	p = map_aligned(UFFD_PAGES * PAGE, 16 * PAGE);
	if (!p || madvise(p, UFFD_PAGES * PAGE, MADV_NOHUGEPAGE)) {
		say("uffd_wp", 0, "mmap/MADV_NOHUGEPAGE: %s", strerror(errno));
		return 1;
	}
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (unsigned long)p;
	reg.range.len = UFFD_PAGES * PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(fd, UFFDIO_REGISTER, &reg)) {
		say("uffd_wp", 0, "UFFDIO_REGISTER_MODE_WP: %s", strerror(errno));
		return 0;
	}
	for (i = 0; i < 12; i++)
		memset(p + i * PAGE, 0x60 + i, 64);
	memset(&wp, 0, sizeof(wp));
	wp.range.start = (unsigned long)p;
	wp.range.len = UFFD_PAGES * PAGE;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp)) {
		say("uffd_wp", 0, "UFFDIO_WRITEPROTECT: %s", strerror(errno));
		return 1;
	}
	/* pages 8-11 to swap (zram): reclaim keeps the bit in the swap pte
	 * (try_to_unmap_one: pte_swp_mkuffd_wp) */
	for (try = 0; try < 20; try++) {
		int left = 0;
		for (i = 8; i < 12; i++)
			if (!(pagemap_of(0, (unsigned long)p + i * PAGE) & PM_SWAP))
				left++;
		if (!left)
			break;
		madvise(p + 8 * PAGE, 4 * PAGE, MADV_PAGEOUT);
		usleep(50000);
	}
	for (i = 0; i < UFFD_PAGES; i++) {
		if (i)
			sb_add(&pages, ",");
		page_json(&pages, (unsigned long)p + i * PAGE, i < 12 ? "swap" : "marker");
	}
	manifest_line("uffd_wp_anon", (unsigned long)p, (unsigned long)p + UFFD_PAGES * PAGE,
		      "\"rd\",\"wr\",\"uw\"",
		      "uffd-wp: pages 0-7 present, 8-11 paged out, 12-15 never faulted "
		      "(pte markers with UFFD_FEATURE_WP_UNPOPULATED), all write-protected", &pages);
	say("uffd_wp", 1, "16 pages at 0x%lx, WP_UNPOPULATED %s, pageout tries %d", (unsigned long)p,
	    unpop ? "yes" : "no", try);
	sb_free(&pages);
	/* fd stays open: closing it would clear the bits (userfaultfd_release) */
	return 0;
}

int main(int argc, char **argv)
{
	int pfd[2];
	pid_t pid;
	char c = 1;
	struct utsname u;

	if (argc != 2)
		die("usage: a64extra OUTDIR");
	out_dir = argv[1];
	uname(&u);
	snprintf(release, sizeof(release), "%s", u.release);
	if (pipe(pfd))
		die("a64extra: pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("a64extra: fork: %s", strerror(errno));
	if (pid == 0) {
		char path[4096];
		int rc, fd;
		close(pfd[0]);
		setsid();
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		ptefd = open("/dev/pfnscope_buggy", O_RDWR | O_CLOEXEC);
		sb_add(&status, "{");
		rc = contpte() | uffd_wp();
		sb_add(&status, ",\"pid\":%d,\"pte_ioctl\":%s}\n", (int)getpid(), ptefd >= 0 ? "true" : "false");
		snprintf(path, sizeof(path), "%s/arm64-extra.json", out_dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, status.s, status.n) != (ssize_t)status.n)
			rc = 1;
		if (fd >= 0)
			close(fd);
		c = rc ? 1 : 0;
		if (write(pfd[1], &c, 1) != 1)
			_exit(1);
		close(pfd[1]);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1)
		die("a64extra: the holder exited");
	fprintf(stderr, "a64extra: holder %d: %s\n", (int)pid, c ? "failed" : "ok");
	return c ? 1 : 0;
}
