/* sts_fetch.c: the HTTPS policy fetch (see include/mtasts/fetch.h).
 *
 * libcurl's multi interface in "multi_socket" style, driven by libuv: curl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> one uv_poll_t
 * per socket) and when it next needs a timeout (CURLMOPT_TIMERFUNCTION -> one
 * uv_timer_t); we hand readiness back with curl_multi_socket_action() and
 * collect finished transfers with curl_multi_info_read(). Nothing blocks and
 * no thread is started.
 *
 * Ownership: the fetcher owns the multi handle, its uv handles and every
 * request record; a request record owns its easy handle, its DNS share, its
 * curl lists and its body buffer. Callers own nothing they get from here: a
 * result is valid only while its callback runs.
 *
 * Lifetime: uv handles can only be freed after their close callbacks ran, so
 * sts_fetcher_free() starts the close and the memory goes when the loop has
 * run the last close callback. The caller must run the loop once more before
 * uv_loop_close() (uv_run(loop, UV_RUN_DEFAULT) returns when that is done).
 *
 * Callbacks always run from the loop, never inside sts_fetch_policy() or
 * sts_fetch_probe(), with two exceptions that have no record to queue: the
 * request record itself cannot be allocated, or the fetcher is already being
 * freed.
 *
 * A probe (sts_fetch_probe) is a policy request with a few more fields: it
 * goes through the same setup, callbacks and outcome. Its TLS details come
 * from OpenSSL callbacks installed on curl's SSL_CTX (CURLOPT_SSL_CTX_FUNCTION),
 * which is why this file includes OpenSSL's headers: a verify callback keeps
 * the leaf certificate even when verification then aborts the handshake,
 * and an info callback takes version, cipher and peer certificate when the
 * handshake completes (before curl's own host name check, so a name
 * mismatch still reports them). Both only read; they never change a verdict. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>
#include <uv.h>

#include <mtasts/buf.h>
#include <mtasts/fetch.h>
#include <mtasts/policy.h>
#include <mtasts/status.h>

#include "sts_x509.h"

#define FETCH_TIMEOUT_DEFAULT 30000u
#define FETCH_CONNECT_TIMEOUT 15000u     /* TCP + TLS; the whole request may take longer */
#define FETCH_USER_AGENT "mtasts/0.1"
#define FETCH_PATH "/.well-known/mta-sts.txt"
#define FETCH_HOST_PREFIX "mta-sts."
#define FETCH_DOMAIN_MAX (253 - (sizeof FETCH_HOST_PREFIX - 1))

struct sts_fetcher;

/* One polled socket. Freed in its close callback. */
struct sock_ctx {
	uv_poll_t poll;
	curl_socket_t fd;
	int events;                  /* UV_READABLE/UV_WRITABLE curl asked for */
	struct sts_fetcher *f;       /* borrowed */
	struct sock_ctx *prev, *next;
};

/* One policy request, from sts_fetch_policy() or sts_fetch_probe() to its
 * callback. */
struct fetch_req {
	struct sts_fetcher *f;       /* borrowed */
	struct fetch_req *prev, *next;
	CURL *easy;                  /* owned; NULL when setup failed early */
	CURLSH *share;               /* owned; private DNS cache, see req_setup */
	struct curl_slist *resolve;  /* owned */
	struct sts_buf body;         /* owned; ceiling STS_POLICY_MAX */
	sts_fetch_cb cb;             /* exactly one of cb and pcb is set */
	sts_fetch_probe_cb pcb;
	void *arg;
	bool verify;                 /* check chain and name (false only for a probe) */
	bool headers_done;           /* final header block seen and checked */
	bool aborted;                /* a callback stopped the transfer; res says why */
	unsigned timeout_ms;
	char host[256];              /* mta-sts.<domain> */
	char url[320];
	char peers[192];             /* "127.0.0.1:443, [::1]:443" for messages */
	char errbuf[CURL_ERROR_SIZE];
	struct sts_fetch_result res;
	/* probes only */
	uint64_t t0;                 /* uv_hrtime() at sts_fetch_probe */
	char addr[64];               /* copy of the address for p.addr */
	struct sts_fetch_probe p;    /* TLS details; p.r is filled from res at delivery */
};

struct sts_fetcher {
	uv_loop_t *loop;             /* borrowed */
	CURLM *multi;                /* owned */
	uv_timer_t curl_timer;       /* curl's one timeout */
	uv_timer_t defer_timer;      /* delivers requests that failed before curl saw them */
	char *ca_file;               /* owned copies of the options */
	char *proxy;
	unsigned timeout_ms;
	unsigned long requests;
	bool tls_details;            /* curl's TLS backend is our OpenSSL: probes can look */
	struct fetch_req *active;    /* in the multi handle */
	struct fetch_req *failed;    /* waiting for defer_timer */
	struct sock_ctx *socks;      /* sockets with an open uv_poll_t */
	unsigned open_handles;       /* uv handles not yet closed */
	unsigned dispatch_depth;     /* > 0 while user callbacks may be running */
	bool closing;                /* sts_fetcher_free() was called */
	bool teardown_pending;       /* ... from inside a callback; finish later */
};

