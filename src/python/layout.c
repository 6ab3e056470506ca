// SPDX-License-Identifier: MIT
/*
 * pfnscope._core.Layout: a struct pfs_layout filled from a dict whose keys
 * are its members (include/pfnscope/layout-fields.def).
 */
#include "pfnscope-ext.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pfnscope/layout.h"

enum ftype { FT_I32, FT_U32, FT_I64, FT_U64 };

#define FTYPE(x) _Generic((x), int: FT_I32, unsigned int: FT_U32, long: FT_I64, \
			  unsigned long: FT_U64, long long: FT_I64, unsigned long long: FT_U64)

struct field {
	const char *name;
	size_t off;
	int type;
	int (*has)(const struct pfs_layout *lo);   /* pfs_layout_has() */
};

static const struct field layout_fields[] = {
#define PFS_LAYOUT_FIELD(type, name, init) \
	{ #name, offsetof(struct pfs_layout, name), FTYPE(((struct pfs_layout *)0)->name), \
	  pfs_layout_has_##name },
#include "pfnscope/layout-fields.def"
#undef PFS_LAYOUT_FIELD
};
#define N_LAYOUT_FIELDS (sizeof(layout_fields) / sizeof(layout_fields[0]))

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
	/* every member of layout-fields.def, then the array beside them */
	for (size_t i = 0; i <= N_LAYOUT_FIELDS; i++) {
		const char *name = i < N_LAYOUT_FIELDS ? layout_fields[i].name : "pageflag_names";
		if (pfs_py_list_append(l, PyUnicode_FromString(name)) < 0) {
			Py_DECREF(l);
			return NULL;
		}
	}
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

/* {name: value} of every member of layout-fields.def */
static PyObject *fields_dict(const struct pfs_layout *lo)
{
	PyObject *d = PyDict_New();

	for (size_t i = 0; d && i < N_LAYOUT_FIELDS; i++)
		if (pfs_py_dict_set(d, layout_fields[i].name, get_field(lo, &layout_fields[i])) < 0)
			Py_CLEAR(d);
	return d;
}

/* {name: value} of pfs_layout_init(): each field's default or PFS_ABSENT */
static PyObject *Layout_initial(PyObject *cls, PyObject *noargs)
{
	struct pfs_layout lo;

	(void)cls; (void)noargs;
	pfs_layout_init(&lo);
	return fields_dict(&lo);
}

static PyObject *Layout_has(LayoutObject *self, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8(arg);
	if (!name)
		return NULL;
	const struct field *f = find_field(name);
	if (!f) {
		PyErr_Format(PyExc_KeyError, "%s", name);
		return NULL;
	}
	return PyBool_FromLong(f->has(&self->lo));
}

static PyObject *Layout_as_dict(LayoutObject *self, PyObject *noargs)
{
	(void)noargs;
	PyObject *d = fields_dict(&self->lo);
	if (d && pfs_py_dict_set(d, "pageflag_names", pageflag_names_dict(&self->lo)) < 0)
		Py_CLEAR(d);
	return d;
}

static PyMethodDef Layout_methods[] = {
	{ "fields", (PyCFunction)Layout_fields, METH_NOARGS | METH_STATIC,
	  "fields() -> list of accepted keys" },
	{ "initial", (PyCFunction)Layout_initial, METH_NOARGS | METH_STATIC,
	  "initial() -> dict: each field's value before it is filled (its default, or ABSENT)" },
	{ "get", (PyCFunction)Layout_get, METH_O, "get(name) -> value" },
	{ "has", (PyCFunction)Layout_has, METH_O,
	  "has(name) -> bool: whether the field is known (not ABSENT, all ones in its C type)" },
	{ "as_dict", (PyCFunction)Layout_as_dict, METH_NOARGS, "as_dict() -> dict of all fields" },
	{ NULL, NULL, 0, NULL }
};

PyTypeObject LayoutType = PFS_PY_TYPE(
	"Layout", LayoutObject, Py_TPFLAGS_DEFAULT, Layout_dealloc,
	"Layout(dict): offsets, symbols and facts of one target kernel (struct pfs_layout)",
	PFS_PY_TYPE_NEW(Layout_init), .tp_methods = Layout_methods);

