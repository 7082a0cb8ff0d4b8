/* test_socketmap.c: netstring framing, request parsing and key
 * normalisation (rules 41-43; every pfkey row of tests/data/vectors.tsv) and
 * reply building (rules 45, 58, T14) of include/mtasts/socketmap.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>
#include <mtasts/socketmap.h>

#include "testutil.h"

/* ------------------------------------------------------------------------- */
/* Netstring decoder */

struct ns_case {
	const char *name;
	const char *in;
	size_t in_len;                /* 0: strlen(in) */
	size_t max;
	const char *payloads[5];      /* NULL-terminated; payloads hold no NUL */
	enum sts_netstring_error err; /* STS_NETSTRING_OK: no error */
	size_t err_offset;            /* stream offset just past the offending byte */
	bool idle;                    /* at the end, when there is no error */
};

#define R STS_SM_REQUEST_MAX
static const struct ns_case ns_cases[] = {
	{ "one", "3:abc,", 0, R, { "abc" }, 0, 0, true },
	{ "empty netstring", "0:,", 0, R, { "" }, 0, 0, true },
	{ "two empty", "0:,0:,", 0, R, { "", "" }, 0, 0, true },
	{ "pipelined", "3:abc,5:hello,0:,", 0, R, { "abc", "hello", "" }, 0, 0, true },
	{ "postfix request", "22:postfix example.com:25,", 0, R, { "postfix example.com:25" }, 0, 0,
	  true },
	/* one too many in the length: the ',' is read as payload, then the
	 * decoder waits for the terminator */
	{ "length one too long", "23:postfix example.com:25,", 0, R, { NULL }, 0, 0, false },
	{ "length one too long, next request", "23:postfix example.com:25,19:", 0, R, { NULL },
	  STS_NETSTRING_NO_COMMA, 27, false },
	{ "postfix pipelined", "19:postfix example.com,23:postfix [mx.example]:25,", 0, R,
	  { "postfix example.com", "postfix [mx.example]:25" }, 0, 0, true },
	{ "payload with ',' and ':'", "5:a,b:c,", 0, R, { "a,b:c" }, 0, 0, true },
	{ "partial payload", "3:ab", 0, R, { NULL }, 0, 0, false },
	{ "partial length", "12", 0, R, { NULL }, 0, 0, false },
	{ "partial after ':'", "3:", 0, R, { NULL }, 0, 0, false },
	{ "missing comma only", "3:abc", 0, R, { NULL }, 0, 0, false },
	{ "one then partial", "3:abc,4:ab", 0, R, { "abc" }, 0, 0, false },
	{ "no digits", ":abc,", 0, R, { NULL }, STS_NETSTRING_LEN_EMPTY, 1, false },
	{ "non-digit in length", "3x:abc,", 0, R, { NULL }, STS_NETSTRING_LEN_DIGIT, 2, false },
	{ "letter length", "a:,", 0, R, { NULL }, STS_NETSTRING_LEN_DIGIT, 1, false },
	{ "negative length", "-1:,", 0, R, { NULL }, STS_NETSTRING_LEN_DIGIT, 1, false },
	{ "leading space", " 3:abc,", 0, R, { NULL }, STS_NETSTRING_LEN_DIGIT, 1, false },
	{ "plus sign", "+3:abc,", 0, R, { NULL }, STS_NETSTRING_LEN_DIGIT, 1, false },
	{ "leading zero", "03:abc,", 0, R, { NULL }, STS_NETSTRING_LEN_ZERO, 2, false },
	{ "double zero", "00:,", 0, R, { NULL }, STS_NETSTRING_LEN_ZERO, 2, false },
	{ "missing comma", "3:abcd", 0, R, { NULL }, STS_NETSTRING_NO_COMMA, 6, false },
	{ "wrong terminator", "3:abc;", 0, R, { NULL }, STS_NETSTRING_NO_COMMA, 6, false },
	{ "newline terminator", "3:abc\n", 0, R, { NULL }, STS_NETSTRING_NO_COMMA, 6, false },
	{ "empty then no comma", "0:x", 0, R, { NULL }, STS_NETSTRING_NO_COMMA, 3, false },
	{ "good then garbage", "3:abc,x", 0, R, { "abc" }, STS_NETSTRING_LEN_DIGIT, 7, false },
	{ "good then bad comma", "3:abc,1:ab", 0, R, { "abc" }, STS_NETSTRING_NO_COMMA, 10, false },
	{ "at the limit (length only)", "10000:", 0, R, { NULL }, 0, 0, false },
	{ "over the limit", "10001:", 0, R, { NULL }, STS_NETSTRING_TOO_LONG, 5, false },
	{ "over the limit by a digit", "100000:", 0, R, { NULL }, STS_NETSTRING_TOO_LONG, 6, false },
	{ "huge length", "99999999999999999999999999999999:", 0, R, { NULL },
	  STS_NETSTRING_TOO_LONG, 5, false },
	{ "2^64", "18446744073709551616:", 0, R, { NULL }, STS_NETSTRING_TOO_LONG, 5, false },
	{ "over the limit, no ':' yet", "20000", 0, R, { NULL }, STS_NETSTRING_TOO_LONG, 5, false },
	{ "peer's limit is not ours", "1025:", 0, R, { NULL }, 0, 0, false },
	{ "max 0: empty ok", "0:,", 0, 0, { "" }, 0, 0, true },
	{ "max 0: one byte too long", "1:a,", 0, 0, { NULL }, STS_NETSTRING_TOO_LONG, 1, false },
	{ "max 9", "9:123456789,", 0, 9, { "123456789" }, 0, 0, true },
	{ "max 9: 10 too long", "10:", 0, 9, { NULL }, STS_NETSTRING_TOO_LONG, 2, false },
	{ "NUL before the length", "\0" "3:abc,", 7, R, { NULL }, STS_NETSTRING_LEN_DIGIT, 1,
	  false },
	{ "HTTP client", "GET / HTTP/1.1\r\n", 0, R, { NULL }, STS_NETSTRING_LEN_DIGIT, 1, false },
};
#undef R

struct ns_result {
	char payloads[8][64];
	size_t n;
	enum sts_netstring_error err;
	uint64_t err_offset;
	bool idle;
};

/* Feeds `in` in chunks (chunk 0: one feed; otherwise chunk-sized feeds; a
 * split point > 0 cuts it in two instead). */
