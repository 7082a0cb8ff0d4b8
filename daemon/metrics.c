/* metrics.c: Prometheus metrics of mta-stsd (see metrics.h): counting,
 * the text exposition format 0.0.4, and a small HTTP/1.1 listener on the
 * daemon's libuv loop (request heads parsed by the pure functions of
 * metrics_http.h). */
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <mtasts/diag.h>
#include <mtasts/status.h>

#include "metrics.h"
#include "metrics_http.h"

/* ------------------------------------------------------------------------
 * Counting */

static const uint64_t latency_bounds[] = STSD_LATENCY_BUCKETS_US;
_Static_assert(sizeof latency_bounds / sizeof latency_bounds[0] == STSD_LATENCY_N,
	       "STSD_LATENCY_N must count STSD_LATENCY_BUCKETS_US");

void
stsd_metrics_request(struct stsd_metrics *m, enum stsd_result r, uint64_t latency_us)
{
	if ((unsigned)r >= STSD_RESULT_N)
		return;
	m->requests[r]++;
	size_t i = 0;
	while (i < STSD_LATENCY_N && latency_us > latency_bounds[i])
		i++;
	m->latency_buckets[i]++;   /* i == STSD_LATENCY_N: +Inf */
	m->latency_sum_us += latency_us;
	m->latency_count++;
}

/* Outcome names are stored sanitised: printable ASCII without space, so a
 * name can go into a label value with only '"' and '\' to escape, and two
 * inputs that sanitise alike share one series (never a duplicate). */
static void
outcome_name(const char *in, char out[STSD_OUTCOME_LEN])
{
	size_t n = 0;
	if (in != NULL)
		for (; in[n] != '\0' && n < STSD_OUTCOME_LEN - 1; n++) {
			unsigned char c = (unsigned char)in[n];
			out[n] = c > 0x20 && c < 0x7f ? (char)c : '_';
		}
	if (n == 0) {
		snprintf(out, STSD_OUTCOME_LEN, "unknown");
		return;
	}
	out[n] = '\0';
}

void
stsd_metrics_fetch(struct stsd_metrics *m, const char *outcome)
{
	char name[STSD_OUTCOME_LEN];
	outcome_name(outcome, name);
	size_t n = m->n_fetches < STSD_OUTCOME_MAX ? m->n_fetches : STSD_OUTCOME_MAX;
	for (size_t i = 0; i < n; i++)
		if (strncmp(m->fetches[i].name, name, STSD_OUTCOME_LEN) == 0) {
			m->fetches[i].count++;
			return;
		}
	if (n == STSD_OUTCOME_MAX) {
		m->fetches_other++;
		return;
	}
	memcpy(m->fetches[n].name, name, sizeof name);
	m->fetches[n].count = 1;
	m->n_fetches = n + 1;
}

/* ------------------------------------------------------------------------
 * Exposition format */

/* A label value between its quotes: '\', '"' and LF escaped as the format
 * says; other control bytes and non-ASCII (possibly not UTF-8) become '_'. */
static int
put_label_value(struct sts_buf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int rc;
		if (c == '\\')
			rc = sts_buf_append(out, "\\\\", 2);
		else if (c == '"')
			rc = sts_buf_append(out, "\\\"", 2);
		else if (c == '\n')
			rc = sts_buf_append(out, "\\n", 2);
		else
			rc = sts_buf_putc(out, c >= 0x20 && c < 0x7f ? c : '_');
		if (rc != STS_OK)
			return rc;
	}
	return STS_OK;
}

/* Microseconds as decimal seconds without exponent or trailing zeros:
 * 50 -> "0.00005", 2500 -> "0.0025", 1000000 -> "1". */
