/* fuzz_socketmap.c: the socketmap daemon's pure parts (socketmap.h):
 * netstring decoding and encoding, request parsing, key normalisation and
 * reply building.
 *
 * Input: the bytes a client writes on one connection, e.g.
 * "22:postfix example.com:25,". They are decoded three times (one feed, byte
 * by byte, and in pseudo-random chunks seeded from the input) with the
 * request ceiling, and once more with a ceiling of 64 bytes. Every payload is
 * parsed as a request, and used as the material of hand-built hostile
 * policies (lines "e:name=value" become extensions, other lines mx entries)
 * and as a policy body for sts_policy_parse; replies are built for every
 * mode and every combination of zone options.
 *
 * Invariants: never crash; all three decodings give the same payloads and the
 * same error at the same offset; the first error has reply_ok, later feeds do
 * not; every payload is <= the ceiling; the 64-byte decoding is the prefix of
 * payloads up to the first one longer than 64 (then TOO_LONG); a request's
 * name and key partition the payload; a DOMAIN host is a lower-case
 * LDH/'_' name of 1-63 byte labels, <= 253 bytes, normalising to itself; an
 * IP host is short and non-empty; PARENT keys start with '.'; INVALID has a
 * reason; every reply is <= STS_SM_REPLY_MAX bytes of printable ASCII and,
 * read the way Postfix reads it, holds only the attributes we send (match,
 * servername, policy_type, policy_domain, mx_host_pattern, "{ policy_string
 * = ... }"), each a single token with clean values; a failed build leaves
 * the buffer unchanged; encode -> decode returns every payload and reply. */
#include "fuzz_common.h"

#include <mtasts/socketmap.h>

#define SMALL_MAX 64
#define MAX_PAYLOADS 4096

struct decoded {
	char **p;
	size_t *len;
	size_t n;
	enum sts_netstring_error err;
	uint64_t err_offset;
};

static void
decoded_free(struct decoded *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->p[i]);
	free(d->p);
	free(d->len);
	memset(d, 0, sizeof *d);
}

/* mode 0: one feed; 1: byte by byte; 2: chunks from a xorshift PRNG */
static void
decode(const uint8_t *data, size_t size, size_t max, int mode, uint32_t seed, struct decoded *out)
{
	memset(out, 0, sizeof *out);
	out->p = calloc(MAX_PAYLOADS, sizeof *out->p);
	out->len = calloc(MAX_PAYLOADS, sizeof *out->len);
	CHECK(out->p != NULL && out->len != NULL);
	struct sts_netstring_dec d;
	CHECK(sts_netstring_dec_init(&d, max) == STS_OK);
	uint32_t x = seed | 1;
	size_t pos = 0;
	bool failed = false;
	while (pos < size && !failed) {
		size_t n = size - pos;
		if (mode == 1) {
			n = 1;
		} else if (mode == 2) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			size_t c = 1 + x % 97;
			if (n > c)
				n = c;
		}
		const uint8_t *p = data + pos;
		pos += n;
		while (n > 0) {
			size_t used = 0;
			struct sts_bytes pl;
			enum sts_netstring_rc rc = sts_netstring_dec_feed(&d, p, n, &used, &pl);
			CHECK(used <= n);
			if (rc == STS_NETSTRING_PAYLOAD) {
				CHECK(used > 0);
				CHECK(pl.len <= max);
				CHECK(((const char *)pl.ptr)[pl.len] == '\0');
				CHECK(out->n < MAX_PAYLOADS);   /* every payload takes >= 3 bytes */
				char *copy = malloc(pl.len + 1);
				CHECK(copy != NULL);
				memcpy(copy, pl.ptr, pl.len + 1);
				out->p[out->n] = copy;
				out->len[out->n++] = pl.len;
				CHECK(sts_netstring_dec_idle(&d));
			} else if (rc == STS_NETSTRING_ERROR) {
				CHECK(d.error != STS_NETSTRING_OK);
				CHECK(d.reply_ok);
				CHECK(used > 0);
				CHECK(pl.ptr == NULL && pl.len == 0);
				out->err = d.error;
				out->err_offset = d.offset;
				CHECK(d.offset == (uint64_t)(p - data) + used);
				const char *why = sts_netstring_strerror(d.error);
				CHECK(why != NULL && why[0] != '\0');
				/* sticky, and no second reply */
				size_t u2;
				CHECK(sts_netstring_dec_feed(&d, "0:,", 3, &u2, &pl) == STS_NETSTRING_ERROR);
				CHECK(u2 == 3 && !d.reply_ok && pl.ptr == NULL);
				failed = true;
				break;
			} else {
				CHECK(rc == STS_NETSTRING_MORE);
				CHECK(used == n);
				CHECK(pl.ptr == NULL);
			}
			p += used;
			n -= used;
		}
	}
	if (!failed)
		CHECK(d.offset == size);
	sts_netstring_dec_free(&d);
}

