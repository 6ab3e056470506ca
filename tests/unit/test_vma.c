/* SPDX-License-Identifier: MIT */
/* VMA iteration and lookup (vma.c): maple tree (6.1+) and vm_next list */
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "mock_mm.h"
#include "pfnscope/vma.h"

struct vlist {
	unsigned n;
	struct pfs_vma v[512];
	int stop_after;
};

static int collect_vma(const struct pfs_vma *v, void *arg)
{
	struct vlist *l = arg;
	if (l->n < 512)
		l->v[l->n] = *v;
	l->n++;
	return l->stop_after && (int)l->n == l->stop_after ? 9 : 0;
}

/* n real VMAs of mm (3 pages, 1-page gaps from 0x10000000) in a maple tree */
static uint64_t maple_mm(struct mock_kernel *k, unsigned n, uint64_t (**out)[3])
{
	uint64_t mm = mm_mm_alloc(k);
	uint64_t (*v)[3] = calloc(n, sizeof(*v));
	for (unsigned i = 0; i < n; i++) {
		v[i][0] = 0x10000000ull + (uint64_t)i * 0x4000;
		v[i][1] = v[i][0] + 0x3000;
		v[i][2] = mm_vma(k, mm, v[i][0], v[i][1], PFS_VM_READ | (i % 2 ? PFS_VM_WRITE : 0));
	}
	mm_set_ma_root(k, mm, mm_build_tree(k, (const uint64_t (*)[3])v, n, 16, PFS_MAPLE_ARANGE_64, 10));
	*out = v;
	return mm;
}

static void maple_vmas(int levels, unsigned major, unsigned minor)
{
	struct mock_kernel k;
	mock_kernel_init(&k, levels, major, minor);
	uint64_t (*v)[3];
	unsigned n = 200;
	uint64_t mm = maple_mm(&k, n, &v);
	struct vlist *l = calloc(1, sizeof(*l));

	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), 0);
	CHECK_EQ(l->n, n);
	for (unsigned i = 0; i < n && i < l->n; i++) {
		CHECK_EQ(l->v[i].vma, v[i][2]);
		CHECK_EQ(l->v[i].start, v[i][0]);
		CHECK_EQ(l->v[i].end, v[i][1]);
		CHECK_EQ(l->v[i].mm, mm);
		CHECK_EQ(l->v[i].pgoff, v[i][0] >> 12);
		CHECK_EQ(l->v[i].vm_flags, PFS_VM_READ | (i % 2 ? PFS_VM_WRITE : 0));
	}
	memset(l, 0, sizeof(*l));
	l->stop_after = 3;
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), 9);
	CHECK_EQ(l->n, 3);

	/* find_vma: hits at start, middle, last byte; misses in gaps and outside */
	struct pfs_vma f;
	for (unsigned i = 0; i < n; i += 17) {
		CHECK_EQ(pfs_find_vma(&k.t, mm, v[i][0], &f), 0);
		CHECK_EQ(f.vma, v[i][2]);
		CHECK_EQ(pfs_find_vma(&k.t, mm, v[i][0] + 0x1234, &f), 0);
		CHECK_EQ(f.start, v[i][0]);
		CHECK_EQ(pfs_find_vma(&k.t, mm, v[i][1] - 1, &f), 0);
		CHECK_EQ(f.end, v[i][1]);
		CHECK_EQ(pfs_find_vma(&k.t, mm, v[i][1], &f), -PFS_ENOENT);
	}
	CHECK_EQ(pfs_find_vma(&k.t, mm, 0, &f), -PFS_ENOENT);
	CHECK_EQ(pfs_find_vma(&k.t, mm, 0x0fffffff, &f), -PFS_ENOENT);
	CHECK_EQ(pfs_find_vma(&k.t, mm, v[n - 1][1] + 0x100000, &f), -PFS_ENOENT);
	CHECK_EQ(pfs_find_vma(&k.t, mm, UINT64_MAX, &f), -PFS_ENOENT);

	/* an empty mm */
	uint64_t mm0 = mm_mm_alloc(&k);
	l->n = 0;
	l->stop_after = 0;
	CHECK_EQ(pfs_for_each_vma(&k.t, mm0, collect_vma, l), 0);
	CHECK_EQ(l->n, 0);
	CHECK_EQ(pfs_find_vma(&k.t, mm0, 0x10000000, &f), -PFS_ENOENT);
	free(l);
	free(v);
	mock_kernel_fini(&k);
}

TEST(vma_maple_4level_6_1) { maple_vmas(4, 6, 1); }
TEST(vma_maple_5level_6_12) { maple_vmas(5, 6, 12); }

