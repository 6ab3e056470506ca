/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_EXT_H
#define PFNSCOPE_EXT_H
/*
 * What the files of the extension pfnscope._core share (like libdrgn's
 * python/drgnpy.h): Python.h first, the error mapping, the object structs
 * and types one file defines and another uses.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "pfnscope/error.h"

/* A type object of the module: its name in pfnscope._core, object
 * struct, flags, dealloc (NULL: the base type's) and doc, then its other
 * slots as designated initializers. */
#define PFS_PY_TYPE(name, object, flags, dealloc, doc, ...) {	\
	PyVarObject_HEAD_INIT(NULL, 0)				\
	.tp_name = "pfnscope._core." name,			\
	.tp_basicsize = sizeof(object),				\
	.tp_dealloc = (destructor)(dealloc),			\
	.tp_flags = (flags),					\
	.tp_doc = (doc),					\
	__VA_ARGS__						\
}
/* The slots of a type Python code can make: name(...) calls init. */
#define PFS_PY_TYPE_NEW(init) .tp_init = (initproc)(init), .tp_new = PyType_GenericNew

/* ---- error.c: struct pfs_error -> pfnscope.errors ---- */
/* Add Error, OpenError, FaultError, CorruptError, DumpError to the module. */
int pfs_py_error_init(PyObject *m);
/* Raise the exception for an error and return NULL.  ret (a negative code)
 * is the error returned; e the record of it (what was read where, or the
 * file), e->code standing in when ret is 0.  PFS_ENOMEM raises MemoryError
 * and PFS_EOS OSError(e->errnum). */
PyObject *pfs_py_error(int ret, const struct pfs_error *e);
/* Raise pfnscope._core.Error(message) with no record. */
PyObject *pfs_py_error_message(const char *message);

/* ---- main.c ---- */
/* Append item (a new reference, or NULL when making it failed) to list l
 * and drop it; 0, or -1 with an exception set. */
int pfs_py_list_append(PyObject *l, PyObject *item);
/* The list [item(ctx, 0), ..., item(ctx, n - 1)], each item a new
 * reference or NULL on failure; NULL with the exception set if one fails. */
PyObject *pfs_py_list_build(size_t n, PyObject *(*item)(const void *ctx, size_t i),
			    const void *ctx);
/* d[key] = v, dropping v (a new reference, or NULL when making it failed);
 * 0, or -1 with an exception set. */
int pfs_py_dict_set(PyObject *d, const char *key, PyObject *v);
/* Ready type and add it to module m as name; 0 or -1. */
int pfs_py_add_type(PyObject *m, const char *name, PyTypeObject *type);

/* ---- layout.c: Layout ---- */
struct pfs_layout;
#include "pfnscope/layout.h"
typedef struct {
	PyObject_HEAD
	struct pfs_layout lo;
	char *names[PFS_MAX_PAGEFLAGS];   /* owned copies behind lo.pageflag_names */
} LayoutObject;
extern PyTypeObject LayoutType;

/* ---- file.c: File, KdumpFile, RawFile ---- */
#include "pfnscope/reader.h"
/* A dump format behind the reader interface (include/pfnscope/readers.h). */
struct pfs_py_file_format {
	const char *name;              /* the Python type's name, for messages */
	pfs_read_phys_fn read_phys;
	pfs_map_phys_fn map_phys;      /* NULL: none */
	void (*close)(void *file);
};
typedef struct {
	PyObject_HEAD
	const struct pfs_py_file_format *format;
	void *file;                    /* NULL: closed */
	PyObject *path;
	int users;                     /* Targets and clones reading through it */
	PyObject *owner;               /* a clone: the File it was made from */
} FileObject;
extern PyTypeObject FileType, KdumpFileType, RawFileType;
/* 0, or -1 with ValueError("<type> is closed"). */
int pfs_py_file_check(FileObject *self);

/* ---- entry.c: Entry ---- */
struct pfs_entry;
struct pfs_buf;
extern PyTypeObject EntryType;
PyObject *entry_new(const struct pfs_entry *e, LayoutObject *layout);
/* [code, ...] of the diagnoses set in mask (bit per enum pfs_diag). */
PyObject *diag_list(uint32_t mask);
/* The buffer's text as str (strip_nl: without its last newline); frees it. */
PyObject *buf_to_str(struct pfs_buf *b, int strip_nl);

/* ---- target.c: Target ---- */
struct pfs_vma;
extern PyTypeObject TargetType;
/* A VMA tuple (vma_va, start, end, vm_flags, pgoff, file_va, ops_va) as a
 * struct pfs_vma of mm; 0, or -1 with TypeError. */
int parse_vma(PyObject *o, uint64_t mm, struct pfs_vma *v);

/* ---- btf.c: Btf, kallsyms_find ---- */
int pfs_py_btf_init(PyObject *m);

#endif
