/* sts_smtp.c: the SMTP STARTTLS probe (see include/mtasts/smtp.h).
 *
 * One probe is one TCP connection on the libuv loop, moved along by its
 * stage:
 *
 *   CONNECT -> BANNER (220) -> EHLO (250, STARTTLS keyword) -> STARTTLS (220)
 *           -> HANDSHAKE (OpenSSL over two memory BIOs) -> callback
 *           -> QUIT (best effort, inside TLS when there is TLS) -> close
 *
 * Plaintext replies are collected in a bounded buffer (SMTP_REPLY_MAX for
 * one whole reply, all its lines): a server that never ends a line or a
 * reply costs us 16 KiB, then the probe fails with STS_SMTP_PROTOCOL. TLS
 * bytes go straight from the read callback into the read BIO and are
 * consumed by the next SSL call, so that side holds at most one read.
 *
 * TLS: the handshake itself runs with SSL_VERIFY_NONE so that the details
 * of a bad certificate are always available; the certificate is judged
 * afterwards with X509_verify_cert() against the prober's trust store (the
 * CA file, else OpenSSL's default paths, loaded once per prober), with the
 * peer's chain as untrusted intermediates, the "ssl_server" purpose, and
 * the MX host name as the reference identity: DNS-ID only (no CN fallback,
 * RFC 8461 section 4.2), no partial wildcards. TLS >= 1.2 (rule 61), SNI is
 * the MX host name (rules 56, 58).
 *
 * When a certificate has several faults, one is reported, in this order:
 *   1. untrusted: the chain does not verify for any reason other than time
 *      and name (no path to a trusted root, bad signature, self-signed,
 *      wrong purpose...). Nothing else about an untrusted certificate
 *      means anything, so this wins.
 *   2. expired (or not yet valid), for any certificate of the chain.
 *   3. name: no DNS-ID of the leaf matches the MX host.
 * OpenSSL itself would stop at the first fault it meets, which puts the
 * name check before the time check; a verify callback that notes every
 * fault and lets verification go on gives us our own order.
 *
 * Timeouts: one timer per probe covers the whole exchange up to the
 * callback; its message names the stage it caught ("no banner within
 * 15 s"). After the callback the same timer bounds the QUIT (SMTP_LINGER_MS).
 *
 * Ownership and lifetime: the prober owns every probe record; a record
 * owns its two uv handles (TCP and timer), its SSL (which owns the BIOs),
 * its reply buffer and its strings. Records leave the prober's list only
 * in the close callback of their last handle, and a prober that was freed
 * goes with its last record, so the loop must run once more after
 * sts_smtp_prober_free(). Callbacks run from the loop, with two exceptions
 * that have no record to queue: the record cannot be allocated, or the
 * prober is being freed; sts_smtp_prober_free() runs the callbacks of the
 * probes it cancels itself. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include <mtasts/buf.h>
#include <mtasts/smtp.h>
#include <mtasts/status.h>

#include "sts_smtp_reply.h"
#include "sts_x509.h"

#define SMTP_TIMEOUT_DEFAULT 15000u
#define SMTP_PORT_DEFAULT 25u
#define SMTP_HELO_DEFAULT "mta-sts-check.invalid"
#define SMTP_REPLY_MAX 16384u    /* one reply, every line of it */
#define SMTP_READ_CHUNK 16384u
#define SMTP_LINGER_MS 1000u     /* QUIT after the callback */
#define SMTP_HELO_MAX 255u

enum stage {
	ST_CONNECT,
	ST_BANNER,
	ST_EHLO,
	ST_STARTTLS,
	ST_HANDSHAKE,
	ST_QUIT,      /* result delivered; QUIT sent, waiting for 221 or EOF */
};

enum after {
	AFTER_CLOSE,  /* close right after the callback */
	AFTER_QUIT,   /* send QUIT (in TLS when there is TLS), then close */
};

struct probe;

struct sts_smtp_prober {
	uv_loop_t *loop;
	SSL_CTX *ctx;                /* owned; holds the trust store */
	char *helo;                  /* owned */
	unsigned timeout_ms;
	unsigned port;
	struct probe *probes;        /* every record whose handles are not closed */
	bool freeing;                /* sts_smtp_prober_free() was called */
};

