/* SPDX-License-Identifier: MIT */
/* Mock physical memory and a mock 6.1-like x86-64 kernel; see mock.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mock.h"
#include "pfnscope/entry.h"

struct mock_page {
	uint64_t pfn;
	int unreadable;
	int absent;                 /* rolled back to "never written" */
	uint64_t epoch;             /* journal epoch of its last undo record */
	unsigned char data[4096];
};

/* one page as it was before the first change of a journal epoch */
struct mock_undo {
	struct mock_page *p;
	int unreadable, absent;
	unsigned char data[4096];
};

static void die(const char *what, uint64_t v)
{
	fprintf(stderr, "mock: %s (0x%llx)\n", what, (unsigned long long)v);
	abort();
}

/* ---------- sparse physical memory ---------- */

void mock_mem_init(struct mock_mem *m)
{
	memset(m, 0, sizeof(*m));
	m->cap = 1024;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	if (!m->slots)
		die("out of memory", 0);
}

/* mock_map_phys's copies, handed out since the memory was made or rolled back */
static void views_free(struct mock_mem *m)
{
	for (size_t i = 0; i < m->nviews; i++)
		free(m->views[i]);
	free(m->views);
	m->views = NULL;
	m->nviews = 0;
}

void mock_mem_fini(struct mock_mem *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i]);
	free(m->slots);
	m->slots = NULL;
	free(m->undo);
	m->undo = NULL;
	views_free(m);
}

