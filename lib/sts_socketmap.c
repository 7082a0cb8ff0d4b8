/* sts_socketmap.c: netstring framing, request parsing and reply building for
 * the Postfix socketmap daemon (see include/mtasts/socketmap.h; rules 41-43,
 * 45, 58, T14). Pure: no I/O, no logging, no globals. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mtasts/socketmap.h>
#include <mtasts/status.h>

#include "sts_tagrec.h"
#include "sts_utf8.h"

/* ------------------------------------------------------------------------- */
/* Netstrings */

enum { ST_LEN = 0, ST_PAYLOAD, ST_COMMA, ST_ERROR };

int
sts_netstring_dec_init(struct sts_netstring_dec *d, size_t max)
{
	memset(d, 0, sizeof *d);
	if (max > STS_NETSTRING_LIMIT)
		return STS_EINVAL;
	d->buf_ = malloc(max + 1);
	if (d->buf_ == NULL)
		return STS_ENOMEM;
	d->max = max;
	return STS_OK;
}

void
sts_netstring_dec_free(struct sts_netstring_dec *d)
{
	free(d->buf_);
	memset(d, 0, sizeof *d);
}

static enum sts_netstring_rc
dec_fail(struct sts_netstring_dec *d, enum sts_netstring_error e, size_t used, size_t *usedp)
{
	d->state_ = ST_ERROR;
	d->error = e;
	d->reply_ok = true;
	d->offset += used;
	*usedp = used;
	return STS_NETSTRING_ERROR;
}

enum sts_netstring_rc
sts_netstring_dec_feed(struct sts_netstring_dec *d, const void *data, size_t len, size_t *used,
		       struct sts_bytes *payload)
{
	const unsigned char *s = data;
	payload->ptr = NULL;
	payload->len = 0;
	if (d->state_ == ST_ERROR) {
		d->reply_ok = false;   /* the one PERM was due on the first report */
		d->offset += len;
		*used = len;
		return STS_NETSTRING_ERROR;
	}
	size_t i = 0;
	while (i < len) {
		switch (d->state_) {
		case ST_LEN: {
			unsigned char c = s[i++];
			if (c == ':') {
				if (d->ndigits_ == 0)
					return dec_fail(d, STS_NETSTRING_LEN_EMPTY, i, used);
				d->have_ = 0;
				d->state_ = d->want_ == 0 ? ST_COMMA : ST_PAYLOAD;
				break;
			}
			if (c < '0' || c > '9')
				return dec_fail(d, STS_NETSTRING_LEN_DIGIT, i, used);
			if (d->ndigits_ == 1 && d->want_ == 0)
				return dec_fail(d, STS_NETSTRING_LEN_ZERO, i, used);
			size_t v = (size_t)(c - '0');
			/* want * 10 + v > max, without overflow: max is bounded by
			 * STS_NETSTRING_LIMIT and want never passes it */
			if (v > d->max || d->want_ > (d->max - v) / 10)
				return dec_fail(d, STS_NETSTRING_TOO_LONG, i, used);
			d->want_ = d->want_ * 10 + v;
			d->ndigits_++;
			break;
		}
		case ST_PAYLOAD: {
			size_t n = d->want_ - d->have_;
			if (n > len - i)
				n = len - i;
			memcpy(d->buf_ + d->have_, s + i, n);
			d->have_ += n;
			i += n;
			if (d->have_ == d->want_)
				d->state_ = ST_COMMA;
			break;
		}
		case ST_COMMA:
		default: {
			unsigned char c = s[i++];
			if (c != ',')
				return dec_fail(d, STS_NETSTRING_NO_COMMA, i, used);
			d->buf_[d->want_] = '\0';
			payload->ptr = d->buf_;
			payload->len = d->want_;
			d->state_ = ST_LEN;
			d->want_ = 0;
			d->have_ = 0;
			d->ndigits_ = 0;
			d->offset += i;
			*used = i;
			return STS_NETSTRING_PAYLOAD;
		}
		}
	}
	d->offset += len;
	*used = len;
	return STS_NETSTRING_MORE;
}

