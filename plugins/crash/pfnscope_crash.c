/*
 * pfnscope inside crash: `extend pfnscope_crash.so`, then
 *   pfnscope tasks|vmas|walk|check|rmap [options]
 * with the CLI's subcommands, options and output (text and --json).
 *
 * A shim only: it embeds Python and runs pfnscope's own CLI code
 * (pfnscope.crash, over pfnscope.cli and the C core).  What it gives Python,
 * as the builtin module _pfnscope_crash, is crash's view of the dump:
 *   readmem(paddr, size)        crash's readmem(PHYSADDR): the core's reader
 *   struct_size(name)           STRUCT_SIZE()
 *   member_offset(name, member) MEMBER_OFFSET() (-1: no such member)
 *   symbol(name)                symbol_value() of crash's (relocated) symbols
 *   gdb(command)                a command of crash's embedded gdb, its output
 *   vmcoreinfo(key)             the dump's VMCOREINFO item (pc->read_vmcoreinfo)
 *   write(bytes)                to crash's fp (so pipes and redirection work)
 * Every call returns on error (RETURN_ON_ERROR, GNU_RETURN_ON_ERROR).  crash's
 * FATAL errors and its SIGSEGV handler longjmp to pc->main_loop_env, which
 * must never unwind Python frames: each call runs with main_loop_env pointed
 * here (GUARDED), and a longjmp becomes a _pfnscope_crash.Error.  (crash
 * 8.0.2's gdb 10.2 segfaults in STRUCT_SIZE("mem_section") on a 6.12
 * vmlinux, for instance.)  SIGINT, whose handler longjmps there too, is
 * caught by the command itself while it runs: the next readmem() raises
 * KeyboardInterrupt, which the CLI code reports as "interrupted".
 *
 * libpython is loaded RTLD_GLOBAL: crash dlopen()s extensions without it,
 * and pfnscope._core (a Python extension, not linked to libpython) needs
 * libpython's symbols in the global scope.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wpedantic"
#include "defs.h"
#pragma GCC diagnostic pop

#ifndef PFNSCOPE_LIBPYTHON
#error "PFNSCOPE_LIBPYTHON (the libpython soname) must be defined"
#endif
#ifndef PFNSCOPE_PYTHONPATH
#define PFNSCOPE_PYTHONPATH ""
#endif

static FILE *gdb_out;          /* gdb() output, reused */
static PyObject *run_fn;       /* pfnscope.crash.run */
static int py_state;           /* 0: not started, 1: ready, -1: failed */
static PyObject *crash_error;  /* _pfnscope_crash.Error */
static volatile sig_atomic_t interrupted;

/* Run stmt with crash's longjmp target (FATAL errors, signals) here; on a
 * longjmp raise _pfnscope_crash.Error naming what failed and return NULL.
 * crash's restart() has already restored its own state (restore_sanity). */
#define GUARDED_CLEANUP(what, stmt, cleanup)                                    \
	do {                                                                    \
		jmp_buf saved_env;                                              \
		memcpy(saved_env, pc->main_loop_env, sizeof(jmp_buf));          \
		if (setjmp(pc->main_loop_env)) {                                \
			memcpy(pc->main_loop_env, saved_env, sizeof(jmp_buf));  \
			cleanup;                                                \
			PyErr_Format(crash_error, "%s failed inside crash "    \
				     "(an error or a signal in crash or its gdb)", \
				     what);                                     \
			return NULL;                                            \
		}                                                               \
		stmt;                                                           \
		memcpy(pc->main_loop_env, saved_env, sizeof(jmp_buf));          \
	} while (0)
#define GUARDED(what, stmt) GUARDED_CLEANUP(what, stmt, (void)0)

/* --- the builtin module ------------------------------------------------- */

static PyObject *m_readmem(PyObject *self, PyObject *args)
{
	unsigned long long paddr;
	Py_ssize_t size;
	PyObject *volatile out;
	volatile int ok = 0;

	(void)self;
	if (!PyArg_ParseTuple(args, "Kn", &paddr, &size))
		return NULL;
	if (size < 0 || size > (64 << 20)) {
		PyErr_Format(PyExc_ValueError, "readmem: bad size %zd", size);
		return NULL;
	}
	if (interrupted) {
		PyErr_SetNone(PyExc_KeyboardInterrupt);
		return NULL;
	}
	out = PyBytes_FromStringAndSize(NULL, size);
	if (!out)
		return NULL;
	GUARDED_CLEANUP("readmem", ok = readmem(paddr, PHYSADDR, PyBytes_AS_STRING(out), size,
						"pfnscope", RETURN_ON_ERROR | QUIET),
			Py_DECREF(out));
	if (!ok) {
		Py_DECREF(out);
		PyErr_Format(PyExc_OSError, "crash cannot read physical %#llx (%zd bytes)",
			     paddr, size);
		return NULL;
	}
	return out;
}

/* datatype_info() writes into its name argument's copy only; crash's
 * prototypes take char * */