static void
ns_run(const struct ns_case *c, size_t len, size_t chunk, size_t split, struct ns_result *r)
{
	struct sts_netstring_dec d;
	memset(r, 0, sizeof *r);
	assert_int_equal(sts_netstring_dec_init(&d, c->max), STS_OK);
	size_t pos = 0;
	while (pos < len && r->err == STS_NETSTRING_OK) {
		size_t n = len - pos;
		if (split > 0)
			n = pos < split ? split - pos : len - pos;
		else if (chunk > 0 && n > chunk)
			n = chunk;
		const char *p = c->in + pos;
		pos += n;
		while (n > 0) {
			size_t used = 0;
			struct sts_bytes pl;
			enum sts_netstring_rc rc = sts_netstring_dec_feed(&d, p, n, &used, &pl);
			assert_true(used <= n);
			if (rc == STS_NETSTRING_PAYLOAD) {
				assert_true(used > 0);
				assert_true(pl.len <= c->max);
				assert_int_equal(((const char *)pl.ptr)[pl.len], '\0');
				assert_true(r->n < 8 && pl.len < 64);
				memcpy(r->payloads[r->n++], pl.ptr, pl.len + 1);
			} else if (rc == STS_NETSTRING_ERROR) {
				assert_true(d.reply_ok);
				assert_int_not_equal(d.error, STS_NETSTRING_OK);
				r->err = d.error;
				r->err_offset = d.offset;
				/* sticky: more input is swallowed, no second reply */
				size_t u2 = 0;
				assert_int_equal(sts_netstring_dec_feed(&d, "3:abc,", 6, &u2, &pl),
						 STS_NETSTRING_ERROR);
				assert_int_equal(u2, 6);
				assert_false(d.reply_ok);
				assert_null(pl.ptr);
				break;
			} else {
				assert_int_equal(rc, STS_NETSTRING_MORE);
				assert_int_equal(used, n);
				assert_null(pl.ptr);
			}
			p += used;
			n -= used;
		}
	}
	r->idle = sts_netstring_dec_idle(&d);
	sts_netstring_dec_free(&d);
}

static void
ns_expect(const struct ns_case *c, const struct ns_result *r, const char *mode)
{
	size_t want = 0;
	while (want < 5 && c->payloads[want] != NULL)
		want++;
	if (r->n != want)
		fail_msg("%s (%s): %zu payloads, want %zu", c->name, mode, r->n, want);
	for (size_t i = 0; i < want; i++)
		assert_string_equal(r->payloads[i], c->payloads[i]);
	if (r->err != c->err)
		fail_msg("%s (%s): error %d (%s), want %d", c->name, mode, r->err,
			 sts_netstring_strerror(r->err), c->err);
	if (c->err != STS_NETSTRING_OK)
		assert_int_equal(r->err_offset, c->err_offset);
	else
		assert_int_equal(r->idle, c->idle);
}

static void
test_netstring_case(void **state)
{
	const struct ns_case *c = *state;
	size_t len = c->in_len ? c->in_len : strlen(c->in);
	struct ns_result r;
	ns_run(c, len, 0, 0, &r);
	ns_expect(c, &r, "one feed");
	ns_run(c, len, 1, 0, &r);
	ns_expect(c, &r, "byte by byte");
	ns_run(c, len, 2, 0, &r);
	ns_expect(c, &r, "two bytes");
	for (size_t s = 1; s < len; s++) {
		ns_run(c, len, 0, s, &r);
		char mode[32];
		snprintf(mode, sizeof mode, "split at %zu", s);
		ns_expect(c, &r, mode);
	}
}

/* NUL bytes inside a payload are data. */
static void
test_netstring_nul_payload(void **state)
{
	(void)state;
	struct sts_netstring_dec d;
	assert_int_equal(sts_netstring_dec_init(&d, 16), STS_OK);
	size_t used;
	struct sts_bytes pl;
	assert_int_equal(sts_netstring_dec_feed(&d, "3:a\0c,", 6, &used, &pl), STS_NETSTRING_PAYLOAD);
	assert_int_equal(used, 6);
	assert_int_equal(pl.len, 3);
	assert_memory_equal(pl.ptr, "a\0c", 3);
	assert_true(sts_netstring_dec_idle(&d));
	sts_netstring_dec_free(&d);
}

/* A request of exactly the limit passes, one byte more fails at the length. */
static void
test_netstring_limit(void **state)
{
	(void)state;
	size_t n = STS_SM_REQUEST_MAX;
	char *in = malloc(n + 16);
	int hl = snprintf(in, 16, "%zu:", n);
	memset(in + hl, 'x', n);
	in[hl + (int)n] = ',';
	struct sts_netstring_dec d;
	assert_int_equal(sts_netstring_dec_init(&d, STS_SM_REQUEST_MAX), STS_OK);
	size_t used;
	struct sts_bytes pl;
	assert_int_equal(sts_netstring_dec_feed(&d, in, (size_t)hl + n + 1, &used, &pl),
			 STS_NETSTRING_PAYLOAD);
	assert_int_equal(pl.len, n);
	assert_int_equal(used, (size_t)hl + n + 1);
	/* the decoder is reusable at once: a second one, fed in 7-byte chunks */
	size_t got = 0, pos = 0;
	while (pos < (size_t)hl + n + 1) {
		size_t k = (size_t)hl + n + 1 - pos < 7 ? (size_t)hl + n + 1 - pos : 7;
		enum sts_netstring_rc rc = sts_netstring_dec_feed(&d, in + pos, k, &used, &pl);
		assert_int_not_equal(rc, STS_NETSTRING_ERROR);
		if (rc == STS_NETSTRING_PAYLOAD)
			got = pl.len;
		pos += used;
	}
	assert_int_equal(got, n);
	sts_netstring_dec_free(&d);

	assert_int_equal(sts_netstring_dec_init(&d, STS_NETSTRING_LIMIT + 1), STS_EINVAL);
	sts_netstring_dec_free(&d);
	free(in);
}

static void
test_netstring_encode(void **state)
{
	(void)state;
	struct sts_buf b;
	sts_buf_init(&b, 64);
	assert_int_equal(sts_netstring_encode(&b, "abc", 3, STS_SM_REPLY_MAX), STS_OK);
	assert_string_equal(sts_buf_cstr(&b), "3:abc,");
	assert_int_equal(sts_netstring_encode(&b, NULL, 0, STS_SM_REPLY_MAX), STS_OK);
	assert_string_equal(sts_buf_cstr(&b), "3:abc,0:,");
	assert_int_equal(sts_netstring_encode(&b, "NOTFOUND ", 9, STS_SM_REPLY_MAX), STS_OK);
	assert_string_equal(sts_buf_cstr(&b), "3:abc,0:,9:NOTFOUND ,");
	/* payload over the ceiling, and the buffer's own ceiling: unchanged */
	assert_int_equal(sts_netstring_encode(&b, "abcd", 4, 3), STS_ETOOBIG);
	char big[60];
	memset(big, 'y', sizeof big);
	assert_int_equal(sts_netstring_encode(&b, big, sizeof big, STS_SM_REPLY_MAX), STS_ETOOBIG);
	assert_string_equal(sts_buf_cstr(&b), "3:abc,0:,9:NOTFOUND ,");
	assert_int_equal(sts_netstring_encode(&b, "a", 1, STS_NETSTRING_LIMIT + 1), STS_EINVAL);
	sts_buf_free(&b);

	/* round trip of a reply of the largest size */
	size_t n = STS_SM_REPLY_MAX;
	char *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + i % 26);
	sts_buf_init(&b, n + 16);
	assert_int_equal(sts_netstring_encode(&b, p, n, STS_SM_REPLY_MAX), STS_OK);
	assert_int_equal(sts_netstring_encode(&b, p, n + 1, STS_SM_REPLY_MAX), STS_ETOOBIG);
	struct sts_netstring_dec d;
	assert_int_equal(sts_netstring_dec_init(&d, STS_SM_REPLY_MAX), STS_OK);
	size_t used;
	struct sts_bytes pl;
	assert_int_equal(sts_netstring_dec_feed(&d, b.data, b.len, &used, &pl),
			 STS_NETSTRING_PAYLOAD);
	assert_int_equal(used, b.len);
	assert_int_equal(pl.len, n);
	assert_memory_equal(pl.ptr, p, n);
	sts_netstring_dec_free(&d);
	sts_buf_free(&b);
	free(p);
}