bool
sts_netstring_dec_idle(const struct sts_netstring_dec *d)
{
	return d->state_ == ST_LEN && d->ndigits_ == 0;
}

const char *
sts_netstring_strerror(enum sts_netstring_error e)
{
	switch (e) {
	case STS_NETSTRING_OK: return "no error";
	case STS_NETSTRING_LEN_EMPTY: return "bad netstring length (no digits)";
	case STS_NETSTRING_LEN_DIGIT: return "bad netstring length (not a digit)";
	case STS_NETSTRING_LEN_ZERO: return "bad netstring length (leading zero)";
	case STS_NETSTRING_TOO_LONG: return "request too long";
	case STS_NETSTRING_NO_COMMA: return "missing netstring terminator";
	}
	return "bad netstring";
}

/* Cuts b back to `len` bytes (undoes appends). */
static void
buf_truncate(struct sts_buf *b, size_t len)
{
	b->len = len;
	if (b->data != NULL)
		b->data[len] = '\0';
}

int
sts_netstring_encode(struct sts_buf *out, const void *payload, size_t len, size_t max)
{
	if (max > STS_NETSTRING_LIMIT)
		return STS_EINVAL;
	if (len > max)
		return STS_ETOOBIG;
	char hdr[24];
	int hn = snprintf(hdr, sizeof hdr, "%zu:", len);
	size_t total = (size_t)hn + len + 1;
	if (total > out->max - out->len)
		return STS_ETOOBIG;
	size_t mark = out->len;
	int rc = sts_buf_append(out, hdr, (size_t)hn);
	if (rc == STS_OK)
		rc = sts_buf_append(out, payload, len);
	if (rc == STS_OK)
		rc = sts_buf_putc(out, ',');
	if (rc != STS_OK)
		buf_truncate(out, mark);
	return rc;
}

/* ------------------------------------------------------------------------- */
/* Requests and keys */

static inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline bool is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* A port after "host:" or "[host]:": a number or a service name. */
static bool
port_ok(const unsigned char *p, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(p[i]) && p[i] != '-' && p[i] != '_')
			return false;
	return true;
}

/* Address literals, as getaddrinfo(AI_NUMERICHOST) reads them (the peer's
 * test): inet_aton forms for IPv4 ("1.2.3.4", also "127.1"), inet_pton for
 * IPv6. The input holds no white space or control bytes. */
static bool
is_ip(const unsigned char *h, size_t n, bool v6_only)
{
	char tmp[64];
	if (n == 0 || n >= sizeof tmp)
		return false;
	memcpy(tmp, h, n);
	tmp[n] = '\0';
	struct in_addr a4;
	struct in6_addr a6;
	if (!v6_only && inet_aton(tmp, &a4) != 0)
		return true;
	return inet_pton(AF_INET6, tmp, &a6) == 1;
}

static enum sts_sm_key_class
key_invalid(struct sts_sm_request *out, const char *reason)
{
	out->cls = STS_SM_KEY_INVALID;
	out->host[0] = '\0';
	out->reason = reason;
	return out->cls;
}

static enum sts_sm_key_class
key_ip(struct sts_sm_request *out, const unsigned char *h, size_t n)
{
	for (size_t i = 0; i < n; i++)   /* n < 64 (is_ip) */
		out->host[i] = lower((char)h[i]);
	out->host[n] = '\0';
	out->cls = STS_SM_KEY_NOTFOUND_IP;
	return out->cls;
}

/* Checks label lengths of a dotted name; returns a reason or NULL. With
 * ascii_only, labels holding non-ASCII bytes are not measured (their A-label
 * length is known only after conversion). */
static const char *
labels_problem(const unsigned char *h, size_t n, bool ascii_only)
{
	size_t b = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && h[i] != '.')
			continue;
		if (i == b)
			return "empty label";
		bool ascii = true;
		for (size_t j = b; j < i && ascii_only; j++)
			if (h[j] >= 0x80)
				ascii = false;
		if (ascii && i - b > STS_LABEL_MAX)
			return "label longer than 63 bytes";
		b = i + 1;
	}
	return NULL;
}

