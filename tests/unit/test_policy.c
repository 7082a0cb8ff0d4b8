/* test_policy.c: policy parser behaviours beyond the shared vectors:
 * diagnostic codes and positions, tolerances, first-wins, canonical form,
 * rendering round trip, and the size ceiling. Rules refer to
 * shared/spec/rfc8461-requirements.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>

#include "testutil.h"

struct diag_case {
	const char *name;
	const char *body;
	unsigned flags;
	int rc;              /* STS_OK or STS_EINVAL */
	const char *code;    /* a diagnostic that must be present (NULL: none required) */
	unsigned line, column;  /* its position when non-zero */
	const char *msg_part;   /* substring of its message */
};

#define OKB "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n"

static const struct diag_case diag_cases[] = {
	{ "rule 23: later version ignored", OKB "version: STSv2\n", 0, STS_OK, "policy.field.duplicate", 5, 1, "first one" },
	{ "rule 22: unknown field is a warning", OKB "foo: bar baz\n", STS_PARSE_STRICT, STS_OK, "policy.field.unknown", 5, 1, "'foo'" },
	{ "rule 22: case variant of a known key gets a hint", OKB "Mode: testing\n", 0, STS_OK, "policy.field.unknown", 5, 1, "case-sensitive" },
	{ "rule 15: mode typo gets a hint", "version: STSv1\nmode: enforced\nmx: a.example\nmax_age: 1\n", 0, STS_EINVAL, "policy.mode.invalid", 2, 7, "did you mean 'enforce'" },
	{ "rule 15: mode case", "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n", 0, STS_EINVAL, "policy.mode.invalid", 2, 7, "lower case" },
	{ "rule 20: max_age thousands separator", "version: STSv1\nmode: none\nmax_age: 604,800\n", 0, STS_EINVAL, "policy.max_age.invalid", 3, 13, "no separators" },
	{ "rule 20: max_age 11 digits", "version: STSv1\nmode: none\nmax_age: 12345678901\n", 0, STS_EINVAL, "policy.max_age.too_many_digits", 3, 10, "11 digits" },
	{ "B.1: max_age above max clamps (default)", "version: STSv1\nmode: none\nmax_age: 9999999999\n", 0, STS_OK, "policy.max_age.too_large", 3, 10, "31557600" },
	{ "B.1: max_age above max is an error (strict)", "version: STSv1\nmode: none\nmax_age: 31557601\n", STS_PARSE_STRICT, STS_EINVAL, "policy.max_age.too_large", 3, 10, NULL },
	{ "B.1: max_age 0 is valid, with a warning", "version: STSv1\nmax_age: 0\nmode: testing\nmx: a.example\n", STS_PARSE_STRICT, STS_OK, "policy.max_age.short", 2, 10, "one day" },
	{ "rule 67: short max_age is right for mode none", "version: STSv1\nmode: none\nmax_age: 0\n", STS_PARSE_STRICT, STS_OK, NULL, 0, 0, NULL },
	{ "rule 21: enforce needs mx", "version: STSv1\nmode: enforce\nmax_age: 1\n", 0, STS_EINVAL, "policy.mx.missing", 0, 0, "enforce" },
	{ "rule 21: missing version", "mode: none\nmax_age: 1\n", 0, STS_EINVAL, "policy.version.missing", 0, 0, NULL },
	{ "rule 20: indented key", "version: STSv1\n  mode: none\nmax_age: 1\n", 0, STS_EINVAL, "policy.key.indented", 2, 1, "leading" },
	{ "rule 20: space before colon", "version: STSv1\nmode : none\nmax_age: 1\n", 0, STS_EINVAL, "policy.key.space_before_colon", 2, 5, NULL },
	{ "rule 20: bare CR", "version: STSv1\rmode: none\rmax_age: 1\r", 0, STS_EINVAL, "policy.bare_cr", 1, 15, "LF or CRLF" },
	{ "rule 20: NUL byte", "version: STSv1\nmode: none\nmax_age: 1\n\0", 0, STS_EINVAL, NULL, 0, 0, NULL },
	{ "rule 20: blank line tolerated (default)", "version: STSv1\n\nmode: none\nmax_age: 1\n", 0, STS_OK, "policy.blank_line", 2, 1, NULL },
	{ "rule 20: blank line rejected (strict)", "version: STSv1\n\nmode: none\nmax_age: 1\n", STS_PARSE_STRICT, STS_EINVAL, "policy.blank_line", 2, 1, NULL },
	{ "rule 20: comment tolerated (default)", "# hi\nversion: STSv1\nmode: none\nmax_age: 1\n", 0, STS_OK, "policy.comment", 1, 1, NULL },
	{ "rule 20: comment rejected (strict)", "# hi\nversion: STSv1\nmode: none\nmax_age: 1\n", STS_PARSE_STRICT, STS_EINVAL, "policy.comment", 1, 1, NULL },
	{ "rule 20: BOM tolerated (default)", "\xef\xbb\xbfversion: STSv1\nmode: none\nmax_age: 1\n", 0, STS_OK, "policy.bom", 1, 1, NULL },
	{ "rule 20: BOM rejected (strict)", "\xef\xbb\xbfversion: STSv1\nmode: none\nmax_age: 1\n", STS_PARSE_STRICT, STS_EINVAL, "policy.bom", 1, 1, NULL },
	{ "rule 20: HTML body", "<html><body>404</body></html>", 0, STS_EINVAL, "policy.line.not_field", 1, 1, "HTML" },
	{ "rule 20: Jekyll front matter", "---\nlayout: none\n---\n" OKB, 0, STS_EINVAL, "policy.line.not_field", 1, 1, "Jekyll" },
	{ "rule 18: two names on one mx line", "version: STSv1\nmode: testing\nmx: a.example b.example\nmax_age: 1\n", 0, STS_EINVAL, "policy.mx.multiple", 3, 14, "one 'mx:' line" },
	{ "rule 19: U-label gets the A-label", "version: STSv1\nmode: testing\nmx: m\xc3\xb8x.example\nmax_age: 1\n", 0, STS_EINVAL, "policy.mx.ulabel", 3, 6, "xn--mx-lka.example" },
	{ "rule 20: invalid UTF-8 in extension", OKB "note: \xc3\x28\n", 0, STS_EINVAL, "policy.ext.bad_utf8", 5, 7, NULL },
	{ "rule 20: overlong UTF-8 in extension", OKB "note: \xc0\xaf\n", 0, STS_EINVAL, "policy.ext.bad_utf8", 5, 7, NULL },
	{ "rule 20: surrogate in extension", OKB "note: \xed\xa0\x80\n", 0, STS_EINVAL, "policy.ext.bad_utf8", 5, 7, NULL },
	{ "rule 20: 4-byte UTF-8 in extension", OKB "note: \xf0\x9f\x98\x80 ok\n", STS_PARSE_STRICT, STS_OK, "policy.field.unknown", 5, 1, NULL },
	{ "rule 20: UTF-16", "\xff\xfev\0", 0, STS_EINVAL, "policy.utf16", 1, 1, NULL },
	{ "rule 21: empty body", "", 0, STS_EINVAL, "policy.empty", 1, 1, NULL },
	{ "CRLF columns count bytes", "version: STSv1\r\nmode: bad\r\nmx: a.example\r\nmax_age: 1\r\n", 0, STS_EINVAL, "policy.mode.invalid", 2, 7, NULL },
};

