// SPDX-License-Identifier: MIT
/*
 * pfnscope._core.Btf and pfnscope._core.kallsyms_find: the kernel's own type
 * and symbol tables (src/core/btf.c, src/core/kallsyms.c) for a layout that
 * needs no debug vmlinux.  API in src/python/CORE_API.md.
 */
#include "pfnscope-ext.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pfnscope/btf.h"
#include "pfnscope/kallsyms.h"

typedef struct {
	PyObject_HEAD
	struct pfs_btf *btf;
} BtfObject;

static int Btf_init(BtfObject *self, PyObject *args, PyObject *kw)
{
	Py_buffer buf;
	char err[256];
	static char *kwlist[] = { "data", NULL };
	if (!PyArg_ParseTupleAndKeywords(args, kw, "y*", kwlist, &buf))
		return -1;
	pfs_btf_free(self->btf);
	Py_BEGIN_ALLOW_THREADS
	self->btf = pfs_btf_new(buf.buf, (size_t)buf.len, err, sizeof(err));
	Py_END_ALLOW_THREADS
	PyBuffer_Release(&buf);
	if (!self->btf) {
		PyErr_SetString(PyExc_ValueError, err);
		return -1;
	}
	return 0;
}

static void Btf_dealloc(BtfObject *self)
{
	pfs_btf_free(self->btf);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ready(BtfObject *self)
{
	if (!self->btf) {
		PyErr_SetString(PyExc_ValueError, "Btf not initialized");
		return 0;
	}
	return 1;
}

static PyObject *Btf_find(BtfObject *self, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8(arg);
	if (!name || !ready(self))
		return NULL;
	return PyLong_FromUnsignedLong(pfs_btf_find(self->btf, name));
}

static int id_arg(BtfObject *self, PyObject *arg, uint32_t *id)
{
	unsigned long v = PyLong_AsUnsignedLong(arg);
	if (PyErr_Occurred() || !ready(self))
		return 0;
	*id = (uint32_t)v;
	return 1;
}

/* fn(type arg) as an int, None when it is negative (the type has none) */
static PyObject *id_size(BtfObject *self, PyObject *arg,
			 int64_t (*fn)(const struct pfs_btf *btf, uint32_t id))
{
	uint32_t id;
	if (!id_arg(self, arg, &id))
		return NULL;
	int64_t s = fn(self->btf, id);
	if (s < 0)
		Py_RETURN_NONE;
	return PyLong_FromLongLong(s);
}

static PyObject *Btf_sizeof(BtfObject *self, PyObject *arg)
{
	return id_size(self, arg, pfs_btf_sizeof);
}

static PyObject *Btf_kind(BtfObject *self, PyObject *arg)
{
	uint32_t id;
	if (!id_arg(self, arg, &id))
		return NULL;
	return PyLong_FromLong(pfs_btf_kind(self->btf, id));
}

static PyObject *Btf_resolve(BtfObject *self, PyObject *arg)
{
	uint32_t id;
	if (!id_arg(self, arg, &id))
		return NULL;
	return PyLong_FromUnsignedLong(pfs_btf_resolve(self->btf, id));
}

static PyObject *Btf_array_len(BtfObject *self, PyObject *arg)
{
	return id_size(self, arg, pfs_btf_array_len);
}

static PyObject *Btf_offsetof(BtfObject *self, PyObject *args)
{
	unsigned long id;
	const char *path;
	uint64_t off;
	uint32_t mt;
	if (!PyArg_ParseTuple(args, "ks", &id, &path) || !ready(self))
		return NULL;
	if (pfs_btf_offsetof(self->btf, (uint32_t)id, path, &off, &mt))
		Py_RETURN_NONE;
	return Py_BuildValue("(Kk)", (unsigned long long)off, (unsigned long)mt);
}

/* the enumerators or parameters of BTF type id, for pfs_py_list_build() */
struct btf_members {
	const struct pfs_btf *btf;
	uint32_t id;
	int enumerators;
};

/* (name, value) of an enumerator, (name, type id) of a parameter */
static PyObject *member_item(const void *ctx, size_t i)
{
	const struct btf_members *b = ctx;
	const char *name;
	int64_t value;
	uint32_t type;

	if (b->enumerators) {
		pfs_btf_enumerator(b->btf, b->id, (int)i, &name, &value);
		return Py_BuildValue("(sL)", name, (long long)value);
	}
	pfs_btf_param(b->btf, b->id, (int)i, &name, &type);
	return Py_BuildValue("(sk)", name, (unsigned long)type);
}

/* [member_item(i) for each of the count(id) members of type arg], None
 * when count says the type has no such members */
static PyObject *member_list(BtfObject *self, PyObject *arg,
			     int (*count)(const struct pfs_btf *btf, uint32_t id), int enumerators)
{
	struct btf_members b = { self->btf, 0, enumerators };
	if (!id_arg(self, arg, &b.id))
		return NULL;
	int n = count(self->btf, b.id);
	if (n < 0)
		Py_RETURN_NONE;
	return pfs_py_list_build((size_t)n, member_item, &b);
}

static PyObject *Btf_enumerators(BtfObject *self, PyObject *arg)
{
	return member_list(self, arg, pfs_btf_enum_count, 1);
}

static PyObject *Btf_find_func(BtfObject *self, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8(arg);
	if (!name || !ready(self))
		return NULL;
	return PyLong_FromUnsignedLong(pfs_btf_find_func(self->btf, name));
}

static PyObject *Btf_type_info(BtfObject *self, PyObject *arg)
{
	uint32_t id, ref;
	int kind;
	const char *name;
	if (!id_arg(self, arg, &id))
		return NULL;
	if (pfs_btf_type_info(self->btf, id, &kind, &name, &ref))
		return Py_BuildValue("(isk)", 0, "", 0ul);
	return Py_BuildValue("(isk)", kind, name, (unsigned long)ref);
}

static PyObject *Btf_params(BtfObject *self, PyObject *arg)
{
	return member_list(self, arg, pfs_btf_param_count, 0);
}

static PyObject *Btf_nr_types(BtfObject *self, void *closure)
{
	(void)closure;
	if (!ready(self))
		return NULL;
	return PyLong_FromUnsignedLong(pfs_btf_nr_types(self->btf));
}

static PyMethodDef Btf_methods[] = {
	{ "find", (PyCFunction)Btf_find, METH_O,
	  "find(cname) -> type id ('struct page', 'enum pageflags', 'pgd_t'); 0: absent" },
	{ "sizeof", (PyCFunction)Btf_sizeof, METH_O, "sizeof(id) -> int or None" },
	{ "kind", (PyCFunction)Btf_kind, METH_O, "kind(id) -> BTF_KIND_* number" },
	{ "resolve", (PyCFunction)Btf_resolve, METH_O,
	  "resolve(id) -> id without typedefs and qualifiers" },
	{ "array_len", (PyCFunction)Btf_array_len, METH_O,
	  "array_len(id) -> number of elements, None: not an array" },
	{ "offsetof", (PyCFunction)Btf_offsetof, METH_VARARGS,
	  "offsetof(id, 'a.b[2].c') -> (byte offset, member type id) or None" },
	{ "enumerators", (PyCFunction)Btf_enumerators, METH_O,
	  "enumerators(id) -> [(name, value)] or None: not an enum" },
	{ "find_func", (PyCFunction)Btf_find_func, METH_O,
	  "find_func(name) -> id of the BTF_KIND_FUNC, 0: absent" },
	{ "type_info", (PyCFunction)Btf_type_info, METH_O,
	  "type_info(id) -> (kind, name, referenced type id)" },
	{ "params", (PyCFunction)Btf_params, METH_O,
	  "params(func or func_proto id) -> [(name, type id)] or None" },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef Btf_getset[] = {
	{ "nr_types", (getter)Btf_nr_types, NULL, "number of type ids (with void)", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyTypeObject BtfType = PFS_PY_TYPE(
	"Btf", BtfObject, Py_TPFLAGS_DEFAULT, Btf_dealloc,
	"Btf(data): the kernel's BTF type information (a vmlinux BTF blob)",
	PFS_PY_TYPE_NEW(Btf_init), .tp_methods = Btf_methods, .tp_getset = Btf_getset);

struct found_ctx {
	PyObject *lists;   /* list (per wanted name) of lists of (index, type) */
	int failed;
};

static void on_found(void *ctx, size_t w, uint32_t index, char type)
{
	struct found_ctx *c = ctx;
	if (c->failed)
		return;
	PyObject *t = Py_BuildValue("(kC)", (unsigned long)index, (int)(unsigned char)type);
	if (!t || PyList_Append(PyList_GET_ITEM(c->lists, (Py_ssize_t)w), t) < 0)
		c->failed = 1;
	Py_XDECREF(t);
}

static PyObject *mod_kallsyms_find(PyObject *m, PyObject *args)
{
	(void)m;
	Py_buffer names, table, index;
	unsigned long num;
	int long_names;
	PyObject *wanted, *ret = NULL;
	const char **w = NULL;
	struct found_ctx ctx = { NULL, 0 };
	if (!PyArg_ParseTuple(args, "y*ky*y*pO", &names, &num, &table, &index, &long_names,
			      &wanted))
		return NULL;
	PyObject *seq = PySequence_Fast(wanted, "wanted: a sequence of names");
	if (!seq)
		goto out;
	if (index.len < 512) {
		PyErr_SetString(PyExc_ValueError, "kallsyms_token_index: need 256 u16 entries");
		goto out;
	}
	Py_ssize_t nw = PySequence_Fast_GET_SIZE(seq);
	w = calloc((size_t)nw + 1, sizeof(*w));
	ctx.lists = PyList_New(nw);
	if (!w || !ctx.lists)
		goto out;
	for (Py_ssize_t i = 0; i < nw; i++) {
		w[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
		PyObject *l = PyList_New(0);
		if (!w[i] || !l) {
			Py_XDECREF(l);
			goto out;
		}
		PyList_SET_ITEM(ctx.lists, i, l);
	}
	uint16_t tok_index[256];
	memcpy(tok_index, index.buf, sizeof(tok_index));
	struct pfs_kallsyms_tables t = {
		.names = names.buf, .names_len = (size_t)names.len, .num_syms = (uint32_t)num,
		.token_table = table.buf, .token_table_len = (size_t)table.len,
		.token_index = tok_index, .long_names = long_names,
	};
	int64_t used = pfs_kallsyms_find(&t, w, (size_t)nw, on_found, &ctx);
	if (ctx.failed)
		goto out;
	if (used < 0) {
		PyErr_SetString(PyExc_ValueError, "kallsyms_names: malformed (a name runs past "
				"the table or uses a token outside kallsyms_token_table)");
		goto out;
	}
	ret = Py_BuildValue("(LO)", (long long)used, ctx.lists);
out:
	free(w);
	Py_XDECREF(ctx.lists);
	Py_XDECREF(seq);
	PyBuffer_Release(&names);
	PyBuffer_Release(&table);
	PyBuffer_Release(&index);
	return ret;
}

static PyMethodDef btf_module_methods[] = {
	{ "kallsyms_find", mod_kallsyms_find, METH_VARARGS,
	  "kallsyms_find(names, num_syms, token_table, token_index, long_names, wanted)"
	  " -> (bytes of names used, [[(index, type letter)] per wanted name])" },
	{ NULL, NULL, 0, NULL }
};

int pfs_py_btf_init(PyObject *m)
{
	if (pfs_py_add_type(m, "Btf", &BtfType) < 0)
		return -1;
	return PyModule_AddFunctions(m, btf_module_methods);
}
