/* fuzz_mx.c: sts_mx_pattern_check, sts_host_normalize, sts_mx_match.
 *
 * Input: "<pattern> <host>", split at the first space (no space: the whole
 * input is both). Output buffers sit in front of a canary so that a write past
 * STS_HOST_MAX + 1 bytes is caught without AddressSanitizer too.
 *
 * Invariants: diagnostics well-formed; strict-valid implies default-valid; a
 * valid pattern is lower case, without trailing dot, at most STS_HOST_MAX
 * long and a fixed point of the check; a valid non-wildcard pattern
 * normalises (as a host) to itself and matches it; a wildcard pattern matches
 * one extra label, never its bare remainder nor two extra labels; a
 * normalised host is printable lower-case ASCII; matching is plain equality
 * for non-wildcard patterns. */
#include "fuzz_common.h"

#define CANARY 0xa5
#define CANARY_LEN 16

struct outbuf {
	char s[STS_HOST_MAX + 1];
	unsigned char canary[CANARY_LEN];
};

static void
arm(struct outbuf *o)
{
	memset(o->s, 'X', sizeof o->s);
	memset(o->canary, CANARY, sizeof o->canary);
}

static void
check_canary(const struct outbuf *o)
{
	for (size_t i = 0; i < CANARY_LEN; i++)
		CHECK(o->canary[i] == CANARY);   /* written past out[STS_HOST_MAX] */
	CHECK(memchr(o->s, '\0', sizeof o->s) != NULL);
}

static int
pattern_check(const char *p, size_t n, unsigned flags, struct outbuf *out, struct sts_diags *d)
{
	struct sts_pos pos = { 0, 1, 1 };
	arm(out);
	sts_diags_init(d);
	int rc = sts_mx_pattern_check(p, n, flags, out->s, d, pos);
	check_canary(out);
	fz_check_diags(d, rc, n, 1);
	if (rc != STS_OK)
		return rc;   /* out may hold the normalised form anyway (strict trailing dot) */
	size_t ol = strlen(out->s);
	CHECK(ol > 0 && ol <= STS_HOST_MAX);
	CHECK(fz_is_lower_ascii_host(out->s));
	CHECK(out->s[ol - 1] != '.');
	return rc;
}

static void
check_pattern(const char *p, size_t n)
{
	struct outbuf out, outs, again, host;
	struct sts_diags d, ds, da;
	int rc = pattern_check(p, n, 0, &out, &d);
	int rcs = pattern_check(p, n, STS_PARSE_STRICT, &outs, &ds);
	fz_check_strict_vs_default(&d, rc, &ds, rcs);
	if (rc != STS_OK)
		return;
	if (rcs == STS_OK)
		CHECK(strcmp(out.s, outs.s) == 0);

	size_t ol = strlen(out.s);
	CHECK(pattern_check(out.s, ol, STS_PARSE_STRICT, &again, &da) == STS_OK);
	CHECK(strcmp(again.s, out.s) == 0);

	if (out.s[0] != '*') {
		/* the pattern text itself, read as a host name, is the pattern */
		arm(&host);
		CHECK(sts_host_normalize(p, n, host.s) == STS_OK);
		check_canary(&host);
		CHECK(strcmp(host.s, out.s) == 0);
		CHECK(sts_mx_match(out.s, host.s));
		return;
	}
	CHECK(ol > 2 && out.s[1] == '.');
	CHECK(!sts_mx_match(out.s, out.s + 2));   /* "*.x" never matches "x" */
	char h[STS_HOST_MAX + 8];
	if (ol + 2 <= STS_HOST_MAX) {   /* "a." + remainder fits in a host name */
		memcpy(h, "a.", 2);
		memcpy(h + 2, out.s + 2, ol - 2 + 1);
		arm(&host);
		CHECK(sts_host_normalize(h, strlen(h), host.s) == STS_OK);
		check_canary(&host);
		CHECK(sts_mx_match(out.s, host.s));
		if (ol + 4 <= STS_HOST_MAX) {   /* one label only: "b.a.x" is not covered */
			memcpy(h, "b.a.", 4);
			memcpy(h + 4, out.s + 2, ol - 2 + 1);
			CHECK(!sts_mx_match(out.s, h));
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sp = memchr(data, ' ', size);
	size_t pl = sp != NULL ? (size_t)(sp - data) : size;
	const char *pat = (const char *)data;
	const char *hst = sp != NULL ? (const char *)sp + 1 : pat;
	size_t hl = sp != NULL ? size - pl - 1 : size;

	check_pattern(pat, pl);

	/* NUL-terminated copies for the string APIs */
	char *pz = malloc(pl + 1), *hz = malloc(hl + 1);
	CHECK(pz != NULL && hz != NULL);
	if (pl > 0)
		memcpy(pz, pat, pl);
	pz[pl] = '\0';
	if (hl > 0)
		memcpy(hz, hst, hl);
	hz[hl] = '\0';

	struct outbuf hn, pn;
	arm(&hn);
	int hrc = sts_host_normalize(hst, hl, hn.s);
	check_canary(&hn);
	CHECK(hrc == STS_OK || hrc == STS_EINVAL);
	if (hrc == STS_OK) {
		size_t n = strlen(hn.s);
		CHECK(n > 0 && n <= STS_HOST_MAX);
		CHECK(fz_is_lower_ascii_host(hn.s));
		if (hn.s[n - 1] != '.') {   /* normalising twice changes nothing */
			struct outbuf again;
			arm(&again);
			CHECK(sts_host_normalize(hn.s, n, again.s) == STS_OK);
			CHECK(strcmp(again.s, hn.s) == 0);
		}
	} else {
		CHECK(hn.s[0] == '\0');
	}

	struct sts_diags d;
	if (pattern_check(pat, pl, 0, &pn, &d) == STS_OK && hrc == STS_OK) {
		bool m = sts_mx_match(pn.s, hn.s);
		if (pn.s[0] != '*')
			CHECK(m == (strcmp(pn.s, hn.s) == 0));
		else if (m)
			CHECK(strchr(hn.s, '.') != NULL);
	}
	/* raw strings must not crash the matcher either */
	(void)sts_mx_match(pz, hz);
	(void)sts_mx_match(hz, pz);

	free(pz);
	free(hz);
	return 0;
}
