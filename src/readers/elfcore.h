/* SPDX-License-Identifier: MIT */
#ifndef PFNSCOPE_READERS_ELFCORE_H
#define PFNSCOPE_READERS_ELFCORE_H
/*
 * What libkdumpfile would say of an ELF core, said without opening it:
 * private to src/readers (kdumpfile.c reads the pages of a whole ELF dump
 * itself, and with this needs no libkdumpfile context for it at all).
 *
 * libkdumpfile 0.5.1 parses every program header at open (the 66,000 of a
 * 1 GiB QEMU paging=true dump take pfnscope's open from 0.027 to 0.089 s
 * of CPU) to give pfnscope three things: arch.name (from e_machine),
 * file.format ("elf") and the raw VMCOREINFO (the last VMCOREINFO
 * note).  pfs_elfcore_identify() gives them for the
 * files libkdumpfile opens as a plain Linux core and reads as pfnscope's
 * ELF reader does; for any other file it says so, and the file is left to
 * libkdumpfile.
 */
#include <stddef.h>
#include <stdint.h>

/* a PT_NOTE segment: file offset and p_filesz, in the file */
struct pfs_elfcore_notes {
	uint64_t offset, size;
};

/*
 * The file open on fd (size bytes; the program headers and notes known to
 * lie in it, as kdumpfile.c's check_elf() found them), with its PT_NOTE
 * segments in program header order: 0 with *arch (libkdumpfile's name,
 * static) and *vmcoreinfo (malloc'ed text, NULL when the file has no
 * VMCOREINFO note) when libkdumpfile 0.5.1 opens it as a 64-bit
 * little-endian Linux ELF core of a machine pfnscope knows, its open
 * cannot fail on anything read here, and its attributes are those; 1 when
 * the file must be left to libkdumpfile; -1 when out of memory.
 */
int pfs_elfcore_identify(int fd, uint64_t size, const struct pfs_elfcore_notes *notes,
			 size_t nnotes, const char **arch, char **vmcoreinfo);

#endif
