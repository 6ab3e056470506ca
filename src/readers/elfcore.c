// SPDX-License-Identifier: MIT
/*
 * An ELF core's arch.name, file.format and raw VMCOREINFO as libkdumpfile
 * 0.5.1 gives them after kdump_open_fd(), read without it (see elfcore.h).
 *
 * libkdumpfile's ELF open (elfdump.c elf_probe: do_probe, init_elf64,
 * open_common) takes arch.name from e_machine (mach2arch), file.format is
 * its ops name "elf", and linux.vmcoreinfo.raw is the descriptor of the
 * last note named VMCOREINFO (notes.c do_noarch_note, set_vmcoreinfo: each
 * replaces the one before), which kdump_vmcoreinfo_raw() (vmcoreinfo.c
 * get_raw_locked) returns with a NUL appended.
 *
 * The open fails, or reads otherwise, on what is refused here (the file is
 * then left to libkdumpfile): another class, byte order, e_type or
 * e_version (do_probe); a section name table beyond the file (init_strtab);
 * Xen sections or notes (open_common, do_noarch_note, do_arch_note: another
 * ops, OS type and page size); a CORE NT_PRSTATUS shorter than the
 * machine's struct elf_prstatus ("Wrong PRSTATUS size"); a VMCOREINFO whose
 * lines vmcoreinfo.c may fail to store (vmcoreinfo_raw_post_hook,
 * lines_post_hook: a key of the tree twice as a value and a directory, an
 * invalid PAGESIZE).  Only VMCOREINFO shaped as the kernel writes it
 * (crash_core.c VMCOREINFO_* macros: KEY=value, TYPE(name)=value) is taken.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include <libkdumpfile/kdumpfile.h>

#include "elfcore.h"
#include "diskdump.h"   /* pfs_pread_all */

#define LEAVE 1
/* more than a core has: section headers, note segments, one VMCOREINFO
 * (the kernel's is a page: VMCOREINFO_BYTES), its TYPE(name) lines */
#define MAX_SECTION_BYTES (1u << 20)
#define MAX_NOTE_BYTES (64u << 20)
#define MAX_VMCOREINFO_BYTES (64u << 10)
#define MAX_TYPED_LINES 2048

/* The machines pfnscope knows: libkdumpfile's name (mach2arch) and its
 * sizeof(struct elf_prstatus) (x86_64.c, aarch64.c: 112 bytes before
 * pr_reg, ELF_NGREG 27 and 34 registers).  aarch64 has no default page
 * size (util.c default_page_shift): VMCOREINFO's PAGESIZE sets it. */
static const struct machine {
	uint16_t em;
	const char *arch;
	size_t prstatus;
	int default_page_size;
} machines[] = {
	{ EM_X86_64, KDUMP_ARCH_X86_64, 112 + 27 * 8, 1 },
	{ EM_AARCH64, KDUMP_ARCH_AARCH64, 112 + 34 * 8, 0 },
};

/* notes.c note_equal(): NAME with or without its NUL */
static int note_is(const char *name, const unsigned char *n, uint64_t namesz)
{
	size_t len = strlen(name);
	return (namesz == len || namesz == len + 1) && !memcmp(name, n, namesz);
}

static int in_set(unsigned char c, const char *extra)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || (c && strchr(extra, c));
}

/* every byte of [s, s + n) in [A-Za-z0-9_] or EXTRA, n > 0 */
static int all_in_set(const unsigned char *s, size_t n, const char *extra)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!in_set(s[i], extra))
			return 0;
	return 1;
}

struct typed {
	const unsigned char *type, *name;
	size_t tlen, nlen;
};

/*
 * 1 if libkdumpfile stores every line of this VMCOREINFO without an error
 * (vmcoreinfo.c vmcoreinfo_raw_post_hook -> add_parsed_row -> lines_post_hook):
 * each line is KEY or KEY=value, split at the first '='; KEY is a path of
 * the linux.vmcoreinfo.lines tree split at '.' (attr.c create_attr_path), and
 * SYMBOL, LENGTH, NUMBER, OFFSET and SIZE(name) also set TYPE.name in
 * linux.vmcoreinfo.  Taken here: KEY of [A-Za-z0-9_-] with no '.' or TYPE(name)
 * with name of [A-Za-z0-9_] parts joined by '.' -- so that no path is both a
 * value and a directory of the lines tree -- where no name of a TYPE is the
 * directory of another; PAGESIZE a page size of the machine.  *page_size is
 * set when a PAGESIZE line sets arch's page size.
 */
