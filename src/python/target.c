// SPDX-License-Identifier: MIT
/*
 * pfnscope._core.Target: a layout and a physical reader (a dump or RAM
 * file, or a Python callable); tasks, VMAs and walks.  Per-entry work
 * (JSON/table serialization, run-length summaries, diagnosis counts) stays
 * in C: Target.walk_write writes whole walks to a file descriptor,
 * Target.walk_bytes returns a small one (check's diagnosed runs) as bytes.
 */
#include "pfnscope-ext.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>

#include "pfnscope/entry.h"
#include "pfnscope/json.h"
#include "pfnscope/layout.h"
#include "pfnscope/page.h"
#include "pfnscope/reader.h"
#include "pfnscope/readers.h"
#include "pfnscope/summary.h"
#include "pfnscope/target.h"
#include "pfnscope/task.h"
#include "pfnscope/vma.h"
#include "pfnscope/walk.h"
#include "pfnscope/diagnose.h"

#define WRITE_ERROR 0x7fff0001   /* callback stop code: output write failed */

enum { RD_CALLABLE = 0, RD_FILE = 1 };

typedef struct {
	PyObject_HEAD
	LayoutObject *layout;
	PyObject *reader;        /* a File (KdumpFile, RawFile) or a callable */
	int rkind;
	int busy;                /* a call is using t/rd (GIL may be released) */
	int rd_ok;
	struct pfs_reader rd;
	struct pfs_target t;
	/* a non-Exception BaseException raised by the Python reader */
	PyObject *pend_type, *pend_val, *pend_tb;
	uint64_t py_reads, py_failed;
} TargetObject;

/* pfs_read_phys_fn over a Python callable; called with the GIL held */
static int py_read_phys(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	TargetObject *self = ctx;
	PyObject *r;
	Py_buffer view;
	int ret = -1;

	if (self->pend_type)
		return -1;   /* interrupted: fail fast until the call returns */
	self->py_reads++;
	r = PyObject_CallFunction(self->reader, "Kn", (unsigned long long)paddr, (Py_ssize_t)len);
	if (!r) {
		if (PyErr_ExceptionMatches(PyExc_Exception))
			PyErr_Clear();    /* FaultError & co: unreadable */
		else
			PyErr_Fetch(&self->pend_type, &self->pend_val, &self->pend_tb);
		self->py_failed++;
		return -1;
	}
	if (PyObject_GetBuffer(r, &view, PyBUF_SIMPLE) == 0) {
		if ((size_t)view.len == len) {
			memcpy(buf, view.buf, len);
			ret = 0;
		}
		PyBuffer_Release(&view);
	} else {
		PyErr_Clear();
	}
	Py_DECREF(r);
	if (ret)
		self->py_failed++;
	return ret;
}

static int Target_init(TargetObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "layout", "reader", NULL };
	PyObject *layout, *reader;
	pfs_read_phys_fn fn;
	pfs_map_phys_fn map = NULL;
	void *ctx;
	int rkind;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O:Target", kwlist, &LayoutType, &layout,
					 &reader))
		return -1;
	if (self->layout) {
		PyErr_SetString(PyExc_RuntimeError, "Target already initialized");
		return -1;
	}
	if (PyObject_TypeCheck(reader, &FileType)) {
		FileObject *f = (FileObject *)reader;
		if (pfs_py_file_check(f))
			return -1;
		fn = f->format->read_phys;
		map = f->format->map_phys;
		ctx = f->file;
		rkind = RD_FILE;
	} else if (PyCallable_Check(reader)) {
		fn = py_read_phys;
		ctx = self;
		rkind = RD_CALLABLE;
	} else {
		PyErr_SetString(PyExc_TypeError,
				"reader must be a KdumpFile, a RawFile or a callable read(paddr, size) -> bytes");
		return -1;
	}
	if (pfs_reader_init(&self->rd, fn, ctx) != 0) {
		PyErr_NoMemory();
		return -1;
	}
	pfs_reader_set_map(&self->rd, map);
	self->rd_ok = 1;
	Py_INCREF(layout);
	self->layout = (LayoutObject *)layout;
	Py_INCREF(reader);
	self->reader = reader;
	self->rkind = rkind;
	if (rkind == RD_FILE)
		((FileObject *)reader)->users++;
	pfs_target_init(&self->t, &self->layout->lo, &self->rd);
	return 0;
}

static void Target_dealloc(TargetObject *self)
{
	if (self->rd_ok)
		pfs_reader_fini(&self->rd);
	if (self->reader) {
		if (self->rkind == RD_FILE)
			((FileObject *)self->reader)->users--;
	}
	Py_XDECREF(self->layout);
	Py_XDECREF(self->reader);
	Py_XDECREF(self->pend_type);
	Py_XDECREF(self->pend_val);
	Py_XDECREF(self->pend_tb);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Enter a core call: one at a time per Target (the caches are not shared). */
static int tgt_enter(TargetObject *self)
{
	if (!self->layout) {
		PyErr_SetString(PyExc_ValueError, "Target not initialized");
		return -1;
	}
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError, "Target is in use by another thread");
		return -1;
	}
	self->busy = 1;
	pfs_error_clear(&self->t.error);
	return 0;
}

