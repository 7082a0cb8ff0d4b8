/* log.h: the library never prints; it reports through a caller's callback. */
#ifndef MTASTS_LOG_H
#define MTASTS_LOG_H

enum sts_log_level {
	STS_LOG_ERROR = 0,
	STS_LOG_WARNING = 1,
	STS_LOG_INFO = 2,
	STS_LOG_DEBUG = 3,
};

/* msg is one line without a newline, already sanitised (no control bytes). */
typedef void (*sts_log_fn)(void *ctx, enum sts_log_level level, const char *msg);

struct sts_logger {
	sts_log_fn fn;               /* NULL: discard */
	void *ctx;
	enum sts_log_level max;      /* messages above this level are not formatted */
};

void sts_log(const struct sts_logger *lg, enum sts_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *sts_log_level_name(enum sts_log_level level);

#endif
