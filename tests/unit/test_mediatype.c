/* test_mediatype.c: sts_media_type_ok (rule 14). Every `mediatype` row of
 * tests/data/vectors.tsv is one case named after its line, followed by our
 * own rows. A row whose verdict is "ambiguous" needs an entry in
 * `decisions` below; an ambiguous row without one fails, so a new ambiguity
 * in the vectors cannot pass silently. Also the stable error codes and
 * RFC 8460 result types of fetch.h, which are pure tables too. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>
#include <mtasts/fetch.h>

#include "testutil.h"

struct row {
	unsigned lineno;     /* 0 for our own rows */
	const char *input;   /* NULL: no Content-Type header at all */
	const char *verdict; /* "valid...", "invalid...", "ambiguous..." */
	char name[160];
};

/* Our choice for rows the vectors mark ambiguous. */
static const struct {
	const char *input;
	bool ok;
	const char *why;
} decisions[] = {
	/* RFC 8461 3.2 ignores parameters other than charset=utf-8/us-ascii
	 * rather than rejecting the response; the body is decoded as UTF-8
	 * regardless (as postfix-tlspol does). */
	{ "text/plain; charset=iso-8859-1", true, "charset ignored, decoded as UTF-8" },
};

static const struct {
	const char *input;
	bool ok;
} own_rows[] = {
	{ NULL, false },
	{ "text/plain\t;charset=utf-8", true },     /* HTAB is WSP too */
	{ "text/plain;", true },                    /* empty parameter list */
	{ "text/plain ", true },                    /* trailing OWS */
	{ " text/plain", true },                    /* leading OWS */
	{ "TEXT/PLAIN;CHARSET=UTF-8", true },
	{ "text/plain; format=flowed; charset=utf-8", true },
	{ "text/plain;charset=\"us-ascii\"", true },
	{ "text/plainx", false },
	{ "text/plain-text", false },
	{ "text/plain/html", false },
	{ "text/plai", false },
	{ "text/", false },
	{ "text", false },
	{ "plain", false },
	{ "text /plain", false },
	{ "text/ plain", false },
	{ "x-text/plain", false },
	{ "text/x-plain", false },
	{ "application/text/plain", false },
	{ "text/plain, text/html", false },         /* two values folded into one */
	{ "text/plain garbage", false },
	{ "text/plain (comment)", false },          /* RFC 2045 comments are not HTTP */
	{ ";text/plain", false },
	{ " ", false },
};

static bool
expected(const struct row *r)
{
	if (strncmp(r->verdict, "valid", 5) == 0)
		return true;
	if (strncmp(r->verdict, "invalid", 7) == 0)
		return false;
	for (size_t i = 0; i < sizeof decisions / sizeof decisions[0]; i++)
		if (r->input != NULL && strcmp(decisions[i].input, r->input) == 0)
			return decisions[i].ok;
	fail_msg("line %u: verdict '%s' for '%s' has no recorded decision", r->lineno, r->verdict,
		 r->input);
	return false;
}

static void
run_row(void **state)
{
	const struct row *r = *state;
	bool want = expected(r);
	bool got = sts_media_type_ok(r->input);
	if (got != want)
		fail_msg("%s: expected %s, got %s", r->name, want ? "text/plain" : "rejected",
			 got ? "text/plain" : "rejected");
}