static void
check_same(const struct decoded *a, const struct decoded *b)
{
	CHECK(a->n == b->n);
	for (size_t i = 0; i < a->n; i++)
		CHECK(a->len[i] == b->len[i] && memcmp(a->p[i], b->p[i], a->len[i]) == 0);
	CHECK(a->err == b->err);
	if (a->err != STS_NETSTRING_OK)
		CHECK(a->err_offset == b->err_offset);
}

static bool
is_lower_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* One pattern as written in match= (".x" form) or mx_host_pattern= ("*.x"). */
static void
check_pattern_text(const char *s, size_t n, bool star)
{
	CHECK(n > 0 && n <= STS_HOST_MAX);
	size_t i = 0;
	if (star && n > 2 && s[0] == '*' && s[1] == '.')
		i = 2;
	else if (!star && s[0] == '.')
		i = 1;
	CHECK(i < n);
	size_t label = i;
	for (; i <= n; i++) {
		if (i < n && s[i] != '.') {
			CHECK(is_lower_ldh(s[i]));
			continue;
		}
		CHECK(i > label && i - label <= STS_LABEL_MAX);
		CHECK(s[label] != '-' && s[i - 1] != '-');
		label = i + 1;
	}
}

/* Reads a reply the way Postfix does (tokens split at ", \t\r\n" outside
 * "{...}", then name=value) and checks that it holds only what we send. */
