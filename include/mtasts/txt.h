/* txt.h: the `_mta-sts` TXT record (RFC 8461 section 3.1, ABNF A.1, rules 2-12).
 * @test tests/unit/test_txt.c, tests/unit/test_vectors.c */
#ifndef MTASTS_TXT_H
#define MTASTS_TXT_H

#include <mtasts/diag.h>
#include <mtasts/parse.h>

#define STS_ID_MAX 32             /* sts-id = 1*32(ALPHA / DIGIT) */
#define STS_TXT_RECORD_MAX 65535  /* a TXT RDATA can never be longer */

struct sts_txt_record {
	char id[STS_ID_MAX + 1];  /* "" when no valid id was found */
	size_t n_ext;             /* extension fields, first occurrence of each name */
	struct sts_ext *ext;
	void *mem_;               /* owned storage behind ext */
};

/* Parses one record value (the character-strings of one RR already joined).
 * Fills *out (which the caller releases with sts_txt_record_clear) even when
 * the record is invalid, as far as it could be read.
 * Returns STS_OK (usable record), STS_EINVAL (see d), STS_ENOMEM. */
int sts_txt_parse(const void *data, size_t len, unsigned flags,
		  struct sts_txt_record *out, struct sts_diags *d);

/* Discovery over a whole RRset (rules 7, 8, 10): each RR's strings are joined
 * without separators, RRs that are not STS candidates are discarded, exactly
 * one candidate must remain and it must parse.
 *
 * A candidate is an RR that begins with "v=STSv1" followed by optional WSP
 * and ";" (the ABNF reading of erratum 6285, documented in conformance.md).
 * Returns STS_OK with *out filled, STS_EINVAL (no policy; see d), STS_ENOMEM. */
int sts_txt_select(const struct sts_txt_rr *rrs, size_t n_rrs, unsigned flags,
		   struct sts_txt_record *out, struct sts_diags *d);

/* True when `s` is a valid sts-id (1-32 ALPHA/DIGIT). */
int sts_id_valid(const char *s, size_t len);

/* Releases what *rec owns and zeroes it. */
void sts_txt_record_clear(struct sts_txt_record *rec);

#endif
