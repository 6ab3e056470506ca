// SPDX-License-Identifier: MIT
/*
 * VMAs of an mm_struct: the maple tree mm->mm_mt of 6.1+ (index range
 * [vm_start, vm_end - 1] -> vm_area_struct, as vma_iter_store() writes it)
 * and the sorted vm_next list of <= 6.0 kernels (mm->mmap).  Both walks are
 * bounded and check what validate_mm() (mm/mmap.c) checks, so a corrupted
 * structure ends the walk with an error instead of looping or yielding
 * garbage VMAs.
 */
#include <string.h>
#include "pfnscope/maple.h"
#include "pfnscope/vma.h"

/* A list longer than this is garbage: max_map_count defaults to 65530. */
#define PFS_VMA_LIST_MAX (1u << 24)

static uint64_t get_u64(const unsigned char *buf, int32_t off)
{
	uint64_t v;

	if (off < 0)
		return 0;
	memcpy(&v, buf + off, sizeof(v));
	return v;
}

static int32_t max_off(int32_t a, int32_t b)
{
	return a > b ? a : b;
}

int pfs_vma_read(struct pfs_target *t, uint64_t va, struct pfs_vma *out)
{
	const struct pfs_layout *lo = t->lo;
	unsigned char buf[1024];
	int32_t end = -1;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!pfs_layout_has(lo, vma_vm_start) || !pfs_layout_has(lo, vma_vm_end) || !pfs_layout_has(lo, vma_vm_flags))
		return pfs_target_fail(t, PFS_ELAYOUT, "vm_area_struct layout", va);
	/* One read covering every field we use (the VMA is one slab object). */
	end = max_off(end, lo->vma_vm_start);
	end = max_off(end, lo->vma_vm_end);
	end = max_off(end, lo->vma_vm_flags);
	end = max_off(end, lo->vma_vm_pgoff);
	end = max_off(end, lo->vma_vm_mm);
	end = max_off(end, lo->vma_vm_file);
	end = max_off(end, lo->vma_vm_ops);
	end = max_off(end, lo->vma_vm_private_data);
	end = max_off(end, lo->vma_vm_next);
	if ((size_t)end + 8 > sizeof(buf))
		return pfs_target_fail(t, PFS_ELAYOUT, "vm_area_struct layout", va);
	if (va & 7)
		return pfs_target_fail(t, PFS_ECORRUPT, "vm_area_struct alignment", va);
	ret = pfs_read_kvirt(t, va, buf, (size_t)end + 8);
	if (ret < 0)
		return pfs_target_fail(t, -ret, "vm_area_struct", va);

	out->vma = va;
	out->start = get_u64(buf, lo->vma_vm_start);
	out->end = get_u64(buf, lo->vma_vm_end);
	/* vm_flags: one unsigned long, also when it is the __vm_flags or
	 * vma_flags_t member of a union (6.3+, 7.x) */
	out->vm_flags = get_u64(buf, lo->vma_vm_flags);
	out->pgoff = get_u64(buf, lo->vma_vm_pgoff);
	out->mm = get_u64(buf, lo->vma_vm_mm);
	out->file = get_u64(buf, lo->vma_vm_file);
	out->ops = get_u64(buf, lo->vma_vm_ops);
	out->private_data = get_u64(buf, lo->vma_vm_private_data);
	/* vm_start < vm_end, both page aligned: what every VMA of a live mm
	 * satisfies (validate_mm / vma_complete); anything else is not a VMA */
	if (out->start >= out->end || ((out->start | out->end) & (PFS_PAGE_SIZE - 1)))
		return pfs_target_fail(t, PFS_ECORRUPT, "vm_area_struct range", va);

	/* Optional vm_ops members: a read failure only leaves them 0. */
	if (out->ops) {
		if (pfs_layout_has(lo, vmops_access) &&
		    pfs_read_kvirt_u64(t, out->ops + (uint64_t)lo->vmops_access,
				       &out->vm_ops_access) < 0)
			out->vm_ops_access = 0;
		if (pfs_layout_has(lo, vmops_find_special_page) &&
		    pfs_read_kvirt_u64(t, out->ops + (uint64_t)lo->vmops_find_special_page,
				       &out->vm_ops_find_special_page) < 0)
			out->vm_ops_find_special_page = 0;
	}
	return 0;
}

/* Kernel pointers are 8-byte aligned and never small or internal xarray
 * entries (the tree may hold XA_ZERO_ENTRY after a failed fork). */
static int plausible_ptr(uint64_t p)
{
	return p > 4096 && (p & 7) == 0;
}

