/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_TASK_H
#define PFNSCOPE_TASK_H
/*
 * Tasks: the thread-group leaders from init_task over task_struct.tasks,
 * with the pid idr (init_pid_ns) as the fallback when the list breaks.
 * Bounded like the VMA iteration (vma.h).
 */
#include <stdint.h>
#include "pfnscope/target.h"

struct pfs_task {
	uint64_t task;      /* VA of task_struct */
	int32_t pid, tgid;
	uint64_t mm;        /* 0 for kernel threads */
	char comm[32];
	/* 0, or the PFS_E* code of a task_struct that could not be read: such
	 * a task is reported only when found through the pid idr, with pid
	 * set from struct pid (tgid -1, mm 0, comm empty) */
	int err;
};
typedef int (*pfs_task_cb)(const struct pfs_task *task, void *arg);
/* Iterate thread-group leaders from init_task over task_struct.tasks.
 * When the list breaks (a task_struct or a link unreadable, e.g. filtered
 * out of a dump) and the pid idr layout is known, the remaining leaders
 * are found through init_pid_ns.idr instead (as for_each_pid + pid_task,
 * PIDTYPE_PID); unreadable task_structs found there are passed to cb with
 * err set.  Without the idr layout the list error is returned. */
int pfs_for_each_task(struct pfs_target *t, pfs_task_cb cb, void *arg);
int pfs_find_task(struct pfs_target *t, int32_t pid, struct pfs_task *out);

#endif