/* Leave; returns -1 with a Python exception set when the core failed (err
 * < 0) or the Python reader was interrupted. */
static int tgt_leave(TargetObject *self, int err)
{
	self->busy = 0;
	if (self->pend_type) {
		PyErr_Restore(self->pend_type, self->pend_val, self->pend_tb);
		self->pend_type = self->pend_val = self->pend_tb = NULL;
		pfs_target_flush(&self->t);    /* negative cache entries are bogus */
		return -1;
	}
	if (err < 0) {
		pfs_py_error(err, &self->t.error);
		return -1;
	}
	return 0;
}

/* run a core call with the GIL released when the reader is pure C */
#define CORE_CALL(self, ret, call)                       \
	do {                                             \
		if ((self)->rkind == RD_CALLABLE) {      \
			ret = (call);                    \
		} else {                                 \
			Py_BEGIN_ALLOW_THREADS           \
			ret = (call);                    \
			Py_END_ALLOW_THREADS             \
		}                                        \
	} while (0)

/* read_phys(paddr, size) / read_kvirt(va, size) -> bytes */
static PyObject *target_read(TargetObject *self, PyObject *args, int kvirt)
{
	unsigned long long addr;
	Py_ssize_t n;
	int r;

	if (!PyArg_ParseTuple(args, kvirt ? "Kn:read_kvirt" : "Kn:read_phys", &addr, &n))
		return NULL;
	if (n < 0) {
		PyErr_SetString(PyExc_ValueError, "negative size");
		return NULL;
	}
	PyObject *b = PyBytes_FromStringAndSize(NULL, n);
	if (!b || tgt_enter(self)) {
		Py_XDECREF(b);
		return NULL;
	}
	if (kvirt) {
		CORE_CALL(self, r, pfs_read_kvirt(&self->t, addr, PyBytes_AS_STRING(b), (size_t)n));
	} else {
		CORE_CALL(self, r, pfs_read_phys(&self->rd, addr, PyBytes_AS_STRING(b), (size_t)n));
		if (r > 0)
			r = -r;
		if (r < 0 && !self->t.error.what)
			r = pfs_error_set(&self->t.error, PFS_EREAD, "physical read", addr);
	}
	if (tgt_leave(self, r)) {
		Py_DECREF(b);
		return NULL;
	}
	return b;
}

static PyObject *Target_read_phys(TargetObject *self, PyObject *args)
{
	return target_read(self, args, 0);
}

static PyObject *Target_read_kvirt(TargetObject *self, PyObject *args)
{
	return target_read(self, args, 1);
}

/* fn(target, arg) -> the physical address it gives */
static PyObject *target_to_phys(TargetObject *self, PyObject *arg,
				int (*fn)(struct pfs_target *t, uint64_t va, uint64_t *pa))
{
	unsigned long long va = PyLong_AsUnsignedLongLongMask(arg);
	uint64_t pa = 0;
	int r;

	if (PyErr_Occurred() || tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, fn(&self->t, va, &pa));
	if (tgt_leave(self, r))
		return NULL;
	return PyLong_FromUnsignedLongLong(pa);
}

static int kvirt_to_phys(struct pfs_target *t, uint64_t va, uint64_t *pa)
{
	return pfs_kvirt_to_phys(t, va, pa, NULL);
}

static PyObject *Target_kvirt_to_phys(TargetObject *self, PyObject *arg)
{
	return target_to_phys(self, arg, kvirt_to_phys);
}

static PyObject *Target_pgd_phys(TargetObject *self, PyObject *arg)
{
	return target_to_phys(self, arg, pfs_mm_pgd_phys);
}

/* ---- growable C arrays filled by core callbacks (no Python inside) ---- */

struct vec {
	void *data;
	size_t n, cap, elem;
};

static int vec_push(struct vec *v, const void *x)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void *d = realloc(v->data, cap * v->elem);
		if (!d)
			return -1;
		v->data = d;
		v->cap = cap;
	}
	memcpy((char *)v->data + v->n * v->elem, x, v->elem);
	v->n++;
	return 0;
}

struct vec_conv {
	const struct vec *v;
	PyObject *(*conv)(const void *item);
};

static PyObject *vec_item(const void *ctx, size_t i)
{
	const struct vec_conv *c = ctx;

	return c->conv((const char *)c->v->data + i * c->v->elem);
}

/* The list of conv(item) for the items of v, which it frees; NULL on error. */
static PyObject *vec_list(struct vec *v, PyObject *(*conv)(const void *item))
{
	struct vec_conv c = { v, conv };
	PyObject *l = pfs_py_list_build(v->n, vec_item, &c);

	free(v->data);
	return l;
}

static int task_cb(const struct pfs_task *task, void *arg)
{
	if (task->err)           /* unreadable: see Target.unreadable_tasks() */
		return 0;
	return vec_push(arg, task) ? -PFS_ENOMEM : 0;
}

static int unreadable_task_cb(const struct pfs_task *task, void *arg)
{
	if (!task->err)
		return 0;
	return vec_push(arg, task) ? -PFS_ENOMEM : 0;
}