struct maple_vma_ctx {
	struct pfs_target *t;
	uint64_t mm;
	pfs_vma_cb cb;
	void *arg;
	int err;
	/* pfs_find_vma: stop at the VMA holding addr */
	int find;
	uint64_t addr;
	struct pfs_vma *found;
};

/* One maple entry -> one VMA, checked as validate_mm() checks each:
 * vm_start == mas.index and vm_end - 1 == mas.last ("vma: range mismatch"). */
static int maple_vma_visit(uint64_t first, uint64_t last, uint64_t entry, void *arg)
{
	struct maple_vma_ctx *c = arg;
	struct pfs_vma v;
	int ret;

	if (!plausible_ptr(entry)) {
		c->err = pfs_target_fail(c->t, PFS_ECORRUPT, "maple entry is not a VMA", entry);
		return 1;
	}
	ret = pfs_vma_read(c->t, entry, &v);
	if (ret < 0) {
		c->err = ret;
		return 1;
	}
	if (v.start != first || v.end - 1 != last) {
		c->err = pfs_target_fail(c->t, PFS_ECORRUPT, "VMA range mismatch with mm_mt", entry);
		return 1;
	}
	return c->cb(&v, c->arg);
}

/* *val = the pointer at mm + off, which the layout has (known) or not:
 * -PFS_ELAYOUT naming layout_what, or the read's error naming what. */
static int mm_read_ptr(struct pfs_target *t, uint64_t mm, int known, uint64_t off,
		       const char *layout_what, const char *what, uint64_t *val)
{
	int ret;

	if (!known)
		return pfs_target_fail(t, PFS_ELAYOUT, layout_what, mm);
	ret = pfs_read_kvirt_u64(t, mm + off, val);
	if (ret < 0)
		return pfs_target_fail(t, -ret, what, mm);
	return 0;
}

static int mm_ma_root(struct pfs_target *t, uint64_t mm, uint64_t *root)
{
	const struct pfs_layout *lo = t->lo;

	return mm_read_ptr(t, mm, pfs_layout_has(lo, mm_mm_mt) && pfs_layout_has(lo, maple_tree_ma_root),
			   (uint64_t)lo->mm_mm_mt + (uint64_t)lo->maple_tree_ma_root,
			   "mm_struct.mm_mt layout", "mm_struct.mm_mt.ma_root", root);
}

/* <= 6.0: mm->mmap, sorted by address through vm_next.  We require what
 * validate_mm() requires: each VMA starts at or above the previous vm_end.
 * Strictly increasing VMAs cannot revisit one another, so a loop is caught
 * the moment it links back: to itself (-PFS_ELOOP) or to any earlier VMA
 * (out of order, -PFS_ECORRUPT).  The length cap is a last resort. */
static int list_for_each_vma(struct pfs_target *t, uint64_t mm, pfs_vma_cb cb, void *arg)
{
	const struct pfs_layout *lo = t->lo;
	uint64_t cur, prev_end = 0, count = 0;
	int ret;

	ret = mm_read_ptr(t, mm, pfs_layout_has(lo, vma_vm_next), (uint64_t)lo->mm_mmap,
			  "vm_area_struct.vm_next layout", "mm_struct.mmap", &cur);
	if (ret < 0)
		return ret;
	while (cur) {
		struct pfs_vma v;
		uint64_t next;

		if (++count > PFS_VMA_LIST_MAX)
			return pfs_target_fail(t, PFS_ELOOP, "vm_next list length", cur);
		ret = pfs_vma_read(t, cur, &v);
		if (ret < 0)
			return ret;
		if (pfs_layout_has(lo, vma_vm_mm) && v.mm != mm)
			return pfs_target_fail(t, PFS_ECORRUPT, "VMA of another mm in vm_next list", cur);
		if (count > 1 && v.start < prev_end)
			return pfs_target_fail(t, PFS_ECORRUPT, "vm_next list out of order", cur);
		prev_end = v.end;
		ret = cb(&v, arg);
		if (ret)
			return ret;
		ret = pfs_read_kvirt_u64(t, cur + (uint64_t)lo->vma_vm_next, &next);
		if (ret < 0)
			return pfs_target_fail(t, -ret, "vm_area_struct.vm_next", cur);
		if (next == cur)
			return pfs_target_fail(t, PFS_ELOOP, "vm_next points to itself", next);
		cur = next;
	}
	return 0;
}

