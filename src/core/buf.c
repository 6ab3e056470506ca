// SPDX-License-Identifier: MIT
/*
 * The output buffer (struct pfs_buf): appends with hand-written number
 * formatting (no printf per field); in fd mode it is written out whenever
 * it fills up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "pfnscope/json.h"


int pfs_buf_init(struct pfs_buf *b, size_t cap, int fd)
{
	if (cap < 4096)
		cap = 4096;
	b->data = malloc(cap);
	b->len = 0;
	b->cap = b->data ? cap : 0;
	b->fd = fd;
	b->written = 0;
	b->memo = NULL;
	pfs_error_clear(&b->error);
	return b->data ? 0 : pfs_error_set(&b->error, PFS_ENOMEM, "output buffer", 0);
}

void pfs_buf_fini(struct pfs_buf *b)
{
	free(b->memo);
	b->memo = NULL;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int pfs_buf_flush(struct pfs_buf *b)
{
	size_t off = 0;

	if (b->fd < 0)
		return -(int)b->error.code;
	while (off < b->len) {
		ssize_t n = write(b->fd, b->data + off, b->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (!b->error.code) {
				pfs_error_set(&b->error, PFS_EOS, "output", 0);
				b->error.errnum = errno;
			}
			break;
		}
		off += (size_t)n;
	}
	b->written += off;
	b->len = 0;  /* on error the rest is dropped: error reports it */
	return -(int)b->error.code;
}

char *pfs_buf_reserve(struct pfs_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return b->data + b->len;
	if (b->fd >= 0) {
		pfs_buf_flush(b);
		if (b->cap - b->len >= n)
			return b->data + b->len;
	}
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d) {
		if (!b->error.code)
			pfs_error_set(&b->error, PFS_ENOMEM, "output buffer", 0);
		return NULL;
	}
	b->data = d;
	b->cap = cap;
	return b->data + b->len;
}

void pfs_buf_put(struct pfs_buf *b, const char *s, size_t n)
{
	char *p = pfs_buf_reserve(b, n);
	if (!p)
		return;
	memcpy(p, s, n);
	b->len += n;
}

void pfs_buf_puts(struct pfs_buf *b, const char *s)
{
	pfs_buf_put(b, s, strlen(s));
}

void pfs_buf_putc(struct pfs_buf *b, char c)
{
	char *p = pfs_buf_reserve(b, 1);
	if (!p)
		return;
	*p = c;
	b->len++;
}

/* literal strings: length known at compile time */
size_t pfs_fmt_u64(char *out, uint64_t v)
{
	/* two digits per division, written from the end: an entry line has
	 * eight decimal numbers */
	static const char pairs[201] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	size_t n = 1;

	for (uint64_t t = v; t >= 10; t /= 10)
		n++;
	char *p = out + n;
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		*--p = pairs[d + 1];
		*--p = pairs[d];
	}
	if (v >= 10) {
		*--p = pairs[v * 2 + 1];
		*--p = pairs[v * 2];
	} else {
		*--p = (char)('0' + v);
	}
	return n;
}

size_t pfs_fmt_hex(char *out, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	int shift = 60;

	out[0] = '0';
	out[1] = 'x';
	while (shift > 0 && !((v >> shift) & 0xf))
		shift -= 4;
	size_t n = 2;
	for (; shift >= 0; shift -= 4)
		out[n++] = digits[(v >> shift) & 0xf];
	return n;
}

void pfs_buf_u64(struct pfs_buf *b, uint64_t v)
{
	char *p = pfs_buf_reserve(b, 20);
	if (p)
		b->len += pfs_fmt_u64(p, v);
}

void pfs_buf_i64(struct pfs_buf *b, int64_t v)
{
	char *p = pfs_buf_reserve(b, 21);
	if (!p)
		return;
	if (v < 0) {
		*p++ = '-';
		b->len++;
		b->len += pfs_fmt_u64(p, (uint64_t)0 - (uint64_t)v);
	} else {
		b->len += pfs_fmt_u64(p, (uint64_t)v);
	}
}

void pfs_buf_hex(struct pfs_buf *b, uint64_t v)
{
	char *p = pfs_buf_reserve(b, 18);
	if (p)
		b->len += pfs_fmt_hex(p, v);
}

/* "0x" + 16 digits, zero padded (table columns) */
void pfs_buf_hex16(struct pfs_buf *b, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char *p = pfs_buf_reserve(b, 18);
	if (!p)
		return;
	p[0] = '0';
	p[1] = 'x';
	for (int i = 0; i < 16; i++)
		p[2 + i] = digits[(v >> (60 - 4 * i)) & 0xf];
	b->len += 18;
}

/* "0x1f" in quotes */
void pfs_buf_qhex(struct pfs_buf *b, uint64_t v)
{
	char *p = pfs_buf_reserve(b, 20);
	if (!p)
		return;
	p[0] = '"';
	size_t n = 1 + pfs_fmt_hex(p + 1, v);
	p[n++] = '"';
	b->len += n;
}

void pfs_buf_json_str(struct pfs_buf *b, const char *s)
{
	static const char digits[] = "0123456789abcdef";

	pfs_buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			pfs_buf_put(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', digits[c >> 4], digits[c & 0xf] };
			pfs_buf_put(b, e, 6);
		} else {
			pfs_buf_putc(b, (char)c);
		}
	}
	pfs_buf_putc(b, '"');
}

void pfs_buf_pad(struct pfs_buf *b, size_t from, size_t width)
{
	size_t have = b->len - from;

	if (b->len < from)  /* flushed in between: cannot align, one space */
		have = width;
	size_t n = have < width ? width - have : 1;
	char *p = pfs_buf_reserve(b, n);
	if (!p)
		return;
	memset(p, ' ', n);
	b->len += n;
}

