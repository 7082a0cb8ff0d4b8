/* test_vectors.c: every txt, txtset, policy, mxmatch and tlsrpt row of
 * tests/data/vectors.tsv (imported from shared/spec/vectors.tsv by
 * scripts/import-vectors) is one test case. Each asserts the strict verdict
 * (lint --strict) and the default (sender) verdict, plus the parsed fields the
 * row names (id=, mode=, max_age=, mx=, rua=). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>

#include "testutil.h"

struct row {
	unsigned lineno;
	char *kind;
	char *input;       /* decoded bytes */
	size_t input_len;
	char *strict;
	char *fdefault;
	char name[160];
};

static bool
verdict_valid(const char *v)
{
	return strncmp(v, "valid", 5) == 0 || strncmp(v, "match=yes", 9) == 0;
}

/* Returns the value of "key=" among the ';'-separated tokens of a verdict,
 * cut at the first space, or NULL. Static buffer. */
static const char *
verdict_field(const char *v, const char *key)
{
	static char val[512];
	size_t kl = strlen(key);
	const char *p = strchr(v, ';');
	while (p != NULL) {
		p++;
		while (*p == ' ')
			p++;
		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			const char *s = p + kl + 1;
			size_t n = strcspn(s, " ;");
			if (n >= sizeof val)
				n = sizeof val - 1;
			memcpy(val, s, n);
			val[n] = '\0';
			return val;
		}
		p = strchr(p, ';');
	}
	return NULL;
}

static void
print_diags(const struct sts_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		printf("# %u:%u %s %s: %s\n", d->items[i].line, d->items[i].column,
		       sts_severity_name(d->items[i].severity), d->items[i].code, d->items[i].message);
}

static void
check_policy(const struct row *r, const char *verdict, unsigned flags)
{
	struct sts_diags d;
	struct sts_policy p;
	sts_diags_init(&d);
	int rc = sts_policy_parse(r->input, r->input_len, flags, &p, &d);
	bool want = verdict_valid(verdict);
	if ((rc == STS_OK) != want) {
		print_diags(&d);
		fail_msg("line %u (%s): expected %s, parser says %s", r->lineno,
			 flags ? "strict" : "default", verdict, rc == STS_OK ? "valid" : "invalid");
	}
	if (want) {
		const char *v;
		if ((v = verdict_field(verdict, "mode")) != NULL)
			assert_string_equal(sts_mode_name(p.mode), v);
		if ((v = verdict_field(verdict, "max_age")) != NULL)
			assert_int_equal(p.max_age, strtoul(v, NULL, 10));
		if ((v = verdict_field(verdict, "mx")) != NULL) {
			char got[1024] = "";
			size_t o = 0;
			for (size_t i = 0; i < p.n_mx && o < sizeof got; i++)
				o += (size_t)snprintf(got + o, sizeof got - o, "%s%s", i ? "," : "", p.mx[i]);
			assert_string_equal(got, strcmp(v, "-") == 0 ? "" : v);
		}
	}
	sts_policy_clear(&p);
}

static void
check_txt(const struct row *r, const char *verdict, unsigned flags)
{
	struct sts_diags d;
	struct sts_txt_record rec;
	sts_diags_init(&d);
	int rc = sts_txt_parse(r->input, r->input_len, flags, &rec, &d);
	if ((rc == STS_OK) != verdict_valid(verdict)) {
		print_diags(&d);
		fail_msg("line %u (%s): expected %s", r->lineno, flags ? "strict" : "default", verdict);
	}
	const char *id = verdict_field(verdict, "id");
	if (rc == STS_OK && id != NULL)
		assert_string_equal(rec.id, id);
	sts_txt_record_clear(&rec);
}

static void
check_txtset(const struct row *r, const char *verdict, unsigned flags)
{
	json_error_t err;
	json_t *set = json_loadb(r->input, r->input_len, 0, &err);
	assert_non_null(set);
	assert_true(json_is_array(set));
	size_t n = json_array_size(set);
	struct sts_txt_rr *rrs = calloc(n + 1, sizeof *rrs);
	struct sts_bytes *strs = calloc(64, sizeof *strs);
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *rr = json_array_get(set, i);
		rrs[i].strings = &strs[used];
		rrs[i].n_strings = json_array_size(rr);
		for (size_t j = 0; j < rrs[i].n_strings; j++, used++) {
			strs[used].ptr = json_string_value(json_array_get(rr, j));
			strs[used].len = json_string_length(json_array_get(rr, j));
		}
	}
	struct sts_diags d;
	struct sts_txt_record rec;
	sts_diags_init(&d);
	int rc = sts_txt_select(rrs, n, flags, &rec, &d);
	if ((rc == STS_OK) != verdict_valid(verdict)) {
		print_diags(&d);
		fail_msg("line %u (%s): expected %s", r->lineno, flags ? "strict" : "default", verdict);
	}
	const char *id = verdict_field(verdict, "id");
	if (rc == STS_OK && id != NULL)
		assert_string_equal(rec.id, id);
	sts_txt_record_clear(&rec);
	free(strs);
	free(rrs);
	json_decref(set);
}

