// SPDX-License-Identifier: MIT
/*
 * pfnscope._core: the CPython extension over the C core.  API documented in
 * src/python/CORE_API.md.  Per-entry work (walk, JSON/table serialization,
 * run-length summaries, diagnosis counts) stays in C; Python objects are built
 * only when the caller asks for entries.
 */
#include "pfnscope-ext.h"
#include <structmember.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pfnscope/entry.h"
#include "pfnscope/json.h"
#include "pfnscope/layout.h"
#include "pfnscope/page.h"
#include "pfnscope/reader.h"
#include "pfnscope/readers.h"
#include "pfnscope/summary.h"
#include "pfnscope/target.h"
#include "pfnscope/vma.h"
#include "pfnscope/walk.h"
#include "pfnscope/diagnose.h"

#define WRITE_ERROR 0x7fff0001   /* callback stop code: output write failed */

/* ===================================================================== */
/* Layout                                                                */

enum ftype { FT_I32, FT_U32, FT_I64, FT_U64 };

#define FTYPE(x) _Generic((x), int: FT_I32, unsigned int: FT_U32, long: FT_I64, \
			  unsigned long: FT_U64, long long: FT_I64, unsigned long long: FT_U64)

struct field {
	const char *name;
	size_t off;
	int type;
};

static const struct field layout_fields[] = {
#define PFS_LAYOUT_FIELD(type, name, init) \
	{ #name, offsetof(struct pfs_layout, name), FTYPE(((struct pfs_layout *)0)->name) },
#include "pfnscope/layout-fields.def"
#undef PFS_LAYOUT_FIELD
};
#define N_LAYOUT_FIELDS (sizeof(layout_fields) / sizeof(layout_fields[0]))

typedef struct {
	PyObject_HEAD
	struct pfs_layout lo;
	char *names[PFS_MAX_PAGEFLAGS];   /* owned copies behind lo.pageflag_names */
} LayoutObject;

static PyTypeObject LayoutType;

static const struct field *find_field(const char *name)
{
	for (size_t i = 0; i < N_LAYOUT_FIELDS; i++)
		if (!strcmp(layout_fields[i].name, name))
			return &layout_fields[i];
	return NULL;
}

static int set_field(struct pfs_layout *lo, const struct field *f, PyObject *val)
{
	char *p = (char *)lo + f->off;

	if (!strcmp(f->name, "arch") && PyUnicode_Check(val)) {
		const char *s = PyUnicode_AsUTF8(val);
		if (!s)
			return -1;
		if (!strcmp(s, "x86_64") || !strcmp(s, "x86-64"))
			lo->arch = PFS_ARCH_X86_64;
		else if (!strcmp(s, "arm64") || !strcmp(s, "aarch64"))
			lo->arch = PFS_ARCH_ARM64;
		else {
			PyErr_Format(PyExc_ValueError, "layout: unknown arch %R", val);
			return -1;
		}
		return 0;
	}
	if (!PyLong_Check(val)) {
		PyErr_Format(PyExc_TypeError, "layout: %s must be an int, not %.100s",
			     f->name, Py_TYPE(val)->tp_name);
		return -1;
	}
	int overflow = 0;
	long long v = PyLong_AsLongLongAndOverflow(val, &overflow);
	if (v == -1 && PyErr_Occurred())
		return -1;
	switch (f->type) {
	case FT_I32:
	case FT_U32: {
		if (overflow || v < INT32_MIN || v > (long long)UINT32_MAX) {
			PyErr_Format(PyExc_ValueError, "layout: %s out of range: %R", f->name, val);
			return -1;
		}
		uint32_t u = (uint32_t)(int64_t)v;
		memcpy(p, &u, 4);
		return 0;
	}
	default: {
		uint64_t u;
		if (overflow > 0) {
			u = PyLong_AsUnsignedLongLong(val);
			if (u == (uint64_t)-1 && PyErr_Occurred()) {
				PyErr_Format(PyExc_ValueError, "layout: %s out of range: %R", f->name, val);
				return -1;
			}
		} else if (overflow < 0) {
			PyErr_Format(PyExc_ValueError, "layout: %s out of range: %R", f->name, val);
			return -1;
		} else {
			u = (uint64_t)v;   /* -1 -> all ones (UINT64_MAX markers) */
		}
		memcpy(p, &u, 8);
		return 0;
	}
	}
}

static PyObject *get_field(const struct pfs_layout *lo, const struct field *f)
{
	const char *p = (const char *)lo + f->off;

	switch (f->type) {
	case FT_I32: { int32_t v; memcpy(&v, p, 4); return PyLong_FromLong(v); }
	case FT_U32: { uint32_t v; memcpy(&v, p, 4); return PyLong_FromUnsignedLong(v); }
	case FT_I64: { int64_t v; memcpy(&v, p, 8); return PyLong_FromLongLong(v); }
	default:     { uint64_t v; memcpy(&v, p, 8); return PyLong_FromUnsignedLongLong(v); }
	}
}

static int set_pageflag_names(LayoutObject *self, PyObject *val)
{
	PyObject *k, *v;
	Py_ssize_t pos = 0;

	if (!PyDict_Check(val)) {
		PyErr_SetString(PyExc_TypeError, "layout: pageflag_names must be a dict {bit: name}");
		return -1;
	}
	while (PyDict_Next(val, &pos, &k, &v)) {
		long bit = PyLong_AsLong(k);
		if (bit == -1 && PyErr_Occurred())
			return -1;
		if (bit < 0 || bit >= PFS_MAX_PAGEFLAGS) {
			PyErr_Format(PyExc_ValueError, "layout: pageflag bit %ld out of range", bit);
			return -1;
		}
		if (v == Py_None)
			continue;
		const char *s = PyUnicode_AsUTF8(v);
		if (!s)
			return -1;
		char *copy = strdup(s);
		if (!copy) {
			PyErr_NoMemory();
			return -1;
		}
		free(self->names[bit]);
		self->names[bit] = copy;
		self->lo.pageflag_names[bit] = copy;
	}
	return 0;
}

static int Layout_init(LayoutObject *self, PyObject *args, PyObject *kwds)
{
	PyObject *d, *k, *v;
	Py_ssize_t pos = 0;
	static char *kwlist[] = { "fields", NULL };

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!:Layout", kwlist, &PyDict_Type, &d))
		return -1;
	for (int i = 0; i < PFS_MAX_PAGEFLAGS; i++) {
		free(self->names[i]);
		self->names[i] = NULL;
	}
	pfs_layout_init(&self->lo);
	for (int i = 0; i < PFS_MAX_PAGEFLAGS; i++)
		self->lo.pageflag_names[i] = NULL;

	PyObject *maj = PyDict_GetItemString(d, "version_major");
	if (maj) {
		PyObject *mi = PyDict_GetItemString(d, "version_minor");
		PyObject *pa = PyDict_GetItemString(d, "version_patch");
		unsigned long a = PyLong_AsUnsignedLong(maj);
		unsigned long b = mi ? PyLong_AsUnsignedLong(mi) : 0;
		unsigned long c = pa ? PyLong_AsUnsignedLong(pa) : 0;
		if (PyErr_Occurred())
			return -1;
		pfs_layout_set_version(&self->lo, (unsigned)a, (unsigned)b, (unsigned)c);
	}
	while (PyDict_Next(d, &pos, &k, &v)) {
		const char *name = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
		if (!name) {
			if (!PyErr_Occurred())
				PyErr_Format(PyExc_TypeError, "layout: keys must be str, not %R", k);
			return -1;
		}
		if (!strcmp(name, "pageflag_names")) {
			if (set_pageflag_names(self, v) < 0)
				return -1;
			continue;
		}
		if (!strcmp(name, "max_swapfiles")) {
			/* the swap type numbers follow from MAX_SWAPFILES */
			long max = PyLong_AsLong(v);
			if (max == -1 && PyErr_Occurred())
				return -1;
			if (pfs_layout_set_max_swapfiles(&self->lo, (int)max) < 0) {
				PyErr_Format(PyExc_ValueError,
					     "layout: MAX_SWAPFILES %ld fits no configuration of %u.%u",
					     max, self->lo.version_major, self->lo.version_minor);
				return -1;
			}
			continue;
		}
		if (!strcmp(name, "config_device_private")) {
			int on = PyObject_IsTrue(v);
			if (on < 0)
				return -1;
			pfs_layout_set_device_private(&self->lo, on);
			continue;
		}
		const struct field *f = find_field(name);
		if (!f) {
			PyErr_Format(PyExc_ValueError, "layout: unknown field %s", name);
			return -1;
		}
		if (set_field(&self->lo, f, v) < 0)
			return -1;
	}
	const char *missing = NULL;
	if (pfs_layout_validate(&self->lo, &missing) != 0) {
		PyErr_Format(PyExc_ValueError, "layout: missing %s", missing ? missing : "(unknown field)");
		return -1;
	}
	return 0;
}

static void Layout_dealloc(LayoutObject *self)
{
	for (int i = 0; i < PFS_MAX_PAGEFLAGS; i++)
		free(self->names[i]);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Layout_fields(PyObject *cls, PyObject *noargs)
{
	(void)cls; (void)noargs;
	PyObject *l = PyList_New(0);
	if (!l)
		return NULL;
	for (size_t i = 0; i < N_LAYOUT_FIELDS; i++) {
		PyObject *s = PyUnicode_FromString(layout_fields[i].name);
		if (!s || PyList_Append(l, s) < 0) {
			Py_XDECREF(s);
			Py_DECREF(l);
			return NULL;
		}
		Py_DECREF(s);
	}
	PyObject *s = PyUnicode_FromString("pageflag_names");
	if (!s || PyList_Append(l, s) < 0) {
		Py_XDECREF(s);
		Py_DECREF(l);
		return NULL;
	}
	Py_DECREF(s);
	return l;
}

static PyObject *pageflag_names_dict(const struct pfs_layout *lo)
{
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	for (int i = 0; i < PFS_MAX_PAGEFLAGS; i++) {
		if (!lo->pageflag_names[i])
			continue;
		PyObject *k = PyLong_FromLong(i), *v = PyUnicode_FromString(lo->pageflag_names[i]);
		if (!k || !v || PyDict_SetItem(d, k, v) < 0) {
			Py_XDECREF(k); Py_XDECREF(v); Py_DECREF(d);
			return NULL;
		}
		Py_DECREF(k); Py_DECREF(v);
	}
	return d;
}

static PyObject *Layout_get(LayoutObject *self, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8(arg);
	if (!name)
		return NULL;
	if (!strcmp(name, "pageflag_names"))
		return pageflag_names_dict(&self->lo);
	const struct field *f = find_field(name);
	if (!f) {
		PyErr_Format(PyExc_KeyError, "%s", name);
		return NULL;
	}
	return get_field(&self->lo, f);
}

static PyObject *Layout_as_dict(LayoutObject *self, PyObject *noargs)
{
	(void)noargs;
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	for (size_t i = 0; i < N_LAYOUT_FIELDS; i++) {
		PyObject *v = get_field(&self->lo, &layout_fields[i]);
		if (!v || PyDict_SetItemString(d, layout_fields[i].name, v) < 0) {
			Py_XDECREF(v); Py_DECREF(d);
			return NULL;
		}
		Py_DECREF(v);
	}
	PyObject *v = pageflag_names_dict(&self->lo);
	if (!v || PyDict_SetItemString(d, "pageflag_names", v) < 0) {
		Py_XDECREF(v); Py_DECREF(d);
		return NULL;
	}
	Py_DECREF(v);
	return d;
}

static PyMethodDef Layout_methods[] = {
	{ "fields", (PyCFunction)Layout_fields, METH_NOARGS | METH_STATIC,
	  "fields() -> list of accepted keys" },
	{ "get", (PyCFunction)Layout_get, METH_O, "get(name) -> value" },
	{ "as_dict", (PyCFunction)Layout_as_dict, METH_NOARGS, "as_dict() -> dict of all fields" },
	{ NULL, NULL, 0, NULL }
};

static PyTypeObject LayoutType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "pfnscope._core.Layout",
	.tp_basicsize = sizeof(LayoutObject),
	.tp_dealloc = (destructor)Layout_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Layout(dict): offsets, symbols and facts of one target kernel (struct pfs_layout)",
	.tp_methods = Layout_methods,
	.tp_init = (initproc)Layout_init,
	.tp_new = PyType_GenericNew,
};

/* ===================================================================== */
/* file readers: KdumpFile, RawFile                                       */

typedef struct {
	PyObject_HEAD
	struct pfs_kdump *k;
	PyObject *path;
	int users;       /* Targets reading through it */
} KdumpFileObject;

typedef struct {
	PyObject_HEAD
	struct pfs_rawfile *r;
	PyObject *path;
	int users;
} RawFileObject;

static PyTypeObject KdumpFileType, RawFileType;

static int KdumpFile_init(KdumpFileObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "path", "convert_flattened", NULL };
	PyObject *pathobj, *bytes = NULL;
	int convert = 1;
	struct pfs_error err;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p:KdumpFile", kwlist, &pathobj, &convert))
		return -1;
	if (self->k) {
		PyErr_SetString(PyExc_RuntimeError, "KdumpFile already open");
		return -1;
	}
	if (!PyUnicode_FSConverter(pathobj, &bytes))
		return -1;
	const char *path = PyBytes_AS_STRING(bytes);
	struct pfs_kdump *k;
	int ret;
	Py_BEGIN_ALLOW_THREADS
	ret = pfs_kdump_open(path, convert, &k, &err);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		pfs_py_error(ret, &err);   /* before bytes goes: err.file is path */
	Py_DECREF(bytes);
	if (ret < 0)
		return -1;
	self->k = k;
	Py_INCREF(pathobj);
	Py_XSETREF(self->path, pathobj);
	return 0;
}