enum sts_sm_key_class
sts_sm_normalize_key(const void *key, size_t len, struct sts_sm_request *out)
{
	const unsigned char *k = key;
	memset(out, 0, sizeof *out);
	out->key = key;
	out->key_len = len;
	out->reason = "";

	if (len == 0)
		return key_invalid(out, "empty key");
	bool ascii = true;
	for (size_t i = 0; i < len;) {
		unsigned char c = k[i];
		if (c <= 0x20 || c == 0x7f)
			return key_invalid(out, "white space or control character in key");
		size_t n = sts_utf8_seq(k + i, len - i);
		if (n == 0)
			return key_invalid(out, "invalid UTF-8");
		if (n > 1)
			ascii = false;
		i += n;
	}
	if (k[0] == '.') {
		if (len == 1)
			return key_invalid(out, "empty name");
		out->cls = STS_SM_KEY_NOTFOUND_PARENT;
		return out->cls;
	}

	const unsigned char *h = k;
	size_t hl = len;
	if (k[0] == '[') {
		const unsigned char *rb = memchr(k, ']', len);
		if (rb == NULL)
			return key_invalid(out, "'[' without ']'");
		h = k + 1;
		hl = (size_t)(rb - h);
		if (memchr(h, '[', hl) != NULL)
			return key_invalid(out, "malformed brackets");
		const unsigned char *rest = rb + 1;
		size_t rl = len - (size_t)(rest - k);
		if (rl > 0 && (rest[0] != ':' || !port_ok(rest + 1, rl - 1)))
			return key_invalid(out, "bad port after ']'");
		if (hl == 0)
			return key_invalid(out, "empty name in brackets");
		if (hl > 5 && strncasecmp((const char *)h, "ipv6:", 5) == 0) {
			if (!is_ip(h + 5, hl - 5, true))
				return key_invalid(out, "bad IPv6 address literal");
			return key_ip(out, h + 5, hl - 5);
		}
	} else {
		if (memchr(k, '[', len) != NULL || memchr(k, ']', len) != NULL)
			return key_invalid(out, "malformed brackets");
		const unsigned char *c1 = memchr(k, ':', len);
		if (c1 != NULL) {
			/* a bare IPv6 address is a literal, not "host:port" */
			if (is_ip(k, len, true))
				return key_ip(out, k, len);
			const unsigned char *after = c1 + 1;
			size_t al = len - (size_t)(after - k);
			if (memchr(after, ':', al) != NULL)
				return key_invalid(out, "several ':' but not an IPv6 address");
			if (!port_ok(after, al))
				return key_invalid(out, "bad port after ':'");
			hl = (size_t)(c1 - k);
			if (hl == 0)
				return key_invalid(out, "empty name before ':'");
		}
	}

	if (h[hl - 1] == '.')   /* one root dot */
		hl--;
	if (hl == 0)
		return key_invalid(out, "empty name");
	if (is_ip(h, hl, false))
		return key_ip(out, h, hl);
	const char *why = labels_problem(h, hl, true);
	if (why != NULL)
		return key_invalid(out, why);
	if (ascii && hl > STS_HOST_MAX)
		return key_invalid(out, "name longer than 253 bytes");
	if (sts_host_normalize((const char *)h, hl, out->host) != STS_OK) {
		bool a = true;
		for (size_t i = 0; i < hl; i++)
			if (h[i] >= 0x80)
				a = false;
		return key_invalid(out, a ? "invalid character in name"
					  : "not a valid internationalised name (IDNA2008)");
	}
	size_t n = strlen(out->host);
	if ((why = labels_problem((const unsigned char *)out->host, n, false)) != NULL)
		return key_invalid(out, why);
	const char *last = strrchr(out->host, '.');
	last = last != NULL ? last + 1 : out->host;
	bool numeric = true;
	for (const char *q = last; *q != '\0'; q++)
		if (!is_digit((unsigned char)*q))
			numeric = false;
	if (numeric)
		return key_invalid(out, "numeric top-level label");
	out->cls = STS_SM_KEY_DOMAIN;
	return out->cls;
}

