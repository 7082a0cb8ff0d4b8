/* sts_x509.c: see sts_x509.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/x509v3.h>

#include "sts_x509.h"

/* Copies a header value for messages: trimmed, control bytes and non-ASCII
 * shown as '?', so a hostile server cannot put line breaks into our logs. */
void
sts_copy_printable(char *dst, size_t dstsz, const char *src, size_t n)
{
	while (n > 0 && (*src == ' ' || *src == '\t')) {
		src++;
		n--;
	}
	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\t' || src[n - 1] == '\r' ||
			 src[n - 1] == '\n'))
		n--;
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (dstsz > 0)
		dst[o] = '\0';
}
/* An X509 name as RFC 2253 text ("CN=R3,O=Let's Encrypt,C=US"): non-ASCII
 * and control bytes are escaped by OpenSSL, and copy_printable catches
 * anything left. "" when it cannot be printed. */
void
sts_x509_name_text(char *dst, size_t dstsz, const X509_NAME *name)
{
	char *data = NULL;
	dst[0] = '\0';
	BIO *b = BIO_new(BIO_s_mem());
	if (b == NULL)
		return;
	if (name != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
		long n = BIO_get_mem_data(b, &data);
		if (n > 0)
			sts_copy_printable(dst, dstsz, data, (size_t)n);
	}
	BIO_free(b);
}
/* Unix seconds of a certificate time; false when it cannot be read. */
bool
sts_x509_unix_time(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}
/* The DNS names of the subjectAltName extension, ", " between them. A list
 * that does not fit ends in ", ..." after the last name that did. */
void
sts_x509_dns_names(char *dst, size_t dstsz, X509 *cert)
{
	static const char more[] = ", ...";
	size_t o = 0;
	dst[0] = '\0';
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_DNS)
			continue;
		char name[256];
		const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
		int len = ASN1_STRING_length(g->d.dNSName);
		if (d == NULL || len <= 0)
			continue;
		/* An embedded NUL or control byte shows as '?'. */
		sts_copy_printable(name, sizeof name, (const char *)d, (size_t)len);
		size_t sep = o > 0 ? 2 : 0, nl = strlen(name);
		if (o + sep + nl + sizeof more > dstsz) {
			if (o + sizeof more <= dstsz)
				memcpy(dst + o, more, sizeof more);
			break;
		}
		snprintf(dst + o, dstsz - o, "%s%s", sep ? ", " : "", name);
		o += sep + nl;
	}
	GENERAL_NAMES_free(gens);
}
