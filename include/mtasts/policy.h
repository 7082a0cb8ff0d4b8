/* policy.h: the policy file served at /.well-known/mta-sts.txt
 * (RFC 8461 section 3.2, ABNF A.2, rules 13-23, table B.1).
 * @test tests/unit/test_policy.c, tests/unit/test_vectors.c, tests/unit/test_corpus.c */
#ifndef MTASTS_POLICY_H
#define MTASTS_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include <mtasts/buf.h>
#include <mtasts/diag.h>
#include <mtasts/parse.h>

#define STS_POLICY_MAX 65536           /* body ceiling: the RFC's "64 KB" (rule 35) */
#define STS_MAX_AGE_MAX 31557600u      /* rule 15: one year */
#define STS_MAX_AGE_DIGITS 10          /* sts-policy-max-age-value = 1*10(DIGIT) */

enum sts_mode {
	STS_MODE_UNSET = 0,
	STS_MODE_ENFORCE,
	STS_MODE_TESTING,
	STS_MODE_NONE,
};

struct sts_policy {
	bool has_version;       /* a valid "version: STSv1" was the first version field */
	enum sts_mode mode;     /* STS_MODE_UNSET when missing or invalid */
	bool has_max_age;
	uint32_t max_age;       /* clamped to STS_MAX_AGE_MAX */
	uint64_t max_age_raw;   /* as written (at most 10 digits) */
	size_t n_mx;            /* patterns in policy order, lower-cased, as A-labels */
	const char **mx;
	size_t n_ext;           /* unknown fields, first occurrence of each name */
	struct sts_ext *ext;
	void *mem_;             /* owned storage behind mx and ext */
};

/* Parses a policy body. Fills *out as far as the body could be read, also
 * when it is invalid; release it with sts_policy_clear().
 * Returns STS_OK (a sender may use the policy), STS_EINVAL, STS_ENOMEM. */
int sts_policy_parse(const void *data, size_t len, unsigned flags,
		     struct sts_policy *out, struct sts_diags *d);

void sts_policy_clear(struct sts_policy *p);

/* Canonical form for comparing meaning (publish, check): fields in a fixed
 * order, mx patterns sorted and de-duplicated, extensions sorted by name.
 * Whitespace, line endings and line order do not show. Appends to out. */
int sts_policy_canonical(const struct sts_policy *p, struct sts_buf *out);

/* True when both policies mean the same thing (equal canonical forms). */
bool sts_policy_same_meaning(const struct sts_policy *a, const struct sts_policy *b);

/* Renders a policy as a file body (CRLF line ends, RFC field order:
 * version, mode, mx..., max_age, extensions). Appends to out. */
int sts_policy_render(const struct sts_policy *p, struct sts_buf *out);

const char *sts_mode_name(enum sts_mode m);   /* "enforce", ..., "unset" */
/* Parses "enforce"/"testing"/"none"; STS_MODE_UNSET when it is none of them. */
enum sts_mode sts_mode_from_name(const char *s);

/* True when host (any form; see sts_host_normalize) matches one of the
 * policy's mx patterns (rule 45). */
bool sts_policy_matches_host(const struct sts_policy *p, const char *host);

#endif
