/* sts_mx.c: mx pattern validation and MX host matching
 * (rules 18, 19, 45, 73, 75; ABNF A.2 sts-policy-mx-value). */
#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mtasts/mx.h>
#include <mtasts/parse.h>
#include <mtasts/status.h>

#include "sts_tagrec.h"

static inline bool is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}
static inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

#define ERR(code, rule, at, ...)                                                          \
	sts_diags_add(d, STS_SEV_ERROR, code, rule, pos.offset + (at), pos.line,          \
		      pos.column + (unsigned)(at), __VA_ARGS__)

/* Characters a host name may carry after normalisation: LDH, the dot, and
 * '_' (seen in real DNS names, harmless for matching). */
static bool
host_chars_ok(const char *s, size_t n)
{
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return false;   /* empty label: leading dot or ".." */
			label = 0;
			continue;
		}
		if (!is_ldh(c) && c != '_')
			return false;
		if (++label > STS_LABEL_MAX)
			return false;
	}
	return n > 0 && label > 0;
}

/* Converts a pattern written with U-labels to A-labels, for the fix hint. */
static void
suggest_alabel(const char *p, size_t len, char *out, size_t outsz)
{
	char tmp[STS_HOST_MAX * 4 + 8];
	out[0] = '\0';
	if (len >= sizeof tmp)
		return;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	const char *name = tmp;
	bool wild = len > 2 && tmp[0] == '*' && tmp[1] == '.';
	if (wild)
		name += 2;
	char *a = NULL;
	if (idn2_lookup_u8((const uint8_t *)name, (uint8_t **)&a,
			   IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) == IDN2_OK && a != NULL &&
	    host_chars_ok(a, strlen(a)))
		snprintf(out, outsz, "%s%s", wild ? "*." : "", a);
	free(a);
}

int
sts_mx_pattern_check(const char *p, size_t len, unsigned flags,
		     char out[STS_HOST_MAX + 1], struct sts_diags *d, struct sts_pos pos)
{
	/* The escaped pattern is built only when a message needs it. */
	char got_buf[96];
#define got (sts_escape(p, len, got_buf, sizeof got_buf))
	out[0] = '\0';

	if (len == 0) {
		ERR("policy.mx.empty", "20", 0,
		    "mx has no value: give one MX host name per line, e.g. 'mx: mail.example.com'");
		return STS_EINVAL;
	}
	const char *hash = memchr(p, '#', len);
	if (hash != NULL) {
		ERR("policy.mx.comment", "20", (size_t)(hash - p),
		    "mx '%s' carries a comment: the policy syntax has none; keep only the host name",
		    got);
		return STS_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == ' ' || c == '\t' || c == ',') {
			ERR("policy.mx.multiple", "18", i,
			    "mx value '%s' holds more than one name or extra text: write one"
			    " 'mx:' line per host", got);
			return STS_EINVAL;
		}
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x80) {
			char hint[STS_HOST_MAX + 8];
			suggest_alabel(p, len, hint, sizeof hint);
			if (hint[0] != '\0')
				ERR("policy.mx.ulabel", "19", i,
				    "mx '%s' is an internationalised name: write it as A-labels: 'mx: %s'",
				    got, hint);
			else
				ERR("policy.mx.ulabel", "19", i,
				    "mx '%s' contains non-ASCII bytes: write host names as A-labels"
				    " (xn--...)", got);
			return STS_EINVAL;
		}
		if (c == ':' || c == '/') {
			ERR("policy.mx.not_host", "20", i,
			    "mx '%s' is not a host name (no URL, scheme or port): write e.g."
			    " 'mx: mail.example.com'", got);
			return STS_EINVAL;
		}
		if (c == '[' || c == ']') {
			ERR("policy.mx.ip_literal", "20", i,
			    "mx '%s' is an address literal: write the MX host name instead", got);
			return STS_EINVAL;
		}
	}

	size_t start = 0;
	bool wild = false;
	if (len >= 2 && p[0] == '*' && p[1] == '.') {
		wild = true;
		start = 2;
	}
	const char *star = memchr(p + start, '*', len - start);
	if (star != NULL) {
		ERR("policy.mx.wildcard", "45", (size_t)(star - p),
		    "mx '%s': '*' may only stand as the whole left-most label, as in"
		    " '*.example.com'", got);
		return STS_EINVAL;
	}
	size_t end = len;
	bool strict_violation = false;
	if (end > start && p[end - 1] == '.') {
		if (end - 1 == start) {
			ERR("policy.mx.empty_label", "20", end - 1,
			    "mx '%s' has no host name", got);
			return STS_EINVAL;
		}
		end--;
		strict_violation = (flags & STS_PARSE_STRICT) != 0;
		sts_diags_add(d, sts_tolerance(flags), "policy.mx.trailing_dot", "20",
			      pos.offset + end, pos.line, pos.column + (unsigned)end,
			      "mx '%s' ends with '.': remove the trailing dot (senders that do"
			      " not strip it never match)", got);
	}
	if (end == start) {
		ERR("policy.mx.empty_label", "20", start, "mx '%s' has no host name after '*.'", got);
		return STS_EINVAL;
	}
	/* A "*." pattern stands for a name one label longer, so the whole
	 * pattern, "*." included, obeys the host-name limit. */
	if (end > STS_HOST_MAX) {
		ERR("policy.mx.too_long", "20", start,
		    "mx '%s' is %zu characters; a host name has at most %d", got, end,
		    STS_HOST_MAX);
		return STS_EINVAL;
	}

	size_t label = start;
	size_t n_labels = 0;
	bool last_numeric = true;
	for (size_t i = start; i <= end; i++) {
		if (i < end && p[i] != '.')
			continue;
		size_t ll = i - label;
		n_labels++;
		if (ll == 0) {
			ERR("policy.mx.empty_label", "20", label,
			    "mx '%s' has an empty label ('..' or a leading '.')", got);
			return STS_EINVAL;
		}
		if (ll > STS_LABEL_MAX) {
			ERR("policy.mx.label_too_long", "20", label,
			    "mx '%s': a label has %zu characters; at most %d are allowed", got, ll,
			    STS_LABEL_MAX);
			return STS_EINVAL;
		}
		last_numeric = true;
		for (size_t j = label; j < i; j++) {
			unsigned char c = (unsigned char)p[j];
			if (!is_ldh(c)) {
				ERR("policy.mx.bad_char", "20", j,
				    "mx '%s': '%c' is not allowed in a host name (letters, digits,"
				    " '-' and '.' only)%s", got, c >= 0x20 && c < 0x7f ? c : '?',
				    c == '<' || c == '>' ? "; replace the placeholder with your MX host" : "");
				return STS_EINVAL;
			}
			if (c < '0' || c > '9')
				last_numeric = false;
		}
		if (p[label] == '-' || p[i - 1] == '-') {
			ERR("policy.mx.hyphen", "20", p[label] == '-' ? label : i - 1,
			    "mx '%s': a label may not begin or end with '-'", got);
			return STS_EINVAL;
		}
		if (ll > 4 && (p[label] | 0x20) == 'x' && (p[label + 1] | 0x20) == 'n' &&
		    p[label + 2] == '-' && p[label + 3] == '-') {
			char lab[STS_LABEL_MAX + 1];
			memcpy(lab, p + label, ll);
			lab[ll] = '\0';
			char *res = NULL;
			int rc = idn2_lookup_u8((const uint8_t *)lab, (uint8_t **)&res,
						IDN2_NONTRANSITIONAL);
			free(res);
			if (rc != IDN2_OK) {
				ERR("policy.mx.bad_alabel", "19", label,
				    "mx '%s': label '%s' is not a valid A-label (%s)", got, lab,
				    idn2_strerror(rc));
				return STS_EINVAL;
			}
		}
		label = i + 1;
	}
	if (last_numeric) {
		ERR("policy.mx.ip_literal", "20", start,
		    "mx '%s' looks like an IP address: MTA-STS matches MX host names, write the"
		    " name", got);
		return STS_EINVAL;
	}
	if (wild && n_labels == 1)
		sts_diags_add(d, STS_SEV_WARNING, "policy.mx.broad_wildcard", "73", pos.offset,
			      pos.line, pos.column,
			      "mx '%s' covers every host under a top-level domain: any certificate"
			      " holder there becomes a valid MX; list your MX hosts", got);

	size_t o = 0;
	if (wild) {
		out[o++] = '*';
		out[o++] = '.';
	}
	for (size_t i = start; i < end; i++)
		out[o++] = lower(p[i]);
	out[o] = '\0';
	return strict_violation ? STS_EINVAL : STS_OK;
}
#undef got

