/* test_records.c: _mta-sts TXT and TLSRPT records beyond the shared vectors:
 * codes and columns of diagnostics, RRset selection with split strings,
 * first-wins ids (rule 23), and the strict/default tolerances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>

#include "testutil.h"

struct rec_case {
	const char *name;
	int tlsrpt;          /* 0: _mta-sts, 1: TLSRPT */
	const char *value;
	unsigned flags;
	int rc;
	const char *code;    /* required diagnostic, or NULL */
	unsigned column;     /* its column when non-zero */
	const char *expect;  /* id, or first rua */
};

static const struct rec_case rec_cases[] = {
	{ "rule 6: version case", 0, "V=STSv1; id=1", 0, STS_EINVAL, "txt.version.case", 1, NULL },
	{ "rule 4: unsupported version", 0, "v=STSv2; id=1", 0, STS_EINVAL, "txt.version.unsupported", 1, NULL },
	{ "rule 6: version not first", 0, "id=1; v=STSv1", 0, STS_EINVAL, "txt.version.not_first", 1, NULL },
	{ "rule 7: not an STS record", 0, "v=spf1 -all", 0, STS_EINVAL, "txt.version.unsupported", 1, NULL },
	{ "quotes copied from a zone file", 0, "\"v=STSv1; id=1\"", 0, STS_EINVAL, "txt.version.missing", 1, NULL },
	{ "rule 3: non-ASCII", 0, "v=STSv1; id=1; n=caf\xc3\xa9", 0, STS_EINVAL, "txt.not_ascii", 21, NULL },
	{ "rule 12: id with dash", 0, "v=STSv1; id=2026-11-29", 0, STS_EINVAL, "txt.id.invalid", 13, NULL },
	{ "rule 12: id 33 chars", 0, "v=STSv1; id=123456789012345678901234567890123", 0, STS_EINVAL, "txt.id.too_long", 13, NULL },
	{ "rule 5: no id", 0, "v=STSv1; mode=enforce", 0, STS_EINVAL, "txt.id.missing", 0, NULL },
	{ "rule 23: first id wins", 0, "v=STSv1; id=first; id=second", STS_PARSE_STRICT, STS_OK, "txt.id.duplicate", 20, "first" },
	{ "rule 23: invalid later id ignored", 0, "v=STSv1; id=first; id=bad-one", STS_PARSE_STRICT, STS_OK, "txt.id.duplicate", 20, "first" },
	{ "rule 12: missing ';'", 0, "v=STSv1 id=1", 0, STS_EINVAL, "txt.delimiter.missing", 9, NULL },
	{ "rule 12: WSP around '='", 0, "v=STSv1; id =1", 0, STS_EINVAL, "txt.field.no_equals", 10, NULL },
	{ "trailing WSP tolerated", 0, "v=STSv1; id=1 ", 0, STS_OK, "txt.trailing_space", 14, "1" },
	{ "trailing WSP strict", 0, "v=STSv1; id=1 ", STS_PARSE_STRICT, STS_EINVAL, "txt.trailing_space", 14, NULL },
	{ "erratum 6285: WSP before ';' is valid, with a warning", 0, "v=STSv1 ; id=x", STS_PARSE_STRICT, STS_OK, "txt.version.space_before_delimiter", 8, "x" },
	{ "rule 22: extension kept", 0, "v=STSv1; id=1; rpt=a:b<c>", STS_PARSE_STRICT, STS_OK, "txt.ext.unknown", 16, "1" },
	{ "T2: TLSRPT version", 1, "v=TLSRPTv2; rua=mailto:a@b.example", 0, STS_EINVAL, "tlsrpt.version.unsupported", 1, NULL },
	{ "T4: TLSRPT needs rua", 1, "v=TLSRPTv1; x=1", 0, STS_EINVAL, "tlsrpt.rua.missing", 0, NULL },
	{ "T3: http is not supported", 1, "v=TLSRPTv1; rua=http://r.example/", 0, STS_EINVAL, "tlsrpt.rua.scheme", 17, NULL },
	{ "T5: unencoded '!'", 1, "v=TLSRPTv1; rua=mailto:a@b.example!10m", 0, STS_EINVAL, "tlsrpt.rua.unencoded", 35, NULL },
	{ "T3: bad percent escape", 1, "v=TLSRPTv1; rua=mailto:a%zz@b.example", 0, STS_EINVAL, "tlsrpt.rua.bad_percent", 25, NULL },
	{ "T3: mailto without address", 1, "v=TLSRPTv1; rua=mailto:nobody", 0, STS_EINVAL, "tlsrpt.rua.mailto_invalid", 17, NULL },
	{ "T3: https without host", 1, "v=TLSRPTv1; rua=https:///x", 0, STS_EINVAL, "tlsrpt.rua.https_invalid", 17, NULL },
	{ "T3: placeholder", 1, "v=TLSRPTv1; rua=mailto:a@<your.domain>", 0, STS_EINVAL, "tlsrpt.rua.bad_char", 26, NULL },
	{ "T3: list with WSP", 1, "v=TLSRPTv1; rua=mailto:a@b.example ,\thttps://r.example/v1", STS_PARSE_STRICT, STS_OK, NULL, 0, "mailto:a@b.example" },
	{ "T13: second rua collected", 1, "v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example", STS_PARSE_STRICT, STS_OK, "tlsrpt.rua.duplicate", 37, "mailto:a@b.example" },
};

