/* SPDX-License-Identifier: MIT */
/* consumer verdicts (consumer.c), cases A, B, C of docs/diagnoses.md */
#include <string.h>
#include "runner.h"
#include "pfnscope/consumer.h"
#include "pfnscope/vnp.h"

#define RAM 0x1000ull
#define MMIO 0x9000000ull
#define ZERO 0x2c00ull

static struct pfs_layout L(unsigned maj, unsigned min)
{
	struct pfs_layout lo;
	pfs_layout_init(&lo);
	pfs_layout_set_version(&lo, maj, min, 0);
	lo.highest_memmap_pfn = 0x43ffff;
	lo.zero_pfn = ZERO;
	return lo;
}

static struct pfs_vma V(uint64_t flags, uint64_t access)
{
	struct pfs_vma v;
	memset(&v, 0, sizeof(v));
	v.start = 0x7f0000000000ull;
	v.end = v.start + (1ull << 20);
	v.vm_flags = flags;
	v.pgoff = MMIO;
	v.vm_ops_access = access;
	return v;
}

/* page facts: state, bits, folio refcount, own refcount */
static struct pfs_entry E(const struct pfs_layout *lo, const struct pfs_vma *v, unsigned kind, uint64_t pfn,
			  uint32_t bits, unsigned pstate, uint32_t pbits, int rc, int own_rc)
{
	struct pfs_entry e;
	memset(&e, 0, sizeof(e));
	e.addr = v->start;
	e.kind = (uint8_t)kind;
	e.pfn = pfn;
	e.bits = bits;
	e.page.state = (uint8_t)pstate;
	e.page.bits = pbits;
	e.page.refcount = rc;
	e.page.page_refcount = own_rc;
	e.page.mapcount = 1;
	pfs_vnp(lo, v, &e, pstate != PFS_PAGE_INVALID);
	pfs_consumers(lo, v, &e);
	return e;
}

static void expect(const struct pfs_entry *e, const unsigned want[PFS_C__COUNT], int line)
{
	for (unsigned c = 0; c < PFS_C__COUNT; c++)
		if (e->consumers[c] != want[c]) {
			fprintf(stderr, "test_consumer.c:%d: %s: got %s, want %s\n", line, pfs_consumer_name(c),
				pfs_consumer_verdict_name(e->consumers[c]), pfs_consumer_verdict_name(want[c]));
			test_failures++;
		}
}
#define EXPECT(e, ...) do { const unsigned _w[PFS_C__COUNT] = { __VA_ARGS__ }; expect(&(e), _w, __LINE__); } while (0)

#define SHARED_PFNMAP (PFS_VM_READ | PFS_VM_SHARED | PFS_VM_MAYSHARE | PFS_VM_MAYREAD | PFS_VM_IO | PFS_VM_PFNMAP)
#define COW_PFNMAP (PFS_VM_READ | PFS_VM_MAYREAD | PFS_VM_MAYWRITE | PFS_VM_IO | PFS_VM_PFNMAP)
#define ANON (PFS_VM_READ | PFS_VM_WRITE | PFS_VM_MAYREAD | PFS_VM_MAYWRITE)
#define OK PFS_PAGE_OK
#define INV PFS_PAGE_INVALID
#define P PFS_KIND_PRESENT
#define S PFS_E_SPECIAL
/* order: gup_fast, gup, follow_pte, kvm, vfio, access_process_vm */