static void
fmt_seconds(char *dst, size_t dstsz, uint64_t us)
{
	int n = snprintf(dst, dstsz, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
	if (n <= 0 || (size_t)n >= dstsz)
		return;
	size_t len = (size_t)n;
	while (dst[len - 1] == '0')
		len--;
	if (dst[len - 1] == '.')
		len--;
	dst[len] = '\0';
}

static int
put_header(struct sts_buf *out, const char *name, const char *type, const char *help)
{
	return sts_buf_printf(out, "# HELP mtasts_%s %s\n# TYPE mtasts_%s %s\n", name, help,
			      name, type);
}

/* name{label="value"} count, with value escaped. */
static int
put_labelled(struct sts_buf *out, const char *name, const char *label, const char *value,
	     size_t value_len, uint64_t count)
{
	int rc = sts_buf_printf(out, "mtasts_%s{%s=\"", name, label);
	if (rc == STS_OK)
		rc = put_label_value(out, value, value_len);
	if (rc == STS_OK)
		rc = sts_buf_printf(out, "\"} %" PRIu64 "\n", count);
	return rc;
}

static int
put_plain(struct sts_buf *out, const char *name, const char *type, const char *help,
	  uint64_t value)
{
	int rc = put_header(out, name, type, help);
	if (rc == STS_OK)
		rc = sts_buf_printf(out, "mtasts_%s %" PRIu64 "\n", name, value);
	return rc;
}

static const char *const result_names[STSD_RESULT_N] = { "ok", "notfound", "temp", "perm" };

static int
render_fetches(const struct stsd_metrics *m, struct sts_buf *out)
{
	int rc = put_header(out, "fetches_total", "counter",
			    "Policy fetches by outcome: ok or the error code"
			    " (distinct codes beyond the first 48 count as other).");
	size_t n = m->n_fetches < STSD_OUTCOME_MAX ? m->n_fetches : STSD_OUTCOME_MAX;
	uint64_t other = m->fetches_other;
	bool other_done = false;
	for (size_t i = 0; i < n && rc == STS_OK; i++) {
		const struct stsd_outcome *o = &m->fetches[i];
		size_t len = strnlen(o->name, STSD_OUTCOME_LEN);
		uint64_t count = o->count;
		/* a real outcome named "other" takes the overflow too: one series */
		if (len == 5 && memcmp(o->name, "other", 5) == 0 && !other_done) {
			count += other;
			other_done = true;
		}
		rc = put_labelled(out, "fetches_total", "outcome", o->name, len, count);
	}
	if (rc == STS_OK && other > 0 && !other_done)
		rc = put_labelled(out, "fetches_total", "outcome", "other", 5, other);
	return rc;
}

static int
render_latency(const struct stsd_metrics *m, struct sts_buf *out)
{
	static const char name[] = "request_duration_seconds";
	int rc = put_header(out, name, "histogram",
			    "Time from a socketmap request's arrival to its answer.");
	/* +Inf and _count are the total of the buckets, so that the two agree
	 * even if the struct was filled by hand. */
	uint64_t cum = 0;
	char le[32];
	for (size_t i = 0; i <= STSD_LATENCY_N && rc == STS_OK; i++) {
		cum += m->latency_buckets[i];
		if (i < STSD_LATENCY_N)
			fmt_seconds(le, sizeof le, latency_bounds[i]);
		else
			snprintf(le, sizeof le, "+Inf");
		rc = sts_buf_printf(out, "mtasts_%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le, cum);
	}
	char sum[32];
	fmt_seconds(sum, sizeof sum, m->latency_sum_us);
	if (rc == STS_OK)
		rc = sts_buf_printf(out, "mtasts_%s_sum %s\nmtasts_%s_count %" PRIu64 "\n", name,
				    sum, name, cum);
	return rc;
}

int
stsd_metrics_render(const struct stsd_metrics *m, struct sts_buf *out)
{
	int rc = put_header(out, "requests_total", "counter",
			    "Socketmap requests answered, by result.");
	for (size_t i = 0; i < STSD_RESULT_N && rc == STS_OK; i++)
		rc = put_labelled(out, "requests_total", "result", result_names[i],
				  strlen(result_names[i]), m->requests[i]);
	if (rc == STS_OK)
		rc = render_latency(m, out);
	if (rc == STS_OK)
		rc = put_plain(out, "answer_cache_hits_total", "counter",
			       "Requests answered from the answer cache.", m->answer_hits);
	if (rc == STS_OK)
		rc = put_plain(out, "answer_cache_misses_total", "counter",
			       "Requests not found in the answer cache.", m->answer_misses);
	if (rc == STS_OK)
		rc = render_fetches(m, out);
	if (rc == STS_OK)
		rc = put_header(out, "proactive_refreshes_total", "counter",
				"Proactive policy refreshes, by outcome.");
	if (rc == STS_OK)
		rc = put_labelled(out, "proactive_refreshes_total", "outcome", "ok", 2,
				  m->proactive_ok);
	if (rc == STS_OK)
		rc = put_labelled(out, "proactive_refreshes_total", "outcome", "failed", 6,
				  m->proactive_failed);
	if (rc == STS_OK)
		rc = put_plain(out, "answer_cache_entries", "gauge",
			       "Answers held in the answer cache.", m->answer_entries);
	if (rc == STS_OK)
		rc = put_plain(out, "connections", "gauge", "Open socketmap connections.",
			       m->connections);
	if (rc == STS_OK)
		rc = put_plain(out, "backend_up", "gauge",
			       "1 when the policy cache backend is usable, else 0.",
			       m->backend_up ? 1 : 0);
	if (rc == STS_OK)
		rc = put_header(out, "build_info", "gauge", "Version of mta-stsd; always 1.");
	if (rc == STS_OK) {
		const char *v = m->version != NULL ? m->version : "unknown";
		rc = put_labelled(out, "build_info", "version", v, strnlen(v, 256), 1);
	}
	return rc;
}

/* ------------------------------------------------------------------------
 * HTTP request heads (metrics_http.h) */

static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static size_t
token_len(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	return i;
}

static bool
ieq(const char *a, size_t n, const char *lower)
{
	size_t ln = strlen(lower);
	if (n != ln)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = a[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lower[i])
			return false;
	}
	return true;
}

/* The path of a request-target (origin-form or absolute-form), without the
 * query. False when the target is neither, nor "*". */
static bool
target_path(const char *t, size_t n, struct stsd_http_head *out)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return false;
	if (n == 1 && t[0] == '*') {   /* asterisk-form: no resource of ours */
		out->path = t;
		out->path_len = 1;
		return true;
	}
	if (n > 0 && t[0] != '/') {
		size_t skip;
		if (n >= 7 && ieq(t, 7, "http://"))
			skip = 7;
		else if (n >= 8 && ieq(t, 8, "https://"))
			skip = 8;
		else
			return false;
		size_t a = skip;
		while (a < n && t[a] != '/' && t[a] != '?')
			a++;
		if (a == skip)
			return false;   /* no authority */
		t += a;
		n -= a;
		if (n == 0 || t[0] == '?') {
			out->path = "/";
			out->path_len = 1;
			return true;
		}
	}
	if (n == 0)
		return false;
	const char *q = memchr(t, '?', n);
	out->path = t;
	out->path_len = q != NULL ? (size_t)(q - t) : n;
	return true;
}

