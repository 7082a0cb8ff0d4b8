/* buf.h: the bounded byte buffer used for every untrusted byte.
 *
 * A buffer is created with a mandatory ceiling (`max`); growing past it fails
 * with STS_ETOOBIG instead of allocating. The contents are always kept
 * NUL-terminated one byte past `len` (the NUL is not counted), so a buffer can
 * be handed to C string APIs once its bytes are known to contain no NUL.
 * The buffer owns `data`; sts_buf_free() releases it and resets the buffer. */
#ifndef MTASTS_BUF_H
#define MTASTS_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct sts_buf {
	char *data;    /* owned; NULL until the first append */
	size_t len;    /* bytes in use, excluding the trailing NUL */
	size_t cap;    /* bytes allocated */
	size_t max;    /* ceiling for len; fixed at init */
};

/* Prepares an empty buffer that may hold at most `max` bytes. Allocates nothing. */
void sts_buf_init(struct sts_buf *b, size_t max);
/* Appends n bytes. STS_ETOOBIG past the ceiling (buffer unchanged), STS_ENOMEM. */
int sts_buf_append(struct sts_buf *b, const void *p, size_t n);
int sts_buf_putc(struct sts_buf *b, int c);
int sts_buf_puts(struct sts_buf *b, const char *s);
int sts_buf_printf(struct sts_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int sts_buf_vprintf(struct sts_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Empties the buffer, keeping its allocation and ceiling. */
void sts_buf_reset(struct sts_buf *b);
/* Returns the contents as a C string ("" when empty). Borrowed: valid until
 * the next call that modifies the buffer. */
const char *sts_buf_cstr(const struct sts_buf *b);
/* Releases the storage; the buffer is empty afterwards and may be reused. */
void sts_buf_free(struct sts_buf *b);

#endif