static void KdumpFile_dealloc(KdumpFileObject *self)
{
	pfs_kdump_close(self->k);
	Py_XDECREF(self->path);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int kdump_check(KdumpFileObject *self)
{
	if (!self->k) {
		PyErr_SetString(PyExc_ValueError, "KdumpFile is closed");
		return -1;
	}
	return 0;
}

/* read n bytes at paddr with a pfs_read_phys_fn, GIL released */
static PyObject *read_phys_bytes(pfs_read_phys_fn fn, void *ctx, PyObject *args)
{
	unsigned long long pa;
	Py_ssize_t n;
	int r;

	if (!PyArg_ParseTuple(args, "Kn:read_phys", &pa, &n))
		return NULL;
	if (n < 0) {
		PyErr_SetString(PyExc_ValueError, "negative size");
		return NULL;
	}
	PyObject *b = PyBytes_FromStringAndSize(NULL, n);
	if (!b)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	r = fn(ctx, pa, PyBytes_AS_STRING(b), (size_t)n);
	Py_END_ALLOW_THREADS
	if (r) {
		struct pfs_error err;
		Py_DECREF(b);
		return pfs_py_error(pfs_error_set(&err, r, "physical read", pa), &err);
	}
	return b;
}

static PyObject *KdumpFile_read_phys(KdumpFileObject *self, PyObject *args)
{
	if (kdump_check(self))
		return NULL;
	return read_phys_bytes(pfs_kdump_read_phys, self->k, args);
}

static PyObject *KdumpFile_close(KdumpFileObject *self, PyObject *noargs)
{
	(void)noargs;
	if (self->users) {
		PyErr_SetString(PyExc_RuntimeError, "KdumpFile is in use by a Target");
		return NULL;
	}
	pfs_kdump_close(self->k);
	self->k = NULL;
	Py_RETURN_NONE;
}

static PyObject *str_or_none(const char *s)
{
	if (!s)
		Py_RETURN_NONE;
	return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

static PyObject *KdumpFile_get_vmcoreinfo(KdumpFileObject *self, void *c)
{
	(void)c;
	if (kdump_check(self))
		return NULL;
	return str_or_none(pfs_kdump_vmcoreinfo(self->k));
}

static PyObject *KdumpFile_get_format(KdumpFileObject *self, void *c)
{
	(void)c;
	if (kdump_check(self))
		return NULL;
	if (pfs_kdump_rebuilt(self->k))
		return PyUnicode_FromFormat("%s (rebuilt from flattened)", pfs_kdump_format(self->k));
	return str_or_none(pfs_kdump_format(self->k));
}

static PyObject *KdumpFile_get_arch(KdumpFileObject *self, void *c)
{
	(void)c;
	if (kdump_check(self))
		return NULL;
	return str_or_none(pfs_kdump_arch(self->k));
}

/* None for a whole dump, else what is missing (see pfs_kdump_damage) */
static PyObject *KdumpFile_get_damage(KdumpFileObject *self, void *c)
{
	(void)c;
	if (kdump_check(self))
		return NULL;
	const char *w = pfs_kdump_warning(self->k);
	const struct pfs_kdump_damage *d = pfs_kdump_damage(self->k);
	if (!w)
		Py_RETURN_NONE;
	return Py_BuildValue("{s:s,s:O,s:O,s:K,s:K,s:K,s:K,s:O,s:K,s:K}",
			     "message", w,
			     "truncated", d->truncated ? Py_True : Py_False,
			     "incomplete", d->incomplete ? Py_True : Py_False,
			     "missing_bytes", (unsigned long long)d->missing_bytes,
			     "missing_pages", (unsigned long long)d->missing_pages,
			     "bad_descriptors", (unsigned long long)d->bad_descriptors,
			     "bad_bitmap_blocks", (unsigned long long)d->bad_bitmap_blocks,
			     "bitmap_mismatch", d->bitmap_mismatch ? Py_True : Py_False,
			     "lost_from_pfn", (unsigned long long)d->lost_from_pfn,
			     "lost_pages", (unsigned long long)d->lost_pages);
}

static PyObject *KdumpFile_get_path(KdumpFileObject *self, void *c)
{
	(void)c;
	if (!self->path)
		Py_RETURN_NONE;
	Py_INCREF(self->path);
	return self->path;
}

static PyMethodDef KdumpFile_methods[] = {
	{ "read_phys", (PyCFunction)KdumpFile_read_phys, METH_VARARGS,
	  "read_phys(paddr, size) -> bytes" },
	{ "close", (PyCFunction)KdumpFile_close, METH_NOARGS, "close the dump" },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef KdumpFile_getset[] = {
	{ "vmcoreinfo", (getter)KdumpFile_get_vmcoreinfo, NULL, "raw VMCOREINFO text or None", NULL },
	{ "format", (getter)KdumpFile_get_format, NULL, "libkdumpfile file.format", NULL },
	{ "arch", (getter)KdumpFile_get_arch, NULL, "arch.name", NULL },
	{ "path", (getter)KdumpFile_get_path, NULL, "path as given", NULL },
	{ "damage", (getter)KdumpFile_get_damage, NULL,
	  "None for a whole dump, else a dict: message (one line), truncated, "
	  "incomplete, missing_bytes, missing_pages, bad_descriptors, "
	  "bad_bitmap_blocks, bitmap_mismatch, lost_from_pfn, lost_pages", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyTypeObject KdumpFileType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "pfnscope._core.KdumpFile",
	.tp_basicsize = sizeof(KdumpFileObject),
	.tp_dealloc = (destructor)KdumpFile_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "KdumpFile(path): a dump opened with libkdumpfile (physical reads)",
	.tp_methods = KdumpFile_methods,
	.tp_getset = KdumpFile_getset,
	.tp_init = (initproc)KdumpFile_init,
	.tp_new = PyType_GenericNew,
};

static int RawFile_init(RawFileObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "path", "low_size", "high_start", NULL };
	PyObject *pathobj, *bytes = NULL;
	unsigned long long low = 3ull << 30, high = 4ull << 30;
	struct pfs_error err;
	int ret;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|KK:RawFile", kwlist, &pathobj, &low, &high))
		return -1;
	if (self->r) {
		PyErr_SetString(PyExc_RuntimeError, "RawFile already open");
		return -1;
	}
	if (!PyUnicode_FSConverter(pathobj, &bytes))
		return -1;
	ret = pfs_rawfile_open(PyBytes_AS_STRING(bytes), low, high, &self->r, &err);
	if (ret < 0)
		pfs_py_error(ret, &err);   /* before bytes goes: err.file is path */
	Py_DECREF(bytes);
	if (ret < 0)
		return -1;
	Py_INCREF(pathobj);
	Py_XSETREF(self->path, pathobj);
	return 0;
}

static void RawFile_dealloc(RawFileObject *self)
{
	pfs_rawfile_close(self->r);
	Py_XDECREF(self->path);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *RawFile_read_phys(RawFileObject *self, PyObject *args)
{
	if (!self->r) {
		PyErr_SetString(PyExc_ValueError, "RawFile is closed");
		return NULL;
	}
	return read_phys_bytes(pfs_rawfile_read_phys, self->r, args);
}

static PyObject *RawFile_close(RawFileObject *self, PyObject *noargs)
{
	(void)noargs;
	if (self->users) {
		PyErr_SetString(PyExc_RuntimeError, "RawFile is in use by a Target");
		return NULL;
	}
	pfs_rawfile_close(self->r);
	self->r = NULL;
	Py_RETURN_NONE;
}

static PyObject *RawFile_get_size(RawFileObject *self, void *c)
{
	(void)c;
	if (!self->r) {
		PyErr_SetString(PyExc_ValueError, "RawFile is closed");
		return NULL;
	}
	return PyLong_FromUnsignedLongLong(pfs_rawfile_size(self->r));
}

static PyObject *RawFile_get_path(RawFileObject *self, void *c)
{
	(void)c;
	if (!self->path)
		Py_RETURN_NONE;
	Py_INCREF(self->path);
	return self->path;
}

static PyMethodDef RawFile_methods[] = {
	{ "read_phys", (PyCFunction)RawFile_read_phys, METH_VARARGS,
	  "read_phys(paddr, size) -> bytes" },
	{ "close", (PyCFunction)RawFile_close, METH_NOARGS, "close the file" },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef RawFile_getset[] = {
	{ "size", (getter)RawFile_get_size, NULL, "file size", NULL },
	{ "path", (getter)RawFile_get_path, NULL, "path as given", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyTypeObject RawFileType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "pfnscope._core.RawFile",
	.tp_basicsize = sizeof(RawFileObject),
	.tp_dealloc = (destructor)RawFile_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "RawFile(path, low_size=3<<30, high_start=4<<30): raw guest RAM file",
	.tp_methods = RawFile_methods,
	.tp_getset = RawFile_getset,
	.tp_init = (initproc)RawFile_init,
	.tp_new = PyType_GenericNew,
};

/* ===================================================================== */
/* Entry                                                                 */

typedef struct {
	PyObject_HEAD
	struct pfs_entry e;
	LayoutObject *layout;   /* for page flag names */
} EntryObject;

static PyTypeObject EntryType;

static PyObject *entry_new(const struct pfs_entry *e, LayoutObject *layout)
{
	EntryObject *o = PyObject_New(EntryObject, &EntryType);
	if (!o)
		return NULL;
	o->e = *e;
	Py_INCREF(layout);
	o->layout = layout;
	return (PyObject *)o;
}

static void Entry_dealloc(EntryObject *self)
{
	Py_XDECREF(self->layout);
	PyObject_Free(self);
}

#define E_GET(name, expr)                                                  \
	static PyObject *Entry_get_##name(EntryObject *self, void *c)      \
	{                                                                  \
		(void)c;                                                   \
		const struct pfs_entry *e = &self->e;                      \
		(void)e;                                                   \
		return expr;                                               \
	}

E_GET(addr, PyLong_FromUnsignedLongLong(e->addr))
E_GET(raw, PyLong_FromUnsignedLongLong(e->raw))
E_GET(level, PyUnicode_FromString(pfs_level_name(e->level)))
E_GET(kind, PyUnicode_FromString(pfs_kind_name(e->kind)))
E_GET(special, PyBool_FromLong(e->bits & PFS_E_SPECIAL))
E_GET(devmap, PyBool_FromLong(e->bits & PFS_E_DEVMAP))
E_GET(writable, PyBool_FromLong(e->bits & PFS_E_WRITE))
E_GET(normal_page, PyBool_FromLong(e->normal_page))
E_GET(vnp_reason, PyUnicode_FromString(pfs_vnp_reason_name(e->vnp_reason)))
E_GET(page_state, PyUnicode_FromString(pfs_page_state_name(e->page.state)))
E_GET(size, PyLong_FromUnsignedLongLong(pfs_level_size(e->level)))
E_GET(bits, PyLong_FromUnsignedLong(e->bits))
E_GET(diag_mask, PyLong_FromUnsignedLong(e->diag))

static PyObject *Entry_get_pfn(EntryObject *self, void *c)
{
	(void)c;
	if (self->e.pfn == PFS_NO_PFN)
		Py_RETURN_NONE;
	return PyLong_FromUnsignedLongLong(self->e.pfn);
}

static PyObject *Entry_get_swap(EntryObject *self, void *c)
{
	(void)c;
	switch (self->e.kind) {
	case PFS_KIND_SWAP: case PFS_KIND_MIGRATION: case PFS_KIND_DEVICE:
	case PFS_KIND_MARKER: case PFS_KIND_HWPOISON:
		return Py_BuildValue("{s:I,s:K}", "type", (unsigned)self->e.swp_type,
				     "offset", (unsigned long long)self->e.swp_offset);
	default:
		Py_RETURN_NONE;
	}
}

static PyObject *page_flag_list(uint64_t flags, const struct pfs_layout *lo)
{
	PyObject *l = PyList_New(0);
	if (!l)
		return NULL;
	for (uint64_t m = flags; m; m &= m - 1) {
		const char *name = lo->pageflag_names[__builtin_ctzll(m)];
		if (!name)
			continue;
		PyObject *s = PyUnicode_FromString(name);
		if (!s || PyList_Append(l, s) < 0) {
			Py_XDECREF(s);
			Py_DECREF(l);
			return NULL;
		}
		Py_DECREF(s);
	}
	return l;
}

static PyObject *Entry_get_page(EntryObject *self, void *c)
{
	(void)c;
	const struct pfs_page_info *p = &self->e.page;
	if (p->state != PFS_PAGE_OK)
		Py_RETURN_NONE;
	PyObject *flags = page_flag_list(p->flags, &self->layout->lo);
	if (!flags)
		return NULL;
	return Py_BuildValue(
		"{s:i,s:i,s:N,s:O,s:O,s:K,s:I,s:i,s:i,s:O,s:O,s:O,s:O,s:O,s:O,s:K}",
		"refcount", p->refcount, "mapcount", p->mapcount, "flags", flags,
		"anon", (p->bits & PFS_PG_ANON) ? Py_True : Py_False,
		"reserved", (p->bits & PFS_PG_RESERVED) ? Py_True : Py_False,
		"head_pfn", (unsigned long long)p->head_pfn, "order", p->order,
		"page_refcount", p->page_refcount, "page_mapcount", p->page_mapcount,
		"ksm", (p->bits & PFS_PG_KSM) ? Py_True : Py_False,
		"free", (p->bits & PFS_PG_FREE) ? Py_True : Py_False,
		"zero", (p->bits & PFS_PG_ZERO) ? Py_True : Py_False,
		"zone_device", (p->bits & PFS_PG_ZONE_DEVICE) ? Py_True : Py_False,
		"slab", (p->bits & PFS_PG_SLAB) ? Py_True : Py_False,
		"pgtable", (p->bits & PFS_PG_PGTABLE) ? Py_True : Py_False,
		"raw_flags", (unsigned long long)p->flags);
}

static PyObject *Entry_get_consumers(EntryObject *self, void *c)
{
	(void)c;
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	for (unsigned i = 0; i < PFS_C__COUNT; i++) {
		PyObject *v = PyUnicode_FromString(pfs_consumer_verdict_name(self->e.consumers[i]));
		if (!v || PyDict_SetItemString(d, pfs_consumer_name(i), v) < 0) {
			Py_XDECREF(v);
			Py_DECREF(d);
			return NULL;
		}
		Py_DECREF(v);
	}
	return d;
}

/* [(code, severity), ...] of a diagnosis mask */
static PyObject *diag_list(uint32_t mask)
{
	PyObject *l = PyList_New(0);
	if (!l)
		return NULL;
	for (uint32_t m = mask; m; m &= m - 1) {
		unsigned d = (unsigned)__builtin_ctz(m);
		if (d >= PFS_D__COUNT)
			break;
		unsigned sev = pfs_diag_severity(d);
		PyObject *t = Py_BuildValue("(ss)", pfs_diag_name(d), pfs_severity_name(sev));
		if (!t || PyList_Append(l, t) < 0) {
			Py_XDECREF(t);
			Py_DECREF(l);
			return NULL;
		}
		Py_DECREF(t);
	}
	return l;
}

static PyObject *Entry_get_diagnoses(EntryObject *self, void *c)
{
	(void)c;
	return diag_list(self->e.diag);
}

static PyObject *buf_to_str(struct pfs_buf *b, int strip_nl)
{
	if (b->error.code) {
		pfs_buf_fini(b);
		return pfs_py_error(0, &b->error);
	}
	size_t n = b->len;
	if (strip_nl && n && b->data[n - 1] == '\n')
		n--;
	PyObject *s = PyUnicode_DecodeUTF8(b->data, (Py_ssize_t)n, "replace");
	pfs_buf_fini(b);
	return s;
}

static PyObject *Entry_to_json(EntryObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "pid", "vma_start", NULL };
	int pid = 0;
	unsigned long long vma_start = 0;
	struct pfs_buf b;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iK:to_json", kwlist, &pid, &vma_start))
		return NULL;
	if (pfs_buf_init(&b, 2048, -1))
		return PyErr_NoMemory();
	pfs_json_entry(&b, &self->e, pid, vma_start, &self->layout->lo);
	return buf_to_str(&b, 1);
}

static PyObject *Entry_to_table(EntryObject *self, PyObject *noargs)
{
	(void)noargs;
	struct pfs_buf b;

	if (pfs_buf_init(&b, 8192, -1))
		return PyErr_NoMemory();
	pfs_table_entry(&b, &self->e, &self->layout->lo);
	return buf_to_str(&b, 1);
}

static PyObject *Entry_repr(EntryObject *self)
{
	char pfn[32];
	if (self->e.pfn == PFS_NO_PFN)
		strcpy(pfn, "None");
	else
		snprintf(pfn, sizeof(pfn), "0x%llx", (unsigned long long)self->e.pfn);
	return PyUnicode_FromFormat("<Entry %s 0x%llx %s pfn=%s %s%s>",
				    pfs_level_name(self->e.level),
				    (unsigned long long)self->e.addr, pfs_kind_name(self->e.kind), pfn,
				    self->e.normal_page ? "page:" : "NULL:",
				    pfs_vnp_reason_name(self->e.vnp_reason));
}

static PyMethodDef Entry_methods[] = {
	{ "to_json", (PyCFunction)(void (*)(void))Entry_to_json, METH_VARARGS | METH_KEYWORDS,
	  "to_json(pid=0, vma_start=0) -> str (one JSON line without newline)" },
	{ "to_table", (PyCFunction)Entry_to_table, METH_NOARGS,
	  "to_table() -> str (one aligned table line)" },
	{ NULL, NULL, 0, NULL }
};

#define G(n, doc) { #n, (getter)Entry_get_##n, NULL, doc, NULL }
static PyGetSetDef Entry_getset[] = {
	G(addr, "first virtual address mapped"),
	G(level, "\"pte\" | \"pmd\" | \"pud\""),
	G(raw, "raw entry value"),
	G(kind, "present | none | protnone | swap | migration | device | marker | hwpoison | unreadable"),
	G(pfn, "pfn or None"),
	G(special, "pte special bit"),
	G(devmap, "devmap bit"),
	G(writable, "write bit"),
	G(normal_page, "vm_normal_page() returns a page"),
	G(vnp_reason, "why"),
	G(page, "struct page state (dict) or None"),
	G(page_state, "none | ok | invalid | unreadable"),
	G(consumers, "dict consumer -> verdict"),
	G(diagnoses, "list of (code, severity)"),
	G(swap, "{type, offset} for swap-format entries, else None"),
	G(size, "bytes mapped by the entry"),
	G(bits, "PFS_E_* bits"),
	G(diag_mask, "bit per diagnosis code"),
	{ NULL, NULL, NULL, NULL, NULL }
};
#undef G

static PyTypeObject EntryType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "pfnscope._core.Entry",
	.tp_basicsize = sizeof(EntryObject),
	.tp_dealloc = (destructor)Entry_dealloc,
	.tp_repr = (reprfunc)Entry_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "one page-table entry with pfnscope's verdicts (read-only)",
	.tp_methods = Entry_methods,
	.tp_getset = Entry_getset,
};

/* ===================================================================== */
/* Target                                                                */

enum { RD_CALLABLE = 0, RD_KDUMP = 1, RD_RAW = 2 };

typedef struct {
	PyObject_HEAD
	LayoutObject *layout;
	PyObject *reader;        /* KdumpFile, RawFile or callable */
	int rkind;
	int busy;                /* a call is using t/rd (GIL may be released) */
	int rd_ok;
	struct pfs_reader rd;
	struct pfs_target t;
	/* a non-Exception BaseException raised by the Python reader */
	PyObject *pend_type, *pend_val, *pend_tb;
	uint64_t py_reads, py_failed;
} TargetObject;

static PyTypeObject TargetType;

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
	void *ctx;
	int rkind;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O:Target", kwlist, &LayoutType, &layout,
					 &reader))
		return -1;
	if (self->layout) {
		PyErr_SetString(PyExc_RuntimeError, "Target already initialized");
		return -1;
	}
	if (PyObject_TypeCheck(reader, &KdumpFileType)) {
		KdumpFileObject *k = (KdumpFileObject *)reader;
		if (kdump_check(k))
			return -1;
		fn = pfs_kdump_read_phys;
		ctx = k->k;
		rkind = RD_KDUMP;
	} else if (PyObject_TypeCheck(reader, &RawFileType)) {
		RawFileObject *r = (RawFileObject *)reader;
		if (!r->r) {
			PyErr_SetString(PyExc_ValueError, "RawFile is closed");
			return -1;
		}
		fn = pfs_rawfile_read_phys;
		ctx = r->r;
		rkind = RD_RAW;
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
	self->rd_ok = 1;
	Py_INCREF(layout);
	self->layout = (LayoutObject *)layout;
	Py_INCREF(reader);
	self->reader = reader;
	self->rkind = rkind;
	if (rkind == RD_KDUMP)
		((KdumpFileObject *)reader)->users++;
	else if (rkind == RD_RAW)
		((RawFileObject *)reader)->users++;
	pfs_target_init(&self->t, &self->layout->lo, &self->rd);
	return 0;
}

static void Target_dealloc(TargetObject *self)
{
	if (self->rd_ok)
		pfs_reader_fini(&self->rd);
	if (self->reader) {
		if (self->rkind == RD_KDUMP)
			((KdumpFileObject *)self->reader)->users--;
		else if (self->rkind == RD_RAW)
			((RawFileObject *)self->reader)->users--;
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
		pfs_reader_flush(&self->rd);   /* negative cache entries are bogus */
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

static PyObject *Target_read_phys(TargetObject *self, PyObject *args)
{
	unsigned long long pa;
	Py_ssize_t n;
	int r;

	if (!PyArg_ParseTuple(args, "Kn:read_phys", &pa, &n))
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
	CORE_CALL(self, r, pfs_read_phys(&self->rd, pa, PyBytes_AS_STRING(b), (size_t)n));
	if (r > 0)
		r = -r;
	if (r < 0 && !self->t.error.what)
		r = pfs_error_set(&self->t.error, PFS_EREAD, "physical read", pa);
	if (tgt_leave(self, r)) {
		Py_DECREF(b);
		return NULL;
	}
	return b;
}

static PyObject *Target_read_kvirt(TargetObject *self, PyObject *args)
{
	unsigned long long va;
	Py_ssize_t n;
	int r;

	if (!PyArg_ParseTuple(args, "Kn:read_kvirt", &va, &n))
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
	CORE_CALL(self, r, pfs_read_kvirt(&self->t, va, PyBytes_AS_STRING(b), (size_t)n));
	if (tgt_leave(self, r)) {
		Py_DECREF(b);
		return NULL;
	}
	return b;
}

static PyObject *Target_kvirt_to_phys(TargetObject *self, PyObject *arg)
{
	unsigned long long va = PyLong_AsUnsignedLongLongMask(arg);
	uint64_t pa = 0;
	int r;

	if (PyErr_Occurred() || tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_kvirt_to_phys(&self->t, va, &pa, NULL));
	if (tgt_leave(self, r))
		return NULL;
	return PyLong_FromUnsignedLongLong(pa);
}

static PyObject *Target_pgd_phys(TargetObject *self, PyObject *arg)
{
	unsigned long long mm = PyLong_AsUnsignedLongLongMask(arg);
	uint64_t pa = 0;
	int r;

	if (PyErr_Occurred() || tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_mm_pgd_phys(&self->t, mm, &pa));
	if (tgt_leave(self, r))
		return NULL;
	return PyLong_FromUnsignedLongLong(pa);
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

static PyObject *Target_tasks(TargetObject *self, PyObject *noargs)
{
	(void)noargs;
	struct vec v = { NULL, 0, 0, sizeof(struct pfs_task) };
	int r;

	if (tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_for_each_task(&self->t, task_cb, &v));
	if (tgt_leave(self, r)) {
		free(v.data);
		return NULL;
	}
	PyObject *l = PyList_New((Py_ssize_t)v.n);
	for (size_t i = 0; l && i < v.n; i++) {
		PyObject *t = task_tuple((struct pfs_task *)v.data + i);
		if (!t) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, t);
	}
	free(v.data);
	return l;
}

/* Leaders whose task_struct could not be read (found through the pid idr
 * after the task list broke): [(task_va, pid, errno_name_message)] */
static PyObject *Target_unreadable_tasks(TargetObject *self, PyObject *noargs)
{
	(void)noargs;
	struct vec v = { NULL, 0, 0, sizeof(struct pfs_task) };
	int r;

	if (tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_for_each_task(&self->t, unreadable_task_cb, &v));
	if (tgt_leave(self, r)) {
		free(v.data);
		return NULL;
	}
	PyObject *l = PyList_New((Py_ssize_t)v.n);
	for (size_t i = 0; l && i < v.n; i++) {
		const struct pfs_task *t = (struct pfs_task *)v.data + i;
		PyObject *o = Py_BuildValue("(Kis)", (unsigned long long)t->task, (int)t->pid,
					    pfs_strerror(t->err));
		if (!o) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, o);
	}
	free(v.data);
	return l;
}

static PyObject *Target_find_task(TargetObject *self, PyObject *arg)
{
	long pid = PyLong_AsLong(arg);
	struct pfs_task task;
	int r;

	if ((pid == -1 && PyErr_Occurred()) || tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_find_task(&self->t, (int32_t)pid, &task));
	if (r == -PFS_ENOENT) {
		if (tgt_leave(self, 0))
			return NULL;
		Py_RETURN_NONE;
	}
	if (tgt_leave(self, r))
		return NULL;
	return task_tuple(&task);
}

static PyObject *vma_tuple(const struct pfs_vma *v)
{
	return Py_BuildValue("(KKKKKKK)", (unsigned long long)v->vma, (unsigned long long)v->start,
			     (unsigned long long)v->end, (unsigned long long)v->vm_flags,
			     (unsigned long long)v->pgoff, (unsigned long long)v->file,
			     (unsigned long long)v->ops);
}

/* vma tuple -> struct pfs_vma; re-reads nothing (what the caller has) */
static int parse_vma(PyObject *o, uint64_t mm, struct pfs_vma *v)
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
	PyObject *l = PyList_New((Py_ssize_t)v.n);
	for (size_t i = 0; l && i < v.n; i++) {
		PyObject *t = vma_tuple((struct pfs_vma *)v.data + i);
		if (!t) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, t);
	}
	free(v.data);
	return l;
}

static PyObject *Target_find_vma(TargetObject *self, PyObject *args)
{
	unsigned long long mm, addr;
	struct pfs_vma vma;
	int r;

	if (!PyArg_ParseTuple(args, "KK:find_vma", &mm, &addr) || tgt_enter(self))
		return NULL;
	CORE_CALL(self, r, pfs_find_vma(&self->t, mm, addr, &vma));
	if (r == -PFS_ENOENT) {
		if (tgt_leave(self, 0))
			return NULL;
		Py_RETURN_NONE;
	}
	if (tgt_leave(self, r))
		return NULL;
	return vma_tuple(&vma);
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
	vma_complete(self, &v);
	if (need_pgd)
		CORE_CALL(self, r, pfs_mm_pgd_phys(&self->t, mm, &pgd));
	if (r == 0 && start < end)
		CORE_CALL(self, r, pfs_walk_vma(&self->t, pgd, &v, start, end, flags,
						entry_collect_cb, &col));
	if (tgt_leave(self, r)) {
		free(col.vec.data);
		return NULL;
	}
	PyObject *l = PyList_New((Py_ssize_t)col.vec.n);
	for (size_t i = 0; l && i < col.vec.n; i++) {
		PyObject *e = entry_new((struct pfs_entry *)col.vec.data + i, self->layout);
		if (!e) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, e);
	}
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

static int entry_write_cb(const struct pfs_entry *e, const struct pfs_vma *vma, void *arg)
{
	struct wctx *w = arg;
	(void)vma;

	if (!pfn_filter_pass(e, w->pfn_lo, w->pfn_hi))
		return 0;
	w->entries++;
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
	for (uint32_t m = e->diag; m; m &= m - 1) {
		unsigned d = (unsigned)__builtin_ctz(m);
		if (d < PFS_D__COUNT)
			w->diag_counts[d]++;
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

static PyObject *Target_walk_write(TargetObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "fd", "mm", "vma", "pid", "vma_start", "mode", "flags",
				  "start", "end", "only_diag", "pgd", "pfns", NULL };
	int fd, pid, only_diag = 0;
	unsigned long long mm, pfn_lo = 0, pfn_hi = UINT64_MAX;
	PyObject *vma_o, *vs_o = NULL, *start_o = NULL, *end_o = NULL, *pgd_o = NULL;
	const char *mode = "json";
	unsigned flags = 0;
	struct pfs_vma v;
	uint64_t start, end, pgd = 0;
	int r = 0, need_pgd;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "iKOi|OsIOOpO(KK):walk_write", kwlist, &fd, &mm,
					 &vma_o, &pid, &vs_o, &mode, &flags, &start_o, &end_o,
					 &only_diag, &pgd_o, &pfn_lo, &pfn_hi))
		return NULL;
	if (parse_vma(vma_o, mm, &v) || parse_range(start_o, end_o, &v, &start, &end))
		return NULL;

	struct wctx *w = calloc(1, sizeof(*w));
	if (!w)
		return PyErr_NoMemory();
	if (!strcmp(mode, "json"))
		w->mode = WM_JSON;
	else if (!strcmp(mode, "table"))
		w->mode = WM_TABLE;
	else if (!strcmp(mode, "summary-json"))
		w->mode = WM_SUM_JSON;
	else if (!strcmp(mode, "summary-table"))
		w->mode = WM_SUM_TABLE;
	else if (!strcmp(mode, "count"))
		w->mode = WM_COUNT;
	else {
		free(w);
		PyErr_Format(PyExc_ValueError,
			     "mode must be json, table, summary-json, summary-table or count, not %s", mode);
		return NULL;
	}
	w->only_diag = only_diag;
	w->pfn_lo = pfn_lo;
	w->pfn_hi = pfn_hi;
	w->pid = pid;
	w->vma_start = v.start;
	if (vs_o && vs_o != Py_None) {
		w->vma_start = PyLong_AsUnsignedLongLongMask(vs_o);
		if (PyErr_Occurred()) {
			free(w);
			return NULL;
		}
	}
	w->lo = &self->layout->lo;
	pfs_summary_init(&w->sum, run_write_cb, w);
	if (pfs_buf_init(&w->buf, 1u << 20, w->mode == WM_COUNT ? -1 : fd)) {
		free(w);
		return PyErr_NoMemory();
	}
	need_pgd = walk_root(pgd_o, &pgd);
	if (need_pgd < 0 || tgt_enter(self)) {
		pfs_buf_fini(&w->buf);
		free(w);
		return NULL;
	}
	vma_complete(self, &v);
	if (need_pgd)
		CORE_CALL(self, r, pfs_mm_pgd_phys(&self->t, mm, &pgd));
	if (r == 0 && start < end)
		CORE_CALL(self, r, pfs_walk_vma(&self->t, pgd, &v, start, end, flags,
						entry_write_cb, w));
	if (r == 0 && (w->mode == WM_SUM_JSON || w->mode == WM_SUM_TABLE))
		r = pfs_summary_flush(&w->sum);
	if (w->mode != WM_COUNT) {
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
		return pfs_py_error(0, &werr);
	}
	PyObject *counts = PyDict_New();
	for (unsigned d = 0; counts && d < PFS_D__COUNT; d++) {
		if (!w->diag_counts[d])
			continue;
		PyObject *n = PyLong_FromUnsignedLongLong(w->diag_counts[d]);
		if (!n || PyDict_SetItemString(counts, pfs_diag_name(d), n) < 0) {
			Py_XDECREF(n);
			Py_CLEAR(counts);
			break;
		}
		Py_DECREF(n);
	}
	PyObject *ret = counts ? Py_BuildValue("(KKN)", (unsigned long long)w->entries,
					       (unsigned long long)w->sum.runs, counts)
			       : NULL;
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
	pfs_reader_flush(&self->rd);
	self->t.kv_cache_len = 0;
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
	{ "stats", (PyCFunction)Target_stats, METH_NOARGS, "reader statistics" },
	{ "flush_cache", (PyCFunction)Target_flush_cache, METH_NOARGS, "drop cached pages" },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef Target_getset[] = {
	{ "layout", (getter)Target_get_layout, NULL, "the Layout", NULL },
	{ "reader", (getter)Target_get_reader, NULL, "the reader", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyTypeObject TargetType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "pfnscope._core.Target",
	.tp_basicsize = sizeof(TargetObject),
	.tp_dealloc = (destructor)Target_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Target(layout, reader): one kernel image to inspect",
	.tp_methods = Target_methods,
	.tp_getset = Target_getset,
	.tp_init = (initproc)Target_init,
	.tp_new = PyType_GenericNew,
};

/* ===================================================================== */
/* module functions                                                      */

static PyObject *mod_vma_json(PyObject *m, PyObject *args)
{
	(void)m;
	PyObject *vma_o, *file_o;
	int pid;
	struct pfs_vma v;
	struct pfs_buf b;
	PyObject *fb = NULL;
	const char *file = NULL;

	if (!PyArg_ParseTuple(args, "OiO:vma_json", &vma_o, &pid, &file_o) || parse_vma(vma_o, 0, &v))
		return NULL;
	if (file_o != Py_None) {
		fb = PyUnicode_AsEncodedString(file_o, "utf-8", "surrogateescape");
		if (!fb) {
			PyErr_Clear();
			fb = PyUnicode_AsEncodedString(file_o, "utf-8", "replace");
		}
		if (!fb)
			return NULL;
		file = PyBytes_AS_STRING(fb);
	}
	if (pfs_buf_init(&b, 1024, -1)) {
		Py_XDECREF(fb);
		return PyErr_NoMemory();
	}
	pfs_json_vma(&b, &v, pid, file);
	Py_XDECREF(fb);
	return buf_to_str(&b, 1);
}

static PyObject *mod_vma_flag_names(PyObject *m, PyObject *arg)
{
	(void)m;
	unsigned long long flags = PyLong_AsUnsignedLongLongMask(arg);
	const char *names[64];

	if (PyErr_Occurred())
		return NULL;
	size_t n = pfs_vma_flag_names(flags, names, 64);
	PyObject *l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *s = PyUnicode_FromString(names[i]);
		if (!s) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, s);
	}
	return l;
}

