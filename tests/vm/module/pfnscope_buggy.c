// SPDX-License-Identifier: GPL-2.0
/*
 * pfnscope_buggy: a test-only misc device whose mmap modes build, for real,
 * page-table states that a healthy kernel never has -- one per pfnscope
 * diagnosis (docs/diagnoses.md).
 *
 *   mmap(NULL, len, prot, flags, fd, MODE * PAGE_SIZE)   (vm_pgoff = MODE)
 *
 * Modes (the mapping type the user must ask for is in brackets):
 *   1 BAD_SPECIAL            [SHARED] remap_pfn_range(VGA 0xa0..) then clear PFNMAP|IO
 *   2 SPECIAL_OVER_RAM       [SHARED] remap_pfn_range of alloc'd, kept, non-reserved RAM
 *   3 MAPS_FREED_PAGE        [SHARED] remap_pfn_range of the last pages of an order-10
 *                                     block, then the block is freed to the buddy lists
 *   4 NONSPECIAL_IN_PFNMAP   [SHARED] vm_insert_page, then MIXEDMAP -> PFNMAP|IO
 *   5 PFNMAP_AND_MIXEDMAP    [SHARED] remap_pfn_range(VGA) then set MIXEDMAP too
 *   6 REFCOUNT_BELOW_MAPCOUNT[SHARED] one page vm_insert_page'd npages times, then
 *                                     two references dropped (rc = mc - 1)
 *   7 PFNMAP_NONLINEAR_COW   [PRIVATE, RW] special ptes to VGA pfns in reverse order,
 *                                     vm_pgoff = first pfn, IO|PFNMAP|DONTEXPAND|DONTDUMP
 *   8 PFN_BEYOND_MEMMAP      [SHARED] non-special present pte to pfn 0xdead000 in a
 *                                     MIXEDMAP VMA
 *   9 PFNMAP_WITHOUT_IO      [SHARED] remap_pfn_range(VGA) then clear IO
 *  10 RESERVED_NORMAL        [SHARED] vm_insert_page of a SetPageReserved page, then
 *                                     MIXEDMAP cleared (a plain shared VMA)
 *  11 PFNMAP_COW_ANON        [PRIVATE, RW] remap_pfn_range(VGA) of the whole VMA; the
 *                                     user writes pages to get COW anon pages (case B)
 *
 * read() returns one text line per mapping made so far:
 *   "mode=N name=NAME start=0x.. end=0x.. flags=0x.. pgoff=0x.. pfns=0x..,0x.. note=.."
 * ioctl(fd, PFNSCOPE_BUGGY_PTE, struct {u64 addr; u64 pte;}) returns the raw pte at
 * addr in the caller's mm (0 when there is no pte table), so userspace can learn
 * the pfn of COW pages in pfnmap VMAs that pagemap does not show.
 *
 * Nothing is ever undone: the processes holding these mappings must never exit
 * (zap would print "Bad page map" or free pages twice).  Test kernels only.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/gfp.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/pgtable.h>
#include <linux/rcupdate.h>
#include <asm/pgtable.h>

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define VMF_SET(v, f) vm_flags_set((v), (f))
#define VMF_CLR(v, f) vm_flags_clear((v), (f))
#else
#define VMF_SET(v, f) ((v)->vm_flags |= (f))
#define VMF_CLR(v, f) ((v)->vm_flags &= ~(f))
#endif

#define VGA_PFN 0xa0UL		/* legacy VGA window 0xA0000-0xBFFFF: not RAM */
#define VGA_NPAGES 32
#define BEYOND_PFN 0xdead000UL	/* far above any guest RAM, below 40 phys bits */
#define MAX_PAGES 16
#define NMODES 11
#define FREED_ORDER 10

struct pfnscope_buggy_pte { __u64 addr; __u64 pte; };
#define PFNSCOPE_BUGGY_PTE _IOWR('P', 1, struct pfnscope_buggy_pte)

static const char *const mode_names[NMODES + 1] = {
	NULL, "BAD_SPECIAL", "SPECIAL_OVER_RAM", "MAPS_FREED_PAGE",
	"NONSPECIAL_IN_PFNMAP", "PFNMAP_AND_MIXEDMAP", "REFCOUNT_BELOW_MAPCOUNT",
	"PFNMAP_NONLINEAR_COW", "PFN_BEYOND_MEMMAP", "PFNMAP_WITHOUT_IO",
	"RESERVED_NORMAL", "PFNMAP_COW_ANON",
};