static void
check_tlsrpt(const struct row *r, const char *verdict, unsigned flags)
{
	struct sts_diags d;
	struct sts_tlsrpt_record rec;
	sts_diags_init(&d);
	int rc = sts_tlsrpt_parse(r->input, r->input_len, flags, &rec, &d);
	if ((rc == STS_OK) != verdict_valid(verdict)) {
		print_diags(&d);
		fail_msg("line %u (%s): expected %s", r->lineno, flags ? "strict" : "default", verdict);
	}
	const char *rua = verdict_field(verdict, "rua");
	if (rc == STS_OK && rua != NULL) {
		assert_true(rec.n_rua >= 1);
		assert_string_equal(rec.rua[0], rua);
	}
	if (rc == STS_OK && strstr(verdict, "2 URIs") != NULL)
		assert_int_equal(rec.n_rua, 2);
	sts_tlsrpt_record_clear(&rec);
}

static void
check_mxmatch(const struct row *r, const char *verdict, unsigned flags)
{
	(void)flags;
	const char *sp = strchr(r->input, ' ');
	assert_non_null(sp);
	struct sts_diags d;
	sts_diags_init(&d);
	char pat[STS_HOST_MAX + 1], host[STS_HOST_MAX + 1];
	struct sts_pos pos = { 0, 1, 1 };
	bool match = false;
	if (sts_mx_pattern_check(r->input, (size_t)(sp - r->input), 0, pat, &d, pos) == STS_OK &&
	    sts_host_normalize(sp + 1, strlen(sp + 1), host) == STS_OK)
		match = sts_mx_match(pat, host);
	if (match != verdict_valid(verdict)) {
		print_diags(&d);
		fail_msg("line %u: expected %s", r->lineno, verdict);
	}
}

static void
run_row(void **state)
{
	const struct row *r = *state;
	void (*check)(const struct row *, const char *, unsigned) =
		strcmp(r->kind, "policy") == 0 ? check_policy
		: strcmp(r->kind, "txt") == 0 ? check_txt
		: strcmp(r->kind, "txtset") == 0 ? check_txtset
		: strcmp(r->kind, "tlsrpt") == 0 ? check_tlsrpt
		: check_mxmatch;
	check(r, r->strict, STS_PARSE_STRICT);
	check(r, r->fdefault, 0);
}

int
main(void)
{
	size_t len;
	char *text = tu_keep(tu_read_file(tu_src_path("tests/data/vectors.tsv"), &len));
	size_t cap = 512, n = 0;
	struct CMUnitTest *tests = calloc(cap, sizeof *tests);
	unsigned lineno = 0;
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		lineno++;
		if (line[0] == '#')
			continue;
		char *f[6];
		size_t nf = tu_split_tabs(line, f, 6);
		if (nf < 4)
			continue;
		if (strcmp(f[0], "policy") && strcmp(f[0], "txt") && strcmp(f[0], "txtset") &&
		    strcmp(f[0], "tlsrpt") && strcmp(f[0], "mxmatch"))
			continue;   /* certmatch, mediatype, pfkey: the fetch and daemon issues test them */
		struct row *r = tu_keep(calloc(1, sizeof *r));
		r->lineno = lineno;
		r->kind = f[0];
		r->input = tu_keep(tu_unescape(f[1], &r->input_len));
		r->strict = f[2];
		r->fdefault = f[3];
		char shown[96];
		sts_escape(r->input, r->input_len, shown, sizeof shown);
		snprintf(r->name, sizeof r->name, "vectors.tsv:%u %s %s", lineno, f[0], shown);
		if (n == cap)
			tests = realloc(tests, (cap *= 2) * sizeof *tests);
		tests[n].name = r->name;
		tests[n].test_func = run_row;
		tests[n].initial_state = r;
		n++;
	}
	if (n < 200) {
		printf("Bail out! only %zu vectors found\n", n);
		return 1;
	}
	return tu_run("vectors", tests, n);
}
