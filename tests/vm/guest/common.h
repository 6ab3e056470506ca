/* Shared helpers of the pfnscope lab's guest programs (scenarios, buggy, truth).
 * Header-only: each program is one translation unit, linked static. */
#ifndef PFNSCOPE_GUEST_COMMON_H
#define PFNSCOPE_GUEST_COMMON_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define HPAGE (2UL << 20)

#define PM_PFN_MASK ((1ULL << 55) - 1)
#define PM_SOFT_DIRTY (1ULL << 55)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_FILE (1ULL << 61)
#define PM_SWAP (1ULL << 62)
#define PM_PRESENT (1ULL << 63)

/* /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h) */
#define KPF_ANON 12
#define KPF_THP 22
#define KPF_ZERO_PAGE 24
#define KPF_MLOCKED 33
#define KPF_RESERVED 32

static inline void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- a tiny growable string for JSON lines ---- */
struct sb { char *s; size_t n, cap; };

static inline void sb_add(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = b->cap - b->n;
		int k;
		va_start(ap, fmt);
		k = vsnprintf(b->s ? b->s + b->n : NULL, room, fmt, ap);
		va_end(ap);
		if (k < 0)
			return;
		if ((size_t)k < room) {
			b->n += (size_t)k;
			return;
		}
		b->cap = (b->cap + (size_t)k + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			die("out of memory");
	}
}

/* JSON string literal (escapes quotes, backslashes, control chars) */
static inline void sb_str(struct sb *b, const char *s)
{
	sb_add(b, "\"");
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_add(b, "\\%c", c);
		else if (c < 0x20)
			sb_add(b, "\\u%04x", c);
		else
			sb_add(b, "%c", c);
	}
	sb_add(b, "\"");
}

static inline void sb_free(struct sb *b) { free(b->s); b->s = NULL; b->n = b->cap = 0; }

/* JSON tri-state: 1 true, 0 false, -1 null */
static inline const char *tri(int v) { return v < 0 ? "null" : v ? "true" : "false"; }

/* ---- whole-line appends (one write(2) per line; O_APPEND keeps lines whole) ---- */
static inline int append_line(const char *path, const char *line, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	ssize_t w;
	if (fd < 0)
		return -1;
	w = write(fd, line, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

/* ---- pagemap / kpage* ---- */
static inline uint64_t pagemap_of(pid_t pid, unsigned long addr)
{
	char p[64];
	uint64_t v = 0;
	int fd;
	if (pid)
		snprintf(p, sizeof(p), "/proc/%d/pagemap", (int)pid);
	else
		snprintf(p, sizeof(p), "/proc/self/pagemap");
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, &v, 8, (off_t)(addr / PAGE * 8)) != 8)
		v = 0;
	close(fd);
	return v;
}

/* 8-byte record of /proc/kpagecount or /proc/kpageflags; returns 0 on success */
static inline int kpage_read(const char *file, uint64_t pfn, uint64_t *out)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	int ok;
	if (fd < 0)
		return -1;
	ok = pread(fd, out, 8, (off_t)(pfn * 8)) == 8;
	close(fd);
	return ok ? 0 : -1;
}

static inline uint64_t kpageflags_of(uint64_t pfn)
{
	uint64_t f = 0;
	if (kpage_read("/proc/kpageflags", pfn, &f))
		return 0;
	return f;
}

static inline int read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, tot = 0;
	if (fd < 0)
		return -1;
	while ((size_t)tot < cap - 1 && (n = read(fd, buf + tot, cap - 1 - (size_t)tot)) > 0)
		tot += n;
	close(fd);
	buf[tot] = 0;
	return (int)tot;
}

static inline int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Detach from the caller: own session, stdio to /dev/null (so a pipe reader of the
 * parent's output sees EOF), ignore the signals a dying session sends. */
static inline void daemon_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

static inline void sleep_forever(void)
{
	for (;;)
		pause();
}

/* Wait for one byte on fd for up to ms; 1 = got it, 0 = EOF/timeout */
static inline int wait_ready(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return 0;
	return read(fd, &c, 1) == 1;
}
#endif