struct probe {
	struct sts_smtp_prober *p;   /* borrowed; outlives the record */
	struct probe *prev, *next;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect;
	int open_handles;
	enum stage stage;
	bool deferred;               /* res is set; the timer delivers it */
	bool delivered;              /* the callback ran */
	bool closing;                /* uv_close called */
	bool tls;                    /* bytes now go through ssl */
	sts_smtp_cb cb;
	void *arg;
	char *host;                  /* owned; as given */
	char *sni;                   /* owned; host without a final dot */
	char *addr;                  /* owned */
	struct sts_buf reply;        /* owned; plaintext reply being read */
	SSL *ssl;                    /* owned; owns rbio and wbio */
	BIO *rbio, *wbio;            /* network -> SSL, SSL -> network */
	uint64_t t0;
	struct sts_smtp_result res;
	char rbuf[SMTP_READ_CHUNK];
};

/* One queued write: the bytes live with the request until its callback. */
struct wreq {
	uv_write_t req;
	struct probe *q;
	const char *what;            /* "EHLO", "STARTTLS", "TLS handshake", "QUIT" */
	size_t len;
	char data[];
};

/* ---- names -------------------------------------------------------------- */

const char *
sts_smtp_error_code(enum sts_smtp_error e)
{
	switch (e) {
	case STS_SMTP_OK: return "ok";
	case STS_SMTP_CONNECT: return "smtp.connect";
	case STS_SMTP_TIMEOUT: return "smtp.timeout";
	case STS_SMTP_PROTOCOL: return "smtp.protocol";
	case STS_SMTP_NO_STARTTLS: return "smtp.starttls.missing";
	case STS_SMTP_STARTTLS_REFUSED: return "smtp.starttls.refused";
	case STS_SMTP_TLS: return "smtp.tls.handshake";
	case STS_SMTP_INTERNAL: return "smtp.internal";
	}
	return "smtp.internal";
}

const char *
sts_smtp_cert_name(enum sts_smtp_cert c)
{
	switch (c) {
	case STS_SMTP_CERT_NONE: return "none";
	case STS_SMTP_CERT_VALID: return "valid";
	case STS_SMTP_CERT_UNTRUSTED: return "untrusted";
	case STS_SMTP_CERT_EXPIRED: return "expired";
	case STS_SMTP_CERT_NAME: return "host-mismatch";
	}
	return "none";
}

/* What the probe waits for, for messages: "no %s within 15 s". */
static const char *
stage_wait(enum stage s)
{
	switch (s) {
	case ST_CONNECT: return "TCP connection";
	case ST_BANNER: return "banner";
	case ST_EHLO: return "EHLO reply";
	case ST_STARTTLS: return "STARTTLS reply";
	case ST_HANDSHAKE: return "TLS handshake";
	case ST_QUIT: return "QUIT reply";
	}
	return "reply";
}

/* ---- small helpers (the same conventions as sts_fetch.c) ---------------- */


/* "2 s" or "1.5 s". */
static void
format_seconds(char *dst, size_t dstsz, unsigned ms)
{
	if (ms % 1000 == 0)
		snprintf(dst, dstsz, "%u s", ms / 1000);
	else
		snprintf(dst, dstsz, "%u.%u s", ms / 1000, (ms % 1000) / 100);
}




/* The most telling OpenSSL error of a failed call, then the queue cleared:
 * the queue is per thread, shared by every probe on the loop. */
static void
tls_error_text(char *dst, size_t dstsz, int ssl_err)
{
	unsigned long e = ERR_peek_error();
	if (e != 0) {
		const char *reason = ERR_reason_error_string(e);
		if (reason != NULL) {
			snprintf(dst, dstsz, "%s", reason);
		} else {
			/* "error:80000002:system library::No such file or
			 * directory": the part after the last colon. */
			char full[256];
			ERR_error_string_n(e, full, sizeof full);
			const char *tail = strrchr(full, ':');
			snprintf(dst, dstsz, "%s", tail != NULL && tail[1] != '\0' ? tail + 1 : full);
		}
	} else if (ssl_err == SSL_ERROR_ZERO_RETURN) {
		snprintf(dst, dstsz, "server closed the TLS session");
	} else {
		snprintf(dst, dstsz, "OpenSSL error %d", ssl_err);
	}
	ERR_clear_error();
}

/* A host name is an IP literal when it parses as one: no SNI then. */
static bool
is_ip_literal(const char *s)
{
	unsigned char tmp[16];
	return uv_inet_pton(AF_INET, s, tmp) == 0 || uv_inet_pton(AF_INET6, s, tmp) == 0;
}

/* ---- records and delivery ------------------------------------------------ */

static void prober_destroy(struct sts_smtp_prober *p);

static void
record_free(struct probe *q)
{
	struct sts_smtp_prober *p = q->p;
	if (q->prev != NULL)
		q->prev->next = q->next;
	else if (p->probes == q)
		p->probes = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	SSL_free(q->ssl);
	sts_buf_free(&q->reply);
	free(q->host);
	free(q->sni);
	free(q->addr);
	free(q);
	if (p->freeing && p->probes == NULL)
		prober_destroy(p);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct probe *q = h->data;
	if (--q->open_handles == 0)
		record_free(q);
}