/* ---- small helpers ---------------------------------------------------- */

static void
res_set(struct fetch_req *r, enum sts_fetch_error e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
res_set(struct fetch_req *r, enum sts_fetch_error e, const char *fmt, ...)
{
	va_list ap;
	r->res.error = e;
	va_start(ap, fmt);
	vsnprintf(r->res.message, sizeof r->res.message, fmt, ap);
	va_end(ap);
}


/* The curl error text, or curl's generic string when the buffer is empty. */
static const char *
curl_text(const struct fetch_req *r, CURLcode rc)
{
	return r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(rc);
}

/* "2 s" or "1.5 s". */
static void
format_seconds(char *dst, size_t dstsz, unsigned ms)
{
	if (ms % 1000 == 0)
		snprintf(dst, dstsz, "%u s", ms / 1000);
	else
		snprintf(dst, dstsz, "%u.%u s", ms / 1000, (ms % 1000) / 100);
}

/* An A-label host name of LDH labels: nothing in it can break the URL or
 * the CURLOPT_RESOLVE syntax (no ':', ',', '/', '@', spaces). */
static bool
domain_ok(const char *d)
{
	size_t n = strlen(d), label = 0;
	if (n == 0 || n > FETCH_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = d[i];
		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && label > 0))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && d[n - 1] != '-';
}

/* 0 for not an address, 4 or 6. Zone ids ("%eth0") are refused: a policy
 * host is never link-local, and '%' has no place in CURLOPT_RESOLVE. */
static int
addr_family(const char *a)
{
	unsigned char tmp[16];
	if (strchr(a, '%') != NULL)
		return 0;
	if (uv_inet_pton(AF_INET, a, tmp) == 0)
		return 4;
	if (uv_inet_pton(AF_INET6, a, tmp) == 0)
		return 6;
	return 0;
}

/* ---- request records -------------------------------------------------- */

static void
list_push(struct fetch_req **head, struct fetch_req *r)
{
	r->prev = NULL;
	r->next = *head;
	if (*head != NULL)
		(*head)->prev = r;
	*head = r;
}

static void
list_unlink(struct fetch_req **head, struct fetch_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (*head == r)
		*head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* Frees a request that is in no list and not in the multi handle. */
static void
req_free(struct fetch_req *r)
{
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	/* After the easy handle: a share in use cannot be cleaned up. */
	if (r->share != NULL)
		curl_share_cleanup(r->share);
	curl_slist_free_all(r->resolve);
	sts_buf_free(&r->body);
	free(r);
}

static void fetcher_teardown(struct sts_fetcher *f);

/* Runs the callback of a request taken off its list, then frees it. */
static void
req_deliver(struct fetch_req *r)
{
	struct sts_fetcher *f = r->f;
	if (r->res.error == STS_FETCH_OK) {
		r->res.body = sts_buf_cstr(&r->body);
		r->res.body_len = r->body.len;
	} else {
		r->res.body = NULL;
		r->res.body_len = 0;
	}
	f->dispatch_depth++;
	if (r->pcb != NULL) {
		r->p.r = r->res;
		r->p.addr = r->addr;
		r->p.verified = r->verify;
		r->p.seconds = (double)(uv_hrtime() - r->t0) / 1e9;
		r->pcb(r->arg, &r->p);
	} else {
		r->cb(r->arg, &r->res);
	}
	f->dispatch_depth--;
	req_free(r);
}

/* Called when a dispatch loop unwinds: a free requested from inside a
 * callback happens now that no curl or uv call of ours is on the stack. */
static void
fetcher_after_dispatch(struct sts_fetcher *f)
{
	if (f->dispatch_depth == 0 && f->teardown_pending)
		fetcher_teardown(f);
}

/* ---- curl callbacks --------------------------------------------------- */

/* Status, media type and announced length, in the order a reader expects
 * the reasons: a 404 page is a status problem even when it is large HTML.
 * Returns false when the transfer must stop (res set). */
static bool
check_headers(struct fetch_req *r)
{
	long status = 0;
	const char *ct = NULL;
	curl_off_t clen = -1;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
	r->headers_done = true;
	r->res.http_status = status;
	if (ct != NULL)
		sts_copy_printable(r->res.content_type, sizeof r->res.content_type, ct, strlen(ct));
	if (status >= 300 && status < 400 && r->res.location[0] != '\0') {
		res_set(r, STS_FETCH_REDIRECT,
			"HTTP %ld redirect to %s; redirects are not followed (RFC 8461 3.3)",
			status, r->res.location);
	} else if (status != 200) {
		res_set(r, STS_FETCH_HTTP_STATUS, "HTTP status %ld", status);
	} else if (!sts_media_type_ok(ct)) {
		if (ct == NULL)
			res_set(r, STS_FETCH_CONTENT_TYPE, "no content type; text/plain is required");
		else
			res_set(r, STS_FETCH_CONTENT_TYPE, "content type '%s' is not text/plain",
				r->res.content_type);
	} else if (clen > (curl_off_t)STS_POLICY_MAX) {
		res_set(r, STS_FETCH_TOO_LARGE, "body of %lld bytes exceeds the %d-byte limit",
			(long long)clen, STS_POLICY_MAX);
	} else {
		return true;
	}
	r->aborted = true;
	return false;
}

/* CURLOPT_HEADERFUNCTION: sees each header line, then the empty line that
 * ends the block; trailers after a chunked body come too and are ignored. */
static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
	struct fetch_req *r = ud;
	size_t len = size * n;
	if (r->headers_done)
		return len;
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx): forget the previous one's fields. */
		r->res.location[0] = '\0';
	} else if (len >= 9 && strncasecmp(p, "location:", 9) == 0) {
		sts_copy_printable(r->res.location, sizeof r->res.location, p + 9, len - 9);
	} else if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')) {
		long status = 0;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 100 && status < 200)
			return len;   /* interim response; the real one follows */
		if (!check_headers(r))
			return 0;     /* differs from len: curl stops with CURLE_WRITE_ERROR */
	}
	return len;
}