enum sts_sm_key_class
sts_sm_parse_request(const void *payload, size_t len, struct sts_sm_request *out)
{
	const char *s = payload;
	const char *sp = len > 0 ? memchr(s, ' ', len) : NULL;
	size_t name_len = sp != NULL ? (size_t)(sp - s) : len;
	const char *key = sp != NULL ? sp + 1 : s + len;
	size_t key_len = sp != NULL ? len - name_len - 1 : 0;
	sts_sm_normalize_key(key, key_len, out);
	out->name = s;
	out->name_len = name_len;
	return out->cls;
}

const char *
sts_sm_key_class_name(enum sts_sm_key_class c)
{
	switch (c) {
	case STS_SM_KEY_DOMAIN: return "domain";
	case STS_SM_KEY_NOTFOUND_PARENT: return "parent-probe";
	case STS_SM_KEY_NOTFOUND_IP: return "ip-literal";
	case STS_SM_KEY_INVALID: return "invalid";
	}
	return "invalid";
}

/* ------------------------------------------------------------------------- */
/* Replies */

/* Appends, but never lets the payload started at `mark` pass the reply
 * ceiling. */
struct rctx {
	struct sts_buf *out;
	size_t mark;
};

static int
put(struct rctx *c, const char *s, size_t n)
{
	if (n > STS_SM_REPLY_MAX - (c->out->len - c->mark))
		return STS_ETOOBIG;
	return sts_buf_append(c->out, s, n);
}

static int
puts_(struct rctx *c, const char *s)
{
	return put(c, s, strlen(s));
}

/* Writes s lower-cased (s is validated ASCII). */
static int
put_lower(struct rctx *c, const char *s, size_t n)
{
	char tmp[STS_HOST_MAX];
	for (size_t i = 0; i < n; i++)
		tmp[i] = lower(s[i]);
	return put(c, tmp, n);
}

/* Re-validates one mx pattern for the reply: optional leading "*.", then
 * 1-63 byte labels of letters, digits and inner '-', <= 253 bytes in all, the
 * last label not all digits (an IP address). Returns its length, or 0. */
static size_t
pattern_len(const char *s)
{
	if (s == NULL)
		return 0;
	size_t n = strnlen(s, STS_HOST_MAX + 1);
	if (n == 0 || n > STS_HOST_MAX)
		return 0;
	size_t start = (n >= 2 && s[0] == '*' && s[1] == '.') ? 2 : 0;
	if (start == n)
		return 0;
	size_t b = start;
	bool numeric = true;
	for (size_t i = start; i <= n; i++) {
		if (i < n && s[i] != '.') {
			unsigned char ch = (unsigned char)s[i];
			if (!is_alnum(ch) && ch != '-')
				return 0;
			continue;
		}
		size_t ll = i - b;
		if (ll == 0 || ll > STS_LABEL_MAX || s[b] == '-' || s[i - 1] == '-')
			return 0;
		numeric = true;
		for (size_t j = b; j < i; j++)
			if (!is_digit((unsigned char)s[j]))
				numeric = false;
		b = i + 1;
	}
	return numeric ? 0 : n;
}

struct pat {
	const char *s;
	size_t len;
	size_t idx;
};

static int
cmp_pat(const void *a, const void *b)
{
	const struct pat *x = a, *y = b;
	int r = x->len < y->len ? -1 : x->len > y->len ? 1 : strncasecmp(x->s, y->s, x->len);
	if (r != 0)
		return r;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

enum { PAT_KEEP = 0, PAT_INVALID, PAT_DUP };

/* Classifies every mx entry: valid and first of its kind, invalid, or a
 * duplicate (case-insensitive) of an earlier one. *stp is malloc'd (NULL when
 * n is 0). */
static int
classify_patterns(const struct sts_policy *p, unsigned char **stp, struct sts_sm_reply_info *info)
{
	size_t n = p->mx != NULL ? p->n_mx : 0;
	*stp = NULL;
	if (n == 0)
		return STS_OK;
	unsigned char *st = calloc(n, 1);
	struct pat *v = malloc(n * sizeof *v);
	if (st == NULL || v == NULL) {
		free(st);
		free(v);
		return STS_ENOMEM;
	}
	size_t nv = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = pattern_len(p->mx[i]);
		if (l == 0) {
			st[i] = PAT_INVALID;
			info->n_invalid++;
			continue;
		}
		v[nv++] = (struct pat){ p->mx[i], l, i };
	}
	if (nv > 1)
		qsort(v, nv, sizeof *v, cmp_pat);
	for (size_t k = 1; k < nv; k++)
		if (v[k].len == v[k - 1].len && strncasecmp(v[k].s, v[k - 1].s, v[k].len) == 0) {
			st[v[k].idx] = PAT_DUP;
			info->n_duplicate++;
		}
	free(v);
	*stp = st;
	return STS_OK;
}

