/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the BTF reader and the kallsyms decoder on arbitrary
 * bytes (both read from dumps, i.e. untrusted input): every lookup on every
 * type id of whatever pfs_btf_new() accepts must stay in bounds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "pfnscope/btf.h"
#include "pfnscope/kallsyms.h"

static void found(void *ctx, size_t w, uint32_t index, char type)
{
	(void)ctx; (void)w; (void)index; (void)type;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[128];
	struct pfs_btf *b = pfs_btf_new(data, size, err, sizeof(err));
	if (b) {
		static const char *paths[] = { "a", "a.b", "a[1].b", "[0]", "flags", "" };
		static const char *names[] = { "struct page", "enum pageflags", "int", "page" };
		uint32_t n = pfs_btf_nr_types(b);
		for (uint32_t id = 0; id < n && id < 4096; id++) {
			uint64_t off;
			uint32_t mt, ref;
			int kind;
			const char *name;
			int64_t v;
			pfs_btf_sizeof(b, id);
			pfs_btf_array_len(b, id);
			pfs_btf_type_info(b, id, &kind, &name, &ref);
			for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++)
				pfs_btf_offsetof(b, id, paths[p], &off, &mt);
			int ne = pfs_btf_enum_count(b, id);
			for (int i = 0; i < ne && i < 64; i++)
				pfs_btf_enumerator(b, id, i, &name, &v);
			int np = pfs_btf_param_count(b, id);
			for (int i = 0; i < np && i < 64; i++)
				pfs_btf_param(b, id, i, &name, &ref);
		}
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			pfs_btf_find(b, names[i]);
		pfs_btf_find_func(b, "f");
		pfs_btf_free(b);
	}
	/* kallsyms: the first 512 bytes as the token index, the next quarter as
	 * the token table, the rest as names */
	if (size >= 520) {
		uint16_t index[256];
		memcpy(index, data, sizeof(index));
		size_t rest = size - 512, tl = rest / 4;
		struct pfs_kallsyms_tables t = {
			data + 512 + tl, rest - tl, (uint32_t)(data[512] * 16u), (const char *)data + 512,
			tl, index, data[513] & 1,
		};
		const char *wanted[] = { "init_task", "_stext" };
		pfs_kallsyms_find(&t, wanted, 2, found, NULL);
	}
	return 0;
}