static void
test_netstring_strerror(void **state)
{
	(void)state;
	for (int e = STS_NETSTRING_OK; e <= STS_NETSTRING_NO_COMMA; e++) {
		const char *s = sts_netstring_strerror((enum sts_netstring_error)e);
		assert_non_null(s);
		assert_true(strlen(s) > 0 && strlen(s) < 64);
	}
	assert_string_equal(sts_netstring_strerror(STS_NETSTRING_TOO_LONG), "request too long");
}

/* ------------------------------------------------------------------------- */
/* Keys */

struct key_case {
	const char *key;
	enum sts_sm_key_class cls;
	const char *host;     /* DOMAIN, IP: expected host; INVALID: part of the reason */
};

static char label63[80], label64[80], name253[260], name254[260];

static const struct key_case key_cases[] = {
	{ "example.com", STS_SM_KEY_DOMAIN, "example.com" },
	{ "GOOD.LOC.", STS_SM_KEY_DOMAIN, "good.loc" },
	{ "[good.loc]", STS_SM_KEY_DOMAIN, "good.loc" },
	{ "[good.loc]:25", STS_SM_KEY_DOMAIN, "good.loc" },
	{ "[good.loc.]:25", STS_SM_KEY_DOMAIN, "good.loc" },
	{ "[Relay.Example.NET]:submission", STS_SM_KEY_DOMAIN, "relay.example.net" },
	{ "good.loc:25", STS_SM_KEY_DOMAIN, "good.loc" },
	{ "good.loc.:25", STS_SM_KEY_DOMAIN, "good.loc" },
	{ "good.loc:smtp", STS_SM_KEY_DOMAIN, "good.loc" },
	{ "localhost", STS_SM_KEY_DOMAIN, "localhost" },
	{ "a_b.example", STS_SM_KEY_DOMAIN, "a_b.example" },
	{ "xn--mx-lka.example", STS_SM_KEY_DOMAIN, "xn--mx-lka.example" },
	{ "m\xc3\xb8x.example", STS_SM_KEY_DOMAIN, "xn--mx-lka.example" },
	{ "M\xc3\x98X.EXAMPLE.", STS_SM_KEY_DOMAIN, "xn--mx-lka.example" },
	{ "b\xc3\xbc" "cher.example", STS_SM_KEY_DOMAIN, "xn--bcher-kva.example" },
	{ "[m\xc3\xb8x.example]:25", STS_SM_KEY_DOMAIN, "xn--mx-lka.example" },
	{ ".parent.example", STS_SM_KEY_NOTFOUND_PARENT, "" },
	{ ".good.loc", STS_SM_KEY_NOTFOUND_PARENT, "" },
	{ "..", STS_SM_KEY_NOTFOUND_PARENT, "" },
	{ ".m\xc3\xb8x.example", STS_SM_KEY_NOTFOUND_PARENT, "" },
	{ "1.2.3.4", STS_SM_KEY_NOTFOUND_IP, "1.2.3.4" },
	{ "1.2.3.4.", STS_SM_KEY_NOTFOUND_IP, "1.2.3.4" },
	{ "[1.2.3.4]", STS_SM_KEY_NOTFOUND_IP, "1.2.3.4" },
	{ "[1.2.3.4]:25", STS_SM_KEY_NOTFOUND_IP, "1.2.3.4" },
	{ "1.2.3.4:25", STS_SM_KEY_NOTFOUND_IP, "1.2.3.4" },
	{ "127.1", STS_SM_KEY_NOTFOUND_IP, "127.1" },
	{ "2001:db8::1", STS_SM_KEY_NOTFOUND_IP, "2001:db8::1" },
	{ "2001:DB8::1", STS_SM_KEY_NOTFOUND_IP, "2001:db8::1" },
	{ "::1", STS_SM_KEY_NOTFOUND_IP, "::1" },
	{ "::ffff:192.0.2.1", STS_SM_KEY_NOTFOUND_IP, "::ffff:192.0.2.1" },
	{ "[2001:db8::1]", STS_SM_KEY_NOTFOUND_IP, "2001:db8::1" },
	{ "[2001:db8::1]:25", STS_SM_KEY_NOTFOUND_IP, "2001:db8::1" },
	{ "[IPv6:2001:db8::1]", STS_SM_KEY_NOTFOUND_IP, "2001:db8::1" },
	{ "[ipv6:2001:db8::1]:25", STS_SM_KEY_NOTFOUND_IP, "2001:db8::1" },
	{ "", STS_SM_KEY_INVALID, "empty key" },
	{ ".", STS_SM_KEY_INVALID, "empty name" },
	{ "a..b", STS_SM_KEY_INVALID, "empty label" },
	{ "a.b..", STS_SM_KEY_INVALID, "empty label" },
	{ "[.a.b]", STS_SM_KEY_INVALID, "empty label" },
	{ "[]", STS_SM_KEY_INVALID, "empty name" },
	{ "[]:25", STS_SM_KEY_INVALID, "empty name" },
	{ "[.]", STS_SM_KEY_INVALID, "empty name" },
	{ "[good.loc", STS_SM_KEY_INVALID, "without" },
	{ "good.loc]", STS_SM_KEY_INVALID, "brackets" },
	{ "[[good.loc]]", STS_SM_KEY_INVALID, "brackets" },
	{ "[good.loc]x", STS_SM_KEY_INVALID, "port" },
	{ "[good.loc]:", STS_SM_KEY_INVALID, "port" },
	{ "[good.loc]:25:26", STS_SM_KEY_INVALID, "port" },
	{ "good.loc:", STS_SM_KEY_INVALID, "port" },
	{ "good.loc:2/5", STS_SM_KEY_INVALID, "port" },
	{ ":25", STS_SM_KEY_INVALID, "empty name" },
	{ "a:b:c", STS_SM_KEY_INVALID, "IPv6" },
	{ "2001:db8:", STS_SM_KEY_INVALID, "IPv6" },
	{ "[ipv6:nonsense]", STS_SM_KEY_INVALID, "IPv6" },
	{ "[ipv6:1.2.3.4]", STS_SM_KEY_INVALID, "IPv6" },
	{ "foo.123", STS_SM_KEY_INVALID, "numeric" },
	{ "a b", STS_SM_KEY_INVALID, "white space" },
	{ " good.loc", STS_SM_KEY_INVALID, "white space" },
	{ "good.loc\t", STS_SM_KEY_INVALID, "white space" },
	{ "good.loc\r\n", STS_SM_KEY_INVALID, "control" },
	{ "a\x01" "b", STS_SM_KEY_INVALID, "control" },
	{ "a\x7f", STS_SM_KEY_INVALID, "control" },
	{ "a/b.example", STS_SM_KEY_INVALID, "invalid character" },
	{ "a{b}.example", STS_SM_KEY_INVALID, "invalid character" },
	{ "a=b.example", STS_SM_KEY_INVALID, "invalid character" },
	{ "\xff.example", STS_SM_KEY_INVALID, "UTF-8" },
	{ "\xc3\x28.example", STS_SM_KEY_INVALID, "UTF-8" },
	{ "\xc0\xaf.example", STS_SM_KEY_INVALID, "UTF-8" },      /* overlong '/' */
	{ "\xed\xa0\x80.example", STS_SM_KEY_INVALID, "UTF-8" },  /* surrogate */
	{ "\xe2\x80\x8b.example", STS_SM_KEY_INVALID, "internationalised" },  /* ZWSP */
	{ "a\xc2\xa0" "b.example", STS_SM_KEY_INVALID, "internationalised" },  /* NBSP */
	{ label63, STS_SM_KEY_DOMAIN, label63 },
	{ label64, STS_SM_KEY_INVALID, "63" },
	{ name253, STS_SM_KEY_DOMAIN, name253 },
	{ name254, STS_SM_KEY_INVALID, "253" },
};