static PyObject *task_tuple(const struct pfs_task *t)
{
	return Py_BuildValue("(KiiKN)", (unsigned long long)t->task, (int)t->pid, (int)t->tgid,
			     (unsigned long long)t->mm,
			     PyUnicode_DecodeUTF8(t->comm, (Py_ssize_t)strnlen(t->comm, sizeof(t->comm)),
						  "replace"));
}

static PyObject *task_item(const void *t) { return task_tuple(t); }

/* The tasks cb keeps, as a list of conv(task). */
static PyObject *task_list(TargetObject *self, int (*cb)(const struct pfs_task *, void *),
			   PyObject *(*conv)(const void *task))
{
	struct vec v = { NULL, 0, 0, sizeof(struct pfs_task) };
	int r;

	if (tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_for_each_task(&self->t, cb, &v));
	if (tgt_leave(self, r)) {
		free(v.data);
		return NULL;
	}
	return vec_list(&v, conv);
}

static PyObject *Target_tasks(TargetObject *self, PyObject *noargs)
{
	(void)noargs;
	return task_list(self, task_cb, task_item);
}

static PyObject *unreadable_task_item(const void *task)
{
	const struct pfs_task *t = task;

	return Py_BuildValue("(Kis)", (unsigned long long)t->task, (int)t->pid,
			     pfs_strerror(t->err));
}

/* Leaders whose task_struct could not be read (found through the pid idr
 * after the task list broke): [(task_va, pid, errno_name_message)] */
static PyObject *Target_unreadable_tasks(TargetObject *self, PyObject *noargs)
{
	(void)noargs;
	return task_list(self, unreadable_task_cb, unreadable_task_item);
}

/* The end of a lookup that returned r: conv(found), None when nothing was
 * found (-PFS_ENOENT), NULL with the error raised. */
static PyObject *tgt_leave_found(TargetObject *self, int r, PyObject *(*conv)(const void *found),
				 const void *found)
{
	if (r == -PFS_ENOENT) {
		if (tgt_leave(self, 0))
			return NULL;
		Py_RETURN_NONE;
	}
	if (tgt_leave(self, r))
		return NULL;
	return conv(found);
}

static PyObject *vma_item(const void *v);

static PyObject *Target_find_task(TargetObject *self, PyObject *arg)
{
	long pid = PyLong_AsLong(arg);
	struct pfs_task task;
	int r;

	if ((pid == -1 && PyErr_Occurred()) || tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_find_task(&self->t, (int32_t)pid, &task));
	return tgt_leave_found(self, r, task_item, &task);
}

static PyObject *vma_tuple(const struct pfs_vma *v);
static PyObject *vma_item(const void *v) { return vma_tuple(v); }

static PyObject *vma_tuple(const struct pfs_vma *v)
{
	return Py_BuildValue("(KKKKKKK)", (unsigned long long)v->vma, (unsigned long long)v->start,
			     (unsigned long long)v->end, (unsigned long long)v->vm_flags,
			     (unsigned long long)v->pgoff, (unsigned long long)v->file,
			     (unsigned long long)v->ops);
}

/* vma tuple -> struct pfs_vma; re-reads nothing (what the caller has) */
int parse_vma(PyObject *o, uint64_t mm, struct pfs_vma *v)
{
	unsigned long long a[7];

	if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) < 7) {
		PyErr_SetString(PyExc_TypeError,
				"vma must be a tuple (vma_va, start, end, vm_flags, pgoff, file_va, ops_va)");
		return -1;
	}
	for (int i = 0; i < 7; i++) {
		a[i] = PyLong_AsUnsignedLongLongMask(PyTuple_GET_ITEM(o, i));
		if (PyErr_Occurred())
			return -1;
	}
	memset(v, 0, sizeof(*v));
	v->vma = a[0];
	v->start = a[1];
	v->end = a[2];
	v->vm_flags = a[3];
	v->pgoff = a[4];
	v->file = a[5];
	v->ops = a[6];
	v->mm = mm;
	return 0;
}

/* Complete a pfs_vma from the target when the tuple names a real
 * vm_area_struct (private_data, vm_ops members); the tuple's own values
 * win for the fields it carries. */
static void vma_complete(TargetObject *self, struct pfs_vma *v)
{
	struct pfs_vma full;

	if (!v->vma)
		return;
	if (pfs_vma_read(&self->t, v->vma, &full) == 0 && full.start == v->start &&
	    full.end == v->end) {
		uint64_t mm = v->mm ? v->mm : full.mm;
		uint64_t flags = v->vm_flags, pgoff = v->pgoff, file = v->file, ops = v->ops;
		*v = full;
		v->mm = mm;
		v->vm_flags = flags;
		v->pgoff = pgoff;
		v->file = file;
		v->ops = ops;
	}
	pfs_error_clear(&self->t.error);
}

static int vma_cb(const struct pfs_vma *vma, void *arg)
{
	return vec_push(arg, vma) ? -PFS_ENOMEM : 0;
}

static PyObject *Target_vmas(TargetObject *self, PyObject *arg)
{
	unsigned long long mm = PyLong_AsUnsignedLongLongMask(arg);
	struct vec v = { NULL, 0, 0, sizeof(struct pfs_vma) };
	int r;

	if (PyErr_Occurred())
		return NULL;
	if (!mm)
		return PyList_New(0);   /* kernel thread */
	if (tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_for_each_vma(&self->t, mm, vma_cb, &v));
	if (tgt_leave(self, r)) {
		free(v.data);
		return NULL;
	}
	return vec_list(&v, vma_item);
}