/* An extension line fit for "{ policy_string = name: value }": a valid
 * name, a non-empty value of printable ASCII without braces. */
static bool
ext_ok(const struct sts_ext *e)
{
	if (e->name == NULL || e->value == NULL)
		return false;
	size_t nl = strnlen(e->name, 64);
	if (nl == 0 || nl > 32 || !sts_tagrec_name_ok(e->name, nl))
		return false;
	const unsigned char *v = (const unsigned char *)e->value;
	if (*v == '\0')
		return false;
	for (; *v != '\0'; v++)
		if (*v < 0x20 || *v > 0x7e || *v == '{' || *v == '}')
			return false;
	return true;
}

static bool
domain_ok(const char *d)
{
	if (d == NULL)
		return false;
	size_t n = strnlen(d, STS_HOST_MAX + 1);
	if (n > STS_HOST_MAX)
		return false;
	struct sts_sm_request r;
	return sts_sm_normalize_key(d, n, &r) == STS_SM_KEY_DOMAIN && strcmp(r.host, d) == 0;
}

/* " { policy_string = <key>: <value> }" as one unit: all of it or nothing. */
static int
put_policy_string(struct rctx *c, const char *key, const char *value, size_t vl,
		  struct sts_sm_reply_info *info)
{
	size_t at = c->out->len;
	int rc = puts_(c, " { policy_string = ");
	if (rc == STS_OK)
		rc = puts_(c, key);
	if (rc == STS_OK)
		rc = put(c, ": ", 2);
	if (rc == STS_OK)
		rc = put(c, value, vl);
	if (rc == STS_OK)
		rc = put(c, " }", 2);
	if (rc != STS_OK)
		buf_truncate(c->out, at);
	else
		info->n_policy_strings++;
	return rc;
}

static int
put_tlsrpt(struct rctx *c, const struct sts_policy *p, const unsigned char *st,
	   const char *domain, struct sts_sm_reply_info *info)
{
	size_t n = st != NULL ? p->n_mx : 0;
	size_t at = c->out->len;
	int rc = puts_(c, " policy_type=sts policy_domain=");
	if (rc == STS_OK)
		rc = puts_(c, domain);
	for (size_t i = 0; rc == STS_OK && i < n; i++) {
		if (st[i] != PAT_KEEP)
			continue;
		rc = puts_(c, " mx_host_pattern=");
		if (rc == STS_OK)
			rc = put_lower(c, p->mx[i], strlen(p->mx[i]));
	}
	if (rc != STS_OK) {
		/* all or nothing: Postfix >= 3.10.5 enforces the mx_host_pattern
		 * list, so a partial list would refuse MX hosts the policy allows */
		buf_truncate(c->out, at);
		if (rc == STS_ETOOBIG) {
			info->tlsrpt_omitted = true;
			return STS_OK;
		}
		return rc;
	}

	/* policy_string lines in canonical order; stop at the first one that
	 * does not fit, so that what is sent is a prefix of the policy */
	const char *mode = sts_mode_name(p->mode);
	rc = put_policy_string(c, "version", "STSv1", 5, info);
	if (rc == STS_OK)
		rc = put_policy_string(c, "mode", mode, strlen(mode), info);
	for (size_t i = 0; rc == STS_OK && i < n; i++) {
		if (st[i] == PAT_INVALID)
			continue;   /* duplicates stay: each is a line of the policy */
		char low[STS_HOST_MAX];
		size_t l = strlen(p->mx[i]);
		for (size_t j = 0; j < l; j++)
			low[j] = lower(p->mx[i][j]);
		rc = put_policy_string(c, "mx", low, l, info);
	}
	if (rc == STS_OK && p->has_max_age) {
		/* as published: a max_age above one year is clamped for use only */
		char num[24];
		uint64_t age = p->max_age_raw > p->max_age ? p->max_age_raw : p->max_age;
		int nl = snprintf(num, sizeof num, "%llu", (unsigned long long)age);
		rc = put_policy_string(c, "max_age", num, (size_t)nl, info);
	}
	for (size_t i = 0; rc == STS_OK && p->ext != NULL && i < p->n_ext; i++) {
		if (!ext_ok(&p->ext[i])) {
			info->n_ext_dropped++;
			continue;
		}
		rc = put_policy_string(c, p->ext[i].name, p->ext[i].value,
				       strlen(p->ext[i].value), info);
	}
	if (rc == STS_ETOOBIG) {
		info->policy_strings_truncated = true;
		return STS_OK;
	}
	return rc;
}

