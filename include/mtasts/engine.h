/* engine.h: the RFC 8461 sender state machine (rules 8, 9, 16, 34-40, 63-67,
 * failure matrix B.2) over the DNS, fetch and cache modules, on one libuv
 * loop. Lookups of one domain that overlap share one TXT query and at most
 * one fetch (request coalescing); a failed fetch backs off per (domain, id)
 * for at least five minutes (rule 34); "no policy" answers are cached for a
 * bounded time. A valid cached policy survives every failure (rule 38).
 * @test tests/unit/test_engine.c (fake DNS/HTTP boundary), tests/integration/test_query.sh */
#ifndef MTASTS_ENGINE_H
#define MTASTS_ENGINE_H

#include <stdint.h>
#include <uv.h>

#include <mtasts/cache.h>
#include <mtasts/clock.h>
#include <mtasts/dns.h>
#include <mtasts/fetch.h>
#include <mtasts/log.h>
#include <mtasts/policy.h>

/* The seams the engine uses: the real DNS and fetch modules by default;
 * unit tests substitute fakes here, at the DNS/HTTP boundary only. */
struct sts_engine_io {
	void *ctx;
	void (*txt)(void *ctx, const char *name, sts_dns_cb cb, void *arg);
	void (*addrs)(void *ctx, const char *name, sts_dns_cb cb, void *arg);
	void (*fetch)(void *ctx, const char *domain, const char *const *addrs, size_t n_addrs,
		      sts_fetch_cb cb, void *arg);
};

struct sts_engine_opts {
	struct sts_dns *dns;            /* used when io is NULL */
	struct sts_fetcher *fetcher;    /* used when io is NULL */
	const struct sts_engine_io *io; /* fakes for tests, or NULL */
	struct sts_cache *cache;        /* required */
	const struct sts_clock *clock;  /* NULL: time(2) */
	struct sts_logger log;
	unsigned negative_ttl;          /* seconds "no policy" is remembered; 0: 300 */
	unsigned backoff;               /* seconds between failed fetches of one id; min and default 300 */
};

enum sts_lookup_status {
	STS_LOOKUP_POLICY = 0,     /* enforce or testing policy in force */
	STS_LOOKUP_NONE,           /* a mode none policy in force (rule 50) */
	STS_LOOKUP_NO_POLICY,      /* no usable policy (absent, invalid, unfetchable) */
	STS_LOOKUP_TEMPFAIL,       /* temporary failure and nothing cached */
};

enum sts_lookup_source {
	STS_SOURCE_FETCH = 0,      /* fetched by this lookup */
	STS_SOURCE_CACHE,          /* from the cache */
};

struct sts_lookup_result {
	enum sts_lookup_status status;
	const char *domain;               /* normalised policy domain */
	const struct sts_policy *policy;  /* in force (POLICY, NONE), else NULL */
	const char *id;                   /* id of the policy in force, or "" */
	enum sts_lookup_source source;
	int64_t fetched_at;               /* of the policy in force */
	int64_t expires_at;               /* fetched_at + max_age */
	/* Why there is no policy, or (with a cached policy in force) why it
	 * could not be refreshed; NULL when nothing went wrong. */
	const char *error_code;           /* "txt.rrset.none", "fetch.tls.name", ... */
	const char *error_message;
	const char *tlsrpt_type;          /* RFC 8460 result type or NULL */
};

/* Valid only while the callback runs. */
typedef void (*sts_lookup_cb)(void *arg, const struct sts_lookup_result *r);

struct sts_engine;

int sts_engine_new(const struct sts_engine_opts *opts, struct sts_engine **out);
/* Pending lookups complete with TEMPFAIL "shutting down"; *e becomes NULL.
 * A DNS query, fetch or cache get still in flight keeps its small job
 * record until it calls back (sts_dns_free and sts_fetcher_free call back
 * with "cancelled"), so those may be freed before or after the engine;
 * I/O seams in struct sts_engine_io must likewise call back eventually. */
void sts_engine_free(struct sts_engine **e);

/* Looks up the policy in force for domain (any case, trailing dot, U-labels). */
void sts_engine_lookup(struct sts_engine *e, const char *domain, sts_lookup_cb cb, void *arg);

/* Like sts_engine_lookup, but fetches the policy again even when the TXT id
 * equals the cached one (proactive refresh, RFC 8461 section 10.2): a policy
 * changed without a new id is picked up, and max_age counts from now. The
 * back-off of rule 34 still applies; a failure keeps the cached policy. A
 * lookup of the domain already in flight is joined instead. */
void sts_engine_refresh(struct sts_engine *e, const char *domain, sts_lookup_cb cb, void *arg);

struct sts_engine_stats {
	unsigned long txt_queries;
	unsigned long fetches;
	unsigned long coalesced;      /* lookups that joined one in flight */
	unsigned long cache_hits;
};
void sts_engine_stats(const struct sts_engine *e, struct sts_engine_stats *out);

const char *sts_lookup_status_name(enum sts_lookup_status s);  /* "policy", "none", ... */

#endif
