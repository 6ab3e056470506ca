/* VFIO guest program of the pfnscope lab: maps BAR 2 of vfio-pci bound devices
 * through the VFIO device fd, as a VMM does, and records the kernel's truth.
 *
 * usage: vfioguest OUT BDF:ALIGN [BDF:ALIGN...]
 *   BDF    a PCI device bound to vfio-pci (e.g. 0000:00:03.0)
 *   ALIGN  virtual alignment of the mapping in bytes (2 MiB, 1 GiB ...)
 *
 * Per device, a daemonized child opens the container (/dev/vfio/vfio, type1v2
 * IOMMU) and the device's group (/dev/vfio/N), gets the device fd, reads the
 * region info of BAR 2 (VFIO_DEVICE_GET_REGION_INFO: size, mmap offset) and
 * mmaps the whole BAR MAP_SHARED at an ALIGN-aligned address with the region
 * offset as mmap offset.  It reads every page (faulting the BAR in), writes a
 * 64-byte pattern at the start of the BAR and appends one manifest line to
 * OUT/manifest.jsonl with: the BAR's physical address from
 * /sys/bus/pci/devices/BDF/resource, the region offset, the VMA and its maps
 * offset (vm_pgoff << PAGE_SHIFT, as /proc/PID/maps prints it), the VMA's smaps
 * VmFlags, whether the loaded vfio-pci-core has vfio_pci_mmap_huge_fault
 * (/proc/kallsyms), the THP mode and the page faults the first read and a second
 * read (after smaps was read) took.  Then it sleeps forever: the guest is dumped
 * with the mapping alive.  SIGUSR1 reads every page again and writes
 * "FAULTS SUM" to OUT/vfio-retouch-PID: reading /proc/PID/smaps zaps a PUD leaf
 * of a huge pfnmap (observed on 6.12.117 and 7.2.13; ptes and PMD leaves stay),
 * so the lab re-faults the BARs after `truth` has copied smaps, before the dumps.
 * exit: 0 when every device's line is written, 1 otherwise.
 */
#include "../guest/common.h"
#include <linux/vfio.h>
#include <sys/ioctl.h>

#define BAR_INDEX VFIO_PCI_BAR2_REGION_INDEX

static char errbuf[512];

/* the mapping, for the SIGUSR1 re-touch */
static volatile unsigned char *g_map;
static unsigned long g_len;
static const char *g_out;

static unsigned long minflt(void)
{
	char buf[1024], *p;
	unsigned long v = 0;
	int i;
	if (read_file("/proc/self/stat", buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')))
		return 0;
	/* after "comm)": state ppid pgrp session tty_nr tpgid flags minflt */
	for (i = 0; i < 8 && p; i++)
		p = strchr(p + 1, ' ');
	if (p)
		v = strtoul(p + 1, NULL, 10);
	return v;
}

/* SIGUSR1: read every page again and write the number of page faults it took to
 * OUT/vfio-retouch-PID (0: every entry was still mapped) */
static void retouch(int sig)
{
	char path[512], tmp[520], line[64];
	unsigned long f0 = minflt(), i, sum = 0;
	int fd, n;
	(void)sig;
	for (i = 0; i < g_len; i += PAGE)
		sum += g_map[i];
	n = snprintf(line, sizeof(line), "%lu %lu\n", minflt() - f0, sum);
	snprintf(path, sizeof(path), "%s/vfio-retouch-%d", g_out, (int)getpid());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) == n && !fsync(fd))
			rename(tmp, path);
		close(fd);
	}
}

static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return -1;
}

/* BAR N's start, end (inclusive) and flags from sysfs resource */
static int bar_resource(const char *bdf, int n, uint64_t *start, uint64_t *end, uint64_t *flags)
{
	char path[256], buf[4096], *l = buf;
	int i;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", bdf);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return fail("cannot read %s: %s", path, strerror(errno));
	for (i = 0; i < n && l; i++) {
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	if (!l || sscanf(l, "%lx %lx %lx", start, end, flags) != 3)
		return fail("%s: no line for BAR %d", path, n);
	return 0;
}

/* The line of /proc/self/maps starting at START: its offset field and the
 * VmFlags of /proc/self/smaps for the same VMA. */
static int vma_truth(unsigned long start, unsigned long *end, unsigned long *off, char *vmflags, size_t cap)
{
	static char buf[1 << 20];
	char *l, *save, key[32];
	int in = 0;
	if (read_file("/proc/self/maps", buf, sizeof(buf)) <= 0)
		return fail("cannot read /proc/self/maps");
	*end = 0;
	for (l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e, o;
		if (sscanf(l, "%lx-%lx %*s %lx", &s, &e, &o) == 3 && s == start) {
			*end = e;
			*off = o;
		}
	}
	if (!*end)
		return fail("no VMA at 0x%lx in /proc/self/maps", start);
	if (read_file("/proc/self/smaps", buf, sizeof(buf)) <= 0)
		return fail("cannot read /proc/self/smaps");
	vmflags[0] = 0;
	snprintf(key, sizeof(key), "%lx-", start);
	for (l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, key, strlen(key)))
			in = 1;
		else if (in && !strncmp(l, "VmFlags:", 8)) {
			const char *v = l + 8;
			while (*v == ' ')
				v++;
			snprintf(vmflags, cap, "%s", v);
			break;
		}
	}
	return 0;
}

