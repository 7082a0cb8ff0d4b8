/* metrics.h: Prometheus metrics of mta-stsd.
 *
 * The server counts into a struct stsd_metrics it owns (plain integers on
 * the loop thread: no locks, no atomics); stsd_metrics_render writes the
 * text exposition format (version 0.0.4) and stsd_metrics_http serves it at
 * GET /metrics on its own listener (the `metrics` configuration key), on
 * the daemon's libuv loop. Anything else gets 404; a request larger than
 * 8 KiB is answered 431, one slower than 5 s 408, and the connection closed.
 *
 * Metric names (all prefixed mtasts_):
 *   requests_total{result="ok|notfound|temp|perm"}           counter
 *   request_duration_seconds (histogram, buckets below)       histogram
 *   answer_cache_hits_total / answer_cache_misses_total        counter
 *   fetches_total{outcome="ok|<error code>"}                   counter
 *   proactive_refreshes_total{outcome="ok|failed"}             counter
 *   answer_cache_entries, connections                          gauge
 *   backend_up (1 when the policy cache backend is usable)     gauge
 *   build_info{version="..."} 1                                gauge
 */
#ifndef STSD_METRICS_H
#define STSD_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <mtasts/buf.h>
#include <mtasts/log.h>

enum stsd_result {
	STSD_RESULT_OK = 0,
	STSD_RESULT_NOTFOUND,
	STSD_RESULT_TEMP,
	STSD_RESULT_PERM,
	STSD_RESULT_N
};

/* Upper bounds of the latency histogram, in microseconds; +Inf is implied. */
#define STSD_LATENCY_BUCKETS_US \
	{ 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 500000, 1000000, 5000000 }
#define STSD_LATENCY_N 13

#define STSD_OUTCOME_MAX 48   /* distinct fetch outcomes kept; later ones count as "other" */
#define STSD_OUTCOME_LEN 48

struct stsd_outcome {
	char name[STSD_OUTCOME_LEN];
	uint64_t count;
};

struct stsd_metrics {
	uint64_t requests[STSD_RESULT_N];
	uint64_t latency_buckets[STSD_LATENCY_N + 1];   /* last: +Inf; not cumulative */
	uint64_t latency_sum_us;
	uint64_t latency_count;
	uint64_t answer_hits, answer_misses;
	struct stsd_outcome fetches[STSD_OUTCOME_MAX];
	size_t n_fetches;
	uint64_t fetches_other;
	uint64_t proactive_ok, proactive_failed;
	uint64_t answer_entries;    /* gauge */
	uint64_t connections;       /* gauge */
	int backend_up;             /* gauge: 1 or 0 */
	const char *version;        /* for build_info; borrowed */
};

/* Counts one answered request. */
void stsd_metrics_request(struct stsd_metrics *m, enum stsd_result r, uint64_t latency_us);
/* Counts one fetch outcome: "ok" or an error code such as "fetch.tls.name".
 * Codes are copied (truncated to STSD_OUTCOME_LEN - 1). */
void stsd_metrics_fetch(struct stsd_metrics *m, const char *outcome);
/* Appends the exposition text to out. STS_OK or STS_ETOOBIG/STS_ENOMEM. */
int stsd_metrics_render(const struct stsd_metrics *m, struct sts_buf *out);

struct stsd_metrics_http;
/* Binds host:port (numeric address or name) on loop, serving m (borrowed;
 * must outlive the listener). Returns 0 or -1 with a message in err. */
int stsd_metrics_http_start(uv_loop_t *loop, const char *host, uint16_t port,
			    const struct stsd_metrics *m, const struct sts_logger *log,
			    struct stsd_metrics_http **out, char *err, size_t errsz);
/* Closes the listener and open connections (handles close on the next loop
 * turn; memory is freed then). *h becomes NULL. */
void stsd_metrics_http_stop(struct stsd_metrics_http **h);

#endif
