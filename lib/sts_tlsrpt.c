/* sts_tlsrpt.c: the _smtp._tls TLSRPT record (RFC 8460 section 3; rules T1-T14). */
#include <string.h>
#include <strings.h>

#include <mtasts/buf.h>
#include <mtasts/status.h>
#include <mtasts/tlsrpt.h>
#include <mtasts/txt.h>

#include "sts_arena.h"
#include "sts_tagrec.h"

static const struct tagrec_spec tlsrpt_spec = {
	.version = "v=TLSRPTv1",
	.rule_ascii = "T3",
	.rule_version = "T2",
	.rule_syntax = "T3",
	.code_empty = "tlsrpt.empty",
	.code_not_ascii = "tlsrpt.not_ascii",
	.code_version_missing = "tlsrpt.version.missing",
	.code_version_case = "tlsrpt.version.case",
	.code_version_unsupported = "tlsrpt.version.unsupported",
	.code_version_not_first = "tlsrpt.version.not_first",
	.code_delim_missing = "tlsrpt.delimiter.missing",
	.code_empty_field = "tlsrpt.field.empty",
	.code_trailing_space = "tlsrpt.trailing_space",
	.code_space_before_delim = "tlsrpt.version.space_before_delimiter",
	.code_no_equals = "tlsrpt.field.no_equals",
	.code_name_invalid = "tlsrpt.field.name_invalid",
	.what = "a TLSRPT",
};

struct tlsrpt_ctx {
	struct sts_tlsrpt_record *rec;
	struct sts_arena arena;
	size_t rua_cap;
	size_t ext_cap;
	bool rua_seen;
};

static inline bool is_wsp(char c) { return c == ' ' || c == '\t'; }
static inline bool is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline bool is_hex(unsigned char c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* RFC 3986 characters that may stand unencoded in a tlsrpt-uri: unreserved,
 * gen-delims and sub-delims, less ",", "!" and ";" (rule T5). */
static bool
uri_char_ok(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	return c != '\0' && strchr("-._~:/?#[]@$&'()*+=", c) != NULL;
}

/* Checks one URI of the rua list; adds a diagnostic and returns false when bad. */
static bool
check_uri(const char *u, size_t n, size_t off, struct sts_diags *d)
{
	char got[96];
	sts_escape(u, n, got, sizeof got);
	size_t i = 0;
	if (n == 0 || !is_alpha((unsigned char)u[0])) {
		sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.not_uri", "T3", off, 1, (unsigned)off + 1,
			      "rua entry '%s' is not a URI: use mailto:reports@example.com or"
			      " https://reports.example.com/path", got);
		return false;
	}
	while (i < n && (is_alpha((unsigned char)u[i]) || is_digit((unsigned char)u[i]) ||
			 u[i] == '+' || u[i] == '-' || u[i] == '.'))
		i++;
	if (i == n || u[i] != ':') {
		sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.not_uri", "T3", off, 1, (unsigned)off + 1,
			      "rua entry '%s' is not a URI (no scheme): write mailto:%s or https://...",
			      got, got);
		return false;
	}
	size_t scheme_len = i;
	for (size_t j = i + 1; j < n; j++) {
		unsigned char c = (unsigned char)u[j];
		if (c == '%') {
			if (j + 2 >= n + 0 || !is_hex((unsigned char)u[j + 1]) ||
			    !is_hex((unsigned char)u[j + 2])) {
				sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.bad_percent", "T3", off + j, 1,
					      (unsigned)(off + j) + 1,
					      "rua entry '%s': '%%' must be followed by two hex digits", got);
				return false;
			}
			j += 2;
			continue;
		}
		if (!uri_char_ok(c)) {
			if (c == '!' || c == ',' || c == ';')
				sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.unencoded", "T5", off + j, 1,
					      (unsigned)(off + j) + 1,
					      "rua entry '%s': '%c' must be percent-encoded (%%%02X); a DMARC-style"
					      " size suffix like '!10m' is not TLSRPT syntax", got, c, c);
			else
				sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.bad_char", "T3", off + j, 1,
					      (unsigned)(off + j) + 1,
					      "rua entry '%s': character 0x%02x is not allowed in a URI"
					      " (separate URIs with ',')", got, c);
			return false;
		}
	}
	if (scheme_len == 6 && strncasecmp(u, "mailto", 6) == 0) {
		const char *at = memchr(u + 7, '@', n - 7);
		if (at == NULL || at == u + 7 || at == u + n - 1) {
			sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.mailto_invalid", "T3", off, 1,
				      (unsigned)off + 1,
				      "rua entry '%s' is not a mail address: write mailto:user@domain", got);
			return false;
		}
		return true;
	}
	if (scheme_len == 5 && strncasecmp(u, "https", 5) == 0) {
		if (n < 9 || memcmp(u + 6, "//", 2) != 0 || u[8] == '/' ) {
			sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.https_invalid", "T3", off, 1,
				      (unsigned)off + 1,
				      "rua entry '%s' has no host: write https://host/path", got);
			return false;
		}
		return true;
	}
	sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.scheme", "T3", off, 1, (unsigned)off + 1,
		      "rua entry '%s': only mailto: and https: URIs are supported%s", got,
		      scheme_len == 4 && strncasecmp(u, "http", 4) == 0 ? "; use https://" : "");
	return false;
}

