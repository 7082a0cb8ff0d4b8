/* fuzz_rrset.c: RRset selection (sts_txt_select, sts_tlsrpt_select).
 *
 * Framing of the input: byte 0x00 ends an RR, byte 0x01 ends a
 * character-string inside an RR; everything else is string content. So
 * "v=STSv1; id=\x01" "1\x00" "bogus" is two RRs, the first of two strings.
 *
 * Invariants: the selection agrees with an independent count of candidates
 * (exactly one RR whose joined strings begin "v=STSv1" *WSP ";"); when it
 * selects, the result is sts_txt_parse of that RR's joined text; every RR
 * that parses valid on its own is a candidate and, alone in a set, is
 * selected with the same id. The same for TLSRPT with "v=TLSRPTv1". */
#include "fuzz_common.h"

#define MAX_RRS 64
#define MAX_STRINGS 256

struct rrset {
	struct sts_txt_rr rrs[MAX_RRS];
	struct sts_bytes strings[MAX_STRINGS];
	size_t n_rrs;
	size_t total;   /* bytes of string content: a bound for diagnostic offsets */
};

static void
split(const uint8_t *data, size_t size, struct rrset *set)
{
	size_t n_str = 0, start = 0;
	set->n_rrs = 0;
	set->total = 0;
	if (size == 0)
		return;   /* no bytes: an empty RRset (NODATA) */
	set->rrs[0].strings = &set->strings[0];
	set->rrs[0].n_strings = 0;
	set->n_rrs = 1;
	for (size_t i = 0; i <= size; i++) {
		if (i < size && data[i] != 0x00 && data[i] != 0x01)
			continue;
		/* close the current string (possibly empty) */
		if (n_str < MAX_STRINGS) {
			set->strings[n_str].ptr = data + start;
			set->strings[n_str].len = i - start;
			set->total += i - start;
			n_str++;
			set->rrs[set->n_rrs - 1].n_strings++;
		}
		start = i + 1;
		if (i < size && data[i] == 0x00) {
			if (set->n_rrs == MAX_RRS)
				break;
			set->rrs[set->n_rrs].strings = &set->strings[n_str];
			set->rrs[set->n_rrs].n_strings = 0;
			set->n_rrs++;
		}
	}
}

/* Joins one RR; returns false when it is longer than a TXT RDATA can be. */
static bool
join(const struct sts_txt_rr *rr, struct sts_buf *b)
{
	sts_buf_reset(b);
	for (size_t i = 0; i < rr->n_strings; i++)
		if (sts_buf_append(b, rr->strings[i].ptr, rr->strings[i].len) != STS_OK)
			return false;
	return true;
}

static bool
is_candidate(const struct sts_buf *b, const char *version)
{
	size_t vl = strlen(version);
	if (b->len < vl || memcmp(b->data, version, vl) != 0)
		return false;
	size_t i = vl;
	while (i < b->len && (b->data[i] == ' ' || b->data[i] == '\t'))
		i++;
	return i < b->len && b->data[i] == ';';
}

static void
check_txt(const struct rrset *set, unsigned flags)
{
	struct sts_buf b;
	sts_buf_init(&b, STS_TXT_RECORD_MAX);
	size_t n_cand = 0, cand = 0;
	for (size_t i = 0; i < set->n_rrs; i++) {
		if (!join(&set->rrs[i], &b))
			continue;
		if (is_candidate(&b, "v=STSv1")) {
			if (n_cand++ == 0)
				cand = i;
		}
		/* a record that parses valid is a candidate and selected alone */
		struct sts_txt_record one;
		struct sts_diags d1;
		sts_diags_init(&d1);
		int rc1 = sts_txt_parse(b.data, b.len, flags, &one, &d1);
		fz_check_diags(&d1, rc1, b.len, 1);
		if (rc1 == STS_OK) {
			CHECK(is_candidate(&b, "v=STSv1"));
			struct sts_txt_record sel;
			struct sts_diags d2;
			sts_diags_init(&d2);
			int rc2 = sts_txt_select(&set->rrs[i], 1, flags, &sel, &d2);
			fz_check_diags(&d2, rc2, b.len, 1);
			CHECK(rc2 == STS_OK);
			CHECK(strcmp(sel.id, one.id) == 0);
			sts_txt_record_clear(&sel);
		}
		sts_txt_record_clear(&one);
	}

	struct sts_txt_record rec;
	struct sts_diags d;
	sts_diags_init(&d);
	int rc = sts_txt_select(set->rrs, set->n_rrs, flags, &rec, &d);
	fz_check_diags(&d, rc, set->total, 1);
	if (n_cand != 1) {
		CHECK(rc == STS_EINVAL);
		CHECK(sts_diags_has(&d, n_cand == 0 ? "txt.rrset.none" : "txt.rrset.multiple"));
		CHECK(rec.id[0] == '\0');
	} else {
		CHECK(join(&set->rrs[cand], &b));
		struct sts_txt_record ref;
		struct sts_diags dr;
		sts_diags_init(&dr);
		int rcr = sts_txt_parse(b.data, b.len, flags, &ref, &dr);
		CHECK(rc == rcr);
		CHECK(strcmp(rec.id, ref.id) == 0 && rec.n_ext == ref.n_ext);
		CHECK(d.n_errors == dr.n_errors && d.n_warnings == dr.n_warnings);
		sts_txt_record_clear(&ref);
	}
	sts_txt_record_clear(&rec);
	sts_buf_free(&b);
}

static void
check_tlsrpt(const struct rrset *set, unsigned flags)
{
	struct sts_buf b;
	sts_buf_init(&b, STS_TXT_RECORD_MAX);
	size_t n_cand = 0, cand = 0;
	for (size_t i = 0; i < set->n_rrs; i++) {
		if (join(&set->rrs[i], &b) && is_candidate(&b, "v=TLSRPTv1")) {
			if (n_cand++ == 0)
				cand = i;
		}
	}
	struct sts_tlsrpt_record rec;
	struct sts_diags d;
	sts_diags_init(&d);
	int rc = sts_tlsrpt_select(set->rrs, set->n_rrs, flags, &rec, &d);
	fz_check_diags(&d, rc, set->total, 1);
	if (n_cand != 1) {
		CHECK(rc == STS_EINVAL);
		CHECK(sts_diags_has(&d, n_cand == 0 ? "tlsrpt.rrset.none" : "tlsrpt.rrset.multiple"));
		CHECK(rec.n_rua == 0);
	} else {
		CHECK(join(&set->rrs[cand], &b));
		struct sts_tlsrpt_record ref;
		struct sts_diags dr;
		sts_diags_init(&dr);
		int rcr = sts_tlsrpt_parse(b.data, b.len, flags, &ref, &dr);
		CHECK(rc == rcr);
		CHECK(rec.n_rua == ref.n_rua && rec.n_ext == ref.n_ext);
		for (size_t i = 0; i < rec.n_rua; i++)
			CHECK(strcmp(rec.rua[i], ref.rua[i]) == 0);
		sts_tlsrpt_record_clear(&ref);
	}
	sts_tlsrpt_record_clear(&rec);
	sts_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rrset set;   /* static: keeps the large arrays off the stack */
	split(data, size, &set);
	check_txt(&set, 0);
	check_txt(&set, STS_PARSE_STRICT);
	check_tlsrpt(&set, 0);
	check_tlsrpt(&set, STS_PARSE_STRICT);
	return 0;
}