static PyObject *Target_find_vma(TargetObject *self, PyObject *args)
{
	unsigned long long mm, addr;
	struct pfs_vma vma;
	int r;

	if (!PyArg_ParseTuple(args, "KK:find_vma", &mm, &addr) || tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_find_vma(&self->t, mm, addr, &vma));
	return tgt_leave_found(self, r, vma_item, &vma);
}

static PyObject *Target_vma_diagnoses(TargetObject *self, PyObject *arg)
{
	struct pfs_vma v;

	if (parse_vma(arg, 0, &v))
		return NULL;
	if (tgt_enter(self))
		return NULL;
	vma_complete(self, &v);
	if (tgt_leave(self, 0))
		return NULL;
	return diag_list(pfs_diagnose_vma(&self->layout->lo, &v));
}

/* ---- walks ---- */

static int parse_range(PyObject *start_o, PyObject *end_o, const struct pfs_vma *v,
		       uint64_t *start, uint64_t *end)
{
	*start = v->start;
	*end = v->end;
	if (start_o && start_o != Py_None) {
		*start = PyLong_AsUnsignedLongLongMask(start_o);
		if (PyErr_Occurred())
			return -1;
	}
	if (end_o && end_o != Py_None) {
		*end = PyLong_AsUnsignedLongLongMask(end_o);
		if (PyErr_Occurred())
			return -1;
	}
	if (*start < v->start)
		*start = v->start;
	if (*end > v->end)
		*end = v->end;
	return 0;
}

struct collect {
	struct vec vec;
	uint64_t pfn_lo, pfn_hi;        /* only entries mapping a pfn in [lo, hi] */
};

/* The pfns= filter of walk/walk_write: without one (the whole [0, max]
 * range) every entry passes, also those that map no pfn (swap entries,
 * markers, none entries). */
static int pfn_filter_pass(const struct pfs_entry *e, uint64_t lo, uint64_t hi)
{
	if (lo == 0 && hi == UINT64_MAX)
		return 1;
	return pfs_entry_maps_pfn(e, lo, hi);
}

static int entry_collect_cb(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct collect *c = arg;
	(void)vma;

	if (!pfn_filter_pass(e, c->pfn_lo, c->pfn_hi))
		return 0;
	return vec_push(&c->vec, e) ? -PFS_ENOMEM : 0;
}

/* root of the walk: mm's pgd, or an explicit pgd physical address */
/* 0: *pgd given by the caller; 1: resolve from mm in the core call; -1: error */
static int walk_root(PyObject *pgd_o, uint64_t *pgd)
{
	if (pgd_o && pgd_o != Py_None) {
		*pgd = PyLong_AsUnsignedLongLongMask(pgd_o);
		return PyErr_Occurred() ? -1 : 0;
	}
	return 1;
}

struct entries {
	const struct pfs_entry *e;
	LayoutObject *layout;
};

static PyObject *entry_item(const void *ctx, size_t i)
{
	const struct entries *es = ctx;

	return entry_new(&es->e[i], es->layout);
}

/* The walk of walk() and walk_write(), between tgt_enter and tgt_leave:
 * mm's own pgd unless one was given (need_pgd 0), then [start, end) of v. */
static int target_walk(TargetObject *self, uint64_t mm, int need_pgd, uint64_t pgd,
		       struct pfs_vma *v, uint64_t start, uint64_t end, unsigned flags,
		       pfs_entry_cb cb, pfs_repeat_cb rcb, void *arg)
{
	int r = 0;

	vma_complete(self, v);
	if (need_pgd)
		CORE_CALL(self, r, pfs_mm_pgd_phys(&self->t, mm, &pgd));
	if (r == 0 && start < end)
		CORE_CALL(self, r, pfs_walk_vma_repeats(&self->t, pgd, v, start, end, flags, cb, rcb,
							arg));
	return r;
}

static PyObject *Target_walk(TargetObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "mm", "vma", "start", "end", "flags", "pgd", "pfns", NULL };
	unsigned long long mm;
	PyObject *vma_o, *start_o = NULL, *end_o = NULL, *pgd_o = NULL;
	unsigned flags = 0;
	struct pfs_vma v;
	uint64_t start, end, pgd = 0;
	struct collect col = { { NULL, 0, 0, sizeof(struct pfs_entry) }, 0, UINT64_MAX };
	int r = 0, need_pgd;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "KO|OOIO(KK):walk", kwlist, &mm, &vma_o,
					 &start_o, &end_o, &flags, &pgd_o, &col.pfn_lo, &col.pfn_hi))
		return NULL;
	if (parse_vma(vma_o, mm, &v) || parse_range(start_o, end_o, &v, &start, &end))
		return NULL;
	need_pgd = walk_root(pgd_o, &pgd);
	if (need_pgd < 0 || tgt_enter(self))
		return NULL;
	r = target_walk(self, mm, need_pgd, pgd, &v, start, end, flags, entry_collect_cb, NULL, &col);
	if (tgt_leave(self, r)) {
		free(col.vec.data);
		return NULL;
	}
	struct entries es = { col.vec.data, self->layout };
	PyObject *l = pfs_py_list_build(col.vec.n, entry_item, &es);
	free(col.vec.data);
	return l;
}