static int vmcoreinfo_plain(const unsigned char *text, size_t len, const struct machine *m,
			    int *page_size)
{
	static const char *const typed_types[] = { "SYMBOL", "LENGTH", "NUMBER", "OFFSET", "SIZE" };
	struct typed *t = NULL;
	size_t nt = 0;
	int ok = 0;

	if (!len || len > MAX_VMCOREINFO_BYTES || memchr(text, 0, len))
		return 0;
	t = malloc(MAX_TYPED_LINES * sizeof(*t));
	if (!t)
		return 0;
	for (size_t pos = 0; pos < len;) {
		const unsigned char *p = text + pos;
		const unsigned char *nl = memchr(p, '\n', len - pos);
		size_t linelen = nl ? (size_t)(nl - p) : len - pos;
		const unsigned char *eq = memchr(p, '=', linelen);
		size_t klen = eq ? (size_t)(eq - p) : linelen;
		const unsigned char *paren = memchr(p, '(', klen);

		pos += linelen + 1;
		if (!paren) {
			if (!all_in_set(p, klen, "-"))
				goto out;
			if (klen == 8 && !memcmp(p, "PAGESIZE", 8)) {
				/* lines_post_hook: strtoul(, 10) -> set_page_size() */
				const unsigned char *v = eq ? eq + 1 : p + klen;
				size_t vlen = (size_t)(p + linelen - v);
				if (!((vlen == 4 && !memcmp(v, "4096", 4)) ||
				      (m->em == EM_AARCH64 && ((vlen == 5 && !memcmp(v, "16384", 5)) ||
							       (vlen == 5 && !memcmp(v, "65536", 5))))))
					goto out;   /* not a page size of this machine */
				*page_size = 1;
			}
			continue;
		}
		size_t tlen = (size_t)(paren - p);
		const unsigned char *name = paren + 1;
		if (klen < tlen + 3 || p[klen - 1] != ')' || !all_in_set(p, tlen, ""))
			goto out;
		size_t nlen = klen - tlen - 2;
		/* name: [A-Za-z0-9_] parts joined by single dots */
		if (!all_in_set(name, nlen, ".") || name[0] == '.' || name[nlen - 1] == '.' ||
		    memmem(name, nlen, "..", 2))
			goto out;
		for (size_t i = 0; i < sizeof(typed_types) / sizeof(typed_types[0]); i++) {
			if (strlen(typed_types[i]) != tlen || memcmp(typed_types[i], p, tlen))
				continue;
			if (nt == MAX_TYPED_LINES)
				goto out;
			t[nt].type = p;
			t[nt].tlen = tlen;
			t[nt].name = name;
			t[nt].nlen = nlen;
			nt++;
		}
	}
	/* TYPE.a set as a value and TYPE.a.b under it as a directory (or the
	 * other way round): create_attr_path() finds the value and adds to it */
	for (size_t i = 0; i < nt; i++)
		for (size_t j = 0; j < nt; j++)
			if (t[i].tlen == t[j].tlen && !memcmp(t[i].type, t[j].type, t[i].tlen) &&
			    t[i].nlen < t[j].nlen && t[j].name[t[i].nlen] == '.' &&
			    !memcmp(t[i].name, t[j].name, t[i].nlen))
				goto out;
	ok = 1;
out:
	free(t);
	return ok;
}

/* Section names libkdumpfile acts on (elfdump.c open_common): the name
 * table must be in the file (init_strtab) and name none of them. */
static int sections_plain(int fd, uint64_t size, const Elf64_Ehdr *eh)
{
	static const char *const xen[] = {
		".xen_pages", ".xen_p2m", ".xen_pfn", ".note.Xen", ".xen_prstatus",
	};
	uint64_t shnum = eh->e_shnum;
	Elf64_Shdr *sh = NULL;
	char *strtab = NULL;
	int ret = LEAVE;

	/* init_elf64: section 0 holds the count when e_shnum is 0, and the
	 * program header count (sh_info) when e_phnum is PN_XNUM and a section
	 * count is known; check_elf() takes sh_info whenever e_phnum is
	 * PN_XNUM, so the two must agree on which */
	if (eh->e_shoff && (!shnum || eh->e_phnum == PN_XNUM)) {
		Elf64_Shdr sh0;
		if (eh->e_shentsize != sizeof(sh0) || pfs_pread_all(fd, &sh0, sizeof(sh0), eh->e_shoff))
			return LEAVE;
		if (!shnum)
			shnum = sh0.sh_size;
	}
	if (eh->e_phnum == PN_XNUM && (!eh->e_shoff || !shnum))
		return LEAVE;
	if (!shnum)
		return 0;
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || shnum > MAX_SECTION_BYTES / sizeof(*sh) ||
	    eh->e_shoff > size || shnum * sizeof(*sh) > size - eh->e_shoff)
		return LEAVE;
	sh = malloc(shnum * sizeof(*sh));
	if (!sh)
		return -1;
	if (pfs_pread_all(fd, sh, shnum * sizeof(*sh), eh->e_shoff))
		goto out;
	uint64_t idx = eh->e_shstrndx;
	if (idx && idx < shnum) {
		uint64_t off = sh[idx].sh_offset, len = sh[idx].sh_size;
		if (off > size || len > size - off || len > MAX_SECTION_BYTES)
			goto out;
		strtab = malloc(len ? len : 1);
		if (!strtab) {
			ret = -1;
			goto out;
		}
		if (pfs_pread_all(fd, strtab, len, off))
			goto out;
		for (uint64_t i = 0; i < shnum; i++) {
			uint64_t at = sh[i].sh_name;
			if (at >= len)
				continue;   /* strtab_entry(): no name */
			if (!memchr(strtab + at, 0, len - at))
				goto out;   /* its strcmp() would read past the table */
			for (size_t x = 0; x < sizeof(xen) / sizeof(xen[0]); x++)
				if (!strcmp(strtab + at, xen[x]))
					goto out;
		}
	}
	ret = 0;
