/* fuzz_tlsrpt.c: sts_tlsrpt_parse on one _smtp._tls record value.
 *
 * Invariants: diagnostics well-formed in both modes; strict-valid implies
 * default-valid; every kept rua is a mailto: (with a local part and a domain)
 * or https:// URI without white space, ',', '!' or ';'; a valid record has at
 * least one rua; written back out it parses strict-valid to the same URIs and
 * extensions. */
#include <strings.h>

#include "fuzz_common.h"

static void
check_uri(const char *u)
{
	CHECK(strncasecmp(u, "mailto:", 7) == 0 || strncasecmp(u, "https:", 6) == 0);
	for (const char *p = u; *p != '\0'; p++)
		CHECK(*p > 0x20 && *p < 0x7f && *p != ',' && *p != '!' && *p != ';');
	if (strncasecmp(u, "mailto:", 7) == 0) {
		const char *at = strchr(u + 7, '@');
		CHECK(at != NULL && at > u + 7 && at[1] != '\0');
	} else {
		CHECK(strncmp(u + 6, "//", 2) == 0 && u[8] != '\0' && u[8] != '/');
	}
}

static void
check_record(const struct sts_tlsrpt_record *rec, int rc)
{
	for (size_t i = 0; i < rec->n_rua; i++)
		check_uri(rec->rua[i]);
	for (size_t i = 0; i < rec->n_ext; i++) {
		CHECK(fz_ext_name_ok(rec->ext[i].name));
		CHECK(strcmp(rec->ext[i].name, "rua") != 0);
		const char *v = rec->ext[i].value;
		CHECK(v[0] != '\0');
		for (; *v != '\0'; v++)
			CHECK(*v >= 0x21 && *v <= 0x7e && *v != '=' && *v != ';');
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(rec->ext[i].name, rec->ext[j].name) != 0);
	}
	if (rc == STS_OK)
		CHECK(rec->n_rua >= 1);
}

static void
check_roundtrip(const struct sts_tlsrpt_record *rec)
{
	struct sts_buf b;
	sts_buf_init(&b, 4 * STS_TXT_RECORD_MAX);
	CHECK(sts_buf_puts(&b, "v=TLSRPTv1; rua=") == STS_OK);
	for (size_t i = 0; i < rec->n_rua; i++)
		CHECK(sts_buf_printf(&b, "%s%s", i > 0 ? "," : "", rec->rua[i]) == STS_OK);
	for (size_t i = 0; i < rec->n_ext; i++)
		CHECK(sts_buf_printf(&b, "; %s=%s", rec->ext[i].name, rec->ext[i].value) == STS_OK);

	struct sts_tlsrpt_record q;
	struct sts_diags d;
	sts_diags_init(&d);
	int rc = sts_tlsrpt_parse(b.data, b.len, STS_PARSE_STRICT, &q, &d);
	fz_check_diags(&d, rc, b.len, 1);
	if (b.len <= STS_TXT_RECORD_MAX) {
		CHECK(rc == STS_OK);
		CHECK(q.n_rua == rec->n_rua && q.n_ext == rec->n_ext);
		for (size_t i = 0; i < q.n_rua; i++)
			CHECK(strcmp(q.rua[i], rec->rua[i]) == 0);
		for (size_t i = 0; i < q.n_ext; i++) {
			CHECK(strcmp(q.ext[i].name, rec->ext[i].name) == 0);
			CHECK(strcmp(q.ext[i].value, rec->ext[i].value) == 0);
		}
	}
	sts_tlsrpt_record_clear(&q);
	sts_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_tlsrpt_record rec, recs;
	struct sts_diags d, ds;

	sts_diags_init(&d);
	int rc = sts_tlsrpt_parse(data, size, 0, &rec, &d);
	fz_check_diags(&d, rc, size, 1);
	check_record(&rec, rc);

	sts_diags_init(&ds);
	int rcs = sts_tlsrpt_parse(data, size, STS_PARSE_STRICT, &recs, &ds);
	fz_check_diags(&ds, rcs, size, 1);
	check_record(&recs, rcs);
	fz_check_strict_vs_default(&d, rc, &ds, rcs);
	CHECK(rec.n_rua == recs.n_rua && rec.n_ext == recs.n_ext);

	if (rc == STS_OK)
		check_roundtrip(&rec);
	sts_tlsrpt_record_clear(&rec);
	sts_tlsrpt_record_clear(&recs);
	return 0;
}