static void
test_rec_case(void **state)
{
	const struct rec_case *c = *state;
	struct sts_diags d;
	sts_diags_init(&d);
	int rc;
	char got[256] = "";
	if (c->tlsrpt) {
		struct sts_tlsrpt_record r;
		rc = sts_tlsrpt_parse(c->value, strlen(c->value), c->flags, &r, &d);
		if (r.n_rua > 0)
			snprintf(got, sizeof got, "%s", r.rua[0]);
		sts_tlsrpt_record_clear(&r);
	} else {
		struct sts_txt_record r;
		rc = sts_txt_parse(c->value, strlen(c->value), c->flags, &r, &d);
		snprintf(got, sizeof got, "%s", r.id);
		sts_txt_record_clear(&r);
	}
	for (size_t i = 0; i < d.n; i++)
		printf("# col %u %s %s\n", d.items[i].column, d.items[i].code, d.items[i].message);
	assert_int_equal(rc, c->rc);
	if (c->code != NULL) {
		const struct sts_diag *g = NULL;
		for (size_t i = 0; i < d.n && g == NULL; i++)
			if (strcmp(d.items[i].code, c->code) == 0)
				g = &d.items[i];
		assert_non_null(g);
		if (c->column != 0)
			assert_int_equal(g->column, c->column);
	}
	if (c->expect != NULL)
		assert_string_equal(got, c->expect);
}

/* RRsets: strings of one RR join without separators (rule 10), RRs never join. */
struct set_case {
	const char *name;
	const char *rr[4][4];   /* up to 4 RRs of up to 4 strings, NULL-terminated */
	int rc;
	const char *id;
	const char *code;
};

static const struct set_case set_cases[] = {
	{ "rule 10: split inside a field", { { "v=STS", "v1; i", "d=abc", NULL } }, STS_OK, "abc", NULL },
	{ "rule 10: RRs are not joined", { { "v=STSv1; id=", NULL }, { "abc", NULL } }, STS_EINVAL, NULL, "txt.id.empty" },
	{ "rule 7: other records discarded", { { "google-site-verification=x", NULL }, { "v=STSv1; id=7", NULL } }, STS_OK, "7", NULL },
	{ "rule 8: two candidates", { { "v=STSv1; id=1", NULL }, { "v=STSv1;id=2", NULL } }, STS_EINVAL, NULL, "txt.rrset.multiple" },
	{ "rule 8: no candidates", { { "v=STSv1", NULL }, { "v=STSv10; id=2", NULL } }, STS_EINVAL, NULL, "txt.rrset.none" },
	{ "rule 8: empty RRset", { { NULL } }, STS_EINVAL, NULL, "txt.rrset.none" },
	{ "rule 8: candidate invalid", { { "v=STSv1; id=a_b", NULL } }, STS_EINVAL, NULL, "txt.id.invalid" },
	{ "erratum 6285: WSP candidate counts", { { "v=STSv1 ; id=1", NULL }, { "v=STSv1; id=2", NULL } }, STS_EINVAL, NULL, "txt.rrset.multiple" },
};

