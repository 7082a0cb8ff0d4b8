/* sts_policy.c: the policy file parser (RFC 8461 section 3.2; rules 13-23,
 * ABNF A.2, table B.1). Line by line, LF or CRLF; the first occurrence of a
 * non-mx field wins (rule 23); unknown fields are kept and ignored (rule 22). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mtasts/mx.h>
#include <mtasts/policy.h>
#include <mtasts/status.h>

#include "sts_arena.h"
#include "sts_tagrec.h"
#include "sts_utf8.h"

static inline bool is_wsp(unsigned char c) { return c == ' ' || c == '\t'; }

struct pctx {
	const unsigned char *s;
	unsigned flags;
	struct sts_policy *p;
	struct sts_diags *d;
	struct sts_arena arena;
	size_t cap_lines;
	size_t line_begin;   /* offset where the current line starts */
	unsigned line;
	bool seen_version, seen_mode, seen_max_age, seen_mx;
	struct sts_pos max_age_pos;
};

#define AT(off) (off), c->line, (unsigned)((off) - c->line_begin) + 1

static void
dup_field(struct pctx *c, const char *key, size_t off)
{
	sts_diags_add(c->d, STS_SEV_WARNING, "policy.field.duplicate", "23", AT(off),
		      "'%s' appears again: senders use the first one and ignore this line;"
		      " remove it", key);
}

static void
field_version(struct pctx *c, const unsigned char *v, size_t vl, size_t key_off, size_t v_off)
{
	if (c->seen_version) {
		dup_field(c, "version", key_off);
		return;
	}
	c->seen_version = true;
	if (vl == 5 && memcmp(v, "STSv1", 5) == 0) {
		c->p->has_version = true;
		return;
	}
	char got[64];
	sts_escape(v, vl, got, sizeof got);
	sts_diags_add(c->d, STS_SEV_ERROR, "policy.version.invalid", "15", AT(v_off),
		      "version is '%s': it must be exactly 'STSv1'", got);
}

static void
field_mode(struct pctx *c, const unsigned char *v, size_t vl, size_t key_off, size_t v_off)
{
	if (c->seen_mode) {
		dup_field(c, "mode", key_off);
		return;
	}
	c->seen_mode = true;
	char val[16];
	if (vl < sizeof val) {
		memcpy(val, v, vl);
		val[vl] = '\0';
		c->p->mode = sts_mode_from_name(val);
		if (c->p->mode != STS_MODE_UNSET)
			return;
	}
	char got[64];
	sts_escape(v, vl, got, sizeof got);
	const char *hint = "";
	if (vl < sizeof val && sts_mode_from_name(val) == STS_MODE_UNSET) {
		if (strcasecmp(val, "enforce") == 0 || strcasecmp(val, "testing") == 0 ||
		    strcasecmp(val, "none") == 0)
			hint = " (values are case-sensitive: write it in lower case)";
		else if (strcasecmp(val, "enforced") == 0 || strcasecmp(val, "enforcing") == 0)
			hint = " (did you mean 'enforce'?)";
		else if (strcasecmp(val, "test") == 0 || strcasecmp(val, "report") == 0)
			hint = " (did you mean 'testing'?)";
	}
	if (memchr(v, '#', vl) != NULL)
		hint = " (comments are not allowed after a value)";
	sts_diags_add(c->d, STS_SEV_ERROR, "policy.mode.invalid", "15", AT(v_off),
		      "mode '%s' must be one of enforce, testing, none%s", got, hint);
}