static size_t
case_len(const struct diag_case *c)
{
	/* The NUL-byte case carries its NUL inside the literal. */
	size_t n = strlen(c->body);
	if (strstr(c->name, "NUL byte") != NULL)
		n += 1;
	if (strstr(c->name, "UTF-16") != NULL)
		n = 4;
	return n;
}

static void
test_diag_case(void **state)
{
	const struct diag_case *c = *state;
	struct sts_diags d;
	struct sts_policy p;
	sts_diags_init(&d);
	int rc = sts_policy_parse(c->body, case_len(c), c->flags, &p, &d);
	for (size_t i = 0; i < d.n; i++)
		printf("# %u:%u %s %s\n", d.items[i].line, d.items[i].column, d.items[i].code,
		       d.items[i].message);
	assert_int_equal(rc, c->rc);
	if (c->code != NULL) {
		const struct sts_diag *g = NULL;
		for (size_t i = 0; i < d.n && g == NULL; i++)
			if (strcmp(d.items[i].code, c->code) == 0)
				g = &d.items[i];
		assert_non_null(g);
		if (c->line != 0) {
			assert_int_equal(g->line, c->line);
			assert_int_equal(g->column, c->column);
		}
		if (c->msg_part != NULL && strstr(g->message, c->msg_part) == NULL)
			fail_msg("message '%s' lacks '%s'", g->message, c->msg_part);
		assert_true(g->rule[0] != '\0');
	}
	if (rc != STS_OK) {
		assert_non_null(sts_diags_first_error(&d));
	} else {
		assert_null(sts_diags_first_error(&d));
	}
	sts_policy_clear(&p);
}