enum wmode { WM_JSON, WM_TABLE, WM_SUM_JSON, WM_SUM_TABLE, WM_COUNT };

struct wctx {
	struct pfs_buf buf;
	enum wmode mode;
	int only_diag;
	uint64_t pfn_lo, pfn_hi;        /* only entries mapping a pfn in [lo, hi] */
	int32_t pid;
	uint64_t vma_start;
	const struct pfs_layout *lo;
	struct pfs_summary sum;
	uint64_t entries;
	uint64_t diag_counts[PFS_D__COUNT];
};

static int run_write_cb(const struct pfs_run *r, void *arg)
{
	struct wctx *w = arg;

	if (w->only_diag && !r->first.diag)
		return 0;
	if (w->mode == WM_SUM_JSON)
		pfs_json_run(&w->buf, r, w->pid, w->vma_start, w->lo);
	else
		pfs_table_run(&w->buf, r, w->lo);
	return w->buf.error.code ? WRITE_ERROR : 0;
}

/* n entries written (or counted), each with the diagnoses diag */
static void count_entries(struct wctx *w, uint32_t diag, uint64_t n)
{
	w->entries += n;
	for (uint32_t m = diag; m; m &= m - 1) {
		unsigned d = (unsigned)__builtin_ctz(m);
		if (d < PFS_D__COUNT)
			w->diag_counts[d] += n;
	}
}

static int entry_write_cb(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct wctx *w = arg;
	(void)vma;

	if (!pfn_filter_pass(e, w->pfn_lo, w->pfn_hi))
		return 0;
	count_entries(w, e->diag, 1);
	if (e->changed && w->mode != WM_COUNT) {
		/* PFS_WALK_CONFIRM withdrew the entry's diagnoses */
		if (w->mode == WM_JSON || w->mode == WM_SUM_JSON)
			pfs_json_changed(&w->buf, w->pid, w->vma_start, e->addr, e->changed_raw_before,
					 e->changed_raw_after, e->changed_level, e->changed,
					 e->changed_diag);
		else
			pfs_table_changed(&w->buf, e->addr, e->changed_raw_before, e->changed_raw_after,
					  e->changed_level, e->changed, e->changed_diag);
	}
	switch (w->mode) {
	case WM_JSON:
		if (!w->only_diag || e->diag)
			pfs_json_entry(&w->buf, e, w->pid, w->vma_start, w->lo);
		break;
	case WM_TABLE:
		if (!w->only_diag || e->diag)
			pfs_table_entry(&w->buf, e, w->lo);
		break;
	case WM_SUM_JSON:
	case WM_SUM_TABLE:
		return pfs_summary_add(&w->sum, e);
	case WM_COUNT:
		return 0;
	}
	return w->buf.error.code ? WRITE_ERROR : 0;
}

/* entry_write_cb's count entries after e, in a summary or count without
 * a pfns= filter (entries that repeat e: its diagnoses, its run) */
static int entry_repeat_cb(const struct pfs_entry *e, uint64_t count, const uint64_t *raw,
			   const struct pfs_vma *vma, void *arg)
{
	struct wctx *w = arg;
	(void)vma;

	count_entries(w, e->diag, count);
	if (w->mode == WM_COUNT)
		return 0;
	return pfs_summary_add_repeats(&w->sum, e, count, raw);
}

/* A walk's output context: mode ("json", "table", "summary-json",
 * "summary-table" or "count") written to fd, or kept in memory (fd -1);
 * every pfn passes.  NULL with an exception set. */
static struct wctx *wctx_new(TargetObject *self, const char *mode, int fd, int pid, int only_diag)
{
	static const char *const names[] = {
		[WM_JSON] = "json", [WM_TABLE] = "table", [WM_SUM_JSON] = "summary-json",
		[WM_SUM_TABLE] = "summary-table", [WM_COUNT] = "count",
	};
	unsigned m = 0;

	while (m <= WM_COUNT && strcmp(mode, names[m]))
		m++;
	if (m > WM_COUNT) {
		PyErr_Format(PyExc_ValueError,
			     "mode must be json, table, summary-json, summary-table or count, not %s",
			     mode);
		return NULL;
	}
	struct wctx *w = calloc(1, sizeof(*w));
	if (!w) {
		PyErr_NoMemory();
		return NULL;
	}
	w->mode = (enum wmode)m;
	w->only_diag = only_diag;
	w->pfn_hi = UINT64_MAX;
	w->pid = pid;
	w->lo = &self->layout->lo;
	pfs_summary_init(&w->sum, run_write_cb, w);
	if (pfs_buf_init(&w->buf, fd < 0 ? 4096 : 1u << 20, w->mode == WM_COUNT ? -1 : fd)) {
		free(w);
		PyErr_NoMemory();
		return NULL;
	}
	return w;
}

/* entry_repeat_cb when w's output takes a run of repeats whole (a summary
 * or a count, every pfn passing), else NULL: each entry is delivered */
static pfs_repeat_cb wctx_repeat_cb(const struct wctx *w)
{
	return (w->mode == WM_SUM_JSON || w->mode == WM_SUM_TABLE || w->mode == WM_COUNT) &&
	       w->pfn_lo == 0 && w->pfn_hi == UINT64_MAX ? entry_repeat_cb : NULL;
}