static enum stsd_http_verdict
request_line(const char *l, size_t n, struct stsd_http_head *out)
{
	size_t m = token_len(l, n);
	if (m == 0 || m >= n || l[m] != ' ')
		return STSD_HTTP_BAD_REQUEST;
	const char *t = l + m + 1;
	const char *sp = memchr(t, ' ', n - m - 1);
	if (sp == NULL)
		return STSD_HTTP_BAD_REQUEST;   /* HTTP/0.9 or garbage */
	const char *v = sp + 1;
	size_t vn = n - (size_t)(v - l);
	if (!target_path(t, (size_t)(sp - t), out))
		return STSD_HTTP_BAD_REQUEST;
	if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return STSD_HTTP_BAD_REQUEST;
	if (v[5] != '1')
		return STSD_HTTP_BAD_VERSION;
	out->version = v[7] == '0' ? 10 : 11;   /* 1.2 and later read as 1.1 (RFC 9110 6.2) */
	out->method_str = l;
	out->method_len = m;
	if (m == 3 && memcmp(l, "GET", 3) == 0)
		out->method = STSD_HTTP_GET;
	else if (m == 4 && memcmp(l, "HEAD", 4) == 0)
		out->method = STSD_HTTP_HEAD;
	else
		out->method = STSD_HTTP_OTHER;
	return STSD_HTTP_MORE;
}