static void
check_key(const char *key, size_t len, const struct key_case *c)
{
	struct sts_sm_request r;
	enum sts_sm_key_class cls = sts_sm_normalize_key(key, len, &r);
	assert_int_equal(cls, r.cls);
	if (cls != c->cls)
		fail_msg("key '%s': class %s (%s), want %s", key, sts_sm_key_class_name(cls),
			 r.reason, sts_sm_key_class_name(c->cls));
	assert_ptr_equal(r.key, key);
	assert_int_equal(r.key_len, len);
	assert_non_null(r.reason);
	switch (c->cls) {
	case STS_SM_KEY_DOMAIN:
	case STS_SM_KEY_NOTFOUND_IP:
		assert_string_equal(r.host, c->host);
		assert_string_equal(r.reason, "");
		break;
	case STS_SM_KEY_NOTFOUND_PARENT:
		assert_string_equal(r.host, "");
		break;
	case STS_SM_KEY_INVALID:
		assert_string_equal(r.host, "");
		if (strstr(r.reason, c->host) == NULL)
			fail_msg("key '%s': reason '%s' lacks '%s'", key, r.reason, c->host);
		break;
	}
	/* a DOMAIN host is printable lower-case LDH/'.'/'_', labels 1-63 */
	if (cls == STS_SM_KEY_DOMAIN) {
		size_t n = strlen(r.host);
		assert_true(n > 0 && n <= STS_HOST_MAX);
		for (size_t i = 0; i < n; i++) {
			char ch = r.host[i];
			assert_true((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
				    ch == '.' || ch == '_');
		}
		/* idempotent */
		struct sts_sm_request again;
		assert_int_equal(sts_sm_normalize_key(r.host, n, &again), STS_SM_KEY_DOMAIN);
		assert_string_equal(again.host, r.host);
	}
}

static void
test_key(void **state)
{
	const struct key_case *c = *state;
	check_key(c->key, strlen(c->key), c);

	/* as a request, also through every Postfix key form that keeps the class */
	char req[600];
	int n = snprintf(req, sizeof req, "postfix %s", c->key);
	struct sts_sm_request r;
	assert_int_equal(sts_sm_parse_request(req, (size_t)n, &r), c->cls);
	assert_int_equal(r.name_len, 7);
	assert_memory_equal(r.name, "postfix", 7);
	assert_ptr_equal(r.key, req + 8);
	if (c->cls == STS_SM_KEY_DOMAIN && c->key[0] != '[' && strchr(c->key, ':') == NULL) {
		struct key_case same = *c;
		n = snprintf(req, sizeof req, "[%s]:25", c->key);
		check_key(req, (size_t)n, &same);
		n = snprintf(req, sizeof req, "[%s]", c->key);
		check_key(req, (size_t)n, &same);
		n = snprintf(req, sizeof req, "%s:25", c->key);
		check_key(req, (size_t)n, &same);
	}
}

/* A key with a NUL byte in it (the payload is binary). */
static void
test_key_nul(void **state)
{
	(void)state;
	struct sts_sm_request r;
	assert_int_equal(sts_sm_normalize_key("a\0b.example", 11, &r), STS_SM_KEY_INVALID);
	assert_int_equal(sts_sm_parse_request("postfix good.loc\0", 17, &r), STS_SM_KEY_INVALID);
}

static void
test_request_split(void **state)
{
	(void)state;
	struct sts_sm_request r;
	assert_int_equal(sts_sm_parse_request("postfix example.com", 19, &r), STS_SM_KEY_DOMAIN);
	assert_int_equal(r.name_len, 7);
	assert_int_equal(r.key_len, 11);
	assert_string_equal(r.host, "example.com");

	/* no space: name only, empty key */
	assert_int_equal(sts_sm_parse_request("postfix", 7, &r), STS_SM_KEY_INVALID);
	assert_int_equal(r.name_len, 7);
	assert_int_equal(r.key_len, 0);
	assert_string_equal(r.reason, "empty key");
	assert_int_equal(sts_sm_parse_request("postfix ", 8, &r), STS_SM_KEY_INVALID);
	assert_int_equal(r.name_len, 7);
	assert_int_equal(r.key_len, 0);

	/* "0:," : empty request */
	assert_int_equal(sts_sm_parse_request("", 0, &r), STS_SM_KEY_INVALID);
	assert_int_equal(r.name_len, 0);
	assert_int_equal(r.key_len, 0);

	/* empty name, zone names of any kind */
	assert_int_equal(sts_sm_parse_request(" good.loc", 9, &r), STS_SM_KEY_DOMAIN);
	assert_int_equal(r.name_len, 0);
	assert_int_equal(sts_sm_parse_request("strict GOOD.LOC.", 16, &r), STS_SM_KEY_DOMAIN);
	assert_memory_equal(r.name, "strict", 6);
	assert_int_equal(r.name_len, 6);
	assert_string_equal(r.host, "good.loc");

	/* split at the first space only: the rest is the key */
	assert_int_equal(sts_sm_parse_request("postfix  good.loc", 17, &r), STS_SM_KEY_INVALID);
	assert_int_equal(r.key_len, 9);
	assert_int_equal(sts_sm_parse_request("postfix a b", 11, &r), STS_SM_KEY_INVALID);
	assert_int_equal(r.key_len, 3);

	assert_string_equal(sts_sm_key_class_name(STS_SM_KEY_DOMAIN), "domain");
	assert_string_equal(sts_sm_key_class_name(STS_SM_KEY_NOTFOUND_PARENT), "parent-probe");
	assert_string_equal(sts_sm_key_class_name(STS_SM_KEY_NOTFOUND_IP), "ip-literal");
	assert_string_equal(sts_sm_key_class_name(STS_SM_KEY_INVALID), "invalid");
}

/* Keys far over the name limit are classified without trouble. */
static void
test_key_long(void **state)
{
	(void)state;
	size_t n = STS_SM_REQUEST_MAX;
	char *k = malloc(n);
	memset(k, 'a', n);
	struct sts_sm_request r;
	assert_int_equal(sts_sm_normalize_key(k, n, &r), STS_SM_KEY_INVALID);
	for (size_t i = 10; i < n; i += 11)
		k[i] = '.';
	assert_int_equal(sts_sm_normalize_key(k, n, &r), STS_SM_KEY_INVALID);
	assert_string_equal(r.reason, "name longer than 253 bytes");
	for (size_t i = 0; i + 1 < n; i += 2) {   /* U+00F8 repeated */
		k[i] = (char)0xc3;
		k[i + 1] = (char)0xb8;
	}
	assert_int_equal(sts_sm_normalize_key(k, n, &r), STS_SM_KEY_INVALID);
	free(k);
}

/* ------------------------------------------------------------------------- */
/* vectors.tsv pfkey rows */

struct pf_row {
	unsigned lineno;
	char *input;
	size_t input_len;
	const char *verdict;   /* the default (daemon) verdict */
	const char *strict;
	char name[160];
};

static void
test_pfkey_row(void **state)
{
	const struct pf_row *row = *state;
	/* the daemon has one reading: both columns must agree */
	assert_string_equal(row->verdict, row->strict);
	struct sts_sm_request r;
	char req[600];
	assert_true(row->input_len + 8 < sizeof req);
	memcpy(req, "postfix ", 8);
	memcpy(req + 8, row->input, row->input_len);
	enum sts_sm_key_class cls = sts_sm_parse_request(req, row->input_len + 8, &r);
	const char *v = row->verdict;
	if (strncmp(v, "valid", 5) == 0) {
		const char *dom = strstr(v, "policy domain ");
		assert_non_null(dom);
		dom += strlen("policy domain ");
		size_t dl = strcspn(dom, " ;(");
		if (cls != STS_SM_KEY_DOMAIN)
			fail_msg("line %u: %s (%s), want domain", row->lineno,
				 sts_sm_key_class_name(cls), r.reason);
		assert_int_equal(strlen(r.host), dl);
		assert_memory_equal(r.host, dom, dl);
		return;
	}
	assert_true(strncmp(v, "invalid", 7) == 0);
	enum sts_sm_key_class want = strstr(v, "parent-domain") != NULL ? STS_SM_KEY_NOTFOUND_PARENT
				   : strstr(v, "literal") != NULL      ? STS_SM_KEY_NOTFOUND_IP
								       : STS_SM_KEY_INVALID;
	if (cls != want)
		fail_msg("line %u: %s (%s), want %s", row->lineno, sts_sm_key_class_name(cls),
			 r.reason, sts_sm_key_class_name(want));
}

/* ------------------------------------------------------------------------- */
/* Replies */

/* Checks what Postfix would read: printable ASCII, at most
 * STS_SM_REPLY_MAX, and for "OK" only the attributes we mean to send, each a
 * single token (Postfix splits at ", \t\r\n" outside "{...}"). */
static void
check_reply(const char *s, size_t n)
{
	assert_true(n <= STS_SM_REPLY_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			fail_msg("byte 0x%02x at %zu in reply", (unsigned char)s[i], i);
	if (n == 9 && memcmp(s, "NOTFOUND ", 9) == 0)
		return;
	if (n > 5 && (memcmp(s, "TEMP ", 5) == 0 || memcmp(s, "PERM ", 5) == 0))
		return;
	assert_true(n > 16 && memcmp(s, "OK secure match=", 16) == 0);
	static const char *const names[] = { "match", "servername", "policy_type",
					     "policy_domain", "mx_host_pattern" };
	size_t i = 10;   /* after "OK secure " */
	while (i < n) {
		assert_true(s[i] != ' ' && s[i] != ',');   /* one separator, no empty token */
		size_t b = i;
		if (s[i] == '{') {
			const char *close = memchr(s + i, '}', n - i);
			assert_non_null(close);
			size_t e = (size_t)(close - s);
			assert_null(memchr(s + i + 1, '{', e - i - 1));
			assert_true(e - b > 20 && memcmp(s + b, "{ policy_string = ", 18) == 0);
			assert_true(s[e - 1] == ' ');
			i = e + 1;
		} else {
			while (i < n && s[i] != ' ')
				i++;
			const char *eq = memchr(s + b, '=', i - b);
			assert_non_null(eq);
			size_t nl = (size_t)(eq - (s + b));
			bool known = false;
			for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
				if (strlen(names[k]) == nl && memcmp(names[k], s + b, nl) == 0)
					known = true;
			if (!known)
				fail_msg("unexpected attribute '%.*s'", (int)(i - b), s + b);
			assert_true(i - b > nl + 1);   /* non-empty value */
			for (size_t k = b; k < i; k++)
				assert_true(s[k] != '{' && s[k] != '}' && s[k] != ',');
		}
		if (i < n) {
			assert_true(s[i] == ' ');
			i++;
			assert_true(i < n);   /* no trailing space */
		}
	}
}

struct pol {
	struct sts_policy p;
	const char *mx[16];
	struct sts_ext ext[8];
};

static void
pol_init(struct pol *x, enum sts_mode mode, const char *const *mx, uint32_t max_age)
{
	memset(x, 0, sizeof *x);
	x->p.has_version = true;
	x->p.mode = mode;
	x->p.has_max_age = true;
	x->p.max_age = max_age;
	x->p.max_age_raw = max_age;
	for (size_t i = 0; mx != NULL && i < 16 && mx[i] != NULL; i++)
		x->mx[x->p.n_mx++] = mx[i];
	x->p.mx = x->mx;
	x->p.ext = x->ext;
}

struct reply_case {
	const char *name;
	enum sts_mode mode;            /* STS_MODE_UNSET with no_policy: NULL policy */
	bool no_policy;
	const char *mx[16];
	struct sts_sm_reply_opts opts;
	int rc;
	const char *reply;
	size_t n_invalid, n_duplicate;
};

static const struct reply_case reply_cases[] = {
	{ "enforce", STS_MODE_ENFORCE, false, { "mail.loc" }, { false, true, false, NULL }, STS_OK,
	  "OK secure match=mail.loc servername=hostname", 0, 0 },
	{ "enforce, require_sni off", STS_MODE_ENFORCE, false, { "mail.loc" },
	  { false, false, false, NULL }, STS_OK, "OK secure match=mail.loc", 0, 0 },
	{ "testing", STS_MODE_TESTING, false, { "mail.loc" }, { false, true, false, NULL }, STS_OK,
	  "NOTFOUND ", 0, 0 },
	{ "testing, tlsrpt", STS_MODE_TESTING, false, { "mail.loc" },
	  { false, true, true, "testing.loc" }, STS_OK, "NOTFOUND ", 0, 0 },
	{ "testing, strict_testing", STS_MODE_TESTING, false, { "mail.loc" },
	  { true, true, false, NULL }, STS_OK, "OK secure match=mail.loc servername=hostname", 0,
	  0 },
	{ "none", STS_MODE_NONE, false, { NULL }, { false, true, false, NULL }, STS_OK, "NOTFOUND ",
	  0, 0 },
	{ "none, strict_testing", STS_MODE_NONE, false, { "mail.loc" }, { true, true, true, "a.loc" },
	  STS_OK, "NOTFOUND ", 0, 0 },
	{ "unset mode", STS_MODE_UNSET, false, { "mail.loc" }, { true, true, false, NULL }, STS_OK,
	  "NOTFOUND ", 0, 0 },
	{ "no policy", STS_MODE_UNSET, true, { NULL }, { true, true, true, "a.loc" }, STS_OK,
	  "NOTFOUND ", 0, 0 },
	{ "wildcard", STS_MODE_ENFORCE, false, { "*.multi.loc" }, { false, true, false, NULL },
	  STS_OK, "OK secure match=.multi.loc servername=hostname", 0, 0 },
	{ "dedup in policy order", STS_MODE_ENFORCE, false,
	  { "mx2.b.loc", "mx1.b.loc", "MX2.B.LOC", "*.b.loc", "mx1.b.loc", "mx3.b.loc" },
	  { false, false, false, NULL }, STS_OK,
	  "OK secure match=mx2.b.loc:mx1.b.loc:.b.loc:mx3.b.loc", 0, 2 },
	{ "upper case lowered", STS_MODE_ENFORCE, false, { "MX.Upper.LOC", "*.Multi.Loc" },
	  { false, true, false, NULL }, STS_OK,
	  "OK secure match=mx.upper.loc:.multi.loc servername=hostname", 0, 0 },
	{ "hostile patterns dropped", STS_MODE_ENFORCE, false,
	  { "mail.loc ciphers=null protocols=TLSv1", "evil{.loc", "a.loc}", "x.loc\n", "192.0.2.1",
	    "", "*.*.b.loc", "c*.loc", ".x.loc", "x.loc.", "a:b.loc", "-a.loc", "good.loc",
	    "t\tab.loc" },
	  { false, true, true, "hostile.loc" }, STS_OK,
	  "OK secure match=good.loc servername=hostname policy_type=sts"
	  " policy_domain=hostile.loc mx_host_pattern=good.loc"
	  " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
	  " { policy_string = mx: good.loc } { policy_string = max_age: 86400 }",
	  13, 0 },
	{ "more hostile patterns", STS_MODE_ENFORCE, false,
	  { "a,b.loc", "a=b.loc", "*", "*.", "a..b", "a_b.loc", "caf\xc3\xa9.loc", "a.123",
	    "xn--mx-lka.example" },
	  { false, false, false, NULL }, STS_OK, "OK secure match=xn--mx-lka.example", 8, 0 },
	{ "nothing valid left", STS_MODE_ENFORCE, false, { "a b", "{}" },
	  { false, true, false, NULL }, STS_EINVAL, "", 2, 0 },
	{ "no mx at all", STS_MODE_ENFORCE, false, { NULL }, { false, true, false, NULL },
	  STS_EINVAL, "", 0, 0 },
	{ "tlsrpt", STS_MODE_ENFORCE, false, { "mx1.example.com", "*.example.net", "mx1.example.com" },
	  { false, true, true, "example.com" }, STS_OK,
	  "OK secure match=mx1.example.com:.example.net servername=hostname policy_type=sts"
	  " policy_domain=example.com mx_host_pattern=mx1.example.com"
	  " mx_host_pattern=*.example.net { policy_string = version: STSv1 }"
	  " { policy_string = mode: enforce } { policy_string = mx: mx1.example.com }"
	  " { policy_string = mx: *.example.net } { policy_string = mx: mx1.example.com }"
	  " { policy_string = max_age: 86400 }", 0, 1 },
	{ "tlsrpt, strict testing, no sni", STS_MODE_TESTING, false, { "mail.loc" },
	  { true, false, true, "testing.loc" }, STS_OK,
	  "OK secure match=mail.loc policy_type=sts policy_domain=testing.loc"
	  " mx_host_pattern=mail.loc { policy_string = version: STSv1 }"
	  " { policy_string = mode: testing } { policy_string = mx: mail.loc }"
	  " { policy_string = max_age: 86400 }", 0, 0 },
	{ "tlsrpt, bad domain", STS_MODE_ENFORCE, false, { "mail.loc" },
	  { false, true, true, "exa mple.com policy_failure=validation-failure" }, STS_OK,
	  "OK secure match=mail.loc servername=hostname", 0, 0 },
	{ "tlsrpt, domain not normalised", STS_MODE_ENFORCE, false, { "mail.loc" },
	  { false, true, true, "Example.COM." }, STS_OK,
	  "OK secure match=mail.loc servername=hostname", 0, 0 },
	{ "tlsrpt, domain is an IP", STS_MODE_ENFORCE, false, { "mail.loc" },
	  { false, true, true, "192.0.2.1" }, STS_OK,
	  "OK secure match=mail.loc servername=hostname", 0, 0 },
	{ "tlsrpt, no domain", STS_MODE_ENFORCE, false, { "mail.loc" },
	  { false, true, true, NULL }, STS_OK, "OK secure match=mail.loc servername=hostname", 0,
	  0 },
};

static void
test_reply_case(void **state)
{
	const struct reply_case *c = *state;
	struct pol x;
	pol_init(&x, c->mode, c->mx, 86400);
	struct sts_buf b;
	sts_buf_init(&b, 4 * STS_SM_REPLY_MAX);
	assert_int_equal(sts_buf_puts(&b, "prefix|"), STS_OK);   /* builders append */
	struct sts_sm_reply_info info;
	int rc = sts_sm_reply_policy(c->no_policy ? NULL : &x.p, &c->opts, &b, &info);
	assert_int_equal(rc, c->rc);
	const char *got = sts_buf_cstr(&b) + 7;
	assert_memory_equal(sts_buf_cstr(&b), "prefix|", 7);
	assert_string_equal(got, c->reply);
	if (rc == STS_OK)
		check_reply(got, b.len - 7);
	assert_int_equal(info.n_invalid, c->n_invalid);
	assert_int_equal(info.n_duplicate, c->n_duplicate);
	assert_int_equal(info.secure, strncmp(c->reply, "OK ", 3) == 0);
	bool bad_domain = c->opts.tlsrpt && info.secure && strstr(c->reply, "policy_type") == NULL;
	assert_int_equal(info.tlsrpt_omitted, bad_domain);
	assert_false(info.policy_strings_truncated);
	sts_buf_free(&b);
}

/* Extension lines: kept when safe, left out when they could break the
 * "{ ... }" syntax or carry non-ASCII. */
static void
test_reply_extensions(void **state)
{
	(void)state;
	static const char *const mx[] = { "mail.loc", NULL };
	struct pol x;
	pol_init(&x, STS_MODE_ENFORCE, mx, 604800);
	x.ext[0] = (struct sts_ext){ "note", "hello, world = 1" };
	x.ext[1] = (struct sts_ext){ "brace", "a{b" };
	x.ext[2] = (struct sts_ext){ "close", "x } policy_failure=sts-webpki-invalid {" };
	x.ext[3] = (struct sts_ext){ "bad name!", "v" };
	x.ext[4] = (struct sts_ext){ "utf8", "caf\xc3\xa9" };
	x.ext[5] = (struct sts_ext){ "ctl", "a\nb" };
	x.ext[6] = (struct sts_ext){ "empty", "" };
	x.ext[7] = (struct sts_ext){ "x-ok", "1" };
	x.p.n_ext = 8;
	x.p.max_age_raw = 9999999999u;   /* published above the maximum: echoed as written */
	x.p.max_age = STS_MAX_AGE_MAX;
	struct sts_sm_reply_opts o = { false, true, true, "example.com" };
	struct sts_buf b;
	sts_buf_init(&b, STS_SM_REPLY_MAX);
	struct sts_sm_reply_info info;
	assert_int_equal(sts_sm_reply_policy(&x.p, &o, &b, &info), STS_OK);
	assert_string_equal(sts_buf_cstr(&b),
			    "OK secure match=mail.loc servername=hostname policy_type=sts"
			    " policy_domain=example.com mx_host_pattern=mail.loc"
			    " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
			    " { policy_string = mx: mail.loc } { policy_string = max_age: 9999999999 }"
			    " { policy_string = note: hello, world = 1 } { policy_string = x-ok: 1 }");
	check_reply(b.data, b.len);
	assert_int_equal(info.n_policy_strings, 6);
	assert_int_equal(info.n_ext_dropped, 6);
	sts_buf_free(&b);
}

/* A pattern of `len` bytes, distinct per i. */
static char *
long_pattern(size_t i, size_t len)
{
	char *s = tu_keep(malloc(len + 1));
	int n = snprintf(s, len + 1, "m%zu.", i);
	for (size_t k = (size_t)n; k < len; k++)
		s[k] = ((k - (size_t)n) % 50 == 49) ? '.' : 'a';
	memcpy(s + len - 4, ".loc", 4);
	s[len - 5] = 'a';   /* no empty label before ".loc" */
	s[len] = '\0';
	return s;
}

/* Size limits: the whole reply always stays <= STS_SM_REPLY_MAX. */
static void
run_big(size_t n, size_t len, int want_rc, bool omitted, bool truncated)
{
	struct sts_policy p;
	memset(&p, 0, sizeof p);
	p.mode = STS_MODE_ENFORCE;
	p.has_max_age = true;
	p.max_age = 86400;
	p.n_mx = n;
	const char **mx = malloc(n * sizeof *mx);
	for (size_t i = 0; i < n; i++)
		mx[i] = long_pattern(i, len);
	p.mx = mx;
	struct sts_sm_reply_opts o = { false, true, true, "big.example" };
	struct sts_buf b;
	sts_buf_init(&b, 2 * STS_SM_REPLY_MAX);
	assert_int_equal(sts_buf_puts(&b, "x"), STS_OK);
	struct sts_sm_reply_info info;
	assert_int_equal(sts_sm_reply_policy(&p, &o, &b, &info), want_rc);
	if (want_rc != STS_OK) {
		assert_string_equal(sts_buf_cstr(&b), "x");
	} else {
		check_reply(b.data + 1, b.len - 1);
		assert_int_equal(info.n_match, n);
		assert_int_equal(info.tlsrpt_omitted, omitted);
		assert_int_equal(info.policy_strings_truncated, truncated);
		if (truncated)
			assert_true(info.n_policy_strings >= 2 && info.n_policy_strings < n + 3);
		if (!omitted && !truncated)
			assert_int_equal(info.n_policy_strings, n + 3);
	}
	free(mx);
	sts_buf_free(&b);
}

static void
test_reply_sizes(void **state)
{
	(void)state;
	run_big(100, 100, STS_OK, false, false);
	run_big(300, 100, STS_OK, false, true);    /* policy strings cut */
	run_big(480, 100, STS_OK, true, false);    /* mx_host_pattern list does not fit */
	run_big(500, 250, STS_ETOOBIG, false, false);  /* match= alone does not fit */
}

/* The whole way: a policy body parsed, then answered. */
static void
test_reply_parsed(void **state)
{
	(void)state;
	static const char body[] = "version: STSv1\r\nmode: enforce\r\nmx: MX.Upper.LOC.\r\n"
				   "mx: *.multi.loc\r\nmx: mx.upper.loc\r\nmax_age: 86400\r\n";
	struct sts_diags d;
	struct sts_policy p;
	sts_diags_init(&d);
	assert_int_equal(sts_policy_parse(body, sizeof body - 1, 0, &p, &d), STS_OK);
	struct sts_sm_reply_opts o = { false, true, true, "upper.loc" };
	struct sts_buf b;
	sts_buf_init(&b, STS_SM_REPLY_MAX);
	assert_int_equal(sts_sm_reply_policy(&p, &o, &b, NULL), STS_OK);
	assert_string_equal(sts_buf_cstr(&b),
			    "OK secure match=mx.upper.loc:.multi.loc servername=hostname"
			    " policy_type=sts policy_domain=upper.loc mx_host_pattern=mx.upper.loc"
			    " mx_host_pattern=*.multi.loc { policy_string = version: STSv1 }"
			    " { policy_string = mode: enforce } { policy_string = mx: mx.upper.loc }"
			    " { policy_string = mx: *.multi.loc } { policy_string = mx: mx.upper.loc }"
			    " { policy_string = max_age: 86400 }");
	check_reply(b.data, b.len);
	sts_policy_clear(&p);
	sts_buf_free(&b);

	/* the peer's injection example does not even parse */
	static const char evil[] = "version: STSv1\nmode: enforce\n"
				   "mx: mail.loc ciphers=null protocols=TLSv1\nmax_age: 86400\n";
	sts_diags_init(&d);
	assert_int_equal(sts_policy_parse(evil, sizeof evil - 1, 0, &p, &d), STS_EINVAL);
	sts_policy_clear(&p);
}

static void
test_reply_simple(void **state)
{
	(void)state;
	struct sts_buf b;
	sts_buf_init(&b, STS_SM_REPLY_MAX);
	assert_int_equal(sts_sm_reply_notfound(&b), STS_OK);
	assert_string_equal(sts_buf_cstr(&b), "NOTFOUND ");
	sts_buf_reset(&b);
	assert_int_equal(sts_sm_reply_temp(&b, "policy fetch in progress"), STS_OK);
	assert_string_equal(sts_buf_cstr(&b), "TEMP policy fetch in progress");
	sts_buf_reset(&b);
	assert_int_equal(sts_sm_reply_perm(&b, "bad netstring\r\nOK secure"), STS_OK);
	assert_string_equal(sts_buf_cstr(&b), "PERM bad netstring\\x0d\\x0aOK secure");
	check_reply(b.data, b.len);
	sts_buf_reset(&b);
	assert_int_equal(sts_sm_reply_temp(&b, NULL), STS_OK);
	assert_string_equal(sts_buf_cstr(&b), "TEMP unspecified");
	sts_buf_reset(&b);
	assert_int_equal(sts_sm_reply_perm(&b, ""), STS_OK);
	assert_string_equal(sts_buf_cstr(&b), "PERM unspecified");
	sts_buf_reset(&b);
	assert_int_equal(sts_sm_reply_temp(&b, "caf\xc3\xa9 \x7f"), STS_OK);
	assert_string_equal(sts_buf_cstr(&b), "TEMP caf\\xc3\\xa9 \\x7f");
	sts_buf_reset(&b);
	char longr[2000];
	memset(longr, 'r', sizeof longr - 1);
	longr[sizeof longr - 1] = '\0';
	assert_int_equal(sts_sm_reply_temp(&b, longr), STS_OK);
	assert_true(b.len <= 5 + STS_SM_REASON_MAX);
	assert_memory_equal(b.data + b.len - 3, "...", 3);
	check_reply(b.data, b.len);
	sts_buf_reset(&b);

	/* opts are required; a full buffer leaves out unchanged */
	static const char *const mx[] = { "mail.loc", NULL };
	struct pol x;
	pol_init(&x, STS_MODE_ENFORCE, mx, 86400);
	struct sts_sm_reply_info info;
	assert_int_equal(sts_sm_reply_policy(&x.p, NULL, &b, &info), STS_EINVAL);
	assert_int_equal(b.len, 0);
	sts_buf_free(&b);
	sts_buf_init(&b, 20);
	struct sts_sm_reply_opts o = { false, true, false, NULL };
	assert_int_equal(sts_sm_reply_policy(&x.p, &o, &b, &info), STS_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_false(info.secure);
	assert_int_equal(sts_sm_reply_perm(&b, "0123456789012345678901234"), STS_ETOOBIG);
	assert_int_equal(b.len, 0);
	sts_buf_free(&b);
}

/* ------------------------------------------------------------------------- */

int
main(void)
{
	memset(label63, 'a', 63);
	memcpy(label63 + 63, ".example", 9);
	memset(label64, 'a', 64);
	memcpy(label64 + 64, ".example", 9);
	/* 253 = 4 labels of 63 + 3 dots - ... : 63.63.63.61 */
	memset(name253, 'b', 253);
	name253[63] = name253[127] = name253[191] = '.';
	name253[253] = '\0';
	memcpy(name254, name253, 253);
	name254[253] = 'b';
	name254[254] = '\0';

	size_t len;
	char *text = tu_keep(tu_read_file(tu_src_path("tests/data/vectors.tsv"), &len));
	size_t n_ns = sizeof ns_cases / sizeof ns_cases[0];
	size_t n_key = sizeof key_cases / sizeof key_cases[0];
	size_t n_reply = sizeof reply_cases / sizeof reply_cases[0];
	size_t cap = n_ns + n_key + n_reply + 64, n = 0;
	struct CMUnitTest *tests = calloc(cap, sizeof *tests);

	for (size_t i = 0; i < n_ns; i++) {
		char *name = tu_keep(malloc(96));
		snprintf(name, 96, "netstring: %s", ns_cases[i].name);
		tests[n++] = (struct CMUnitTest){ name, test_netstring_case, NULL, NULL,
						  (void *)&ns_cases[i] };
	}
	for (size_t i = 0; i < n_key; i++) {
		char *name = tu_keep(malloc(96));
		char esc[64];
		sts_escape(key_cases[i].key, strlen(key_cases[i].key), esc, sizeof esc);
		snprintf(name, 96, "key '%s' %s", esc, sts_sm_key_class_name(key_cases[i].cls));
		tests[n++] = (struct CMUnitTest){ name, test_key, NULL, NULL, (void *)&key_cases[i] };
	}
	for (size_t i = 0; i < n_reply; i++) {
		char *name = tu_keep(malloc(96));
		snprintf(name, 96, "reply: %s", reply_cases[i].name);
		tests[n++] = (struct CMUnitTest){ name, test_reply_case, NULL, NULL,
						  (void *)&reply_cases[i] };
	}
	size_t n_pf = 0;
	unsigned lineno = 0;
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		lineno++;
		if (line[0] == '#' || strncmp(line, "pfkey\t", 6) != 0)
			continue;
		char *f[6];
		if (tu_split_tabs(line, f, 6) < 4)
			continue;
		struct pf_row *r = tu_keep(calloc(1, sizeof *r));
		r->lineno = lineno;
		r->input = tu_keep(tu_unescape(f[1], &r->input_len));
		r->strict = f[2];
		r->verdict = f[3];
		char esc[64];
		sts_escape(r->input, r->input_len, esc, sizeof esc);
		snprintf(r->name, sizeof r->name, "vectors.tsv:%u pfkey %s", lineno, esc);
		if (n == cap)
			tests = realloc(tests, (cap *= 2) * sizeof *tests);
		tests[n++] = (struct CMUnitTest){ r->name, test_pfkey_row, NULL, NULL, r };
		n_pf++;
	}
	if (n_pf < 9) {
		printf("Bail out! only %zu pfkey vectors found\n", n_pf);
		return 1;
	}
	struct CMUnitTest more[] = {
		cmocka_unit_test(test_netstring_nul_payload),
		cmocka_unit_test(test_netstring_limit),
		cmocka_unit_test(test_netstring_encode),
		cmocka_unit_test(test_netstring_strerror),
		cmocka_unit_test(test_key_nul),
		cmocka_unit_test(test_key_long),
		cmocka_unit_test(test_request_split),
		cmocka_unit_test(test_reply_extensions),
		cmocka_unit_test(test_reply_sizes),
		cmocka_unit_test(test_reply_parsed),
		cmocka_unit_test(test_reply_simple),
	};
	size_t n_more = sizeof more / sizeof more[0];
	if (n + n_more > cap)
		tests = realloc(tests, (cap = n + n_more) * sizeof *tests);
	memcpy(tests + n, more, sizeof more);
	return tu_run("socketmap", tests, n + n_more);
}
