/* The kernel's compressed symbol table (kernel/kallsyms.c, scripts/kallsyms.c):
 * kallsyms_names (per symbol a length in tokens, then token bytes),
 * kallsyms_token_table/kallsyms_token_index (a token's string), in address
 * order with kallsyms_offsets.  A dump of a 6.0+ kernel names these tables in
 * VMCOREINFO (commit 5fd8fea935a1 ("vmcoreinfo: include kallsyms symbols")
 * (in v6.0)).
 */
#ifndef PFNSCOPE_KALLSYMS_H
#define PFNSCOPE_KALLSYMS_H

#include <stddef.h>
#include <stdint.h>

struct pfs_kallsyms_tables {
	const uint8_t *names;
	size_t names_len;
	uint32_t num_syms;
	const char *token_table;
	size_t token_table_len;
	const uint16_t *token_index;  /* 256 entries */
	/* lengths >= 0x80 take two bytes: commit 73bbb94466fd ("kallsyms:
	 * support "big" kernel symbols") (in v6.1) */
	int long_names;
};

/* Called for each symbol whose name is one of the wanted (sorted by the
 * caller or not: a linear compare against each).  Returns the number of
 * bytes of names consumed, or -1 when the table is malformed (a name past
 * names_len, a token past the token table).  For each symbol i whose name
 * equals wanted[w], found(ctx, w, i, type) is called (type: the symbol's
 * nm letter). */
typedef void (*pfs_kallsyms_found_fn)(void *ctx, size_t w, uint32_t index, char type);
int64_t pfs_kallsyms_find(const struct pfs_kallsyms_tables *t, const char *const *wanted,
			  size_t nwanted, pfs_kallsyms_found_fn found, void *ctx);

#endif