int
sts_sm_reply_policy(const struct sts_policy *p, const struct sts_sm_reply_opts *opts,
		    struct sts_buf *out, struct sts_sm_reply_info *info)
{
	struct sts_sm_reply_info scratch;
	if (info == NULL)
		info = &scratch;
	memset(info, 0, sizeof *info);
	if (opts == NULL)
		return STS_EINVAL;
	bool secure = p != NULL && (p->mode == STS_MODE_ENFORCE ||
				    (p->mode == STS_MODE_TESTING && opts->strict_testing));
	if (!secure)
		return sts_sm_reply_notfound(out);

	unsigned char *st = NULL;
	int rc = classify_patterns(p, &st, info);
	if (rc != STS_OK)
		return rc;
	size_t n = st != NULL ? p->n_mx : 0;
	for (size_t i = 0; i < n; i++)
		if (st[i] == PAT_KEEP)
			info->n_match++;
	if (info->n_match == 0) {
		free(st);
		return STS_EINVAL;
	}

	struct rctx c = { out, out->len };
	rc = puts_(&c, "OK secure match=");
	bool first = true;
	for (size_t i = 0; rc == STS_OK && i < n; i++) {
		if (st[i] != PAT_KEEP)
			continue;
		const char *s = p->mx[i];
		size_t l = strlen(s);
		if (!first)
			rc = put(&c, ":", 1);
		first = false;
		if (rc == STS_OK && s[0] == '*') {   /* "*.x" is Postfix's ".x" */
			s++;
			l--;
		}
		if (rc == STS_OK)
			rc = put_lower(&c, s, l);
	}
	if (rc == STS_OK && opts->require_sni)
		rc = puts_(&c, " servername=hostname");
	if (rc == STS_OK && opts->tlsrpt) {
		if (domain_ok(opts->policy_domain))
			rc = put_tlsrpt(&c, p, st, opts->policy_domain, info);
		else
			info->tlsrpt_omitted = true;
	}
	free(st);
	if (rc != STS_OK) {
		buf_truncate(out, c.mark);
		info->n_policy_strings = 0;
		return rc;
	}
	info->secure = true;
	return STS_OK;
}

int
sts_sm_reply_notfound(struct sts_buf *out)
{
	return sts_buf_append(out, "NOTFOUND ", 9);
}

static int
reply_reason(struct sts_buf *out, const char *kind, const char *reason)
{
	char esc[STS_SM_REASON_MAX + 1];
	if (reason == NULL || reason[0] == '\0')
		reason = "unspecified";
	sts_escape(reason, strnlen(reason, 4 * STS_SM_REASON_MAX), esc, sizeof esc);
	return sts_buf_printf(out, "%s %s", kind, esc);
}

int
sts_sm_reply_temp(struct sts_buf *out, const char *reason)
{
	return reply_reason(out, "TEMP", reason);
}

int
sts_sm_reply_perm(struct sts_buf *out, const char *reason)
{
	return reply_reason(out, "PERM", reason);
}
