// SPDX-License-Identifier: MIT
/*
 * The one place where the core's struct pfs_error becomes a Python
 * exception: the classes of pfnscope.errors (CoreError and its FaultError,
 * CorruptError, DumpError), carrying the code, the address and what was
 * being read, or the file.  Like libdrgn's python/error.c.
 */
#include "pfnscope-ext.h"

#include <errno.h>
#include <stdio.h>

static PyObject *CoreError, *FaultError, *CorruptError, *DumpError;

int pfs_py_error_init(PyObject *m)
{
	static const struct { const char *name, *export; PyObject **type; } classes[] = {
		{ "CoreError", "Error", &CoreError },
		{ "DumpError", "OpenError", &DumpError },
		{ "FaultError", "FaultError", &FaultError },
		{ "CorruptError", "CorruptError", &CorruptError },
		{ "DumpError", "DumpError", &DumpError },
	};
	PyObject *errors = PyImport_ImportModule("pfnscope.errors");

	if (!errors)
		return -1;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		PyObject *cls = PyObject_GetAttrString(errors, classes[i].name);
		if (!cls) {
			Py_DECREF(errors);
			return -1;
		}
		Py_XSETREF(*classes[i].type, cls);
		Py_INCREF(cls);
		if (PyModule_AddObject(m, classes[i].export, cls) < 0) {
			Py_DECREF(cls);
			Py_DECREF(errors);
			return -1;
		}
	}
	Py_DECREF(errors);
	return 0;
}

static PyObject *class_of(int code)
{
	switch (code) {
	case PFS_EREAD:
	case PFS_EFAULT:
		return FaultError;
	case PFS_ELOOP:
	case PFS_ECORRUPT:
		return CorruptError;
	case PFS_EDUMP:
		return DumpError;
	default:
		return CoreError;
	}
}

static int set_attr(PyObject *exc, const char *name, PyObject *v)
{
	int r;

	if (!v)
		return -1;
	r = PyObject_SetAttrString(exc, name, v);
	Py_DECREF(v);
	return r;
}

PyObject *pfs_py_error(int ret, const struct pfs_error *e)
{
	int code = ret ? (ret < 0 ? -ret : ret) : (int)e->code;
	const char *what = e->what;
	int has_addr = e->has_address;
	char msg[PFS_ERROR_MESSAGE_LEN + 4096];
	PyObject *cls = class_of(code), *exc;

	if (code == PFS_ENOMEM)
		return PyErr_NoMemory();
	if (code == PFS_EOS) {
		errno = e->errnum;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	if (e->file)   /* "<file>: <problem>" */
		snprintf(msg, sizeof(msg), "%s: %s", e->file, e->message);
	else if (what && has_addr)
		snprintf(msg, sizeof(msg), "%s: %s at 0x%llx", pfs_strerror(code), what,
			 (unsigned long long)e->address);
	else if (what)
		snprintf(msg, sizeof(msg), "%s: %s", pfs_strerror(code), what);
	else if (has_addr)
		snprintf(msg, sizeof(msg), "%s at 0x%llx", pfs_strerror(code),
			 (unsigned long long)e->address);
	else
		snprintf(msg, sizeof(msg), "%s", pfs_strerror(code));
	exc = PyObject_CallFunction(cls, "s", msg);
	if (!exc)
		return NULL;
	if (set_attr(exc, "code", PyLong_FromLong(code)) ||
	    (has_addr && !e->file &&
	     set_attr(exc, "address", PyLong_FromUnsignedLongLong(e->address))) ||
	    (what && !e->file && set_attr(exc, "what", PyUnicode_FromString(what))) ||
	    (e->file && set_attr(exc, "file", PyUnicode_DecodeFSDefault(e->file)))) {
		Py_DECREF(exc);
		return NULL;
	}
	PyErr_SetObject(cls, exc);
	Py_DECREF(exc);
	return NULL;
}

PyObject *pfs_py_error_message(const char *message)
{
	PyErr_SetString(CoreError, message);
	return NULL;
}