/* 1 when /proc/kallsyms names SYM (module symbols included), 0 if not, -1 unreadable */
static int kallsyms_has(const char *sym)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], name[256];
	int found = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %255s", name) == 1 && !strcmp(name, sym)) {
			found = 1;
			break;
		}
	fclose(f);
	return found;
}

static void thp_mode(char *out, size_t cap)
{
	char buf[256], *a, *b;
	snprintf(out, cap, "unknown");
	if (read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)) <= 0)
		return;
	a = strchr(buf, '[');
	b = a ? strchr(a, ']') : NULL;
	if (a && b) {
		*b = 0;
		snprintf(out, cap, "%s", a + 1);
	}
}

static int map_bar(const char *out, const char *bdf, unsigned long align, int ready)
{
	char path[512], group[600], link[512], vmflags[256], thp[32], pattern[65];
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = BAR_INDEX };
	uint64_t bstart, bend, bflags;
	unsigned long vend = 0, moff = 0, i;
	volatile unsigned char *p;
	unsigned char *resv;
	unsigned long sum = 0, flt0, flt1, flt2, flt3;
	int container, grp, dev, huge;
	ssize_t n;
	struct sb b = { 0 };
	char rel[128];
	char *slash;

	if (bar_resource(bdf, BAR_INDEX, &bstart, &bend, &bflags))
		return -1;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return fail("readlink %s: %s (no IOMMU group: intel_iommu=on?)", path, strerror(errno));
	link[n] = 0;
	slash = strrchr(link, '/');
	snprintf(group, sizeof(group), "/dev/vfio/%s", slash ? slash + 1 : link);

	container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (container < 0)
		return fail("open /dev/vfio/vfio: %s", strerror(errno));
	if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		return fail("VFIO_GET_API_VERSION: not %d", VFIO_API_VERSION);
	if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
		return fail("container lacks VFIO_TYPE1v2_IOMMU (vfio_iommu_type1 loaded?)");
	grp = open(group, O_RDWR | O_CLOEXEC);
	if (grp < 0)
		return fail("open %s: %s", group, strerror(errno));
	if (ioctl(grp, VFIO_GROUP_GET_STATUS, &gs) || !(gs.flags & VFIO_GROUP_FLAGS_VIABLE))
		return fail("%s: group not viable (every device of the group bound to vfio-pci?)", group);
	if (ioctl(grp, VFIO_GROUP_SET_CONTAINER, &container))
		return fail("VFIO_GROUP_SET_CONTAINER %s: %s", group, strerror(errno));
	if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return fail("VFIO_SET_IOMMU: %s", strerror(errno));
	dev = ioctl(grp, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (dev < 0)
		return fail("VFIO_GROUP_GET_DEVICE_FD %s: %s", bdf, strerror(errno));
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return fail("VFIO_DEVICE_GET_REGION_INFO %s BAR %d: %s", bdf, BAR_INDEX, strerror(errno));
	if (!(ri.flags & VFIO_REGION_INFO_FLAG_MMAP) || !ri.size)
		return fail("%s BAR %d: region not mmappable (flags 0x%x size 0x%llx)", bdf, BAR_INDEX,
			    ri.flags, (unsigned long long)ri.size);

	/* an ALIGN-aligned hole: reserve size + align, map the BAR over its aligned part */
	resv = mmap(NULL, ri.size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED)
		return fail("reserving %llu bytes: %s", (unsigned long long)(ri.size + align), strerror(errno));
	p = (volatile unsigned char *)(((unsigned long)resv + align - 1) & ~(align - 1));
	if (mmap((void *)p, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, dev,
		 (off_t)ri.offset) == MAP_FAILED)
		return fail("mmap %s BAR %d (offset 0x%llx): %s", bdf, BAR_INDEX,
			    (unsigned long long)ri.offset, strerror(errno));
	/* read every page: the fault handler fills the VMA (remap of the whole VMA on
	 * the first fault, or one pte/PMD/PUD per fault) */
	flt0 = minflt();
	for (i = 0; i < ri.size; i += PAGE)
		sum += p[i];
	flt1 = minflt();
	snprintf(pattern, sizeof(pattern), "PFNSCOPE-VFIO-%s-%016lx-%lx", bdf, (unsigned long)bstart,
		 (unsigned long)getpid());
	for (i = 0; i < 64; i++)
		p[i] = i < strlen(pattern) ? (unsigned char)pattern[i] : 0;
	if (vma_truth((unsigned long)p, &vend, &moff, vmflags, sizeof(vmflags)))
		return -1;
	/* read every page again: no fault when every entry stayed mapped */
	flt2 = minflt();
	for (i = 0; i < ri.size; i += PAGE)
		sum += p[i];
	flt3 = minflt();
	huge = kallsyms_has("vfio_pci_mmap_huge_fault");
	thp_mode(thp, sizeof(thp));
	if (read_file("/proc/sys/kernel/osrelease", rel, sizeof(rel)) > 0)
		rel[strcspn(rel, "\n")] = 0;
	else
		snprintf(rel, sizeof(rel), "unknown");

	sb_add(&b, "{\"kind\": \"vfio_pci_bar\", \"pid\": %d, \"start\": \"0x%lx\", \"end\": \"0x%lx\", "
		   "\"kernel\": ", (int)getpid(), (unsigned long)p, vend);
	sb_str(&b, rel);
	sb_add(&b, ", \"bdf\": ");
	sb_str(&b, bdf);
	sb_add(&b, ", \"bar_index\": %d, \"bar\": \"0x%llx\", \"bar_end\": \"0x%llx\", \"bar_flags\": \"0x%llx\", "
		   "\"region_size\": \"0x%llx\", \"region_offset\": \"0x%llx\", \"maps_offset\": \"0x%lx\", "
		   "\"align\": \"0x%lx\", \"group\": ",
	       BAR_INDEX, (unsigned long long)bstart, (unsigned long long)bend, (unsigned long long)bflags,
	       (unsigned long long)ri.size, (unsigned long long)ri.offset, moff, align);
	sb_str(&b, group);
	sb_add(&b, ", \"vm_flags_expect\": [\"rd\", \"wr\", \"sh\", \"io\", \"pf\", \"de\", \"dd\"], \"vm_flags_seen\": ");
	sb_str(&b, vmflags);
	sb_add(&b, ", \"huge_fault\": %s, \"thp\": ", tri(huge));
	sb_str(&b, thp);
	sb_add(&b, ", \"expect\": {\"special\": true, \"normal_page\": false, \"kind\": \"present\"}, "
		   "\"pattern\": \"");
	for (i = 0; i < 64; i++)
		sb_add(&b, "%02x", i < strlen(pattern) ? (unsigned char)pattern[i] : 0);
	sb_add(&b, "\", \"touch_faults\": %lu, \"retouch_faults\": %lu", flt1 - flt0, flt3 - flt2);
	sb_add(&b, ", \"diagnoses\": [], \"read_sum\": %lu, "
		   "\"note\": \"BAR %d of %s mmapped through the VFIO device fd; pfn = bar >> 12 + page index\"}\n",
	       sum, BAR_INDEX, bdf);
	snprintf(path, sizeof(path), "%s/manifest.jsonl", out);
	if (append_line(path, b.s, b.n))
		return fail("cannot append to %s", path);
	sb_free(&b);
	g_map = p;
	g_len = ri.size;
	g_out = out;
	signal(SIGUSR1, retouch);
	if (write(ready, "r", 1) != 1)
		return fail("ready pipe");
	return 0;
}