int pfs_for_each_vma(struct pfs_target *t, uint64_t mm, pfs_vma_cb cb, void *arg)
{
	struct maple_vma_ctx c = { .t = t, .mm = mm, .cb = cb, .arg = arg };
	uint64_t root;
	int ret;

	if (pfs_layout_has(t->lo, mm_mmap))
		return list_for_each_vma(t, mm, cb, arg);
	ret = mm_ma_root(t, mm, &root);
	if (ret < 0)
		return ret;
	/* for_each_vma() (include/linux/mm.h): every entry of mm_mt, in
	 * address order */
	ret = pfs_maple_for_each(t, root, 0, UINT64_MAX, maple_vma_visit, &c);
	if (c.err)
		return c.err;
	return ret;
}

struct list_find_ctx {
	uint64_t addr;
	struct pfs_vma *out;
};

static int list_find_visit(const struct pfs_vma *v, void *arg)
{
	struct list_find_ctx *c = arg;

	if (v->end <= c->addr)
		return 0;
	if (v->start <= c->addr) {
		*c->out = *v;
		return 1;
	}
	return 2;   /* sorted list: nothing further can hold addr */
}

int pfs_find_vma(struct pfs_target *t, uint64_t mm, uint64_t addr, struct pfs_vma *out)
{
	uint64_t root, first, last, entry;
	int ret;

	memset(out, 0, sizeof(*out));
	if (pfs_layout_has(t->lo, mm_mmap)) {
		struct list_find_ctx c = { .addr = addr, .out = out };

		ret = list_for_each_vma(t, mm, list_find_visit, &c);
		if (ret < 0)
			return ret;
		return ret == 1 ? 0 : -PFS_ENOENT;
	}
	ret = mm_ma_root(t, mm, &root);
	if (ret < 0)
		return ret;
	/* mtree_load(&mm->mm_mt, addr): the VMA whose range holds addr */
	ret = pfs_maple_load(t, root, addr, &first, &last, &entry);
	if (ret < 0)
		return ret;
	if (entry == 0)
		return -PFS_ENOENT;
	if (!plausible_ptr(entry))
		return pfs_target_fail(t, PFS_ECORRUPT, "maple entry is not a VMA", entry);
	ret = pfs_vma_read(t, entry, out);
	if (ret < 0)
		return ret;
	if (out->start != first || out->end - 1 != last)
		return pfs_target_fail(t, PFS_ECORRUPT, "VMA range mismatch with mm_mt", entry);
	return 0;
}

int pfs_mm_pgd_phys(struct pfs_target *t, uint64_t mm, uint64_t *pgd_pa)
{
	const struct pfs_layout *lo = t->lo;
	uint64_t pgd, dm_size;
	int ret;

	ret = mm_read_ptr(t, mm, pfs_layout_has(lo, mm_pgd), (uint64_t)lo->mm_pgd,
			  "mm_struct.pgd layout", "mm_struct.pgd", &pgd);
	if (ret < 0)
		return ret;
	/* pgd_alloc() (arch/x86/mm/pgtable.c) takes the table from the page
	 * allocator, so mm->pgd is a direct-map address: __pa() is a
	 * subtraction.  Anything else goes through the kernel's page tables. */
	dm_size = lo->max_physmem_bits ? 1ull << lo->max_physmem_bits : 1ull << 46;
	if (lo->arch == PFS_ARCH_ARM64) {
		/* arm64 __pa() adds PHYS_OFFSET: the arch's kernel translation
		 * does the linear-map arithmetic (__lm_to_phys) */
		ret = pfs_kvirt_to_phys(t, pgd, pgd_pa, NULL);
		if (ret < 0)
			return pfs_target_fail(t, -ret, "mm_struct.pgd translation", pgd);
	} else if (lo->page_offset_base && pgd >= lo->page_offset_base &&
	    pgd - lo->page_offset_base < dm_size) {
		*pgd_pa = pgd - lo->page_offset_base;
	} else {
		ret = pfs_kvirt_to_phys(t, pgd, pgd_pa, NULL);
		if (ret < 0)
			return pfs_target_fail(t, -ret, "mm_struct.pgd translation", pgd);
	}
	/* arm64 with 52-bit VAs: PGD_SIZE = PTRS_PER_PGD * 8 = 128 bytes, from
	 * pgd_cache aligned to PGD_SIZE (arch/arm64/mm/pgd.c pgd_alloc) */
	uint64_t align = lo->arch == PFS_ARCH_ARM64 && lo->va_bits == 52 ? 128 : PFS_PAGE_SIZE;
	if (*pgd_pa & (align - 1))
		return pfs_target_fail(t, PFS_ECORRUPT, "mm_struct.pgd alignment", pgd);
	return 0;
}
