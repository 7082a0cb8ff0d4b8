/* sts_cache_redis.c: placeholder until the redis backend lands. */
#include <stdio.h>

#include <mtasts/cache.h>

int
sts_cache_redis_open(uv_loop_t *loop, const char *target, unsigned timeout_ms,
		    const struct sts_logger *log, struct sts_cache **out, char *err, size_t errsz)
{
	(void)loop;
	(void)target;
	(void)timeout_ms;
	(void)log;
	*out = NULL;
	snprintf(err, errsz, "the redis cache backend is not built yet");
	return -1;
}
