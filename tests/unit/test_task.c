/* SPDX-License-Identifier: MIT */
/* task iteration (task.c): init_task.tasks, bounded */
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "mock_mm.h"
#include "pfnscope/task.h"
#include "pfnscope/vma.h"

struct tlist {
	unsigned n;
	struct pfs_task t[64];
	int stop_at_pid;
};

static int collect_task(const struct pfs_task *t, void *arg)
{
	struct tlist *l = arg;
	if (l->n < 64)
		l->t[l->n] = *t;
	l->n++;
	return l->stop_at_pid && t->pid == l->stop_at_pid ? 5 : 0;
}

static void tasks(int levels, unsigned major, unsigned minor)
{
	struct mock_kernel k;
	mock_kernel_init(&k, levels, major, minor);
	struct tlist *l = calloc(1, sizeof(*l));
	struct pfs_task t;

	/* only init_task (pid 0, no mm) */
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), 0);
	CHECK_EQ(l->n, 1);
	CHECK_EQ(l->t[0].task, k.lo.init_task);
	CHECK_EQ(l->t[0].pid, 0);
	CHECK_EQ(l->t[0].mm, 0);

	uint64_t mm1 = mm_mm_alloc(&k), mm2 = mm_mm_alloc(&k);
	uint64_t t1 = mm_task(&k, 1, mm1, "init");
	uint64_t t2 = mm_task(&k, 2, 0, "kthreadd");
	uint64_t t3 = mm_task(&k, 4242, mm2, "a-very-long-command-name");
	l->n = 0;
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), 0);
	CHECK_EQ(l->n, 4);
	CHECK_EQ(l->t[1].task, t1);
	CHECK_EQ(l->t[1].pid, 1);
	CHECK_EQ(l->t[1].tgid, 1);
	CHECK_EQ(l->t[1].mm, mm1);
	CHECK_STR(l->t[1].comm, "init");
	CHECK_EQ(l->t[2].task, t2);
	CHECK_EQ(l->t[2].mm, 0);
	CHECK_EQ(l->t[3].pid, 4242);
	/* comm is TASK_COMM_LEN (16) bytes, NUL-terminated by us */
	CHECK_STR(l->t[3].comm, "a-very-long-com");

	CHECK_EQ(pfs_find_task(&k.t, 4242, &t), 0);
	CHECK_EQ(t.task, t3);
	CHECK_EQ(t.mm, mm2);
	CHECK_EQ(pfs_find_task(&k.t, 0, &t), 0);
	CHECK_EQ(t.task, k.lo.init_task);
	CHECK_EQ(pfs_find_task(&k.t, 7, &t), -PFS_ENOENT);

	memset(l, 0, sizeof(*l));
	l->stop_at_pid = 2;
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), 5);
	CHECK_EQ(l->n, 3);

	/* t3 -> t2 instead of back to init_task: a loop that never returns */
	uint64_t off = (uint64_t)k.lo.task_tasks;
	mock_write_kva_u64(&k, t3 + off, t2 + off);
	memset(l, 0, sizeof(*l));
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), -PFS_ELOOP);
	CHECK(l->n < 16);
	CHECK_EQ(pfs_find_task(&k.t, 99, &t), -PFS_ELOOP);
	/* a task linked to itself */
	mock_write_kva_u64(&k, t3 + off, t3 + off);
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), -PFS_ELOOP);
	/* a NULL link, an unmapped link */
	mock_write_kva_u64(&k, t3 + off, 0);
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), -PFS_ECORRUPT);
	mock_write_kva_u64(&k, t3 + off, 0xffffc90000010000ull);
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), -PFS_EFAULT);
	/* the found task of a broken list still comes back before the break */
	CHECK_EQ(pfs_find_task(&k.t, 1, &t), 0);
	CHECK_EQ(t.task, t1);
	free(l);
	mock_kernel_fini(&k);
}

TEST(task_list_4level_6_1) { tasks(4, 6, 1); }
TEST(task_list_5level_6_12) { tasks(5, 6, 12); }

