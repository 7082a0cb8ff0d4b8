/* sts_utf8.h (internal): UTF-8 well-formedness (RFC 3629), shared by the
 * policy parser (extension values) and the socketmap key parser. */
#ifndef STS_UTF8_H
#define STS_UTF8_H

#include <stddef.h>

/* Length of the well-formed sequence at s (1 for ASCII), or 0 when the
 * bytes are not UTF-8: overlongs, surrogates, above U+10FFFF, cut short. */
size_t sts_utf8_seq(const unsigned char *s, size_t n);

#endif
