/* sts_check_internal.h (internal): what the gathering half of `check` hands
 * to the judging half. Judging is pure (no I/O), so unit tests feed it
 * made-up evidence. */
#ifndef STS_CHECK_INTERNAL_H
#define STS_CHECK_INTERNAL_H

#include <mtasts/check.h>

#include "sts_check_state.h"

struct check_input {
	enum sts_dns_rcode txt_rcode;     /* _mta-sts.<domain> TXT */
	char txt_detail[256];
	bool apex_sts;                    /* v=STSv1 record at <domain> */
	bool host_sts;                    /* v=STSv1 record at mta-sts.<domain> */
	enum sts_dns_rcode host_rcode;    /* A/AAAA of mta-sts.<domain> */
	char host_detail[256];
	enum sts_dns_rcode mx_rcode;
	char mx_detail[256];
	bool smtp_probed;                 /* false with --no-smtp */
	enum sts_dns_rcode tlsrpt_rcode;
	size_t n_tlsrpt;                  /* TLSRPT RRs, strings joined */
	char **tlsrpt_rrs;
	bool have_prev;                   /* id discipline: state of the last check */
	struct sts_check_state prev;
	bool use_state;
	int64_t now;
};

/* Judges the evidence in r (raw data) and in: appends findings to r and
 * fills r->id and r->policy's verdicts. When the id discipline has a new
 * state to remember, fills *next and returns true. */
bool sts_check_judge(struct sts_check_report *r, const struct check_input *in,
		     struct sts_check_state *next);

/* Frees everything the report owns. */
void sts_check_report_clear(struct sts_check_report *r);

#endif