/* CURLOPT_WRITEFUNCTION: the body, into a buffer that refuses to grow past
 * STS_POLICY_MAX. This is the limit that holds when there is no
 * Content-Length (chunked or close-delimited), which CURLOPT_MAXFILESIZE in
 * curl 7.88 does not cover. */
static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct fetch_req *r = ud;
	size_t len = size * n;
	int rc = sts_buf_append(&r->body, p, len);
	if (rc == STS_OK)
		return len;
	if (rc == STS_ETOOBIG)
		res_set(r, STS_FETCH_TOO_LARGE, "body exceeds the %d-byte limit", STS_POLICY_MAX);
	else
		res_set(r, STS_FETCH_INTERNAL, "out of memory reading the body");
	r->aborted = true;
	return 0;
}

/* CURLOPT_RESOLVER_START_FUNCTION: curl only gets here when the host is not
 * in the DNS cache that CURLOPT_RESOLVE filled, i.e. it would resolve the
 * name itself. Refuse: every name goes through our own resolver. */
static int
on_resolver_start(void *resolver_state, void *reentry, void *ud)
{
	(void)resolver_state;
	(void)reentry;
	(void)ud;
	return 1;
}

/* ---- TLS details for probes ------------------------------------------- */

/* SSL_CTX ex_data slot holding the probe's request record. curl 7.88 makes
 * one SSL_CTX per connection and frees it when the connection closes, which
 * (CURLOPT_FORBID_REUSE) happens before the request record goes. */
static int probe_ctx_idx = -1;




/* Takes the leaf certificate's details, once per probe. */
static void
probe_take_cert(struct fetch_req *r, X509 *cert)
{
	struct sts_fetch_probe *p = &r->p;
	if (p->have_cert || cert == NULL)
		return;
	sts_x509_name_text(p->cert_subject, sizeof p->cert_subject, X509_get_subject_name(cert));
	sts_x509_name_text(p->cert_issuer, sizeof p->cert_issuer, X509_get_issuer_name(cert));
	sts_x509_dns_names(p->cert_sans, sizeof p->cert_sans, cert);
	if (!sts_x509_unix_time(X509_get0_notBefore(cert), &p->cert_not_before))
		p->cert_not_before = 0;
	if (!sts_x509_unix_time(X509_get0_notAfter(cert), &p->cert_not_after))
		p->cert_not_after = 0;
	p->have_cert = true;
}

static struct fetch_req *
probe_of_ssl(const SSL *ssl)
{
	if (ssl == NULL || probe_ctx_idx < 0)
		return NULL;
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), probe_ctx_idx);
}

/* Verify callback: OpenSSL calls it for every certificate of the chain and
 * every error, also when curl does not verify. The target certificate is the
 * leaf whatever depth failed. The verdict passes through unchanged. */
static int
on_tls_verify(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct fetch_req *r = probe_of_ssl(ssl);
	if (r != NULL)
		probe_take_cert(r, X509_STORE_CTX_get0_cert(xs));
	return preverify_ok;
}

/* Info callback: the handshake completed (with TLS 1.3 it also fires for
 * session tickets later; the values are the same). */
