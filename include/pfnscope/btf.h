/* BTF (the kernel's BPF Type Format, include/uapi/linux/btf.h): just enough
 * of a reader to lay out struct page & co without a debug vmlinux.
 *
 * The blob is the kernel's own: /sys/kernel/btf/vmlinux on a running kernel,
 * the bytes between __start_BTF and __stop_BTF in a dump.  Types are looked
 * up by C name ("struct page", "enum pageflags", "pgd_t"); member paths are
 * designators as drgn.offsetof() takes them ("mr64.pivot", "numbers[0].nr"),
 * members of anonymous structs and unions included.
 */
#ifndef PFNSCOPE_BTF_H
#define PFNSCOPE_BTF_H

#include <stddef.h>
#include <stdint.h>

enum pfs_btf_kind {
	PFS_BTF_INT = 1, PFS_BTF_PTR, PFS_BTF_ARRAY, PFS_BTF_STRUCT, PFS_BTF_UNION,
	PFS_BTF_ENUM, PFS_BTF_FWD, PFS_BTF_TYPEDEF, PFS_BTF_VOLATILE, PFS_BTF_CONST,
	PFS_BTF_RESTRICT, PFS_BTF_FUNC, PFS_BTF_FUNC_PROTO, PFS_BTF_VAR, PFS_BTF_DATASEC,
	PFS_BTF_FLOAT, PFS_BTF_DECL_TAG, PFS_BTF_TYPE_TAG, PFS_BTF_ENUM64,
};

struct pfs_btf;

/* Parse a BTF blob (copied).  NULL on error, with a one-line reason in err. */
struct pfs_btf *pfs_btf_new(const void *data, size_t size, char *err, size_t errlen);
void pfs_btf_free(struct pfs_btf *btf);
uint32_t pfs_btf_nr_types(const struct pfs_btf *btf);

/* The id of the type named by a C name: "struct X", "union X", "enum X"
 * (enum or enum64), else a typedef/int/float named X.  A complete
 * definition wins over a forward declaration.  0 when absent. */
uint32_t pfs_btf_find(const struct pfs_btf *btf, const char *cname);

/* The BTF_KIND_FUNC named name (a function of the vmlinux); 0 when absent. */
uint32_t pfs_btf_find_func(const struct pfs_btf *btf, const char *name);

int pfs_btf_kind(const struct pfs_btf *btf, uint32_t id);
/* kind, name ("" when anonymous) and the referenced type (pointer target,
 * typedef/qualifier/function/array element type; 0 for others). */
int pfs_btf_type_info(const struct pfs_btf *btf, uint32_t id, int *kind, const char **name,
		      uint32_t *ref);
/* Parameters of a FUNC or FUNC_PROTO: count (-1: neither), then the i-th
 * (name may be "", type 0 for a trailing "...").*/
int pfs_btf_param_count(const struct pfs_btf *btf, uint32_t id);
int pfs_btf_param(const struct pfs_btf *btf, uint32_t id, int i, const char **name,
		  uint32_t *type);
/* id with typedefs and qualifiers (const, volatile, restrict, type tags)
 * stripped; 0 on a loop or a bad id. */
uint32_t pfs_btf_resolve(const struct pfs_btf *btf, uint32_t id);
/* sizeof; -1 for types without a size (void, functions, fwd). */
int64_t pfs_btf_sizeof(const struct pfs_btf *btf, uint32_t id);

/* offsetof(type id, path) in bytes; *member_type (may be NULL) gets the
 * member's type id.  0 on success, -1 when the path names no member. */
int pfs_btf_offsetof(const struct pfs_btf *btf, uint32_t id, const char *path,
		     uint64_t *offset, uint32_t *member_type);

/* Array length of (resolved) id; -1 when id is not an array. */
int64_t pfs_btf_array_len(const struct pfs_btf *btf, uint32_t id);

/* Enumerators of an enum/enum64 (resolved).  Returns their number (-1 when
 * id is not an enum); pfs_btf_enumerator gives the i-th. */
int pfs_btf_enum_count(const struct pfs_btf *btf, uint32_t id);
int pfs_btf_enumerator(const struct pfs_btf *btf, uint32_t id, int i,
		       const char **name, int64_t *value);

#endif
