/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_ERROR_H
#define PFNSCOPE_ERROR_H
/*
 * The one error model of the core, the readers and the front ends.
 *
 * A function that can fail returns 0 or a negative enum pfs_error_code, and
 * fills a struct pfs_error saying what went wrong: the target's (t->error)
 * for everything that reads a kernel, the caller's for the file openers,
 * the output buffer's own for pfs_buf.  The record carries the code, the
 * address and what was being read there ("pgd", "struct page") or the file
 * concerned with a one-line description; a front end turns it into its
 * exception or message in one place (src/python/error.c for Python).
 *
 * Like libdrgn's struct drgn_error (code, address, message), but returned
 * beside an int so that the hot paths (one call per page-table entry)
 * allocate nothing.
 */
#include <stdint.h>

enum pfs_error_code {
	PFS_OK = 0,
	PFS_EREAD = 1,      /* a physical read failed (unreadable memory) */
	PFS_EFAULT = 2,     /* a virtual address is not mapped */
	PFS_ELOOP = 3,      /* a list/tree loops or exceeds its bound */
	PFS_ECORRUPT = 4,   /* a structure is malformed (bad maple node type, ...) */
	PFS_ELAYOUT = 5,    /* layout incomplete */
	PFS_ENOMEM = 6,
	PFS_ENOENT = 7,     /* no such task / VMA */
	PFS_EINVAL = 8,
	PFS_EDUMP = 9,      /* a dump or RAM file cannot be opened or is not a dump */
	PFS_EOS = 10,       /* a system call failed (errnum), e.g. writing output */
};

#define PFS_ERROR_MESSAGE_LEN 512

struct pfs_error {
	enum pfs_error_code code;   /* PFS_OK: no error recorded */
	int errnum;                 /* errno for PFS_EOS, else 0 */
	int has_address;            /* what or a nonzero address was recorded */
	uint64_t address;
	const char *what;           /* static: what was being read at address */
	const char *file;           /* the file concerned (borrowed from the caller) */
	char message[PFS_ERROR_MESSAGE_LEN]; /* PFS_EDUMP: the problem with file */
};

/* The text of a code ("memory not readable"); code may be negative. */
const char *pfs_strerror(int code);
void pfs_error_clear(struct pfs_error *e);
/* Record code (and what was being read at address, what may be NULL);
 * returns -code, so that `return pfs_error_set(...)` fails a function. */
int pfs_error_set(struct pfs_error *e, int code, const char *what, uint64_t address);
/* Record a problem with file: message is the problem ("not a dump"),
 * without the file name; returns -code. */
int pfs_error_file(struct pfs_error *e, int code, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
