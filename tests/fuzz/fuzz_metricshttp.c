/* fuzz_metricshttp.c: stsd_http_parse_head and stsd_http_response
 * (daemon/metrics_http.h), the request side of mta-stsd's metrics listener.
 *
 * Input: the first bytes a client sends on a metrics connection.
 *
 * Invariants:
 * - the input is read from an exact-size copy (ASan sees any overrun);
 * - the verdict is one the parser may give (never TIMEOUT), MORE only for
 *   at most STSD_HTTP_HEAD_MAX bytes, TOO_LARGE only for more;
 * - a routed verdict (200/404/405) comes with a head that ends with an
 *   empty line inside the input and the limit, a method that is a token and
 *   starts the request line, a path without '?', space or control bytes,
 *   HTTP/1.0 or 1.1, and the routing table holds: METRICS exactly for
 *   GET/HEAD /metrics, HEALTHZ for GET/HEAD /healthz, BAD_METHOD for other
 *   methods on them, NOT_FOUND for every other path;
 * - the verdict is final: every prefix parses to MORE or to the same
 *   verdict (same head, method and path), and bytes appended after a final
 *   verdict change nothing;
 * - the response for the verdict has a status line with its code, a
 *   Content-Length equal to the body sent (none for HEAD), Connection: close. */
#include "fuzz_common.h"

#include "metrics_http.h"

static bool
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
routed(enum stsd_http_verdict v)
{
	return v == STSD_HTTP_METRICS || v == STSD_HTTP_HEALTHZ || v == STSD_HTTP_NOT_FOUND ||
	       v == STSD_HTTP_BAD_METHOD;
}

static bool
path_is(const struct stsd_http_head *h, const char *p)
{
	return h->path_len == strlen(p) && memcmp(h->path, p, h->path_len) == 0;
}

static enum stsd_http_verdict
parse(const uint8_t *data, size_t size, struct stsd_http_head *h)
{
	enum stsd_http_verdict v = stsd_http_parse_head((const char *)data, size, h);
	CHECK(v < STSD_HTTP_VERDICT_N && v != STSD_HTTP_TIMEOUT);
	return v;
}

static void
check_head(const uint8_t *d, size_t size, enum stsd_http_verdict v,
	   const struct stsd_http_head *h)
{
	const char *data = (const char *)d;
	if (v == STSD_HTTP_MORE)
		CHECK(size <= STSD_HTTP_HEAD_MAX);
	if (v == STSD_HTTP_TOO_LARGE)
		CHECK(size > STSD_HTTP_HEAD_MAX);
	CHECK((h->method == STSD_HTTP_METHOD_NONE) == (h->method_str == NULL));
	CHECK((h->method == STSD_HTTP_METHOD_NONE) == (h->path == NULL));
	CHECK((h->method == STSD_HTTP_METHOD_NONE) == (h->version == 0));
	if (h->method != STSD_HTTP_METHOD_NONE) {
		CHECK(h->version == 10 || h->version == 11);
		CHECK(h->method_str == data || h->method_str > data);
		CHECK(h->method_len >= 1 && h->method_len < size);
		CHECK(h->method_str + h->method_len < data + size);
		for (size_t i = 0; i < h->method_len; i++)
			CHECK(is_tchar((unsigned char)h->method_str[i]));
		CHECK(h->method_str[h->method_len] == ' ');
		/* only empty lines before the request line */
		for (const char *p = data; p < h->method_str; p++)
			CHECK(*p == '\r' || *p == '\n');
		bool get = h->method_len == 3 && memcmp(h->method_str, "GET", 3) == 0;
		bool head = h->method_len == 4 && memcmp(h->method_str, "HEAD", 4) == 0;
		CHECK((h->method == STSD_HTTP_GET) == get);
		CHECK((h->method == STSD_HTTP_HEAD) == head);
		CHECK(h->path_len >= 1);
		bool in_input = h->path > data && h->path + h->path_len < data + size;
		CHECK(in_input || (h->path_len == 1 && h->path[0] == '/'));
		for (size_t i = 0; i < h->path_len; i++) {
			unsigned char c = (unsigned char)h->path[i];
			CHECK(c > 0x20 && c < 0x7f && c != '?');
		}
		CHECK(h->path[0] == '/' || path_is(h, "*"));
	}
	if (!routed(v)) {
		CHECK(h->head_len == 0);
		return;
	}
	CHECK(h->method != STSD_HTTP_METHOD_NONE);
	CHECK(h->head_len >= 2 && h->head_len <= size && h->head_len <= STSD_HTTP_HEAD_MAX);
	if (h->path > data && h->path < data + size)
		CHECK(h->path + h->path_len < data + h->head_len);
	/* ends with an empty line: LF LF or LF CR LF */
	CHECK(data[h->head_len - 1] == '\n');
	CHECK(data[h->head_len - 2] == '\n' ||
	      (h->head_len >= 3 && data[h->head_len - 2] == '\r' && data[h->head_len - 3] == '\n'));
	CHECK(h->method_str + h->method_len < data + h->head_len);
	bool known = path_is(h, "/metrics") || path_is(h, "/healthz");
	bool get = h->method == STSD_HTTP_GET || h->method == STSD_HTTP_HEAD;
	if (v == STSD_HTTP_METRICS)
		CHECK(get && path_is(h, "/metrics"));
	if (v == STSD_HTTP_HEALTHZ)
		CHECK(get && path_is(h, "/healthz"));
	if (v == STSD_HTTP_BAD_METHOD)
		CHECK(!get && known);
	if (v == STSD_HTTP_NOT_FOUND)
		CHECK(!known);
}

