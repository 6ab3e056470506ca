/*
 * vmm -- the nested-KVM lab's virtual machine monitor, run inside the outer
 * (TCG) guest.  It uses /dev/kvm directly: one VM, one vCPU, three memslots
 *
 *   slot 0  anonymous RAM            gpa 0x00000, 16 pages (code, data)
 *   slot 1  /dev/mem MAP_SHARED      gpa 0xa0000, 32 pages over the VGA window (not RAM)
 *   slot 2  /dev/mem MAP_SHARED      gpa 0x60000,  8 pages over low RAM the kernel reserves
 *  (with -b, from the lab's buggy module /dev/pfnscope_buggy, tests/vm/module:
 *   slot 3  mode 2, gpa 0x100000, 4 pages: special ptes over refcounted RAM (case C)
 *   slot 4  mode 3, gpa 0x104000, 4 pages: special ptes over pages freed to the
 *           buddy allocator, read last: KVM before 6.13 refuses them (get_page_unless_zero
 *           fails, KVM_RUN returns EFAULT), 6.13+ maps them)
 *  and, after the run, tests/kvm/module's /dev/pfnscope_kvmbug changes two VGA-slot ptes
 *  without MMU notifiers: gfn 0xa2 to pfn 0xc0 (a stale SPTE), gfn 0xa3 read-only
 *  (a writable SPTE over a read-only host pte))
 *
 * and runs a real-mode guest that writes every anon and VGA page, reads every
 * reserved-RAM page (read only: the outer kernel owns that memory) and halts.
 * It then writes the truth -- memslots, the anon slot's pagemap, the /dev/mem
 * offsets, what the nested guest read -- to OUTDIR/kvm.json once OUTDIR is the
 * host's share (OUTDIR/guest-info.json exists), and stays alive with the VM.
 *
 * usage: vmm [-b] DEVDIR PROCDIR OUTDIR
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096UL
#define ANON_GPA 0x0UL
#define ANON_PAGES 16
#define VGA_GPA 0xa0000UL
#define VGA_OFF 0xa0000UL
#define VGA_PAGES 32
#define RSV_GPA 0x60000UL
#define RSV_OFF 0x60000UL
#define RSV_PAGES 8
#define BUGGY_GPA 0x100000UL
#define BUGGY_PAGES 4
#define RES_VGA 0x800	/* guest-read results, in anon page 0 */
#define RES_RSV 0x880
#define RES_BUGGY 0x8a0
#define FREED_GPA 0x104000UL
#define RES_FREED 0x8c0

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "vmm: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, ": %s\n", strerror(errno));
	va_end(ap);
	exit(1);
}

static uint8_t code[2048];
static size_t ncode;
static void emit(int n, ...)
{
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		code[ncode++] = (uint8_t)va_arg(ap, int);
	va_end(ap);
}
static void mov_ds(unsigned seg) { emit(5, 0xb8, seg & 0xff, seg >> 8, 0x8e, 0xd8); }	/* mov ax,seg; mov ds,ax */
static void store_imm(unsigned off, unsigned v) { emit(6, 0xc7, 0x06, off & 0xff, off >> 8, v & 0xff, v >> 8); }
static void load_ax(unsigned off) { emit(3, 0xa1, off & 0xff, off >> 8); }			/* mov ax,[off] */
static void store_es_ax(unsigned off) { emit(4, 0x26, 0xa3, off & 0xff, off >> 8); }	/* mov es:[off],ax */

struct buggy_pte { uint64_t addr, pte; };
#define PFNSCOPE_BUGGY_PTE _IOWR('P', 1, struct buggy_pte)
struct kvmbug_set { uint64_t addr, pfn, flags; };
#define PFNSCOPE_KVMBUG_SET _IOW('Q', 1, struct kvmbug_set)
#define KVMBUG_STALE_GFN 0xa2
#define KVMBUG_STALE_PFN 0xc0
#define KVMBUG_RO_GFN 0xa3
static int kvm_fd, vm_fd, buggy_fd = -1;
struct slot { int id; const char *kind; uint64_t gpa, npages, hva, devmem_off; int readonly_guest; };
static struct slot slots[4];
static int nslots;

