/* metrics_http.h: the HTTP/1.1 request-head parser and response builder of
 * the metrics listener (daemon/metrics.c), pure functions over bytes so that
 * they can be unit-tested and fuzzed without a socket.
 *
 * The listener keeps the first bytes a client sends (at most
 * STSD_HTTP_HEAD_MAX + 1) and calls stsd_http_parse_head on all of them
 * after every read; anything but STSD_HTTP_MORE is final: it answers with
 * stsd_http_status(verdict) and closes. A request body, if any, is never
 * read (every answer carries Connection: close).
 *
 * What is accepted (RFC 9112, strictly where leniency could hide a
 * smuggling bug, leniently where clients differ harmlessly):
 * - empty lines before the request line are skipped (RFC 9112 2.2);
 * - lines end with CRLF or a bare LF; a CR anywhere else is 400;
 * - request line: token SP request-target SP HTTP/D.D, nothing more; the
 *   target is origin-form ("/path?query") or absolute-form
 *   ("http://host/path"); major version 1 only (others 505);
 * - header fields: token ":" value, no white space before the colon, no
 *   obs-fold (a line starting with SP or HTAB is 400), no control bytes
 *   but HTAB in the value; HTTP/1.1 needs exactly one Host field, 1.0 at
 *   most one;
 * - the head (request line to the empty line, both included) fits in
 *   STSD_HTTP_HEAD_MAX bytes, or the verdict is STSD_HTTP_TOO_LARGE.
 *
 * Routing: "/metrics" and "/healthz" (the path before any '?', compared
 * byte for byte) with GET or HEAD; another method on them is 405; any other
 * path is 404 whatever the method.
 *
 * The verdict only ever depends on complete lines inside the first
 * STSD_HTTP_HEAD_MAX bytes, and on the start of an unfinished request line
 * that can no longer become valid (a method not followed by SP: a
 * socketmap request or a TLS handshake gets 400 at once, not 408 later):
 * once it is not STSD_HTTP_MORE, more bytes never change it (the fuzz
 * target checks this). */
#ifndef STSD_METRICS_HTTP_H
#define STSD_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <mtasts/buf.h>

#define STSD_HTTP_HEAD_MAX 8192

enum stsd_http_verdict {
	STSD_HTTP_MORE = 0,        /* no complete head yet: read more */
	STSD_HTTP_METRICS,         /* GET or HEAD /metrics: 200 */
	STSD_HTTP_HEALTHZ,         /* GET or HEAD /healthz: 200 */
	STSD_HTTP_NOT_FOUND,       /* 404 */
	STSD_HTTP_BAD_METHOD,      /* 405 */
	STSD_HTTP_BAD_REQUEST,     /* 400 */
	STSD_HTTP_TOO_LARGE,       /* 431: no end of head in STSD_HTTP_HEAD_MAX bytes */
	STSD_HTTP_BAD_VERSION,     /* 505: HTTP/2.0, HTTP/0.9, ... */
	STSD_HTTP_TIMEOUT,         /* 408: never returned by the parser (the listener's timer) */
	STSD_HTTP_VERDICT_N
};

enum stsd_http_method {
	STSD_HTTP_METHOD_NONE = 0, /* no request line yet, or a bad one */
	STSD_HTTP_GET,
	STSD_HTTP_HEAD,
	STSD_HTTP_OTHER,           /* a valid token: POST, PUT, get (methods are case-sensitive) */
};

struct stsd_http_head {
	enum stsd_http_method method;
	/* Set once the request line parsed (also with MORE, or 400 from a
	 * header line): point into the input, not NUL-terminated. path is the
	 * target's path without query (absolute-form: without scheme and
	 * authority; a static "/" when that is empty). */
	const char *method_str, *path;
	size_t method_len, path_len;
	unsigned version;          /* 10 or 11 once the request line parsed, else 0 */
	size_t head_len;           /* with a routed verdict: bytes up to and with the empty line */
};

/* Parses the first len bytes received on a connection. Never reads past
 * data + len; data need not be NUL-terminated. */
enum stsd_http_verdict stsd_http_parse_head(const char *data, size_t len,
					     struct stsd_http_head *out);

/* The status code answered for a verdict (0 for MORE). */
unsigned stsd_http_status(enum stsd_http_verdict v);
/* "OK", "Not Found", ...; never NULL. */
const char *stsd_http_reason(unsigned status);

/* Appends a complete response: status line, Content-Type, Content-Length of
 * body, Connection: close (Allow for 405), the empty line, then the body
 * unless head_only (a HEAD request: same headers, no body).
 * content_type NULL means text/plain; charset=utf-8. STS_OK or
 * STS_ETOOBIG/STS_ENOMEM. */
int stsd_http_response(struct sts_buf *out, unsigned status, const char *content_type,
		       const char *body, size_t body_len, bool head_only);

#endif