static void
test_first_wins(void **state)
{
	(void)state;
	const char *body = "version: STSv1\nmode: testing\nmode: enforced\nmax_age: 86400\n"
			   "max_age: 1\nmx: a.example\nnote: one\nnote: two\n";
	struct sts_diags d;
	struct sts_policy p;
	sts_diags_init(&d);
	assert_int_equal(sts_policy_parse(body, strlen(body), STS_PARSE_STRICT, &p, &d), STS_OK);
	assert_int_equal(p.mode, STS_MODE_TESTING);
	assert_int_equal(p.max_age, 86400);
	assert_int_equal(p.n_ext, 1);
	assert_string_equal(p.ext[0].value, "one");
	sts_policy_clear(&p);
}

/* Meaning is compared on a canonical form: formatting never counts. */
struct canon_case {
	const char *a, *b;
	bool same;
};

static const struct canon_case canon_cases[] = {
	{ "version: STSv1\nmode: enforce\nmx: a.example\nmx: b.example\nmax_age: 86400\n",
	  "mx: B.example\r\nmax_age:86400\r\nversion: STSv1\r\nmode:\tenforce  \r\nmx: a.example", true },
	{ "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n",
	  "version: STSv1\nmode: enforce\nmx: a.example\nmx: a.example\nmax_age: 86400\n", true },
	{ "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n",
	  "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400\n", false },
	{ "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n",
	  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86401\n", false },
	{ "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n",
	  "version: STSv1\nmode: enforce\nmx: *.example\nmax_age: 86400\n", false },
	{ "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\n",
	  "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nx: 1\n", false },
	{ "version: STSv1\nmode: none\nmax_age: 1\nb: 2\na: 1\n",
	  "version: STSv1\nmode: none\nmax_age: 1\na: 1\nb: 2\n", true },
};

static void
test_canonical(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof canon_cases / sizeof canon_cases[0]; i++) {
		struct sts_diags d;
		struct sts_policy a, b;
		sts_diags_init(&d);
		assert_int_equal(sts_policy_parse(canon_cases[i].a, strlen(canon_cases[i].a), 0, &a, &d), STS_OK);
		assert_int_equal(sts_policy_parse(canon_cases[i].b, strlen(canon_cases[i].b), 0, &b, &d), STS_OK);
		if (sts_policy_same_meaning(&a, &b) != canon_cases[i].same)
			fail_msg("canonical case %zu: expected %s", i, canon_cases[i].same ? "same" : "different");
		sts_policy_clear(&a);
		sts_policy_clear(&b);
	}
}

static void
test_render_round_trip(void **state)
{
	(void)state;
	const char *body = "mx: *.Example.net\nversion: STSv1\nmode: testing\nmax_age: 99\nmx: a.example\nnote: caf\xc3\xa9 ok\n";
	struct sts_diags d;
	struct sts_policy p, q;
	sts_diags_init(&d);
	assert_int_equal(sts_policy_parse(body, strlen(body), 0, &p, &d), STS_OK);
	struct sts_buf out;
	sts_buf_init(&out, STS_POLICY_MAX);
	assert_int_equal(sts_policy_render(&p, &out), STS_OK);
	assert_string_equal(sts_buf_cstr(&out),
			    "version: STSv1\r\nmode: testing\r\nmx: *.example.net\r\nmx: a.example\r\n"
			    "max_age: 99\r\nnote: caf\xc3\xa9 ok\r\n");
	sts_diags_init(&d);
	assert_int_equal(sts_policy_parse(out.data, out.len, STS_PARSE_STRICT, &q, &d), STS_OK);
	assert_true(sts_policy_same_meaning(&p, &q));
	sts_buf_free(&out);
	sts_policy_clear(&p);
	sts_policy_clear(&q);
}