static void set_slot(int id, const char *kind, uint64_t gpa, uint64_t npages, void *hva, uint64_t off)
{
	struct kvm_userspace_memory_region r = { .slot = id, .flags = 0, .guest_phys_addr = gpa,
		.memory_size = npages * PAGE, .userspace_addr = (uint64_t)hva };
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		die("KVM_SET_USER_MEMORY_REGION slot %d", id);
	slots[nslots++] = (struct slot){ id, kind, gpa, npages, (uint64_t)hva, off, 0 };
}

static uint64_t pagemap(int fd, uint64_t va)
{
	uint64_t e = 0;
	if (pread(fd, &e, 8, (off_t)(va / PAGE * 8)) != 8)
		die("pagemap read");
	return e;
}

int main(int argc, char **argv)
{
	int buggy = 0;
	if (argc > 1 && !strcmp(argv[1], "-b")) { buggy = 1; argv++; argc--; }
	if (argc != 4) { fprintf(stderr, "usage: vmm [-b] DEVDIR PROCDIR OUTDIR\n"); return 2; }
	const char *dev = argv[1], *proc = argv[2], *out = argv[3];
	char path[512];

	snprintf(path, sizeof(path), "%s/kvm", dev);
	if ((kvm_fd = open(path, O_RDWR | O_CLOEXEC)) < 0) die("open %s", path);
	if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) die("KVM API version");
	if ((vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0)) < 0) die("KVM_CREATE_VM");

	uint8_t *anon = mmap(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED) die("mmap anon");
	snprintf(path, sizeof(path), "%s/mem", dev);
	int mem = open(path, O_RDWR | O_SYNC);
	if (mem < 0) die("open %s", path);
	uint8_t *vga = mmap(NULL, VGA_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mem, VGA_OFF);
	if (vga == MAP_FAILED) die("mmap /dev/mem vga");
	uint8_t *rsv = mmap(NULL, RSV_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mem, RSV_OFF);
	if (rsv == MAP_FAILED) die("mmap /dev/mem reserved");
	uint8_t *bug = NULL, *freed = NULL;
	if (buggy) {
		/* the lab's buggy module (tests/vm/module), mode 2: remap_pfn_range of
		 * refcounted RAM, the mapping KVM before 6.13 takes references on */
		snprintf(path, sizeof(path), "%s/pfnscope_buggy", dev);
		if ((buggy_fd = open(path, O_RDWR)) < 0) die("open %s", path);
		bug = mmap(NULL, BUGGY_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buggy_fd, 2 * PAGE);
		if (bug == MAP_FAILED) die("mmap buggy mode 2");
		freed = mmap(NULL, BUGGY_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, buggy_fd, 3 * PAGE);
		if (freed == MAP_FAILED) die("mmap buggy mode 3");
	}

	/* the nested guest's program, in anon page 0 */
	for (unsigned i = 1; i < ANON_PAGES; i++)
		store_imm(i << 12, 0x6b00 | i);
	for (unsigned j = 0; j < VGA_PAGES; j++) {
		if (j % 16 == 0)	/* a real-mode segment spans 16 pages */
			mov_ds((unsigned)((VGA_GPA >> 4) + j * 0x100));
		store_imm((j % 16) << 12, 0x5600 | j);
		load_ax((j % 16) << 12);
		store_es_ax(RES_VGA + 2 * j);
	}
	mov_ds(RSV_GPA >> 4);
	for (unsigned k = 0; k < RSV_PAGES; k++) {
		load_ax(k << 12);
		store_es_ax(RES_RSV + 2 * k);
	}
	if (buggy) {
		mov_ds(0xffff);	/* FFFF:0010 is 1 MiB (KVM has no A20 mask) */
		for (unsigned k = 0; k < BUGGY_PAGES; k++) {
			load_ax((k << 12) + 0x10);
			store_es_ax(RES_BUGGY + 2 * k);
		}
		/* freed pages: read only (the outer kernel may hand them out again) */
		for (unsigned k = 0; k < BUGGY_PAGES; k++) {
			load_ax((unsigned)(FREED_GPA - 0xffff0 + (k << 12)));
			store_es_ax(RES_FREED + 2 * k);
		}
	}
	emit(1, 0xf4);	/* hlt */
	if (ncode > RES_VGA) { errno = 0; die("guest code too long (%zu)", ncode); }
	memcpy(anon, code, ncode);

	set_slot(0, "anon", ANON_GPA, ANON_PAGES, anon, 0);
	set_slot(1, "devmem-nonram", VGA_GPA, VGA_PAGES, vga, VGA_OFF);
	set_slot(2, "devmem-reserved-ram", RSV_GPA, RSV_PAGES, rsv, RSV_OFF);
	if (buggy) {
		set_slot(3, "buggy-special-over-ram", BUGGY_GPA, BUGGY_PAGES, bug, 0);
		set_slot(4, "buggy-freed", FREED_GPA, BUGGY_PAGES, freed, 0);
	}

	int vcpu = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) die("KVM_CREATE_VCPU");
	int runsz = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, (size_t)runsz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) die("mmap kvm_run");
	struct kvm_sregs sr;
	if (ioctl(vcpu, KVM_GET_SREGS, &sr) < 0) die("KVM_GET_SREGS");
	sr.cs.base = 0; sr.cs.selector = 0;
	sr.ds.base = 0; sr.ds.selector = 0;
	sr.es.base = 0; sr.es.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sr) < 0) die("KVM_SET_SREGS");
	struct kvm_regs rg = { .rip = 0, .rflags = 2 };
	if (ioctl(vcpu, KVM_SET_REGS, &rg) < 0) die("KVM_SET_REGS");
	int run_errno = 0;
	if (ioctl(vcpu, KVM_RUN, 0) < 0) {
		/* the freed slot on KVM < 6.13: hva_to_pfn_remapped -> -EFAULT */
		if (!buggy || errno != EFAULT) die("KVM_RUN");
		run_errno = errno;
	} else if (run->exit_reason != KVM_EXIT_HLT) {
		errno = 0;
		die("nested guest exit reason %u (expected HLT), rip?", run->exit_reason);
	}

	if (buggy) {
		snprintf(path, sizeof(path), "%s/pfnscope_kvmbug", dev);
		int kb = open(path, O_RDWR);
		if (kb < 0) die("open %s", path);
		struct kvmbug_set st = { (uint64_t)vga + (KVMBUG_STALE_GFN - VGA_GPA / PAGE) * PAGE, KVMBUG_STALE_PFN, 1 };
		if (ioctl(kb, PFNSCOPE_KVMBUG_SET, &st) < 0) die("PFNSCOPE_KVMBUG_SET stale");
		struct kvmbug_set ro = { (uint64_t)vga + (KVMBUG_RO_GFN - VGA_GPA / PAGE) * PAGE, 0, 2 };
		if (ioctl(kb, PFNSCOPE_KVMBUG_SET, &ro) < 0) die("PFNSCOPE_KVMBUG_SET readonly");
	}

	/* truth */
	snprintf(path, sizeof(path), "%s/self/pagemap", proc);
	int pm = open(path, O_RDONLY);
	if (pm < 0) die("open %s", path);
	snprintf(path, sizeof(path), "%s/kpagecount", proc);
	int kpc = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "%s/kpageflags", proc);
	int kpf = open(path, O_RDONLY);
	char *js = malloc(1 << 16);
	size_t n = 0;
