/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_EXT_H
#define PFNSCOPE_EXT_H
/*
 * What the files of the extension pfnscope._core share (like libdrgn's
 * python/drgnpy.h): Python.h first, the error mapping, the BTF types.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pfnscope/error.h"

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

/* ---- _btf.c ---- */
int pfs_py_btf_init(PyObject *m);

#endif
