/* proactive.h: proactive policy refresh of mta-stsd (RFC 8461 section 10.2;
 * rules 39, 40, 71, 72), the peer's proactive_policy_fetching.
 *
 * Every interval (jittered by +-10 %, the first run 0.5-1 x min(interval,
 * 30 s) after start) the runner scans the policy cache and refreshes every
 * entry older than interval / grace_ratio, or expiring before the next run.
 * Unlike the peer it really fetches the policy again even when the TXT id
 * is unchanged (sts_engine_refresh), so a policy edited without a new id is
 * picked up and max_age counts from the refetch. The refreshes of one run
 * start in random order, spread evenly over min(interval / 4, 1 h), with at
 * most concurrency_limit in flight: a fleet restarted together does not
 * hammer the policy hosts at the same second.
 *
 * Failures are logged (warning; debug for mode none, rule 40) and counted
 * per domain; after STSD_PROACTIVE_ALERT_AFTER failed runs in a row, or when
 * the cached policy will expire before the next run, an error line says so
 * (rule 72). Entries that expired more than one interval ago are not
 * refreshed (a domain nobody mails any more is let go).
 */
#ifndef STSD_PROACTIVE_H
#define STSD_PROACTIVE_H

#include <uv.h>

#include <mtasts/cache.h>
#include <mtasts/engine.h>
#include <mtasts/log.h>

#include "config.h"
#include "metrics.h"

#define STSD_PROACTIVE_ALERT_AFTER 3

/* Told about every refresh result, so the daemon's answers follow. */
typedef void (*stsd_proactive_result_cb)(void *ctx, const char *domain,
					 const struct sts_lookup_result *r);

struct stsd_proactive_runner;

/* Starts the timer; everything passed is borrowed and must outlive the
 * runner (settings are copied). Returns 0 or -1 (out of memory). */
int stsd_proactive_start(uv_loop_t *loop, const struct stsd_proactive *settings,
			 struct sts_cache *cache, struct sts_engine *engine,
			 const struct sts_logger *log, struct stsd_metrics *metrics,
			 stsd_proactive_result_cb on_result, void *ctx,
			 struct stsd_proactive_runner **out);
/* Stops scheduling; refreshes in flight complete without effect. Handles
 * close on the next loop turn. *r becomes NULL. */
void stsd_proactive_stop(struct stsd_proactive_runner **r);

#endif
