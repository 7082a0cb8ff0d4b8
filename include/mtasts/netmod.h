/* netmod.h: the network stack as a loadable module.
 *
 * The HTTPS fetcher (libcurl, OpenSSL) and the Redis and PostgreSQL cache
 * backends (hiredis, libpq) are also built into mtasts-net.so, which
 * exports one table of entry points under STS_NETMOD_SYMBOL. mta-stsd
 * loads it with dlopen the first time it needs one of them, so a daemon
 * that has not fetched anything yet, or never uses a network cache, does
 * not map those libraries and their dependency trees at all. The
 * functions behave exactly as declared in fetch.h and cache.h. */
#ifndef MTASTS_NETMOD_H
#define MTASTS_NETMOD_H

#include <stddef.h>
#include <uv.h>

#include <mtasts/cache.h>
#include <mtasts/fetch.h>

#define STS_NETMOD_SYMBOL "sts_netmod_v1"
#define STS_NETMOD_VERSION 1u
#define STS_NETMOD_FILE "mtasts-net.so"

struct sts_netmod {
	unsigned version;            /* STS_NETMOD_VERSION */
	size_t size;                 /* sizeof (struct sts_netmod) when built */
	int (*fetcher_new)(uv_loop_t *loop, const struct sts_fetch_opts *opts,
			   struct sts_fetcher **out, char *err, size_t errsz);
	void (*fetcher_free)(struct sts_fetcher **f);
	void (*fetch_policy)(struct sts_fetcher *f, const char *domain,
			     const char *const *addrs, size_t n_addrs, sts_fetch_cb cb, void *arg);
	int (*redis_open)(uv_loop_t *loop, const char *url, unsigned timeout_ms,
			  const struct sts_logger *log, struct sts_cache **out, char *err,
			  size_t errsz);
	int (*postgres_open)(uv_loop_t *loop, const char *dsn, unsigned timeout_ms,
			     const struct sts_logger *log, struct sts_cache **out, char *err,
			     size_t errsz);
	int (*redis_check_url)(const char *url, char *err, size_t errsz);
	int (*postgres_check_dsn)(const char *dsn, char *err, size_t errsz);
};

#endif
