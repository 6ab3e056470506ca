// SPDX-License-Identifier: MIT
/*
 * One reader type for every dump format: a File holds an open file behind
 * the reader interface of include/pfnscope/readers.h (read_phys, close),
 * and a Target reads through it with the GIL released.  KdumpFile
 * (libkdumpfile: kdump-compressed, ELF, QEMU dumps) and RawFile (raw guest
 * RAM) are File with their opener and their own attributes.
 */
#include "pfnscope-ext.h"

#include <string.h>

#include "pfnscope/readers.h"

static void kdump_close(void *file) { pfs_kdump_close(file); }
static void raw_close(void *file) { pfs_rawfile_close(file); }

static const struct pfs_py_file_format kdump_format = {
	"KdumpFile", pfs_kdump_read_phys, pfs_kdump_map_phys, kdump_close,
};
static void kdump_view_close(void *file) { pfs_kdump_view_close(file); }
static const struct pfs_py_file_format kdump_view_format = {
	"KdumpFile clone", pfs_kdump_view_read_phys, pfs_kdump_view_map_phys, kdump_view_close,
};
static const struct pfs_py_file_format raw_format = {
	"RawFile", pfs_rawfile_read_phys, NULL, raw_close,
};

static const char *file_name(FileObject *self)
{
	return self->format ? self->format->name : Py_TYPE(self)->tp_name;
}

int pfs_py_file_check(FileObject *self)
{
	if (!self->file) {
		PyErr_Format(PyExc_ValueError, "%s is closed", file_name(self));
		return -1;
	}
	return 0;
}

/* Open with a reader's opener: path as bytes for it, errors raised. */
static int file_open(FileObject *self, PyObject *pathobj,
		     int (*open)(const char *path, void *arg, void **out, struct pfs_error *err),
		     void *arg)
{
	PyObject *bytes = NULL;
	struct pfs_error err;
	void *file;
	int ret;

	if (self->file) {
		PyErr_Format(PyExc_RuntimeError, "%s already open", file_name(self));
		return -1;
	}
	if (!PyUnicode_FSConverter(pathobj, &bytes))
		return -1;
	Py_BEGIN_ALLOW_THREADS
	ret = open(PyBytes_AS_STRING(bytes), arg, &file, &err);
	Py_END_ALLOW_THREADS
	if (ret < 0)
		pfs_py_error(ret, &err);   /* before bytes goes: err.file is its path */
	Py_DECREF(bytes);
	if (ret < 0)
		return -1;
	self->file = file;
	Py_INCREF(pathobj);
	Py_XSETREF(self->path, pathobj);
	return 0;
}

/* a clone lets go of the File it was made from */
static void drop_owner(FileObject *self)
{
	if (self->owner) {
		((FileObject *)self->owner)->users--;
		Py_CLEAR(self->owner);
	}
}

