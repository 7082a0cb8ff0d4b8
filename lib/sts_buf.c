/* sts_buf.c: bounded growable byte buffer (see include/mtasts/buf.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/buf.h>
#include <mtasts/status.h>

void
sts_buf_init(struct sts_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Makes room for `extra` more bytes plus the trailing NUL. */
static int
buf_reserve(struct sts_buf *b, size_t extra)
{
	if (extra > b->max - b->len)
		return STS_ETOOBIG;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return STS_OK;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	char *n = realloc(b->data, ncap);
	if (n == NULL)
		return STS_ENOMEM;
	b->data = n;
	b->cap = ncap;
	return STS_OK;
}

int
sts_buf_append(struct sts_buf *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);
	if (rc != STS_OK)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return STS_OK;
}

int
sts_buf_putc(struct sts_buf *b, int c)
{
	unsigned char ch = (unsigned char)c;
	return sts_buf_append(b, &ch, 1);
}

int
sts_buf_puts(struct sts_buf *b, const char *s)
{
	return sts_buf_append(b, s, strlen(s));
}

int
sts_buf_vprintf(struct sts_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return STS_EINVAL;
	int rc = buf_reserve(b, (size_t)n);
	if (rc != STS_OK)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return STS_OK;
}

int
sts_buf_printf(struct sts_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = sts_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void
sts_buf_reset(struct sts_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

const char *
sts_buf_cstr(const struct sts_buf *b)
{
	return b->data != NULL ? b->data : "";
}

void
sts_buf_free(struct sts_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