static void
check_reply(const char *s, size_t n, const struct sts_sm_reply_info *info)
{
	CHECK(n <= STS_SM_REPLY_MAX);
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f);
	if (n == 9 && memcmp(s, "NOTFOUND ", 9) == 0) {
		CHECK(info == NULL || !info->secure);
		return;
	}
	if (n >= 5 && (memcmp(s, "TEMP ", 5) == 0 || memcmp(s, "PERM ", 5) == 0)) {
		CHECK(info == NULL);
		CHECK(n > 5 && n <= 5 + STS_SM_REASON_MAX);
		return;
	}
	CHECK(info != NULL && info->secure && info->n_match > 0);
	CHECK(n > 16 && memcmp(s, "OK secure match=", 16) == 0);
	size_t i = 10, n_match = 0, n_strings = 0;
	bool seen_type = false;
	while (i < n) {
		CHECK(s[i] != ' ' && s[i] != ',');
		size_t b = i;
		if (s[i] == '{') {
			const char *close = memchr(s + i, '}', n - i);
			CHECK(close != NULL);
			size_t e = (size_t)(close - s);
			CHECK(memchr(s + b + 1, '{', e - b - 1) == NULL);
			CHECK(e - b > 20 && memcmp(s + b, "{ policy_string = ", 18) == 0);
			CHECK(s[e - 1] == ' ' && s[e - 2] != ' ');
			CHECK(seen_type);
			n_strings++;
			i = e + 1;
		} else {
			while (i < n && s[i] != ' ')
				i++;
			const char *v = memchr(s + b, '=', i - b);
			CHECK(v != NULL);
			size_t nl = (size_t)(v - (s + b));
			v++;
			size_t vl = i - b - nl - 1;
			CHECK(vl > 0);
			for (size_t k = 0; k < vl; k++)
				CHECK(v[k] != '{' && v[k] != '}' && v[k] != ',' && v[k] != '=');
			if (nl == 5 && memcmp(s + b, "match", 5) == 0) {
				CHECK(b == 10);
				size_t q = 0;
				while (q <= vl) {
					const char *colon = memchr(v + q, ':', vl - q);
					size_t e = colon != NULL ? (size_t)(colon - v) : vl;
					check_pattern_text(v + q, e - q, false);
					n_match++;
					q = e + 1;
				}
			} else if (nl == 10 && memcmp(s + b, "servername", 10) == 0) {
				CHECK(vl == 8 && memcmp(v, "hostname", 8) == 0);
			} else if (nl == 11 && memcmp(s + b, "policy_type", 11) == 0) {
				CHECK(vl == 3 && memcmp(v, "sts", 3) == 0 && !seen_type);
				seen_type = true;
			} else if (nl == 13 && memcmp(s + b, "policy_domain", 13) == 0) {
				CHECK(seen_type);
				char dom[STS_HOST_MAX + 1];
				CHECK(vl <= STS_HOST_MAX);
				memcpy(dom, v, vl);
				dom[vl] = '\0';
				struct sts_sm_request r;
				CHECK(sts_sm_normalize_key(dom, vl, &r) == STS_SM_KEY_DOMAIN);
				CHECK(strcmp(r.host, dom) == 0);
			} else if (nl == 15 && memcmp(s + b, "mx_host_pattern", 15) == 0) {
				CHECK(seen_type);
				check_pattern_text(v, vl, true);
			} else {
				CHECK(false);   /* an attribute we never send */
			}
		}
		if (i < n) {
			CHECK(s[i] == ' ');
			i++;
			CHECK(i < n);
		}
	}
	CHECK(n_match == info->n_match);
	CHECK(n_strings == info->n_policy_strings);
	if (info->tlsrpt_omitted)
		CHECK(!seen_type && n_strings == 0);
}

static struct sts_netstring_dec reply_dec;
static bool reply_dec_ready;

/* encode -> decode returns the payload */
static void
round_trip(const char *p, size_t n, size_t max)
{
	struct sts_buf b;
	sts_buf_init(&b, max + 32);
	CHECK(sts_netstring_encode(&b, p, n, max) == STS_OK);
	CHECK(sts_netstring_encode(&b, p, max + 1, max) == STS_ETOOBIG);
	struct sts_netstring_dec tmp, *d = &tmp;
	if (max == STS_SM_REPLY_MAX) {
		if (!reply_dec_ready) {
			CHECK(sts_netstring_dec_init(&reply_dec, max) == STS_OK);
			reply_dec_ready = true;
		}
		d = &reply_dec;
	} else {
		CHECK(sts_netstring_dec_init(d, max) == STS_OK);
	}
	size_t used;
	struct sts_bytes pl;
	CHECK(sts_netstring_dec_feed(d, b.data, b.len, &used, &pl) == STS_NETSTRING_PAYLOAD);
	CHECK(used == b.len);
	CHECK(pl.len == n && memcmp(pl.ptr, p, n) == 0);
	CHECK(sts_netstring_dec_idle(d));
	if (d == &tmp)
		sts_netstring_dec_free(d);
	sts_buf_free(&b);
}