int
sts_host_normalize(const char *host, size_t len, char out[STS_HOST_MAX + 1])
{
	out[0] = '\0';
	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len > STS_HOST_MAX * 4)
		return STS_EINVAL;
	bool ascii = true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];
		if (c <= 0x20 || c == 0x7f)
			return STS_EINVAL;
		if (c >= 0x80)
			ascii = false;
	}
	if (ascii) {
		if (len > STS_HOST_MAX || !host_chars_ok(host, len))
			return STS_EINVAL;
		for (size_t i = 0; i < len; i++)
			out[i] = lower(host[i]);
		out[len] = '\0';
		return STS_OK;
	}
	char tmp[STS_HOST_MAX * 4 + 1];
	memcpy(tmp, host, len);
	tmp[len] = '\0';
	char *a = NULL;
	int rc = idn2_lookup_u8((const uint8_t *)tmp, (uint8_t **)&a,
				IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
	/* UTS #46 mapping can turn some code points (NBSP) into ASCII that is
	 * not valid in a host name; such input is not a usable host. */
	if (rc != IDN2_OK || a == NULL || strlen(a) > STS_HOST_MAX || !host_chars_ok(a, strlen(a))) {
		free(a);
		return STS_EINVAL;
	}
	size_t n = strlen(a);
	for (size_t i = 0; i < n; i++)
		out[i] = lower(a[i]);
	out[n] = '\0';
	free(a);
	return STS_OK;
}

bool
sts_host_is_ip_literal(const char *host)
{
	if (strchr(host, ':') != NULL)
		return true;
	const char *last = strrchr(host, '.');
	last = last != NULL ? last + 1 : host;
	return *last != '\0' && strspn(last, "0123456789") == strlen(last);
}

bool
sts_mx_match(const char *pattern, const char *host)
{
	if (pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = strchr(host, '.');
		if (dot == NULL || dot == host)
			return false;
		return strcasecmp(dot + 1, pattern + 2) == 0;
	}
	return strcasecmp(pattern, host) == 0;
}