static int
tlsrpt_field(void *vctx, const struct tagrec_field *f, struct sts_diags *d)
{
	struct tlsrpt_ctx *c = vctx;
	struct sts_tlsrpt_record *rec = c->rec;
	char got[64];

	if (f->name_len == 3 && memcmp(f->name, "rua", 3) == 0) {
		if (c->rua_seen)
			sts_diags_add(d, STS_SEV_WARNING, "tlsrpt.rua.duplicate", "T13", f->name_off, 1,
				      (unsigned)f->name_off + 1,
				      "a second 'rua' field: RFC 8460 does not say how to treat it;"
				      " put all URIs in one rua, separated by ','");
		c->rua_seen = true;
		size_t i = 0;
		for (;;) {
			while (i < f->value_len && is_wsp(f->value[i]))
				i++;
			size_t start = i;
			while (i < f->value_len && f->value[i] != ',')
				i++;
			size_t end = i;
			while (end > start && is_wsp(f->value[end - 1]))
				end--;
			if (end == start) {
				sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.empty", "T4", f->value_off + start,
					      1, (unsigned)(f->value_off + start) + 1,
					      "empty entry in the rua list: give at least one"
					      " mailto: or https: URI");
			} else if (check_uri(f->value + start, end - start, f->value_off + start, d)) {
				if (rec->n_rua >= c->rua_cap)
					return STS_ENOMEM;
				rec->rua[rec->n_rua] = sts_arena_strndup(&c->arena, f->value + start,
									   end - start);
				if (rec->rua[rec->n_rua] == NULL)
					return STS_ENOMEM;
				rec->n_rua++;
			}
			if (i >= f->value_len)
				break;
			i++;  /* ',' */
		}
		return STS_OK;
	}

	size_t bad = sts_tagrec_ext_value_bad(f->value, f->value_len);
	if (bad < f->value_len || f->value_len == 0) {
		sts_escape(f->name, f->name_len, got, sizeof got);
		sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.ext.value_invalid", "T12", f->value_off + bad, 1,
			      (unsigned)(f->value_off + bad) + 1,
			      "field '%s' has an invalid value (empty, or with spaces, '=' or ';')", got);
		return STS_OK;
	}
	for (size_t i = 0; i < rec->n_ext; i++)
		if (strlen(rec->ext[i].name) == f->name_len &&
		    memcmp(rec->ext[i].name, f->name, f->name_len) == 0)
			return STS_OK;
	if (rec->n_ext >= c->ext_cap)
		return STS_ENOMEM;
	struct sts_ext *e = &rec->ext[rec->n_ext];
	e->name = sts_arena_strndup(&c->arena, f->name, f->name_len);
	e->value = sts_arena_strndup(&c->arena, f->value, f->value_len);
	if (e->name == NULL || e->value == NULL)
		return STS_ENOMEM;
	rec->n_ext++;
	return STS_OK;
}

int
sts_tlsrpt_parse(const void *data, size_t len, unsigned flags,
		 struct sts_tlsrpt_record *out, struct sts_diags *d)
{
	memset(out, 0, sizeof *out);
	if (len > STS_TXT_RECORD_MAX) {
		sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.too_long", "T3", 0, 1, 1,
			      "record is %zu bytes; a TXT record holds at most %d", len,
			      STS_TXT_RECORD_MAX);
		return STS_EINVAL;
	}
	const unsigned char *s = data;
	size_t fields = 1, commas = 1;
	for (size_t i = 0; i < len; i++) {
		fields += s[i] == ';';
		commas += s[i] == ',';
	}
	size_t rua_cap = commas + fields;
	struct tlsrpt_ctx c = { .rec = out, .rua_cap = rua_cap, .ext_cap = fields };
	if (sts_arena_init(&c.arena, STS_ARENA_ARRAY(fields, sizeof(struct sts_ext)) +
			   STS_ARENA_ARRAY(rua_cap, sizeof(char *)) + len + 2 * (fields + rua_cap) + 16) != 0)
		return STS_ENOMEM;
	out->mem_ = c.arena.base;
	out->ext = sts_arena_alloc(&c.arena, fields * sizeof(struct sts_ext));
	out->rua = sts_arena_alloc(&c.arena, rua_cap * sizeof(char *));

	size_t errors_before = d->n_errors;
	bool version_ok;
	int rc = sts_tagrec_parse(s, len, flags, &tlsrpt_spec, tlsrpt_field, &c, d, &version_ok);
	if (rc != STS_OK)
		return rc;
	if (version_ok && !c.rua_seen)
		sts_diags_add(d, STS_SEV_ERROR, "tlsrpt.rua.missing", "T4", len, 1, (unsigned)len + 1,
			      "no 'rua' field: add '; rua=mailto:tlsrpt@example.com' so reports"
			      " reach you");
	return d->n_errors == errors_before ? STS_OK : STS_EINVAL;
}

int
sts_tlsrpt_select(const struct sts_txt_rr *rrs, size_t n_rrs, unsigned flags,
		  struct sts_tlsrpt_record *out, struct sts_diags *d)
{
	memset(out, 0, sizeof *out);
	struct sts_buf joined;
	sts_buf_init(&joined, STS_TXT_RECORD_MAX);
	int rc;
	long pick = sts_rrset_pick(rrs, n_rrs, "v=TLSRPTv1", "tlsrpt.rrset.none",
				   "tlsrpt.rrset.multiple", "T9",
				   "the domain publishes no TLSRPT record", &joined, d, &rc);
	if (pick >= 0)
		rc = sts_tlsrpt_parse(joined.data, joined.len, flags, out, d);
	else if (rc == STS_OK)
		rc = STS_EINVAL;
	sts_buf_free(&joined);
	return rc;
}

void
sts_tlsrpt_record_clear(struct sts_tlsrpt_record *rec)
{
	free(rec->mem_);
	memset(rec, 0, sizeof *rec);
}
