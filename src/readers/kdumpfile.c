// SPDX-License-Identifier: MIT
/*
 * Physical reads from a dump file through libkdumpfile (KDUMP_MACHPHYSADDR).
 *
 * - QEMU dumps (kdump-zlib, physical-only ELF) carry no architecture name:
 *   set arch.name = x86_64 and addrxlat.ostype = linux (QEMU's dump.c
 *   writes neither a machine name nor an OS type into its headers).
 * - libkdumpfile 0.5.1 does not read makedumpfile's flattened format (what
 *   QEMU's dump-guest-memory -z writes): rebuild it with `makedumpfile -R`
 *   into $TMPDIR, or refuse with an error that says so.
 * - libkdumpfile opens a truncated file happily and fails later per page;
 *   check the ELF program headers / diskdump page descriptors against the
 *   file size up front so the user gets one clear line.
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

struct pfs_kdump {
	kdump_ctx_t *ctx;
	int fd;
	pthread_mutex_t lock;
	char *vmcoreinfo;
	char *format;
	char *arch;
	char *tmp_path;      /* rebuilt flattened file, unlinked on close */
};

static void set_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void set_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || !errlen)
		return;
	n = snprintf(err, errlen, "%s: ", path);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	/* one line */
	for (char *p = err; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

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

/* Run `makedumpfile -R out < path`; returns the malloc'ed temp path or NULL. */
static char *rebuild_flattened(const char *path, char *err, size_t errlen)
{
	const char *dir = getenv("TMPDIR");
	char *out;
	int in, ofd, status;
	pid_t pid;

	if (!dir || !*dir)
		dir = "/tmp";
	if (asprintf(&out, "%s/pfnscope-rebuilt-XXXXXX", dir) < 0)
		return NULL;
	ofd = mkstemp(out);
	if (ofd >= 0) {
		/* makedumpfile -R refuses an existing file: keep the unique name */
		close(ofd);
		unlink(out);
	}
	if (ofd < 0) {
		set_err(err, errlen, path, "flattened makedumpfile format; cannot create a "
			"temporary file in %s to rebuild it: %s", dir, strerror(errno));
		free(out);
		return NULL;
	}
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		set_err(err, errlen, path, "cannot open: %s", strerror(errno));
		goto fail;
	}
	fprintf(stderr, "pfnscope: %s is in makedumpfile's flattened format; "
		"rebuilding it with `makedumpfile -R` into %s\n", path, out);
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(in, 0);
		if (devnull >= 0)
			dup2(devnull, 1);
		execlp("makedumpfile", "makedumpfile", "-R", out, (char *)NULL);
		_exit(127);
	}
	close(in);
	if (pid < 0) {
		set_err(err, errlen, path, "flattened makedumpfile format; cannot run "
			"makedumpfile -R: %s", strerror(errno));
		goto fail;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		set_err(err, errlen, path, "flattened makedumpfile format; `makedumpfile -R` "
			"failed (exit %d%s): rebuild it by hand with `makedumpfile -R OUT < FILE`",
			WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ", makedumpfile not installed" : "");
		goto fail;
	}
	return out;
fail:
	unlink(out);
	free(out);
	return NULL;
}

/* ELF: every PT_LOAD's file range must lie inside the file. */
static int check_elf_size(int fd, uint64_t size, const char *path, char *err, size_t errlen)
{
	Elf64_Ehdr eh;

	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
		return 0;
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
		return 0;   /* leave 32-bit / odd files to libkdumpfile */
	if (eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size) {
		set_err(err, errlen, path, "truncated ELF dump (program headers beyond "
			"the end of the %llu-byte file)", (unsigned long long)size);
		return -1;
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != (ssize_t)sizeof(ph))
			return 0;
		if ((ph.p_type == PT_LOAD || ph.p_type == PT_NOTE) &&
		    ph.p_offset + ph.p_filesz > size) {
			set_err(err, errlen, path, "truncated ELF dump: segment %u ends at byte "
				"%llu, file has %llu", i,
				(unsigned long long)(ph.p_offset + ph.p_filesz),
				(unsigned long long)size);
			return -1;
		}
	}
	return 0;
}

/* kdump-compressed (diskdump): the last page descriptor's data must be in
 * the file.  Header layout from makedumpfile's diskdump_mod.h (64-bit). */
static int check_diskdump_size(int fd, uint64_t size, const char *path, char *err, size_t errlen)
{
	unsigned char hdr[464];
	int32_t block_size, sub_hdr_size;
	uint32_t bitmap_blocks;

	if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || memcmp(hdr, "KDUMP   ", 8))
		return 0;
	memcpy(&block_size, hdr + 428, 4);
	memcpy(&sub_hdr_size, hdr + 432, 4);
	memcpy(&bitmap_blocks, hdr + 436, 4);
	if (block_size <= 0 || block_size > (1 << 20) || sub_hdr_size < 0)
		return 0;
	uint64_t bitmap_off = (uint64_t)(1 + sub_hdr_size) * (uint64_t)block_size;
	uint64_t bitmap_len = (uint64_t)bitmap_blocks * (uint64_t)block_size;
	uint64_t desc_off = bitmap_off + bitmap_len;
	if (desc_off > size) {
		set_err(err, errlen, path, "truncated kdump-compressed dump (bitmaps end at "
			"byte %llu, file has %llu)", (unsigned long long)desc_off,
			(unsigned long long)size);
		return -1;
	}
	/* count dumpable pages: popcount of the second bitmap */
	uint64_t half = bitmap_len / 2, npages = 0;
	unsigned char *bm = malloc(half ? half : 1);
	if (!bm)
		return 0;
	if (pread(fd, bm, half, (off_t)(bitmap_off + half)) != (ssize_t)half) {
		free(bm);
		return 0;
	}
	for (uint64_t i = 0; i < half; i++)
		npages += (uint64_t)__builtin_popcount(bm[i]);
	free(bm);
	if (!npages)
		return 0;
	struct { int64_t offset; uint32_t size, flags; uint64_t page_flags; } pd;
	uint64_t last = desc_off + (npages - 1) * sizeof(pd);
	if (last + sizeof(pd) > size) {
		set_err(err, errlen, path, "truncated kdump-compressed dump (page descriptors "
			"end at byte %llu, file has %llu)",
			(unsigned long long)(last + sizeof(pd)), (unsigned long long)size);
		return -1;
	}
	if (pread(fd, &pd, sizeof(pd), (off_t)last) != (ssize_t)sizeof(pd))
		return 0;
	if (pd.offset < 0 || (uint64_t)pd.offset + pd.size > size) {
		set_err(err, errlen, path, "truncated kdump-compressed dump (page data ends at "
			"byte %llu, file has %llu)",
			(unsigned long long)((uint64_t)pd.offset + pd.size), (unsigned long long)size);
		return -1;
	}
	return 0;
}