static void
on_tls_info(const SSL *ssl, int where, int ret)
{
	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_DONE))
		return;
	struct fetch_req *r = probe_of_ssl(ssl);
	if (r == NULL)
		return;
	const char *v = SSL_get_version(ssl);
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	const char *cn = c != NULL ? SSL_CIPHER_get_name(c) : NULL;
	sts_copy_printable(r->p.tls_version, sizeof r->p.tls_version, v ? v : "", v ? strlen(v) : 0);
	sts_copy_printable(r->p.cipher, sizeof r->p.cipher, cn ? cn : "", cn ? strlen(cn) : 0);
	/* A resumed session runs no verify callback; the peer is in the session. */
	probe_take_cert(r, SSL_get0_peer_certificate(ssl));
}

/* CURLOPT_SSL_CTX_FUNCTION: runs after curl set up its SSL_CTX (verify mode
 * included) and before it makes the SSL from it. Failing to attach only
 * costs the details, never the probe. */
static CURLcode
on_ssl_ctx(CURL *easy, void *sslctx, void *ud)
{
	SSL_CTX *ctx = sslctx;
	(void)easy;
	if (probe_ctx_idx < 0 || SSL_CTX_set_ex_data(ctx, probe_ctx_idx, ud) != 1)
		return CURLE_OK;
	SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), on_tls_verify);
	SSL_CTX_set_info_callback(ctx, on_tls_info);
	return CURLE_OK;
}

/* ---- outcome of a finished transfer ----------------------------------- */

/* Certificate failures: OpenSSL's verify code first (chain problems are
 * caught in the handshake), curl's text second. curl 7.88 presets the code
 * to 1 when a handshake starts and stores the real one only after its own
 * host name check, so a name mismatch or a failed handshake leaves 1. */
static bool
verify_known(long verify)
{
	return verify != X509_V_OK && verify != X509_V_ERR_UNSPECIFIED;
}

static enum sts_fetch_error
classify_cert(long verify, const char *text)
{
	switch (verify) {
	case X509_V_OK:
	case X509_V_ERR_UNSPECIFIED:
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return STS_FETCH_TLS_EXPIRED;
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return STS_FETCH_TLS_NAME;
	default:
		return STS_FETCH_TLS_UNTRUSTED;
	}
	if (strstr(text, "subject name") != NULL || strstr(text, "host name") != NULL)
		return STS_FETCH_TLS_NAME;
	if (strstr(text, "expired") != NULL || strstr(text, "not yet valid") != NULL)
		return STS_FETCH_TLS_EXPIRED;
	return STS_FETCH_TLS_UNTRUSTED;
}

static void
set_tls_error(struct fetch_req *r, enum sts_fetch_error e, const char *text)
{
	switch (e) {
	case STS_FETCH_TLS_EXPIRED:
		res_set(r, e, "certificate of %s is expired or not yet valid (%s)", r->host, text);
		break;
	case STS_FETCH_TLS_NAME:
		res_set(r, e, "certificate is not valid for %s (%s)", r->host, text);
		break;
	case STS_FETCH_TLS_UNTRUSTED:
		res_set(r, e, "certificate of %s does not chain to a trusted root (%s)", r->host,
			text);
		break;
	default:
		res_set(r, STS_FETCH_TLS_OTHER, "TLS handshake with %s failed (%s)", r->host, text);
		break;
	}
}

