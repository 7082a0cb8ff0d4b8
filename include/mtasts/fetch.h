/* fetch.h: the HTTPS policy fetch through libcurl's multi interface, driven
 * by a libuv loop. The only module that includes <curl/curl.h>.
 *
 * GET https://mta-sts.<domain>/.well-known/mta-sts.txt (rule 13), HTTPS only,
 * TLS >= 1.2 (rule 61), certificate verified for mta-sts.<domain> (rules 25,
 * 57), no redirects (rule 31), status exactly 200 (rule 30), text/plain
 * (rule 14), at most STS_POLICY_MAX bytes enforced while reading (rule 35),
 * no HTTP cache, no proxy from the environment. The connection goes to the
 * addresses our own resolver found (CURLOPT_RESOLVE), so one resolver
 * configuration governs every name.
 * @test tests/unit/test_mediatype.c, tests/integration/test_fetch.c, tests/integration/test_query.sh */
#ifndef MTASTS_FETCH_H
#define MTASTS_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum sts_fetch_error {
	STS_FETCH_OK = 0,
	STS_FETCH_DNS_TEMP,        /* "fetch.dns.temporary": policy host lookup failed temporarily */
	STS_FETCH_NO_ADDRESS,      /* "fetch.dns.no_address": mta-sts.<domain> has no A/AAAA */
	STS_FETCH_CONNECT,         /* "fetch.connect": refused, unreachable */
	STS_FETCH_TLS_UNTRUSTED,   /* "fetch.tls.untrusted": chain does not reach a trusted root */
	STS_FETCH_TLS_EXPIRED,     /* "fetch.tls.expired": certificate expired or not yet valid */
	STS_FETCH_TLS_NAME,        /* "fetch.tls.name": certificate not valid for mta-sts.<domain> */
	STS_FETCH_TLS_OTHER,       /* "fetch.tls.handshake": protocol version, handshake failure */
	STS_FETCH_HTTP_STATUS,     /* "fetch.http.status": status other than 200 (not 3xx) */
	STS_FETCH_REDIRECT,        /* "fetch.http.redirect": 3xx; location kept, never followed */
	STS_FETCH_CONTENT_TYPE,    /* "fetch.http.content_type": not text/plain */
	STS_FETCH_TOO_LARGE,       /* "fetch.http.too_large": body over STS_POLICY_MAX */
	STS_FETCH_TIMEOUT,         /* "fetch.timeout": no complete answer within the timeout */
	STS_FETCH_POLICY_INVALID,  /* "policy.invalid": set by the caller after parsing */
	STS_FETCH_INTERNAL,        /* "fetch.internal": out of memory, curl setup failure */
};

/* Stable machine code of an error ("fetch.tls.untrusted"). */
const char *sts_fetch_error_code(enum sts_fetch_error e);
/* RFC 8460 result type: "sts-policy-fetch-error", "sts-webpki-invalid",
 * "sts-policy-invalid", or NULL for STS_FETCH_OK. */
const char *sts_fetch_tlsrpt_type(enum sts_fetch_error e);

/* True when a Content-Type header value is text/plain (case-insensitive,
 * parameters ignored; rule 14). NULL or "" is false. Pure. */
bool sts_media_type_ok(const char *value);

struct sts_fetch_opts {
	const char *ca_file;       /* NULL: the system's CA bundle */
	unsigned timeout_ms;       /* whole request; 0: 30000 */
	const char *proxy;         /* NULL: no proxy (environment ignored) */
};

/* The result, valid only while the callback runs. */
struct sts_fetch_result {
	enum sts_fetch_error error;
	char message[256];         /* human reason naming the cause, e.g. "HTTP status 404" */
	long http_status;          /* 0 when no response */
	const char *body;          /* the policy bytes when error == STS_FETCH_OK */
	size_t body_len;
	char content_type[128];
	char location[256];        /* redirect target, for the message */
};

typedef void (*sts_fetch_cb)(void *arg, const struct sts_fetch_result *res);

struct sts_fetcher;

int sts_fetcher_new(uv_loop_t *loop, const struct sts_fetch_opts *opts,
		    struct sts_fetcher **out, char *err, size_t errsz);
/* Aborts transfers in flight (callbacks run with STS_FETCH_INTERNAL
 * "cancelled"), frees; *f becomes NULL. */
void sts_fetcher_free(struct sts_fetcher **f);

/* Fetches the policy of domain (an A-label name, no trailing dot) from the
 * given addresses of mta-sts.<domain> (at least one; textual IPv4/IPv6). */
void sts_fetch_policy(struct sts_fetcher *f, const char *domain, const char *const *addrs,
		      size_t n_addrs, sts_fetch_cb cb, void *arg);

/* A diagnostic fetch for `mta-sts check`: one address of the policy host,
 * with what a report needs besides the verdict. */
struct sts_fetch_probe {
	struct sts_fetch_result r;   /* verdict, message, status, body, type, location */
	const char *addr;            /* the address probed */
	bool verified;               /* the probe verified the chain and name */
	char tls_version[16];        /* "TLSv1.3"; "" when no handshake completed (a
				      * chain or date failure aborts it; a name
				      * mismatch is found after it, so has one) */
	char cipher[64];             /* OpenSSL's name, "TLS_AES_256_GCM_SHA384" */
	bool have_cert;              /* leaf certificate details below are set, also
				      * when verification failed on it */
	char cert_subject[256];      /* RFC 2253: "CN=mta-sts.example.com" */
	char cert_issuer[256];       /* RFC 2253: "CN=R3,O=Let's Encrypt,C=US" */
	char cert_sans[1024];        /* DNS names, ", " between them; ", ..." when cut */
	int64_t cert_not_before;     /* unix seconds */
	int64_t cert_not_after;
	double seconds;              /* wall time of the request */
};

typedef void (*sts_fetch_probe_cb)(void *arg, const struct sts_fetch_probe *p);

/* Fetches the policy of domain from one address. With verify false the
 * certificate is not checked (to read an untrusted or expired certificate's
 * details after a verified probe failed); everything else is as in
 * sts_fetch_policy (no redirects, size cap, status and type checked). */
void sts_fetch_probe(struct sts_fetcher *f, const char *domain, const char *addr, bool verify,
		     sts_fetch_probe_cb cb, void *arg);

/* HTTP requests started so far. */
unsigned long sts_fetch_requests(const struct sts_fetcher *f);

#endif