static char *dup_attr(kdump_ctx_t *ctx, const char *key)
{
	const char *s = NULL;

	if (kdump_get_string_attr(ctx, key, &s) != KDUMP_OK || !s)
		return NULL;
	return strdup(s);
}

struct pfs_kdump *pfs_kdump_open(const char *path, int convert_flat, char *err, size_t errlen)
{
	struct pfs_kdump *k = calloc(1, sizeof(*k));
	const char *open_path = path;
	struct stat st;
	kdump_status ks;

	if (!k) {
		set_err(err, errlen, path, "out of memory");
		return NULL;
	}
	k->fd = -1;
	pthread_mutex_init(&k->lock, NULL);

	if (pfs_is_flattened(path)) {
		if (!convert_flat) {
			set_err(err, errlen, path, "makedumpfile flattened format (QEMU kdump-zlib), "
				"which libkdumpfile cannot read: rebuild it with "
				"`makedumpfile -R OUT < FILE`");
			goto fail;
		}
		k->tmp_path = rebuild_flattened(path, err, errlen);
		if (!k->tmp_path)
			goto fail;
		open_path = k->tmp_path;
	}

	k->fd = open(open_path, O_RDONLY | O_CLOEXEC);
	if (k->fd < 0) {
		set_err(err, errlen, path, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (k->tmp_path)   /* the open fd keeps it; nothing left behind on a crash */
		unlink(k->tmp_path);
	if (fstat(k->fd, &st) < 0) {
		set_err(err, errlen, path, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, path, "not a regular file");
		goto fail;
	}
	if (st.st_size == 0) {
		set_err(err, errlen, path, "empty file, not a dump");
		goto fail;
	}
	if (check_elf_size(k->fd, (uint64_t)st.st_size, path, err, errlen) < 0 ||
	    check_diskdump_size(k->fd, (uint64_t)st.st_size, path, err, errlen) < 0)
		goto fail;

	k->ctx = kdump_new();
	if (!k->ctx) {
		set_err(err, errlen, path, "cannot allocate a libkdumpfile context");
		goto fail;
	}
	ks = kdump_open_fd(k->ctx, k->fd);
	if (ks != KDUMP_OK) {
		const char *why = kdump_get_err(k->ctx);
		if (ks == KDUMP_ERR_NOTIMPL || (why && strstr(why, "Unknown file format")))
			set_err(err, errlen, path, "not a dump file libkdumpfile knows (%s)",
				why ? why : "unknown format");
		else
			set_err(err, errlen, path, "cannot open dump (libkdumpfile: %s)",
				why ? why : "error");
		goto fail;
	}
	k->arch = dup_attr(k->ctx, KDUMP_ATTR_ARCH_NAME);
	if (!k->arch) {
		/* QEMU's dumps carry no arch name: x86-64 is the only one we lab */
		ks = kdump_set_string_attr(k->ctx, KDUMP_ATTR_ARCH_NAME, KDUMP_ARCH_X86_64);
		if (ks != KDUMP_OK) {
			set_err(err, errlen, path, "cannot set arch.name (libkdumpfile: %s)",
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
	return k;
fail:
	pfs_kdump_close(k);
	return NULL;
}

void pfs_kdump_close(struct pfs_kdump *k)
{
	if (!k)
		return;
	if (k->ctx)
		kdump_free(k->ctx);
	if (k->fd >= 0)
		close(k->fd);
	if (k->tmp_path) {
		unlink(k->tmp_path);
		free(k->tmp_path);
	}
	free(k->vmcoreinfo);
	free(k->format);
	free(k->arch);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int pfs_kdump_read_phys(void *ctx, uint64_t paddr, void *buf, size_t len)
{
	struct pfs_kdump *k = ctx;
	size_t got = len;
	kdump_status ks;

	pthread_mutex_lock(&k->lock);
	ks = kdump_read(k->ctx, KDUMP_MACHPHYSADDR, paddr, buf, &got);
	if (ks != KDUMP_OK)
		kdump_clear_err(k->ctx);
	pthread_mutex_unlock(&k->lock);
	return ks == KDUMP_OK && got == len ? 0 : -1;
}

const char *pfs_kdump_vmcoreinfo(const struct pfs_kdump *k) { return k->vmcoreinfo; }
const char *pfs_kdump_format(const struct pfs_kdump *k) { return k->format; }
const char *pfs_kdump_arch(const struct pfs_kdump *k) { return k->arch; }
int pfs_kdump_rebuilt(const struct pfs_kdump *k) { return k->tmp_path != NULL; }