struct rec {
	int mode;
	unsigned long start, end, flags, pgoff;
	int npfns;
	unsigned long pfns[MAX_PAGES];
	char note[96];
};

#define MAX_RECS 64
static struct rec recs[MAX_RECS];
static int nrecs;
static DEFINE_MUTEX(lock);

struct set_ctx { unsigned long *pfns; bool special; pgprot_t prot; struct mm_struct *mm; int i; };

static int set_one_pte(pte_t *ptep, unsigned long addr, void *data)
{
	struct set_ctx *c = data;
	pte_t pte = pfn_pte(c->pfns[c->i++], c->prot);

	if (c->special)
		pte = pte_mkspecial(pte);
	set_pte_at(c->mm, addr, ptep, pte);
	return 0;
}

/* Set ptes bit-exactly (pte lock held by apply_to_page_range). */
static int set_ptes_raw(struct vm_area_struct *vma, unsigned long *pfns, int n,
			bool special, pgprot_t prot)
{
	struct set_ctx c = { .pfns = pfns, .special = special, .prot = prot,
			     .mm = vma->vm_mm, .i = 0 };

	return apply_to_page_range(vma->vm_mm, vma->vm_start, (unsigned long)n << PAGE_SHIFT,
				   set_one_pte, &c);
}

static int remap_vga(struct vm_area_struct *vma, unsigned long *pfns, int n)
{
	int i;

	for (i = 0; i < n; i++)
		pfns[i] = VGA_PFN + i;
	return remap_pfn_range(vma, vma->vm_start, VGA_PFN, (unsigned long)n << PAGE_SHIFT,
			       vma->vm_page_prot);
}