TEST(consumers_case_A_mmio_pfnmap)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma v = V(SHARED_PFNMAP, 0xffffffff81234560ull);   /* /dev/mem: generic_access_phys */
	struct pfs_entry e = E(&lo, &v, P, MMIO, S, INV, 0, 0, 0);
	EXPECT(e, PFS_CV_FALLBACK, PFS_CV_EFAULT, PFS_CV_PFN, PFS_CV_PFN, PFS_CV_PFN, PFS_CV_PFN);
	/* reserved RAM below 1 MiB through /dev/mem: vfio accepts, no KVM ref */
	e = E(&lo, &v, P, 0x10, S, OK, PFS_PG_RESERVED, 1, 1);
	EXPECT(e, PFS_CV_FALLBACK, PFS_CV_EFAULT, PFS_CV_PFN, PFS_CV_PFN, PFS_CV_PFN, PFS_CV_PFN);
	/* [vvar]: no ->access */
	struct pfs_vma vvar = V(SHARED_PFNMAP, 0);
	e = E(&lo, &vvar, P, MMIO, S, INV, 0, 0, 0);
	CHECK_EQ(e.consumers[PFS_C_ACCESS_PROCESS_VM], PFS_CV_EFAULT);
	/* not present in a pfnmap: GUP refuses the VMA, the others fault it in */
	e = E(&lo, &v, PFS_KIND_NONE, PFS_NO_PFN, 0, PFS_PAGE_NONE, 0, 0, 0);
	EXPECT(e, PFS_CV_FALLBACK, PFS_CV_EFAULT, PFS_CV_EFAULT, PFS_CV_FAULT_IN, PFS_CV_FAULT_IN, PFS_CV_EFAULT);
}

TEST(consumers_case_B_cow_anon_in_pfnmap)
{
	static const struct { unsigned maj, min, kvm; } c[] = {
		{ 5, 4, PFS_CV_PFN_REF }, { 5, 15, PFS_CV_PFN_REF }, { 6, 1, PFS_CV_PFN_REF },
		{ 6, 12, PFS_CV_PFN_REF }, { 6, 13, PFS_CV_PFN }, { 7, 2, PFS_CV_PFN },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct pfs_layout lo = L(c[i].maj, c[i].min);
		struct pfs_vma v = V(COW_PFNMAP, 0xffffffff81234560ull);
		struct pfs_entry e = E(&lo, &v, P, RAM, 0, OK, PFS_PG_ANON, 1, 1);
		CHECK_EQ(e.normal_page, 1);
		/* GUP-fast succeeds (it never looks at the VMA), slow GUP refuses */
		EXPECT(e, PFS_CV_PAGE, PFS_CV_EFAULT, PFS_CV_PFN, PFS_CV_PAGE, PFS_CV_EFAULT, PFS_CV_EFAULT);
		/* when GUP-fast is not tried or fails (refcount frozen), KVM
		 * goes to hva_to_pfn_remapped: refs the anon page until 6.13 */
		e = E(&lo, &v, P, RAM, 0, OK, PFS_PG_ANON, 0, 1);
		CHECK_EQ(e.consumers[PFS_C_GUP_FAST], PFS_CV_FALLBACK);
		CHECK_EQ(e.consumers[PFS_C_KVM], c[i].kvm);
	}
}

TEST(consumers_case_C_special_over_ram)
{
	struct pfs_vma v = V(SHARED_PFNMAP, 0);
	/* head page rc 1 */
	static const struct { unsigned maj, min, kvm_head, kvm_tail; } c[] = {
		{ 5, 4, PFS_CV_PFN_REF, PFS_CV_PFN_REF },   /* get_page on a tail: no check */
		{ 5, 15, PFS_CV_PFN_REF, PFS_CV_EFAULT },   /* get_page_unless_zero */
		{ 6, 1, PFS_CV_PFN_REF, PFS_CV_EFAULT },
		{ 6, 13, PFS_CV_PFN, PFS_CV_PFN },
	};
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct pfs_layout lo = L(c[i].maj, c[i].min);
		struct pfs_entry e = E(&lo, &v, P, RAM, S, OK, PFS_PG_HEAD, 2, 2);
		EXPECT(e, PFS_CV_FALLBACK, PFS_CV_EFAULT, PFS_CV_PFN, c[i].kvm_head, PFS_CV_EFAULT, PFS_CV_EFAULT);
		e = E(&lo, &v, P, RAM + 1, S, OK, PFS_PG_TAIL, 2, 0);
		CHECK_EQ(e.consumers[PFS_C_KVM], c[i].kvm_tail);
	}
	/* 6.0-6.12: the zero page and ZONE_DEVICE are refcounted although reserved */
	struct pfs_layout lo = L(6, 1);
	struct pfs_entry e = E(&lo, &v, P, ZERO, S, OK, PFS_PG_RESERVED | PFS_PG_ZERO, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_KVM], PFS_CV_PFN_REF);
	e = E(&lo, &v, P, RAM, S, OK, PFS_PG_RESERVED | PFS_PG_ZONE_DEVICE, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_KVM], PFS_CV_PFN_REF);
	e = E(&lo, &v, P, RAM, S, OK, PFS_PG_RESERVED, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_KVM], PFS_CV_PFN);
	/* 5.15: reserved -> no ref */
	lo = L(5, 15);
	e = E(&lo, &v, P, RAM, S, OK, PFS_PG_RESERVED, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_KVM], PFS_CV_PFN);
	/* 5.4: page facts unknown (no page decode): judged by highest_memmap */
	lo = L(5, 4);
	e = E(&lo, &v, P, RAM, S, PFS_PAGE_NONE, 0, 0, 0);
	CHECK_EQ(e.consumers[PFS_C_KVM], PFS_CV_PFN_REF);
	e = E(&lo, &v, P, MMIO, S, PFS_PAGE_NONE, 0, 0, 0);
	CHECK_EQ(e.consumers[PFS_C_KVM], PFS_CV_PFN);
}

