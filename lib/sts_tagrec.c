/* sts_tagrec.c: the shared tag=value record grammar (see sts_tagrec.h). */
#include <string.h>
#include <strings.h>

#include <mtasts/buf.h>
#include <mtasts/status.h>

#include "sts_tagrec.h"

static inline bool is_wsp(unsigned char c) { return c == ' ' || c == '\t'; }
static inline bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool
sts_tagrec_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > 32 || !is_alnum((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!is_alnum(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

size_t
sts_tagrec_ext_value_bad(const char *v, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c < 0x21 || c > 0x7e || c == '=' || c == ';')
			return i;
	}
	return len;
}

bool
sts_tagrec_is_candidate(const unsigned char *s, size_t len, const char *version)
{
	size_t vl = strlen(version);
	if (len < vl || memcmp(s, version, vl) != 0)
		return false;
	size_t i = vl;
	while (i < len && is_wsp(s[i]))
		i++;
	return i < len && s[i] == ';';
}

int
sts_tagrec_join(const struct sts_txt_rr *rr, struct sts_buf *b)
{
	sts_buf_reset(b);
	for (size_t i = 0; i < rr->n_strings; i++) {
		int rc = sts_buf_append(b, rr->strings[i].ptr, rr->strings[i].len);
		if (rc != STS_OK)
			return rc;
	}
	return STS_OK;
}

/* Says why the record does not start with the version token. */
static void
diagnose_version(const unsigned char *s, size_t len, const struct tagrec_spec *sp,
		 struct sts_diags *d)
{
	size_t vl = strlen(sp->version);
	char got[48];
	size_t show = 0;
	while (show < len && show < 24 && s[show] != ';' && !is_wsp(s[show]))
		show++;
	sts_escape(s, show, got, sizeof got);

	if (len >= vl && strncasecmp((const char *)s, sp->version, vl) == 0 &&
	    (len == vl || is_wsp(s[vl]) || s[vl] == ';')) {
		sts_diags_add(d, STS_SEV_ERROR, sp->code_version_case, sp->rule_version, 0, 1, 1,
			      "version is written '%s'; it is case-sensitive: write exactly '%s'",
			      got, sp->version);
		return;
	}
	if (len >= 2 && s[0] == 'v' && s[1] == '=') {
		sts_diags_add(d, STS_SEV_ERROR, sp->code_version_unsupported, sp->rule_version, 0, 1, 1,
			      "'%s' is not a supported version: the record must begin with '%s'",
			      got, sp->version);
		return;
	}
	if (s[0] == ' ' || s[0] == '\t' || s[0] == '"') {
		sts_diags_add(d, STS_SEV_ERROR, sp->code_version_missing, sp->rule_version, 0, 1, 1,
			      "the record must begin with '%s' exactly: remove the leading %s",
			      sp->version, s[0] == '"' ? "double quote (quotes delimit strings in"
			      " zone files and are not part of the value)" : "white space");
		return;
	}
	/* The version somewhere later: fields in the wrong order. */
	for (size_t i = 1; i + vl <= len; i++) {
		if (memcmp(s + i, sp->version, vl) == 0) {
			sts_diags_add(d, STS_SEV_ERROR, sp->code_version_not_first, sp->rule_version,
				      0, 1, 1, "'%s' must be the first field of the record; move it to the front",
				      sp->version);
			return;
		}
	}
	sts_diags_add(d, STS_SEV_ERROR, sp->code_version_missing, sp->rule_version, 0, 1, 1,
		      "'%s' is not %s record: it must begin with '%s'", got, sp->what, sp->version);
}

int
sts_tagrec_parse(const unsigned char *s, size_t len, unsigned flags,
		 const struct tagrec_spec *sp, tagrec_field_fn fn, void *ctx,
		 struct sts_diags *d, bool *version_ok)
{
	*version_ok = false;
	if (len == 0) {
		sts_diags_add(d, STS_SEV_ERROR, sp->code_empty, sp->rule_syntax, 0, 1, 1,
			      "the record is empty: publish '%s; ...'", sp->version);
		return STS_OK;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if ((c < 0x20 && c != '\t') || c >= 0x7f) {
			sts_diags_add(d, STS_SEV_ERROR, sp->code_not_ascii, sp->rule_ascii, i, 1,
				      (unsigned)i + 1,
				      "byte 0x%02x at column %zu: the record must be printable US-ASCII;"
				      " remove it", c, i + 1);
			break;
		}
	}

	size_t vl = strlen(sp->version);
	if (len < vl || memcmp(s, sp->version, vl) != 0 ||
	    (len > vl && !is_wsp(s[vl]) && s[vl] != ';')) {
		diagnose_version(s, len, sp, d);
		return STS_OK;
	}
	*version_ok = true;
	if (len > vl && (s[vl] == ' ' || s[vl] == '\t'))
		/* Legal ABNF, but the prose discards records that do not begin
		 * with "v=STSv1;" (erratum 6285): some senders will. */
		sts_diags_add(d, STS_SEV_WARNING, sp->code_space_before_delim, sp->rule_syntax, vl, 1,
			      (unsigned)vl + 1,
			      "white space between '%s' and ';': some senders discard such"
			      " records (erratum 6285); write '%s;'", sp->version, sp->version);

	size_t pos = vl;
	for (;;) {
		size_t ws = pos;
		while (pos < len && is_wsp(s[pos]))
			pos++;
		if (pos == len) {
			if (pos > ws)
				sts_diags_add(d, sts_tolerance(flags), sp->code_trailing_space,
					      sp->rule_syntax, ws, 1, (unsigned)ws + 1,
					      "trailing white space without a closing ';': remove it "
					      "or end the record with ';'");
			break;
		}
		if (s[pos] != ';') {
			char got[40];
			sts_escape(s + pos, len - pos > 16 ? 16 : len - pos, got, sizeof got);
			sts_diags_add(d, STS_SEV_ERROR, sp->code_delim_missing, sp->rule_syntax, pos, 1,
				      (unsigned)pos + 1,
				      "expected ';' before '%s': separate fields with ';'", got);
		} else {
			pos++;
			while (pos < len && is_wsp(s[pos]))
				pos++;
			if (pos == len)
				break;
			if (s[pos] == ';') {
				sts_diags_add(d, sts_tolerance(flags), sp->code_empty_field,
					      sp->rule_syntax, pos, 1, (unsigned)pos + 1,
					      "empty field (';;'): remove the extra ';'");
				continue;
			}
		}

		size_t name_off = pos;
		while (pos < len && s[pos] != '=' && s[pos] != ';' && !is_wsp(s[pos]))
			pos++;
		if (pos == len || s[pos] != '=') {
			char got[48];
			sts_escape(s + name_off, pos - name_off, got, sizeof got);
			sts_diags_add(d, STS_SEV_ERROR, sp->code_no_equals, sp->rule_syntax, name_off, 1,
				      (unsigned)name_off + 1,
				      "field '%s' is not 'name=value' (no '=' directly after the name)", got);
			while (pos < len && s[pos] != ';')
				pos++;
			continue;
		}
		size_t name_len = pos - name_off;
		pos++;  /* '=' */
		size_t value_off = pos;
		while (pos < len && s[pos] != ';')
			pos++;
		size_t value_end = pos;
		while (value_end > value_off && is_wsp(s[value_end - 1]))
			value_end--;
		pos = value_end;

		if (!sts_tagrec_name_ok((const char *)s + name_off, name_len)) {
			char got[48];
			sts_escape(s + name_off, name_len, got, sizeof got);
			sts_diags_add(d, STS_SEV_ERROR, sp->code_name_invalid, sp->rule_syntax, name_off, 1,
				      (unsigned)name_off + 1,
				      "field name '%s' is invalid: 1-32 letters, digits, '_', '-', '.',"
				      " starting with a letter or digit", got);
			continue;
		}
		struct tagrec_field f = {
			.name = (const char *)s + name_off, .name_len = name_len,
			.value = (const char *)s + value_off, .value_len = value_end - value_off,
			.name_off = name_off, .value_off = value_off,
		};
		int rc = fn(ctx, &f, d);
		if (rc != STS_OK)
			return rc;
	}
	return STS_OK;
}