static void
field_max_age(struct pctx *c, const unsigned char *v, size_t vl, size_t key_off, size_t v_off)
{
	if (c->seen_max_age) {
		dup_field(c, "max_age", key_off);
		return;
	}
	c->seen_max_age = true;
	char got[64];
	sts_escape(v, vl, got, sizeof got);
	if (vl == 0) {
		sts_diags_add(c->d, STS_SEV_ERROR, "policy.max_age.empty", "20", AT(v_off),
			      "max_age has no value: give seconds, e.g. 'max_age: 604800' (one week)");
		return;
	}
	uint64_t n = 0;
	for (size_t i = 0; i < vl; i++) {
		if (v[i] < '0' || v[i] > '9') {
			const char *hint = v[i] == ',' || v[i] == '.' || v[i] == '_'
						   ? "; no separators or decimals"
					   : v[i] == '-' || v[i] == '+' ? "; no sign"
					   : v[i] == '#' || is_wsp(v[i]) ? "; nothing may follow the number"
									 : "";
			sts_diags_add(c->d, STS_SEV_ERROR, "policy.max_age.invalid", "20", AT(v_off + i),
				      "max_age '%s' must be a whole number of seconds, digits only%s",
				      got, hint);
			return;
		}
		if (i < STS_MAX_AGE_DIGITS)   /* 10 digits always fit in 64 bits */
			n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (vl > STS_MAX_AGE_DIGITS) {
		sts_diags_add(c->d, STS_SEV_ERROR, "policy.max_age.too_many_digits", "20", AT(v_off),
			      "max_age '%s' has %zu digits; at most 10 are allowed and the maximum"
			      " is 31557600 (one year)", got, vl);
		return;
	}
	c->p->has_max_age = true;
	c->p->max_age_raw = n;
	c->p->max_age = n > STS_MAX_AGE_MAX ? STS_MAX_AGE_MAX : (uint32_t)n;
	if (n > STS_MAX_AGE_MAX)
		sts_diags_add(c->d, sts_tolerance(c->flags), "policy.max_age.too_large", "15",
			      AT(v_off),
			      "max_age %llu is above the maximum 31557600 (one year); senders cap it"
			      " there: write 31557600 or less", (unsigned long long)n);
	c->max_age_pos = (struct sts_pos){ AT(v_off) };
}

static int
field_mx(struct pctx *c, const unsigned char *v, size_t vl, size_t v_off)
{
	c->seen_mx = true;
	char norm[STS_HOST_MAX + 1];
	struct sts_pos pos = { AT(v_off) };
	if (sts_mx_pattern_check((const char *)v, vl, c->flags, norm, c->d, pos) != STS_OK)
		return STS_OK;
	const char *copy = sts_arena_strndup(&c->arena, norm, strlen(norm));
	if (copy == NULL || c->p->n_mx >= c->cap_lines)
		return STS_ENOMEM;
	c->p->mx[c->p->n_mx++] = copy;
	return STS_OK;
}

static int
field_ext(struct pctx *c, const unsigned char *k, size_t kl, const unsigned char *v, size_t vl,
	  size_t key_off, size_t v_off)
{
	char key_buf[64];
#define key (sts_escape(k, kl, key_buf, sizeof key_buf))
	if (vl == 0) {
		sts_diags_add(c->d, STS_SEV_ERROR, "policy.ext.empty_value", "20", AT(v_off),
			      "field '%s' has no value: give one or remove the line", key);
		return STS_OK;
	}
	for (size_t i = 0; i < vl;) {
		if (v[i] == '\t') {
			sts_diags_add(c->d, STS_SEV_ERROR, "policy.ext.bad_char", "20", AT(v_off + i),
				      "field '%s': a TAB is not allowed inside a value; use a space", key);
			return STS_OK;
		}
		if (v[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = sts_utf8_seq(v + i, vl - i);
		if (n == 0) {
			sts_diags_add(c->d, STS_SEV_ERROR, "policy.ext.bad_utf8", "20", AT(v_off + i),
				      "field '%s': byte 0x%02x is not valid UTF-8; save the file as UTF-8",
				      key, v[i]);
			return STS_OK;
		}
		i += n;
	}

	static const char *const known[] = { "version", "mode", "max_age", "mx" };
	const char *near = NULL;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strlen(known[i]) == kl && strncasecmp((const char *)k, known[i], kl) == 0)
			near = known[i];
	if (kl == 7 && strncasecmp((const char *)k, "max-age", 7) == 0)
		near = "max_age";
	if (near != NULL)
		sts_diags_add(c->d, STS_SEV_WARNING, "policy.field.unknown", "22", AT(key_off),
			      "field '%s' is not '%s' (names are case-sensitive and use '_'):"
			      " senders ignore it; write '%s'", key, near, near);
	else
		sts_diags_add(c->d, STS_SEV_WARNING, "policy.field.unknown", "22", AT(key_off),
			      "unknown field '%s' is ignored by senders", key);

	for (size_t i = 0; i < c->p->n_ext; i++)
		if (strlen(c->p->ext[i].name) == kl && memcmp(c->p->ext[i].name, k, kl) == 0)
			return STS_OK;   /* rule 23: the first one is kept */
	if (c->p->n_ext >= c->cap_lines)
		return STS_ENOMEM;
	struct sts_ext *e = &c->p->ext[c->p->n_ext];
	e->name = sts_arena_strndup(&c->arena, k, kl);
	e->value = sts_arena_strndup(&c->arena, v, vl);
	if (e->name == NULL || e->value == NULL)
		return STS_ENOMEM;
	c->p->n_ext++;
	return STS_OK;
#undef key
}

static int
parse_line(struct pctx *c, size_t b, size_t e)
{
	const unsigned char *s = c->s;
	size_t i = b;
	while (i < e && is_wsp(s[i]))
		i++;
	if (i == e) {
		sts_diags_add(c->d, sts_tolerance(c->flags), "policy.blank_line", "20", AT(b),
			      "empty line: the policy syntax allows no blank lines; remove it");
		return STS_OK;
	}
	for (i = b; i < e; i++) {
		unsigned char ch = s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			if (ch == '\r')
				sts_diags_add(c->d, STS_SEV_ERROR, "policy.bare_cr", "20", AT(i),
					      "carriage return (CR) not followed by LF: end lines with"
					      " LF or CRLF");
			else if (ch == 0)
				sts_diags_add(c->d, STS_SEV_ERROR, "policy.nul", "20", AT(i),
					      "NUL byte: the file is binary or UTF-16; save it as plain"
					      " ASCII or UTF-8 text");
			else
				sts_diags_add(c->d, STS_SEV_ERROR, "policy.control_char", "20", AT(i),
					      "control character 0x%02x: remove it", ch);
			return STS_OK;
		}
	}
	if (s[b] == '#') {
		sts_diags_add(c->d, sts_tolerance(c->flags), "policy.comment", "20", AT(b),
			      "comment line: the policy syntax has no comments; remove it");
		return STS_OK;
	}
	const unsigned char *colon = memchr(s + b, ':', e - b);
	char got[64];
	if (colon == NULL) {
		sts_escape(s + b, e - b, got, sizeof got);
		if (e - b == 3 && memcmp(s + b, "---", 3) == 0)
			sts_diags_add(c->d, STS_SEV_ERROR, "policy.line.not_field", "20", AT(b),
				      "line '---' is not a field: Jekyll front matter? It is removed only"
				      " when the site is built by Jekyll; check the served file");
		else if (s[b] == '<')
			sts_diags_add(c->d, STS_SEV_ERROR, "policy.line.not_field", "20", AT(b),
				      "the body looks like HTML, not a policy: serve the plain-text"
				      " policy file at this URL");
		else
			sts_diags_add(c->d, STS_SEV_ERROR, "policy.line.not_field", "20", AT(b),
				      "line '%s' is not a 'name: value' field", got);
		return STS_OK;
	}
	size_t kl = (size_t)(colon - (s + b));
	if (kl == 0) {
		sts_diags_add(c->d, STS_SEV_ERROR, "policy.key.empty", "20", AT(b),
			      "line has no field name before ':'");
		return STS_OK;
	}
	if (is_wsp(s[b])) {
		size_t k = b;
		while (k < b + kl && is_wsp(s[k]))
			k++;
		sts_escape(s + k, b + kl - k, got, sizeof got);
		sts_diags_add(c->d, STS_SEV_ERROR, "policy.key.indented", "20", AT(b),
			      "field '%s' is indented, so senders do not see it: remove the leading"
			      " white space", got);
		return STS_OK;
	}
	sts_escape(s + b, kl, got, sizeof got);
	if (is_wsp(s[b + kl - 1])) {
		sts_diags_add(c->d, STS_SEV_ERROR, "policy.key.space_before_colon", "20",
			      AT(b + kl - 1), "remove the white space before ':' in '%s:'", got);
		return STS_OK;
	}
	if (!sts_tagrec_name_ok((const char *)s + b, kl)) {
		sts_diags_add(c->d, STS_SEV_ERROR, "policy.key.invalid", "20", AT(b),
			      "field name '%s' is invalid: 1-32 letters, digits, '_', '-', '.',"
			      " starting with a letter or digit", got);
		return STS_OK;
	}
	size_t vb = b + kl + 1;
	while (vb < e && is_wsp(s[vb]))
		vb++;
	size_t ve = e;
	while (ve > vb && is_wsp(s[ve - 1]))
		ve--;
	const unsigned char *k = s + b, *v = s + vb;
	size_t vl = ve - vb;

	if (kl == 7 && memcmp(k, "version", 7) == 0)
		field_version(c, v, vl, b, vb);
	else if (kl == 4 && memcmp(k, "mode", 4) == 0)
		field_mode(c, v, vl, b, vb);
	else if (kl == 7 && memcmp(k, "max_age", 7) == 0)
		field_max_age(c, v, vl, b, vb);
	else if (kl == 2 && memcmp(k, "mx", 2) == 0)
		return field_mx(c, v, vl, vb);
	else
		return field_ext(c, k, kl, v, vl, b, vb);
	return STS_OK;
}

int
sts_policy_parse(const void *data, size_t len, unsigned flags, struct sts_policy *out,
		 struct sts_diags *d)
{
	memset(out, 0, sizeof *out);
	const unsigned char *s = data;
	if (len > STS_POLICY_MAX) {
		sts_diags_add(d, STS_SEV_ERROR, "policy.too_large", "35", 0, 1, 1,
			      "the policy is larger than %d bytes, the most senders accept:"
			      " serve only the policy fields", STS_POLICY_MAX);
		return STS_EINVAL;
	}
	if (len == 0) {
		sts_diags_add(d, STS_SEV_ERROR, "policy.empty", "21", 0, 1, 1,
			      "the policy is empty: it needs version, mode, max_age and mx lines");
		return STS_EINVAL;
	}
	if (len >= 2 && ((s[0] == 0xff && s[1] == 0xfe) || (s[0] == 0xfe && s[1] == 0xff))) {
		sts_diags_add(d, STS_SEV_ERROR, "policy.utf16", "20", 0, 1, 1,
			      "the file is UTF-16 text: save it as plain ASCII or UTF-8");
		return STS_EINVAL;
	}

	size_t lines = 1;
	for (const unsigned char *q = s; (q = memchr(q, '\n', (size_t)(s + len - q))) != NULL; q++)
		lines++;
	struct pctx ctx = { .s = s, .flags = flags, .p = out, .d = d, .cap_lines = lines, .line = 1 };
	struct pctx *c = &ctx;
	if (sts_arena_init(&c->arena, STS_ARENA_ARRAY(lines, sizeof(char *)) +
			   STS_ARENA_ARRAY(lines, sizeof(struct sts_ext)) + len + 2 * lines + 16) != 0)
		return STS_ENOMEM;
	out->mem_ = c->arena.base;
	out->mx = sts_arena_alloc(&c->arena, lines * sizeof(char *));
	out->ext = sts_arena_alloc(&c->arena, lines * sizeof(struct sts_ext));

	size_t errors_before = d->n_errors;
	size_t pos = 0;
	if (len >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf) {
		sts_diags_add(d, sts_tolerance(flags), "policy.bom", "20", 0, 1, 1,
			      "the file starts with a UTF-8 byte-order mark: save it without BOM");
		pos = 3;
	}
	while (pos < len) {
		const unsigned char *nl = memchr(s + pos, '\n', len - pos);
		size_t line_end = nl != NULL ? (size_t)(nl - s) : len;
		size_t content_end = line_end;
		if (nl != NULL && content_end > pos && s[content_end - 1] == '\r')
			content_end--;
		int rc = parse_line(c, pos, content_end);
		if (rc != STS_OK)
			return rc;
		pos = nl != NULL ? line_end + 1 : len;
		if (nl != NULL) {
			c->line++;
			c->line_begin = pos;
		}
	}

	size_t end_off = len;
	if (!c->seen_version)
		sts_diags_add(d, STS_SEV_ERROR, "policy.version.missing", "21", AT(end_off),
			      "no 'version: STSv1' line: add it as the first line");
	if (!c->seen_mode)
		sts_diags_add(d, STS_SEV_ERROR, "policy.mode.missing", "21", AT(end_off),
			      "no 'mode:' line: add 'mode: testing' (or enforce, or none)");
	if (!c->seen_max_age)
		sts_diags_add(d, STS_SEV_ERROR, "policy.max_age.missing", "21", AT(end_off),
			      "no 'max_age:' line: add e.g. 'max_age: 604800' (one week)");
	if (out->has_max_age && out->max_age < 86400 &&
	    (out->mode == STS_MODE_ENFORCE || out->mode == STS_MODE_TESTING))
		/* Legal, but senders refetch constantly and a short outage of the
		 * policy host leaves them without a policy (rules 17, 70). A short
		 * max_age is right for mode none, when retiring (rule 67). */
		sts_diags_add(d, STS_SEV_WARNING, "policy.max_age.short", "17",
			      c->max_age_pos.offset, c->max_age_pos.line, c->max_age_pos.column,
			      "max_age %u is under one day: senders forget the policy quickly;"
			      " use at least 604800 (one week) once it works", out->max_age);
	if ((out->mode == STS_MODE_ENFORCE || out->mode == STS_MODE_TESTING) && !c->seen_mx)
		sts_diags_add(d, STS_SEV_ERROR, "policy.mx.missing", "21", AT(end_off),
			      "mode %s needs at least one 'mx:' line naming your MX hosts",
			      sts_mode_name(out->mode));
	return d->n_errors == errors_before ? STS_OK : STS_EINVAL;
}

void
sts_policy_clear(struct sts_policy *p)
{
	free(p->mem_);
	memset(p, 0, sizeof *p);
}

const char *
sts_mode_name(enum sts_mode m)
{
	switch (m) {
	case STS_MODE_ENFORCE: return "enforce";
	case STS_MODE_TESTING: return "testing";
	case STS_MODE_NONE: return "none";
	case STS_MODE_UNSET: break;
	}
	return "unset";
}

enum sts_mode
sts_mode_from_name(const char *s)
{
	if (strcmp(s, "enforce") == 0)
		return STS_MODE_ENFORCE;
	if (strcmp(s, "testing") == 0)
		return STS_MODE_TESTING;
	if (strcmp(s, "none") == 0)
		return STS_MODE_NONE;
	return STS_MODE_UNSET;
}

bool
sts_policy_matches_host(const struct sts_policy *p, const char *host)
{
	char norm[STS_HOST_MAX + 1];
	if (sts_host_normalize(host, strlen(host), norm) != STS_OK)
		return false;
	for (size_t i = 0; i < p->n_mx; i++)
		if (sts_mx_match(p->mx[i], norm))
			return true;
	return false;
}