TEST(consumers_ordinary_memory)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma anon = V(ANON, 0);
	struct pfs_entry e = E(&lo, &anon, P, RAM, 0, OK, PFS_PG_ANON, 1, 1);
	EXPECT(e, PFS_CV_PAGE, PFS_CV_PAGE, PFS_CV_PFN, PFS_CV_PAGE, PFS_CV_PAGE, PFS_CV_PAGE);
	/* the zero page: special on x86, GUP-fast bails, GUP returns ZERO_PAGE */
	e = E(&lo, &anon, P, ZERO, S, OK, PFS_PG_RESERVED | PFS_PG_ZERO, 1, 1);
	EXPECT(e, PFS_CV_FALLBACK, PFS_CV_ZERO_PAGE, PFS_CV_PFN, PFS_CV_ZERO_PAGE, PFS_CV_ZERO_PAGE,
	       PFS_CV_ZERO_PAGE);
	/* swap / migration: faulted in */
	e = E(&lo, &anon, PFS_KIND_SWAP, PFS_NO_PFN, 0, PFS_PAGE_NONE, 0, 0, 0);
	EXPECT(e, PFS_CV_FALLBACK, PFS_CV_FAULT_IN, PFS_CV_EFAULT, PFS_CV_FAULT_IN, PFS_CV_FAULT_IN,
	       PFS_CV_FAULT_IN);
	e = E(&lo, &anon, PFS_KIND_MIGRATION, RAM, 0, OK, 0, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_GUP], PFS_CV_FAULT_IN);
	/* hwpoison: -EHWPOISON */
	e = E(&lo, &anon, PFS_KIND_HWPOISON, RAM, 0, OK, 0, 1, 1);
	EXPECT(e, PFS_CV_FALLBACK, PFS_CV_EFAULT, PFS_CV_EFAULT, PFS_CV_EFAULT, PFS_CV_EFAULT, PFS_CV_EFAULT);
	/* NUMA hinting protnone: faulted in; PROT_NONE VMA: refused */
	e = E(&lo, &anon, PFS_KIND_PROTNONE, RAM, 0, OK, PFS_PG_ANON, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_GUP_FAST], PFS_CV_FALLBACK);
	CHECK_EQ(e.consumers[PFS_C_GUP], PFS_CV_FAULT_IN);
	CHECK_EQ(e.consumers[PFS_C_FOLLOW_PTE], PFS_CV_PFN);
	struct pfs_vma none = V(PFS_VM_MAYREAD | PFS_VM_MAYWRITE, 0);
	e = E(&lo, &none, PFS_KIND_PROTNONE, RAM, 0, OK, PFS_PG_ANON, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_GUP], PFS_CV_EFAULT);
	struct pfs_vma noread = V(0, 0);
	e = E(&lo, &noread, P, RAM, 0, OK, PFS_PG_ANON, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_GUP], PFS_CV_EFAULT);
	/* a freed page (refcount 0) under a normal pte: GUP cannot grab it */
	e = E(&lo, &anon, P, RAM, 0, OK, 0, 0, 0);
	CHECK_EQ(e.consumers[PFS_C_GUP_FAST], PFS_CV_FALLBACK);
	CHECK_EQ(e.consumers[PFS_C_GUP], PFS_CV_EFAULT);
	/* DAX devmap: GUP-fast takes the dev_pagemap path */
	e = E(&lo, &anon, P, RAM, S | PFS_E_DEVMAP, OK, PFS_PG_ZONE_DEVICE, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_GUP_FAST], PFS_CV_PAGE);
	CHECK_EQ(e.consumers[PFS_C_GUP], PFS_CV_PAGE);
	/* unreadable: n/a everywhere */
	e = E(&lo, &anon, PFS_KIND_UNREADABLE, PFS_NO_PFN, 0, PFS_PAGE_NONE, 0, 0, 0);
	EXPECT(e, PFS_CV_NA, PFS_CV_NA, PFS_CV_NA, PFS_CV_NA, PFS_CV_NA, PFS_CV_NA);
}