/* One field line; counts Host fields. */
static bool
field_line(const char *l, size_t n, unsigned *hosts)
{
	size_t name = token_len(l, n);
	if (name == 0 || name >= n || l[name] != ':')
		return false;   /* also obs-fold and white space before the colon */
	for (size_t i = name + 1; i < n; i++) {
		unsigned char c = (unsigned char)l[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	if (ieq(l, name, "host"))
		(*hosts)++;
	return true;
}

static enum stsd_http_verdict
route(const struct stsd_http_head *h)
{
	bool get = h->method == STSD_HTTP_GET || h->method == STSD_HTTP_HEAD;
	if ((h->path_len == 8 && memcmp(h->path, "/metrics", 8) == 0) ||
	    (h->path_len == 8 && memcmp(h->path, "/healthz", 8) == 0)) {
		if (!get)
			return STSD_HTTP_BAD_METHOD;
		return h->path[1] == 'm' ? STSD_HTTP_METRICS : STSD_HTTP_HEALTHZ;
	}
	return STSD_HTTP_NOT_FOUND;
}

/* True when an unfinished request line can no longer become valid: its
 * method is followed by something else than SP (a socketmap request, a TLS
 * handshake). Such a client is answered at once, not after the timeout. */
static bool
bad_start(const char *l, size_t n)
{
	size_t m = token_len(l, n);
	if (m == n)
		return false;
	if (m == 0 && l[0] == '\r' && n == 1)
		return false;   /* maybe an empty line's CRLF */
	return m == 0 || l[m] != ' ';
}

enum stsd_http_verdict
stsd_http_parse_head(const char *data, size_t len, struct stsd_http_head *out)
{
	memset(out, 0, sizeof *out);
	/* Only complete lines inside the first STSD_HTTP_HEAD_MAX bytes count,
	 * so a verdict never changes when more bytes arrive. */
	size_t lim = len < STSD_HTTP_HEAD_MAX ? len : STSD_HTTP_HEAD_MAX;
	size_t pos = 0;
	bool have_line = false;
	unsigned hosts = 0;
	for (;;) {
		const char *nl = lim > pos ? memchr(data + pos, '\n', lim - pos) : NULL;
		if (nl == NULL) {
			if (!have_line && bad_start(data + pos, lim - pos))
				return STSD_HTTP_BAD_REQUEST;
			return len > STSD_HTTP_HEAD_MAX ? STSD_HTTP_TOO_LARGE : STSD_HTTP_MORE;
		}
		const char *l = data + pos;
		size_t n = (size_t)(nl - l);
		pos += n + 1;
		if (n > 0 && l[n - 1] == '\r')
			n--;
		if (memchr(l, '\r', n) != NULL) {
			if (!have_line)
				memset(out, 0, sizeof *out);
			return STSD_HTTP_BAD_REQUEST;   /* a bare CR: never a line end */
		}
		if (!have_line) {
			if (n == 0)
				continue;   /* empty lines before the request line */
			enum stsd_http_verdict v = request_line(l, n, out);
			if (v != STSD_HTTP_MORE) {
				memset(out, 0, sizeof *out);
				return v;
			}
			have_line = true;
			continue;
		}
		if (n == 0) {
			if (hosts > 1 || (out->version == 11 && hosts == 0))
				return STSD_HTTP_BAD_REQUEST;
			out->head_len = pos;
			return route(out);
		}
		if (!field_line(l, n, &hosts))
			return STSD_HTTP_BAD_REQUEST;
	}
}

unsigned
stsd_http_status(enum stsd_http_verdict v)
{
	switch (v) {
	case STSD_HTTP_METRICS:
	case STSD_HTTP_HEALTHZ:
		return 200;
	case STSD_HTTP_NOT_FOUND:
		return 404;
	case STSD_HTTP_BAD_METHOD:
		return 405;
	case STSD_HTTP_BAD_REQUEST:
		return 400;
	case STSD_HTTP_TOO_LARGE:
		return 431;
	case STSD_HTTP_BAD_VERSION:
		return 505;
	case STSD_HTTP_TIMEOUT:
		return 408;
	case STSD_HTTP_MORE:
	case STSD_HTTP_VERDICT_N:
		break;
	}
	return 0;
}

const char *
stsd_http_reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

int
stsd_http_response(struct sts_buf *out, unsigned status, const char *content_type,
		   const char *body, size_t body_len, bool head_only)
{
	int rc = sts_buf_printf(out,
				"HTTP/1.1 %u %s\r\n"
				"Content-Type: %s\r\n"
				"Content-Length: %zu\r\n"
				"%s"
				"Connection: close\r\n"
				"\r\n",
				status, stsd_http_reason(status),
				content_type != NULL ? content_type : "text/plain; charset=utf-8",
				body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (rc == STS_OK && !head_only && body_len > 0)
		rc = sts_buf_append(out, body, body_len);
	return rc;
}

/* ------------------------------------------------------------------------
 * Listener */

#define METRICS_MAX_CONNS 64          /* more at once are closed at accept */
#define METRICS_HEAD_TIMEOUT_MS 5000  /* a complete head within this, or 408 */
#define METRICS_LINGER_MS 5000        /* to write the answer and read to EOF */
#define METRICS_DRAIN_MAX (64 * 1024) /* bytes read after the head before closing */
#define METRICS_BODY_MAX (4 * 1024 * 1024)
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct mconn {
	struct stsd_metrics_http *h;
	struct mconn *prev, *next;
	unsigned long id;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct sts_buf resp;
	size_t len;          /* bytes of the head in buf */
	size_t drained;      /* bytes read after the answer */
	int closes_pending;
	bool answered, closing, eof;
	bool writing;        /* the answer is not all written yet */
	char buf[STSD_HTTP_HEAD_MAX + 1];   /* one byte more than a head: TOO_LARGE */
};

struct stsd_metrics_http {
	uv_loop_t *loop;
	uv_tcp_t lis;
	const struct stsd_metrics *m;
	const struct sts_logger *log;
	struct mconn *conns;
	unsigned n_conns;
	unsigned long next_id;
	bool stopping, lis_closed;
};

static void
http_maybe_free(struct stsd_metrics_http *h)
{
	if (h->stopping && h->lis_closed && h->n_conns == 0)
		free(h);
}

static void
mconn_closed(uv_handle_t *hd)
{
	struct mconn *c = hd->data;
	if (--c->closes_pending > 0)
		return;
	struct stsd_metrics_http *h = c->h;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	h->n_conns--;
	sts_buf_free(&c->resp);
	free(c);
	http_maybe_free(h);
}

/* Memory goes in the close callbacks, after any pending write or shutdown
 * has been called back with UV_ECANCELED. */
static void
mconn_close(struct mconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_timer_stop(&c->timer);
	c->closes_pending = 2;
	uv_close((uv_handle_t *)&c->timer, mconn_closed);
	uv_close((uv_handle_t *)&c->tcp, mconn_closed);
}

static void
shutdown_done(uv_shutdown_t *r, int status)
{
	struct mconn *c = r->data;
	if (status < 0 && !c->closing)
		mconn_close(c);
	/* else: read to EOF (or the linger timer), so that unread request bytes
	 * do not turn our close into a reset that loses the answer */
}

static void
write_done(uv_write_t *w, int status)
{
	struct mconn *c = w->data;
	c->writing = false;
	if (c->closing)
		return;
	if (status < 0) {
		mconn_close(c);
		return;
	}
	if (c->eof) {
		mconn_close(c);
		return;
	}
	c->sreq.data = c;
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, shutdown_done) < 0)
		mconn_close(c);
}

static void mconn_timeout(uv_timer_t *t);

static void
answer(struct mconn *c, enum stsd_http_verdict v, const struct stsd_http_head *hd)
{
	struct stsd_metrics_http *h = c->h;
	unsigned status = stsd_http_status(v);
	bool head_only = hd->method == STSD_HTTP_HEAD;
	const char *ctype = NULL;
	struct sts_buf body;
	sts_buf_init(&body, METRICS_BODY_MAX);
	int rc = STS_OK;
	if (v == STSD_HTTP_METRICS) {
		rc = stsd_metrics_render(h->m, &body);
		ctype = METRICS_CONTENT_TYPE;
		if (rc != STS_OK) {
			sts_log(h->log, STS_LOG_ERROR, "metrics: rendering: %s", sts_strerror(rc));
			status = 500;
			ctype = NULL;
			sts_buf_reset(&body);
		}
	} else if (v == STSD_HTTP_HEALTHZ) {
		rc = sts_buf_puts(&body, "ok\n");
	}
	if (status != 200)
		rc = sts_buf_printf(&body, "%u %s\n", status, stsd_http_reason(status));
	sts_buf_init(&c->resp, METRICS_BODY_MAX + 512);
	if (rc == STS_OK)
		rc = stsd_http_response(&c->resp, status, ctype, body.data, body.len, head_only);
	sts_buf_free(&body);
	c->answered = true;
	if (hd->path != NULL) {
		char path[80];
		sts_escape(hd->path, hd->path_len, path, sizeof path);
		sts_log(h->log, STS_LOG_DEBUG, "metrics: conn %lu: %.*s %s: %u", c->id,
			(int)(hd->method_len < 16 ? hd->method_len : 16), hd->method_str, path,
			status);
	} else {
		sts_log(h->log, STS_LOG_DEBUG, "metrics: conn %lu: %u", c->id, status);
	}
	if (rc != STS_OK) {
		mconn_close(c);
		return;
	}
	uv_timer_start(&c->timer, mconn_timeout, METRICS_LINGER_MS, 0);
	uv_buf_t b = uv_buf_init(c->resp.data, (unsigned)c->resp.len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_done) < 0)
		mconn_close(c);
	else
		c->writing = true;
}