/* Fills r->res from curl's result code, unless a callback already did. */
static void
req_outcome(struct fetch_req *r, CURLcode rc)
{
	long status = 0, verify = 0, os_errno = 0;
	curl_off_t tls_done = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	r->res.http_status = status;
	if (r->aborted)
		return;
	const char *text = curl_text(r, rc);
	char secs[32];
	switch (rc) {
	case CURLE_OK:
		/* Headers are always checked on the way; this covers a response
		 * whose header block never ended in the callback. */
		if (!r->headers_done && !check_headers(r))
			return;
		res_set(r, STS_FETCH_OK, "policy fetched (%zu bytes)", r->body.len);
		return;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ECONNREFUSED)
			res_set(r, STS_FETCH_CONNECT, "connection to %s refused (%s)", r->peers, text);
		else if (os_errno != 0)
			res_set(r, STS_FETCH_CONNECT, "connection to %s failed: %s (%s)", r->peers,
				strerror((int)os_errno), text);
		else
			res_set(r, STS_FETCH_CONNECT, "connection to %s failed (%s)", r->peers, text);
		return;
	case CURLE_OPERATION_TIMEDOUT:
		format_seconds(secs, sizeof secs, r->timeout_ms);
		res_set(r, STS_FETCH_TIMEOUT, "no complete answer within %s from %s (%s)", secs,
			r->peers, text);
		return;
	case CURLE_PEER_FAILED_VERIFICATION:
		curl_easy_getinfo(r->easy, CURLINFO_SSL_VERIFYRESULT, &verify);
		set_tls_error(r, classify_cert(verify, text), text);
		return;
	case CURLE_SSL_CACERT_BADFILE:
		res_set(r, STS_FETCH_INTERNAL, "cannot load the trusted CA certificates (%s)", text);
		return;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
		/* A chain verdict can also surface here. */
		curl_easy_getinfo(r->easy, CURLINFO_SSL_VERIFYRESULT, &verify);
		set_tls_error(r, verify_known(verify) ? classify_cert(verify, text) : STS_FETCH_TLS_OTHER,
			      text);
		return;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		curl_easy_getinfo(r->easy, CURLINFO_APPCONNECT_TIME_T, &tls_done);
		if (tls_done == 0)   /* the peer went away inside the handshake */
			res_set(r, STS_FETCH_TLS_OTHER, "TLS handshake with %s failed (%s)", r->host,
				text);
		else
			res_set(r, STS_FETCH_CONNECT, "connection to %s broke off (%s)", r->peers, text);
		return;
	case CURLE_COULDNT_RESOLVE_HOST:
		res_set(r, STS_FETCH_INTERNAL, "curl tried to resolve %s itself (%s)", r->host, text);
		return;
	default:
		res_set(r, STS_FETCH_INTERNAL, "curl error %d (%s)", (int)rc, text);
		return;
	}
}

/* ---- libuv glue ------------------------------------------------------- */

static void
fetcher_handle_closed(struct sts_fetcher *f)
{
	if (--f->open_handles > 0 || !f->closing)
		return;
	free(f->ca_file);
	free(f->proxy);
	free(f);
}

static void
on_timer_closed(uv_handle_t *h)
{
	fetcher_handle_closed(h->data);
}

static void
on_poll_closed(uv_handle_t *h)
{
	struct sock_ctx *sc = h->data;
	struct sts_fetcher *f = sc->f;
	free(sc);
	fetcher_handle_closed(f);
}

static void
sock_close(struct sock_ctx *sc)
{
	struct sts_fetcher *f = sc->f;
	if (sc->prev != NULL)
		sc->prev->next = sc->next;
	else
		f->socks = sc->next;
	if (sc->next != NULL)
		sc->next->prev = sc->prev;
	sc->prev = sc->next = NULL;
	uv_close((uv_handle_t *)&sc->poll, on_poll_closed);
}