/* a long list: Brent's check must let every task through once */
TEST(task_list_long)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 1);
	for (int i = 1; i <= 300; i++)
		mm_task(&k, i, 0, "t");
	struct tlist *l = calloc(1, sizeof(*l));
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), 0);
	CHECK_EQ(l->n, 301);
	struct pfs_task t;
	CHECK_EQ(pfs_find_task(&k.t, 300, &t), 0);
	CHECK_EQ(t.pid, 300);
	free(l);
	mock_kernel_fini(&k);
}

/* The pid idr fallback: a task_struct filtered out of a dump (makedumpfile
 * dropping a slab page) breaks init_task.tasks; the leaders after it come
 * from init_pid_ns.idr (an xarray of struct pid), and the unreadable one
 * is reported with its pid and err set.  An idr that is itself unreadable
 * leaves the list's error. */
static void idr_layout(struct mock_kernel *k)
{
	struct pfs_layout *lo = &k->lo;
	lo->init_pid_ns = mock_kimage_alloc(k, 0x100);
	lo->pidns_idr_xa_head = 8;
	lo->xa_node_shift = 0;
	lo->xa_node_slots = 40;
	lo->xa_chunk_size = 64;
	lo->pid_tasks0 = 32;
	lo->pid_nr0 = 112;
	lo->task_pid_links0 = 0x600;
}

static uint64_t idr_pid(struct mock_kernel *k, int nr, uint64_t task)
{
	uint64_t pid = mock_kalloc(k, 0x100);
	mock_write_kva_u32(k, pid + 112, (uint32_t)nr);
	mock_write_kva_u64(k, pid + 32, task ? task + 0x600 : 0);
	return pid;
}

TEST(task_list_broken_idr_fallback)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 12);
	idr_layout(&k);
	uint64_t mm = mm_mm_alloc(&k);
	uint64_t t1 = mm_task(&k, 1, mm, "init");
	uint64_t t2 = mm_task(&k, 23, 0, "cpuhp/0");
	uint64_t t3 = mm_task(&k, 45, mm, "scenarios");
	uint64_t t4 = mm_task(&k, 47, mm, "scenarios");
	uint64_t th = mm_task(&k, 48, mm, "thread");       /* a thread of 47 */
	mock_write_kva_u32(&k, th + (uint64_t)k.lo.task_tgid, 47);
	uint64_t t5 = mm_task(&k, 59, mm, "scenarios");
	(void)t1; (void)t3; (void)t5;
	/* a one-level xarray (pids < 64): node with shift 0, slots[nr] = struct pid;
	 * the shift-6 root over leaf nodes is walked the same way */
	uint64_t node = mock_kalloc(&k, 0x400);
	int nrs[] = { 1, 23, 45, 47, 48, 59, 40 /* a pid of no task */ };
	uint64_t tks[] = { t1, t2, t3, t4, th, t5, 0 };
	for (unsigned i = 0; i < 7; i++)
		mock_write_kva_u64(&k, node + 40 + 8 * (uint64_t)nrs[i], idr_pid(&k, nrs[i], tks[i]));
	mock_write_kva_u64(&k, k.lo.init_pid_ns + 8, node | 2);

	struct tlist *l = calloc(1, sizeof(*l));
	struct pfs_task t;
	/* intact list: the idr is not consulted, same result as before */
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), 0);
	CHECK_EQ(l->n, 7);

	/* cpuhp/0's task_struct page filtered out of the dump */
	mock_set_unreadable(&k, mock_kva_to_pa(&k, t2) >> 12, 1);
	memset(l, 0, sizeof(*l));
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), 0);
	/* init_task, init from the list; then 23 (unreadable), 45, 47, 59
	 * from the idr; the thread 48 and the task-less pid 40 are not */
	CHECK_EQ(l->n, 6);
	CHECK_EQ(l->t[1].pid, 1);
	CHECK_EQ(l->t[2].pid, 23);
	CHECK_EQ(l->t[2].err, PFS_EREAD);
	CHECK_EQ(l->t[2].task, t2);
	CHECK_EQ(l->t[3].pid, 45);
	CHECK_EQ(l->t[3].err, 0);
	CHECK_EQ(l->t[3].mm, mm);
	CHECK_EQ(l->t[4].pid, 47);
	CHECK_EQ(l->t[5].pid, 59);
	CHECK_EQ(pfs_find_task(&k.t, 59, &t), 0);
	CHECK_EQ(t.task, t5);
	/* the unreadable task itself: an error naming its task_struct */
	CHECK_EQ(pfs_find_task(&k.t, 23, &t), -PFS_EREAD);
	CHECK_EQ(k.t.error.address, t2);
	CHECK_EQ(pfs_find_task(&k.t, 4242, &t), -PFS_ENOENT);

	/* the idr node filtered too: no proof of absence, the list's error */
	mock_set_unreadable(&k, mock_kva_to_pa(&k, node) >> 12, 1);
	memset(l, 0, sizeof(*l));
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), -PFS_EREAD);
	CHECK_EQ(l->n, 2);
	CHECK_EQ(pfs_find_task(&k.t, 59, &t), -PFS_EREAD);
	CHECK_EQ(pfs_find_task(&k.t, 1, &t), 0);
	free(l);
	mock_kernel_fini(&k);
}

