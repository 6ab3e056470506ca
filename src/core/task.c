// SPDX-License-Identifier: MIT
/*
 * Task iteration: init_task first, then the thread-group leaders on
 * init_task.tasks, as for_each_process() (include/linux/sched/signal.h:
 * next_task() = list_entry_rcu(p->tasks.next, ...)) walks them until it is
 * back at &init_task.  Only leaders are on that list; threads share the
 * leader's mm, which is all pfnscope needs.  Bounded: Brent's cycle check
 * ends a list that loops without coming back to init_task with -PFS_ELOOP,
 * and more entries than PID_MAX_LIMIT also end it.
 */
#include <string.h>
#include "pfnscope/vma.h"

/* PID_MAX_LIMIT (include/linux/threads.h, 64-bit): 4M pids */
#define PFS_TASK_MAX (4u * 1024 * 1024)

static int task_read(struct pfs_target *t, uint64_t task, struct pfs_task *out)
{
	const struct pfs_layout *lo = t->lo;
	uint32_t pid, tgid;
	size_t comm_len;
	int ret;

	memset(out, 0, sizeof(*out));
	out->task = task;
	if (lo->task_pid < 0 || lo->task_tgid < 0 || lo->task_mm < 0)
		return pfs_target_fail(t, PFS_ELAYOUT, "task_struct layout", task);
	ret = pfs_read_kvirt(t, task + (uint64_t)lo->task_pid, &pid, sizeof(pid));
	if (!ret)
		ret = pfs_read_kvirt(t, task + (uint64_t)lo->task_tgid, &tgid, sizeof(tgid));
	if (!ret)
		ret = pfs_read_kvirt_u64(t, task + (uint64_t)lo->task_mm, &out->mm);
	if (ret < 0)
		return pfs_target_fail(t, -ret, "task_struct", task);
	out->pid = (int32_t)pid;
	out->tgid = (int32_t)tgid;
	if (lo->task_comm >= 0) {
		comm_len = lo->task_comm_len ? lo->task_comm_len : 16;   /* TASK_COMM_LEN */
		if (comm_len > sizeof(out->comm))
			comm_len = sizeof(out->comm);
		/* comm is informative: an unreadable one stays empty */
		if (pfs_read_kvirt(t, task + (uint64_t)lo->task_comm, out->comm, comm_len) < 0)
			memset(out->comm, 0, sizeof(out->comm));
		/* comm[TASK_COMM_LEN] always ends in a NUL (__set_task_comm
		 * uses strscpy_pad); force it for garbage too */
		out->comm[comm_len - 1] = '\0';
	}
	return 0;
}

int pfs_for_each_task(struct pfs_target *t, pfs_task_cb cb, void *arg)
{
	const struct pfs_layout *lo = t->lo;
	uint64_t head, pos, tortoise, power = 1, lam = 0, count = 0;
	struct pfs_task task;
	int ret;

	if (lo->init_task == 0 || lo->task_tasks < 0)
		return pfs_target_fail(t, PFS_ELAYOUT, "init_task / task_struct.tasks", 0);
	head = lo->init_task + (uint64_t)lo->task_tasks;

	ret = task_read(t, lo->init_task, &task);
	if (ret < 0)
		return ret;
	ret = cb(&task, arg);
	if (ret)
		return ret;

	ret = pfs_read_kvirt_u64(t, head, &pos);     /* list_head.next at offset 0 */
	if (ret < 0)
		return pfs_target_fail(t, -ret, "init_task.tasks", head);
	tortoise = head;
	while (pos != head) {
		uint64_t next;

		if (pos == 0 || (pos & 7))
			return pfs_target_fail(t, PFS_ECORRUPT, "task_struct.tasks.next", pos);
		if (++count > PFS_TASK_MAX)
			return pfs_target_fail(t, PFS_ELOOP, "task list length", pos);
		/* list_entry(pos, struct task_struct, tasks) */
		ret = task_read(t, pos - (uint64_t)lo->task_tasks, &task);
		if (ret < 0)
			return ret;
		ret = cb(&task, arg);
		if (ret)
			return ret;
		ret = pfs_read_kvirt_u64(t, pos, &next);
		if (ret < 0)
			return pfs_target_fail(t, -ret, "task_struct.tasks.next", pos);
		/* Brent: the tortoise jumps to the hare at powers of two; meeting
		 * it again means a cycle that does not pass through init_task */
		if (next == tortoise && next != head)
			return pfs_target_fail(t, PFS_ELOOP, "task list loops", next);
		if (++lam == power) {
			tortoise = next;
			power <<= 1;
			lam = 0;
		}
		pos = next;
	}
	return 0;
}

struct find_task_ctx {
	int32_t pid;
	struct pfs_task *out;
};

static int find_task_visit(const struct pfs_task *task, void *arg)
{
	struct find_task_ctx *c = arg;

	if (task->pid != c->pid)
		return 0;
	*c->out = *task;
	return 1;
}

int pfs_find_task(struct pfs_target *t, int32_t pid, struct pfs_task *out)
{
	struct find_task_ctx c = { .pid = pid, .out = out };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = pfs_for_each_task(t, find_task_visit, &c);
	if (ret < 0)
		return ret;
	return ret == 1 ? 0 : -PFS_ENOENT;
}