static void
mconn_timeout(uv_timer_t *t)
{
	struct mconn *c = t->data;
	if (c->closing)
		return;
	if (c->answered) {
		mconn_close(c);   /* linger over */
		return;
	}
	struct stsd_http_head hd;
	memset(&hd, 0, sizeof hd);
	answer(c, STSD_HTTP_TIMEOUT, &hd);
}

static void
mconn_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct mconn *c = hd->data;
	/* after the answer the head buffer only takes bytes to throw away */
	if (c->answered)
		*buf = uv_buf_init(c->buf, sizeof c->buf);
	else
		*buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void
mconn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	struct mconn *c = st->data;
	if (c->closing || nread == 0)
		return;
	if (nread < 0) {
		/* a head cut by EOF still gets an answer: the peer may read on */
		if (nread == UV_EOF && !c->answered && c->len > 0) {
			struct stsd_http_head hd;
			memset(&hd, 0, sizeof hd);
			uv_read_stop(st);
			c->eof = true;
			answer(c, STSD_HTTP_BAD_REQUEST, &hd);
			return;
		}
		if (nread == UV_EOF && c->writing) {
			/* the peer is done sending, not reading: finish the answer */
			uv_read_stop(st);
			c->eof = true;
			return;
		}
		mconn_close(c);
		return;
	}
	if (c->answered) {
		c->drained += (size_t)nread;
		if (c->drained > METRICS_DRAIN_MAX)
			mconn_close(c);
		return;
	}
	c->len += (size_t)nread;
	struct stsd_http_head hd;
	enum stsd_http_verdict v = stsd_http_parse_head(c->buf, c->len, &hd);
	if (v != STSD_HTTP_MORE)
		answer(c, v, &hd);
	else if (c->len >= sizeof c->buf)
		mconn_close(c);   /* cannot happen: MORE means at most STSD_HTTP_HEAD_MAX bytes */
}