/* A corrupt idr whose node points back at itself (its child would have its
 * own shift): the kernel's xas_descend() walks by node->shift, so such a
 * child is corrupt and its pids unknown -- without that check the walk
 * visited 64^12 entries (the task fuzz target: 20 s on a 1 KiB input).  And
 * a tree of shared nodes with the right shifts is bounded by the budget,
 * which counts leaves too. */
TEST(task_idr_self_referencing_node)
{
	struct mock_kernel k;
	mock_kernel_init(&k, 4, 6, 12);
	idr_layout(&k);
	uint64_t mm = mm_mm_alloc(&k);
	uint64_t t1 = mm_task(&k, 1, mm, "init");
	uint64_t t2 = mm_task(&k, 23, 0, "cpuhp/0");
	(void)t1;
	uint64_t leaf = mock_kalloc(&k, 0x400);        /* shift 0 */
	mock_write_kva_u64(&k, leaf + 40 + 8 * 23, idr_pid(&k, 23, t2));
	uint64_t root = mock_kalloc(&k, 0x400);
	mock_write_kva(&k, root, "\x06", 1);          /* shift 6 */
	mock_write_kva_u64(&k, root + 40, leaf | 2);
	for (unsigned i = 1; i < 64; i++)
		mock_write_kva_u64(&k, root + 40 + 8 * (uint64_t)i, root | 2);
	mock_write_kva_u64(&k, k.lo.init_pid_ns + 8, root | 2);
	mock_set_unreadable(&k, mock_kva_to_pa(&k, t2) >> 12, 1);

	struct tlist *l = calloc(1, sizeof(*l));
	/* the list breaks at 23; the idr gives 23 (unreadable) but its
	 * corrupt nodes leave other pids unknown: the list's error */
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), -PFS_EREAD);
	/* init_task, init, then 23 once (the self-references are not walked:
	 * before, every walk of the root reported 23 again, millions of times) */
	CHECK_EQ(l->n, 3);
	CHECK_EQ(l->t[2].pid, 23);

	/* 64 shift-6 slots to the same leaf node, each with 64 pids: right
	 * shifts, 64 * 64 entries read, within the budget */
	for (unsigned i = 0; i < 64; i++)
		mock_write_kva_u64(&k, root + 40 + 8 * (uint64_t)i, leaf | 2);
	for (unsigned i = 0; i < 64; i++)
		if (i != 23)
			mock_write_kva_u64(&k, leaf + 40 + 8 * (uint64_t)i, idr_pid(&k, 1000 + (int)i, 0));
	memset(l, 0, sizeof(*l));
	CHECK_EQ(pfs_for_each_task(&k.t, collect_task, l), 0);
	CHECK_EQ(l->n, 2 + 64);          /* 23 through each of the 64 slots */
	CHECK_EQ(l->t[2].pid, 23);
	CHECK_EQ(l->t[2].err, PFS_EREAD);
	free(l);
	mock_kernel_fini(&k);
}
