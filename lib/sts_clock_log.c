/* sts_clock_log.c: the default clock and the logging front end. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <mtasts/clock.h>
#include <mtasts/log.h>

int64_t
sts_clock_now(const struct sts_clock *c)
{
	if (c != NULL && c->now != NULL)
		return c->now(c->ctx);
	return (int64_t)time(NULL);
}

const char *
sts_log_level_name(enum sts_log_level level)
{
	switch (level) {
	case STS_LOG_ERROR: return "error";
	case STS_LOG_WARNING: return "warning";
	case STS_LOG_INFO: return "info";
	case STS_LOG_DEBUG: return "debug";
	}
	return "?";
}

void
sts_log(const struct sts_logger *lg, enum sts_log_level level, const char *fmt, ...)
{
	if (lg == NULL || lg->fn == NULL || level > lg->max)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Remote names and texts end up in here: never pass control bytes on. */
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	lg->fn(lg->ctx, level, msg);
}
