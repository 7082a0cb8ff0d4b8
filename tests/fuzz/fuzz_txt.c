/* fuzz_txt.c: sts_txt_parse on one joined _mta-sts record value.
 *
 * Invariants: diagnostics well-formed in both modes; strict-valid implies
 * default-valid; a non-empty id is always 1-32 ALPHA/DIGIT and a valid record
 * has one; extension fields hold valid names and values, first occurrence
 * only; a valid record is an RRset candidate and, written back out in
 * canonical form, parses strict-valid to the same id and extensions. */
#include "fuzz_common.h"

static void
check_record(const struct sts_txt_record *rec, int rc)
{
	size_t idl = strnlen(rec->id, sizeof rec->id);
	CHECK(idl <= STS_ID_MAX);
	if (idl > 0)
		CHECK(sts_id_valid(rec->id, idl));
	if (rc == STS_OK)
		CHECK(idl >= 1);
	for (size_t i = 0; i < rec->n_ext; i++) {
		CHECK(fz_ext_name_ok(rec->ext[i].name));
		const char *v = rec->ext[i].value;
		CHECK(v[0] != '\0');
		for (; *v != '\0'; v++)
			CHECK(*v >= 0x21 && *v <= 0x7e && *v != '=' && *v != ';');
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(rec->ext[i].name, rec->ext[j].name) != 0);
		CHECK(strcmp(rec->ext[i].name, "id") != 0);
	}
}

/* Writes the record back as "v=STSv1; id=...; name=value..." and re-parses. */
static void
check_roundtrip(const struct sts_txt_record *rec)
{
	struct sts_buf b;
	sts_buf_init(&b, 4 * STS_TXT_RECORD_MAX);
	CHECK(sts_buf_printf(&b, "v=STSv1; id=%s;", rec->id) == STS_OK);
	for (size_t i = 0; i < rec->n_ext; i++)
		CHECK(sts_buf_printf(&b, " %s=%s;", rec->ext[i].name, rec->ext[i].value) == STS_OK);

	struct sts_txt_record q;
	struct sts_diags d;
	sts_diags_init(&d);
	int rc = sts_txt_parse(b.data, b.len, STS_PARSE_STRICT, &q, &d);
	fz_check_diags(&d, rc, b.len, 1);
	if (b.len <= STS_TXT_RECORD_MAX) {
		CHECK(rc == STS_OK);
		CHECK(strcmp(q.id, rec->id) == 0);
		CHECK(q.n_ext == rec->n_ext);
		for (size_t i = 0; i < q.n_ext; i++) {
			CHECK(strcmp(q.ext[i].name, rec->ext[i].name) == 0);
			CHECK(strcmp(q.ext[i].value, rec->ext[i].value) == 0);
		}
	}
	sts_txt_record_clear(&q);
	sts_buf_free(&b);
}

/* Rule 8 candidate: "v=STSv1" *WSP ";" at the very start. */
static bool
is_candidate(const uint8_t *s, size_t n)
{
	if (n < 7 || memcmp(s, "v=STSv1", 7) != 0)
		return false;
	size_t i = 7;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i < n && s[i] == ';';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_txt_record rec, recs;
	struct sts_diags d, ds;

	sts_diags_init(&d);
	int rc = sts_txt_parse(data, size, 0, &rec, &d);
	fz_check_diags(&d, rc, size, 1);
	check_record(&rec, rc);

	sts_diags_init(&ds);
	int rcs = sts_txt_parse(data, size, STS_PARSE_STRICT, &recs, &ds);
	fz_check_diags(&ds, rcs, size, 1);
	check_record(&recs, rcs);
	fz_check_strict_vs_default(&d, rc, &ds, rcs);
	CHECK(strcmp(rec.id, recs.id) == 0 && rec.n_ext == recs.n_ext);

	if (rc == STS_OK) {
		/* a usable record is one that RRset selection would consider */
		CHECK(is_candidate(data, size));
		check_roundtrip(&rec);
	}
	sts_txt_record_clear(&rec);
	sts_txt_record_clear(&recs);
	return 0;
}