static void
test_set_case(void **state)
{
	const struct set_case *c = *state;
	struct sts_bytes strs[16];
	struct sts_txt_rr rrs[4];
	size_t n_rr = 0, used = 0;
	for (size_t i = 0; i < 4 && c->rr[i][0] != NULL; i++) {
		rrs[n_rr].strings = &strs[used];
		size_t k = 0;
		for (; k < 4 && c->rr[i][k] != NULL; k++, used++) {
			strs[used].ptr = c->rr[i][k];
			strs[used].len = strlen(c->rr[i][k]);
		}
		rrs[n_rr++].n_strings = k;
	}
	struct sts_diags d;
	struct sts_txt_record r;
	sts_diags_init(&d);
	int rc = sts_txt_select(rrs, n_rr, 0, &r, &d);
	assert_int_equal(rc, c->rc);
	if (c->id != NULL)
		assert_string_equal(r.id, c->id);
	if (c->code != NULL)
		assert_true(sts_diags_has(&d, c->code));
	sts_txt_record_clear(&r);
}

static void
test_tlsrpt_select(void **state)
{
	(void)state;
	struct sts_bytes s1 = { "v=TLSRPTv1; rua=mailto:a@b.example", 34 };
	struct sts_bytes s2 = { "v=spf1 -all", 11 };
	struct sts_txt_rr rrs[] = { { &s2, 1 }, { &s1, 1 } };
	struct sts_diags d;
	struct sts_tlsrpt_record r;
	sts_diags_init(&d);
	assert_int_equal(sts_tlsrpt_select(rrs, 2, 0, &r, &d), STS_OK);
	assert_int_equal(r.n_rua, 1);
	sts_tlsrpt_record_clear(&r);
	struct sts_txt_rr two[] = { { &s1, 1 }, { &s1, 1 } };
	sts_diags_init(&d);
	assert_int_equal(sts_tlsrpt_select(two, 2, 0, &r, &d), STS_EINVAL);
	assert_true(sts_diags_has(&d, "tlsrpt.rrset.multiple"));
	sts_tlsrpt_record_clear(&r);
}

static void
test_id_valid(void **state)
{
	(void)state;
	assert_true(sts_id_valid("a", 1));
	assert_true(sts_id_valid("20261129120000", 14));
	assert_true(sts_id_valid("0123456789abcdefghijklmnopqrstuv", 32));
	assert_false(sts_id_valid("0123456789abcdefghijklmnopqrstuvw", 33));
	assert_false(sts_id_valid("", 0));
	assert_false(sts_id_valid("a-b", 3));
	assert_false(sts_id_valid("a b", 3));
}

int
main(void)
{
	size_t n1 = sizeof rec_cases / sizeof rec_cases[0];
	size_t n2 = sizeof set_cases / sizeof set_cases[0];
	struct CMUnitTest *tests = calloc(n1 + n2 + 4, sizeof *tests);
	size_t n = 0;
	for (size_t i = 0; i < n1; i++, n++) {
		tests[n].name = rec_cases[i].name;
		tests[n].test_func = test_rec_case;
		tests[n].initial_state = (void *)&rec_cases[i];
	}
	for (size_t i = 0; i < n2; i++, n++) {
		tests[n].name = set_cases[i].name;
		tests[n].test_func = test_set_case;
		tests[n].initial_state = (void *)&set_cases[i];
	}
	struct CMUnitTest more[] = {
		cmocka_unit_test(test_tlsrpt_select),
		cmocka_unit_test(test_id_valid),
	};
	memcpy(tests + n, more, sizeof more);
	return tu_run("records", tests, n + 2);
}
