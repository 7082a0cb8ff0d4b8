/* test_mx.c: mx pattern validation (rules 18, 19, 20, 45, 73) and host
 * matching (rules 45, 75), plus the bounded buffer and diagnostic escaping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>

#include "testutil.h"

struct pat_case {
	const char *pattern;
	unsigned flags;
	int rc;
	const char *code;   /* diagnostic that must appear, or NULL */
	const char *norm;   /* normalised form when valid */
};

static const struct pat_case pat_cases[] = {
	{ "mail.example.com", STS_PARSE_STRICT, STS_OK, NULL, "mail.example.com" },
	{ "MAIL.Example.COM", STS_PARSE_STRICT, STS_OK, NULL, "mail.example.com" },
	{ "*.example.com", STS_PARSE_STRICT, STS_OK, NULL, "*.example.com" },
	{ "*.com", STS_PARSE_STRICT, STS_OK, "policy.mx.broad_wildcard", "*.com" },
	{ "mail.example.com.", 0, STS_OK, "policy.mx.trailing_dot", "mail.example.com" },
	{ "mail.example.com.", STS_PARSE_STRICT, STS_EINVAL, "policy.mx.trailing_dot", NULL },
	{ "", 0, STS_EINVAL, "policy.mx.empty", NULL },
	{ ".", 0, STS_EINVAL, "policy.mx.empty_label", NULL },
	{ "*.", 0, STS_EINVAL, "policy.mx.empty_label", NULL },
	{ "a..example", 0, STS_EINVAL, "policy.mx.empty_label", NULL },
	{ "*.*.example", 0, STS_EINVAL, "policy.mx.wildcard", NULL },
	{ "mx*.example", 0, STS_EINVAL, "policy.mx.wildcard", NULL },
	{ "-a.example", 0, STS_EINVAL, "policy.mx.hyphen", NULL },
	{ "a-.example", 0, STS_EINVAL, "policy.mx.hyphen", NULL },
	{ "a_b.example", 0, STS_EINVAL, "policy.mx.bad_char", NULL },
	{ "127.0.0.1", 0, STS_EINVAL, "policy.mx.ip_literal", NULL },
	{ "[192.0.2.1]", 0, STS_EINVAL, "policy.mx.ip_literal", NULL },
	{ "mail.example.com:25", 0, STS_EINVAL, "policy.mx.not_host", NULL },
	{ "smtp://mail.example.com", 0, STS_EINVAL, "policy.mx.not_host", NULL },
	{ "a.example,b.example", 0, STS_EINVAL, "policy.mx.multiple", NULL },
	{ "a.example # primary", 0, STS_EINVAL, "policy.mx.comment", NULL },
	{ "xn--mx-lka.example", STS_PARSE_STRICT, STS_OK, NULL, "xn--mx-lka.example" },
	{ "xn--zz.example", 0, STS_EINVAL, "policy.mx.bad_alabel", NULL },
	{ "m\xc3\xb8x.example", 0, STS_EINVAL, "policy.mx.ulabel", NULL },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", 0, STS_EINVAL,
	  "policy.mx.label_too_long", NULL },
	{ "<yourdomain>.mail.protection.outlook.com", 0, STS_EINVAL, "policy.mx.bad_char", NULL },
};

static void
test_pattern(void **state)
{
	const struct pat_case *c = *state;
	struct sts_diags d;
	sts_diags_init(&d);
	char out[STS_HOST_MAX + 1];
	struct sts_pos pos = { 100, 7, 5 };
	int rc = sts_mx_pattern_check(c->pattern, strlen(c->pattern), c->flags, out, &d, pos);
	for (size_t i = 0; i < d.n; i++)
		printf("# %s %s\n", d.items[i].code, d.items[i].message);
	assert_int_equal(rc, c->rc);
	if (c->code != NULL) {
		assert_true(sts_diags_has(&d, c->code));
		for (size_t i = 0; i < d.n; i++) {
			assert_int_equal(d.items[i].line, 7);
			assert_true(d.items[i].column >= 5 && d.items[i].offset >= 100);
		}
	}
	if (c->norm != NULL)
		assert_string_equal(out, c->norm);
}