static void
build_replies(const struct sts_policy *p, const char *domain)
{
	static const enum sts_mode modes[] = { STS_MODE_ENFORCE, STS_MODE_TESTING, STS_MODE_NONE,
					       STS_MODE_UNSET };
	struct sts_policy q = *p;
	struct sts_buf b;
	sts_buf_init(&b, 2 * STS_SM_REPLY_MAX);
	for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		q.mode = modes[m];
		for (unsigned bits = 0; bits < 8; bits++) {
			struct sts_sm_reply_opts o = { (bits & 1) != 0, (bits & 2) != 0,
						       (bits & 4) != 0, domain };
			struct sts_sm_reply_info info;
			CHECK(sts_buf_puts(&b, "prev") == STS_OK);
			int rc = sts_sm_reply_policy(&q, &o, &b, &info);
			CHECK(b.len >= 4 && memcmp(b.data, "prev", 4) == 0);
			if (rc != STS_OK) {
				CHECK(rc == STS_EINVAL || rc == STS_ETOOBIG);
				CHECK(b.len == 4);   /* unchanged on failure */
				CHECK(!info.secure);
				if (rc == STS_EINVAL)
					CHECK(info.n_match == 0);
			} else {
				check_reply(b.data + 4, b.len - 4, &info);
				bool want_secure = q.mode == STS_MODE_ENFORCE ||
						   (q.mode == STS_MODE_TESTING && o.strict_testing);
				CHECK(info.secure == want_secure);
				CHECK(info.n_match + info.n_invalid + info.n_duplicate ==
				      (want_secure && q.mx != NULL ? q.n_mx : info.n_match));
				if (!o.tlsrpt)
					CHECK(!info.tlsrpt_omitted && info.n_policy_strings == 0);
				round_trip(b.data + 4, b.len - 4, STS_SM_REPLY_MAX);
			}
			sts_buf_reset(&b);
		}
	}
	CHECK(sts_sm_reply_policy(NULL, NULL, &b, NULL) == STS_EINVAL);
	sts_buf_free(&b);
}

/* Hand-built hostile policy from the payload: lines "e:name=value" become
 * extensions, other lines mx entries. */
