// SPDX-License-Identifier: GPL-2.0
/*
 * pfnscope_kvmbug: a test-only misc device that changes a pte of the calling
 * process WITHOUT the MMU-notifier calls every core-MM path makes
 * (mmu_notifier_invalidate_range_start/end around zap, COW, mprotect...).
 * KVM relies on those to zap its SPTEs (kvm_mmu_notifier_invalidate_range_start),
 * so after this ioctl a VM's SPTE for that hva is stale: the state pfnscope's
 * KVM_STALE_SPTE and KVM_SPTE_WRITABLE_HOST_RO diagnose.  Test kernels only.
 *
 * ioctl(fd, PFNSCOPE_KVMBUG_SET, struct {u64 addr; u64 pfn; u64 flags;}):
 *   the pte at addr (which must be a present pte of a VM_PFNMAP VMA) is
 *   rewritten as a special pte to pfn (flags bit 0) and/or made read-only
 *   (flags bit 1), with apply_to_page_range() (exported on every lab kernel),
 *   which calls no notifier.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/uaccess.h>

struct kvmbug_set { __u64 addr, pfn, flags; };
#define PFNSCOPE_KVMBUG_SET _IOW('Q', 1, struct kvmbug_set)
#define KVMBUG_NEW_PFN 1
#define KVMBUG_READONLY 2

struct ctx { struct kvmbug_set s; struct mm_struct *mm; int done; };

static int set_one(pte_t *ptep, unsigned long addr, void *data)
{
	struct ctx *c = data;
	pte_t old = ptep_get(ptep), pte = old;

	if (!pte_present(old))
		return -ENOENT;
	if (c->s.flags & KVMBUG_NEW_PFN)
		pte = pte_mkspecial(pfn_pte(c->s.pfn, pte_pgprot(old)));
	if (c->s.flags & KVMBUG_READONLY)
		pte = pte_wrprotect(pte);
	/* set_pte_at, not ptep_modify_prot_*: no notifier, deliberately */
	set_pte_at(c->mm, addr, ptep, pte);
	c->done++;
	return 0;
}

static long kvmbug_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ctx c = { .mm = current->mm };
	struct vm_area_struct *vma;
	int ret;

	if (cmd != PFNSCOPE_KVMBUG_SET)
		return -ENOTTY;
	if (copy_from_user(&c.s, (void __user *)arg, sizeof(c.s)))
		return -EFAULT;
	mmap_write_lock(c.mm);
	vma = find_vma(c.mm, c.s.addr);
	if (!vma || vma->vm_start > c.s.addr || !(vma->vm_flags & VM_PFNMAP)) {
		ret = -EINVAL;
	} else {
		ret = apply_to_page_range(c.mm, c.s.addr & PAGE_MASK, PAGE_SIZE, set_one, &c);
		if (!ret && !c.done)
			ret = -ENOENT;
	}
	mmap_write_unlock(c.mm);
	return ret;
}

static const struct file_operations kvmbug_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = kvmbug_ioctl,
};

static struct miscdevice kvmbug_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "pfnscope_kvmbug",
	.fops = &kvmbug_fops,
	.mode = 0600,
};

module_misc_device(kvmbug_dev);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("pfnscope test: change a pte without MMU notifiers (stale KVM SPTEs)");
