/* SPDX-License-Identifier: MIT */
/* task iteration (task.c): init_task.tasks, bounded */
#include <stdlib.h>
#include <string.h>
#include "runner.h"
#include "mock.h"
#include "mock_mm.h"
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
