/* sts_smtp_reply.c: pure SMTP reply parsing for the STARTTLS probe (see
 * sts_smtp_reply.h); fuzzed as tests/fuzz/fuzz_smtpreply.c. */
#include <string.h>
#include <strings.h>

#include "sts_smtp_reply.h"

/* Looks for one complete reply at the start of buf: lines ending in LF (CR
 * optional), each "DDD-text" but the last, "DDD text" or "DDD". On
 * STS_SMTP_REPLY_COMPLETE *end is the length of the reply and *code its code (the
 * last line's, as Postfix's client takes it); on STS_SMTP_REPLY_MALFORMED *end is
 * the offset of the bad line. */
enum sts_smtp_reply
sts_smtp_reply_scan(const char *buf, size_t len, int *code, size_t *end)
{
	size_t off = 0;
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		if (nl == NULL)
			return STS_SMTP_REPLY_INCOMPLETE;
		const char *l = buf + off;
		size_t ll = (size_t)(nl - l);
		if (ll > 0 && l[ll - 1] == '\r')
			ll--;
		if (ll < 3 || l[0] < '1' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
		    l[2] < '0' || l[2] > '9' || (ll > 3 && l[3] != '-' && l[3] != ' ')) {
			*end = off;
			return STS_SMTP_REPLY_MALFORMED;
		}
		off = (size_t)(nl - buf) + 1;
		if (ll == 3 || l[3] == ' ') {
			*code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
			*end = off;
			return STS_SMTP_REPLY_COMPLETE;
		}
	}
	return STS_SMTP_REPLY_INCOMPLETE;
}

/* Whether a 250 reply to EHLO lists STARTTLS: a keyword line (any but the
 * first, which is the greeting) whose first word is STARTTLS, any case. */
bool
sts_smtp_ehlo_has_starttls(const char *buf, size_t len)
{
	size_t off = 0;
	bool first = true;
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t ll = nl != NULL ? (size_t)(nl - (buf + off)) : len - off;
		const char *l = buf + off;
		if (!first && ll >= 12 && strncasecmp(l + 4, "STARTTLS", 8) == 0 &&
		    (ll == 12 || l[12] == ' ' || l[12] == '\t' || l[12] == '\r'))
			return true;
		first = false;
		off += ll + 1;
	}
	return false;
}