int main(int argc, char **argv)
{
	int i, rc = 0;
	if (argc < 3)
		die("usage: vfioguest OUT BDF:ALIGN [BDF:ALIGN...]");
	for (i = 2; i < argc; i++) {
		char bdf[64], *colon;
		unsigned long align;
		int pfd[2];
		pid_t pid;
		snprintf(bdf, sizeof(bdf), "%s", argv[i]);
		colon = strrchr(bdf, ':');
		if (!colon || !(align = strtoul(colon + 1, NULL, 0)) || (align & (align - 1)))
			die("vfioguest: bad device argument '%s' (BDF:ALIGN)", argv[i]);
		*colon = 0;
		if (pipe(pfd))
			die("pipe: %s", strerror(errno));
		pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (!pid) {
			close(pfd[0]);
			setsid();
			if (map_bar(argv[1], bdf, align, pfd[1])) {
				fprintf(stderr, "vfioguest: %s: %s\n", bdf, errbuf);
				_exit(1);
			}
			daemon_stdio();
			sleep_forever();
		}
		close(pfd[1]);
		if (!wait_ready(pfd[0], 120000)) {
			fprintf(stderr, "vfioguest: %s: mapping failed or timed out\n", bdf);
			rc = 1;
		} else {
			printf("vfioguest: %s: pid %d mapped\n", bdf, (int)pid);
		}
		close(pfd[0]);
	}
	return rc;
}
