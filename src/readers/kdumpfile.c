// SPDX-License-Identifier: MIT
/*
 * Physical reads from a dump file through libkdumpfile (KDUMP_MACHPHYSADDR).
 *
 * - QEMU dumps (kdump-zlib, physical-only ELF) carry no architecture name:
 *   set arch.name = x86_64 and addrxlat.ostype = linux (QEMU's dump.c
 *   writes neither a machine name nor an OS type into its headers).
 * - libkdumpfile 0.5.1 does not read makedumpfile's flattened format (what
 *   QEMU's dump-guest-memory -z writes): rebuild it into $TMPDIR as
 *   `makedumpfile -R` does, or refuse with an error that says so.
 * - A damaged dump still answers for the pages that are there, as crash
 *   does: a file cut short (the capture disk filled up, the capture kernel
 *   was reset) or with corrupted page descriptors or bitmap blocks opens
 *   with a damage report (pfs_kdump_damage) and the pages it cannot give
 *   back fail to read, like filtered pages.  Only a cut or damage inside
 *   the headers (ELF program headers and notes; diskdump header, sub-header,
 *   notes, bitmaps) refuses the file with one line.
 * - libkdumpfile trusts the file: its fcache mmaps the file in chunks larger
 *   than a page, so reading page data that straddles the end of a truncated
 *   file touches pages past EOF (SIGBUS), and it maps pfns to page
 *   descriptors by their rank in the dumpable bitmap (diskdump.c
 *   read_bitmap / pfn_to_pdpos), so a corrupted bitmap block shifts every
 *   later page.  Every read of a damaged dump is therefore checked here
 *   first, against what was found at open.
 * - The pages of a whole file are read without libkdumpfile where that is
 *   simple and much cheaper: an ELF file copied out of its mapping or
 *   read with pread(2) (elf_direct_*, pfs_fmap_read), or its bytes given
 *   where they lie in the mapping (pfs_kdump_map_phys: a walk's runs of
 *   struct pages), a kdump-compressed file of raw and zlib pages by
 *   diskdump.c (diskdump_direct_open), checked against libkdumpfile on a
 *   few pages at open.  A whole 64-bit little-endian ELF core of x86-64 or
 *   arm64 is opened without libkdumpfile at all (elf_open_plain: its
 *   arch, format and VMCOREINFO read by elfcore.c as libkdumpfile gives
 *   them; k->ctx is NULL).  PFS_KDUMP_LIBKDUMPFILE_PAGES turns all of
 *   these off.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libkdumpfile/kdumpfile.h>

#include "pfnscope/readers.h"
#include "diskdump.h"
#include "elfcore.h"
#include "fmap.h"

/* a physical range the file cannot give back: [first, last] pfns */
struct pfs_pfn_range {
	uint64_t first, last;
};

/* an ELF PT_LOAD: physical start, file offset, bytes in the file */
struct pfs_elf_load {
	uint64_t paddr, offset, filesz;
};

/* A whole ELF dump is read here, not through libkdumpfile: physical
 * [paddr, paddr + filesz) at file offset `offset`, disjoint and sorted.
 * Pages are copied out of the file mapped whole, or read with pread(2)
 * where mapping them would cost more (pfs_fmap_read), or not copied at all
 * (pfs_fmap_view, for pfs_kdump_map_phys; fmap.h: its resident set
 * trimmed: 50 MiB at most in a check of an 8 GiB guest's ELF dump,
 * against 343 MiB in libkdumpfile's mapping). */
#define PFS_PAGE_BYTES 4096u
/* libkdumpfile's cache.size (see pfs_kdump_open) */
#define PFS_KDUMP_CACHE_PAGES 64

struct pfs_elf_direct {
	struct pfs_elf_load *map;
	size_t nmap;
	struct pfs_fmap file;
};

struct pfs_kdump {
	kdump_ctx_t *ctx;
	int fd;
	uint64_t size;              /* of the file libkdumpfile reads */
	struct pfs_kdump_damage damage;
	char *warning;              /* one line, NULL when whole */
	/* checked before every read when the dump is damaged */
	int check_reads;
	unsigned page_shift;
	struct pfs_pfn_range *bad;  /* sorted, disjoint */
	size_t nbad, capbad;
	struct pfs_elf_load *loads; /* ELF: where each PT_LOAD lies in the file */
	size_t nloads;
	struct pfs_elf_load *all;   /* ELF: every PT_LOAD (for the direct reads) */
	size_t nall;
	int all_ok;                 /* every PT_LOAD has p_filesz == p_memsz */
	/* ELF, for an open without libkdumpfile (elf_open_plain) */
	struct pfs_elfcore_notes *notes; /* the PT_NOTE segments, in order */
	size_t nnotes;
	int notes_ok;               /* all of them are in notes */
	int loads_exact;            /* p_filesz == p_memsz, p_filesz 0 too */
	uint64_t nload_hdrs;        /* PT_LOADs */
	int load_paddr;             /* one of them has a p_paddr other than 0 */
	struct pfs_elf_direct *direct;
	/* a whole kdump-compressed file read by diskdump.c (see
	 * diskdump_direct_open), through cur under lock */
	struct pfs_dd *dd;
	struct pfs_dd_cursor *cur;
	int lkf_pages;              /* PFS_KDUMP_LIBKDUMPFILE_PAGES */
	pthread_mutex_t lock;
	char *vmcoreinfo;
	char *format;
	char *arch;
	char *tmp_path;      /* rebuilt flattened file, unlinked on close */
	int flat_cut;        /* its flattened stream ended before the end mark */
};

/* One line naming the dump: the problem is written without the path, which
 * the error record carries apart. */
#define set_err(err, path, ...) pfs_error_file(err, PFS_EDUMP, path, __VA_ARGS__)

