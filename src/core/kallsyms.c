/* Decode kallsyms_names (kernel/kallsyms.c kallsyms_expand_symbol()): each
 * symbol is a length (in tokens) then token bytes; a token byte indexes
 * kallsyms_token_index, which indexes the NUL-separated kallsyms_token_table.
 * The first expanded character is the symbol's type letter.
 */
#include "pfnscope/kallsyms.h"

#include <string.h>

#define NAME_MAX_LEN 1024

int64_t pfs_kallsyms_find(const struct pfs_kallsyms_tables *t, const char *const *wanted,
			  size_t nwanted, pfs_kallsyms_found_fn found, void *ctx)
{
	size_t pos = 0;
	char buf[NAME_MAX_LEN + 1];
	for (uint32_t i = 0; i < t->num_syms; i++) {
		if (pos >= t->names_len)
			return -1;
		size_t len = t->names[pos++];
		if ((len & 0x80) && t->long_names) {
			if (pos >= t->names_len || (t->names[pos] & 0x80))
				return -1;
			len = (len & 0x7f) | ((size_t)t->names[pos++] << 7);
		}
		if (len > t->names_len - pos)
			return -1;
		size_t n = 0;
		char type = 0;
		int first = 1;
		for (size_t k = 0; k < len; k++) {
			size_t tok = t->token_index[t->names[pos + k]];
			if (tok >= t->token_table_len)
				return -1;
			for (const char *s = t->token_table + tok; ; s++) {
				if ((size_t)(s - t->token_table) >= t->token_table_len)
					return -1;
				if (!*s)
					break;
				if (first) {
					type = *s;
					first = 0;
				} else if (n < NAME_MAX_LEN) {
					buf[n++] = *s;
				}
			}
		}
		buf[n] = 0;
		pos += len;
		for (size_t w = 0; w < nwanted; w++)
			if (!strcmp(buf, wanted[w]))
				found(ctx, w, i, type);
	}
	return (int64_t)pos;
}
