/* sts_x509.h (internal): printable text from untrusted certificate and
 * protocol bytes, shared by the HTTPS probe (sts_fetch.c) and the SMTP probe
 * (sts_smtp.c). */
#ifndef STS_X509_H
#define STS_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

/* Copies n bytes as printable ASCII ('?' for anything else), bounded and
 * always NUL-terminated. */
void sts_copy_printable(char *dst, size_t dstsz, const char *src, size_t n);
/* An X509 name as RFC 2253 text; "" when it cannot be printed. */
void sts_x509_name_text(char *dst, size_t dstsz, const X509_NAME *name);
/* Unix seconds of a certificate time; false when it cannot be read. */
bool sts_x509_unix_time(const ASN1_TIME *t, int64_t *out);
/* The subjectAltName DNS names, ", " between them, "..." when cut. */
void sts_x509_dns_names(char *dst, size_t dstsz, X509 *cert);

#endif
