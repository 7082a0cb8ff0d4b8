/* sts_mediatype.c: the Content-Type check of the policy fetch (rule 14).
 *
 * RFC 8461 3.2 asks for media type "text/plain". Type and subtype compare
 * case-insensitively (RFC 9110 8.3.1). Every parameter is ignored, charset
 * included: the policy is decoded as UTF-8 whatever the server claims, so
 * "text/plain; charset=iso-8859-1" is accepted (the RFC ignores parameters
 * other than charset=utf-8/us-ascii rather than rejecting them). Pure; no
 * allocation. */
#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

#include <mtasts/fetch.h>

static bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

bool
sts_media_type_ok(const char *value)
{
	static const char want[] = "text/plain";
	const size_t wlen = sizeof want - 1;
	if (value == NULL)
		return false;
	/* Field values arrive trimmed from curl, but a leading OWS is legal
	 * HTTP and costs nothing to allow. */
	while (is_ows(*value))
		value++;
	if (strncasecmp(value, want, wlen) != 0)
		return false;
	const char *p = value + wlen;
	/* "text/plain+", "text/plainx", "text/plain, text/html": the token
	 * continues or a second value follows, so this is not text/plain. */
	while (is_ows(*p))
		p++;
	return *p == '\0' || *p == ';';
}
