/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_JSON_H
#define PFNSCOPE_JSON_H
/*
 * Fast output: a small append buffer (optionally flushed to a file
 * descriptor) and the serializers of the JSON objects (entry, run,
 * vma) and of the aligned human table.  No printf per field: numbers are
 * formatted by hand into the buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include "pfnscope/entry.h"
#include "pfnscope/error.h"
#include "pfnscope/layout.h"
#include "pfnscope/vma.h"

struct pfs_run;
struct pfs_json_memo;

struct pfs_buf {
	char *data;
	size_t len, cap;
	int fd;            /* >= 0: flush to fd when full; -1: grow in memory */
	struct pfs_error error; /* the first failed write (PFS_EOS, errnum) or
				 * allocation (PFS_ENOMEM); code PFS_OK if none */
	uint64_t written;  /* bytes written to fd so far */
	struct pfs_json_memo *memo; /* json.c: the last entry line, which the
				     * next entry often repeats but for its numbers */
};

/* cap: initial capacity (fd mode: flush threshold).  0 or -PFS_ENOMEM. */
int pfs_buf_init(struct pfs_buf *b, size_t cap, int fd);
void pfs_buf_fini(struct pfs_buf *b);
/* Write out everything buffered (fd mode); 0 or the negative code of
 * b->error (set by this or an earlier failure). */
int pfs_buf_flush(struct pfs_buf *b);
/* Make room for n more bytes; returns pointer to the free space or NULL. */
char *pfs_buf_reserve(struct pfs_buf *b, size_t n);
void pfs_buf_put(struct pfs_buf *b, const char *s, size_t n);
void pfs_buf_puts(struct pfs_buf *b, const char *s);
void pfs_buf_putc(struct pfs_buf *b, char c);
void pfs_buf_u64(struct pfs_buf *b, uint64_t v);
void pfs_buf_i64(struct pfs_buf *b, int64_t v);
void pfs_buf_hex(struct pfs_buf *b, uint64_t v);        /* "0x1f" */
void pfs_buf_json_str(struct pfs_buf *b, const char *s); /* quoted, escaped */
/* pad with spaces up to column width measured from line start `from` */
void pfs_buf_pad(struct pfs_buf *b, size_t from, size_t width);

/* Bytes mapped by one entry of this level (4 KiB, 2 MiB, 1 GiB). */
uint64_t pfs_level_size(unsigned level);
/* Name of the page_state enum: "none" "ok" "invalid" "unreadable". */
const char *pfs_page_state_name(unsigned state);

/* One JSON object + '\n' for an entry / run / vma (docs/pfnscope.schema.json). */
void pfs_json_entry(struct pfs_buf *b, const struct pfs_entry *e, int32_t pid,
		    uint64_t vma_start, const struct pfs_layout *lo);
void pfs_json_run(struct pfs_buf *b, const struct pfs_run *r, int32_t pid,
		  uint64_t vma_start, const struct pfs_layout *lo);
void pfs_json_vma(struct pfs_buf *b, const struct pfs_vma *v, int32_t pid,
		  const char *file);

/* A {"type":"changed"} record + '\n': an entry that differed between two
 * reads of a live target.  level < 0 and what 0 leave out "level", "what"
 * and "codes" (the diagnoses not confirmed, bit per enum pfs_diag). */
void pfs_json_changed(struct pfs_buf *b, int32_t pid, uint64_t vma_start, uint64_t addr,
		      uint64_t raw_before, uint64_t raw_after, int level, unsigned what,
		      uint32_t codes);
/* The same as a "# changed during the walk: ..." table line. */
void pfs_table_changed(struct pfs_buf *b, uint64_t addr, uint64_t raw_before, uint64_t raw_after,
		       int level, unsigned what, uint32_t codes);

/* Human table: header and one aligned line + '\n' per entry / run. */
void pfs_table_header(struct pfs_buf *b, int summary);
void pfs_table_entry(struct pfs_buf *b, const struct pfs_entry *e,
		     const struct pfs_layout *lo);
void pfs_table_run(struct pfs_buf *b, const struct pfs_run *r,
		   const struct pfs_layout *lo);

/* smaps-like long names of the VM_* bits set in flags, in bit order.
 * Writes up to max names; returns how many names flags has. */
size_t pfs_vma_flag_names(uint64_t flags, const char **names, size_t max);
/* The (value, name) table behind it; *n receives its length. */
struct pfs_flag_name { uint64_t bit; const char *name; };
const struct pfs_flag_name *pfs_vma_flag_table(size_t *n);

#endif