static bool
same(enum stsd_http_verdict a, const struct stsd_http_head *ha, const uint8_t *da,
     enum stsd_http_verdict b, const struct stsd_http_head *hb, const uint8_t *db)
{
	if (a != b || ha->method != hb->method || ha->head_len != hb->head_len ||
	    ha->version != hb->version || ha->path_len != hb->path_len ||
	    ha->method_len != hb->method_len)
		return false;
	if (ha->path != NULL && memcmp(ha->path, hb->path, ha->path_len) != 0)
		return false;
	if (ha->method_str != NULL && (ha->method_str - (const char *)da) !=
					      (hb->method_str - (const char *)db))
		return false;
	return true;
}

/* Parses the first n bytes from an exact-size copy. */
static enum stsd_http_verdict
parse_prefix(const uint8_t *data, size_t n, uint8_t **copy, struct stsd_http_head *h)
{
	*copy = malloc(n ? n : 1);
	CHECK(*copy != NULL);
	if (n > 0)
		memcpy(*copy, data, n);
	enum stsd_http_verdict v = parse(*copy, n, h);
	check_head(*copy, n, v, h);
	return v;
}

static void
check_response(enum stsd_http_verdict v, const struct stsd_http_head *h, const uint8_t *data,
	       size_t size)
{
	unsigned status = stsd_http_status(v);
	CHECK((status == 0) == (v == STSD_HTTP_MORE));
	if (status == 0)
		return;
	CHECK(status >= 200 && status <= 599);
	/* the input itself as the body: any bytes */
	size_t blen = size < 512 ? size : 512;
	bool head_only = h->method == STSD_HTTP_HEAD;
	struct sts_buf b;
	sts_buf_init(&b, 4096);
	CHECK(stsd_http_response(&b, status, NULL, (const char *)data, blen, head_only) == STS_OK);
	char line[64];
	int n = snprintf(line, sizeof line, "HTTP/1.1 %u %s\r\n", status, stsd_http_reason(status));
	CHECK(n > 0 && b.len > (size_t)n && memcmp(b.data, line, (size_t)n) == 0);
	const char *end = NULL;
	for (size_t i = 0; i + 4 <= b.len; i++)
		if (memcmp(b.data + i, "\r\n\r\n", 4) == 0) {
			end = b.data + i + 4;
			break;
		}
	CHECK(end != NULL);
	size_t hlen = (size_t)(end - b.data);
	CHECK(b.len - hlen == (head_only ? 0 : blen));
	snprintf(line, sizeof line, "\r\nContent-Length: %zu\r\n", blen);
	CHECK(memmem(b.data, hlen, line, strlen(line)) != NULL);
	CHECK(memmem(b.data, hlen, "\r\nConnection: close\r\n", 21) != NULL);
	/* the head is printable ASCII: no input byte went into it */
	for (size_t i = 0; i < hlen; i++)
		CHECK(b.data[i] == '\r' || b.data[i] == '\n' ||
		      (b.data[i] >= 0x20 && b.data[i] < 0x7f));
	sts_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *full;
	struct stsd_http_head h;
	enum stsd_http_verdict v = parse_prefix(data, size, &full, &h);
	check_response(v, &h, full, size);

	/* Prefixes where the verdict may change: after each LF (at most 64),
	 * around the limit, half the input, one byte short. */
	size_t cuts[80], nc = 0;
	for (size_t i = 0; i < size && nc < 64; i++)
		if (data[i] == '\n')
			cuts[nc++] = i + 1;
	if (size > 0)
		cuts[nc++] = size - 1;
	cuts[nc++] = size / 2;
	cuts[nc++] = STSD_HTTP_HEAD_MAX;
	cuts[nc++] = STSD_HTTP_HEAD_MAX + 1;
	for (size_t i = 0; i < nc; i++) {
		if (cuts[i] > size)
			continue;
		uint8_t *p;
		struct stsd_http_head hp;
		enum stsd_http_verdict vp = parse_prefix(data, cuts[i], &p, &hp);
		if (vp != STSD_HTTP_MORE)
			CHECK(same(vp, &hp, p, v, &h, full));
		if (v == STSD_HTTP_MORE)
			CHECK(vp == STSD_HTTP_MORE);
		free(p);
	}

	/* A final verdict stays when more arrives. */
	if (v != STSD_HTTP_MORE) {
		static const char tails[][5] = { "\r\n\r\n", "\n", "x", " " };
		for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
			size_t tl = strlen(tails[t]);
			uint8_t *more = malloc(size + tl);
			CHECK(more != NULL);
			if (size > 0)
				memcpy(more, data, size);
			memcpy(more + size, tails[t], tl);
			struct stsd_http_head hm;
			enum stsd_http_verdict vm = parse(more, size + tl, &hm);
			check_head(more, size + tl, vm, &hm);
			CHECK(same(vm, &hm, more, v, &h, full));
			free(more);
		}
	}
	free(full);
	return 0;
}