static void
probe_close(struct probe *q)
{
	if (q->closing)
		return;
	q->closing = true;
	uv_timer_stop(&q->timer);
	uv_close((uv_handle_t *)&q->timer, on_handle_closed);
	uv_close((uv_handle_t *)&q->tcp, on_handle_closed);
}

static int send_quit(struct probe *q);
static void on_timer(uv_timer_t *t);

/* Runs the callback with q->res as it stands, then either closes or sends
 * QUIT and lingers for its answer. */
static void
deliver(struct probe *q, enum after how)
{
	if (q->delivered || q->closing)
		return;
	q->delivered = true;
	q->deferred = false;
	uv_timer_stop(&q->timer);
	q->res.host = q->host != NULL ? q->host : "";
	q->res.addr = q->addr != NULL ? q->addr : "";
	q->res.seconds = (double)(uv_hrtime() - q->t0) / 1e9;
	q->cb(q->arg, &q->res);
	/* The callback may have freed the prober, which closed us. */
	if (q->closing)
		return;
	if (how == AFTER_QUIT && !q->p->freeing && send_quit(q) == 0) {
		q->stage = ST_QUIT;
		uv_timer_start(&q->timer, on_timer, SMTP_LINGER_MS, 0);
		return;
	}
	probe_close(q);
}

static void
finish(struct probe *q, enum after how, enum sts_smtp_error e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
finish(struct probe *q, enum after how, enum sts_smtp_error e, const char *fmt, ...)
{
	va_list ap;
	if (q->delivered || q->closing)
		return;
	q->res.error = e;
	va_start(ap, fmt);
	vsnprintf(q->res.message, sizeof q->res.message, fmt, ap);
	va_end(ap);
	deliver(q, how);
}

/* An error found before any I/O: delivered from the loop by the timer. */
static void
defer(struct probe *q, enum sts_smtp_error e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
defer(struct probe *q, enum sts_smtp_error e, const char *fmt, ...)
{
	va_list ap;
	q->res.error = e;
	va_start(ap, fmt);
	vsnprintf(q->res.message, sizeof q->res.message, fmt, ap);
	va_end(ap);
	q->deferred = true;
	uv_timer_start(&q->timer, on_timer, 0, 0);
}

/* The whole-probe timeout, a deferred error, or the end of the QUIT grace. */
static void
on_timer(uv_timer_t *t)
{
	struct probe *q = t->data;
	if (q->closing)
		return;
	if (q->deferred) {
		deliver(q, AFTER_CLOSE);
		return;
	}
	if (q->delivered) {
		probe_close(q);
		return;
	}
	char secs[32];
	format_seconds(secs, sizeof secs, q->p->timeout_ms);
	if (q->stage == ST_CONNECT)
		finish(q, AFTER_CLOSE, STS_SMTP_TIMEOUT, "no TCP connection to %s port %u within %s",
		       q->addr, q->p->port, secs);
	else if (q->stage == ST_HANDSHAKE)
		finish(q, AFTER_CLOSE, STS_SMTP_TIMEOUT, "TLS handshake not finished within %s",
		       secs);
	else
		finish(q, AFTER_CLOSE, STS_SMTP_TIMEOUT, "no %s within %s", stage_wait(q->stage),
		       secs);
}

/* ---- writing -------------------------------------------------------------- */

static void
on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct probe *q = w->q;
	const char *what = w->what;
	free(w);
	if (status >= 0 || status == UV_ECANCELED || q->closing)
		return;
	if (q->delivered)
		probe_close(q);
	else
		finish(q, AFTER_CLOSE, STS_SMTP_CONNECT, "sending %s to %s: %s", what, q->addr,
		       uv_strerror(status));
}

/* Queues n bytes; 0 or a libuv error (nothing queued then). */
static int
send_bytes(struct probe *q, const char *what, const void *data, size_t n)
{
	struct wreq *w = malloc(sizeof *w + n);
	if (w == NULL)
		return UV_ENOMEM;
	w->q = q;
	w->what = what;
	w->len = n;
	memcpy(w->data, data, n);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
	int rc = uv_write(&w->req, (uv_stream_t *)&q->tcp, &b, 1, on_write);
	if (rc < 0)
		free(w);
	return rc;
}

/* Sends a plaintext command line; on failure the probe is finished. */
static bool
send_command(struct probe *q, const char *what, const char *line)
{
	int rc = send_bytes(q, what, line, strlen(line));
	if (rc < 0) {
		finish(q, AFTER_CLOSE, rc == UV_ENOMEM ? STS_SMTP_INTERNAL : STS_SMTP_CONNECT,
		       "sending %s to %s: %s", what, q->addr, uv_strerror(rc));
		return false;
	}
	return true;
}

/* Sends what OpenSSL wrote into the write BIO. 0 or a libuv error. */
static int
flush_tls(struct probe *q, const char *what)
{
	size_t n = BIO_ctrl_pending(q->wbio);
	if (n == 0)
		return 0;
	struct wreq *w = malloc(sizeof *w + n);
	if (w == NULL)
		return UV_ENOMEM;
	int got = BIO_read(q->wbio, w->data, (int)n);
	if (got <= 0 || (size_t)got != n) {
		free(w);
		return UV_EIO;
	}
	w->q = q;
	w->what = what;
	w->len = n;
	uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
	int rc = uv_write(&w->req, (uv_stream_t *)&q->tcp, &b, 1, on_write);
	if (rc < 0)
		free(w);
	return rc;
}

/* QUIT after the result: plaintext, or inside TLS. 0 when it was sent. */
static int
send_quit(struct probe *q)
{
	static const char quit[] = "QUIT\r\n";
	if (!q->tls)
		return send_bytes(q, "QUIT", quit, sizeof quit - 1);
	ERR_clear_error();
	if (SSL_write(q->ssl, quit, (int)(sizeof quit - 1)) != (int)(sizeof quit - 1)) {
		ERR_clear_error();
		return -1;
	}
	return flush_tls(q, "QUIT");
}

/* ---- the certificate ------------------------------------------------------- */

/* Faults seen while verifying, the first of each kind. */
struct verify_faults {
	int other;    /* anything that makes the chain untrusted */
	int time;     /* expired or not yet valid */
	int name;     /* host name mismatch */
};

static int
on_verify(int ok, X509_STORE_CTX *xs)
{
	struct verify_faults *f = X509_STORE_CTX_get_app_data(xs);
	if (ok || f == NULL)
		return ok;
	int e = X509_STORE_CTX_get_error(xs);
	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		if (f->time == 0)
			f->time = e;
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
		if (f->name == 0)
			f->name = e;
		break;
	default:
		if (f->other == 0)
			f->other = e;
		break;
	}
	return 1;   /* go on: we want every fault, then pick (see the top) */
}