/* Delivers every finished transfer. */
static void
check_done(struct sts_fetcher *f)
{
	CURLMsg *m;
	int left;
	f->dispatch_depth++;
	while (!f->closing && (m = curl_multi_info_read(f->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *easy = m->easy_handle;
		CURLcode rc = m->data.result;   /* m is gone after remove_handle */
		char *priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		struct fetch_req *r = (struct fetch_req *)(void *)priv;
		req_outcome(r, rc);
		curl_multi_remove_handle(f->multi, easy);
		list_unlink(&f->active, r);
		req_deliver(r);
	}
	f->dispatch_depth--;
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
	struct sock_ctx *sc = h->data;
	struct sts_fetcher *f = sc->f;
	int flags = 0, running = 0;
	if (status < 0) {
		/* libuv turns POLLERR/POLLHUP into an error status and stops the
		 * handle. CURL_CSELECT_ERR would make curl 7.88 fail the whole
		 * transfer with "select/poll returned error", even when the
		 * socket was one losing happy-eyeballs attempt of several. Let
		 * curl read and write instead: it finds the real socket error
		 * (ECONNREFUSED: next address; ECONNRESET: a real failure). */
		flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
	} else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	curl_multi_socket_action(f->multi, sc->fd, flags, &running);
	/* Still wanted by curl after an error: watch it again (curl only
	 * calls the socket callback when its wishes change). */
	if (status < 0 && !uv_is_closing((uv_handle_t *)&sc->poll) && sc->events != 0)
		uv_poll_start(&sc->poll, sc->events, on_poll);
	check_done(f);
	fetcher_after_dispatch(f);
}

static void
on_curl_timeout(uv_timer_t *t)
{
	struct sts_fetcher *f = t->data;
	int running = 0;
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(f);
	fetcher_after_dispatch(f);
}

/* CURLMOPT_TIMERFUNCTION. A 0 ms timeout also goes through the timer: curl
 * must not be re-entered from inside its own callback. */
static int
on_curl_timer_set(CURLM *multi, long timeout_ms, void *ud)
{
	struct sts_fetcher *f = ud;
	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&f->curl_timer);
	else
		uv_timer_start(&f->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants to know about socket s. */
static int
on_curl_socket(CURL *easy, curl_socket_t s, int what, void *ud, void *sockp)
{
	struct sts_fetcher *f = ud;
	struct sock_ctx *sc = sockp;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		/* curl forgets sockp itself; it calls this before closing s. */
		if (sc != NULL)
			sock_close(sc);
		return 0;
	}
	if (sc == NULL) {
		sc = calloc(1, sizeof *sc);
		if (sc == NULL)
			return -1;
		if (uv_poll_init_socket(f->loop, &sc->poll, s) != 0) {
			free(sc);
			return -1;
		}
		sc->fd = s;
		sc->f = f;
		sc->poll.data = sc;
		sc->next = f->socks;
		if (f->socks != NULL)
			f->socks->prev = sc;
		f->socks = sc;
		f->open_handles++;
		curl_multi_assign(f->multi, s, sc);
	}
	int events = 0;
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	sc->events = events;
	return uv_poll_start(&sc->poll, events, on_poll) == 0 ? 0 : -1;
}

/* Delivers the requests that failed before reaching curl. */
static void
on_defer(uv_timer_t *t)
{
	struct sts_fetcher *f = t->data;
	struct fetch_req *batch = f->failed;
	f->failed = NULL;   /* requests failing inside these callbacks re-arm the timer */
	f->dispatch_depth++;
	while (batch != NULL && !f->closing) {
		struct fetch_req *r = batch;
		list_unlink(&batch, r);
		req_deliver(r);
	}
	/* Left over only when a callback freed the fetcher: teardown cancels them. */
	while (batch != NULL) {
		struct fetch_req *r = batch;
		list_unlink(&batch, r);
		list_push(&f->failed, r);
	}
	f->dispatch_depth--;
	fetcher_after_dispatch(f);
}

/* ---- public API ------------------------------------------------------- */

int
sts_fetcher_new(uv_loop_t *loop, const struct sts_fetch_opts *opts, struct sts_fetcher **out,
		char *err, size_t errsz)
{
	static bool curl_ready;   /* curl_global_init once; the library has no threads */
	struct sts_fetcher *f = NULL;
	int rc = STS_ENOMEM;
	*out = NULL;
	if (errsz > 0)
		err[0] = '\0';
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errsz, "curl_global_init failed");
			rc = STS_EIO;
			goto fail;
		}
		curl_ready = true;
	}
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	/* CURLOPT_PROTOCOLS_STR needs 7.85; a curl without TLS cannot fetch. */
	if (vi->version_num < 0x075500 || !(vi->features & CURL_VERSION_SSL)) {
		snprintf(err, errsz, "libcurl %s lacks TLS or is older than 7.85", vi->version);
		rc = STS_EINVAL;
		goto fail;
	}
	f = calloc(1, sizeof *f);
	if (f == NULL)
		goto nomem;
	f->loop = loop;
	/* Probes read curl's SSL objects as our OpenSSL's types: only when
	 * curl uses OpenSSL of the major version we were built against. */
	char want[32];
	snprintf(want, sizeof want, "OpenSSL/%d.", OPENSSL_VERSION_MAJOR);
	if (probe_ctx_idx < 0)
		probe_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	f->tls_details = vi->ssl_version != NULL && probe_ctx_idx >= 0 &&
			 strncmp(vi->ssl_version, want, strlen(want)) == 0;
	f->timeout_ms = opts != NULL && opts->timeout_ms > 0 ? opts->timeout_ms
							      : FETCH_TIMEOUT_DEFAULT;
	if (opts != NULL && opts->ca_file != NULL && (f->ca_file = strdup(opts->ca_file)) == NULL)
		goto nomem;
	if (opts != NULL && opts->proxy != NULL && (f->proxy = strdup(opts->proxy)) == NULL)
		goto nomem;
	f->multi = curl_multi_init();
	if (f->multi == NULL)
		goto nomem;
	if (curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer_set) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK) {
		snprintf(err, errsz, "curl_multi_setopt failed");
		rc = STS_EIO;
		goto fail;
	}
	/* Timer init cannot fail on a live loop; it comes last because a
	 * handle, once initialised, can only go away through uv_close. */
	uv_timer_init(loop, &f->curl_timer);
	uv_timer_init(loop, &f->defer_timer);
	f->curl_timer.data = f;
	f->defer_timer.data = f;
	f->open_handles = 2;
	*out = f;
	return STS_OK;
nomem:
	snprintf(err, errsz, "out of memory");
	rc = STS_ENOMEM;
fail:
	if (f != NULL) {
		if (f->multi != NULL)
			curl_multi_cleanup(f->multi);
		free(f->ca_file);
		free(f->proxy);
		free(f);
	}
	return rc;
}

