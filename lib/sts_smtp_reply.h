/* sts_smtp_reply.h (internal): SMTP replies as the probe reads them from an
 * untrusted server. Pure; no I/O. */
#ifndef STS_SMTP_REPLY_H
#define STS_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

enum sts_smtp_reply {
	STS_SMTP_REPLY_INCOMPLETE,
	STS_SMTP_REPLY_COMPLETE,
	STS_SMTP_REPLY_MALFORMED,
};

/* One complete reply at the start of buf: lines ending in LF (CR optional),
 * "DDD-text" but the last, which is "DDD text" or "DDD". COMPLETE: *end is
 * the reply's length and *code the last line's code. MALFORMED: *end is the
 * offset of the bad line. */
enum sts_smtp_reply sts_smtp_reply_scan(const char *buf, size_t len, int *code, size_t *end);

/* Whether an EHLO reply lists STARTTLS (a keyword line other than the first). */
bool sts_smtp_ehlo_has_starttls(const char *buf, size_t len);

#endif