/* walk_write's and walk_bytes's arguments, but for the fd */
struct walk_args {
	unsigned long long mm, pfn_lo, pfn_hi;
	PyObject *vma_o, *vs_o, *start_o, *end_o, *pgd_o;
	const char *mode;
	unsigned flags;
	int pid, only_diag;
};

#define WALK_KWLIST "mm", "vma", "pid", "vma_start", "mode", "flags", "start", "end", \
	"only_diag", "pgd", "pfns", NULL
#define WALK_ARGS(a) &(a).mm, &(a).vma_o, &(a).pid, &(a).vs_o, &(a).mode, &(a).flags, \
	&(a).start_o, &(a).end_o, &(a).only_diag, &(a).pgd_o, &(a).pfn_lo, &(a).pfn_hi

/* The walk of walk_write() (its output written to fd) and walk_bytes()
 * (fd -1: kept in w->buf): the finished context, or NULL with an
 * exception set. */
static struct wctx *walk_output(TargetObject *self, const struct walk_args *a, int fd)
{
	struct pfs_vma v;
	uint64_t start, end, pgd = 0;
	int r = 0, need_pgd;

	if (parse_vma(a->vma_o, a->mm, &v) || parse_range(a->start_o, a->end_o, &v, &start, &end))
		return NULL;

	uint64_t vma_start = v.start;
	if (a->vs_o && a->vs_o != Py_None) {
		vma_start = PyLong_AsUnsignedLongLongMask(a->vs_o);
		if (PyErr_Occurred())
			return NULL;
	}
	struct wctx *w = wctx_new(self, a->mode, fd, a->pid, a->only_diag);
	if (!w)
		return NULL;
	w->pfn_lo = a->pfn_lo;
	w->pfn_hi = a->pfn_hi;
	w->vma_start = vma_start;
	need_pgd = walk_root(a->pgd_o, &pgd);
	if (need_pgd < 0 || tgt_enter(self)) {
		pfs_buf_fini(&w->buf);
		free(w);
		return NULL;
	}
	r = target_walk(self, a->mm, need_pgd, pgd, &v, start, end, a->flags, entry_write_cb,
			wctx_repeat_cb(w), w);
	if (r == 0 && (w->mode == WM_SUM_JSON || w->mode == WM_SUM_TABLE))
		r = pfs_summary_flush(&w->sum);
	if (w->buf.fd >= 0) {     /* walk_write's output; not count mode or walk_bytes */
		if (self->rkind == RD_CALLABLE) {
			pfs_buf_flush(&w->buf);
		} else {
			Py_BEGIN_ALLOW_THREADS
			pfs_buf_flush(&w->buf);
			Py_END_ALLOW_THREADS
		}
	}
	struct pfs_error werr = w->buf.error;
	if (r == WRITE_ERROR)
		r = 0;
	if (tgt_leave(self, r) < 0) {
		pfs_buf_fini(&w->buf);
		free(w);
		return NULL;
	}
	if (werr.code) {
		pfs_buf_fini(&w->buf);
		free(w);
		pfs_py_error(0, &werr);
		return NULL;
	}
	return w;
}

/* (entries, runs, diag_counts) of a finished walk; w is freed */
static PyObject *walk_result(struct wctx *w, PyObject *data)
{
	PyObject *counts = PyDict_New();
	for (unsigned d = 0; counts && d < PFS_D__COUNT; d++) {
		if (!w->diag_counts[d])
			continue;
		if (pfs_py_dict_set(counts, pfs_diag_name(d),
				    PyLong_FromUnsignedLongLong(w->diag_counts[d])) < 0)
			Py_CLEAR(counts);
	}
	PyObject *ret = NULL;
	if (counts && data)
		ret = Py_BuildValue("(NKKN)", data, (unsigned long long)w->entries,
				    (unsigned long long)w->sum.runs, counts);
	else if (counts)
		ret = Py_BuildValue("(KKN)", (unsigned long long)w->entries,
				    (unsigned long long)w->sum.runs, counts);
	else
		Py_XDECREF(data);
	pfs_buf_fini(&w->buf);
	free(w);
	return ret;
}

static PyObject *Target_walk_write(TargetObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "fd", WALK_KWLIST };
	struct walk_args a = { .pfn_hi = UINT64_MAX, .mode = "json" };
	int fd;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "iKOi|OsIOOpO(KK):walk_write", kwlist, &fd,
					 WALK_ARGS(a)))
		return NULL;
	struct wctx *w = walk_output(self, &a, fd);
	return w ? walk_result(w, NULL) : NULL;
}

static PyObject *Target_walk_bytes(TargetObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { WALK_KWLIST };
	struct walk_args a = { .pfn_hi = UINT64_MAX, .mode = "json" };

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "KOi|OsIOOpO(KK):walk_bytes", kwlist,
					 WALK_ARGS(a)))
		return NULL;
	struct wctx *w = walk_output(self, &a, -1);
	if (!w)
		return NULL;
	PyObject *data = PyBytes_FromStringAndSize(w->buf.data, (Py_ssize_t)w->buf.len);
	if (!data) {
		pfs_buf_fini(&w->buf);
		free(w);
		return NULL;
	}
	return walk_result(w, data);
}