/* Everything curl needs for one request. On failure r->res says why. */
static bool
req_setup(struct fetch_req *r, const char *domain, const char *const *addrs, size_t n_addrs)
{
	struct sts_fetcher *f = r->f;
	struct sts_buf resolve;
	bool ok = false;
	sts_buf_init(&resolve, 8192);
	if (domain == NULL || !domain_ok(domain)) {
		res_set(r, STS_FETCH_INTERNAL, "invalid policy domain");
		goto done;
	}
	snprintf(r->host, sizeof r->host, FETCH_HOST_PREFIX "%s", domain);
	snprintf(r->url, sizeof r->url, "https://%s" FETCH_PATH, r->host);
	if (n_addrs == 0 || addrs == NULL) {
		res_set(r, STS_FETCH_NO_ADDRESS, "no address for %s", r->host);
		goto done;
	}
	/* "mta-sts.<domain>:443:192.0.2.1,[2001:db8::1]" */
	if (sts_buf_printf(&resolve, "%s:443:", r->host) != STS_OK)
		goto toolong;
	size_t po = 0;
	for (size_t i = 0; i < n_addrs; i++) {
		int fam = addrs[i] != NULL ? addr_family(addrs[i]) : 0;
		if (fam == 0) {
			res_set(r, STS_FETCH_INTERNAL, "invalid address for %s", r->host);
			goto done;
		}
		const char *lb = fam == 6 ? "[" : "", *rb = fam == 6 ? "]" : "";
		if (sts_buf_printf(&resolve, "%s%s%s%s", i ? "," : "", lb, addrs[i], rb) != STS_OK)
			goto toolong;
		if (po < sizeof r->peers)
			po += (size_t)snprintf(r->peers + po, sizeof r->peers - po, "%s%s%s%s:443",
					       i ? ", " : "", lb, addrs[i], rb);
	}
	r->resolve = curl_slist_append(NULL, sts_buf_cstr(&resolve));
	/* A private DNS cache per request: CURLOPT_RESOLVE entries are
	 * permanent, and in the multi handle's shared cache they would pile
	 * up for every domain ever fetched. */
	r->share = curl_share_init();
	r->easy = curl_easy_init();
	if (r->resolve == NULL || r->share == NULL || r->easy == NULL ||
	    curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
		res_set(r, STS_FETCH_INTERNAL, "out of memory setting up the request");
		goto done;
	}
	CURL *e = r->easy;
	CURLcode c = CURLE_OK;
	/* Stops at the first failing option; c says which kind. */
#define SET(opt, val) \
	do { if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);                       /* rule 31 */
	SET(CURLOPT_HTTPGET, 1L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2); /* rule 61: minimum */
	/* rule 25; name = URL host = SNI, rule 57. Off only for a probe asked
	 * not to verify. */
	SET(CURLOPT_SSL_VERIFYPEER, r->verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, r->verify ? 2L : 0L);
	if (r->pcb != NULL && f->tls_details) {
		SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		SET(CURLOPT_SSL_CTX_DATA, (void *)r);
	}
	if (f->ca_file != NULL) {
		SET(CURLOPT_CAINFO, f->ca_file);
		/* The file is the whole trust store; without this Debian's
		 * default CA directory would still be consulted. */
		SET(CURLOPT_CAPATH, (char *)NULL);
	}
	/* "" ignores the *_proxy environment. Through a configured proxy the
	 * proxy resolves the name (CONNECT), so CURLOPT_RESOLVE does not
	 * apply and curl must be free to resolve the proxy's own name. */
	SET(CURLOPT_PROXY, f->proxy != NULL ? f->proxy : "");
	if (f->proxy == NULL)
		SET(CURLOPT_RESOLVER_START_FUNCTION, on_resolver_start);
	else
		/* The proxy's "200 Connection established" is not the policy
		 * host's answer: on_header must see only the latter. */
		SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	SET(CURLOPT_RESOLVE, r->resolve);
	SET(CURLOPT_SHARE, r->share);
	SET(CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(f->timeout_ms < FETCH_CONNECT_TIMEOUT ? f->timeout_ms : FETCH_CONNECT_TIMEOUT));
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_USERAGENT, FETCH_USER_AGENT);
	/* Each fetch on a fresh connection to the addresses given now; no
	 * connection outlives its request. */
	SET(CURLOPT_FORBID_REUSE, 1L);
	SET(CURLOPT_FRESH_CONNECT, 1L);
	SET(CURLOPT_ERRORBUFFER, r->errbuf);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_PRIVATE, (void *)r);
#undef SET
	if (c != CURLE_OK) {
		res_set(r, STS_FETCH_INTERNAL, "curl setup failed: %s", curl_easy_strerror(c));
		goto done;
	}
	r->timeout_ms = f->timeout_ms;
	ok = true;
	goto done;
toolong:
	res_set(r, STS_FETCH_INTERNAL, "too many addresses for %s", r->host);
