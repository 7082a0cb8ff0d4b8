/* cache.h: the policy cache behind a backend vtable.
 *
 * Calls are asynchronous (the result arrives in a callback) so network
 * backends (Redis, PostgreSQL) fit the same shape; the in-memory and SQLite
 * backends answer before the call returns. A lookup reports hit (1), miss (0)
 * or failure (< 0): a cache failure is never mistaken for "no policy".
 * Entries hold the raw policy text; the parse result is derived from it. */
#ifndef MTASTS_CACHE_H
#define MTASTS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <mtasts/log.h>
#include <mtasts/mx.h>
#include <mtasts/txt.h>

struct sts_cache_entry {
	char domain[STS_HOST_MAX + 1];   /* policy domain, A-label, lower case */
	char id[STS_ID_MAX + 1];         /* TXT id the policy was fetched under */
	int64_t fetched_at;              /* unix seconds; max_age counts from here (rule 16) */
	uint32_t max_age;                /* as applied (clamped) */
	char mode[8];                    /* "enforce", "testing", "none": for listings */
	char *policy;                    /* raw body, NUL-terminated; owned by the entry */
	size_t policy_len;
};

/* Frees entry->policy and zeroes the entry. */
void sts_cache_entry_clear(struct sts_cache_entry *e);

struct sts_cache;

typedef void (*sts_cache_get_cb)(void *arg, int status, const struct sts_cache_entry *e);
typedef void (*sts_cache_done_cb)(void *arg, int status);
/* Returns non-zero to stop the scan. */
typedef int (*sts_cache_each_cb)(void *arg, const struct sts_cache_entry *e);

struct sts_cache_ops {
	const char *name;
	/* status 1 with e (borrowed for the callback), 0 miss, < 0 failure */
	void (*get)(struct sts_cache *c, const char *domain, sts_cache_get_cb cb, void *arg);
	/* Replaces the domain's entry; status 0 or < 0. */
	void (*put)(struct sts_cache *c, const struct sts_cache_entry *e, sts_cache_done_cb cb,
		    void *arg);
	/* status 1 deleted, 0 absent, < 0 failure */
	void (*del)(struct sts_cache *c, const char *domain, sts_cache_done_cb cb, void *arg);
	void (*scan)(struct sts_cache *c, sts_cache_each_cb each, sts_cache_done_cb done, void *arg);
	void (*close)(struct sts_cache *c);
};

struct sts_cache {
	const struct sts_cache_ops *ops;
	struct sts_logger log;
};

/* A bounded in-memory LRU (max_entries > 0). */
int sts_cache_memory_open(size_t max_entries, const struct sts_logger *log,
			  struct sts_cache **out);
/* SQLite at path (WAL, versioned schema). A corrupt or unreadable file is
 * moved aside to PATH.corrupt-<unix time> with a log line and a fresh
 * database is started. Returns 0, or -1 with a message in err. */
int sts_cache_sqlite_open(const char *path, const struct sts_logger *log,
			  struct sts_cache **out, char *err, size_t errsz);
/* Network backends, shared by several daemons (one fleet of MTAs sees one
 * set of policies). Both run on the caller's libuv loop and never block it:
 *
 * - open fails (-1, message in err) only for a malformed target; a server
 *   that is down or refuses us is not an error: the backend connects in the
 *   background, logs once per outage, and reconnects with exponential
 *   back-off (0.5 s doubling to 30 s).
 * - While disconnected every operation fails at once (status < 0), so the
 *   engine falls back to the network and the daemon to its memory.
 * - Every operation calls back exactly once, with failure after timeout_ms
 *   without an answer (a stalled server never holds a lookup).
 * - close calls back every operation still pending with failure, then frees.
 * - Entries written by one process are seen by every other process using
 *   the same server; a put never replaces a newer fetched_at by an older one.
 *
 * Redis: url is redis://[[user]:password@]host[:port][/db] or
 * unix:///path/to/socket[?db=N]; one hash per domain, key "mtasts:policy:"
 * DOMAIN, expiring with the policy (EXPIREAT fetched_at + max_age).
 * PostgreSQL: dsn is a libpq connection string or URI; one table
 * mtasts_policies created on first connect. */
int sts_cache_redis_open(uv_loop_t *loop, const char *url, unsigned timeout_ms,
			 const struct sts_logger *log, struct sts_cache **out, char *err,
			 size_t errsz);
int sts_cache_postgres_open(uv_loop_t *loop, const char *dsn, unsigned timeout_ms,
			    const struct sts_logger *log, struct sts_cache **out, char *err,
			    size_t errsz);
/* The checks open makes before anything else, without a loop or the
 * network (for --check-config): 0, or -1 with the reason in err (a URL's
 * password is never copied there). */
int sts_cache_redis_check_url(const char *url, char *err, size_t errsz);
int sts_cache_postgres_check_dsn(const char *dsn, char *err, size_t errsz);

/* Closes and frees; *c becomes NULL. */
void sts_cache_close(struct sts_cache **c);

#endif