static void
test_long_name(void **state)
{
	(void)state;
	/* 253 characters are allowed, 254 are not. */
	char name[300];
	size_t o = 0;
	while (o < 253) {
		size_t lab = 253 - o >= 62 ? 61 : 253 - o - 1;
		memset(name + o, 'a', lab);
		o += lab;
		if (o < 253)
			name[o++] = '.';
	}
	name[253] = '\0';
	if (name[252] == '.')
		name[252] = 'b';
	struct sts_diags d;
	sts_diags_init(&d);
	char out[STS_HOST_MAX + 1];
	struct sts_pos pos = { 0, 1, 1 };
	assert_int_equal(sts_mx_pattern_check(name, 253, 0, out, &d, pos), STS_OK);
	name[253] = 'c';
	name[254] = '\0';
	assert_int_equal(sts_mx_pattern_check(name, 254, 0, out, &d, pos), STS_EINVAL);
	assert_true(sts_diags_has(&d, "policy.mx.too_long"));
}

struct match_case {
	const char *pattern, *host;
	bool match;
};

static const struct match_case match_cases[] = {
	{ "mail.example.com", "MAIL.EXAMPLE.COM.", true },
	{ "*.example.com", "a.example.com", true },
	{ "*.example.com", "example.com", false },
	{ "*.example.com", ".example.com", false },
	{ "*.example.com", "a.b.example.com", false },
	{ "*.xn--mx-lka.example", "a.m\xc3\xb8x.example", true },
	{ "xn--mx-lka.example", "M\xc3\x98X.example", true },
	{ "mail.example.com", "mail.example.co", false },
};

static void
test_match(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++) {
		char host[STS_HOST_MAX + 1];
		/* A host that does not normalise (".example.com") matches nothing. */
		bool usable = sts_host_normalize(match_cases[i].host, strlen(match_cases[i].host),
						 host) == STS_OK;
		if (match_cases[i].match)
			assert_true(usable);
		if (usable && sts_mx_match(match_cases[i].pattern, host) != match_cases[i].match)
			fail_msg("%s vs %s", match_cases[i].pattern, match_cases[i].host);
	}
}

static void
test_host_normalize_rejects(void **state)
{
	(void)state;
	char out[STS_HOST_MAX + 1];
	assert_int_equal(sts_host_normalize("", 0, out), STS_EINVAL);
	assert_int_equal(sts_host_normalize(".", 1, out), STS_EINVAL);
	assert_int_equal(sts_host_normalize("a b", 3, out), STS_EINVAL);
	assert_int_equal(sts_host_normalize("a\x01", 2, out), STS_EINVAL);
	assert_int_equal(sts_host_normalize("\xff\xfe", 2, out), STS_EINVAL);
}

static void
test_buf_ceiling(void **state)
{
	(void)state;
	struct sts_buf b;
	sts_buf_init(&b, 10);
	assert_int_equal(sts_buf_append(&b, "0123456789", 10), STS_OK);
	assert_int_equal(sts_buf_putc(&b, 'x'), STS_ETOOBIG);
	assert_int_equal(b.len, 10);
	assert_string_equal(sts_buf_cstr(&b), "0123456789");
	sts_buf_reset(&b);
	assert_int_equal(sts_buf_printf(&b, "%d", 12345678), STS_OK);
	assert_int_equal(sts_buf_printf(&b, "%d", 123), STS_ETOOBIG);
	assert_string_equal(sts_buf_cstr(&b), "12345678");
	sts_buf_free(&b);
	assert_null(b.data);
	assert_string_equal(sts_buf_cstr(&b), "");
}

static void
test_escape(void **state)
{
	(void)state;
	char out[16];
	assert_string_equal(sts_escape("a\x01\\b", 4, out, sizeof out), "a\\x01\\\\b");
	assert_string_equal(sts_escape("0123456789abcdef", 16, out, sizeof out), "0123456789ab...");
}

int
main(void)
{
	size_t n = sizeof pat_cases / sizeof pat_cases[0];
	struct CMUnitTest *tests = calloc(n + 8, sizeof *tests);
	static char names[64][96];
	for (size_t i = 0; i < n; i++) {
		char esc[64];
		sts_escape(pat_cases[i].pattern, strlen(pat_cases[i].pattern), esc, sizeof esc);
		snprintf(names[i], sizeof names[i], "pattern '%s'%s", esc,
			 pat_cases[i].flags ? " strict" : "");
		tests[i].name = names[i];
		tests[i].test_func = test_pattern;
		tests[i].initial_state = (void *)&pat_cases[i];
	}
	struct CMUnitTest more[] = {
		cmocka_unit_test(test_long_name),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_host_normalize_rejects),
		cmocka_unit_test(test_buf_ceiling),
		cmocka_unit_test(test_escape),
	};
	memcpy(tests + n, more, sizeof more);
	return tu_run("mx", tests, n + sizeof more / sizeof more[0]);
}