/* Fills the certificate fields of q->res from the peer's leaf and chain. */
static void
check_cert(struct probe *q)
{
	struct sts_smtp_result *r = &q->res;
	X509 *leaf = SSL_get0_peer_certificate(q->ssl);
	if (leaf == NULL) {
		r->cert = STS_SMTP_CERT_NONE;
		snprintf(r->cert_message, sizeof r->cert_message, "server sent no certificate");
		return;
	}
	sts_x509_name_text(r->cert_subject, sizeof r->cert_subject, X509_get_subject_name(leaf));
	sts_x509_name_text(r->cert_issuer, sizeof r->cert_issuer, X509_get_issuer_name(leaf));
	sts_x509_dns_names(r->cert_sans, sizeof r->cert_sans, leaf);
	if (!sts_x509_unix_time(X509_get0_notBefore(leaf), &r->cert_not_before))
		r->cert_not_before = 0;
	if (!sts_x509_unix_time(X509_get0_notAfter(leaf), &r->cert_not_after))
		r->cert_not_after = 0;

	struct verify_faults f = { 0, 0, 0 };
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	if (xs == NULL ||
	    X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(q->p->ctx), leaf,
				SSL_get_peer_cert_chain(q->ssl)) != 1 ||
	    X509_STORE_CTX_set_default(xs, "ssl_server") != 1) {
		X509_STORE_CTX_free(xs);
		ERR_clear_error();
		r->cert = STS_SMTP_CERT_UNTRUSTED;
		snprintf(r->cert_message, sizeof r->cert_message,
			 "certificate could not be verified (out of memory)");
		return;
	}
	X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(xs);
	/* RFC 8461 section 4.2: a DNS-ID must match; the CN does not count. */
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
					    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	X509_VERIFY_PARAM_set1_host(vp, q->sni, 0);
	X509_STORE_CTX_set_app_data(xs, &f);
	X509_STORE_CTX_set_verify_cb(xs, on_verify);
	int ok = X509_verify_cert(xs);
	int last = X509_STORE_CTX_get_error(xs);
	X509_STORE_CTX_free(xs);
	ERR_clear_error();
	if (ok < 0 && f.other == 0)
		f.other = last != X509_V_OK ? last : X509_V_ERR_UNSPECIFIED;
	if (f.other != 0) {
		r->cert = STS_SMTP_CERT_UNTRUSTED;
		snprintf(r->cert_message, sizeof r->cert_message, "%s",
			 X509_verify_cert_error_string(f.other));
	} else if (f.time != 0) {
		r->cert = STS_SMTP_CERT_EXPIRED;
		snprintf(r->cert_message, sizeof r->cert_message, "%s",
			 X509_verify_cert_error_string(f.time));
	} else if (f.name != 0) {
		r->cert = STS_SMTP_CERT_NAME;
		snprintf(r->cert_message, sizeof r->cert_message, "%s (no DNS name matches %s)",
			 X509_verify_cert_error_string(f.name), q->sni);
	} else {
		r->cert = STS_SMTP_CERT_VALID;
		r->cert_message[0] = '\0';
	}
}

