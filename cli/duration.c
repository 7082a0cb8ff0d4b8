/* duration.c: parsing and printing of max_age durations. */
#include <stdio.h>
#include <string.h>

#include <mtasts/diag.h>
#include <mtasts/policy.h>

#include "duration.h"

static const struct unit {
	char name;
	uint64_t secs;
} units[] = {
	{ 'w', 604800 }, { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
};

static const struct unit *
unit_of(char c)
{
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (units[i].name == c)
			return &units[i];
	return NULL;
}

bool
cli_duration_parse(const char *s, uint32_t *out, char *err, size_t errsz)
{
	char shown[64];
	sts_escape(s, strlen(s), shown, sizeof shown);
	if (s[0] == '\0') {
		snprintf(err, errsz, "'' is empty: give seconds (86400) or a number with a"
			 " unit, e.g. 1d or 1w");
		return false;
	}
	if (strpbrk(s, " \t\r\n") != NULL) {
		snprintf(err, errsz, "'%s' contains white space: write the duration without"
			 " spaces, e.g. 1w2d", shown);
		return false;
	}
	/* Values only grow, so anything past the ceiling is final: saturating here
	 * keeps huge inputs from overflowing while the syntax is still checked. */
	const uint64_t cap = (uint64_t)STS_MAX_AGE_MAX + 1;
	uint64_t total = 0;
	unsigned used = 0;
	const char *p = s;
	while (*p != '\0') {
		if (*p < '0' || *p > '9') {
			if (*p == '-' || *p == '+')
				snprintf(err, errsz, "'%s' is not a duration: give a whole number of"
					 " seconds without sign, or e.g. 1w, 2d, 12h", shown);
			else if (p == s || unit_of(*p) != NULL)
				snprintf(err, errsz, "'%s' is not a duration: every unit needs a"
					 " number before it, e.g. 1w2d", shown);
			else
				snprintf(err, errsz, "'%s' is not a duration: use whole numbers with"
					 " the units s, m, h, d or w (e.g. 86400, 1d, 1w2d)", shown);
			return false;
		}
		uint64_t n = 0;
		while (*p >= '0' && *p <= '9') {
			n = n * 10 + (uint64_t)(*p - '0');
			if (n > cap)
				n = cap;
			p++;
		}
		uint64_t mult = 1;
		if (*p != '\0') {
			const struct unit *u = unit_of(*p);
			if (u == NULL) {
				char bad[8];
				sts_escape(p, 1, bad, sizeof bad);
				snprintf(err, errsz, "'%s': unknown unit '%s': use s, m, h, d or w"
					 " (e.g. 86400, 1d, 1w2d)%s", shown, bad,
					 *p == '.' || *p == ',' ? "; fractions are not allowed" : "");
				return false;
			}
			unsigned bit = 1u << (unsigned)(u - units);
			if (used & bit) {
				snprintf(err, errsz, "'%s': unit '%c' appears twice: give each unit"
					 " once, e.g. 1w2d", shown, u->name);
				return false;
			}
			used |= bit;
			mult = u->secs;
			p++;
		} else if (used != 0) {
			snprintf(err, errsz, "'%s': the last number has no unit: add one of s, m,"
				 " h, d, w", shown);
			return false;
		}
		total += n * mult;   /* n <= cap, mult <= 604800: no overflow */
		if (total > cap)
			total = cap;
	}
	if (total > STS_MAX_AGE_MAX) {
		snprintf(err, errsz, "'%s' is longer than the maximum max_age of %u seconds"
			 " (one year, rule 15): give at most %u or e.g. 52w", shown,
			 STS_MAX_AGE_MAX, STS_MAX_AGE_MAX);
		return false;
	}
	*out = (uint32_t)total;
	return true;
}

char *
cli_duration_format(uint64_t secs, char *buf, size_t bufsz)
{
	size_t o = 0;
	buf[0] = '\0';
	if (secs == 0) {
		snprintf(buf, bufsz, "0s");
		return buf;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0] && secs > 0; i++) {
		uint64_t n = secs / units[i].secs;
		if (n == 0)
			continue;
		secs %= units[i].secs;
		int w = snprintf(buf + o, bufsz - o, "%llu%c", (unsigned long long)n,
				 units[i].name);
		if (w < 0 || (size_t)w >= bufsz - o)
			break;   /* truncated: buf stays NUL-terminated */
		o += (size_t)w;
	}
	return buf;
}