static void
test_error_codes(void **state)
{
	(void)state;
	static const struct {
		enum sts_fetch_error e;
		const char *code;
		const char *type;
	} t[] = {
		{ STS_FETCH_OK, "ok", NULL },
		{ STS_FETCH_DNS_TEMP, "fetch.dns.temporary", "sts-policy-fetch-error" },
		{ STS_FETCH_NO_ADDRESS, "fetch.dns.no_address", "sts-policy-fetch-error" },
		{ STS_FETCH_CONNECT, "fetch.connect", "sts-policy-fetch-error" },
		{ STS_FETCH_TLS_UNTRUSTED, "fetch.tls.untrusted", "sts-webpki-invalid" },
		{ STS_FETCH_TLS_EXPIRED, "fetch.tls.expired", "sts-webpki-invalid" },
		{ STS_FETCH_TLS_NAME, "fetch.tls.name", "sts-webpki-invalid" },
		{ STS_FETCH_TLS_OTHER, "fetch.tls.handshake", "sts-webpki-invalid" },
		{ STS_FETCH_HTTP_STATUS, "fetch.http.status", "sts-policy-fetch-error" },
		{ STS_FETCH_REDIRECT, "fetch.http.redirect", "sts-policy-fetch-error" },
		{ STS_FETCH_CONTENT_TYPE, "fetch.http.content_type", "sts-policy-fetch-error" },
		{ STS_FETCH_TOO_LARGE, "fetch.http.too_large", "sts-policy-fetch-error" },
		{ STS_FETCH_TIMEOUT, "fetch.timeout", "sts-policy-fetch-error" },
		{ STS_FETCH_POLICY_INVALID, "policy.invalid", "sts-policy-invalid" },
		{ STS_FETCH_INTERNAL, "fetch.internal", "sts-policy-fetch-error" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		assert_string_equal(sts_fetch_error_code(t[i].e), t[i].code);
		const char *type = sts_fetch_tlsrpt_type(t[i].e);
		if (t[i].type == NULL)
			assert_null(type);
		else
			assert_string_equal(type, t[i].type);
	}
}

static struct CMUnitTest *
add_test(struct CMUnitTest *tests, size_t *n, size_t *cap, const char *name,
	 CMUnitTestFunction fn, void *state)
{
	if (*n == *cap) {
		*cap *= 2;
		tests = realloc(tests, *cap * sizeof *tests);
		if (tests == NULL)
			abort();
	}
	memset(&tests[*n], 0, sizeof tests[*n]);
	tests[*n].name = name;
	tests[*n].test_func = fn;
	tests[*n].initial_state = state;
	(*n)++;
	return tests;
}

int
main(void)
{
	size_t len;
	char *text = tu_keep(tu_read_file(tu_src_path("tests/data/vectors.tsv"), &len));
	size_t cap = 64, n = 0, from_vectors = 0;
	struct CMUnitTest *tests = calloc(cap, sizeof *tests);
	if (tests == NULL)
		abort();
	/* Split by hand: line numbers must count empty lines too. */
	unsigned lineno = 0;
	for (char *line = text; line != NULL && *line != '\0';) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		lineno++;
		char *f[6];
		if (line[0] != '#' && tu_split_tabs(line, f, 6) >= 4 && strcmp(f[0], "mediatype") == 0) {
			struct row *r = tu_keep(calloc(1, sizeof *r));
			size_t ilen;
			r->lineno = lineno;
			r->input = tu_keep(tu_unescape(f[1], &ilen));
			r->verdict = f[3];   /* the sender (default) verdict */
			char shown[96];
			sts_escape(r->input, ilen, shown, sizeof shown);
			snprintf(r->name, sizeof r->name, "vectors.tsv:%u mediatype '%s'", lineno,
				 shown);
			tests = add_test(tests, &n, &cap, r->name, run_row, r);
			from_vectors++;
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	if (from_vectors < 15) {
		printf("Bail out! only %zu mediatype vectors found\n", from_vectors);
		free(tests);
		return 1;
	}
	for (size_t i = 0; i < sizeof own_rows / sizeof own_rows[0]; i++) {
		struct row *r = tu_keep(calloc(1, sizeof *r));
		r->input = own_rows[i].input;
		r->verdict = own_rows[i].ok ? "valid" : "invalid";
		if (r->input == NULL)
			snprintf(r->name, sizeof r->name, "own %zu: no Content-Type (NULL)", i + 1);
		else {
			char shown[96];
			sts_escape(r->input, strlen(r->input), shown, sizeof shown);
			snprintf(r->name, sizeof r->name, "own %zu: '%s'", i + 1, shown);
		}
		tests = add_test(tests, &n, &cap, r->name, run_row, r);
	}
	tests = add_test(tests, &n, &cap, "fetch error codes and RFC 8460 result types",
			 test_error_codes, NULL);
	return tu_run("mediatype", tests, n);
}