static PyObject *mod_table_header(PyObject *m, PyObject *args)
{
	(void)m;
	int summary = 0;
	struct pfs_buf b;

	if (!PyArg_ParseTuple(args, "|p:table_header", &summary))
		return NULL;
	if (pfs_buf_init(&b, 1024, -1))
		return PyErr_NoMemory();
	pfs_table_header(&b, summary);
	return buf_to_str(&b, 1);
}

static PyObject *mod_is_cow_mapping(PyObject *m, PyObject *arg)
{
	(void)m;
	unsigned long long flags = PyLong_AsUnsignedLongLongMask(arg);
	if (PyErr_Occurred())
		return NULL;
	return PyBool_FromLong(pfs_is_cow_mapping(flags));
}

/* page_types(scheme, major, minor) -> {pgtype_*: value}: the page type
 * values of a scheme for a version, as pfs_layout_set_page_types() has them */
static PyObject *mod_page_types(PyObject *m, PyObject *args)
{
	int scheme;
	unsigned int major, minor;
	struct pfs_layout lo;

	(void)m;
	if (!PyArg_ParseTuple(args, "iII:page_types", &scheme, &major, &minor))
		return NULL;
	if (scheme != PFS_PGTYPE_6_1 && scheme != PFS_PGTYPE_PGTY) {
		PyErr_Format(PyExc_ValueError, "page_types: unknown scheme %d", scheme);
		return NULL;
	}
	pfs_layout_init(&lo);
	lo.version_major = major;
	lo.version_minor = minor;
	pfs_layout_set_page_types(&lo, (enum pfs_page_type_scheme)scheme);
	return Py_BuildValue("{sIsIsIsIsI}", "pgtype_buddy", lo.pgtype_buddy,
			     "pgtype_offline", lo.pgtype_offline, "pgtype_table", lo.pgtype_table,
			     "pgtype_slab", lo.pgtype_slab, "pgtype_hugetlb", lo.pgtype_hugetlb);
}