/* ---- TLS -------------------------------------------------------------- */

static void
tls_done(struct probe *q)
{
	struct sts_smtp_result *r = &q->res;
	const char *v = SSL_get_version(q->ssl);
	const char *c = SSL_get_cipher_name(q->ssl);
	sts_copy_printable(r->tls_version, sizeof r->tls_version, v ? v : "", v ? strlen(v) : 0);
	sts_copy_printable(r->cipher, sizeof r->cipher, c ? c : "", c ? strlen(c) : 0);
	check_cert(q);
	if (r->cert == STS_SMTP_CERT_VALID)
		finish(q, AFTER_QUIT, STS_SMTP_OK, "%s with %s; certificate valid for %s",
		       r->tls_version, r->cipher, q->sni);
	else
		finish(q, AFTER_QUIT, STS_SMTP_OK, "%s with %s; certificate %s: %s",
		       r->tls_version, r->cipher, sts_smtp_cert_name(r->cert), r->cert_message);
}

/* Drives the handshake as far as the bytes in the read BIO allow. */
static void
tls_step(struct probe *q)
{
	ERR_clear_error();
	int rc = SSL_do_handshake(q->ssl);
	int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(q->ssl, rc);
	char text[160] = "";
	if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ)
		tls_error_text(text, sizeof text, err);
	/* ClientHello, Finished, or our alert: always on its way. */
	int wrc = flush_tls(q, "TLS handshake");
	if (err == SSL_ERROR_NONE && wrc == 0) {
		tls_done(q);
	} else if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ) {
		finish(q, AFTER_CLOSE, STS_SMTP_TLS, "TLS handshake with %s failed: %s", q->sni,
		       text);
	} else if (wrc < 0) {
		finish(q, AFTER_CLOSE, wrc == UV_ENOMEM ? STS_SMTP_INTERNAL : STS_SMTP_CONNECT,
		       "sending the TLS handshake to %s: %s", q->addr, uv_strerror(wrc));
	}
}

static void
tls_start(struct probe *q)
{
	q->stage = ST_HANDSHAKE;
	q->tls = true;
	ERR_clear_error();
	q->ssl = SSL_new(q->p->ctx);
	q->rbio = BIO_new(BIO_s_mem());
	q->wbio = BIO_new(BIO_s_mem());
	if (q->ssl == NULL || q->rbio == NULL || q->wbio == NULL) {
		BIO_free(q->rbio);
		BIO_free(q->wbio);
		q->rbio = q->wbio = NULL;
		ERR_clear_error();
		finish(q, AFTER_CLOSE, STS_SMTP_INTERNAL, "cannot set up TLS: out of memory");
		return;
	}
	/* An empty read BIO means "wait for more", not end of stream. */
	BIO_set_mem_eof_return(q->rbio, -1);
	BIO_set_mem_eof_return(q->wbio, -1);
	SSL_set_bio(q->ssl, q->rbio, q->wbio);   /* the SSL owns both now */
	SSL_set_connect_state(q->ssl);
	if (!is_ip_literal(q->sni) && SSL_set_tlsext_host_name(q->ssl, q->sni) != 1) {
		ERR_clear_error();
		finish(q, AFTER_CLOSE, STS_SMTP_INTERNAL, "cannot use %s for SNI", q->sni);
		return;
	}
	tls_step(q);
}

