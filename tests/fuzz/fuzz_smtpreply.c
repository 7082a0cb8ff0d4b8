/* fuzz_smtpreply.c: the SMTP reply scanner of the STARTTLS probe against
 * hostile servers. Invariants: never reads past the input; a COMPLETE reply
 * has a 1xx-5xx code, ends at a LF within the input, and scanning just that
 * prefix gives the same answer; MALFORMED points inside the input at a line
 * start; INCOMPLETE means no LF ends a valid last line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sts_smtp_reply.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so ASan catches any read past the end. */
	char *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	if (size > 0)
		memcpy(buf, data, size);
	int code = -1;
	size_t end = (size_t)-1;
	enum sts_smtp_reply st = sts_smtp_reply_scan(buf, size, &code, &end);
	if (st == STS_SMTP_REPLY_COMPLETE) {
		CHECK(code >= 100 && code <= 599);
		CHECK(end >= 4 && end <= size && buf[end - 1] == '\n');
		int code2 = -1;
		size_t end2 = 0;
		CHECK(sts_smtp_reply_scan(buf, end, &code2, &end2) == STS_SMTP_REPLY_COMPLETE);
		CHECK(code2 == code && end2 == end);
	} else if (st == STS_SMTP_REPLY_MALFORMED) {
		CHECK(end < size);
		CHECK(end == 0 || buf[end - 1] == '\n');
	} else {
		CHECK(st == STS_SMTP_REPLY_INCOMPLETE);
	}
	bool has = sts_smtp_ehlo_has_starttls(buf, size);
	if (has)
		CHECK(size >= 12);
	free(buf);
	return 0;
}