static PyObject *mod_changed_json(PyObject *m, PyObject *args, PyObject *kwds)
{
	(void)m;
	static char *kwlist[] = { "pid", "vma_start", "addr", "raw_before", "raw_after", "level",
				  "what", "codes", NULL };
	int pid, level = -1;
	unsigned long long vs, addr, rb, ra;
	const char *what = NULL;
	PyObject *codes_o = NULL;
	unsigned w = PFS_CHANGED_NO;
	uint32_t codes = 0;
	struct pfs_buf b;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "iKKKK|izO:changed_json", kwlist, &pid, &vs,
					 &addr, &rb, &ra, &level, &what, &codes_o))
		return NULL;
	if (what) {
		while (w < PFS_CHANGED__COUNT && strcmp(pfs_changed_name(w), what))
			w++;
		if (w == PFS_CHANGED_NO || w >= PFS_CHANGED__COUNT)
			return PyErr_Format(PyExc_ValueError, "unknown change %s", what);
	}
	if (codes_o && codes_o != Py_None) {
		PyObject *it = PyObject_GetIter(codes_o), *c;
		if (!it)
			return NULL;
		while ((c = PyIter_Next(it))) {
			const char *name = PyUnicode_AsUTF8(c);
			unsigned d = 0;
			while (name && d < PFS_D__COUNT && strcmp(pfs_diag_name(d), name))
				d++;
			Py_DECREF(c);
			if (!name || d >= PFS_D__COUNT) {
				Py_DECREF(it);
				if (name)
					PyErr_Format(PyExc_ValueError, "unknown diagnosis %s", name);
				return NULL;
			}
			codes |= 1u << d;
		}
		Py_DECREF(it);
		if (PyErr_Occurred())
			return NULL;
	}
	if (pfs_buf_init(&b, 256, -1))
		return PyErr_NoMemory();
	pfs_json_changed(&b, pid, vs, addr, rb, ra, level > PFS_LEVEL_PGD ? -1 : level, w, codes);
	return buf_to_str(&b, 1);
}

