/* fuzz_policy.c: sts_policy_parse, render, canonical form, host matching.
 *
 * Invariants checked for every input:
 * - both modes return OK/EINVAL consistently with their diagnostics, and
 *   strict-valid implies default-valid (strict only raises severities);
 * - a strict-valid policy reads the same in default mode (same meaning);
 * - every stored mx is a normalised pattern: lower case, no trailing dot,
 *   re-checks (strict) to itself, and matches a host of its own shape;
 * - a valid policy has version, mode, max_age (clamped), mx when needed;
 * - a valid policy rendered with sts_policy_render re-parses strict-valid,
 *   means the same, and renders to the same bytes again. */
#include "fuzz_common.h"

static void
check_mx(const char *mx)
{
	size_t n = strlen(mx);
	CHECK(n > 0 && n <= STS_HOST_MAX);
	CHECK(fz_is_lower_ascii_host(mx));
	CHECK(mx[n - 1] != '.');

	/* normalised patterns are fixed points of the check, even in strict mode */
	char again[STS_HOST_MAX + 1 + 16];
	struct sts_diags d;
	sts_diags_init(&d);
	struct sts_pos pos = { 0, 1, 1 };
	CHECK(sts_mx_pattern_check(mx, n, STS_PARSE_STRICT, again, &d, pos) == STS_OK);
	CHECK(strcmp(again, mx) == 0);

	char host[STS_HOST_MAX + 1];
	if (mx[0] == '*') {
		CHECK(n > 2 && mx[1] == '.');
		/* the wildcard covers one label on top of its remainder ... */
		if (n - 2 + 2 <= STS_HOST_MAX) {
			char h[STS_HOST_MAX + 1];
			h[0] = 'a';
			h[1] = '.';
			memcpy(h + 2, mx + 2, n - 2 + 1);
			CHECK(sts_host_normalize(h, strlen(h), host) == STS_OK);
			CHECK(sts_mx_match(mx, host));
		}
		/* ... but never the remainder itself */
		CHECK(!sts_mx_match(mx, mx + 2));
	} else {
		CHECK(sts_host_normalize(mx, n, host) == STS_OK);
		CHECK(strcmp(host, mx) == 0);
		CHECK(sts_mx_match(mx, host));
	}
}

static void
check_shape(const struct sts_policy *p, int rc)
{
	CHECK(p->max_age <= STS_MAX_AGE_MAX);
	if (p->has_max_age)
		CHECK(p->max_age == (p->max_age_raw > STS_MAX_AGE_MAX ? STS_MAX_AGE_MAX
								     : p->max_age_raw));
	for (size_t i = 0; i < p->n_mx; i++)
		check_mx(p->mx[i]);
	for (size_t i = 0; i < p->n_ext; i++) {
		CHECK(fz_ext_name_ok(p->ext[i].name));
		size_t vl = strlen(p->ext[i].value);
		CHECK(vl > 0);
		CHECK(p->ext[i].value[0] != ' ' && p->ext[i].value[0] != '\t');
		CHECK(p->ext[i].value[vl - 1] != ' ' && p->ext[i].value[vl - 1] != '\t');
		for (size_t j = 0; j < i; j++)   /* first occurrence of each name only */
			CHECK(strcmp(p->ext[i].name, p->ext[j].name) != 0);
	}
	if (rc != STS_OK)
		return;
	CHECK(p->has_version);
	CHECK(p->mode == STS_MODE_ENFORCE || p->mode == STS_MODE_TESTING ||
	      p->mode == STS_MODE_NONE);
	CHECK(p->has_max_age);
	if (p->mode != STS_MODE_NONE)
		CHECK(p->n_mx >= 1);
	for (size_t i = 0; i < p->n_mx; i++)
		CHECK(sts_policy_matches_host(p, p->mx[i]) || p->mx[i][0] == '*');
}

static void
check_render(const struct sts_policy *p)
{
	struct sts_buf r;
	sts_buf_init(&r, 4 * STS_POLICY_MAX);
	CHECK(sts_policy_render(p, &r) == STS_OK);

	struct sts_policy q;
	struct sts_diags d;
	sts_diags_init(&d);
	int rc = sts_policy_parse(r.data, r.len, STS_PARSE_STRICT, &q, &d);
	fz_check_diags(&d, rc, r.len, 1 + fz_count_byte((const uint8_t *)r.data, r.len, '\n'));
	if (r.len <= STS_POLICY_MAX) {   /* rendering adds bytes; past 64 KiB it may not parse */
		CHECK(rc == STS_OK);
		CHECK(sts_policy_same_meaning(p, &q));
		CHECK(q.n_mx == p->n_mx && q.n_ext == p->n_ext);
		/* rendering a rendered policy changes nothing */
		struct sts_buf r2;
		sts_buf_init(&r2, 4 * STS_POLICY_MAX);
		CHECK(sts_policy_render(&q, &r2) == STS_OK);
		CHECK(r2.len == r.len && memcmp(sts_buf_cstr(&r2), sts_buf_cstr(&r), r.len) == 0);
		sts_buf_free(&r2);
	}
	sts_policy_clear(&q);
	sts_buf_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max_line = 1 + fz_count_byte(data, size, '\n');
	struct sts_policy p, ps;
	struct sts_diags d, ds;

	sts_diags_init(&d);
	int rc = sts_policy_parse(data, size, 0, &p, &d);
	fz_check_diags(&d, rc, size, max_line);
	check_shape(&p, rc);

	sts_diags_init(&ds);
	int rcs = sts_policy_parse(data, size, STS_PARSE_STRICT, &ps, &ds);
	fz_check_diags(&ds, rcs, size, max_line);
	check_shape(&ps, rcs);
	fz_check_strict_vs_default(&d, rc, &ds, rcs);
	/* a policy that passes strict mode reads the same in both modes (an
	 * invalid one may differ: strict drops an mx with a trailing dot) */
	if (rcs == STS_OK)
		CHECK(sts_policy_same_meaning(&p, &ps));

	struct sts_buf canon;
	sts_buf_init(&canon, 4 * STS_POLICY_MAX);
	CHECK(sts_policy_canonical(&p, &canon) == STS_OK);
	sts_buf_free(&canon);

	if (rc == STS_OK)
		check_render(&p);

	sts_policy_clear(&p);
	sts_policy_clear(&ps);
	return 0;
}
