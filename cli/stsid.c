/* stsid.c: clock and timestamp ids. Ids are fixed-width UTC timestamps so
 * that string order and numeric order agree (rule 5 only asks for
 * uniqueness, but growing ids make the history easy to read). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stsid.h"

/* 9999-12-31T23:59:59Z: the last second a 14-digit id can name. */
#define ID_TIME_MAX INT64_C(253402300799)

bool
cli_now(const char *cmd, int64_t *now)
{
	const char *env = getenv(CLI_NOW_ENV);
	if (env == NULL) {
		*now = (int64_t)time(NULL);
		return true;
	}
	bool ok = env[0] != '\0' && strlen(env) <= 12;
	int64_t v = 0;
	for (const char *p = env; ok && *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			ok = false;
		else
			v = v * 10 + (*p - '0');
	}
	if (!ok || v > ID_TIME_MAX) {
		fprintf(stderr, "mta-sts %s: %s='%.40s' is not a Unix time in seconds between 0"
			" and %lld (it is a test hook: unset it to use the system clock)\n", cmd,
			CLI_NOW_ENV, env, (long long)ID_TIME_MAX);
		return false;
	}
	*now = v;
	return true;
}

bool
cli_id_from_time(int64_t t, char out[CLI_ID_LEN + 1])
{
	out[0] = '\0';
	if (t < 0 || t > ID_TIME_MAX)
		return false;
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		return false;
	return strftime(out, CLI_ID_LEN + 1, "%Y%m%d%H%M%S", &tm) == CLI_ID_LEN;
}

bool
cli_id_to_time(const char *s, int64_t *t)
{
	if (strlen(s) != CLI_ID_LEN)
		return false;
	for (size_t i = 0; i < CLI_ID_LEN; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	char *end = strptime(s, "%Y%m%d%H%M%S", &tm);
	if (end == NULL || *end != '\0')
		return false;
	time_t v = timegm(&tm);
	/* timegm normalises 20260231 to March: insist on a round trip. */
	char back[CLI_ID_LEN + 1];
	if (!cli_id_from_time((int64_t)v, back) || strcmp(back, s) != 0)
		return false;
	*t = (int64_t)v;
	return true;
}

bool
cli_id_next(int64_t now, const char *highest, char out[CLI_ID_LEN + 1])
{
	if (!cli_id_from_time(now, out))
		return false;
	if (highest == NULL || strcmp(out, highest) > 0)
		return true;
	int64_t h;
	if (!cli_id_to_time(highest, &h))
		return false;
	return cli_id_from_time(h + 1, out);
}

bool
cli_time_iso(int64_t t, char out[21])
{
	out[0] = '\0';
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		return false;
	return strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 20;
}