static void
hostile_policy(const char *payload, size_t len, const char *domain)
{
	char *text = malloc(len + 1);
	CHECK(text != NULL);
	memcpy(text, payload, len + 1);
	const char *mx[64];
	struct sts_ext ext[16];
	struct sts_policy p;
	memset(&p, 0, sizeof p);
	p.has_version = true;
	p.has_max_age = true;
	p.max_age = (uint32_t)(len * 1000);
	p.max_age_raw = len % 3 == 0 ? 9999999999u : p.max_age;
	if (p.max_age > STS_MAX_AGE_MAX)
		p.max_age = STS_MAX_AGE_MAX;
	p.mx = mx;
	p.ext = ext;
	char *line = text;
	while (line != NULL) {
		char *nl = memchr(line, '\n', len - (size_t)(line - text));
		if (nl != NULL)
			*nl = '\0';
		if (line[0] == 'e' && line[1] == ':' && p.n_ext < 16) {
			char *eq = strchr(line + 2, '=');
			ext[p.n_ext].name = line + 2;
			ext[p.n_ext].value = eq != NULL ? eq + 1 : "";
			if (eq != NULL)
				*eq = '\0';
			p.n_ext++;
		} else if (p.n_mx < 64) {
			mx[p.n_mx++] = line;
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	build_replies(&p, domain);
	free(text);
}

static void
check_request(const char *payload, size_t len)
{
	struct sts_sm_request r;
	enum sts_sm_key_class cls = sts_sm_parse_request(payload, len, &r);
	CHECK(cls == r.cls);
	CHECK(cls >= STS_SM_KEY_DOMAIN && cls <= STS_SM_KEY_INVALID);
	CHECK(r.name == payload && r.name_len <= len);
	if (r.key_len > 0 || r.name_len < len) {
		CHECK(r.name_len + 1 + r.key_len == len);
		CHECK(payload[r.name_len] == ' ' && r.key == payload + r.name_len + 1);
		CHECK(memchr(payload, ' ', r.name_len) == NULL);
	} else {
		CHECK(r.name_len == len && memchr(payload, ' ', len) == NULL);
	}
	CHECK(r.reason != NULL);
	CHECK(memchr(r.host, '\0', sizeof r.host) != NULL);
	size_t hl = strlen(r.host);
	switch (cls) {
	case STS_SM_KEY_DOMAIN: {
		CHECK(r.reason[0] == '\0');
		CHECK(hl > 0 && hl <= STS_HOST_MAX);
		size_t label = 0;
		for (size_t i = 0; i <= hl; i++) {
			if (i < hl && r.host[i] != '.') {
				CHECK(is_lower_ldh(r.host[i]) || r.host[i] == '_');
				continue;
			}
			CHECK(i > label && i - label <= STS_LABEL_MAX);
			label = i + 1;
		}
		struct sts_sm_request again;
		CHECK(sts_sm_normalize_key(r.host, hl, &again) == STS_SM_KEY_DOMAIN);
		CHECK(strcmp(again.host, r.host) == 0);
		break;
	}
	case STS_SM_KEY_NOTFOUND_IP:
		CHECK(r.reason[0] == '\0');
		CHECK(hl > 0 && hl < 64);
		CHECK(fz_is_lower_ascii_host(r.host));
		break;
	case STS_SM_KEY_NOTFOUND_PARENT:
		CHECK(r.key_len > 1 && r.key[0] == '.' && hl == 0);
		break;
	case STS_SM_KEY_INVALID:
		CHECK(r.reason[0] != '\0' && hl == 0);
		break;
	}

	/* the raw key as a policy domain is as hostile as it gets */
	char *key = malloc(r.key_len + 1);
	CHECK(key != NULL);
	if (r.key_len > 0)
		memcpy(key, r.key, r.key_len);
	key[r.key_len] = '\0';

	hostile_policy(payload, len, cls == STS_SM_KEY_DOMAIN ? r.host : key);

	/* and the payload as a policy body */
	struct sts_diags d;
	struct sts_policy p;
	sts_diags_init(&d);
	int prc = sts_policy_parse(payload, len, 0, &p, &d);
	CHECK(prc == STS_OK || prc == STS_EINVAL);
	build_replies(&p, key);
	sts_policy_clear(&p);

	/* TEMP/PERM with the request as reason */
	struct sts_buf b;
	sts_buf_init(&b, STS_SM_REPLY_MAX);
	CHECK(sts_sm_reply_temp(&b, key) == STS_OK);
	check_reply(b.data, b.len, NULL);
	sts_buf_reset(&b);
	CHECK(sts_sm_reply_perm(&b, payload) == STS_OK);
	check_reply(b.data, b.len, NULL);
	sts_buf_reset(&b);
	CHECK(sts_sm_reply_notfound(&b) == STS_OK);
	CHECK(b.len == 9 && memcmp(b.data, "NOTFOUND ", 9) == 0);
	sts_buf_free(&b);
	free(key);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed = 2166136261u;   /* FNV-1a of the input: chunking varies with it */
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;

	struct decoded whole, bytes, chunks, small;
	decode(data, size, STS_SM_REQUEST_MAX, 0, seed, &whole);
	decode(data, size, STS_SM_REQUEST_MAX, 1, seed, &bytes);
	decode(data, size, STS_SM_REQUEST_MAX, 2, seed, &chunks);
	check_same(&whole, &bytes);
	check_same(&whole, &chunks);

	/* with a 64-byte ceiling: the same payloads up to the first longer one */
	decode(data, size, SMALL_MAX, 2, seed ^ 0x5a5a5a5au, &small);
	size_t k = 0;
	while (k < whole.n && whole.len[k] <= SMALL_MAX)
		k++;
	CHECK(small.n == k);
	for (size_t i = 0; i < k; i++)
		CHECK(small.len[i] == whole.len[i] && memcmp(small.p[i], whole.p[i], small.len[i]) == 0);
	if (k < whole.n)
		CHECK(small.err == STS_NETSTRING_TOO_LONG);
	else if (small.err != STS_NETSTRING_TOO_LONG)
		CHECK(small.err == whole.err && small.err_offset == whole.err_offset);

	for (size_t i = 0; i < whole.n; i++) {
		round_trip(whole.p[i], whole.len[i], STS_SM_REQUEST_MAX);
		check_request(whole.p[i], whole.len[i]);
	}
	decoded_free(&whole);
	decoded_free(&bytes);
	decoded_free(&chunks);
	decoded_free(&small);
	return 0;
}