/* ---- check: every VMA of an mm in one call ---- */

/* One VMA of check_mm(): its diagnoses, the entries walked, and its
 * only_diag summary runs, bytes [runs, runs + runs_len) of the shared
 * output buffer. */
struct mm_vma {
	struct pfs_vma v;
	uint32_t diags;
	uint64_t entries;
	size_t runs, runs_len;
};

static int mm_vma_cb(const struct pfs_vma *vma, void *arg)
{
	struct mm_vma m = { .v = *vma };

	return vec_push(arg, &m) ? -PFS_ENOMEM : 0;
}

/* The VMAs of mm (for_each_vma(), unless listed: those in vmas already),
 * then each one as vma_diagnoses() and walk_bytes(mode="summary-json",
 * only_diag=True) see it: the tree's vm_area_struct read once, mm->pgd
 * read once.  No Python inside. */
static int mm_walks(struct pfs_target *t, uint64_t mm, unsigned flags, struct wctx *w,
		    struct vec *vmas, int listed)
{
	uint64_t pgd = 0;
	int r = listed ? 0 : pfs_for_each_vma(t, mm, mm_vma_cb, vmas);

	if (r == 0 && vmas->n)
		r = pfs_mm_pgd_phys(t, mm, &pgd);
	for (size_t i = 0; r == 0 && i < vmas->n; i++) {
		struct mm_vma *m = (struct mm_vma *)vmas->data + i;
		m->v.mm = mm;   /* as parse_vma() sets it (a layout without vm_mm reads 0) */
		m->diags = pfs_diagnose_vma(w->lo, &m->v);
		w->vma_start = m->v.start;
		w->entries = 0;
		pfs_summary_init(&w->sum, run_write_cb, w);
		m->runs = w->buf.len;
		if (m->v.start < m->v.end)
			r = pfs_walk_vma_repeats(t, pgd, &m->v, m->v.start, m->v.end, flags,
						 entry_write_cb, wctx_repeat_cb(w), w);
		if (r == 0)
			r = pfs_summary_flush(&w->sum);
		m->runs_len = w->buf.len - m->runs;
		m->entries = w->entries;
	}
	return r;
}

static PyObject *Target_check_mm(TargetObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "mm", "pid", "flags", "each", "vmas", NULL };
	unsigned long long mm;
	unsigned flags = 0;
	int pid, each = 0, r = 0;
	PyObject *vmas_o = Py_None, *hits = NULL, *all = NULL, *ret = NULL;
	struct vec vmas = { NULL, 0, 0, sizeof(struct mm_vma) };
	unsigned long long total = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "Ki|IpO:check_mm", kwlist, &mm, &pid, &flags,
					 &each, &vmas_o))
		return NULL;
	struct wctx *w = wctx_new(self, "summary-json", -1, pid, 1);
	if (!w)
		return NULL;
	int listed = vmas_o != Py_None;
	PyObject *seq = listed ? PySequence_Fast(vmas_o, "vmas must be a list of VMA tuples") : NULL;
	if (listed && !seq)
		goto out;
	for (Py_ssize_t i = 0; listed && i < PySequence_Fast_GET_SIZE(seq); i++) {
		struct mm_vma m = { .diags = 0 };
		if (parse_vma(PySequence_Fast_GET_ITEM(seq, i), mm, &m.v))
			goto out;
		if (vec_push(&vmas, &m)) {
			PyErr_NoMemory();
			goto out;
		}
	}
	if (tgt_enter(self))
		goto out;
	for (size_t i = 0; i < vmas.n; i++)
		vma_complete(self, &((struct mm_vma *)vmas.data)[i].v);
	if (mm)
		CORE_CALL(self, r, mm_walks(&self->t, mm, flags, w, &vmas, listed));
	struct pfs_error werr = w->buf.error;
	if (r == WRITE_ERROR)
		r = 0;
	if (tgt_leave(self, r) < 0)
		goto out;
	if (werr.code) {
		pfs_py_error(0, &werr);
		goto out;
	}
	hits = PyList_New(0);
	all = each ? PyList_New(0) : Py_NewRef(Py_None);
	if (!hits || !all)
		goto out;
	for (size_t i = 0; i < vmas.n; i++) {
		const struct mm_vma *m = (const struct mm_vma *)vmas.data + i;
		total += m->entries;
		if (each && pfs_py_list_append(all, Py_BuildValue("(NK)", vma_tuple(&m->v),
								   (unsigned long long)m->entries)) < 0)
			goto out;
		if ((m->diags || m->runs_len) &&
		    pfs_py_list_append(hits, Py_BuildValue(
				"(NNNK)", vma_tuple(&m->v), diag_list(m->diags),
				PyBytes_FromStringAndSize(w->buf.data + m->runs, (Py_ssize_t)m->runs_len),
				(unsigned long long)m->entries)) < 0)
			goto out;
	}
	ret = Py_BuildValue("(KOO)", total, hits, all);
out:
	Py_XDECREF(seq);
	Py_XDECREF(hits);
	Py_XDECREF(all);
	free(vmas.data);
	pfs_buf_fini(&w->buf);
	free(w);
	return ret;
}