static PyObject *m_struct_size(PyObject *self, PyObject *args)
{
	char name[BUFSIZE], what[BUFSIZE + 16];
	const char *n;
	volatile long r = -1;

	(void)self;
	if (!PyArg_ParseTuple(args, "s", &n))
		return NULL;
	snprintf(name, sizeof(name), "%s", n);
	snprintf(what, sizeof(what), "STRUCT_SIZE(%s)", n);
	GUARDED(what, r = STRUCT_SIZE(name));
	return PyLong_FromLong(r);
}

static PyObject *m_member_offset(PyObject *self, PyObject *args)
{
	char name[BUFSIZE], member[BUFSIZE], what[2 * BUFSIZE + 16];
	const char *n, *m;
	volatile long r = -1;

	(void)self;
	if (!PyArg_ParseTuple(args, "ss", &n, &m))
		return NULL;
	snprintf(name, sizeof(name), "%s", n);
	snprintf(member, sizeof(member), "%s", m);
	snprintf(what, sizeof(what), "MEMBER_OFFSET(%s, %s)", n, m);
	GUARDED(what, r = MEMBER_OFFSET(name, member));
	return PyLong_FromLong(r);
}

static PyObject *m_symbol(PyObject *self, PyObject *args)
{
	char name[BUFSIZE];
	const char *n;
	volatile int exists = 0;
	volatile ulong v = 0;

	(void)self;
	if (!PyArg_ParseTuple(args, "s", &n))
		return NULL;
	snprintf(name, sizeof(name), "%s", n);
	/* symbol_value() of an unknown name is a FATAL error */
	GUARDED("symbol lookup", exists = symbol_exists(name); if (exists) v = symbol_value(name));
	if (!exists)
		Py_RETURN_NONE;
	return PyLong_FromUnsignedLong(v);
}

