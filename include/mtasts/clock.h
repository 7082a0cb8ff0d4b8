/* clock.h: injectable wall clock. Cache ages, max_age expiry and back-off all
 * read time through this, so tests can move it. */
#ifndef MTASTS_CLOCK_H
#define MTASTS_CLOCK_H

#include <stdint.h>

struct sts_clock {
	int64_t (*now)(void *ctx);   /* unix seconds */
	void *ctx;
};

/* Unix seconds from c, or from time(2) when c or c->now is NULL. */
int64_t sts_clock_now(const struct sts_clock *c);

#endif