/* Bytes from the network while TLS is on. */
static void
tls_input(struct probe *q, const char *data, size_t n)
{
	if (BIO_write(q->rbio, data, (int)n) != (int)n) {
		ERR_clear_error();
		if (q->delivered)
			probe_close(q);
		else
			finish(q, AFTER_CLOSE, STS_SMTP_INTERNAL, "TLS input: out of memory");
		return;
	}
	if (q->stage == ST_HANDSHAKE) {
		tls_step(q);
		return;
	}
	/* ST_QUIT: SSL_read digests session tickets and such by itself; the
	 * first application data is the reply to QUIT, and then we end, with
	 * a close_notify on its way when the session is still sound. */
	char scratch[512];
	ERR_clear_error();
	int rc = SSL_read(q->ssl, scratch, (int)sizeof scratch);
	if (rc <= 0 && SSL_get_error(q->ssl, rc) == SSL_ERROR_WANT_READ)
		return;
	ERR_clear_error();
	if (rc > 0 && SSL_shutdown(q->ssl) >= 0)
		flush_tls(q, "TLS close");
	ERR_clear_error();
	probe_close(q);
}

/* ---- plaintext SMTP ------------------------------------------------------ */

/* The first line of a reply, printable, for messages and the banner. */
static void
first_line(char *dst, size_t dstsz, const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len);
	sts_copy_printable(dst, dstsz, buf, nl != NULL ? (size_t)(nl - buf) : len);
}


/* One complete reply for the current stage. False when the probe ended. */
static bool
on_reply(struct probe *q, int code, const char *buf, size_t len)
{
	char text[128];
	first_line(text, sizeof text, buf, len);
	switch (q->stage) {
	case ST_BANNER:
		first_line(q->res.banner, sizeof q->res.banner, buf, len);
		if (code != 220) {
			finish(q, AFTER_CLOSE, STS_SMTP_PROTOCOL, "banner is not 220: \"%s\"", text);
			return false;
		}
		char ehlo[SMTP_HELO_MAX + 8];
		snprintf(ehlo, sizeof ehlo, "EHLO %s\r\n", q->p->helo);
		q->stage = ST_EHLO;
		return send_command(q, "EHLO", ehlo);
	case ST_EHLO:
		if (code != 250) {
			finish(q, AFTER_CLOSE, STS_SMTP_PROTOCOL, "EHLO refused: \"%s\"", text);
			return false;
		}
		if (!sts_smtp_ehlo_has_starttls(buf, len)) {
			finish(q, AFTER_QUIT, STS_SMTP_NO_STARTTLS, "no STARTTLS in EHLO reply");
			return false;
		}
		q->res.starttls_offered = true;
		q->stage = ST_STARTTLS;
		return send_command(q, "STARTTLS", "STARTTLS\r\n");
	case ST_STARTTLS:
		if (code != 220) {
			finish(q, AFTER_QUIT, STS_SMTP_STARTTLS_REFUSED, "STARTTLS refused: \"%s\"",
			       text);
			return false;
		}
		return true;   /* the caller starts TLS */
	default:
		return false;
	}
}

/* Bytes from the network before TLS. */
static void
plain_input(struct probe *q, const char *data, size_t n)
{
	if (q->stage == ST_QUIT) {
		probe_close(q);   /* the answer to QUIT, whatever it says */
		return;
	}
	int rc = sts_buf_append(&q->reply, data, n);
	if (rc == STS_ETOOBIG) {
		finish(q, AFTER_CLOSE, STS_SMTP_PROTOCOL,
		       "%s longer than %u bytes (no end of reply)", stage_wait(q->stage),
		       SMTP_REPLY_MAX);
		return;
	}
	if (rc != STS_OK) {
		finish(q, AFTER_CLOSE, STS_SMTP_INTERNAL, "reading the %s: out of memory",
		       stage_wait(q->stage));
		return;
	}
	int code = 0;
	size_t end = 0;
	enum sts_smtp_reply st = sts_smtp_reply_scan(q->reply.data, q->reply.len, &code, &end);
	if (st == STS_SMTP_REPLY_INCOMPLETE)
		return;
	if (st == STS_SMTP_REPLY_MALFORMED) {
		char text[96];
		first_line(text, sizeof text, q->reply.data + end, q->reply.len - end);
		finish(q, AFTER_CLOSE, STS_SMTP_PROTOCOL, "malformed %s: \"%s\"",
		       stage_wait(q->stage), text);
		return;
	}
	/* We send one command and wait: a well-behaved server never sends
	 * more than the reply. After STARTTLS, extra bytes would be taken as
	 * TLS or, worse, as plaintext injected ahead of TLS (CVE-2011-0411). */
	bool extra = end < q->reply.len;
	enum stage was = q->stage;
	if (!on_reply(q, code, q->reply.data, end))
		return;
	if (extra) {
		finish(q, AFTER_CLOSE, STS_SMTP_PROTOCOL, "unexpected data after the %s%s",
		       stage_wait(was), was == ST_STARTTLS ? " (plaintext injected before TLS)" : "");
		return;
	}
	sts_buf_reset(&q->reply);
	if (was == ST_STARTTLS)
		tls_start(q);
}