static PyMethodDef module_methods[] = {
	{ "changed_json", (PyCFunction)(void (*)(void))mod_changed_json, METH_VARARGS | METH_KEYWORDS,
	  "changed_json(pid, vma_start, addr, raw_before, raw_after, level=-1, what=None, codes=None)"
	  " -> str: a {\"type\":\"changed\"} record" },
	{ "vma_json", mod_vma_json, METH_VARARGS, "vma_json(vma, pid, file) -> str" },
	{ "vma_flag_names", mod_vma_flag_names, METH_O, "vma_flag_names(vm_flags) -> [str]" },
	{ "table_header", mod_table_header, METH_VARARGS, "table_header(summary=False) -> str" },
	{ "is_cow_mapping", mod_is_cow_mapping, METH_O, "is_cow_mapping(vm_flags) -> bool" },
	{ "page_types", mod_page_types, METH_VARARGS,
	  "page_types(scheme, major, minor) -> {pgtype_*: value}" },
	{ NULL, NULL, 0, NULL }
};

static struct PyModuleDef core_module = {
	PyModuleDef_HEAD_INIT, "pfnscope._core",
	"pfnscope C core: page-table walker, verdicts, fast output (see CORE_API.md)",
	-1, module_methods, NULL, NULL, NULL, NULL
};

