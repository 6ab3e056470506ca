/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the task list (init_task.tasks, task_structs as found
 * in a dump) and the pid idr fallback (init_pid_ns.idr: xa_nodes and
 * struct pids), pfs_for_each_task and pfs_find_task.  Input
 * (fuzz_common.h): byte 0 bit 0: 5 levels, bits 1-3: kernel version;
 * then 4 u64:
 *   p0, p1  init_task.tasks.next / .prev (seed-window pointers; SEED_IMAGE
 *           + 0x400 is init_task's own list head)
 *   p2      init_pid_ns.idr.idr_rt.xa_head
 *   p3      two pids (low and high 32 bits) looked up with pfs_find_task
 * then memory records: task_structs re-encoded in the mock's layout
 * (tasks 0x400, mm 0x450, pid 0x500, tgid 0x504, pid_links[0] 0x600,
 * comm 0x700, flags 0x2c), xa_nodes verbatim (shift 0, slots at 40),
 * struct pids re-encoded (tasks[0] 32, numbers[0].nr 112).
 */
#include <stdint.h>
#include <stddef.h>
#include "mock.h"
#include "fuzz_common.h"
#include "pfnscope/task.h"
#include "pfnscope/vma.h"

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

static int on_task(const struct pfs_task *t, void *arg)
{
	uint64_t *sum = arg;
	*sum += t->task ^ (uint64_t)t->pid ^ ((uint64_t)t->tgid << 32) ^ t->mm ^ (uint64_t)t->err;
	for (unsigned i = 0; i < sizeof(t->comm) && t->comm[i]; i++)
		*sum += (unsigned char)t->comm[i];
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 + 8 * FUZZ_NPARAMS)
		return 0;
	struct mock_kernel *k = fuzz_kernel(data[0] & 1, (data[0] >> 1) & 7, idr_layout);
	uint64_t p[FUZZ_NPARAMS];
	for (unsigned i = 0; i < FUZZ_NPARAMS; i++)
		p[i] = fuzz_rebase(k, fuzz_rd64(data + 1 + 8 * i));
	fuzz_apply_records(k, data + 1 + 8 * FUZZ_NPARAMS, size - 1 - 8 * FUZZ_NPARAMS);
	uint64_t head = k->lo.init_task + (uint64_t)k->lo.task_tasks;
	mock_write_kva_u64(k, head, p[0]);
	mock_write_kva_u64(k, head + 8, p[1]);
	mock_write_kva_u64(k, k->lo.init_pid_ns + (uint64_t)k->lo.pidns_idr_xa_head, p[2]);

	uint64_t sum = 0;
	sum += (uint64_t)pfs_for_each_task(&k->t, on_task, &sum);
	struct pfs_task t;
	sum += (uint64_t)pfs_find_task(&k->t, (int32_t)p[3], &t);
	sum += (uint64_t)pfs_find_task(&k->t, (int32_t)(p[3] >> 32), &t);
	fuzz_done(k);
	return sum == 0x12345 ? 0 : 0;
}