static int buggy_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long mode = vma->vm_pgoff;
	int n = vma_pages(vma), i, ret = 0;
	bool cow = (vma->vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
	struct rec r = { .mode = (int)mode };
	struct page *page;

	if (mode < 1 || mode > NMODES || n < 1 || n > MAX_PAGES)
		return -EINVAL;
	/* modes 7 and 11 are COW mappings by definition; the others want MAP_SHARED */
	if ((mode == 7 || mode == 11) != cow)
		return -EINVAL;
	if (n > VGA_NPAGES)
		return -EINVAL;

	switch (mode) {
	case 1: /* BAD_SPECIAL */
		ret = remap_vga(vma, r.pfns, n);
		VMF_CLR(vma, VM_PFNMAP | VM_IO);
		snprintf(r.note, sizeof(r.note), "special ptes, VM_PFNMAP|VM_IO cleared");
		break;
	case 2: /* SPECIAL_OVER_RAM: split block so every page has rc=1; kept forever */
		page = alloc_pages(GFP_KERNEL | __GFP_ZERO, get_order((unsigned long)n << PAGE_SHIFT));
		if (!page)
			return -ENOMEM;
		split_page(page, get_order((unsigned long)n << PAGE_SHIFT));
		for (i = 0; i < n; i++)
			r.pfns[i] = page_to_pfn(page) + i;
		ret = remap_pfn_range(vma, vma->vm_start, r.pfns[0], (unsigned long)n << PAGE_SHIFT,
				      vma->vm_page_prot);
		snprintf(r.note, sizeof(r.note), "alloc_pages RAM kept allocated (rc=1)");
		break;
	case 3: { /* MAPS_FREED_PAGE: tail of an order-10 block, freed to buddy */
		int order = FREED_ORDER;

		page = alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);
		if (!page) {
			order = 4;
			page = alloc_pages(GFP_KERNEL, order);
		}
		if (!page || n > (1 << order))
			return -ENOMEM;
		/* the allocator splits a free block from its low end: use the top pages */
		for (i = 0; i < n; i++)
			r.pfns[i] = page_to_pfn(page) + (1 << order) - n + i;
		ret = remap_pfn_range(vma, vma->vm_start, r.pfns[0], (unsigned long)n << PAGE_SHIFT,
				      vma->vm_page_prot);
		__free_pages(page, order);	/* order > costly order: straight to buddy */
		snprintf(r.note, sizeof(r.note), "order-%d block pfn 0x%lx freed after mapping",
			 order, page_to_pfn(page));
		break;
	}
	case 4: /* NONSPECIAL_IN_PFNMAP */
	case 10: /* RESERVED_NORMAL */
		for (i = 0; i < n && !ret; i++) {
			page = alloc_page(GFP_KERNEL | __GFP_ZERO);
			if (!page)
				return -ENOMEM;
			if (mode == 10)
				SetPageReserved(page);
			r.pfns[i] = page_to_pfn(page);
			ret = vm_insert_page(vma, vma->vm_start + ((unsigned long)i << PAGE_SHIFT), page);
			/* the allocation reference is kept: pages never freed */
		}
		if (mode == 4) {
			VMF_CLR(vma, VM_MIXEDMAP);
			VMF_SET(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP);
			snprintf(r.note, sizeof(r.note), "vm_insert_page then MIXEDMAP->PFNMAP|IO");
		} else {
			VMF_CLR(vma, VM_MIXEDMAP);
			snprintf(r.note, sizeof(r.note), "vm_insert_page of PageReserved pages, MIXEDMAP cleared");
		}
		break;
	case 5: /* PFNMAP_AND_MIXEDMAP */
		ret = remap_vga(vma, r.pfns, n);
		VMF_SET(vma, VM_MIXEDMAP);
		snprintf(r.note, sizeof(r.note), "remap_pfn_range then VM_MIXEDMAP set");
		break;
	case 6: /* REFCOUNT_BELOW_MAPCOUNT */
		if (n < 2)
			return -EINVAL;
		page = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!page)
			return -ENOMEM;
		for (i = 0; i < n && !ret; i++) {
			r.pfns[i] = page_to_pfn(page);
			ret = vm_insert_page(vma, vma->vm_start + ((unsigned long)i << PAGE_SHIFT), page);
		}
		/* rc = 1 + n, mc = n: drop two -> rc = n - 1 < mc, never zero */
		put_page(page);
		put_page(page);
		snprintf(r.note, sizeof(r.note), "one page mapped %d times, rc=%d mc=%d", n,
			 page_ref_count(page), atomic_read(&page->_mapcount) + 1);
		break;
	case 7: { /* PFNMAP_NONLINEAR_COW */
		for (i = 0; i < n; i++)
			r.pfns[i] = VGA_PFN + n - 1 - i;
		VMF_SET(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
		vma->vm_pgoff = VGA_PFN;
		ret = set_ptes_raw(vma, r.pfns, n, true, vma->vm_page_prot);
		snprintf(r.note, sizeof(r.note), "special ptes, pfns reversed, vm_pgoff=0x%lx", VGA_PFN);
		break;
	}
	case 8: /* PFN_BEYOND_MEMMAP */
		for (i = 0; i < n; i++)
			r.pfns[i] = BEYOND_PFN + i;
		VMF_SET(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP);
		ret = set_ptes_raw(vma, r.pfns, n, false, pgprot_noncached(vma->vm_page_prot));
		snprintf(r.note, sizeof(r.note), "non-special ptes to pfn 0x%lx (no struct page)",
			 BEYOND_PFN);
		break;
	case 9: /* PFNMAP_WITHOUT_IO */
		ret = remap_vga(vma, r.pfns, n);
		VMF_CLR(vma, VM_IO);
		snprintf(r.note, sizeof(r.note), "remap_pfn_range then VM_IO cleared");
		break;
	case 11: /* PFNMAP_COW_ANON (pages become anon when the user writes) */
		ret = remap_vga(vma, r.pfns, n);
		snprintf(r.note, sizeof(r.note), "COW pfnmap; written pages become anon (case B)");
		break;
	}
	if (ret)
		return ret;
	/*
	 * Make the remap_pfn_range modes linear (vm_pgoff = first pfn, as /dev/mem has),
	 * so that each mode shows only its own finding, not "non-linear non-COW pfnmap".
	 */
	if (mode == 1 || mode == 2 || mode == 3 || mode == 5 || mode == 9)
		vma->vm_pgoff = r.pfns[0];

	r.start = vma->vm_start;
	r.end = vma->vm_end;
	r.flags = vma->vm_flags;
	r.pgoff = vma->vm_pgoff;
	r.npfns = n;
	mutex_lock(&lock);
	if (nrecs < MAX_RECS)
		recs[nrecs++] = r;
	mutex_unlock(&lock);
	pr_info("pfnscope_buggy: mode %lu (%s) at 0x%lx-0x%lx flags 0x%lx\n", mode,
		mode_names[mode], r.start, r.end, r.flags);
	return 0;
}