out:
	free(strtab);
	free(sh);
	return ret;
}

/* The notes of every PT_NOTE segment, walked as notes.c do_notes() walks
 * them; *vmcoreinfo is the last VMCOREINFO's. */
static int notes_plain(int fd, const struct machine *m, const struct pfs_elfcore_notes *notes,
		       size_t nnotes, char **vmcoreinfo)
{
	int page_size = m->default_page_size;

	for (size_t s = 0; s < nnotes; s++) {
		uint64_t len = notes[s].size;
		unsigned char *buf;
		if (!len)
			continue;
		if (len > MAX_NOTE_BYTES)
			return LEAVE;
		buf = malloc(len);
		if (!buf)
			return -1;
		if (pfs_pread_all(fd, buf, len, notes[s].offset)) {
			free(buf);
			return LEAVE;
		}
		for (uint64_t pos = 0; len - pos >= sizeof(Elf64_Nhdr);) {
			Elf64_Nhdr nh;
			memcpy(&nh, buf + pos, sizeof(nh));
			uint64_t descoff = sizeof(nh) + (((uint64_t)nh.n_namesz + 3) & ~3ull);
			if (len - pos < descoff + nh.n_descsz)
				break;
			const unsigned char *name = buf + pos + sizeof(nh), *desc = buf + pos + descoff;
			int leave = 0;
			if (note_is("VMCOREINFO", name, nh.n_namesz)) {
				if (!vmcoreinfo_plain(desc, nh.n_descsz, m, &page_size)) {
					leave = 1;
				} else {
					char *v = malloc((size_t)nh.n_descsz + 1);
					if (!v) {
						free(buf);
						return -1;
					}
					memcpy(v, desc, nh.n_descsz);
					v[nh.n_descsz] = 0;
					free(*vmcoreinfo);
					*vmcoreinfo = v;
				}
			} else if (note_is("VMCOREINFO_XEN", name, nh.n_namesz) ||
				   note_is("Xen", name, nh.n_namesz) ||
				   note_is(".note.Xen", name, nh.n_namesz)) {
				leave = 1;
			} else if (note_is("CORE", name, nh.n_namesz) && nh.n_type == NT_PRSTATUS &&
				   nh.n_descsz < m->prstatus) {
				leave = 1;
			}
			if (leave) {
				free(buf);
				return LEAVE;
			}
			/* the next note after the descriptor rounded up to 4 bytes;
			 * a last one without its padding ends the walk */
			pos += descoff + (((uint64_t)nh.n_descsz + 3) & ~3ull);
			if (pos > len)
				break;
		}
		free(buf);
	}
	return page_size ? 0 : LEAVE;
}

int pfs_elfcore_identify(int fd, uint64_t size, const struct pfs_elfcore_notes *notes,
			 size_t nnotes, const char **arch, char **vmcoreinfo)
{
	const struct machine *m = NULL;
	Elf64_Ehdr eh;
	int ret;

	*arch = NULL;
	*vmcoreinfo = NULL;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	return LEAVE;   /* the headers are read as this machine's structs */
#endif
	if (pfs_pread_all(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_type != ET_CORE || eh.e_version != EV_CURRENT)
		return LEAVE;
	for (size_t i = 0; i < sizeof(machines) / sizeof(machines[0]); i++)
		if (machines[i].em == eh.e_machine)
			m = &machines[i];
	if (!m)
		return LEAVE;
	ret = sections_plain(fd, size, &eh);
	if (!ret)
		ret = notes_plain(fd, m, notes, nnotes, vmcoreinfo);
	if (ret) {
		free(*vmcoreinfo);
		*vmcoreinfo = NULL;
		return ret;
	}
	*arch = m->arch;
	return 0;
}
