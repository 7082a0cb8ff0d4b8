/* tlsrpt.h: the `_smtp._tls` TLSRPT record (RFC 8460 section 3, rules T1-T14).
 * @test tests/unit/test_tlsrpt.c, tests/unit/test_vectors.c */
#ifndef MTASTS_TLSRPT_H
#define MTASTS_TLSRPT_H

#include <mtasts/diag.h>
#include <mtasts/parse.h>

struct sts_tlsrpt_record {
	size_t n_rua;         /* report URIs, in record order, from every rua field */
	const char **rua;
	size_t n_ext;
	struct sts_ext *ext;
	void *mem_;
};

/* Parses one record value. Same ownership and return rules as sts_txt_parse. */
int sts_tlsrpt_parse(const void *data, size_t len, unsigned flags,
		     struct sts_tlsrpt_record *out, struct sts_diags *d);
/* RRset selection (rule T9), candidates begin "v=TLSRPTv1" *WSP ";". */
int sts_tlsrpt_select(const struct sts_txt_rr *rrs, size_t n_rrs, unsigned flags,
		      struct sts_tlsrpt_record *out, struct sts_diags *d);
void sts_tlsrpt_record_clear(struct sts_tlsrpt_record *rec);

#endif
