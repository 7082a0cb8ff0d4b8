/* smtp.h: the SMTP STARTTLS probe used by `mta-sts check` (rules 44, 46,
 * 56, 58, 61): connect to one address of an MX host on port 25, read the
 * banner, EHLO, STARTTLS, TLS handshake with SNI = the MX host name, then
 * report the certificate and whether it is valid for that name under PKIX.
 * OpenSSL with memory BIOs on the libuv loop; nothing blocks.
 * @test tests/integration/test_smtp.c (real Postfix) */
#ifndef MTASTS_SMTP_H
#define MTASTS_SMTP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

enum sts_smtp_error {
	STS_SMTP_OK = 0,             /* TLS established; see cert fields for validity */
	STS_SMTP_CONNECT,            /* "smtp.connect": refused, unreachable */
	STS_SMTP_TIMEOUT,            /* "smtp.timeout": no answer within the timeout */
	STS_SMTP_PROTOCOL,           /* "smtp.protocol": banner not 220, EHLO refused, garbage */
	STS_SMTP_NO_STARTTLS,        /* "smtp.starttls.missing": EHLO does not offer STARTTLS */
	STS_SMTP_STARTTLS_REFUSED,   /* "smtp.starttls.refused": STARTTLS answered with non-220 */
	STS_SMTP_TLS,                /* "smtp.tls.handshake": handshake failed (incl. < TLS 1.2) */
	STS_SMTP_INTERNAL,           /* "smtp.internal" */
};

enum sts_smtp_cert {
	STS_SMTP_CERT_NONE = 0,      /* no certificate seen */
	STS_SMTP_CERT_VALID,         /* chains to a trusted root, unexpired, name matches */
	STS_SMTP_CERT_UNTRUSTED,     /* RFC 8460 certificate-not-trusted */
	STS_SMTP_CERT_EXPIRED,       /* certificate-expired (or not yet valid) */
	STS_SMTP_CERT_NAME,          /* certificate-host-mismatch */
};

const char *sts_smtp_error_code(enum sts_smtp_error e);
const char *sts_smtp_cert_name(enum sts_smtp_cert c);   /* "valid", "untrusted", ... */

struct sts_smtp_opts {
	const char *ca_file;         /* NULL: system trust store */
	unsigned timeout_ms;         /* whole probe; 0: 15000 */
	unsigned port;               /* 0: 25 */
	const char *helo_name;       /* EHLO argument; NULL: "mta-sts-check.invalid" */
};

/* Valid only while the callback runs. */
struct sts_smtp_result {
	enum sts_smtp_error error;
	char message[256];           /* names the cause: "no STARTTLS in EHLO reply" */
	const char *host;            /* MX host name probed (SNI and name check) */
	const char *addr;            /* address probed */
	char banner[256];
	bool starttls_offered;
	char tls_version[16];        /* "TLSv1.3" */
	char cipher[64];
	enum sts_smtp_cert cert;
	char cert_message[128];      /* OpenSSL's verify text when not valid */
	char cert_subject[256];
	char cert_issuer[256];
	char cert_sans[1024];        /* DNS names, comma separated */
	int64_t cert_not_before;
	int64_t cert_not_after;
	double seconds;
};

typedef void (*sts_smtp_cb)(void *arg, const struct sts_smtp_result *r);

struct sts_smtp_prober;

int sts_smtp_prober_new(uv_loop_t *loop, const struct sts_smtp_opts *opts,
			struct sts_smtp_prober **out, char *err, size_t errsz);
/* Aborts probes in flight (callbacks once with STS_SMTP_INTERNAL "cancelled");
 * the loop must run once more for handles to close. */
void sts_smtp_prober_free(struct sts_smtp_prober **p);

/* Probes host (the MX name, used for SNI and the name check) at addr. */
void sts_smtp_probe(struct sts_smtp_prober *p, const char *host, const char *addr,
		    sts_smtp_cb cb, void *arg);

#endif
