/* sts_txt.c: the _mta-sts TXT record and its RRset selection
 * (RFC 8461 section 3.1; rules 2-12, 23; ABNF A.1). */
#include <string.h>

#include <mtasts/buf.h>
#include <mtasts/status.h>
#include <mtasts/txt.h>

#include "sts_arena.h"
#include "sts_tagrec.h"

static const struct tagrec_spec txt_spec = {
	.version = "v=STSv1",
	.rule_ascii = "3",
	.rule_version = "6",
	.rule_syntax = "12",
	.code_empty = "txt.empty",
	.code_not_ascii = "txt.not_ascii",
	.code_version_missing = "txt.version.missing",
	.code_version_case = "txt.version.case",
	.code_version_unsupported = "txt.version.unsupported",
	.code_version_not_first = "txt.version.not_first",
	.code_delim_missing = "txt.delimiter.missing",
	.code_empty_field = "txt.field.empty",
	.code_trailing_space = "txt.trailing_space",
	.code_space_before_delim = "txt.version.space_before_delimiter",
	.code_no_equals = "txt.field.no_equals",
	.code_name_invalid = "txt.field.name_invalid",
	.what = "an MTA-STS",
};

int
sts_id_valid(const char *s, size_t len)
{
	if (len == 0 || len > STS_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

struct txt_ctx {
	struct sts_txt_record *rec;
	struct sts_arena arena;
	size_t ext_cap;
	bool id_seen;
};

static bool
ext_seen(const struct sts_txt_record *rec, const char *name, size_t len)
{
	for (size_t i = 0; i < rec->n_ext; i++)
		if (strlen(rec->ext[i].name) == len && memcmp(rec->ext[i].name, name, len) == 0)
			return true;
	return false;
}

static int
txt_field(void *vctx, const struct tagrec_field *f, struct sts_diags *d)
{
	struct txt_ctx *c = vctx;
	char got[64];
	unsigned col = (unsigned)f->value_off + 1;

	if (f->name_len == 2 && memcmp(f->name, "id", 2) == 0) {
		if (c->id_seen) {
			sts_diags_add(d, STS_SEV_WARNING, "txt.id.duplicate", "23", f->name_off, 1,
				      (unsigned)f->name_off + 1,
				      "a second 'id' field is ignored (the first one counts); remove it");
			return STS_OK;
		}
		c->id_seen = true;
		if (f->value_len == 0) {
			sts_diags_add(d, STS_SEV_ERROR, "txt.id.empty", "12", f->value_off, 1, col,
				      "'id=' has no value: give 1-32 letters or digits, e.g. a timestamp"
				      " like 20261129120000");
		} else if (!sts_id_valid(f->value, f->value_len)) {
			sts_escape(f->value, f->value_len, got, sizeof got);
			if (f->value_len > STS_ID_MAX && sts_id_valid(f->value, STS_ID_MAX))
				sts_diags_add(d, STS_SEV_ERROR, "txt.id.too_long", "12", f->value_off, 1, col,
					      "id '%s' has %zu characters; at most 32 letters or digits"
					      " are allowed", got, f->value_len);
			else
				sts_diags_add(d, STS_SEV_ERROR, "txt.id.invalid", "12", f->value_off, 1, col,
					      "id '%s' may contain only letters and digits (no '-', '_',"
					      " '.', spaces); use e.g. 20261129120000", got);
		} else {
			memcpy(c->rec->id, f->value, f->value_len);
			c->rec->id[f->value_len] = '\0';
		}
		return STS_OK;
	}

	size_t bad = sts_tagrec_ext_value_bad(f->value, f->value_len);
	if (bad < f->value_len || f->value_len == 0) {
		sts_escape(f->name, f->name_len, got, sizeof got);
		if (f->value_len == 0)
			sts_diags_add(d, STS_SEV_ERROR, "txt.ext.value_invalid", "12", f->value_off, 1, col,
				      "field '%s' has an empty value; give a value or remove the field", got);
		else
			sts_diags_add(d, STS_SEV_ERROR, "txt.ext.value_invalid", "12",
				      f->value_off + bad, 1, (unsigned)(f->value_off + bad) + 1,
				      "field '%s': byte '%c' is not allowed in a value (no spaces, '=' or"
				      " ';'); separate fields with ';'", got,
				      f->value[bad] >= 0x20 && f->value[bad] < 0x7f ? f->value[bad] : '?');
		return STS_OK;
	}
	if (ext_seen(c->rec, f->name, f->name_len))
		return STS_OK;   /* rule 23: first occurrence wins */
	if (c->rec->n_ext >= c->ext_cap)
		return STS_ENOMEM;
	struct sts_ext *e = &c->rec->ext[c->rec->n_ext];
	e->name = sts_arena_strndup(&c->arena, f->name, f->name_len);
	e->value = sts_arena_strndup(&c->arena, f->value, f->value_len);
	if (e->name == NULL || e->value == NULL)
		return STS_ENOMEM;
	c->rec->n_ext++;
	sts_escape(f->name, f->name_len, got, sizeof got);
	sts_diags_add(d, STS_SEV_WARNING, "txt.ext.unknown", "22", f->name_off, 1,
		      (unsigned)f->name_off + 1, "unknown field '%s' is ignored by senders", got);
	return STS_OK;
}

int
sts_txt_parse(const void *data, size_t len, unsigned flags,
	      struct sts_txt_record *out, struct sts_diags *d)
{
	memset(out, 0, sizeof *out);
	if (len > STS_TXT_RECORD_MAX) {
		sts_diags_add(d, STS_SEV_ERROR, "txt.too_long", "12", 0, 1, 1,
			      "record is %zu bytes; a TXT record holds at most %d", len,
			      STS_TXT_RECORD_MAX);
		return STS_EINVAL;
	}
	const unsigned char *s = data;
	size_t fields = 1;
	for (size_t i = 0; i < len; i++)
		fields += s[i] == ';';

	struct txt_ctx c = { .rec = out, .ext_cap = fields };
	if (sts_arena_init(&c.arena, STS_ARENA_ARRAY(fields, sizeof(struct sts_ext)) +
			   len + 2 * fields + 16) != 0)
		return STS_ENOMEM;
	out->mem_ = c.arena.base;
	out->ext = sts_arena_alloc(&c.arena, fields * sizeof(struct sts_ext));

	size_t errors_before = d->n_errors;
	bool version_ok;
	int rc = sts_tagrec_parse(s, len, flags, &txt_spec, txt_field, &c, d, &version_ok);
	if (rc != STS_OK)
		return rc;
	if (version_ok && !c.id_seen)
		sts_diags_add(d, STS_SEV_ERROR, "txt.id.missing", "5", len, 1, (unsigned)len + 1,
			      "no 'id' field: add '; id=<1-32 letters/digits>', e.g. id=20261129120000");
	return d->n_errors == errors_before ? STS_OK : STS_EINVAL;
}

long
sts_rrset_pick(const struct sts_txt_rr *rrs, size_t n_rrs, const char *version,
	       const char *code_none, const char *code_multiple, const char *rule,
	       const char *what, struct sts_buf *joined, struct sts_diags *d, int *rc)
{
	long pick = -1;
	size_t n_cand = 0;
	*rc = STS_OK;
	for (size_t i = 0; i < n_rrs; i++) {
		int r = sts_tagrec_join(&rrs[i], joined);
		if (r == STS_ETOOBIG)
			continue;   /* longer than any TXT RDATA: not a record we accept */
		if (r != STS_OK) {
			*rc = r;
			return -1;
		}
		if (sts_tagrec_is_candidate((const unsigned char *)joined->data, joined->len, version)) {
			if (n_cand++ == 0)
				pick = (long)i;
		}
	}
	if (n_cand == 0) {
		sts_diags_add(d, STS_SEV_ERROR, code_none, rule, 0, 1, 1,
			      n_rrs == 0 ? "no TXT record: %s"
					 : "no TXT record begins with '%s;': %s",
			      n_rrs == 0 ? what : version, what);
		return -1;
	}
	if (n_cand > 1) {
		sts_diags_add(d, STS_SEV_ERROR, code_multiple, rule, 0, 1, 1,
			      "%zu TXT records begin with '%s;'; exactly one is allowed, so senders"
			      " see no policy: delete all but one", n_cand, version);
		return -1;
	}
	*rc = sts_tagrec_join(&rrs[pick], joined);
	return *rc == STS_OK ? pick : -1;
}

int
sts_txt_select(const struct sts_txt_rr *rrs, size_t n_rrs, unsigned flags,
	       struct sts_txt_record *out, struct sts_diags *d)
{
	memset(out, 0, sizeof *out);
	struct sts_buf joined;
	sts_buf_init(&joined, STS_TXT_RECORD_MAX);
	int rc;
	long pick = sts_rrset_pick(rrs, n_rrs, "v=STSv1", "txt.rrset.none", "txt.rrset.multiple",
				   "8", "the domain publishes no MTA-STS policy", &joined, d, &rc);
	if (pick >= 0)
		rc = sts_txt_parse(joined.data, joined.len, flags, out, d);
	else if (rc == STS_OK)
		rc = STS_EINVAL;
	sts_buf_free(&joined);
	return rc;
}

void
sts_txt_record_clear(struct sts_txt_record *rec)
{
	free(rec->mem_);
	memset(rec, 0, sizeof *rec);
}