TEST(vma_read_fields_and_vm_ops)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t mm = mm_mm_alloc(&k);
	uint64_t v = mm_vma(&k, mm, 0x7f0000000000ull, 0x7f0000010000ull,
			    PFS_VM_READ | PFS_VM_SHARED | PFS_VM_IO | PFS_VM_PFNMAP);
	uint64_t ops = mock_kalloc(&k, 256);
	mock_write_kva_u64(&k, ops + (uint64_t)k.lo.vmops_access, 0xffffffff81234560ull);
	mock_write_kva_u64(&k, v + (uint64_t)k.lo.vma_vm_ops, ops);
	mock_write_kva_u64(&k, v + (uint64_t)k.lo.vma_vm_file, 0xffff888123456000ull);
	mock_write_kva_u64(&k, v + (uint64_t)k.lo.vma_vm_pgoff, 0xfd000);
	mock_write_kva_u64(&k, v + (uint64_t)k.lo.vma_vm_private_data, 0x77);
	struct pfs_vma r;
	CHECK_EQ(pfs_vma_read(&k.t, v, &r), 0);
	CHECK_EQ(r.vma, v);
	CHECK_EQ(r.start, 0x7f0000000000ull);
	CHECK_EQ(r.end, 0x7f0000010000ull);
	CHECK_EQ(r.vm_flags, PFS_VM_READ | PFS_VM_SHARED | PFS_VM_IO | PFS_VM_PFNMAP);
	CHECK_EQ(r.pgoff, 0xfd000);
	CHECK_EQ(r.file, 0xffff888123456000ull);
	CHECK_EQ(r.ops, ops);
	CHECK_EQ(r.private_data, 0x77);
	CHECK_EQ(r.vm_ops_access, 0xffffffff81234560ull);
	CHECK_EQ(r.vm_ops_find_special_page, 0);
	/* an unreadable vm_ops leaves the members 0, the VMA still reads */
	mock_write_kva_u64(&k, v + (uint64_t)k.lo.vma_vm_ops, 0xffffc90000001000ull);
	CHECK_EQ(pfs_vma_read(&k.t, v, &r), 0);
	CHECK_EQ(r.vm_ops_access, 0);
	/* garbage: start >= end, unaligned, unmapped */
	mock_write_kva_u64(&k, v + (uint64_t)k.lo.vma_vm_end, 0x7f0000000000ull);
	CHECK_EQ(pfs_vma_read(&k.t, v, &r), -PFS_ECORRUPT);
	mock_write_kva_u64(&k, v + (uint64_t)k.lo.vma_vm_end, 0x7f0000000123ull);
	CHECK_EQ(pfs_vma_read(&k.t, v, &r), -PFS_ECORRUPT);
	CHECK_EQ(pfs_vma_read(&k.t, 0xffffc90000002000ull, &r), -PFS_EFAULT);
	CHECK_EQ(pfs_vma_read(&k.t, v + 4, &r), -PFS_ECORRUPT);
	mock_kernel_fini(&k);
}

TEST(vma_maple_corrupt_entries)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	uint64_t (*v)[3];
	unsigned n = 40;
	uint64_t mm = maple_mm(&k, n, &v);
	struct vlist *l = calloc(1, sizeof(*l));
	struct pfs_vma f;

	/* a VMA whose vm_end disagrees with the tree (validate_mm's check) */
	mock_write_kva_u64(&k, v[5][2] + (uint64_t)k.lo.vma_vm_end, v[5][1] + 0x1000);
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), -PFS_ECORRUPT);
	CHECK_EQ(l->n, 5);
	CHECK_EQ(k.t.error.address, v[5][2]);
	CHECK_EQ(pfs_find_vma(&k.t, mm, v[5][0], &f), -PFS_ECORRUPT);
	CHECK_EQ(pfs_find_vma(&k.t, mm, v[6][0], &f), 0);
	mock_write_kva_u64(&k, v[5][2] + (uint64_t)k.lo.vma_vm_end, v[5][1]);

	/* tree entries that are not VMAs: XA_ZERO_ENTRY is skipped (a failed
	 * fork leaves it), a small value is corruption */
	v[7][2] = PFS_XA_ZERO_ENTRY;
	mm_set_ma_root(&k, mm, mm_build_tree(&k, (const uint64_t (*)[3])v, n, 16, PFS_MAPLE_ARANGE_64, 10));
	l->n = 0;
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), 0);
	CHECK_EQ(l->n, n - 1);
	CHECK_EQ(pfs_find_vma(&k.t, mm, v[7][0], &f), -PFS_ENOENT);
	v[7][2] = 0x1234;
	mm_set_ma_root(&k, mm, mm_build_tree(&k, (const uint64_t (*)[3])v, n, 16, PFS_MAPLE_ARANGE_64, 10));
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), -PFS_ECORRUPT);
	CHECK_EQ(pfs_find_vma(&k.t, mm, v[7][0], &f), -PFS_ECORRUPT);
	/* the mm itself unreadable */
	CHECK_EQ(pfs_for_each_vma(&k.t, 0xffffc90000004000ull, collect_vma, l), -PFS_EFAULT);
	free(l);
	free(v);
	mock_kernel_fini(&k);
}