/* ---- reading, connecting ------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct probe *q = h->data;
	(void)suggested;
	*buf = uv_buf_init(q->rbuf, (unsigned)sizeof q->rbuf);
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct probe *q = s->data;
	(void)buf;
	if (q->closing || nread == 0)
		return;
	if (nread > 0) {
		if (q->tls)
			tls_input(q, q->rbuf, (size_t)nread);
		else
			plain_input(q, q->rbuf, (size_t)nread);
		return;
	}
	if (q->delivered) {
		probe_close(q);
		return;
	}
	const char *w = stage_wait(q->stage);
	if (q->stage == ST_HANDSHAKE)
		finish(q, AFTER_CLOSE, STS_SMTP_TLS, "connection %s during the TLS handshake",
		       nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
	else if (nread == UV_EOF)
		finish(q, AFTER_CLOSE, STS_SMTP_PROTOCOL,
		       "connection closed by the server while waiting for the %s", w);
	else
		finish(q, AFTER_CLOSE, STS_SMTP_CONNECT, "reading the %s from %s: %s", w, q->addr,
		       uv_strerror((int)nread));
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct probe *q = req->data;
	if (status == UV_ECANCELED || q->closing || q->delivered)
		return;
	if (status < 0) {
		finish(q, AFTER_CLOSE, STS_SMTP_CONNECT, "connect to %s port %u: %s", q->addr,
		       q->p->port, uv_strerror(status));
		return;
	}
	q->stage = ST_BANNER;
	int rc = uv_read_start((uv_stream_t *)&q->tcp, on_alloc, on_read);
	if (rc < 0)
		finish(q, AFTER_CLOSE, STS_SMTP_CONNECT, "reading from %s: %s", q->addr,
		       uv_strerror(rc));
}

/* ---- public ------------------------------------------------------------ */

/* A usable EHLO argument: printable ASCII, no spaces, nothing that could
 * end the command line early. */
static bool
helo_ok(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > SMTP_HELO_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f)
			return false;
	return true;
}

int
sts_smtp_prober_new(uv_loop_t *loop, const struct sts_smtp_opts *opts,
		    struct sts_smtp_prober **out, char *err, size_t errsz)
{
	struct sts_smtp_prober *p = NULL;
	int rc = STS_ENOMEM;
	*out = NULL;
	if (errsz > 0)
		err[0] = '\0';
	const char *helo = opts != NULL && opts->helo_name != NULL ? opts->helo_name
								  : SMTP_HELO_DEFAULT;
	if (!helo_ok(helo)) {
		snprintf(err, errsz, "unusable EHLO name (printable ASCII without spaces, "
				     "at most %u bytes)", SMTP_HELO_MAX);
		return STS_EINVAL;
	}
	if (opts != NULL && opts->port > 65535) {
		snprintf(err, errsz, "port %u out of range", opts->port);
		return STS_EINVAL;
	}
	p = calloc(1, sizeof *p);
	if (p == NULL || (p->helo = strdup(helo)) == NULL)
		goto nomem;
	p->loop = loop;
	p->timeout_ms = opts != NULL && opts->timeout_ms > 0 ? opts->timeout_ms
							      : SMTP_TIMEOUT_DEFAULT;
	p->port = opts != NULL && opts->port > 0 ? opts->port : SMTP_PORT_DEFAULT;
	ERR_clear_error();
	p->ctx = SSL_CTX_new(TLS_client_method());
	if (p->ctx == NULL)
		goto nomem;
	if (SSL_CTX_set_min_proto_version(p->ctx, TLS1_2_VERSION) != 1) {   /* rule 61 */
		snprintf(err, errsz, "cannot require TLS 1.2");
		rc = STS_EIO;
		goto fail;
	}
	/* The handshake goes through whatever the certificate; check_cert()
	 * judges it afterwards (see the top of the file). */
	SSL_CTX_set_verify(p->ctx, SSL_VERIFY_NONE, NULL);
	if (opts != NULL && opts->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(p->ctx, opts->ca_file, NULL) != 1) {
			char text[160];
			tls_error_text(text, sizeof text, 0);
			snprintf(err, errsz, "cannot load CA file %s: %s", opts->ca_file, text);
			rc = STS_EINVAL;
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(p->ctx) != 1) {
		char text[160];
		tls_error_text(text, sizeof text, 0);
		snprintf(err, errsz, "cannot load the system trust store: %s", text);
		rc = STS_EIO;
		goto fail;
	}
	ERR_clear_error();
	*out = p;
	return STS_OK;
nomem:
	snprintf(err, errsz, "out of memory");
	rc = STS_ENOMEM;
fail:
	ERR_clear_error();
	if (p != NULL) {
		SSL_CTX_free(p->ctx);
		free(p->helo);
		free(p);
	}
	return rc;
}

