/* sts_netmod.c: the entry table of mtasts-net.so (see netmod.h). The only
 * symbol the module exports; everything behind it comes from libmtasts. */
#include <mtasts/netmod.h>

extern const struct sts_netmod sts_netmod_v1;

__attribute__((visibility("default"))) const struct sts_netmod sts_netmod_v1 = {
	.version = STS_NETMOD_VERSION,
	.size = sizeof(struct sts_netmod),
	.fetcher_new = sts_fetcher_new,
	.fetcher_free = sts_fetcher_free,
	.fetch_policy = sts_fetch_policy,
	.redis_open = sts_cache_redis_open,
	.postgres_open = sts_cache_postgres_open,
	.redis_check_url = sts_cache_redis_check_url,
	.postgres_check_dsn = sts_cache_postgres_check_dsn,
};