static void
free_handle(uv_handle_t *hd)
{
	free(hd);
}

static void
on_connection(uv_stream_t *lis, int status)
{
	struct stsd_metrics_http *h = lis->data;
	if (status < 0) {
		sts_log(h->log, STS_LOG_WARNING, "metrics: accept: %s", uv_strerror(status));
		return;
	}
	struct mconn *c = calloc(1, sizeof *c);
	if (c == NULL) {
		/* accept anyway, or libuv stops watching the listener */
		uv_tcp_t *t = malloc(sizeof *t);
		if (t != NULL) {
			uv_tcp_init(h->loop, t);
			(void)uv_accept(lis, (uv_stream_t *)t);
			uv_close((uv_handle_t *)t, free_handle);
		}
		sts_log(h->log, STS_LOG_ERROR, "metrics: accept: out of memory");
		return;
	}
	c->h = h;
	c->id = ++h->next_id;
	uv_tcp_init(h->loop, &c->tcp);
	uv_timer_init(h->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->next = h->conns;
	if (h->conns != NULL)
		h->conns->prev = c;
	h->conns = c;
	h->n_conns++;
	int e = uv_accept(lis, (uv_stream_t *)&c->tcp);
	if (e < 0) {
		sts_log(h->log, STS_LOG_WARNING, "metrics: accept: %s", uv_strerror(e));
		mconn_close(c);
		return;
	}
	if (h->n_conns > METRICS_MAX_CONNS || h->stopping) {
		sts_log(h->log, STS_LOG_WARNING, "metrics: too many connections (%u): closing a new one",
			METRICS_MAX_CONNS);
		mconn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_timer_start(&c->timer, mconn_timeout, METRICS_HEAD_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, mconn_alloc, mconn_read) < 0)
		mconn_close(c);
}

static void
lis_closed(uv_handle_t *hd)
{
	struct stsd_metrics_http *h = hd->data;
	h->lis_closed = true;
	http_maybe_free(h);
}

int
stsd_metrics_http_start(uv_loop_t *loop, const char *host, uint16_t port,
			const struct stsd_metrics *m, const struct sts_logger *log,
			struct stsd_metrics_http **out, char *err, size_t errsz)
{
	*out = NULL;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char sport[8];
	snprintf(sport, sizeof sport, "%u", (unsigned)port);
	int g = getaddrinfo(host, sport, &hints, &ai);
	if (g != 0 || ai == NULL) {
		snprintf(err, errsz, "metrics address %s: %s", host ? host : "(any)",
			 gai_strerror(g));
		if (ai != NULL)
			freeaddrinfo(ai);
		return -1;
	}
	struct stsd_metrics_http *h = calloc(1, sizeof *h);
	if (h == NULL) {
		freeaddrinfo(ai);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	h->loop = loop;
	h->m = m;
	h->log = log;
	uv_tcp_init_ex(loop, &h->lis, (unsigned)ai->ai_family);
	h->lis.data = h;
	int e = uv_tcp_bind(&h->lis, ai->ai_addr, 0);
	freeaddrinfo(ai);
	if (e >= 0)
		e = uv_listen((uv_stream_t *)&h->lis, 64, on_connection);
	if (e < 0) {
		snprintf(err, errsz, "metrics: listen on %s:%u: %s", host ? host : "(any)",
			 (unsigned)port, uv_strerror(e));
		/* freed in the close callback, when the loop runs next */
		h->stopping = true;
		uv_close((uv_handle_t *)&h->lis, lis_closed);
		return -1;
	}
	*out = h;
	return 0;
}

void
stsd_metrics_http_stop(struct stsd_metrics_http **hp)
{
	struct stsd_metrics_http *h = *hp;
	*hp = NULL;
	if (h == NULL || h->stopping)
		return;
	h->stopping = true;
	uv_close((uv_handle_t *)&h->lis, lis_closed);
	for (struct mconn *c = h->conns; c != NULL; c = c->next)
		mconn_close(c);
}