static void
prober_destroy(struct sts_smtp_prober *p)
{
	SSL_CTX_free(p->ctx);
	free(p->helo);
	free(p);
}

void
sts_smtp_prober_free(struct sts_smtp_prober **pp)
{
	if (pp == NULL || *pp == NULL)
		return;
	struct sts_smtp_prober *p = *pp;
	*pp = NULL;
	if (p->freeing)
		return;   /* called again from a callback we are running */
	p->freeing = true;
	if (p->probes == NULL) {
		prober_destroy(p);
		return;
	}
	/* Records leave the list only in close callbacks, which run from the
	 * loop: walking the list while callbacks run is safe. The prober goes
	 * with the last record (record_free). */
	for (struct probe *q = p->probes, *next; q != NULL; q = next) {
		next = q->next;
		if (!q->delivered)
			finish(q, AFTER_CLOSE, STS_SMTP_INTERNAL, "cancelled");
		probe_close(q);
	}
}

/* For the callbacks that cannot be queued (see the top of the file). */
static void
fail_now(const char *host, const char *addr, sts_smtp_cb cb, void *arg, const char *msg)
{
	struct sts_smtp_result r;
	memset(&r, 0, sizeof r);
	r.error = STS_SMTP_INTERNAL;
	snprintf(r.message, sizeof r.message, "%s", msg);
	r.host = host != NULL ? host : "";
	r.addr = addr != NULL ? addr : "";
	cb(arg, &r);
}

void
sts_smtp_probe(struct sts_smtp_prober *p, const char *host, const char *addr,
	       sts_smtp_cb cb, void *arg)
{
	if (cb == NULL)
		return;
	if (p == NULL || p->freeing) {
		fail_now(host, addr, cb, arg, "cancelled");
		return;
	}
	struct probe *q = calloc(1, sizeof *q);
	if (q == NULL) {
		fail_now(host, addr, cb, arg, "out of memory");
		return;
	}
	q->p = p;
	q->cb = cb;
	q->arg = arg;
	q->t0 = uv_hrtime();
	q->stage = ST_CONNECT;
	sts_buf_init(&q->reply, SMTP_REPLY_MAX);
	uv_timer_init(p->loop, &q->timer);
	q->timer.data = q;
	q->open_handles = 1;
	if (uv_tcp_init(p->loop, &q->tcp) == 0) {
		q->tcp.data = q;
		q->open_handles = 2;
	}
	q->connect.data = q;
	q->next = p->probes;
	if (p->probes != NULL)
		p->probes->prev = q;
	p->probes = q;
	if (q->open_handles != 2) {
		/* Cannot happen on a live loop; the record must still go. */
		q->open_handles = 1;
		q->closing = true;
		fail_now(host, addr, cb, arg, "cannot create a TCP handle");
		uv_close((uv_handle_t *)&q->timer, on_handle_closed);
		return;
	}

	q->host = strdup(host != NULL ? host : "");
	q->addr = strdup(addr != NULL ? addr : "");
	if (q->host != NULL) {
		size_t n = strlen(q->host);
		q->sni = strndup(q->host, n > 0 && q->host[n - 1] == '.' ? n - 1 : n);
	}
	if (q->host == NULL || q->addr == NULL || q->sni == NULL) {
		defer(q, STS_SMTP_INTERNAL, "out of memory");
		return;
	}
	if (q->sni[0] == '\0') {
		defer(q, STS_SMTP_INTERNAL, "no MX host name to probe");
		return;
	}
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} sa;
	if (uv_ip4_addr(q->addr, (int)p->port, &sa.in4) != 0 &&
	    uv_ip6_addr(q->addr, (int)p->port, &sa.in6) != 0) {
		defer(q, STS_SMTP_INTERNAL, "not an IP address: \"%.64s\"", q->addr);
		return;
	}
	/* The loop's clock is that of its last iteration; a caller that did
	 * work since would otherwise get a shorter timeout. */
	uv_update_time(p->loop);
	uv_timer_start(&q->timer, on_timer, p->timeout_ms, 0);
	int rc = uv_tcp_connect(&q->connect, &q->tcp, &sa.sa, on_connect);
	if (rc < 0)
		defer(q, STS_SMTP_CONNECT, "connect to %s port %u: %s", q->addr, p->port,
		      uv_strerror(rc));
}