int pfs_is_flattened(const char *path)
{
	char sig[16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = pread(fd, sig, sizeof(sig), 0);
	close(fd);
	return n == (ssize_t)sizeof(sig) && memcmp(sig, "makedumpfile\0", 13) == 0;
}

/* makedumpfile's flattened format (makedumpfile.h): a 4096-byte header
 * (signature "makedumpfile", be64 type 1, be64 version 1), then segments of
 * { be64 offset, be64 buf_size } + buf_size bytes to be written at offset
 * of the real file, ended by offset -1 (END_FLAG_FLAT_HEADER).  This is
 * what `makedumpfile -R` does, done here because a stream cut short makes
 * makedumpfile -R spin forever: a cut stream is rebuilt up to where it
 * ends (*cut set) and read as a truncated dump.  Returns the malloc'ed
 * temporary path or NULL. */
static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static char *rebuild_flattened(const char *path, int *cut, struct pfs_error *err)
{
	const char *dir = getenv("TMPDIR");
	unsigned char hdr[4096], seg[16];
	char *out, *buf = NULL;
	int in = -1, ofd;
	uint64_t pos = sizeof(hdr);
	const size_t chunk = 1 << 20;

	*cut = 0;
	if (!dir || !*dir)
		dir = "/tmp";
	if (asprintf(&out, "%s/pfnscope-rebuilt-XXXXXX", dir) < 0)
		return NULL;
	ofd = mkstemp(out);
	if (ofd < 0) {
		set_err(err, path, "flattened makedumpfile format; cannot create a "
			"temporary file in %s to rebuild it: %s", dir, strerror(errno));
		free(out);
		return NULL;
	}
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		set_err(err, path, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (pread(in, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    be64(hdr + 16) != 1 || be64(hdr + 24) != 1) {
		set_err(err, path, "flattened makedumpfile format with a bad or "
			"short header: cannot rebuild it (`makedumpfile -R OUT < FILE`)");
		goto fail;
	}
	fprintf(stderr, "pfnscope: %s is in makedumpfile's flattened format; "
		"rebuilding it (as `makedumpfile -R`) into %s\n", path, out);
	buf = malloc(chunk);
	if (!buf) {
		set_err(err, path, "out of memory");
		goto fail;
	}
	for (;;) {
		ssize_t n = pread(in, seg, sizeof(seg), (off_t)pos);
		if (n != (ssize_t)sizeof(seg)) {
			*cut = 1;   /* the stream ends before its end mark */
			break;
		}
		int64_t off = (int64_t)be64(seg), size = (int64_t)be64(seg + 8);
		if (off == -1)
			break;
		if (off < 0 || size <= 0 || size > ((int64_t)1 << 40) || off > INT64_MAX - size) {
			set_err(err, path, "corrupt flattened makedumpfile format: segment "
				"at byte %llu has offset %lld, size %lld", (unsigned long long)pos,
				(long long)off, (long long)size);
			goto fail;
		}
		pos += sizeof(seg);
		for (int64_t done = 0; done < size;) {
			size_t want = (size_t)(size - done) < chunk ? (size_t)(size - done) : chunk;
			ssize_t got = pread(in, buf, want, (off_t)pos);
			if (got <= 0) {
				*cut = 1;
				goto out;
			}
			if (pwrite(ofd, buf, (size_t)got, (off_t)(off + done)) != got) {
				set_err(err, path, "cannot write the rebuilt dump to %s: %s",
					out, strerror(errno));
				goto fail;
			}
			done += got;
			pos += (uint64_t)got;
		}
	}
out:
	free(buf);
	close(in);
	close(ofd);
	return out;
fail:
	free(buf);
	if (in >= 0)
		close(in);
	close(ofd);
	unlink(out);
	free(out);
	return NULL;
}

/* Append the pfns [first, last] to the bad list (kept sorted: callers go
 * in pfn order; a range touching the last one is merged into it). */
static int add_bad(struct pfs_kdump *k, uint64_t first, uint64_t last)
{
	if (k->nbad && first <= k->bad[k->nbad - 1].last + 1 && first >= k->bad[k->nbad - 1].first) {
		if (last > k->bad[k->nbad - 1].last)
			k->bad[k->nbad - 1].last = last;
		return 0;
	}
	if (k->nbad == k->capbad) {
		size_t cap = k->capbad ? 2 * k->capbad : 64;
		struct pfs_pfn_range *n = realloc(k->bad, cap * sizeof(*n));
		if (!n)
			return -1;
		k->bad = n;
		k->capbad = cap;
	}
	k->bad[k->nbad].first = first;
	k->bad[k->nbad].last = last;
	k->nbad++;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct pfs_pfn_range *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

/* Sort and merge the bad list (bitmap ranges are added after descriptors). */
static void finish_bad(struct pfs_kdump *k)
{
	size_t n = 0;

	if (!k->nbad)
		return;
	qsort(k->bad, k->nbad, sizeof(*k->bad), cmp_range);
	for (size_t i = 1; i < k->nbad; i++) {
		if (k->bad[i].first <= k->bad[n].last + 1 || k->bad[n].last == UINT64_MAX) {
			if (k->bad[i].last > k->bad[n].last)
				k->bad[n].last = k->bad[i].last;
		} else {
			k->bad[++n] = k->bad[i];
		}
	}
	k->nbad = n + 1;
}

static int pfn_is_bad(const struct pfs_kdump *k, uint64_t first, uint64_t last)
{
	size_t lo = 0, hi = k->nbad;

	/* first range whose last >= first */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->bad[mid].last < first)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < k->nbad && k->bad[lo].first <= last;
}

/* ELF: program headers and notes must be in the file (else the file is
 * refused: the headers are gone); PT_LOAD data past the end is missing,
 * and those pages fail to read. */
static int check_elf(struct pfs_kdump *k, const char *path, struct pfs_error *err)
{
	Elf64_Ehdr eh;
	uint64_t size = k->size, end = 0;

	if (pread(k->fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG))
		return 0;
	if (eh.e_ident[EI_CLASS] != ELFCLASS64)
		return 0;   /* leave 32-bit files to libkdumpfile */
	if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
		/* not an ELF64 core's program header size */
		set_err(err, path, "corrupt ELF dump: e_phentsize is %u, not %zu",
			(unsigned)eh.e_phentsize, sizeof(Elf64_Phdr));
		return -1;
	}
	uint64_t phnum = eh.e_phnum;
	if (phnum == PN_XNUM) {
		/* more than 65534 program headers (QEMU paging=true dumps): the
		 * count is sh_info of section header 0 (elf(5)) */
		Elf64_Shdr sh0;
		if (eh.e_shoff > size || size - eh.e_shoff < sizeof(sh0) ||
		    pread(k->fd, &sh0, sizeof(sh0), (off_t)eh.e_shoff) != (ssize_t)sizeof(sh0)) {
			set_err(err, path, "truncated ELF dump (section header 0, which "
				"holds the program header count, is beyond the end of the "
				"%llu-byte file)", (unsigned long long)size);
			return -1;
		}
		phnum = sh0.sh_info;
	}
	if (!phnum) {
		/* a vmcore has notes and loads; libkdumpfile 0.5.1 crashes
		 * opening an ELF core without program headers (fuzzing) */
		set_err(err, path, "corrupt ELF dump: no program headers");
		return -1;
	}
	if (eh.e_phoff > size || phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff) {
		set_err(err, path, "truncated ELF dump (program headers beyond "
			"the end of the %llu-byte file)", (unsigned long long)size);
		return -1;
	}
	/* the program headers a chunk per read: QEMU paging dumps have 66,000,
	 * 3.7 MB that one buffer would fault in page by page */
	enum { PH_CHUNK = 512 };
	k->loads = calloc(phnum ? phnum : 1, sizeof(*k->loads));
	Elf64_Phdr *phs = malloc(PH_CHUNK * sizeof(*phs));
	if (!k->loads || !phs) {
		free(phs);
		return 0;
	}
	k->all = calloc(phnum, sizeof(*k->all));
	k->all_ok = k->all != NULL && eh.e_ident[EI_DATA] == ELFDATA2LSB;
	k->notes_ok = 1;
	k->loads_exact = 1;
	for (uint64_t i = 0; i < phnum; i++) {
		if (i % PH_CHUNK == 0) {
			uint64_t n = phnum - i < PH_CHUNK ? phnum - i : PH_CHUNK;
			if (pfs_pread_all(k->fd, phs, n * sizeof(*phs), eh.e_phoff + i * sizeof(*phs))) {
				/* what was gathered is partial: left to libkdumpfile */
				k->all_ok = k->notes_ok = k->loads_exact = 0;
				k->nloads = 0;
				free(phs);
				return 0;
			}
		}
		Elf64_Phdr ph = phs[i % PH_CHUNK];
		if (ph.p_offset > UINT64_MAX - ph.p_filesz) {
			set_err(err, path, "corrupt ELF dump: segment %llu's file range "
				"overflows", (unsigned long long)i);
			free(phs);
			return -1;
		}
		if (ph.p_type == PT_NOTE && ph.p_offset + ph.p_filesz > size) {
			set_err(err, path, "truncated ELF dump: the notes (segment %llu) "
				"end at byte %llu, the file has %llu", (unsigned long long)i,
				(unsigned long long)(ph.p_offset + ph.p_filesz),
				(unsigned long long)size);
			free(phs);
			return -1;
		}
		if (ph.p_type == PT_NOTE && k->notes_ok) {
			struct pfs_elfcore_notes *n = realloc(k->notes, (k->nnotes + 1) * sizeof(*n));
			if (n) {
				k->notes = n;
				k->notes[k->nnotes].offset = ph.p_offset;
				k->notes[k->nnotes].size = ph.p_filesz;
				k->nnotes++;
			} else {
				k->notes_ok = 0;
			}
		}
		if (ph.p_type != PT_LOAD)
			continue;
		k->nload_hdrs++;
		if (ph.p_paddr)
			k->load_paddr = 1;
		if (ph.p_filesz != ph.p_memsz)
			k->loads_exact = 0;
		if (k->all && ph.p_filesz) {
			if (ph.p_filesz != ph.p_memsz || ph.p_paddr > UINT64_MAX - ph.p_filesz)
				k->all_ok = 0;
			k->all[k->nall].paddr = ph.p_paddr;
			k->all[k->nall].offset = ph.p_offset;
			k->all[k->nall].filesz = ph.p_filesz;
			k->nall++;
		}
		if (ph.p_offset + ph.p_filesz > end)
			end = ph.p_offset + ph.p_filesz;
		if (ph.p_offset + ph.p_filesz <= size)
			continue;   /* whole: only cut segments are checked on reads */
		k->loads[k->nloads].paddr = ph.p_paddr;
		k->loads[k->nloads].offset = ph.p_offset;
		k->loads[k->nloads].filesz = ph.p_filesz;
		k->nloads++;
	}
	free(phs);
	if (end > size) {
		k->damage.truncated = 1;
		k->damage.missing_bytes = end - size;
		for (size_t i = 0; i < k->nloads; i++) {
			struct pfs_elf_load *l = &k->loads[i];
			if (l->filesz)
				k->damage.missing_pages += (l->offset + l->filesz -
							    (l->offset >= size ? l->offset : size) + 4095) >> 12;
		}
		k->check_reads = 1;
	}
	return 0;
}

/* an N-byte unsigned field of a header, little- or big-endian */
static uint64_t hdr_field(const unsigned char *p, unsigned n, int big)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[big ? n - 1 - i : i] << (8 * i);
	return v;
}
/* libkdumpfile 0.5.1 parses VMCOREINFO (vmcoreinfo.c) into attributes
 * whose path is the key split at '.': a key starting with '.' (an empty
 * first component) crashes lines_post_hook (found by the kdump fuzz
 * target).  The kernel's keys never do (crash_core.c VMCOREINFO_*
 * macros).  TEXT is a VMCOREINFO blob, or with NOTES an ELF note area
 * read as do_notes() does; 0 when no such key, else -1 and the error. */
static int vmcoreinfo_keys_ok(const unsigned char *text, uint64_t len, int notes, int big,
			      const char *path, struct pfs_error *err)
{
	if (notes) {
		uint64_t pos = 0;
		while (len - pos >= 12) {
			uint64_t namesz = hdr_field(text + pos, 4, big);
			uint64_t descsz = hdr_field(text + pos + 4, 4, big);
			uint64_t descoff = 12 + ((namesz + 3) & ~3ull);
			if (len - pos < descoff + descsz)
				break;
			const char *name = (const char *)text + pos + 12;
			if ((namesz == 10 || namesz == 11) && !memcmp(name, "VMCOREINFO", namesz) &&
			    vmcoreinfo_keys_ok(text + pos + descoff, descsz, 0, big, path, err))
				return -1;
			pos += descoff + ((descsz + 3) & ~3ull);
			if (pos > len)
				break;
		}
		return 0;
	}
	for (uint64_t i = 0; i < len; i++) {
		if ((i == 0 || text[i - 1] == '\n') && text[i] == '.') {
			const unsigned char *nl = memchr(text + i, '\n', len - i);
			uint64_t n = (nl ? (uint64_t)(nl - text) : len) - i;
			set_err(err, path, "corrupt VMCOREINFO: the line \"%.*s\" starts "
				"with '.'", (int)(n > 40 ? 40 : n), (const char *)text + i);
			return -1;
		}
	}
	return 0;
}

/* the VMCOREINFO check over LEN bytes at OFF of the file (already known to
 * lie in it); larger note areas than any kernel writes are left alone */
static int vmcoreinfo_in_file_ok(const struct pfs_kdump *k, uint64_t off, uint64_t len,
				 int notes, int big, const char *path, struct pfs_error *err)
{
	if (!len || len > (64u << 20))
		return 0;
	unsigned char *buf = malloc(len);
	int ret = 0;
	if (buf && !pfs_pread_all(k->fd, buf, len, off))
		ret = vmcoreinfo_keys_ok(buf, len, notes, big, path, err);
	free(buf);
	return ret;
}

/* The VMCOREINFO of an ELF core: its PT_NOTE segments (check_elf() has
 * found the program headers and notes in the file). */
static int check_elf_vmcoreinfo(const struct pfs_kdump *k, const char *path,
				struct pfs_error *err)
{
	Elf64_Ehdr eh;
	Elf64_Shdr sh0;
	Elf64_Phdr ph;

	if (k->notes_ok) {
		/* the PT_NOTE segments check_elf() kept, all in the file: the
		 * program headers are not read a second time */
		for (size_t i = 0; i < k->nnotes; i++)
			if (vmcoreinfo_in_file_ok(k, k->notes[i].offset, k->notes[i].size, 1, 0,
						  path, err))
				return -1;
		return 0;
	}
	if (pread(k->fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(ph))
		return 0;
	uint64_t phnum = eh.e_phnum;
	if (phnum == PN_XNUM) {
		if (pfs_pread_all(k->fd, &sh0, sizeof(sh0), eh.e_shoff))
			return 0;
		phnum = sh0.sh_info;
	}
	/* program headers a chunk per read: QEMU paging dumps have 66,000 */
	Elf64_Phdr chunk[512];
	for (uint64_t i = 0; i < phnum; i++) {
		if (i % 512 == 0) {
			uint64_t n = phnum - i < 512 ? phnum - i : 512;
			if (pfs_pread_all(k->fd, chunk, n * sizeof(ph), eh.e_phoff + i * sizeof(ph)))
				return 0;
		}
		ph = chunk[i % 512];
		if (ph.p_type == PT_NOTE && ph.p_offset <= k->size &&
		    ph.p_filesz <= k->size - ph.p_offset &&
		    vmcoreinfo_in_file_ok(k, ph.p_offset, ph.p_filesz, 1, 0, path, err))
			return -1;
	}
	return 0;
}

/* libkdumpfile 0.5.1 (elfdump.c read_elfhdr_64, init_sections, init_strtab)
 * reads e_shnum section headers -- or as many as section 0's sh_size says
 * when e_shnum is 0, section 0 being read whenever e_shoff is set and
 * e_shnum is 0 or e_phnum PN_XNUM -- each as an e_shentsize-byte chunk (0
 * bytes gives it a NULL chunk, which it dereferences), allocates an entry
 * per section first, then sh_size bytes for the section name table
 * (e_shstrndx).  Cores without sections (the kernel's /proc/vmcore, e_shoff
 * and e_shnum 0) are not read.  A truncated dump keeps its section headers
 * (QEMU writes them right after the ELF header) but may lose the name table
 * at its end: only a table larger than the file is refused. */
static int check_elf_sections(const struct pfs_kdump *k, const char *path,
			      struct pfs_error *err)
{
	Elf64_Ehdr eh;
	Elf64_Shdr sh;
	uint64_t size = k->size;

	ssize_t got = pread(k->fd, &eh, sizeof(eh), 0);
	if (got < SELFMAG || memcmp(eh.e_ident, ELFMAG, SELFMAG))
		return 0;
	if (got != (ssize_t)sizeof(eh)) {
		/* libkdumpfile's elf_probe reads sizeof(Elf64_Ehdr) bytes
		 * whatever the file's size: the rest of its page reads as zeros,
		 * e.g. a 0 e_shentsize under a set e_shoff (fuzzing: SEGV) */
		set_err(err, path, "truncated ELF dump: the file ends inside the "
			"ELF header (%llu bytes)", (unsigned long long)size);
		return -1;
	}
	if (eh.e_ident[EI_CLASS] == ELFCLASS32) {
		/* read_elfhdr_32 has the same section-header reads; no 32-bit
		 * kernel is a pfnscope target */
		set_err(err, path, "a 32-bit ELF core (EI_CLASS 1): pfnscope reads "
			"64-bit kernels only");
		return -1;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64)
		return 0;
	uint64_t shnum = eh.e_shnum;
	int read0 = eh.e_shoff && (!shnum || eh.e_phnum == PN_XNUM);
	if (!read0 && !shnum)
		return 0;
	if (eh.e_shentsize != sizeof(Elf64_Shdr)) {
		set_err(err, path, "corrupt ELF dump: e_shentsize is %u, not %zu",
			(unsigned)eh.e_shentsize, sizeof(Elf64_Shdr));
		return -1;
	}
	if (eh.e_shoff > size || size - eh.e_shoff < sizeof(sh)) {
		set_err(err, path, "corrupt ELF dump: e_shoff %llu is beyond the "
			"%llu-byte file", (unsigned long long)eh.e_shoff,
			(unsigned long long)size);
		return -1;
	}
	if (!shnum) {
		if (pfs_pread_all(k->fd, &sh, sizeof(sh), eh.e_shoff))
			return 0;
		shnum = sh.sh_size;
	}
	if (shnum > (size - eh.e_shoff) / sizeof(sh)) {
		set_err(err, path, "corrupt ELF dump: %llu section headers (%s) at "
			"e_shoff %llu do not fit in the %llu-byte file",
			(unsigned long long)shnum, eh.e_shnum ? "e_shnum" : "section 0's sh_size",
			(unsigned long long)eh.e_shoff, (unsigned long long)size);
		return -1;
	}
	if (eh.e_shstrndx && eh.e_shstrndx < shnum &&
	    !pfs_pread_all(k->fd, &sh, sizeof(sh), eh.e_shoff + eh.e_shstrndx * sizeof(sh)) &&
	    sh.sh_size > size) {
		set_err(err, path, "corrupt ELF dump: the section name table (section "
			"%u) has sh_size %llu, more than the %llu-byte file",
			(unsigned)eh.e_shstrndx, (unsigned long long)sh.sh_size,
			(unsigned long long)size);
		return -1;
	}
	return 0;
}

/* ELF read check: no byte of [paddr, paddr + len) may come from the part
 * of a cut PT_LOAD past the end of the file (a physical address that
 * another, whole segment also holds is refused too: libkdumpfile may pick
 * either). */
static int elf_range_ok(const struct pfs_kdump *k, uint64_t paddr, size_t len)
{
	for (size_t i = 0; i < k->nloads; i++) {
		const struct pfs_elf_load *l = &k->loads[i];
		if (paddr + len <= l->paddr || paddr >= l->paddr + l->filesz)
			continue;
		uint64_t lo = paddr > l->paddr ? paddr : l->paddr;
		uint64_t hi = paddr + len < l->paddr + l->filesz ? paddr + len : l->paddr + l->filesz;
		if (l->offset + (hi - l->paddr) > k->size)
			return 0;
		(void)lo;
	}
	return 1;
}

/* kdump-compressed (diskdump) layout, 64-bit, from makedumpfile's
 * diskdump_mod.h: struct disk_dump_header, then at block_size the struct
 * kdump_sub_header, then bitmap_blocks blocks of two bitmaps (memory
 * present, then dumpable), then one struct page_desc per dumpable page in
 * pfn order, then the page data.  makedumpfile (write_kdump_pages_cyclic)
 * and QEMU (dump.c write_dump_pages) write the data of one zero page first
 * (every zero page's descriptor points there) and then each page's data
 * right after the previous one's: offsets are contiguous. */
#define DH_STATUS        424
#define DH_BLOCK_SIZE    428
#define DH_SUB_HDR_SIZE  432
#define DH_BITMAP_BLOCKS 436
#define DH_MAX_MAPNR     440
#define DH_VERSION       8
#define DUMP_DH_COMPRESSED_INCOMPLETE 0x8   /* dh->status: makedumpfile hit ENOSPC */
#define DUMP_DH_COMPRESSED_ALL (DUMP_DH_COMPRESSED_ZLIB | DUMP_DH_COMPRESSED_LZO | \
				DUMP_DH_COMPRESSED_SNAPPY | DUMP_DH_COMPRESSED_ZSTD)
/* what diskdump.c leaves to libkdumpfile */
#define DUMP_DH_COMPRESSED_OTHER (DUMP_DH_COMPRESSED_LZO | DUMP_DH_COMPRESSED_SNAPPY | \
				  DUMP_DH_COMPRESSED_ZSTD)

