// SPDX-License-Identifier: MIT
/*
 * pfnscope._core.Entry: one decoded page-table entry, built only when the
 * caller asks for entry objects (Target.walk); its JSON and table lines
 * come from the core's serializers.
 */
#include "pfnscope-ext.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pfnscope/entry.h"
#include "pfnscope/json.h"
#include "pfnscope/layout.h"
#include "pfnscope/page.h"
#include "pfnscope/diagnose.h"

typedef struct {
	PyObject_HEAD
	struct pfs_entry e;
	LayoutObject *layout;   /* for page flag names */
} EntryObject;

PyObject *entry_new(const struct pfs_entry *e, LayoutObject *layout)
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
E_GET(uffd_wp, PyBool_FromLong(e->bits & PFS_E_UFFD_WP))
E_GET(cont, PyBool_FromLong(e->bits & PFS_E_CONT))
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
		if (pfs_py_list_append(l, PyUnicode_FromString(name)) < 0) {
			Py_DECREF(l);
			return NULL;
		}
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
	for (unsigned i = 0; d && i < PFS_C__COUNT; i++)
		if (pfs_py_dict_set(d, pfs_consumer_name(i),
				    PyUnicode_FromString(pfs_consumer_verdict_name(self->e.consumers[i]))) < 0)
			Py_CLEAR(d);
	return d;
}

/* [(code, severity), ...] of a diagnosis mask */
PyObject *diag_list(uint32_t mask)
{
	PyObject *l = PyList_New(0);
	if (!l)
		return NULL;
	for (uint32_t m = mask; m; m &= m - 1) {
		unsigned d = (unsigned)__builtin_ctz(m);
		if (d >= PFS_D__COUNT)
			break;
		unsigned sev = pfs_diag_severity(d);
		if (pfs_py_list_append(l, Py_BuildValue("(ss)", pfs_diag_name(d),
							   pfs_severity_name(sev))) < 0) {
			Py_DECREF(l);
			return NULL;
		}
	}
	return l;
}

static PyObject *Entry_get_diagnoses(EntryObject *self, void *c)
{
	(void)c;
	return diag_list(self->e.diag);
}

PyObject *buf_to_str(struct pfs_buf *b, int strip_nl)
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
	G(uffd_wp, "userfaultfd write-protect bit (pte, swap pte or uffd-wp marker)"),
	G(cont, "arm64 contiguous bit (PTE_CONT)"),
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

PyTypeObject EntryType = PFS_PY_TYPE(
	"Entry", EntryObject, Py_TPFLAGS_DEFAULT, Entry_dealloc,
	"one page-table entry with pfnscope's verdicts (read-only)",
	.tp_repr = (reprfunc)Entry_repr, .tp_methods = Entry_methods,
	.tp_getset = Entry_getset);