/* <= 6.0: mm->mmap and vm_next */
static uint64_t list_mm(struct mock_kernel *k, unsigned n, uint64_t *vma)
{
	mm_use_list_layout(k);
	uint64_t mm = mm_mm_alloc(k);
	for (unsigned i = 0; i < n; i++)
		vma[i] = mm_vma(k, mm, 0x400000ull + i * 0x10000ull, 0x408000ull + i * 0x10000ull,
				PFS_VM_READ);
	mm_link_list(k, mm, vma, n);
	return mm;
}

static void list_vmas(int levels)
{
	struct mock_kernel k;
	mock_kernel_init(&k, levels, 5, 15);
	uint64_t vma[12];
	uint64_t mm = list_mm(&k, 12, vma);
	struct vlist *l = calloc(1, sizeof(*l));
	struct pfs_vma f;

	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), 0);
	CHECK_EQ(l->n, 12);
	for (unsigned i = 0; i < 12 && i < l->n; i++) {
		CHECK_EQ(l->v[i].vma, vma[i]);
		CHECK_EQ(l->v[i].start, 0x400000ull + i * 0x10000ull);
	}
	CHECK_EQ(pfs_find_vma(&k.t, mm, 0x400000, &f), 0);
	CHECK_EQ(f.vma, vma[0]);
	CHECK_EQ(pfs_find_vma(&k.t, mm, 0x4b7fff, &f), 0);
	CHECK_EQ(f.vma, vma[11]);
	CHECK_EQ(pfs_find_vma(&k.t, mm, 0x408000, &f), -PFS_ENOENT);
	CHECK_EQ(pfs_find_vma(&k.t, mm, 0x3fffff, &f), -PFS_ENOENT);
	CHECK_EQ(pfs_find_vma(&k.t, mm, 0x7fff00000000ull, &f), -PFS_ENOENT);

	/* the last VMA links back to the first: a loop that goes back */
	mock_write_kva_u64(&k, vma[11] + (uint64_t)k.lo.vma_vm_next, vma[0]);
	l->n = 0;
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), -PFS_ECORRUPT);
	CHECK_EQ(l->n, 12);
	/* a loop to the middle */
	mock_write_kva_u64(&k, vma[11] + (uint64_t)k.lo.vma_vm_next, vma[5]);
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), -PFS_ECORRUPT);
	CHECK_EQ(pfs_find_vma(&k.t, mm, 0x7fff00000000ull, &f), -PFS_ECORRUPT);
	/* a VMA linked to itself */
	mock_write_kva_u64(&k, vma[11] + (uint64_t)k.lo.vma_vm_next, vma[11]);
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), -PFS_ELOOP);
	mock_write_kva_u64(&k, vma[0] + (uint64_t)k.lo.vma_vm_next, vma[0]);
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), -PFS_ELOOP);
	mock_write_kva_u64(&k, vma[0] + (uint64_t)k.lo.vma_vm_next, vma[1]);
	/* a link into unmapped memory */
	mock_write_kva_u64(&k, vma[11] + (uint64_t)k.lo.vma_vm_next, 0xffffc90000008000ull);
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), -PFS_EFAULT);
	/* a VMA of another mm */
	mock_write_kva_u64(&k, vma[11] + (uint64_t)k.lo.vma_vm_next, 0);
	mock_write_kva_u64(&k, vma[3] + (uint64_t)k.lo.vma_vm_mm, mm + 4096);
	CHECK_EQ(pfs_for_each_vma(&k.t, mm, collect_vma, l), -PFS_ECORRUPT);
	free(l);
	mock_kernel_fini(&k);
}

TEST(vma_list_4level) { list_vmas(4); }
TEST(vma_list_5level) { list_vmas(5); }

TEST(vma_mm_pgd_phys)
{
	for (int levels = 4; levels <= 5; levels++) {
		struct mock_kernel k;
		mock_kernel_init(&k, levels, 6, 1);
		uint64_t mm = mm_mm_alloc(&k);
		uint64_t pgd = mock_user_pgd(&k), pa;
		mock_write_kva_u64(&k, mm + (uint64_t)k.lo.mm_pgd, mock_direct_va(&k, pgd));
		CHECK_EQ(pfs_mm_pgd_phys(&k.t, mm, &pa), 0);
		CHECK_EQ(pa, pgd);
		/* init_mm.pgd = swapper_pg_dir: a kernel-image address */
		mock_write_kva_u64(&k, mm + (uint64_t)k.lo.mm_pgd, k.lo.init_top_pgt);
		CHECK_EQ(pfs_mm_pgd_phys(&k.t, mm, &pa), 0);
		CHECK_EQ(pa, k.top_pgt_pa);
		/* not page aligned, not mapped */
		mock_write_kva_u64(&k, mm + (uint64_t)k.lo.mm_pgd, mock_direct_va(&k, pgd) + 8);
		CHECK_EQ(pfs_mm_pgd_phys(&k.t, mm, &pa), -PFS_ECORRUPT);
		mock_write_kva_u64(&k, mm + (uint64_t)k.lo.mm_pgd, 0xffffc90000000000ull);
		CHECK_EQ(pfs_mm_pgd_phys(&k.t, mm, &pa), -PFS_EFAULT);
		mock_kernel_fini(&k);
	}
}