static int check_diskdump(struct pfs_kdump *k, const char *path, struct pfs_error *err)
{
	unsigned char hdr[464], sub[104];
	int32_t block_size, sub_hdr_size, version;
	uint32_t bitmap_blocks, max_mapnr32, status;
	uint64_t size = k->size, max_pfn;
	unsigned char *bm1 = NULL, *bm2 = NULL;
	struct page_desc *pds = NULL;
	int ret = 0, other_compression = 0;

	ssize_t got = pread(k->fd, hdr, sizeof(hdr), 0);
	if (got < 8 || (memcmp(hdr, "KDUMP   ", 8) && memcmp(hdr, "DISKDUMP", 8)))
		return 0;
	if (got != (ssize_t)sizeof(hdr)) {
		set_err(err, path, "truncated kdump-compressed dump: the file ends "
			"inside the header (%llu bytes)", (unsigned long long)size);
		return -1;
	}
	memcpy(&version, hdr + DH_VERSION, 4);
	memcpy(&status, hdr + DH_STATUS, 4);
	memcpy(&block_size, hdr + DH_BLOCK_SIZE, 4);
	memcpy(&sub_hdr_size, hdr + DH_SUB_HDR_SIZE, 4);
	memcpy(&bitmap_blocks, hdr + DH_BITMAP_BLOCKS, 4);
	memcpy(&max_mapnr32, hdr + DH_MAX_MAPNR, 4);
	/* libkdumpfile's try_header() limits; what it refuses we leave to it */
	if (block_size < 1024 || block_size > (1 << 20) || (block_size & (block_size - 1)) ||
	    sub_hdr_size < 0 || sub_hdr_size > (1 << 20) || !bitmap_blocks)
		return 0;
	uint64_t bs = (uint64_t)block_size;
	k->page_shift = (unsigned)__builtin_ctzll(bs);
	max_pfn = max_mapnr32;
	if (!memcmp(hdr, "KDUMP   ", 8) && version >= 1) {
		if (pfs_pread_all(k->fd, sub, sizeof(sub), bs)) {
			set_err(err, path, "truncated kdump-compressed dump: the file ends "
				"inside the sub-header (%llu bytes)", (unsigned long long)size);
			return -1;
		}
		int32_t split;
		memcpy(&split, sub + 12, 4);
		if (split)
			return 0;   /* one part of a split dump: leave it to libkdumpfile */
		if (version >= 6)
			memcpy(&max_pfn, sub + 96, 8);
		/* the blobs libkdumpfile reads at open (read_vmcoreinfo,
		 * read_eraseinfo, read_notes): inside the file, or one line here
		 * rather than its error path (see abandon_ctx) */
		static const struct { unsigned ver, off; const char *what; } blobs[] = {
			{ 3, 32, "VMCOREINFO" }, { 4, 48, "ELF notes" }, { 5, 64, "erase info" },
		};
		for (unsigned i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++) {
			uint64_t off, len;
			if ((unsigned)version < blobs[i].ver)
				continue;
			memcpy(&off, sub + blobs[i].off, 8);
			memcpy(&len, sub + blobs[i].off + 8, 8);
			if (len && (off > size || len > size - off)) {
				set_err(err, path, "%s kdump-compressed dump: its %s (%llu bytes "
					"at %llu) end beyond the %llu-byte file",
					off < size && len < (1ull << 32) ? "truncated" : "corrupt",
					blobs[i].what, (unsigned long long)len, (unsigned long long)off,
					(unsigned long long)size);
				return -1;
			}
		}
	}
	if (status & DUMP_DH_COMPRESSED_INCOMPLETE)
		k->damage.incomplete = 1;

	uint64_t bitmap_off = (1 + (uint64_t)sub_hdr_size) * bs;
	uint64_t bitmap_len = (uint64_t)bitmap_blocks * bs;
	uint64_t desc_off = bitmap_off + bitmap_len;
	if (desc_off > size) {
		set_err(err, path, "truncated kdump-compressed dump: the file ends "
			"inside the headers or page bitmaps (they end at byte %llu, the file "
			"has %llu)", (unsigned long long)desc_off, (unsigned long long)size);
		return -1;
	}
	/* as libkdumpfile's read_bitmap(): two bitmaps when the first half
	 * covers every pfn, else one (old single-bitmap files) */
	uint64_t half = bitmap_len / 2, bm_len = bitmap_len;
	int two = max_pfn <= half * 8;
	if (two)
		bm_len = half;
	if (bm_len > ((uint64_t)1 << 32))
		return 0;
	bm2 = malloc(bm_len ? bm_len : 1);
	if (two)
		bm1 = malloc(bm_len ? bm_len : 1);
	if (!bm2 || (two && !bm1))
		goto out;
	if (pfs_pread_all(k->fd, bm2, bm_len, bitmap_off + (two ? half : 0)) ||
	    (two && pfs_pread_all(k->fd, bm1, bm_len, bitmap_off)))
		goto out;
	uint64_t nbits = bm_len * 8 < max_pfn ? bm_len * 8 : max_pfn;
	if (max_pfn > bm_len * 8)
		nbits = bm_len * 8;
	uint64_t npages = 0;
	for (uint64_t i = 0; i < bm_len; i++)
		npages += (uint64_t)__builtin_popcount(bm2[i]);
	if (!npages)
		goto out;

	/* A dumpable page must be present (makedumpfile's second bitmap is a
	 * subset of the first; QEMU writes the same bitmap twice): a bitmap
	 * block breaking that is corrupt.  Blocks are bs bytes = 8*bs pfns. */
	uint64_t bad_bm_first = UINT64_MAX, bad_bm_last = 0;
	if (two) {
		for (uint64_t blk = 0; blk * bs < bm_len; blk++) {
			int bad = 0;
			for (uint64_t i = blk * bs; i < (blk + 1) * bs && i < bm_len; i++)
				if (bm2[i] & ~bm1[i]) {
					bad = 1;
					break;
				}
			if (bad) {
				k->damage.bad_bitmap_blocks++;
				if (bad_bm_first == UINT64_MAX)
					bad_bm_first = blk;
				bad_bm_last = blk;
			}
		}
	}

	/* The page descriptors: as many as dumpable bits, the zero page's data
	 * right after them.  The smallest offset among the first descriptors
	 * tells how many descriptors the writer made. */
	uint64_t data_start = desc_off + npages * sizeof(struct page_desc);
	uint64_t table_in_file = size > desc_off ? (size - desc_off) / sizeof(struct page_desc) : 0;
	{
		struct page_desc first[16];
		uint64_t n = npages < 16 ? npages : 16, minoff = UINT64_MAX;
		if (n > table_in_file)
			n = table_in_file;
		if (n && pfs_pread_all(k->fd, first, n * sizeof(first[0]), desc_off) == 0) {
			for (uint64_t i = 0; i < n; i++)
				if (first[i].offset > desc_off && first[i].offset < minoff)
					minoff = first[i].offset;
			if (minoff != UINT64_MAX && minoff != data_start && minoff != data_start + bs) {
				/* the bitmap and the descriptor table disagree: pfns
				 * from the first corrupt bitmap block on cannot be
				 * located (their descriptor is another page's) */
				uint64_t ndesc = (minoff - desc_off) / sizeof(struct page_desc);
				k->damage.bitmap_mismatch = 1;
				k->damage.descriptors = ndesc;
				k->damage.dumpable = npages;
				if (bad_bm_first == UINT64_MAX) {
					set_err(err, path, "corrupt kdump-compressed dump: the "
						"dumpable-page bitmap marks %llu pages but the file has "
						"about %llu page descriptors, and no bitmap block is "
						"visibly wrong: no page can be located",
						(unsigned long long)npages, (unsigned long long)ndesc);
					ret = -1;
					goto out;
				}
				k->damage.lost_from_pfn = bad_bm_first * bs * 8;
				if (add_bad(k, k->damage.lost_from_pfn, UINT64_MAX))
					goto out;
				k->check_reads = 1;
				/* descriptors are not checked: their pfns are unknown
				 * past the bad block, and before it the bitmap holds */
				for (uint64_t i = k->damage.lost_from_pfn / 8; i < bm_len; i++)
					k->damage.lost_pages += (uint64_t)__builtin_popcount(bm2[i]);
				goto out;
			}
		}
	}
	if (bad_bm_first != UINT64_MAX) {
		/* counts agree: the corruption is confined to those blocks */
		uint64_t last = (bad_bm_last + 1) * bs * 8 - 1;
		if (add_bad(k, bad_bm_first * bs * 8, last))
			goto out;
		for (uint64_t i = bad_bm_first * bs; i < (bad_bm_last + 1) * bs && i < bm_len; i++)
			k->damage.lost_pages += (uint64_t)__builtin_popcount(bm2[i]);
		k->check_reads = 1;
	}

	/* Walk the dumpable bits in pfn order with their descriptors. */
	enum { CHUNK = 4096 };
	pds = malloc(CHUNK * sizeof(*pds));
	if (!pds)
		goto out;
	uint64_t idx = 0, chunk_base = 0, chunk_n = 0, prev_end = data_start, gap = bs;
	uint64_t expected_end = data_start;
	for (uint64_t byte = 0; byte < bm_len; byte++) {
		unsigned bits = bm2[byte];
		while (bits) {
			unsigned b = (unsigned)__builtin_ctz(bits);
			bits &= bits - 1;
			uint64_t pfn = byte * 8 + b;
			if (pfn >= nbits) {
				bits = 0;
				break;
			}
			if (idx >= table_in_file) {
				/* the descriptor itself is past the end */
				k->damage.truncated = 1;
				k->damage.missing_pages++;
				if (add_bad(k, pfn, pfn))
					goto out;
				idx++;
				continue;
			}
			if (idx >= chunk_base + chunk_n) {
				chunk_base = idx;
				chunk_n = table_in_file - idx < CHUNK ? table_in_file - idx : CHUNK;
				if (pfs_pread_all(k->fd, pds, chunk_n * sizeof(*pds),
					     desc_off + idx * sizeof(*pds)))
					goto out;
			}
			const struct page_desc *pd = &pds[idx - chunk_base];
			idx++;
			if (pd->flags & DUMP_DH_COMPRESSED_OTHER)
				other_compression = 1;
			int bad = 0, zero = 0;
			if (k->flat_cut && !pd->offset && !pd->size && !pd->flags && !pd->page_flags) {
				/* never written: the flattened stream ended first */
				k->damage.truncated = 1;
				k->damage.missing_pages++;
				if (add_bad(k, pfn, pfn))
					goto out;
				continue;
			}
			if (pd->offset == data_start && pd->size == bs && pd->flags == 0)
				zero = 1;
			else if (!pd->size || pd->size > bs || (pd->flags & ~(uint32_t)DUMP_DH_COMPRESSED_ALL) ||
				 (!(pd->flags & DUMP_DH_COMPRESSED_ALL) && pd->size != bs) ||
				 pd->offset < data_start || pd->offset > UINT64_MAX - pd->size)
				bad = 1;
			else if (pd->offset == prev_end ||
				 (pd->offset > prev_end && pd->offset - prev_end <= gap))
				bad = 0;   /* contiguous, or right after corrupt ones */
			else
				bad = 1;
			if (bad) {
				k->damage.bad_descriptors++;
				gap += bs;   /* a corrupt descriptor still owned <= bs bytes */
				if (add_bad(k, pfn, pfn))
					goto out;
				continue;
			}
			if (!zero) {
				prev_end = pd->offset + pd->size;
				gap = 0;
			}
			uint64_t end = pd->offset + pd->size;
			if (end > expected_end)
				expected_end = end;
			if (end > size) {
				k->damage.truncated = 1;
				k->damage.missing_pages++;
				if (add_bad(k, pfn, pfn))
					goto out;
			}
		}
	}
	if (k->flat_cut)
		k->damage.truncated = 1;
	if (k->damage.truncated) {
		/* descriptors past the end: their data is missing too */
		uint64_t table_end = desc_off + npages * sizeof(struct page_desc);
		if (expected_end < table_end)
			expected_end = table_end;
		k->damage.missing_bytes = expected_end > size ? expected_end - size : 0;
	}
	if (k->nbad)
		k->check_reads = 1;
	/* Pages are read by diskdump.c only from a file that is all there,
	 * laid out as libkdumpfile reads it (a 64-bit little-endian "KDUMP"
	 * header of version 1 or later; checked against libkdumpfile again by
	 * diskdump_direct_open), every descriptor whole, raw or zlib; dumps
	 * made with makedumpfile -l, -p or -z (lzo, snappy, zstd) keep
	 * libkdumpfile for every page.  A damaged dump keeps libkdumpfile and
	 * range_ok(). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (!k->lkf_pages && !k->nbad && !k->damage.truncated && !k->damage.incomplete &&
	    !k->flat_cut && !other_compression && !memcmp(hdr, "KDUMP   ", 8) && version >= 1)
		k->dd = pfs_dd_new(k->fd, k->size, bm2, bm_len, nbits, desc_off, (uint32_t)bs);
#endif
out:
	free(pds);
	free(bm1);
	free(bm2);
	return ret;
}



/* libkdumpfile 0.5.1 (diskdump.c open_common) reads a diskdump header in the
 * first of four layouts whose try_header() passes -- 32-bit little-endian,
 * 32-bit big-endian, 64-bit little-endian, 64-bit big-endian; a later step
 * failing as corrupt moves on to the next -- whatever the signature
 * ("DISKDUMP" too) and for one part of a split dump too.  In each it reads
 * (read_sub_hdr_32/64, read_notes, read_vmcoreinfo, read_bitmap) the
 * sub-header at block_size, the ELF notes (header_version >= 4: offset_note,
 * size_note) or the VMCOREINFO (3: offset_vmcoreinfo, size_vmcoreinfo) and
 * the page bitmap (bitmap_blocks * block_size bytes at
 * (1 + sub_hdr_size) * block_size; both int32_t there) through
 * fcache_get_chunk(), which allocates for the whole length before reading
 * (an entry per page, then a buffer of the length: a size_note near 2^40
 * asks for gigabytes) and copies from file windows mapped past the end
 * (SIGBUS).  The checks of check_diskdump() cover the 64-bit little-endian
 * layout of a "KDUMP" file that is not split; this one covers every layout
 * libkdumpfile may pick: each of those ranges must lie in the file. */
static int check_diskdump_extents(const struct pfs_kdump *k, const char *path,
				  struct pfs_error *err)
{
	static const struct {
		const char *name;
		int big, is64;
		unsigned block_size, sub_hdr_size, bitmap_blocks, max_mapnr;
		/* sub-header: its size, offset_vmcoreinfo, size_vmcoreinfo,
		 * offset_note, size_note (the sizes are 32-bit in the 32-bit one) */
		unsigned sub_len, vmci_off, vmci_size, note_off, note_size;
	} lay[] = {
		{ "32-bit little-endian", 0, 0, 416, 420, 424, 428, 80, 20, 28, 32, 40 },
		{ "32-bit big-endian", 1, 0, 416, 420, 424, 428, 80, 20, 28, 32, 40 },
		{ "64-bit little-endian", 0, 1, 428, 432, 436, 440, 104, 32, 40, 48, 56 },
		{ "64-bit big-endian", 1, 1, 428, 432, 436, 440, 104, 32, 40, 48, 56 },
	};
	unsigned char hdr[464], sub[104];
	uint64_t size = k->size;

	if (pread(k->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    (memcmp(hdr, "KDUMP   ", 8) && memcmp(hdr, "DISKDUMP", 8)))
		return 0;   /* not a diskdump header, or refused already */
	for (unsigned l = 0; l < sizeof(lay) / sizeof(lay[0]); l++) {
#define FIELD(buf, off, n) hdr_field((buf) + (off), (n), lay[l].big)
		int64_t block_size = (int32_t)FIELD(hdr, lay[l].block_size, 4);
		int64_t sub_hdr_size = (int32_t)FIELD(hdr, lay[l].sub_hdr_size, 4);
		uint64_t bitmap_blocks = FIELD(hdr, lay[l].bitmap_blocks, 4);
		uint64_t max_mapnr = FIELD(hdr, lay[l].max_mapnr, 4);
		int32_t version = (int32_t)FIELD(hdr, 8, 4);

		/* try_header(): a power-of-two page size in [4 KiB, 256 KiB]
		 * (MIN_PAGE_SIZE, MAX_PAGE_SIZE) and bitmaps covering max_mapnr */
		if (block_size < 4096 || block_size > (1 << 18) ||
		    (block_size & (block_size - 1)) ||
		    8 * bitmap_blocks * (uint64_t)block_size < max_mapnr || version < 0)
			continue;
		uint64_t bs = (uint64_t)block_size;
		if (version >= 1) {
			if (bs > size || size - bs < lay[l].sub_len) {
				set_err(err, path, "truncated kdump-compressed dump: the "
					"file ends inside the sub-header (%llu bytes; read as a %s "
					"header)", (unsigned long long)size, lay[l].name);
				return -1;
			}
			if (pfs_pread_all(k->fd, sub, lay[l].sub_len, bs))
				return 0;
			unsigned szlen = lay[l].is64 ? 8 : 4;
			const char *what = NULL;
			uint64_t off = 0, len = 0;
			if (version >= 4) {
				what = "size_note";
				off = FIELD(sub, lay[l].note_off, 8);
				len = FIELD(sub, lay[l].note_size, szlen);
			} else if (version >= 3) {
				what = "size_vmcoreinfo";
				off = FIELD(sub, lay[l].vmci_off, 8);
				len = FIELD(sub, lay[l].vmci_size, szlen);
			}
			if (what && len && (off > size || len > size - off)) {
				set_err(err, path, "corrupt kdump-compressed dump: sub-header "
					"field %s (%llu bytes at %llu) ends beyond the %llu-byte "
					"file (read as a %s header)", what, (unsigned long long)len,
					(unsigned long long)off, (unsigned long long)size,
					lay[l].name);
				return -1;
			}
			if (what && vmcoreinfo_in_file_ok(k, off, len, version >= 4, lay[l].big,
							  path, err))
				return -1;
		}
		/* the bitmap: int32_t sub_hdr_size and bitmap_blocks in
		 * read_bitmap(); negative ones wrap to huge sizes */
		uint64_t bm_off = 0, bm_len = bitmap_blocks * bs;
		int bad = sub_hdr_size < -1 || bitmap_blocks > INT32_MAX;
		if (!bad) {
			bm_off = (uint64_t)(1 + sub_hdr_size) * bs;
			bad = bm_off > size || bm_len > size - bm_off;
		}
		if (bad) {
			set_err(err, path, "corrupt kdump-compressed dump: header fields "
				"sub_hdr_size %lld and bitmap_blocks %llu put the page bitmap "
				"beyond the %llu-byte file (read as a %s header)",
				(long long)sub_hdr_size, (unsigned long long)bitmap_blocks,
				(unsigned long long)size, lay[l].name);
			return -1;
		}
#undef FIELD
	}
	return 0;
}

/* One warning line for a damaged dump, NULL when whole. */
static void make_warning(struct pfs_kdump *k)
{
	const struct pfs_kdump_damage *d = &k->damage;
	char buf[512];
	size_t n = 0;

#define ADD(...) do { if (n < sizeof(buf)) n += (size_t)snprintf(buf + n, sizeof(buf) - n, __VA_ARGS__); } while (0)
	if (d->truncated && k->flat_cut)
		ADD("truncated: the flattened stream ends before its end mark (%llu dumped "
		    "pages unreadable, at least %llu bytes missing)",
		    (unsigned long long)d->missing_pages, (unsigned long long)d->missing_bytes);
	else if (d->truncated)
		ADD("%struncated: %llu bytes missing at the end (%llu dumped pages unreadable)",
		    n ? "; " : "", (unsigned long long)d->missing_bytes,
		    (unsigned long long)d->missing_pages);
	if (d->incomplete)
		ADD("%smarked incomplete by makedumpfile (the capture ran out of space)", n ? "; " : "");
	if (d->bad_descriptors)
		ADD("%s%llu corrupt page descriptors (those pages unreadable)", n ? "; " : "",
		    (unsigned long long)d->bad_descriptors);
	if (d->bitmap_mismatch)
		ADD("%scorrupt page bitmap (%llu pages marked, %llu descriptors): pages from "
		    "pfn %#llx on cannot be located (%llu dumped pages unreadable)", n ? "; " : "",
		    (unsigned long long)d->dumpable, (unsigned long long)d->descriptors,
		    (unsigned long long)d->lost_from_pfn, (unsigned long long)d->lost_pages);
	else if (d->bad_bitmap_blocks)
		ADD("%s%llu corrupt page bitmap blocks (%llu dumped pages there unreadable)",
		    n ? "; " : "", (unsigned long long)d->bad_bitmap_blocks,
		    (unsigned long long)d->lost_pages);
#undef ADD
	if (n)
		k->warning = strdup(buf);
}

/* libkdumpfile 0.5.1: when a diskdump open fails after the header probe
 * matched (open_common's err_cleanup), diskdump_cleanup() frees the format
 * data and sets it NULL, and kdump_free() then runs diskdump_attr_cleanup(),
 * which dereferences it: a NULL pointer crash (found by fuzzing: a 28-byte
 * file "KDUMP   " + header_version 6).  Such a context is never freed;
 * it stays reachable here (one per failed open; the CLI opens one dump). */
static kdump_ctx_t **graveyard;
static size_t ngraveyard, capgraveyard;
static pthread_mutex_t graveyard_lock = PTHREAD_MUTEX_INITIALIZER;

static int diskdump_signature(int fd)
{
	char sig[16];
	if (pread(fd, sig, sizeof(sig), 0) != (ssize_t)sizeof(sig))
		return 0;
	return !memcmp(sig, "KDUMP   ", 8) || !memcmp(sig, "DISKDUMP", 8) ||
	       !memcmp(sig, "makedumpfile\0", 13);
}

static void bury_ctx(kdump_ctx_t *ctx)
{
	pthread_mutex_lock(&graveyard_lock);
	if (ngraveyard == capgraveyard) {
		size_t cap = capgraveyard ? 2 * capgraveyard : 16;
		kdump_ctx_t **g = realloc(graveyard, cap * sizeof(*g));
		if (g) {
			graveyard = g;
			capgraveyard = cap;
		}
	}
	if (ngraveyard < capgraveyard)
		graveyard[ngraveyard++] = ctx;
	pthread_mutex_unlock(&graveyard_lock);
}

static void abandon_ctx(struct pfs_kdump *k)
{
	bury_ctx(k->ctx);
	k->ctx = NULL;
}

static char *dup_attr(kdump_ctx_t *ctx, const char *key)
{
	const char *s = NULL;

	if (kdump_get_string_attr(ctx, key, &s) != KDUMP_OK || !s)
		return NULL;
	return strdup(s);
}

static int cmp_load(const void *a, const void *b)
{
	const struct pfs_elf_load *x = a, *y = b;
	return x->paddr < y->paddr ? -1 : x->paddr > y->paddr;
}

/* the entry of a sorted, disjoint map holding paddr, or NULL */
static const struct pfs_elf_load *elf_map_find(const struct pfs_elf_load *m, size_t n, uint64_t paddr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {   /* first entry starting above paddr */
		size_t mid = lo + (hi - lo) / 2;
		if (m[mid].paddr <= paddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || paddr - m[lo - 1].paddr >= m[lo - 1].filesz)
		return NULL;
	return &m[lo - 1];
}

/*
 * The physical-to-file map of a whole ELF dump, or NULL when the file is not
 * one the direct reads may serve exactly as libkdumpfile would: a segment
 * with p_memsz != p_filesz (libkdumpfile fills the rest), or two segments
 * holding the same physical byte at different file offsets (which one
 * libkdumpfile reads is its choice).  QEMU's paging=true dumps have a
 * PT_LOAD per guest virtual mapping (66,000 on a 2 GiB guest) over the
 * same bytes as the RAM segments: a segment inside a large one at the same
 * offset adds nothing and is dropped before the sort.
 */
static struct pfs_elf_load *elf_direct_map(struct pfs_kdump *k, size_t *nout)
{
	const uint64_t large = 1u << 20;
	struct pfs_elf_load *big = NULL, *out = NULL;
	size_t nbig = 0, n = 0;

	if (!k->all || !k->all_ok || !k->nall)
		return NULL;
	big = malloc(k->nall * sizeof(*big));
	out = malloc(k->nall * sizeof(*out));
	if (!big || !out)
		goto fail;
	for (size_t i = 0; i < k->nall; i++)
		if (k->all[i].filesz >= large)
			big[nbig++] = k->all[i];
	qsort(big, nbig, sizeof(*big), cmp_load);
	for (size_t i = 0; i < k->nall; i++) {
		const struct pfs_elf_load *l = &k->all[i];
		const struct pfs_elf_load *b = elf_map_find(big, nbig, l->paddr);
		if (l->filesz >= large || !b || l->paddr - b->paddr > b->filesz - l->filesz ||
		    l->offset - b->offset != l->paddr - b->paddr)
			out[n++] = *l;   /* not inside a large segment at the same offset */
	}
	qsort(out, n, sizeof(*out), cmp_load);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		struct pfs_elf_load *last = m ? &out[m - 1] : NULL;
		if (last && out[i].paddr <= last->paddr + last->filesz) {
			/* overlapping or adjacent: one range if the bytes agree */
			uint64_t end = out[i].paddr + out[i].filesz;
			int same = out[i].offset - last->offset == out[i].paddr - last->paddr;
			if (out[i].paddr < last->paddr + last->filesz && !same)
				goto fail;
			if (same) {
				if (end > last->paddr + last->filesz)
					last->filesz = end - last->paddr;
				continue;
			}
		}
		out[m++] = out[i];
	}
	for (size_t i = 0; i < m; i++)
		if (out[i].offset > k->size || out[i].filesz > k->size - out[i].offset)
			goto fail;
	free(big);
	*nout = m;
	return out;
fail:
	free(big);
	free(out);
	return NULL;
}

static int elf_direct_read(struct pfs_elf_direct *d, uint64_t paddr, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		const struct pfs_elf_load *l = elf_map_find(d->map, d->nmap, paddr);
		if (!l)
			return -PFS_EREAD;
		uint64_t off = paddr - l->paddr, at = l->offset + off;
		size_t n = l->filesz - off < len ? (size_t)(l->filesz - off) : len;
		if (pfs_fmap_read(&d->file, p, at, n))
			return -PFS_EREAD;
		p += n;
		paddr += n;
		len -= n;
	}
	return 0;
}

/* The len bytes at paddr in the mapping, when one segment's file bytes
 * hold them all (elf_direct_read's bytes, not copied). */
static const void *elf_direct_map_phys(struct pfs_elf_direct *d, uint64_t paddr, size_t len)
{
	const struct pfs_elf_load *l = elf_map_find(d->map, d->nmap, paddr);

	if (!l || !len || l->filesz - (paddr - l->paddr) < len)
		return NULL;
	return pfs_fmap_view(&d->file, l->offset + (paddr - l->paddr), len);
}

static void elf_direct_close(struct pfs_elf_direct *d)
{
	if (!d)
		return;
	pfs_fmap_fini(&d->file);
	free(d->map);
	free(d);
}

/* The direct reads of a whole ELF dump (its map, the file mapped), or NULL
 * when elf_direct_map() finds the file is not one they serve. */
static struct pfs_elf_direct *elf_direct_new(struct pfs_kdump *k)
{
	struct pfs_elf_direct *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->map = elf_direct_map(k, &d->nmap);
	if (!d->map || !d->nmap || pfs_fmap_init(&d->file, k->fd, k->size))
		goto fail;
	return d;
fail:
	elf_direct_close(d);
	return NULL;
}

/*
 * Set up the direct reads of a whole ELF dump that libkdumpfile has opened
 * (a file elf_open_plain() left to it); they are checked against
 * libkdumpfile's on a few pages first, and not used if any differs.  A
 * file opened without libkdumpfile has no such check at open: the two
 * opens are compared instead by tests/python/test_elf_reader.py (the lab's
 * dumps, made-up cores) and the kdump fuzz target.
 */
static void elf_direct_open(struct pfs_kdump *k)
{
	struct pfs_elf_direct *d = elf_direct_new(k);
	unsigned char *a = malloc(2 * PFS_PAGE_BYTES), *b;

	if (!d || !a)
		goto fail;
	b = a + PFS_PAGE_BYTES;
	for (size_t i = 0; i < d->nmap; i += d->nmap / 4 + 1) {
		uint64_t pa = (d->map[i].paddr + PFS_PAGE_BYTES - 1) & ~(uint64_t)(PFS_PAGE_BYTES - 1);
		size_t got = PFS_PAGE_BYTES;
		if (pa - d->map[i].paddr + PFS_PAGE_BYTES > d->map[i].filesz)
			continue;
		if (kdump_read(k->ctx, KDUMP_MACHPHYSADDR, pa, a, &got) != KDUMP_OK ||
		    got != PFS_PAGE_BYTES || elf_direct_read(d, pa, b, PFS_PAGE_BYTES) ||
		    memcmp(a, b, PFS_PAGE_BYTES)) {
			kdump_clear_err(k->ctx);
			goto fail;
		}
	}
	pfs_fmap_trim(&d->file);
	free(a);
	k->direct = d;
	return;
fail:
	elf_direct_close(d);
	free(a);
}

/*
 * A whole ELF dump opened without a libkdumpfile context: 0 when it is
 * one, else -1 and the file is opened through libkdumpfile as before.
 * libkdumpfile 0.5.1's ELF open parses every program header (elfdump.c
 * init_elf64, open_common: the 66,000 of a 1 GiB QEMU paging=true dump
 * take the open from 0.027 to 0.089 s of CPU), and for such a file
 * pfnscope only takes arch.name, file.format and the VMCOREINFO from it:
 * elfcore.c reads them from the file where libkdumpfile is known to open
 * it as a plain Linux core.  Also required, as libkdumpfile reads the
 * loads: every PT_LOAD whole in the file (p_filesz == p_memsz: it reads
 * zeros past p_filesz), a physical address on one of them (open_common
 * drops every p_paddr when all are 0), and the direct map built.
 */
static int elf_open_plain(struct pfs_kdump *k)
{
	struct pfs_elf_direct *d = NULL;
	const char *arch;
	char *vmcoreinfo = NULL;

	if (!k->notes_ok || !k->all_ok || !k->loads_exact ||
	    (k->nload_hdrs > 1 && !k->load_paddr))
		return -1;
	if (pfs_elfcore_identify(k->fd, k->size, k->notes, k->nnotes, &arch, &vmcoreinfo))
		return -1;
	d = elf_direct_new(k);
	k->format = strdup("elf");
	k->arch = strdup(arch);
	if (!d || !k->format || !k->arch) {
		elf_direct_close(d);
		free(vmcoreinfo);
		free(k->format);
		free(k->arch);
		k->format = k->arch = NULL;
		return -1;
	}
	k->vmcoreinfo = vmcoreinfo;
	k->direct = d;
	return 0;
}

static int ctx_read(kdump_ctx_t *ctx, uint64_t paddr, void *buf, size_t len);

/*
 * Pages of a whole kdump-compressed file through diskdump.c (k->dd, built
 * by check_diskdump): kept only when libkdumpfile reads the file the same
 * way -- format "diskdump", the same page size and max_pfn -- and the
 * first, middle and last dumpable pages read the same both ways.
 * Otherwise every page goes through libkdumpfile.
 */
static void diskdump_direct_open(struct pfs_kdump *k)
{
	struct pfs_dd *dd = k->dd;
	struct pfs_dd_cursor *cur = NULL;
	unsigned char *a = NULL;
	kdump_num_t ps = 0, max_pfn = 0;

	k->dd = NULL;
	if (strcmp(k->format, "diskdump") ||
	    kdump_get_number_attr(k->ctx, KDUMP_ATTR_PAGE_SIZE, &ps) != KDUMP_OK ||
	    kdump_get_number_attr(k->ctx, "max_pfn", &max_pfn) != KDUMP_OK) {
		kdump_clear_err(k->ctx);
		goto fail;
	}
	uint64_t n = pfs_dd_pages(dd);
	if (ps != pfs_dd_page_size(dd) || ps != 1ull << k->page_shift ||
	    max_pfn != pfs_dd_max_pfn(dd) || !n)
		goto fail;
	cur = pfs_dd_cursor_new(dd);
	a = malloc(ps);
	if (!cur || !a)
		goto fail;
	const uint64_t sample[] = { 0, n / 2, n - 1 };
	for (unsigned i = 0; i < sizeof(sample) / sizeof(sample[0]); i++) {
		uint64_t pfn = pfs_dd_nth_pfn(dd, sample[i]);
		const unsigned char *b;
		if (pfs_dd_read_page(cur, pfn, &b) != PFS_DD_OK ||
		    ctx_read(k->ctx, pfn << k->page_shift, a, ps) || memcmp(a, b, ps))
			goto fail;
	}
	free(a);
	k->dd = dd;
	k->cur = cur;
	return;
fail:
	free(a);
	pfs_dd_cursor_free(cur);
	pfs_dd_free(dd);
}

int pfs_kdump_open(const char *path, unsigned flags, struct pfs_kdump **out,
		   struct pfs_error *err)
{
	struct pfs_kdump *k = calloc(1, sizeof(*k));
	const char *open_path = path;
	struct stat st;
	kdump_status ks;

	*out = NULL;
	if (!k)
		return set_err(err, path, "out of memory");
	k->fd = -1;
	k->lkf_pages = !!(flags & PFS_KDUMP_LIBKDUMPFILE_PAGES);
	pthread_mutex_init(&k->lock, NULL);

	if (pfs_is_flattened(path)) {
		if (!(flags & PFS_KDUMP_CONVERT_FLAT)) {
			set_err(err, path, "makedumpfile flattened format (QEMU kdump-zlib), "
				"which libkdumpfile cannot read: rebuild it with "
				"`makedumpfile -R OUT < FILE`");
			goto fail;
		}
		k->tmp_path = rebuild_flattened(path, &k->flat_cut, err);
		if (!k->tmp_path)
			goto fail;
		open_path = k->tmp_path;
	}

	k->fd = open(open_path, O_RDONLY | O_CLOEXEC);
	if (k->fd < 0) {
		set_err(err, path, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (k->tmp_path)   /* the open fd keeps it; nothing left behind on a crash */
		unlink(k->tmp_path);
	if (fstat(k->fd, &st) < 0) {
		set_err(err, path, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, path, "not a regular file");
		goto fail;
	}
	if (st.st_size == 0) {
		set_err(err, path, "empty file, not a dump");
		goto fail;
	}
	k->size = (uint64_t)st.st_size;
	k->page_shift = 12;
	if (check_elf(k, path, err) < 0 || check_elf_sections(k, path, err) < 0 ||
	    check_elf_vmcoreinfo(k, path, err) < 0 ||
	    check_diskdump(k, path, err) < 0 ||
	    check_diskdump_extents(k, path, err) < 0)
		goto fail;
	finish_bad(k);
	make_warning(k);

	/* a whole ELF dump needs no libkdumpfile context (elf_open_plain):
	 * k->ctx stays NULL, and every read is elf_direct_read() */
	if (!k->lkf_pages && !k->nbad && !k->damage.truncated && elf_open_plain(k) == 0) {
		*out = k;
		return 0;
	}

	k->ctx = kdump_new();
	if (!k->ctx) {
		set_err(err, path, "cannot allocate a libkdumpfile context");
		goto fail;
	}
	/* Opening reads the file through read(2): libkdumpfile and libaddrxlat
	 * read the dump while they set up (the OS type's page-table probes), and
	 * a mapping of a segment that a short or corrupt file does not hold
	 * raises SIGBUS where read(2) fails cleanly. */
	if (kdump_set_number_attr(k->ctx, KDUMP_ATTR_FILE_MMAP_POLICY, KDUMP_MMAP_NEVER) != KDUMP_OK)
		kdump_clear_err(k->ctx);
	ks = kdump_open_fd(k->ctx, k->fd);
	if (ks != KDUMP_OK) {
		const char *why = kdump_get_err(k->ctx);
		if (ks == KDUMP_ERR_NOTIMPL || (why && strstr(why, "Unknown file format")))
			set_err(err, path, "not a dump file libkdumpfile knows (%s)",
				why ? why : "unknown format");
		else
			set_err(err, path, "cannot open dump (libkdumpfile: %s)",
				why ? why : "error");
		if (diskdump_signature(k->fd))
			abandon_ctx(k);
		goto fail;
	}
	k->arch = dup_attr(k->ctx, KDUMP_ATTR_ARCH_NAME);
	if (!k->arch) {
		/* QEMU's dumps carry no arch name: x86-64 is the only one we lab */
		ks = kdump_set_string_attr(k->ctx, KDUMP_ATTR_ARCH_NAME, KDUMP_ARCH_X86_64);
		if (ks != KDUMP_OK) {
			set_err(err, path, "cannot set arch.name (libkdumpfile: %s)",
				kdump_get_err(k->ctx));
			goto fail;
		}
		k->arch = dup_attr(k->ctx, KDUMP_ATTR_ARCH_NAME);
	}
	{
		const char *os = NULL;
		if (kdump_get_string_attr(k->ctx, KDUMP_ATTR_OSTYPE, &os) != KDUMP_OK || !os) {
			/* best effort: physical reads do not need it */
			if (kdump_set_string_attr(k->ctx, KDUMP_ATTR_OSTYPE, "linux") != KDUMP_OK)
				kdump_clear_err(k->ctx);
		}
	}
	if (kdump_vmcoreinfo_raw(k->ctx, &k->vmcoreinfo) != KDUMP_OK) {
		k->vmcoreinfo = NULL;
		kdump_clear_err(k->ctx);
	}
	k->format = dup_attr(k->ctx, KDUMP_ATTR_FILE_FORMAT);
	if (!k->format)
		k->format = strdup("unknown");
	/* Every dump is read through read(2), not mmap(2): libkdumpfile keeps
	 * the file's mapped chunks in its cache and they count in the
	 * process's memory (95 MB after a check of an 8 GiB guest's kdump, 29
	 * MB with reads, for the same CPU: inflate dominates).  A whole ELF
	 * dump is read by elf_direct_read() instead, a whole kdump-compressed
	 * one by diskdump.c (a damaged one keeps libkdumpfile's reads, past
	 * range_ok()). */
	if (strcmp(k->format, "elf") == 0 && !k->nbad && !k->damage.truncated && !k->lkf_pages)
		elf_direct_open(k);
	else if (k->dd)
		diskdump_direct_open(k);
	/* libkdumpfile's page cache (cache.size, 1024 pages by default) finds
	 * an entry by walking its lists: a miss costs a walk of all of them.
	 * A walk reads each page-table page once into the core's own block
	 * cache and each memmap page once, so almost every lookup misses:
	 * 64 pages cut a --summary walk of a 1 GiB VMA on a compressed kdump
	 * from 51 to 37 ms of CPU, a whole-system check of an 8 GiB guest
	 * from 0.88 to 0.61 s, for 31 more pages inflated of ~4,700 (the
	 * walk needs 4,616).  Every context has its own cache (see
	 * pfs_kdump_clone). */
	if (kdump_set_number_attr(k->ctx, "cache.size", PFS_KDUMP_CACHE_PAGES) != KDUMP_OK)
		kdump_clear_err(k->ctx);
	*out = k;
	return 0;
fail:
	pfs_kdump_close(k);
	return -PFS_EDUMP;
}

/*
 * libkdumpfile before 0.5.2 frees a diskdump context's attributes and then
 * runs diskdump_attr_cleanup() (lkcd's and sadump's alike), which unlinks
 * the format's page-size override from the page_size attribute it has just freed: a write into
 * freed memory that later corrupts the heap (seen as a SIGSEGV in a
 * following free).  Fixed by libkdumpfile commit 97c716a424a8 ("Run
 * attribute cleanup hooks before deallocating attributes") (in v0.5.2).
 * With an older library such a context gives its page cache back
 * (cache.size 0 reallocates it empty) and is not freed.
 */
static void release_ctx(kdump_ctx_t *ctx)
{
	if (!ctx)
		return;
#if KDUMPFILE_VERSION < KDUMPFILE_MKVER(0, 5, 2)
	const char *format = NULL;
	if (kdump_get_string_attr(ctx, KDUMP_ATTR_FILE_FORMAT, &format) != KDUMP_OK)
		kdump_clear_err(ctx);
	else if (format && (!strcmp(format, "diskdump") || !strcmp(format, "lkcd") ||
			    !strcmp(format, "sadump"))) {
		if (kdump_set_number_attr(ctx, "cache.size", 0) != KDUMP_OK)
			kdump_clear_err(ctx);
		return;
	}
#endif
	kdump_free(ctx);
}

void pfs_kdump_close(struct pfs_kdump *k)
{
	if (!k)
		return;
	elf_direct_close(k->direct);
	pfs_dd_cursor_free(k->cur);
	pfs_dd_free(k->dd);
	release_ctx(k->ctx);
	if (k->fd >= 0)
		close(k->fd);
	if (k->tmp_path) {
		unlink(k->tmp_path);
		free(k->tmp_path);
	}
	free(k->vmcoreinfo);
	free(k->warning);
	free(k->bad);
	free(k->loads);
	free(k->all);
	free(k->notes);
	free(k->format);
	free(k->arch);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* 0 if [paddr, paddr + len) may be read: not in pages a damaged dump lost */
static int range_ok(const struct pfs_kdump *k, uint64_t paddr, size_t len)
{
	if (k->check_reads && len) {
		if (paddr > UINT64_MAX - (len - 1))
			return -PFS_EREAD;
		if (k->nbad && pfn_is_bad(k, paddr >> k->page_shift, (paddr + len - 1) >> k->page_shift))
			return -PFS_EREAD;
		if (k->nloads && !elf_range_ok(k, paddr, len))
			return -PFS_EREAD;
	}
	return 0;
}

/*
 * One read through a context no other thread reads through.
 *
 * libkdumpfile 0.5.1 to 0.5.4 give a page buffer of NULL to a page read
 * after a failed one: the failed read's cache entry goes back to the
 * unused partition with its buffer (cache_discard, src/kdumpfile/cache.c:
 * 604-628 in v0.5.1), and a later read of a page whose entry is a ghost
 * probe entry (evicted from the probe list) decrements ngprobe
 * (get_ghost_or_missed_entry, cache.c:421) before reinit_entry() counts
 * ngprobe entries back from gprobe to find that unused entry (cache.c:
 * 270-276): one short, it lands on a ghost entry, whose data is NULL, and
 * hands that NULL on as the page's buffer.  The page then "fails to
 * inflate" (zlib's Z_STREAM_ERROR: "Decompresion failed: error -2"), or an
 * uncompressed page is read or an excluded zero page cleared into NULL (a
 * SIGSEGV).  Fixed by libkdumpfile commit e63dab40c8ce ("cache: Get data
 * buffer before adjusting ghost partition size"), in no release yet.
 * Failed reads are excluded pages (a pointer into memory makedumpfile
 * left out) and damaged data, a few per run, and which pages become ghosts
 * depends on each context's order of reads: on two threads, a check of a
 * lab kdump with 64-page caches reported a maple node unreadable in 18
 * runs of 30 (the order of one thread happens to miss it; a larger cache
 * only makes ghosts rarer).
 * After a failed read the cache is therefore made anew (a new cache.size,
 * then ours again: setting the value it has runs no hook, attr.c set_attr),
 * so an unused entry never sits beside ghost entries: ghosts only appear
 * once a cache is full.
 */
static int ctx_read(kdump_ctx_t *ctx, uint64_t paddr, void *buf, size_t len)
{
	size_t got = len;
	kdump_status ks = kdump_read(ctx, KDUMP_MACHPHYSADDR, paddr, buf, &got);

	if (ks != KDUMP_OK) {
		kdump_clear_err(ctx);
		if (kdump_set_number_attr(ctx, "cache.size", PFS_KDUMP_CACHE_PAGES + 1) != KDUMP_OK ||
		    kdump_set_number_attr(ctx, "cache.size", PFS_KDUMP_CACHE_PAGES) != KDUMP_OK)
			kdump_clear_err(ctx);
	}
	return ks == KDUMP_OK && got == len ? 0 : -PFS_EREAD;
}

static kdump_ctx_t *view_ctx_open(const struct pfs_kdump *k);

/*
 * [paddr, paddr + len) a page at a time through a diskdump.c cursor.  A
 * page it leaves to libkdumpfile (PFS_DD_OTHER: a compression other than
 * zlib, which check_diskdump saw on no descriptor at open, or a file
 * changed since) is read through *ctx, a view's opened then.  An excluded
 * or corrupt page fails the read as libkdumpfile's KDUMP_ERR_NODATA and
 * KDUMP_ERR_CORRUPT do in ctx_read().
 */
static int dd_read(const struct pfs_kdump *k, struct pfs_dd_cursor *cur, kdump_ctx_t **ctx,
		   uint64_t paddr, void *buf, size_t len)
{
	const uint64_t mask = (1ull << k->page_shift) - 1;
	unsigned char *p = buf;

	if (len && paddr > UINT64_MAX - (len - 1))
		return -PFS_EREAD;
	while (len) {
		uint64_t off = paddr & mask;
		size_t n = mask + 1 - off < len ? (size_t)(mask + 1 - off) : len;
		const unsigned char *page;
		switch (pfs_dd_read_page(cur, paddr >> k->page_shift, &page)) {
		case PFS_DD_OK:
			memcpy(p, page + off, n);
			break;
		case PFS_DD_OTHER:
			if (!*ctx)
				*ctx = view_ctx_open(k);
			if (!*ctx || ctx_read(*ctx, paddr, p, n))
				return -PFS_EREAD;
			break;
		default:
			return -PFS_EREAD;
		}
		p += n;
		paddr += n;
		len -= n;
	}
	return 0;
}

int pfs_kdump_read_phys(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	struct pfs_kdump *k = ctx;
	int r;

	if (k->direct)
		return elf_direct_read(k->direct, paddr, buf, len);
	if (k->cur) {
		pthread_mutex_lock(&k->lock);
		r = dd_read(k, k->cur, &k->ctx, paddr, buf, len);
		pthread_mutex_unlock(&k->lock);
		return r;
	}
	/* k->direct is set whenever k->ctx is NULL (elf_open_plain) */
	if (!k->ctx || range_ok(k, paddr, len))
		return -PFS_EREAD;
	pthread_mutex_lock(&k->lock);
	r = ctx_read(k->ctx, paddr, buf, len);
	pthread_mutex_unlock(&k->lock);
	return r;
}

const void *pfs_kdump_map_phys(void *ctx, uint64_t paddr, size_t len)
{
	struct pfs_kdump *k = ctx;

	return k->direct ? elf_direct_map_phys(k->direct, paddr, len) : NULL;
}

/*
 * A second context on the same dump for another thread: a context of its
 * own, opened on the same file descriptor (pread(2) only: the mmap policy
 * is "never"), not a kdump_clone().  Clones share one page cache
 * (struct kdump_shared: cache, cache_lock), and libkdumpfile (0.5.1 to
 * 0.5.4 and its master branch alike) drops a reader's reference to a
 * cache entry without that lock: kdump_read() -> read_locked() ->
 * put_page() -> cache_put_page() -> fcache_put() -> cache_put_entry(),
 * `--entry->refcnt` (src/kdumpfile/cache.c:587 in v0.5.1), while another
 * clone's cache_get_page() (read.c:54-58) counts `++entry->refcnt`
 * (cache.c:533) and looks for an entry with refcnt 0 to evict (cache.c:470,
 * 488) under it.  A lost update leaves an entry pinned for good (the cache
 * fills up: "Cache is fully utilized") or unpinned while a thread still
 * fills or copies it, its buffer then given to another page.  A cache of
 * its own is also what lets ctx_read() make it anew after a failed read.
 * Nothing is shared between the threads but the descriptor, so reads need
 * no lock.  The cost is one open per worker thread (the headers and
 * bitmaps read again).
 */
struct pfs_kdump_view {
	const struct pfs_kdump *k;
	kdump_ctx_t *ctx;
	struct pfs_dd_cursor *cur;  /* k->dd's, when k has one */
};

/* a libkdumpfile context of a view's own on k's file, NULL on failure */
static kdump_ctx_t *view_ctx_open(const struct pfs_kdump *k)
{
	kdump_ctx_t *ctx = kdump_new();

	if (!ctx)
		return NULL;
	/* as pfs_kdump_open: read(2), not mmap(2), its arch.name when the
	 * file names none, the small cache */
	if (kdump_set_number_attr(ctx, KDUMP_ATTR_FILE_MMAP_POLICY, KDUMP_MMAP_NEVER) != KDUMP_OK)
		kdump_clear_err(ctx);
	if (kdump_open_fd(ctx, k->fd) != KDUMP_OK) {
		/* the same file opened once already: a failure is no memory */
		bury_ctx(ctx);
		return NULL;
	}
	const char *arch = NULL;
	if ((kdump_get_string_attr(ctx, KDUMP_ATTR_ARCH_NAME, &arch) != KDUMP_OK || !arch) &&
	    k->arch && kdump_set_string_attr(ctx, KDUMP_ATTR_ARCH_NAME, k->arch) != KDUMP_OK) {
		release_ctx(ctx);
		return NULL;
	}
	if (kdump_set_number_attr(ctx, "cache.size", PFS_KDUMP_CACHE_PAGES) != KDUMP_OK)
		kdump_clear_err(ctx);
	kdump_clear_err(ctx);
	return ctx;
}

int pfs_kdump_clone(struct pfs_kdump *k, struct pfs_kdump_view **out)
{
	struct pfs_kdump_view *v = calloc(1, sizeof(*v));

	*out = NULL;
	if (!v)
		return -PFS_ENOMEM;
	v->k = k;
	/* a whole ELF file read from its mapping (elf_direct_read) needs no
	 * libkdumpfile context: opening one parses every program header again
	 * and keeps them (about 18 MiB for an 8 GiB guest's paging dump).  A
	 * whole kdump-compressed file read by diskdump.c needs a cursor of its
	 * own over the shared index; a context only for a page it leaves to
	 * libkdumpfile (dd_read, which opens it then). */
	if (k->direct) {
		*out = v;
		return 0;
	}
	if (k->dd) {
		v->cur = pfs_dd_cursor_new(k->dd);
		if (!v->cur) {
			free(v);
			return -PFS_ENOMEM;
		}
		*out = v;
		return 0;
	}
	v->ctx = view_ctx_open(k);
	if (!v->ctx) {
		free(v);
		return -PFS_ENOMEM;
	}
	*out = v;
	return 0;
}

void pfs_kdump_view_close(struct pfs_kdump_view *v)
{
	if (!v)
		return;
	pfs_dd_cursor_free(v->cur);
	release_ctx(v->ctx);
	free(v);
}

int pfs_kdump_view_read_phys(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	struct pfs_kdump_view *v = ctx;

	if (v->k->direct)
		return elf_direct_read(v->k->direct, paddr, buf, len);
	if (v->cur)
		return dd_read(v->k, v->cur, &v->ctx, paddr, buf, len);
	if (range_ok(v->k, paddr, len))
		return -PFS_EREAD;
	return ctx_read(v->ctx, paddr, buf, len);
}

const void *pfs_kdump_view_map_phys(void *ctx, uint64_t paddr, size_t len)
{
	struct pfs_kdump_view *v = ctx;

	return v->k->direct ? elf_direct_map_phys(v->k->direct, paddr, len) : NULL;
}

const char *pfs_kdump_vmcoreinfo(const struct pfs_kdump *k) { return k->vmcoreinfo; }
const char *pfs_kdump_format(const struct pfs_kdump *k) { return k->format; }
const char *pfs_kdump_arch(const struct pfs_kdump *k) { return k->arch; }
int pfs_kdump_rebuilt(const struct pfs_kdump *k) { return k->tmp_path != NULL; }
const struct pfs_kdump_damage *pfs_kdump_damage(const struct pfs_kdump *k) { return &k->damage; }
const char *pfs_kdump_warning(const struct pfs_kdump *k) { return k->warning; }
int pfs_kdump_has_context(const struct pfs_kdump *k) { return k->ctx != NULL; }
const char *pfs_kdump_pages_reader(const struct pfs_kdump *k)
{
	return k->direct ? "elf" : k->cur ? "diskdump" : "libkdumpfile";
}