static void File_dealloc(FileObject *self)
{
	if (self->file)
		self->format->close(self->file);
	drop_owner(self);
	Py_XDECREF(self->path);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* read_phys(paddr, size) -> bytes, GIL released */
static PyObject *File_read_phys(FileObject *self, PyObject *args)
{
	unsigned long long pa;
	Py_ssize_t n;
	int r;

	if (pfs_py_file_check(self))
		return NULL;
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
	r = self->format->read_phys(self->file, pa, PyBytes_AS_STRING(b), (size_t)n);
	Py_END_ALLOW_THREADS
	if (r) {
		struct pfs_error err;
		Py_DECREF(b);
		return pfs_py_error(pfs_error_set(&err, r, "physical read", pa), &err);
	}
	return b;
}

static PyObject *File_close(FileObject *self, PyObject *noargs)
{
	(void)noargs;
	if (self->users) {
		PyErr_Format(PyExc_RuntimeError, "%s is in use by a Target", file_name(self));
		return NULL;
	}
	if (self->file)
		self->format->close(self->file);
	self->file = NULL;
	drop_owner(self);
	Py_RETURN_NONE;
}

static PyObject *File_get_path(FileObject *self, void *c)
{
	(void)c;
	if (!self->path)
		Py_RETURN_NONE;
	Py_INCREF(self->path);
	return self->path;
}

static PyMethodDef File_methods[] = {
	{ "read_phys", (PyCFunction)File_read_phys, METH_VARARGS,
	  "read_phys(paddr, size) -> bytes" },
	{ "close", (PyCFunction)File_close, METH_NOARGS, "close the file" },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef File_getset[] = {
	{ "path", (getter)File_get_path, NULL, "path as given", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

PyTypeObject FileType = PFS_PY_TYPE(
	"File", FileObject, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, File_dealloc,
	"an open dump or RAM file read through the core's reader interface",
	.tp_methods = File_methods, .tp_getset = File_getset);

/* ---- KdumpFile ---- */

static int kdump_open(const char *path, void *arg, void **out, struct pfs_error *err)
{
	struct pfs_kdump *k;
	int ret = pfs_kdump_open(path, *(unsigned *)arg, &k, err);

	*out = k;
	return ret;
}

static int KdumpFile_init(FileObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "path", "convert_flattened", "libkdumpfile_pages", NULL };
	PyObject *pathobj;
	int convert = 1, lkf_pages = 0;
	unsigned flags;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|pp:KdumpFile", kwlist, &pathobj, &convert,
					 &lkf_pages))
		return -1;
	flags = (convert ? PFS_KDUMP_CONVERT_FLAT : 0) |
		(lkf_pages ? PFS_KDUMP_LIBKDUMPFILE_PAGES : 0);
	self->format = &kdump_format;
	return file_open(self, pathobj, kdump_open, &flags);
}

static PyObject *str_or_none(const char *s)
{
	if (!s)
		Py_RETURN_NONE;
	return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

/* A string of the open dump, the getter's closure: which one. */
struct kdump_str {
	const char *(*get)(const struct pfs_kdump *k);
};
static const struct kdump_str kdump_vmcoreinfo = { pfs_kdump_vmcoreinfo };
static const struct kdump_str kdump_arch = { pfs_kdump_arch };
static const struct kdump_str kdump_pages_reader = { pfs_kdump_pages_reader };

static PyObject *KdumpFile_get_str(FileObject *self, void *c)
{
	const struct kdump_str *s = c;

	if (pfs_py_file_check(self))
		return NULL;
	return str_or_none(s->get(self->file));
}

static PyObject *KdumpFile_get_format(FileObject *self, void *c)
{
	(void)c;
	if (pfs_py_file_check(self))
		return NULL;
	if (pfs_kdump_rebuilt(self->file))
		return PyUnicode_FromFormat("%s (rebuilt from flattened)", pfs_kdump_format(self->file));
	return str_or_none(pfs_kdump_format(self->file));
}

/* whether a libkdumpfile context is open on the file (pfs_kdump_has_context) */
static PyObject *KdumpFile_get_context(FileObject *self, void *c)
{
	(void)c;
	if (pfs_py_file_check(self))
		return NULL;
	return PyBool_FromLong(pfs_kdump_has_context(self->file));
}

/* None for a whole dump, else what is missing (see pfs_kdump_damage) */
static PyObject *KdumpFile_get_damage(FileObject *self, void *c)
{
	(void)c;
	if (pfs_py_file_check(self))
		return NULL;
	const char *w = pfs_kdump_warning(self->file);
	const struct pfs_kdump_damage *d = pfs_kdump_damage(self->file);
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

/* clone() -> File: another reader context on the same dump for another
 * thread's Target (pfs_kdump_clone); it keeps this KdumpFile open */
static PyObject *KdumpFile_clone(FileObject *self, PyObject *noargs)
{
	struct pfs_kdump_view *v;
	FileObject *c;
	int r;

	(void)noargs;
	if (pfs_py_file_check(self))
		return NULL;
	c = (FileObject *)FileType.tp_alloc(&FileType, 0);
	if (!c)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	r = pfs_kdump_clone(self->file, &v);
	Py_END_ALLOW_THREADS
	if (r) {
		Py_DECREF(c);
		return PyErr_NoMemory();
	}
	c->file = v;
	c->format = &kdump_view_format;
	Py_XINCREF(self->path);
	c->path = self->path;
	Py_INCREF(self);
	c->owner = (PyObject *)self;
	self->users++;
	return (PyObject *)c;
}

static PyMethodDef KdumpFile_methods[] = {
	{ "clone", (PyCFunction)KdumpFile_clone, METH_NOARGS,
	  "clone() -> File: another context on the same dump (a libkdumpfile context of "
	  "its own on the same file, its own page cache; with pages_reader \"diskdump\", "
	  "its own descriptors and page cache over the shared index) for a Target in "
	  "another thread" },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef KdumpFile_getset[] = {
	{ "vmcoreinfo", (getter)KdumpFile_get_str, NULL, "raw VMCOREINFO text or None",
	  (void *)&kdump_vmcoreinfo },
	{ "format", (getter)KdumpFile_get_format, NULL, "libkdumpfile file.format", NULL },
	{ "arch", (getter)KdumpFile_get_str, NULL, "arch.name", (void *)&kdump_arch },
	{ "pages_reader", (getter)KdumpFile_get_str, NULL,
	  "who reads the pages: \"elf\" (a whole ELF file, from its mapping), \"diskdump\" "
	  "(a whole kdump-compressed file, pfnscope's own reader) or \"libkdumpfile\"",
	  (void *)&kdump_pages_reader },
	{ "libkdumpfile_context", (getter)KdumpFile_get_context, NULL,
	  "whether libkdumpfile opened the file: False for a whole ELF file of x86-64 or "
	  "arm64 (its format, arch and VMCOREINFO read from the file as libkdumpfile "
	  "gives them), unless libkdumpfile_pages", NULL },
	{ "damage", (getter)KdumpFile_get_damage, NULL,
	  "None for a whole dump, else a dict: message (one line), truncated, "
	  "incomplete, missing_bytes, missing_pages, bad_descriptors, "
	  "bad_bitmap_blocks, bitmap_mismatch, lost_from_pfn, lost_pages", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

PyTypeObject KdumpFileType = PFS_PY_TYPE(
	"KdumpFile", FileObject, Py_TPFLAGS_DEFAULT, NULL,
	"KdumpFile(path, convert_flattened=True, libkdumpfile_pages=False): a dump "
	"opened with libkdumpfile (physical reads)",
	PFS_PY_TYPE_NEW(KdumpFile_init), .tp_methods = KdumpFile_methods,
	.tp_getset = KdumpFile_getset, .tp_base = &FileType);

/* ---- RawFile ---- */

struct raw_args { unsigned long long low, high; };

static int raw_open(const char *path, void *arg, void **out, struct pfs_error *err)
{
	const struct raw_args *a = arg;
	struct pfs_rawfile *r;
	int ret = pfs_rawfile_open(path, a->low, a->high, &r, err);

	*out = r;
	return ret;
}

static int RawFile_init(FileObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "path", "low_size", "high_start", NULL };
	struct raw_args a = { 3ull << 30, 4ull << 30 };
	PyObject *pathobj;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|KK:RawFile", kwlist, &pathobj, &a.low,
					 &a.high))
		return -1;
	self->format = &raw_format;
	return file_open(self, pathobj, raw_open, &a);
}

static PyObject *RawFile_get_size(FileObject *self, void *c)
{
	(void)c;
	if (pfs_py_file_check(self))
		return NULL;
	return PyLong_FromUnsignedLongLong(pfs_rawfile_size(self->file));
}

static PyGetSetDef RawFile_getset[] = {
	{ "size", (getter)RawFile_get_size, NULL, "file size", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

PyTypeObject RawFileType = PFS_PY_TYPE(
	"RawFile", FileObject, Py_TPFLAGS_DEFAULT, NULL,
	"RawFile(path, low_size=3<<30, high_start=4<<30): raw guest RAM file",
	PFS_PY_TYPE_NEW(RawFile_init), .tp_getset = RawFile_getset, .tp_base = &FileType);