done:
	sts_buf_free(&resolve);
	return ok;
}

/* Hands a filled-in record to curl, or queues its failure for the loop. */
static void
req_start(struct fetch_req *r, const char *domain, const char *const *addrs, size_t n_addrs)
{
	struct sts_fetcher *f = r->f;
	sts_buf_init(&r->body, STS_POLICY_MAX);
	if (req_setup(r, domain, addrs, n_addrs)) {
		CURLMcode mc = curl_multi_add_handle(f->multi, r->easy);
		if (mc == CURLM_OK) {
			list_push(&f->active, r);
			f->requests++;
			return;
		}
		res_set(r, STS_FETCH_INTERNAL, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
	}
	list_push(&f->failed, r);
	uv_timer_start(&f->defer_timer, on_defer, 0, 0);
}

void
sts_fetch_policy(struct sts_fetcher *f, const char *domain, const char *const *addrs,
		 size_t n_addrs, sts_fetch_cb cb, void *arg)
{
	struct fetch_req *r = calloc(1, sizeof *r);
	if (r == NULL || f->closing) {
		/* No record to queue, or no loop handle left to queue it on. */
		struct sts_fetch_result res;
		memset(&res, 0, sizeof res);
		res.error = STS_FETCH_INTERNAL;
		snprintf(res.message, sizeof res.message, "%s",
			 r == NULL ? "out of memory" : "cancelled");
		free(r);
		cb(arg, &res);
		return;
	}
	r->f = f;
	r->cb = cb;
	r->arg = arg;
	r->verify = true;
	req_start(r, domain, addrs, n_addrs);
}

void
sts_fetch_probe(struct sts_fetcher *f, const char *domain, const char *addr, bool verify,
		sts_fetch_probe_cb cb, void *arg)
{
	uint64_t t0 = uv_hrtime();
	struct fetch_req *r = calloc(1, sizeof *r);
	if (r == NULL || f->closing) {
		/* As in sts_fetch_policy; the address is the caller's, valid
		 * for the duration of this call. */
		struct sts_fetch_probe p;
		memset(&p, 0, sizeof p);
		p.r.error = STS_FETCH_INTERNAL;
		snprintf(p.r.message, sizeof p.r.message, "%s",
			 r == NULL ? "out of memory" : "cancelled");
		p.addr = addr != NULL ? addr : "";
		p.verified = verify;
		free(r);
		cb(arg, &p);
		return;
	}
	r->f = f;
	r->pcb = cb;
	r->arg = arg;
	r->verify = verify;
	r->t0 = t0;
	/* Too long to be an address: req_setup refuses it from the original. */
	if (addr != NULL)
		sts_copy_printable(r->addr, sizeof r->addr, addr, strlen(addr));
	req_start(r, domain, addr != NULL ? &addr : NULL, addr != NULL ? 1 : 0);
}

unsigned long
sts_fetch_requests(const struct sts_fetcher *f)
{
	return f->requests;
}

/* Cancels everything, cleans curl up and starts closing the uv handles; the
 * memory goes in the last close callback. */
static void
fetcher_teardown(struct sts_fetcher *f)
{
	struct fetch_req *r;
	f->teardown_pending = false;
	uv_timer_stop(&f->curl_timer);
	uv_timer_stop(&f->defer_timer);
	f->dispatch_depth++;   /* a callback calling sts_fetcher_free again is a no-op */
	while ((r = f->active) != NULL) {
		list_unlink(&f->active, r);
		curl_multi_remove_handle(f->multi, r->easy);
		res_set(r, STS_FETCH_INTERNAL, "cancelled");
		req_deliver(r);
	}
	while ((r = f->failed) != NULL) {
		list_unlink(&f->failed, r);
		res_set(r, STS_FETCH_INTERNAL, "cancelled");
		req_deliver(r);
	}
	f->dispatch_depth--;
	curl_multi_cleanup(f->multi);
	f->multi = NULL;
	/* Sockets curl did not report as removed (it normally does). */
	while (f->socks != NULL)
		sock_close(f->socks);
	uv_close((uv_handle_t *)&f->curl_timer, on_timer_closed);
	uv_close((uv_handle_t *)&f->defer_timer, on_timer_closed);
}

void
sts_fetcher_free(struct sts_fetcher **pf)
{
	if (pf == NULL || *pf == NULL)
		return;
	struct sts_fetcher *f = *pf;
	*pf = NULL;
	if (f->closing)
		return;
	f->closing = true;
	if (f->dispatch_depth > 0) {
		/* Inside one of our callbacks: curl and our loops are on the
		 * stack. Finish when they unwind (fetcher_after_dispatch). */
		f->teardown_pending = true;
		return;
	}
	fetcher_teardown(f);
}