TEST(consumers_mixedmap)
{
	struct pfs_layout lo = L(6, 1);
	struct pfs_vma v = V(PFS_VM_READ | PFS_VM_SHARED | PFS_VM_MIXEDMAP, 0);
	/* vnp NULL and not the zero page: follow_pfn_pte -EEXIST */
	struct pfs_entry e = E(&lo, &v, P, MMIO, S, INV, 0, 0, 0);
	EXPECT(e, PFS_CV_FALLBACK, PFS_CV_EEXIST, PFS_CV_PFN, PFS_CV_EFAULT, PFS_CV_EFAULT, PFS_CV_EFAULT);
	e = E(&lo, &v, P, ZERO, S, OK, PFS_PG_RESERVED | PFS_PG_ZERO, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_GUP], PFS_CV_ZERO_PAGE);
	/* vm_insert_page: a normal refcounted page */
	e = E(&lo, &v, P, RAM, 0, OK, 0, 2, 2);
	EXPECT(e, PFS_CV_PAGE, PFS_CV_PAGE, PFS_CV_PFN, PFS_CV_PAGE, PFS_CV_PAGE, PFS_CV_PAGE);
}

TEST(consumers_follow_pte_generations)
{
	struct pfs_vma anon = V(ANON, 0), pfn = V(SHARED_PFNMAP, 0);
	/* <= 6.9: any VMA, pte only */
	struct pfs_layout lo = L(6, 1);
	struct pfs_entry e = E(&lo, &anon, P, RAM, 0, OK, PFS_PG_ANON, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_FOLLOW_PTE], PFS_CV_PFN);
	e = E(&lo, &pfn, P, MMIO, S | PFS_E_LEAF, INV, 0, 0, 0);
	e.level = PFS_LEVEL_PMD;
	pfs_consumers(&lo, &pfn, &e);
	CHECK_EQ(e.consumers[PFS_C_FOLLOW_PTE], PFS_CV_EFAULT);
	/* 6.10: the VMA must be IO|PFNMAP */
	lo = L(6, 10);
	e = E(&lo, &anon, P, RAM, 0, OK, PFS_PG_ANON, 1, 1);
	CHECK_EQ(e.consumers[PFS_C_FOLLOW_PTE], PFS_CV_EFAULT);
	/* 6.12: follow_pfnmap_start handles pmd/pud leaves */
	lo = L(6, 12);
	e = E(&lo, &pfn, P, MMIO, S | PFS_E_LEAF, INV, 0, 0, 0);
	e.level = PFS_LEVEL_PUD;
	pfs_consumers(&lo, &pfn, &e);
	CHECK_EQ(e.consumers[PFS_C_FOLLOW_PTE], PFS_CV_PFN);
	CHECK_EQ(e.consumers[PFS_C_VFIO], PFS_CV_PFN);
	CHECK_EQ(e.consumers[PFS_C_GUP_FAST], PFS_CV_FALLBACK);
}