static size_t hash(uint64_t pfn, size_t cap)
{
	return (size_t)((pfn * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static struct mock_page **lookup(struct mock_mem *m, uint64_t pfn)
{
	size_t i = hash(pfn, m->cap);
	while (m->slots[i] && m->slots[i]->pfn != pfn)
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

/* Before a page changes in a journal epoch, keep what it was. */
static void journal(struct mock_mem *m, struct mock_page *p, int absent)
{
	if (!m->journaling || p->epoch == m->epoch)
		return;
	if (m->nundo == m->capundo) {
		size_t cap = m->capundo ? 2 * m->capundo : 64;
		struct mock_undo *u = realloc(m->undo, cap * sizeof(*u));
		if (!u)
			die("out of memory", 0);
		m->undo = u;
		m->capundo = cap;
	}
	struct mock_undo *u = &m->undo[m->nundo++];
	u->p = p;
	u->unreadable = p->unreadable;
	u->absent = absent;
	if (!absent)
		memcpy(u->data, p->data, sizeof(u->data));
	p->epoch = m->epoch;
}

static struct mock_page *get_page(struct mock_mem *m, uint64_t pfn, int create)
{
	struct mock_page **s = lookup(m, pfn);
	if (*s && (*s)->absent) {
		if (!create)
			return NULL;
		journal(m, *s, 1);
		(*s)->absent = 0;
		return *s;
	}
	if (*s && create)
		journal(m, *s, 0);
	if (*s || !create)
		return *s;
	if ((m->n + 1) * 2 > m->cap) {
		struct mock_page **old = m->slots;
		size_t oldcap = m->cap;
		m->cap *= 2;
		m->slots = calloc(m->cap, sizeof(*m->slots));
		if (!m->slots)
			die("out of memory", 0);
		for (size_t i = 0; i < oldcap; i++)
			if (old[i])
				*lookup(m, old[i]->pfn) = old[i];
		free(old);
		s = lookup(m, pfn);
	}
	*s = calloc(1, sizeof(**s));
	if (!*s)
		die("out of memory", pfn);
	(*s)->pfn = pfn;
	m->n++;
	journal(m, *s, 1);
	return *s;
}

unsigned char *mock_mem_page(struct mock_mem *m, uint64_t pfn)
{
	return get_page(m, pfn, 1)->data;
}

void mock_mem_write(struct mock_mem *m, uint64_t pa, const void *buf, size_t len)
{
	const unsigned char *in = buf;
	while (len) {
		size_t off = pa & 4095, n = 4096 - off < len ? 4096 - off : len;
		memcpy(mock_mem_page(m, pa >> 12) + off, in, n);
		in += n;
		pa += n;
		len -= n;
	}
}

void mock_mem_set_unreadable(struct mock_mem *m, uint64_t pfn, int unreadable)
{
	get_page(m, pfn, 1)->unreadable = unreadable;
}

const void *mock_map_phys(void *ctx, uint64_t pa, size_t len)
{
	struct mock_mem *m = ctx;
	unsigned char *v = malloc(len ? len : 1);
	void **views = realloc(m->views, (m->nviews + 1) * sizeof(*views));

	if (!views)
		die("mock_map_phys", 0);
	m->views = views;
	if (!v)
		die("mock_map_phys", 0);
	if (mock_read_phys(ctx, pa, v, len)) {
		free(v);
		return NULL;
	}
	m->reads--;     /* counted as a view, not a read */
	m->bytes -= len;
	m->views[m->nviews++] = v;
	return v;
}

int mock_read_phys(void *ctx, uint64_t pa, void *buf, size_t len)
{
	struct mock_mem *m = ctx;
	unsigned char *out = buf;
	int ret = 0;

	m->reads++;
	m->bytes += len;
	while (len) {
		size_t off = pa & 4095, n = 4096 - off < len ? 4096 - off : len;
		struct mock_page *p = get_page(m, pa >> 12, 0);
		if (p && p->unreadable)
			ret = -1;
		else if (p)
			memcpy(out, p->data + off, n);
		else if (m->strict)
			ret = -1;
		else
			memset(out, 0, n);
		out += n;
		pa += n;
		len -= n;
	}
	return ret;
}

void mock_mem_checkpoint(struct mock_mem *m)
{
	m->journaling = 1;
	m->epoch++;
	m->nundo = 0;
}

void mock_mem_rollback(struct mock_mem *m)
{
	views_free(m);
	while (m->nundo) {
		struct mock_undo *u = &m->undo[--m->nundo];
		u->p->unreadable = u->unreadable;
		u->p->absent = u->absent;
		if (u->absent)
			memset(u->p->data, 0, sizeof(u->p->data));
		else
			memcpy(u->p->data, u->data, sizeof(u->data));
	}
	m->epoch++;
}

/* ---------- mock kernel ---------- */

#define TABLE_USER   0x67ull  /* _PAGE_TABLE: P RW US A D */
#define TABLE_KERNEL 0x63ull  /* _KERNPG_TABLE: P RW A D */
#define ADDR_MASK    0x000ffffffffff000ull
#define MOCK_IMAGE_SIZE (64ull << 20)
#define MOCK_IMAGE_DATA (16ull << 20)   /* kimage_alloc starts past "text" */

/* the kernel's memory changed: what the target keeps of it goes, as a
 * live target's does (pfs_target_flush) */
static void flush(struct mock_kernel *k)
{
	if (k->t.rd)
		pfs_target_flush(&k->t);
	else if (k->rd.cache)
		pfs_reader_flush(&k->rd);
}

uint64_t mock_alloc_pfns(struct mock_kernel *k, unsigned n)
{
	uint64_t pfn = k->next_pfn;
	k->next_pfn += n;
	if (k->next_pfn > MOCK_VMEMMAP_BACKING_PFN)
		die("out of mock pfns", pfn);
	/* fresh pfns are never reused, so they are zero already; only a
	 * strict memory must materialize them to make them readable */
	if (k->mem.strict)
		for (unsigned i = 0; i < n; i++)
			mock_mem_page(&k->mem, pfn + i);
	return pfn;
}

uint64_t mock_alloc_pfn(struct mock_kernel *k)
{
	return mock_alloc_pfns(k, 1);
}

void mock_write(struct mock_kernel *k, uint64_t pa, const void *buf, size_t len)
{
	mock_mem_write(&k->mem, pa, buf, len);
	flush(k);
}

void mock_write_u64(struct mock_kernel *k, uint64_t pa, uint64_t v)
{
	mock_write(k, pa, &v, 8);
}

uint64_t mock_read_u64(struct mock_kernel *k, uint64_t pa)
{
	uint64_t v = 0;
	struct mock_page *p = get_page(&k->mem, pa >> 12, 0);
	if (p)
		memcpy(&v, p->data + (pa & 4095), 8);
	return v;
}

void mock_set_unreadable(struct mock_kernel *k, uint64_t pfn, int unreadable)
{
	mock_mem_set_unreadable(&k->mem, pfn, unreadable);
	flush(k);
}

static unsigned idx(uint64_t va, int level)
{
	return (unsigned)((va >> (12 + 9 * level)) & 511);
}

static int top(const struct mock_kernel *k)
{
	return k->levels == 5 ? PFS_LEVEL_PGD : PFS_LEVEL_P4D;
}

/* PA of the table at `level` on the path to va, creating it if asked */
static uint64_t table_at(struct mock_kernel *k, uint64_t pgd_pa, uint64_t va, int level, int create)
{
	uint64_t table = pgd_pa;
	uint64_t tbits = (va >> 63) ? TABLE_KERNEL : TABLE_USER;
	for (int l = top(k); l > level; l--) {
		uint64_t epa = table + idx(va, l) * 8;
		uint64_t e = mock_read_u64(k, epa);
		if (!(e & MOCK_P)) {
			if (!create)
				return 0;
			if (e)
				die("mock_map: non-present entry in the way", e);
			e = (mock_alloc_pfn(k) << 12) | tbits;
			mock_write_u64(k, epa, e);
		} else if (l <= PFS_LEVEL_PUD && (e & MOCK_PSE)) {
			if (!create)
				return 0;
			die("mock_map: leaf in the way", e);
		}
		table = e & ADDR_MASK;
	}
	return table;
}

uint64_t mock_user_pgd(struct mock_kernel *k)
{
	return mock_alloc_pfn(k) << 12;
}

void mock_map(struct mock_kernel *k, uint64_t pgd_pa, uint64_t va, int level, uint64_t raw)
{
	uint64_t t = table_at(k, pgd_pa, va, level, 1);
	mock_write_u64(k, t + idx(va, level) * 8, raw);
}

uint64_t mock_table_pa(struct mock_kernel *k, uint64_t pgd_pa, uint64_t va, int level)
{
	return table_at(k, pgd_pa, va, level, 0);
}

uint64_t mock_kva_to_pa(struct mock_kernel *k, uint64_t va)
{
	uint64_t table = k->top_pgt_pa;
	for (int l = top(k); l >= 0; l--) {
		uint64_t e = mock_read_u64(k, table + idx(va, l) * 8);
		if (!(e & MOCK_P))
			die("mock_kva_to_pa: not mapped", va);
		if (l == 0 || (l <= PFS_LEVEL_PUD && (e & MOCK_PSE))) {
			uint64_t size = 1ull << (12 + 9 * l);
			return (e & ADDR_MASK & ~(size - 1)) + (va & (size - 1));
		}
		table = e & ADDR_MASK;
	}
	die("mock_kva_to_pa", va);
	return 0;
}

void mock_write_kva(struct mock_kernel *k, uint64_t va, const void *buf, size_t len)
{
	const unsigned char *in = buf;
	while (len) {
		size_t off = va & 4095, n = 4096 - off < len ? 4096 - off : len;
		mock_mem_write(&k->mem, mock_kva_to_pa(k, va), in, n);
		in += n;
		va += n;
		len -= n;
	}
	flush(k);
}

void mock_write_kva_u64(struct mock_kernel *k, uint64_t va, uint64_t v)
{
	mock_write_kva(k, va, &v, 8);
}

void mock_write_kva_u32(struct mock_kernel *k, uint64_t va, uint32_t v)
{
	mock_write_kva(k, va, &v, 4);
}

uint64_t mock_read_kva_u64(struct mock_kernel *k, uint64_t va)
{
	uint64_t v = 0;
	unsigned char *p = (unsigned char *)&v;
	for (int i = 0; i < 8; i++) {
		uint64_t pa = mock_kva_to_pa(k, va + i);
		struct mock_page *pg = get_page(&k->mem, pa >> 12, 0);
		p[i] = pg ? pg->data[pa & 4095] : 0;
	}
	return v;
}

uint64_t mock_kalloc(struct mock_kernel *k, size_t size)
{
	unsigned n = (unsigned)((size + 4095) / 4096);
	return mock_direct_va(k, mock_alloc_pfns(k, n ? n : 1) << 12);
}

uint64_t mock_kimage_alloc(struct mock_kernel *k, size_t size)
{
	uint64_t va = k->kimage_next;
	k->kimage_next += (size + 63) & ~63ull;
	if (k->kimage_next > k->lo.start_kernel_map + MOCK_IMAGE_SIZE)
		die("kernel image full", va);
	return va;
}

/* ---------- struct page ---------- */

uint64_t mock_page_va(struct mock_kernel *k, uint64_t pfn)
{
	return k->lo.vmemmap_base + pfn * k->lo.page_size;
}

uint64_t mock_page_pa(struct mock_kernel *k, uint64_t pfn)
{
	uint64_t va = mock_page_va(k, pfn);
	uint64_t pmd_table = table_at(k, k->top_pgt_pa, va, PFS_LEVEL_PMD, 1);
	uint64_t epa = pmd_table + idx(va, PFS_LEVEL_PMD) * 8;
	uint64_t e = mock_read_u64(k, epa);
	if (!e) {
		/* a 2 MiB vmemmap block, like vmemmap_populate_hugepages() */
		e = (k->vmemmap_next_pfn << 12) | TABLE_KERNEL | MOCK_PSE | MOCK_G | MOCK_NX;
		k->vmemmap_next_pfn += 512;
		if (k->vmemmap_next_pfn > MOCK_RAM_PFNS)
			die("vmemmap backing exhausted", pfn);
		mock_write_u64(k, epa, e);
	}
	return (e & ADDR_MASK & ~((2ull << 20) - 1)) + (va & ((2ull << 20) - 1));
}

void mock_page_set(struct mock_kernel *k, uint64_t pfn, int32_t off, unsigned size, uint64_t val)
{
	if (off < 0)
		die("mock_page_set: field absent in this layout", pfn);
	/* off may reach into page[1], page[2] (folio fields) */
	uint64_t first = pfn + (uint64_t)off / k->lo.page_size;
	uint64_t pa = mock_page_pa(k, first) + (uint64_t)off % k->lo.page_size;
	mock_write(k, pa, &val, size);   /* little endian */
}

void mock_page_set_flags(struct mock_kernel *k, uint64_t pfn, uint64_t flags)
{ mock_page_set(k, pfn, k->lo.page_flags, 8, flags); }
void mock_page_set_refcount(struct mock_kernel *k, uint64_t pfn, int32_t rc)
{ mock_page_set(k, pfn, k->lo.page_refcount, 4, (uint32_t)rc); }
void mock_page_set_mapcount_raw(struct mock_kernel *k, uint64_t pfn, int32_t raw)
{ mock_page_set(k, pfn, k->lo.page_mapcount, 4, (uint32_t)raw); }
void mock_page_set_mapping(struct mock_kernel *k, uint64_t pfn, uint64_t mapping)
{ mock_page_set(k, pfn, k->lo.page_mapping, 8, mapping); }
void mock_page_set_private(struct mock_kernel *k, uint64_t pfn, uint64_t v)
{ mock_page_set(k, pfn, k->lo.page_private, 8, v); }
void mock_page_set_compound_head(struct mock_kernel *k, uint64_t pfn, uint64_t v)
{ mock_page_set(k, pfn, k->lo.page_compound_head, 8, v); }

void mock_page_simple(struct mock_kernel *k, uint64_t pfn, uint64_t flags, int32_t rc, int32_t mc)
{
	mock_page_set_flags(k, pfn, flags);
	mock_page_set_refcount(k, pfn, rc);
	mock_page_set_mapcount_raw(k, pfn, mc - 1);
}

void mock_page_compound(struct mock_kernel *k, uint64_t head_pfn, unsigned order)
{
	uint64_t n = 1ull << order;
	mock_page_set_flags(k, head_pfn, mock_pg(k, k->lo.pg_head));
	for (uint64_t i = 1; i < n; i++)
		mock_page_set_compound_head(k, head_pfn + i, mock_page_va(k, head_pfn) | 1);
	if (order == 0)
		return;
	/* the order lives in page[1].compound_order where the kernel has one
	 * (6.1: there _flags_1 is page[1].flags), else in _flags_1's low byte */
	if (k->lo.page_compound_order != PFS_ABSENT)
		mock_page_set(k, head_pfn, (int32_t)k->lo.page_size + k->lo.page_compound_order, 1, order);
	else if (k->lo.folio_flags_1 != PFS_ABSENT)
		mock_page_set(k, head_pfn, k->lo.folio_flags_1, 1, order);
}

/* ---------- mem_section (SPARSEMEM_EXTREME) ---------- */

void mock_set_mem_section(struct mock_kernel *k, uint64_t pfn, uint64_t n, uint64_t flags,
			  uint64_t subsection_map)
{
	struct pfs_layout *lo = &k->lo;
	uint64_t first = pfn >> lo->pfn_section_shift;
	uint64_t last = (pfn + n - 1) >> lo->pfn_section_shift;
	for (uint64_t nr = first; n && nr <= last; nr++) {
		uint64_t root = nr / lo->sections_per_root;
		if (root >= lo->nr_section_roots)
			die("section beyond NR_SECTION_ROOTS", nr);
		uint64_t root_va = mock_read_kva_u64(k, k->mem_section_roots + root * 8);
		if (!root_va) {
			root_va = mock_kalloc(k, lo->sections_per_root * lo->mem_section_size);
			mock_write_kva_u64(k, k->mem_section_roots + root * 8, root_va);
		}
		uint64_t ms = root_va + (nr % lo->sections_per_root) * lo->mem_section_size;
		uint64_t usage = mock_read_kva_u64(k, ms + (uint64_t)lo->mem_section_usage);
		if (!usage && flags) {
			usage = mock_kalloc(k, 64);
			mock_write_kva_u64(k, ms + (uint64_t)lo->mem_section_usage, usage);
		}
		/* section_mem_map: encoded mem_map (pfn-adjusted, as
		 * sparse_encode_mem_map) | SECTION_* flags */
		uint64_t map = flags ? (lo->vmemmap_base & ~0x3full) | flags : 0;
		mock_write_kva_u64(k, ms + (uint64_t)lo->mem_section_section_mem_map, map);
		if (usage)
			mock_write_kva_u64(k, usage + (uint64_t)lo->usage_subsection_map, subsection_map);
	}
}

/* ---------- layout ---------- */

static void set_pageflags(struct pfs_layout *lo, unsigned major, unsigned minor)
{
	static const char *const f61[] = {
		"locked", "referenced", "uptodate", "dirty", "lru", "active", "workingset",
		"waiters", "error", "slab", "owner_priv_1", "arch_1", "reserved", "private",
		"private_2", "writeback", "head", "mappedtodisk", "reclaim", "swapbacked",
		"unevictable", "mlocked", "uncached", "hwpoison", "young", "idle",
	};
	/* 6.12 reordered enum pageflags and dropped PG_error / PG_slab */
	static const char *const f612[] = {
		"locked", "writeback", "referenced", "uptodate", "dirty", "lru", "head",
		"waiters", "active", "workingset", "owner_priv_1", "owner_2", "arch_1",
		"reserved", "private", "private_2", "reclaim", "swapbacked", "unevictable",
		"mlocked", "uncached", "hwpoison", "young", "idle",
	};
	int new = major > 6 || (major == 6 && minor >= 12);
	const char *const *names = new ? f612 : f61;
	unsigned n = new ? sizeof(f612) / sizeof(f612[0]) : sizeof(f61) / sizeof(f61[0]);
	for (unsigned i = 0; i < n; i++) {
		const char *s = names[i];
		lo->pageflag_names[i] = s;
		int *slot = !strcmp(s, "locked") ? &lo->pg_locked : !strcmp(s, "reserved") ? &lo->pg_reserved :
			    !strcmp(s, "head") ? &lo->pg_head : !strcmp(s, "slab") ? &lo->pg_slab :
			    !strcmp(s, "lru") ? &lo->pg_lru : !strcmp(s, "swapbacked") ? &lo->pg_swapbacked :
			    !strcmp(s, "owner_priv_1") ? &lo->pg_swapcache :
			    !strcmp(s, "hwpoison") ? &lo->pg_hwpoison : !strcmp(s, "private") ? &lo->pg_private :
			    !strcmp(s, "dirty") ? &lo->pg_dirty : !strcmp(s, "uptodate") ? &lo->pg_uptodate :
			    !strcmp(s, "mlocked") ? &lo->pg_mlocked : NULL;
		if (slot)
			*slot = (int)i;
	}
	/* <= 6.1: PG_double_map = PG_workingset, a page[1] flag */
	if (!new)
		lo->pg_double_map = 6;
}

static void fill_layout(struct mock_kernel *k, int levels, unsigned major, unsigned minor)
{
	struct pfs_layout *lo = &k->lo;

	pfs_layout_init(lo);
	lo->arch = PFS_ARCH_X86_64;
	pfs_layout_set_version(lo, major, minor, 0);
	lo->pgtable_levels = levels;
	lo->has_pte_special = 1;
	lo->max_physmem_bits = levels == 5 ? 52 : 46;
	lo->sme_mask = 0;
	lo->phys_base = MOCK_PHYS_BASE;
	lo->kaslr_offset = 0x1c000000;
	/* KASLR-like bases that are not the defaults */
	lo->page_offset_base = levels == 5 ? 0xff11000000000000ull : 0xffff888000000000ull;
	lo->vmemmap_base = levels == 5 ? 0xffd4000000000000ull : 0xffffea0000000000ull;
	lo->start_kernel_map = 0xffffffff80000000ull;

	lo->highest_memmap_pfn = MOCK_RAM_PFNS - 1;
	lo->zero_pfn = (MOCK_PHYS_BASE >> 12) + 0x1800; /* empty_zero_page in .bss */
	lo->huge_zero_pfn = PFS_ABSENT;
	lo->sparsemem_extreme = 1;
	lo->section_size_bits = 27;
	lo->pfn_section_shift = 15;
	lo->subsection_shift = 21;
	lo->mem_section_size = 16;
	lo->mem_section_section_mem_map = 0;
	lo->mem_section_usage = 8;
	lo->usage_subsection_map = 0;
	lo->sections_per_root = 4096 / 16;
	lo->nr_section_roots = (1ull << (lo->max_physmem_bits - 27)) / lo->sections_per_root;

	lo->page_size = 64;
	lo->page_flags = 0;
	lo->page_compound_head = 8;
	lo->page_mapping = 24;
	lo->page_index = 32;
	lo->page_private = 40;
	lo->page_mapcount = 48;
	lo->page_refcount = 52;
	lo->page_page_type = PFS_ABSENT;
	if (lo->mapcount_scheme == PFS_MAPCOUNT_COMPOUND) {
		/* as Debian's 6.1: struct page's first-tail union (compound_dtor
		 * 16, compound_order 17, compound_mapcount 20) and a struct folio
		 * whose _flags_1 (64) is page[1].flags, not the order */
		lo->page_compound_dtor = 16;
		lo->page_compound_order = 17;
		lo->page_compound_mapcount = 20;
		lo->folio_flags_1 = 64;
		lo->hugetlb_page_dtor = 2;          /* enum compound_dtor_id */
	} else {
		/* struct folio: _flags_1 64, _head_1 72, then the counters */
		lo->folio_flags_1 = 64;
		if (lo->mapcount_scheme == PFS_MAPCOUNT_LARGE) {
			lo->folio_large_mapcount = 80;
			lo->folio_entire_mapcount = 84;
			lo->folio_nr_pages_mapped = 88;
		} else {
			lo->folio_entire_mapcount = 84;
			lo->folio_nr_pages_mapped = 88;
		}
	}
	set_pageflags(lo, major, minor);

	/* vm_area_struct / mm_struct / task_struct / maple_node (mock's own) */
	lo->vma_vm_start = 0;
	lo->vma_vm_end = 8;
	lo->vma_vm_mm = 16;
	lo->vma_vm_flags = 32;
	lo->vma_vm_ops = 96;
	lo->vma_vm_pgoff = 104;
	lo->vma_vm_file = 112;
	lo->vma_vm_private_data = 120;
	lo->vma_size = 176;
	lo->vmops_access = 88;
	lo->vmops_find_special_page = 120;
	int maple = major > 6 || (major == 6 && minor >= 1);
	lo->vma_vm_next = maple ? PFS_ABSENT : 136;
	lo->mm_mm_mt = maple ? 0 : PFS_ABSENT;
	lo->mm_mmap = maple ? PFS_ABSENT : 0;
	lo->maple_tree_ma_root = 8;
	lo->mm_pgd = 80;
	lo->maple_node_size = 256;
	lo->maple_range64_slots = 16;
	lo->maple_arange64_slots = 10;
	lo->maple_dense_slots = 31;
	lo->maple_range64_pivot = 8;
	lo->maple_range64_slot = 128;
	lo->maple_arange64_pivot = 8;
	lo->maple_arange64_slot = 80;
	lo->task_tasks = 0x400;
	lo->task_pid = 0x500;
	lo->task_tgid = 0x504;
	lo->task_mm = 0x450;
	lo->task_comm = 0x700;
	lo->task_flags = 0x2c;
	lo->task_comm_len = 16;
}

void mock_kernel_init(struct mock_kernel *k, int levels, unsigned major, unsigned minor)
{
	memset(k, 0, sizeof(*k));
	if (levels != 4 && levels != 5)
		die("levels", (uint64_t)levels);
	k->levels = levels;
	mock_mem_init(&k->mem);
	fill_layout(k, levels, major, minor);
	struct pfs_layout *lo = &k->lo;
	k->next_pfn = MOCK_FIRST_ALLOC_PFN;
	k->vmemmap_next_pfn = MOCK_VMEMMAP_BACKING_PFN;

	/* init_top_pgt lives in the kernel image (its first data page) */
	k->kimage_next = lo->start_kernel_map + MOCK_IMAGE_DATA;
	uint64_t pgt_va = mock_kimage_alloc(k, 4096);
	lo->init_top_pgt = pgt_va;
	k->top_pgt_pa = pgt_va - lo->start_kernel_map + lo->phys_base;

	/* kernel image: 2 MiB leaves, like level2_kernel_pgt */
	for (uint64_t off = 0; off < MOCK_IMAGE_SIZE; off += 2ull << 20)
		mock_map(k, k->top_pgt_pa, lo->start_kernel_map + off, PFS_LEVEL_PMD,
			 (lo->phys_base + off) | TABLE_KERNEL | MOCK_PSE | MOCK_G);
	/* direct map: PA [0, MOCK_DIRECT_MAP_GB GiB) with 1 GiB leaves */
	for (uint64_t gb = 0; gb < MOCK_DIRECT_MAP_GB; gb++)
		mock_map(k, k->top_pgt_pa, lo->page_offset_base + (gb << 30), PFS_LEVEL_PUD,
			 (gb << 30) | TABLE_KERNEL | MOCK_PSE | MOCK_G | MOCK_NX);

	/* the reader must exist before mem_section writes flush it */
	if (pfs_reader_init(&k->rd, mock_read_phys, &k->mem))
		die("pfs_reader_init", 0);
	pfs_target_init(&k->t, lo, &k->rd);

	/* mem_section roots, kzalloc'ed like sparse_index_alloc() */
	k->mem_section_roots = mock_kalloc(k, lo->nr_section_roots * 8);
	lo->mem_section = k->mem_section_roots;
	mock_set_mem_section(k, 0, MOCK_RAM_PFNS, MOCK_SECTION_RAM, ~0ull);

	/* a mock init_task, so pfs_layout_validate passes; the task
	 * tests build their own list on it */
	lo->init_task = mock_kimage_alloc(k, 0x800);
	mock_write_kva_u64(k, lo->init_task + (uint64_t)lo->task_tasks, lo->init_task + (uint64_t)lo->task_tasks);
	mock_write_kva_u64(k, lo->init_task + (uint64_t)lo->task_tasks + 8, lo->init_task + (uint64_t)lo->task_tasks);

	/* empty_zero_page: reserved, refcount 1, as after boot */
	mock_page_simple(k, lo->zero_pfn, mock_pg(k, lo->pg_reserved), 1, 0);
	pfs_reader_flush(&k->rd);
	k->rd.stats_reads = k->rd.stats_bytes = 0;
}

void mock_kernel_checkpoint(struct mock_kernel *k)
{
	k->saved_lo = k->lo;
	k->saved_next_pfn = k->next_pfn;
	k->saved_kimage_next = k->kimage_next;
	k->saved_vmemmap_next_pfn = k->vmemmap_next_pfn;
	mock_mem_checkpoint(&k->mem);
}

void mock_kernel_rollback(struct mock_kernel *k)
{
	mock_mem_rollback(&k->mem);
	k->lo = k->saved_lo;
	k->next_pfn = k->saved_next_pfn;
	k->kimage_next = k->saved_kimage_next;
	k->vmemmap_next_pfn = k->saved_vmemmap_next_pfn;
	pfs_target_init(&k->t, &k->lo, &k->rd);
	pfs_reader_flush(&k->rd);
	k->rd.stats_reads = k->rd.stats_bytes = 0;
	k->mem.reads = k->mem.bytes = 0;
}

void mock_kernel_fini(struct mock_kernel *k)
{
	pfs_reader_fini(&k->rd);
	mock_mem_fini(&k->mem);
}