static void
test_size_ceiling(void **state)
{
	(void)state;
	/* Rule 35: 65536 bytes parse, 65537 do not. */
	size_t n = STS_POLICY_MAX + 1;
	char *body = malloc(n);
	const char *head = "version: STSv1\nmode: none\nmax_age: 1\npad: ";
	memcpy(body, head, strlen(head));
	memset(body + strlen(head), 'x', n - strlen(head));
	body[STS_POLICY_MAX - 1] = '\n';
	struct sts_diags d;
	struct sts_policy p;
	sts_diags_init(&d);
	assert_int_equal(sts_policy_parse(body, STS_POLICY_MAX, STS_PARSE_STRICT, &p, &d), STS_OK);
	sts_policy_clear(&p);
	sts_diags_init(&d);
	assert_int_equal(sts_policy_parse(body, n, 0, &p, &d), STS_EINVAL);
	assert_true(sts_diags_has(&d, "policy.too_large"));
	sts_policy_clear(&p);
	free(body);
}

static void
test_many_mx_lines(void **state)
{
	(void)state;
	/* Thousands of lines: storage is sized from the input, never overflows. */
	struct sts_buf b;
	sts_buf_init(&b, STS_POLICY_MAX);
	sts_buf_puts(&b, "version: STSv1\nmode: enforce\nmax_age: 1\n");
	int i = 0;
	while (sts_buf_printf(&b, "mx: m%d.example\n", i) == STS_OK)
		i++;
	struct sts_diags d;
	struct sts_policy p;
	sts_diags_init(&d);
	assert_int_equal(sts_policy_parse(b.data, b.len, STS_PARSE_STRICT, &p, &d), STS_OK);
	assert_int_equal(p.n_mx, (size_t)i);
	assert_true(sts_policy_matches_host(&p, "M7.example."));
	assert_false(sts_policy_matches_host(&p, "x.m7.example"));
	sts_policy_clear(&p);
	sts_buf_free(&b);
}

static void
test_diag_overflow_keeps_first_error(void **state)
{
	(void)state;
	/* More warnings than slots, then an error: the error is still kept. */
	struct sts_buf b;
	sts_buf_init(&b, STS_POLICY_MAX);
	sts_buf_puts(&b, "version: STSv1\nmode: none\nmax_age: 1\n");
	for (int i = 0; i < STS_DIAGS_MAX + 10; i++)
		sts_buf_printf(&b, "x%d: y\n", i);
	sts_buf_puts(&b, "mode : late\n");
	struct sts_diags d;
	struct sts_policy p;
	sts_diags_init(&d);
	assert_int_equal(sts_policy_parse(b.data, b.len, 0, &p, &d), STS_EINVAL);
	const struct sts_diag *e = sts_diags_first_error(&d);
	assert_non_null(e);
	assert_string_equal(e->code, "policy.key.space_before_colon");
	assert_int_equal(e->line, (unsigned)(3 + STS_DIAGS_MAX + 10 + 1));
	assert_true(d.n_dropped > 0);
	sts_policy_clear(&p);
	sts_buf_free(&b);
}

int
main(void)
{
	size_t n = sizeof diag_cases / sizeof diag_cases[0];
	struct CMUnitTest *tests = calloc(n + 8, sizeof *tests);
	for (size_t i = 0; i < n; i++) {
		tests[i].name = diag_cases[i].name;
		tests[i].test_func = test_diag_case;
		tests[i].initial_state = (void *)&diag_cases[i];
	}
	struct CMUnitTest more[] = {
		cmocka_unit_test(test_first_wins),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_render_round_trip),
		cmocka_unit_test(test_size_ceiling),
		cmocka_unit_test(test_many_mx_lines),
		cmocka_unit_test(test_diag_overflow_keeps_first_error),
	};
	memcpy(tests + n, more, sizeof more);
	return tu_run("policy", tests, n + sizeof more / sizeof more[0]);
}
