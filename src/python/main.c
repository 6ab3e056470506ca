// SPDX-License-Identifier: MIT
/*
 * pfnscope._core: the CPython extension over the C core (API in
 * src/python/CORE_API.md).  This file: the module, its functions and
 * constants; one file per type beside it (layout.c, file.c, entry.c,
 * target.c, btf.c) and the error mapping (error.c).
 */
#include "pfnscope-ext.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pfnscope/entry.h"
#include "pfnscope/json.h"
#include "pfnscope/layout.h"
#include "pfnscope/vma.h"
#include "pfnscope/walk.h"
#include "pfnscope/diagnose.h"
#include "pfnscope/spte.h"

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

static PyObject *name_item(const void *names, size_t i)
{
	return PyUnicode_FromString(((const char *const *)names)[i]);
}

static PyObject *mod_vma_flag_names(PyObject *m, PyObject *arg)
{
	(void)m;
	unsigned long long flags = PyLong_AsUnsignedLongLongMask(arg);
	const char *names[64];

	if (PyErr_Occurred())
		return NULL;
	size_t n = pfs_vma_flag_names(flags, names, 64);
	return pfs_py_list_build(n, name_item, names);
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
	/* as ints: a type the kernel lacks is ABSENT (-1), as layout.py has it */
	return Py_BuildValue("{sisisisisi}", "pgtype_buddy", (int)lo.pgtype_buddy,
			     "pgtype_offline", (int)lo.pgtype_offline, "pgtype_table", (int)lo.pgtype_table,
			     "pgtype_slab", (int)lo.pgtype_slab, "pgtype_hugetlb", (int)lo.pgtype_hugetlb);
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

static PyObject *spte_item(const void *refs, size_t i)
{
	const struct pfs_spte_ref *r = (const struct pfs_spte_ref *)refs + i;

	return Py_BuildValue("(KiK)", (unsigned long long)r->gfn, (int)r->level,
			     (unsigned long long)r->raw);
}

static PyObject *spte_list(const struct pfs_spte_ref *r, size_t n)
{
	return pfs_py_list_build(n, spte_item, r);
}

static PyObject *mod_spte_scan(PyObject *m, PyObject *args)
{
	(void)m;
	Py_buffer buf;
	unsigned level;
	unsigned long long gfn0;
	struct pfs_spte_ref leaves[PFS_SPTE_ENTRIES], children[PFS_SPTE_ENTRIES];
	uint64_t table[PFS_SPTE_ENTRIES];
	size_t nl, nc = 0;

	if (!PyArg_ParseTuple(args, "y*IK:spte_scan", &buf, &level, &gfn0))
		return NULL;
	if (buf.len != (Py_ssize_t)sizeof(table)) {
		PyBuffer_Release(&buf);
		return PyErr_Format(PyExc_ValueError, "spte_scan: a table is %zu bytes, not %zd",
				    sizeof(table), buf.len);
	}
	memcpy(table, buf.buf, sizeof(table));
	PyBuffer_Release(&buf);
	nl = pfs_spte_scan(table, level, gfn0, leaves, children, &nc);
	PyObject *l = spte_list(leaves, nl), *c = l ? spte_list(children, nc) : NULL;
	if (!c) {
		Py_XDECREF(l);
		return NULL;
	}
	return Py_BuildValue("(NN)", l, c);
}

static PyMethodDef module_methods[] = {
	{ "changed_json", (PyCFunction)(void (*)(void))mod_changed_json, METH_VARARGS | METH_KEYWORDS,
	  "changed_json(pid, vma_start, addr, raw_before, raw_after, level=-1, what=None, codes=None)"
	  " -> str: a {\"type\":\"changed\"} record" },
	{ "vma_json", mod_vma_json, METH_VARARGS, "vma_json(vma, pid, file) -> str" },
	{ "vma_flag_names", mod_vma_flag_names, METH_O, "vma_flag_names(vm_flags) -> [str]" },
	{ "table_header", mod_table_header, METH_VARARGS, "table_header(summary=False) -> str" },
	{ "is_cow_mapping", mod_is_cow_mapping, METH_O, "is_cow_mapping(vm_flags) -> bool" },
	{ "spte_scan", mod_spte_scan, METH_VARARGS,
	  "spte_scan(table, level, gfn0) -> ([(gfn, level, raw)] leaves, [(gfn, level, raw)] child"
	  " tables) of one 512-entry KVM TDP MMU table (pfs_spte_scan)" },
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

int pfs_py_list_append(PyObject *l, PyObject *item)
{
	int ret = item ? PyList_Append(l, item) : -1;

	Py_XDECREF(item);
	return ret;
}

PyObject *pfs_py_list_build(size_t n, PyObject *(*item)(const void *ctx, size_t i),
			    const void *ctx)
{
	PyObject *l = PyList_New((Py_ssize_t)n);

	for (size_t i = 0; l && i < n; i++) {
		PyObject *o = item(ctx, i);
		if (!o) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, o);
	}
	return l;
}

int pfs_py_dict_set(PyObject *d, const char *key, PyObject *v)
{
	int ret = v ? PyDict_SetItemString(d, key, v) : -1;

	Py_XDECREF(v);
	return ret;
}

int pfs_py_add_type(PyObject *m, const char *name, PyTypeObject *type)
{
	if (PyType_Ready(type) < 0)
		return -1;
	Py_INCREF(type);
	return add_obj(m, name, (PyObject *)type);
}

PyMODINIT_FUNC PyInit__core(void)
{
	PyObject *m;

	m = PyModule_Create(&core_module);
	if (!m)
		return NULL;
	if (pfs_py_error_init(m) < 0)
		goto fail;
	if (PyType_Ready(&FileType) < 0 ||
	    pfs_py_add_type(m, "Layout", &LayoutType) ||
	    pfs_py_add_type(m, "KdumpFile", &KdumpFileType) ||
	    pfs_py_add_type(m, "RawFile", &RawFileType) ||
	    pfs_py_add_type(m, "Entry", &EntryType) ||
	    pfs_py_add_type(m, "Target", &TargetType))
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