static PyObject *m_gdb(PyObject *self, PyObject *args)
{
	char cmd[BUFSIZE], what[BUFSIZE + 16];
	const char *c;
	long len;
	char *buf;
	PyObject *out;
	volatile int ok = 0;

	(void)self;
	if (!PyArg_ParseTuple(args, "s", &c))
		return NULL;
	snprintf(cmd, sizeof(cmd), "%s", c);
	if (!gdb_out && !(gdb_out = tmpfile()))
		return PyErr_SetFromErrno(PyExc_OSError);
	rewind(gdb_out);
	if (ftruncate(fileno(gdb_out), 0) != 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	snprintf(what, sizeof(what), "gdb \"%s\"", c);
	GUARDED(what, ok = gdb_pass_through(cmd, gdb_out, GNU_RETURN_ON_ERROR));
	fflush(gdb_out);
	if (!ok)
		Py_RETURN_NONE;
	len = ftell(gdb_out);
	if (len < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	buf = malloc(len + 1);
	if (!buf)
		return PyErr_NoMemory();
	rewind(gdb_out);
	len = (long)fread(buf, 1, len, gdb_out);
	out = PyUnicode_DecodeUTF8(buf, len, "replace");
	free(buf);
	return out;
}

static PyObject *m_vmcoreinfo(PyObject *self, PyObject *args)
{
	const char *key;
	char *volatile v = NULL;
	PyObject *out;

	(void)self;
	if (!PyArg_ParseTuple(args, "s", &key))
		return NULL;
	if (!pc->read_vmcoreinfo)
		Py_RETURN_NONE;
	GUARDED("read_vmcoreinfo", v = pc->read_vmcoreinfo(key));
	if (!v)
		Py_RETURN_NONE;
	out = PyUnicode_DecodeUTF8(v, strlen(v), "replace");
	free(v);     /* the readers return a strdup()ed string */
	return out;
}

static PyObject *m_write(PyObject *self, PyObject *args)
{
	Py_buffer b;

	(void)self;
	if (!PyArg_ParseTuple(args, "y*", &b))
		return NULL;
	fwrite(b.buf, 1, b.len, fp);
	PyBuffer_Release(&b);
	fflush(fp);
	Py_RETURN_NONE;
}

static PyObject *m_version(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return PyUnicode_FromString(pc->program_version ? pc->program_version : "");
}

static PyMethodDef methods[] = {
	{ "readmem", m_readmem, METH_VARARGS, "readmem(paddr, size) -> bytes (PHYSADDR)" },
	{ "struct_size", m_struct_size, METH_VARARGS, "STRUCT_SIZE(name), -1: unknown" },
	{ "member_offset", m_member_offset, METH_VARARGS, "MEMBER_OFFSET(name, member)" },
	{ "symbol", m_symbol, METH_VARARGS, "symbol_value(name) or None" },
	{ "gdb", m_gdb, METH_VARARGS, "output of a gdb command, None: it failed" },
	{ "vmcoreinfo", m_vmcoreinfo, METH_VARARGS, "VMCOREINFO item or None" },
	{ "write", m_write, METH_VARARGS, "write bytes to crash's output" },
	{ "version", m_version, METH_NOARGS, "crash's version" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "_pfnscope_crash", "crash's lookups for pfnscope", -1, methods,
	NULL, NULL, NULL, NULL,
};

static PyObject *crash_module_init(void)
{
	PyObject *m = PyModule_Create(&module);

	if (!m)
		return NULL;
	crash_error = PyErr_NewException("_pfnscope_crash.Error", NULL, NULL);
	if (!crash_error || PyModule_AddObjectRef(m, "Error", crash_error) != 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}

/* --- Python ---------------------------------------------------------------- */

static void print_py_error(const char *what)
{
	fprintf(fp, "pfnscope: %s:\n", what);
	fflush(fp);
	PyErr_Print();
	fflush(stderr);
}

static int start_python(void)
{
	const char *path;
	PyObject *mod, *sys_path, *dir;

	if (py_state)
		return py_state;
	py_state = -1;
	if (!dlopen(PFNSCOPE_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL)) {
		fprintf(fp, "pfnscope: cannot load %s: %s\n", PFNSCOPE_LIBPYTHON, dlerror());
		return py_state;
	}
	if (!Py_IsInitialized()) {
		if (PyImport_AppendInittab("_pfnscope_crash", crash_module_init) != 0) {
			fprintf(fp, "pfnscope: cannot register the _pfnscope_crash module\n");
			return py_state;
		}
		/* no signal handlers: crash owns SIGINT */
		Py_InitializeEx(0);
	}
	path = getenv("PFNSCOPE_PYTHONPATH");
	if (!path || !*path)
		path = PFNSCOPE_PYTHONPATH;
	if (*path && access(path, R_OK) == 0) {
		sys_path = PySys_GetObject("path");    /* borrowed */
		dir = PyUnicode_FromString(path);
		if (!sys_path || !dir || PyList_Insert(sys_path, 0, dir) != 0) {
			Py_XDECREF(dir);
			print_py_error("cannot set sys.path");
			return py_state;
		}
		Py_DECREF(dir);
	}
	mod = PyImport_ImportModule("pfnscope.crash");
	if (!mod) {
		print_py_error("cannot import pfnscope.crash");
		return py_state;
	}
	run_fn = PyObject_GetAttrString(mod, "run");
	Py_DECREF(mod);
	if (!run_fn) {
		print_py_error("pfnscope.crash has no run()");
		return py_state;
	}
	py_state = 1;
	return py_state;
}

/* --- the command ------------------------------------------------------------ */

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void cmd_pfnscope(void)
{
	PyObject *argv, *r;
	struct sigaction sa, old;
	int i;

	if (start_python() != 1)
		return;
	argv = PyList_New(0);
	if (!argv) {
		print_py_error("out of memory");
		return;
	}
	for (i = 1; i < argcnt; i++) {
		PyObject *s = PyUnicode_DecodeFSDefault(args[i]);

		if (!s || PyList_Append(argv, s) != 0) {
			Py_XDECREF(s);
			Py_DECREF(argv);
			print_py_error("bad argument");
			return;
		}
		Py_DECREF(s);
	}
	fflush(fp);
	/* crash's SIGINT handler longjmps to its command loop: while Python
	 * runs, a SIGINT only sets the flag readmem() checks */
	interrupted = 0;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, &old);
	r = PyObject_CallFunctionObjArgs(run_fn, argv, NULL);
	sigaction(SIGINT, &old, NULL);
	interrupted = 0;
	Py_DECREF(argv);
	if (!r) {
		print_py_error("internal error");
		return;
	}
	Py_DECREF(r);
	fflush(fp);
}

static char *help_pfnscope[] = {
	"pfnscope",
	"page-table entries as the kernel sees them",
	"tasks|vmas|walk|check|rmap [options]",
	"  The pfnscope command line's subcommands, options and output, on crash's",
	"  dump: special bit, vm_normal_page() verdict, struct page refcount and",
	"  mapcount, consumer verdicts and diagnoses of each page-table entry.",
	"  Memory is read through crash's readmem(), types and symbols come from",
	"  crash's debug info.  `pfnscope --help` and `pfnscope walk --help` list the",
	"  options; -c/-k/--qemu-ram/-s do not apply (the target is crash's).",
	"\nEXAMPLE",
	"    crash> pfnscope tasks",
	"    crash> pfnscope walk -p 148 -a 0x7f0000000000 --json",
	"    crash> pfnscope check --fail-on medium",
	"    crash> pfnscope rmap 0x1a2b3",
	NULL
};

static struct command_table_entry command_table[] = {
	{ "pfnscope", cmd_pfnscope, help_pfnscope, 0 },
	{ NULL, NULL, NULL, 0 },
};

void __attribute__((constructor)) pfnscope_crash_init(void)
{
	register_extension(command_table);
}

/* Python stays, and so does this object (linked -z nodelete): Python's
 * _pfnscope_crash module points into it, and a finalized interpreter cannot
 * be started again in one process (extension modules such as drgn's keep
 * global state).  After `extend -u`, extending again is refused by crash
 * ("no commands registered"): the constructor does not run twice. */