static PyObject *name_tuple(const char *(*fn)(unsigned), unsigned n)
{
	PyObject *t = PyTuple_New(n);
	for (unsigned i = 0; t && i < n; i++) {
		PyObject *s = PyUnicode_FromString(fn(i));
		if (!s) {
			Py_CLEAR(t);
			break;
		}
		PyTuple_SET_ITEM(t, i, s);
	}
	return t;
}

static int add_obj(PyObject *m, const char *name, PyObject *o)
{
	if (!o || PyModule_AddObject(m, name, o) < 0) {
		Py_XDECREF(o);
		return -1;
	}
	return 0;
}

PyMODINIT_FUNC PyInit__core(void)
{
	PyObject *m;

	if (PyType_Ready(&LayoutType) < 0 || PyType_Ready(&KdumpFileType) < 0 ||
	    PyType_Ready(&RawFileType) < 0 || PyType_Ready(&EntryType) < 0 ||
	    PyType_Ready(&TargetType) < 0)
		return NULL;
	m = PyModule_Create(&core_module);
	if (!m)
		return NULL;
	if (pfs_py_error_init(m) < 0)
		goto fail;

	Py_INCREF(&LayoutType);
	Py_INCREF(&KdumpFileType);
	Py_INCREF(&RawFileType);
	Py_INCREF(&EntryType);
	Py_INCREF(&TargetType);
	if (add_obj(m, "Layout", (PyObject *)&LayoutType) ||
	    add_obj(m, "KdumpFile", (PyObject *)&KdumpFileType) ||
	    add_obj(m, "RawFile", (PyObject *)&RawFileType) ||
	    add_obj(m, "Entry", (PyObject *)&EntryType) ||
	    add_obj(m, "Target", (PyObject *)&TargetType))
		goto fail;
	if (PyModule_AddIntConstant(m, "ABSENT", PFS_ABSENT) ||
	    PyModule_AddIntConstant(m, "PGTYPE_6_1", PFS_PGTYPE_6_1) ||
	    PyModule_AddIntConstant(m, "PGTYPE_PGTY", PFS_PGTYPE_PGTY) ||
	    PyModule_AddIntConstant(m, "WALK_NONE", PFS_WALK_NONE) ||
	    PyModule_AddIntConstant(m, "WALK_NO_PAGE", PFS_WALK_NO_PAGE) ||
	    PyModule_AddIntConstant(m, "WALK_CONFIRM", PFS_WALK_CONFIRM))
		goto fail;

	PyObject *diag = PyTuple_New(PFS_D__COUNT);
	for (unsigned d = 0; diag && d < PFS_D__COUNT; d++) {
		PyObject *t = Py_BuildValue("(ss)", pfs_diag_name(d),
					    pfs_severity_name(pfs_diag_severity(d)));
		if (!t) {
			Py_CLEAR(diag);
			break;
		}
		PyTuple_SET_ITEM(diag, d, t);
	}
	if (add_obj(m, "DIAG_CODES", diag) ||
	    add_obj(m, "SEVERITIES", name_tuple(pfs_severity_name, 4)) ||
	    add_obj(m, "KINDS", name_tuple(pfs_kind_name, PFS_KIND__COUNT)) ||
	    add_obj(m, "VNP_REASONS", name_tuple(pfs_vnp_reason_name, PFS_VNP__COUNT)) ||
	    add_obj(m, "VERDICTS", name_tuple(pfs_consumer_verdict_name, PFS_CV__COUNT)) ||
	    add_obj(m, "CONSUMERS", name_tuple(pfs_consumer_name, PFS_C__COUNT)))
		goto fail;
	size_t nf;
	const struct pfs_flag_name *ft = pfs_vma_flag_table(&nf);
	PyObject *vf = PyTuple_New((Py_ssize_t)nf);
	for (size_t i = 0; vf && i < nf; i++) {
		PyObject *t = Py_BuildValue("(Ks)", (unsigned long long)ft[i].bit, ft[i].name);
		if (!t) {
			Py_CLEAR(vf);
			break;
		}
		PyTuple_SET_ITEM(vf, (Py_ssize_t)i, t);
	}
	if (add_obj(m, "VM_FLAG_NAMES", vf))
		goto fail;
	if (pfs_py_btf_init(m) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
