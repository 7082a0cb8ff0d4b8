/* sts_tagrec.h (internal): the "v=VERSION; name=value; ..." grammar shared
 * by the _mta-sts record (RFC 8461 A.1) and the TLSRPT record (RFC 8460 3).
 * The grammar walk lives here once; each record type validates its own
 * field values in a callback. */
#ifndef STS_TAGREC_H
#define STS_TAGREC_H

#include <stdbool.h>
#include <stddef.h>

#include <mtasts/diag.h>
#include <mtasts/parse.h>

/* Static diagnostic codes and rule numbers for one record type. */
struct tagrec_spec {
	const char *version;           /* "v=STSv1" */
	const char *rule_ascii;        /* rule: record must be printable US-ASCII */
	const char *rule_version;
	const char *rule_syntax;
	const char *code_empty;
	const char *code_not_ascii;
	const char *code_version_missing;
	const char *code_version_case;
	const char *code_version_unsupported;
	const char *code_version_not_first;
	const char *code_delim_missing;
	const char *code_empty_field;
	const char *code_trailing_space;
	const char *code_space_before_delim;
	const char *code_no_equals;
	const char *code_name_invalid;
	const char *what;              /* "an MTA-STS" / "a TLSRPT": for messages */
};

struct tagrec_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	size_t name_off;               /* offsets into the record */
	size_t value_off;
};

/* Called once per syntactically delimited field. Returns 0, or a negative
 * sts_status to abort the walk (allocation failure). */
typedef int (*tagrec_field_fn)(void *ctx, const struct tagrec_field *f,
			       struct sts_diags *d);

/* Walks the record, reporting grammar problems to d. *version_ok tells
 * whether the record began with the version token (fields were walked).
 * Returns STS_OK when the walk completed (check d for errors), or the
 * callback's failure. */
int sts_tagrec_parse(const unsigned char *s, size_t len, unsigned flags,
		     const struct tagrec_spec *spec, tagrec_field_fn fn,
		     void *ctx, struct sts_diags *d, bool *version_ok);

/* True when the record starts with the version token followed by *WSP ";"
 * (RRset candidate test, erratum 6285 ABNF reading). */
bool sts_tagrec_is_candidate(const unsigned char *s, size_t len, const char *version);

/* Severity for a tolerated deviation: error in strict mode, else warning. */
static inline enum sts_severity
sts_tolerance(unsigned flags)
{
	return (flags & STS_PARSE_STRICT) ? STS_SEV_ERROR : STS_SEV_WARNING;
}

/* Shared extension checks (sts-ext-name / tlsrpt-ext-name). */
bool sts_tagrec_name_ok(const char *name, size_t len);
/* Value of an extension field: 1*(%x21-3A / %x3C / %x3E-7E). Returns the
 * offset of the first bad byte, or len when the value is valid and non-empty. */
size_t sts_tagrec_ext_value_bad(const char *v, size_t len);

/* Joins the strings of one RR into b (no separators, rule 10). */
struct sts_buf;
int sts_tagrec_join(const struct sts_txt_rr *rr, struct sts_buf *b);

/* RRset selection shared by both record types: joins each RR's strings,
 * counts the candidates for `version`, and returns the index of the single
 * candidate (its joined text left in `joined`), or -1 after adding the
 * code_none / code_multiple diagnostic. *rc reports allocation failure. */
long sts_rrset_pick(const struct sts_txt_rr *rrs, size_t n_rrs, const char *version,
		    const char *code_none, const char *code_multiple, const char *rule,
		    const char *what, struct sts_buf *joined, struct sts_diags *d, int *rc);

#endif
