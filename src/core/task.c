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
#include <stdlib.h>
#include <string.h>
#include "pfnscope/task.h"
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
	if (!pfs_layout_has(lo, task_pid) || !pfs_layout_has(lo, task_tgid) || !pfs_layout_has(lo, task_mm))
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
	if (pfs_layout_has(lo, task_comm)) {
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

/* --- the pid idr fallback ------------------------------------------------ */

static int idr_available(const struct pfs_layout *lo)
{
	return pfs_layout_has(lo, init_pid_ns) && pfs_layout_has(lo, pidns_idr_xa_head) &&
	       pfs_layout_has(lo, xa_node_shift) && pfs_layout_has(lo, xa_node_slots) &&
	       pfs_layout_has(lo, pid_tasks0) && pfs_layout_has(lo, task_pid_links0) &&
	       pfs_layout_has(lo, xa_chunk_size) && lo->xa_chunk_size > 0 && lo->xa_chunk_size <= 256;
}

struct seen {
	uint64_t *v;
	size_t n, cap;
};

static int seen_add(struct seen *s, uint64_t task)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -PFS_ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = task;
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct idr_walk {
	struct pfs_target *t;
	pfs_task_cb cb;
	void *arg;
	const struct seen *seen;
	uint64_t budget;             /* entries + nodes left (PID_MAX_LIMIT bound) */
	int lost;                    /* a node or struct pid could not be read */
};

/* One struct pid: pid_task(pid, PIDTYPE_PID), leaders only (as the list) */
static int idr_visit_pid(struct idr_walk *w, uint64_t pid)
{
	const struct pfs_layout *lo = w->t->lo;
	uint64_t first, task;
	struct pfs_task tk;
	int ret;

	if (pfs_read_kvirt_u64(w->t, pid + (uint64_t)lo->pid_tasks0, &first) < 0) {
		w->lost = 1;             /* unreadable struct pid */
		return 0;
	}
	if (!first)
		return 0;                /* no task of that type (pid of a pgrp/session) */
	task = first - (uint64_t)lo->task_pid_links0;
	if (w->seen->n && bsearch(&task, w->seen->v, w->seen->n, sizeof(uint64_t), u64_cmp))
		return 0;                /* already reported by the list walk */
	ret = task_read(w->t, task, &tk);
	if (ret < 0) {
		uint32_t nr = 0;
		memset(&tk, 0, sizeof(tk));
		tk.task = task;
		tk.err = -ret;
		tk.tgid = -1;
		tk.pid = -1;
		if (pfs_layout_has(lo, pid_nr0) && pfs_read_kvirt(w->t, pid + (uint64_t)lo->pid_nr0, &nr, 4) == 0)
			tk.pid = (int32_t)nr;
		return w->cb(&tk, w->arg);
	}
	if (tk.pid != tk.tgid)
		return 0;                /* a thread: the list has leaders only */
	return w->cb(&tk, w->arg);
}

/* lib/xarray.c layout: an internal entry (low bits 10) above 4096 is a
 * node (xa_to_node = entry - 2); below it retry/sibling markers; value
 * entries have bit 0 set.  Leaves (shift 0 slots) are struct pid pointers.
 * A node's children have its shift less XA_CHUNK_SHIFT (xas_descend walks
 * by node->shift): a node breaking that is corrupt, and every entry,
 * leaves too, counts against the budget -- a corrupt tree whose slots point
 * back at shared nodes would otherwise be walked exponentially often
 * (found by the task fuzz target: 20 s on a 1 KiB input).  PARENT_SHIFT is
 * -1 for the root. */
static int idr_walk_entry(struct idr_walk *w, uint64_t entry, int parent_shift)
{
	const struct pfs_layout *lo = w->t->lo;
	int ret;

	if (!entry || (entry & 1))
		return 0;
	if (!w->budget--)
		return pfs_target_fail(w->t, PFS_ELOOP, "pid idr size", entry);
	if ((entry & 3) != 2)
		return idr_visit_pid(w, entry);
	if (entry <= 4096)
		return 0;
	uint64_t node = entry - 2, slots[256];
	uint8_t shift;
	if (pfs_read_kvirt(w->t, node + (uint64_t)lo->xa_node_shift, &shift, 1) < 0 ||
	    pfs_read_kvirt(w->t, node + (uint64_t)lo->xa_node_slots, slots,
			   lo->xa_chunk_size * sizeof(uint64_t)) < 0) {
		w->lost = 1;             /* an unreadable node: its pids stay unknown */
		return 0;
	}
	int chunk_shift = __builtin_ctz(lo->xa_chunk_size);
	if (shift >= 64 || (parent_shift >= 0 && shift != parent_shift - chunk_shift)) {
		w->lost = 1;             /* not a child of its parent: its pids unknown */
		return 0;
	}
	for (unsigned i = 0; i < lo->xa_chunk_size; i++) {
		if (!slots[i])
			continue;
		if (shift == 0 && (slots[i] & 3) == 2)
			continue;        /* sibling/retry entries in a leaf node */
		ret = idr_walk_entry(w, slots[i], shift);
		if (ret)
			return ret;
	}
	return 0;
}

/* Returns 0, the callback's value or a negative error; *lost is set when
 * part of the idr could not be read (the task set it gave is incomplete). */
static int idr_walk(struct pfs_target *t, pfs_task_cb cb, void *arg, const struct seen *seen,
		    int *lost)
{
	const struct pfs_layout *lo = t->lo;
	struct idr_walk w = { t, cb, arg, seen, PFS_TASK_MAX, 0 };
	uint64_t head;
	int ret;

	ret = pfs_read_kvirt_u64(t, lo->init_pid_ns + (uint64_t)lo->pidns_idr_xa_head, &head);
	if (ret < 0) {
		*lost = 1;
		return 0;
	}
	ret = idr_walk_entry(&w, head, -1);
	*lost = w.lost;
	return ret;
}

/* --- the task list ------------------------------------------------------- */

/* Walk init_task.tasks; the task_structs visited are added to *seen (when
 * non-NULL).  Returns 0 at the end of the list, the callback's non-zero
 * value, or a negative error where the list breaks. */
static int list_walk(struct pfs_target *t, pfs_task_cb cb, void *arg, struct seen *seen)
{
	const struct pfs_layout *lo = t->lo;
	uint64_t head, pos, tortoise, power = 1, lam = 0, count = 0;
	struct pfs_task task;
	int ret;

	if (lo->init_task == 0 || !pfs_layout_has(lo, task_tasks))
		return pfs_target_fail(t, PFS_ELAYOUT, "init_task / task_struct.tasks", 0);
	head = lo->init_task + (uint64_t)lo->task_tasks;

	ret = task_read(t, lo->init_task, &task);
	if (ret < 0)
		return ret;
	if (seen && (ret = seen_add(seen, lo->init_task)) < 0)
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
		if (seen && (ret = seen_add(seen, task.task)) < 0)
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

int pfs_for_each_task(struct pfs_target *t, pfs_task_cb cb, void *arg)
{
	struct seen seen = { NULL, 0, 0 };
	int ret;

	if (!idr_available(t->lo))
		return list_walk(t, cb, arg, NULL);
	ret = list_walk(t, cb, arg, &seen);
	/* a broken list (unreadable, corrupt or looping): the leaders not yet
	 * reported come from the pid idr; out of memory and the callback's
	 * own stop value are returned as they are.  An idr that is itself
	 * partly unreadable cannot prove a pid absent: the list's error stands
	 * (the tasks reported before it have been passed to cb). */
	if (ret < 0 && ret != -PFS_ENOMEM && ret != -PFS_ELAYOUT) {
		struct pfs_error error = t->error;
		qsort(seen.v, seen.n, sizeof(uint64_t), u64_cmp);
		int lost = 0;
		int r2 = idr_walk(t, cb, arg, &seen, &lost);
		if (r2 < 0 || (r2 == 0 && lost)) {  /* no help: the list's error */
			t->error = error;
		} else {
			ret = r2;
		}
	}
	free(seen.v);
	return ret;
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
	return task->err ? 2 : 1;
}

int pfs_find_task(struct pfs_target *t, int32_t pid, struct pfs_task *out)
{
	struct find_task_ctx c = { .pid = pid, .out = out };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = pfs_for_each_task(t, find_task_visit, &c);
	if (ret < 0)
		return ret;
	if (ret == 2)            /* found through the idr, task_struct unreadable */
		return pfs_target_fail(t, out->err, "task_struct", out->task);
	return ret == 1 ? 0 : -PFS_ENOENT;
}
