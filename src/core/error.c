/* SPDX-License-Identifier: MIT */
/* Error codes, their texts and the error record (include/pfnscope/error.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "pfnscope/error.h"

const char *pfs_strerror(int code)
{
	static const char *const msg[] = {
		[PFS_OK] = "success",
		[PFS_EREAD] = "memory not readable",
		[PFS_EFAULT] = "address not mapped",
		[PFS_ELOOP] = "list or tree loops or exceeds its bound",
		[PFS_ECORRUPT] = "malformed structure",
		[PFS_ELAYOUT] = "layout incomplete",
		[PFS_ENOMEM] = "out of memory",
		[PFS_ENOENT] = "not found",
		[PFS_EINVAL] = "invalid argument",
		[PFS_EDUMP] = "cannot read the dump",
		[PFS_EOS] = "system call failed",
	};
	if (code < 0)
		code = -code;
	if (code >= (int)(sizeof(msg) / sizeof(msg[0])))
		return "unknown error";
	return msg[code];
}

void pfs_error_clear(struct pfs_error *e)
{
	e->code = PFS_OK;
	e->errnum = 0;
	e->has_address = 0;
	e->address = 0;
	e->what = NULL;
	e->file = NULL;
	e->message[0] = 0;
}

int pfs_error_set(struct pfs_error *e, int code, const char *what, uint64_t address)
{
	if (code < 0)
		code = -code;
	pfs_error_clear(e);
	e->code = (enum pfs_error_code)code;
	e->what = what;
	e->address = address;
	e->has_address = what != NULL || address != 0;
	return -code;
}

int pfs_error_file(struct pfs_error *e, int code, const char *file, const char *fmt, ...)
{
	va_list ap;

	if (code < 0)
		code = -code;
	if (!e)
		return -code;
	pfs_error_clear(e);
	e->code = (enum pfs_error_code)code;
	e->file = file;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	/* one line: a libkdumpfile message may carry a newline */
	for (char *p = e->message; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return -code;
}