#define P(...) (n += (size_t)snprintf(js + n, (1 << 16) - n, __VA_ARGS__))
	P("{\"pid\": %d, \"vm_fd\": %d, \"vcpu_fd\": %d, \"exit_reason\": %u, \"run_errno\": %d, \"slots\": [",
	  getpid(), vm_fd, vcpu, run_errno ? 0 : run->exit_reason, run_errno);
	for (int s = 0; s < nslots; s++) {
		struct slot *sl = &slots[s];
		P("%s{\"id\": %d, \"kind\": \"%s\", \"base_gfn\": %llu, \"npages\": %llu, \"hva\": %llu",
		  s ? ", " : "", sl->id, sl->kind, (unsigned long long)(sl->gpa / PAGE),
		  (unsigned long long)sl->npages, (unsigned long long)sl->hva);
		P(", \"pages\": [");
		for (uint64_t i = 0; i < sl->npages; i++) {
			uint64_t e = pagemap(pm, sl->hva + i * PAGE);
			uint64_t pfn = (e >> 63) ? (e & ((1ULL << 55) - 1)) : 0;
			if (!strncmp(sl->kind, "devmem", 6))
				pfn = sl->devmem_off / PAGE + i;
			if (!strncmp(sl->kind, "buggy", 5)) {
				/* pagemap hides pfnmap VMAs: the module reads the pte */
				struct buggy_pte bp = { .addr = sl->hva + i * PAGE };
				if (ioctl(buggy_fd, PFNSCOPE_BUGGY_PTE, &bp) < 0) die("PFNSCOPE_BUGGY_PTE");
				pfn = (bp.pte & 0x000ffffffffff000ULL) >> 12;
			}
			P("%s{\"gfn\": %llu, \"hva\": %llu, \"pfn\": %llu, \"pagemap\": %llu", i ? ", " : "",
			  (unsigned long long)(sl->gpa / PAGE + i), (unsigned long long)(sl->hva + i * PAGE),
			  (unsigned long long)pfn, (unsigned long long)e);
			if (kpc >= 0 && pfn) {	/* the kernel's refcount and flags of the page */
				uint64_t c = 0, fl = 0;
				if (pread(kpc, &c, 8, (off_t)(pfn * 8)) == 8 && pread(kpf, &fl, 8, (off_t)(pfn * 8)) == 8)
					P(", \"kpagecount\": %llu, \"kpageflags\": %llu", (unsigned long long)c,
					  (unsigned long long)fl);
			}
			P("}");
		}
		P("]}");
	}
	P("], \"guest_read\": {\"anon\": [");
	for (unsigned i = 1; i < ANON_PAGES; i++)
		P("%s%u", i > 1 ? ", " : "", *(uint16_t *)(anon + i * PAGE));
	P("], \"vga\": [");
	for (unsigned j = 0; j < VGA_PAGES; j++)
		P("%s%u", j ? ", " : "", *(uint16_t *)(anon + RES_VGA + 2 * j));
	P("], \"reserved\": [");
	for (unsigned k = 0; k < RSV_PAGES; k++)
		P("%s%u", k ? ", " : "", *(uint16_t *)(anon + RES_RSV + 2 * k));
	P("], \"reserved_host\": [");
	for (unsigned k = 0; k < RSV_PAGES; k++)
		P("%s%u", k ? ", " : "", *(volatile uint16_t *)(rsv + k * PAGE));
	P("]");
	if (buggy) {
		P(", \"buggy\": [");
		for (unsigned k = 0; k < BUGGY_PAGES; k++)
			P("%s%u", k ? ", " : "", *(uint16_t *)(anon + RES_BUGGY + 2 * k));
		P("], \"kvmbug\": [{\"gfn\": %d, \"host_pfn\": %d}, {\"gfn\": %d, \"readonly\": true}]",
		  KVMBUG_STALE_GFN, KVMBUG_STALE_PFN, KVMBUG_RO_GFN);
		P(", \"freed\": [");
		for (unsigned k = 0; k < BUGGY_PAGES; k++)
			P("%s%u", k ? ", " : "", *(uint16_t *)(anon + RES_FREED + 2 * k));
		P("]");
	}
	P("}}\n");

	/* wait for the host's share, then publish and stay alive with the VM */
	snprintf(path, sizeof(path), "%s/guest-info.json", out);
	struct stat st;
	while (stat(path, &st) != 0)
		usleep(100000);
	char tmp[512], fin[512];
	snprintf(tmp, sizeof(tmp), "%s/kvm.json.tmp", out);
	snprintf(fin, sizeof(fin), "%s/kvm.json", out);
	FILE *f = fopen(tmp, "w");
	if (!f) die("open %s", tmp);
	fwrite(js, 1, n, f);
	if (fclose(f)) die("write %s", tmp);
	if (rename(tmp, fin)) die("rename %s", fin);
	printf("vmm: truth written, pid %d\n", getpid());
	fflush(stdout);
	for (;;)
		pause();
}