static ssize_t buggy_read(struct file *file, char __user *buf, size_t len, loff_t *ppos)
{
	size_t cap = MAX_RECS * 512, off = 0;
	char *txt;
	ssize_t ret;
	int i, j;

	txt = kmalloc(cap, GFP_KERNEL);
	if (!txt)
		return -ENOMEM;
	mutex_lock(&lock);
	for (i = 0; i < nrecs && off < cap - 400; i++) {
		struct rec *r = &recs[i];

		off += scnprintf(txt + off, cap - off,
				 "mode=%d name=%s start=0x%lx end=0x%lx flags=0x%lx pgoff=0x%lx pfns=",
				 r->mode, mode_names[r->mode], r->start, r->end, r->flags, r->pgoff);
		for (j = 0; j < r->npfns; j++)
			off += scnprintf(txt + off, cap - off, "%s0x%lx", j ? "," : "", r->pfns[j]);
		off += scnprintf(txt + off, cap - off, " note=%s\n", r->note);
	}
	mutex_unlock(&lock);
	ret = simple_read_from_buffer(buf, len, ppos, txt, off);
	kfree(txt);
	return ret;
}

/*
 * Raw pte of addr in current->mm, walked by hand (follow_pte changed across releases).
 * Before 6.5 under the pte lock (pte_offset_map_lock is inline there); from 6.5 on the
 * pte lock helper (__pte_offset_map_lock) is not exported to modules, so the pte is
 * read locklessly, as GUP-fast does: page tables are freed through RCU since 6.5, and
 * a single 8-byte pte read is atomic on x86-64.  The value is the same either way for
 * the test mappings, which nothing changes once built.
 */
static long buggy_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pfnscope_buggy_pte q;
	struct mm_struct *mm = current->mm;
	pgd_t *pgd; p4d_t *p4d; pud_t *pud; pmd_t *pmd; pte_t *pte;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	pmd_t pmdval;
#else
	spinlock_t *ptl;
#endif

	if (cmd != PFNSCOPE_BUGGY_PTE)
		return -ENOTTY;
	if (copy_from_user(&q, (void __user *)arg, sizeof(q)))
		return -EFAULT;
	q.pte = 0;
	mmap_read_lock(mm);
	pgd = pgd_offset(mm, q.addr);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		goto out;
	p4d = p4d_offset(pgd, q.addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		goto out;
	pud = pud_offset(p4d, q.addr);
	if (pud_none(*pud) || pud_bad(*pud))
		goto out;
	pmd = pmd_offset(pud, q.addr);
	if (pmd_none(*pmd) || pmd_bad(*pmd) || pmd_trans_huge(*pmd))
		goto out;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	rcu_read_lock();
	pmdval = pmdp_get_lockless(pmd);
	if (!pmd_none(pmdval) && !pmd_bad(pmdval) && !pmd_trans_huge(pmdval)) {
		pte = pte_offset_kernel(&pmdval, q.addr);
		q.pte = pte_val(ptep_get(pte));
	}
	rcu_read_unlock();
#else
	pte = pte_offset_map_lock(mm, pmd, q.addr, &ptl);
	if (!pte)
		goto out;
	q.pte = pte_val(*pte);
	pte_unmap_unlock(pte, ptl);
#endif
out:
	mmap_read_unlock(mm);
	if (copy_to_user((void __user *)arg, &q, sizeof(q)))
		return -EFAULT;
	return 0;
}

static const struct file_operations buggy_fops = {
	.owner = THIS_MODULE,
	.mmap = buggy_mmap,
	.read = buggy_read,
	.unlocked_ioctl = buggy_ioctl,
	.llseek = default_llseek,
};

static struct miscdevice buggy_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "pfnscope_buggy",
	.fops = &buggy_fops,
	.mode = 0666,
};

static int __init buggy_init(void)
{
	return misc_register(&buggy_dev);
}

static void __exit buggy_exit(void)
{
	misc_deregister(&buggy_dev);
}

module_init(buggy_init);
module_exit(buggy_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("pfnscope test module: buggy pfnmap page tables (test kernels only)");