static PyObject *Target_stats(TargetObject *self, PyObject *noargs)
{
	(void)noargs;
	return Py_BuildValue("{s:K,s:K,s:K,s:K}", "reads", (unsigned long long)self->rd.stats_reads,
			     "bytes", (unsigned long long)self->rd.stats_bytes,
			     "py_reads", (unsigned long long)self->py_reads,
			     "py_failed", (unsigned long long)self->py_failed);
}

static PyObject *Target_flush_cache(TargetObject *self, PyObject *noargs)
{
	(void)noargs;
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError, "Target is in use by another thread");
		return NULL;
	}
	pfs_target_flush(&self->t);
	Py_RETURN_NONE;
}

static PyObject *Target_get_layout(TargetObject *self, void *c)
{
	(void)c;
	Py_XINCREF(self->layout);
	return (PyObject *)self->layout;
}

static PyObject *Target_get_reader(TargetObject *self, void *c)
{
	(void)c;
	Py_XINCREF(self->reader);
	return self->reader;
}

static PyMethodDef Target_methods[] = {
	{ "read_phys", (PyCFunction)Target_read_phys, METH_VARARGS, "read_phys(paddr, size) -> bytes" },
	{ "read_kvirt", (PyCFunction)Target_read_kvirt, METH_VARARGS, "read_kvirt(va, size) -> bytes" },
	{ "kvirt_to_phys", (PyCFunction)Target_kvirt_to_phys, METH_O, "kvirt_to_phys(va) -> int" },
	{ "pgd_phys", (PyCFunction)Target_pgd_phys, METH_O, "pgd_phys(mm) -> int" },
	{ "tasks", (PyCFunction)Target_tasks, METH_NOARGS,
	  "tasks() -> [(task_va, pid, tgid, mm_va, comm)]" },
	{ "find_task", (PyCFunction)Target_find_task, METH_O, "find_task(pid) -> task tuple | None" },
	{ "unreadable_tasks", (PyCFunction)Target_unreadable_tasks, METH_NOARGS,
	  "unreadable_tasks() -> [(task_va, pid, reason)]: leaders found through the pid idr "
	  "whose task_struct could not be read (the task list was broken)" },
	{ "vmas", (PyCFunction)Target_vmas, METH_O,
	  "vmas(mm) -> [(vma_va, start, end, vm_flags, pgoff, file_va, ops_va)]" },
	{ "find_vma", (PyCFunction)Target_find_vma, METH_VARARGS, "find_vma(mm, addr) -> vma tuple | None" },
	{ "vma_diagnoses", (PyCFunction)Target_vma_diagnoses, METH_O,
	  "vma_diagnoses(vma) -> [(code, severity)]" },
	{ "walk", (PyCFunction)(void (*)(void))Target_walk, METH_VARARGS | METH_KEYWORDS,
	  "walk(mm, vma, start=None, end=None, flags=0, pgd=None, pfns=(0, 2**64 - 1)) -> [Entry];"
	  " pfns=(lo, hi): only entries that map a pfn in [lo, hi]" },
	{ "walk_write", (PyCFunction)(void (*)(void))Target_walk_write, METH_VARARGS | METH_KEYWORDS,
	  "walk_write(fd, mm, vma, pid, vma_start=None, mode='json', flags=0, start=None, end=None,"
	  " only_diag=False, pgd=None, pfns=(0, 2**64 - 1)) -> (entries, runs, diag_counts);"
	  " pfns=(lo, hi): only entries that map a pfn in [lo, hi]" },
	{ "walk_bytes", (PyCFunction)(void (*)(void))Target_walk_bytes, METH_VARARGS | METH_KEYWORDS,
	  "walk_bytes(mm, vma, pid, ...) -> (output, entries, runs, diag_counts): walk_write's"
	  " walk with its output returned as bytes, not written (for small outputs)" },
	{ "check_mm", (PyCFunction)(void (*)(void))Target_check_mm, METH_VARARGS | METH_KEYWORDS,
	  "check_mm(mm, pid, flags=0, each=False, vmas=None) -> (entries, hits, each): every VMA"
	  " of mm (or the VMA tuples vmas) as"
	  " vma_diagnoses(vma) and walk_bytes(mm, vma, pid, mode='summary-json', only_diag=True)"
	  " give it, in one call; hits: [(vma, diagnoses, runs, entries)] for the VMAs with a"
	  " diagnosis or a run, each: [(vma, entries)] for every VMA when each, else None" },
	{ "stats", (PyCFunction)Target_stats, METH_NOARGS, "reader statistics" },
	{ "flush_cache", (PyCFunction)Target_flush_cache, METH_NOARGS, "drop cached pages" },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef Target_getset[] = {
	{ "layout", (getter)Target_get_layout, NULL, "the Layout", NULL },
	{ "reader", (getter)Target_get_reader, NULL, "the reader", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

PyTypeObject TargetType = PFS_PY_TYPE(
	"Target", TargetObject, Py_TPFLAGS_DEFAULT, Target_dealloc,
	"Target(layout, reader): one kernel image to inspect",
	PFS_PY_TYPE_NEW(Target_init), .tp_methods = Target_methods, .tp_getset = Target_getset);

