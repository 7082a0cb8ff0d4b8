/* proactive.c: proactive policy refresh (see proactive.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proactive.h"

#define FAIL_BUCKETS 256u
#define SPREAD_MAX_MS 3600000u       /* a run's refreshes start within this */
#define FIRST_RUN_MAX_MS 30000u
#define ITEMS_MAX 4000000u           /* bound on one run's queue */

struct item {
	int64_t expires_at;
	bool mode_none;
	char id[STS_ID_MAX + 1];
	char domain[STS_HOST_MAX + 1];
};

/* Consecutive failed refreshes of one domain. */
struct fail {
	struct fail *next;
	unsigned count;
	char domain[STS_HOST_MAX + 1];
};

struct stsd_proactive_runner {
	uv_loop_t *loop;
	struct stsd_proactive set;
	struct sts_cache *cache;
	struct sts_engine *engine;
	const struct sts_logger *log;
	struct stsd_metrics *metrics;
	stsd_proactive_result_cb on_result;
	void *ctx;

	uv_timer_t cycle, tick;
	int handles_open;
	bool stopped, scanning;
	unsigned seed;

	struct item *items;             /* this run's due domains, shuffled */
	size_t n_items, cap_items, next_item;
	size_t scanned;
	unsigned inflight;
	size_t run_ok, run_failed;
	struct fail *fails[FAIL_BUCKETS];
};

struct refresh {
	struct stsd_proactive_runner *r;
	struct item it;
};

static void run_next(struct stsd_proactive_runner *r);

static double
uniform(struct stsd_proactive_runner *r)
{
	return (double)rand_r(&r->seed) / ((double)RAND_MAX + 1.0);
}

static unsigned
fail_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h & (FAIL_BUCKETS - 1);
}

/* Returns the new count of consecutive failures (0 after a success). */
static unsigned
fail_note(struct stsd_proactive_runner *r, const char *domain, bool failed)
{
	struct fail **pp = &r->fails[fail_hash(domain)];
	while (*pp != NULL && strcmp((*pp)->domain, domain) != 0)
		pp = &(*pp)->next;
	if (!failed) {
		if (*pp != NULL) {
			struct fail *f = *pp;
			*pp = f->next;
			free(f);
		}
		return 0;
	}
	if (*pp == NULL) {
		struct fail *f = calloc(1, sizeof *f);
		if (f == NULL)
			return 1;
		snprintf(f->domain, sizeof f->domain, "%s", domain);
		*pp = f;
	}
	return ++(*pp)->count;
}

static void
fails_clear(struct stsd_proactive_runner *r)
{
	for (unsigned i = 0; i < FAIL_BUCKETS; i++) {
		while (r->fails[i] != NULL) {
			struct fail *f = r->fails[i];
			r->fails[i] = f->next;
			free(f);
		}
	}
}

static void
runner_free_if_done(struct stsd_proactive_runner *r)
{
	if (!r->stopped || r->handles_open > 0 || r->inflight > 0 || r->scanning)
		return;
	fails_clear(r);
	free(r->items);
	free(r);
}

static void
handle_closed(uv_handle_t *h)
{
	struct stsd_proactive_runner *r = h->data;
	r->handles_open--;
	runner_free_if_done(r);
}

static uint64_t
interval_ms(const struct stsd_proactive_runner *r)
{
	return (uint64_t)r->set.interval_s * 1000u;
}

static void
refresh_done(void *arg, const struct sts_lookup_result *res)
{
	struct refresh *f = arg;
	struct stsd_proactive_runner *r = f->r;
	r->inflight--;
	if (r->stopped) {
		free(f);
		runner_free_if_done(r);
		return;
	}
	const struct item *it = &f->it;
	bool failed = res->error_code != NULL;
	unsigned streak = fail_note(r, it->domain, failed);
	if (failed) {
		r->run_failed++;
		r->metrics->proactive_failed++;
		sts_log(r->log, it->mode_none ? STS_LOG_DEBUG : STS_LOG_WARNING,
			"%s: proactive refresh failed (%u in a row): %s: %s", it->domain, streak,
			res->error_code, res->error_message ? res->error_message : "");
		int64_t now = (int64_t)time(NULL);
		int64_t expires = res->policy != NULL ? res->expires_at : it->expires_at;
		bool soon = expires < now + (int64_t)r->set.interval_s;
		if (!it->mode_none && (streak >= STSD_PROACTIVE_ALERT_AFTER || soon)) {
			char when[32] = "?";
			time_t t = (time_t)expires;
			struct tm tm;
			if (gmtime_r(&t, &tm) != NULL)
				strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
			sts_log(r->log, STS_LOG_ERROR,
				"ALERT %s: proactive refresh failed %u time%s in a row; the cached"
				" policy id %s %s %s UTC, after which mail to %s is sent without"
				" MTA-STS: check the domain with 'mta-sts check %s'", it->domain,
				streak, streak == 1 ? "" : "s", it->id,
				expires <= now ? "expired at" : "expires at", when, it->domain,
				it->domain);
		}
	} else {
		r->run_ok++;
		r->metrics->proactive_ok++;
		sts_log(r->log, STS_LOG_DEBUG, "%s: proactive refresh: %s", it->domain,
			sts_lookup_status_name(res->status));
	}
	if (r->on_result != NULL)
		r->on_result(r->ctx, it->domain, res);
	free(f);
	run_next(r);
}

/* Starts the next refresh if the spread and the concurrency limit allow;
 * finishes the run when everything has been answered. */
static void
run_next(struct stsd_proactive_runner *r)
{
	if (r->stopped)
		return;
	if (r->next_item >= r->n_items) {
		if (r->inflight == 0 && r->n_items > 0) {
			uv_timer_stop(&r->tick);
			sts_log(r->log, STS_LOG_INFO, "proactive refresh finished: %zu refreshed,"
				" %zu failed", r->run_ok, r->run_failed);
			r->n_items = r->next_item = 0;
		}
		return;
	}
}

static void
on_tick(uv_timer_t *t)
{
	struct stsd_proactive_runner *r = t->data;
	if (r->stopped || r->next_item >= r->n_items)
		return;
	unsigned limit = r->set.concurrency_limit > 0 ? r->set.concurrency_limit : 1;
	if (r->inflight >= limit)
		return;   /* the run stretches rather than exceed the limit */
	struct refresh *f = malloc(sizeof *f);
	if (f == NULL)
		return;
	f->r = r;
	f->it = r->items[r->next_item++];
	r->inflight++;
	sts_engine_refresh(r->engine, f->it.domain, refresh_done, f);
}

static int
scan_each(void *arg, const struct sts_cache_entry *e)
{
	struct stsd_proactive_runner *r = arg;
	if (r->stopped)
		return 1;
	r->scanned++;
	int64_t now = (int64_t)time(NULL);
	int64_t expires = e->fetched_at + (int64_t)e->max_age;
	int64_t iv = (int64_t)r->set.interval_s;
	if (expires < now - iv) {
		sts_log(r->log, STS_LOG_DEBUG, "%s: policy expired long ago: not refreshed",
			e->domain);
		return 0;
	}
	double ratio = r->set.grace_ratio > 0 ? r->set.grace_ratio : 2.0;
	bool old = (double)(now - e->fetched_at) >= (double)iv / ratio;
	bool expiring = expires < now + iv + iv / 10;
	if (!old && !expiring)
		return 0;
	if (r->n_items == r->cap_items) {
		if (r->cap_items >= ITEMS_MAX)
			return 1;
		size_t cap = r->cap_items ? r->cap_items * 2 : 256;
		struct item *v = realloc(r->items, cap * sizeof *v);
		if (v == NULL)
			return 1;
		r->items = v;
		r->cap_items = cap;
	}
	struct item *it = &r->items[r->n_items++];
	memset(it, 0, sizeof *it);
	it->expires_at = expires;
	it->mode_none = strcmp(e->mode, "none") == 0;
	snprintf(it->id, sizeof it->id, "%s", e->id);
	snprintf(it->domain, sizeof it->domain, "%s", e->domain);
	return 0;
}

static void
scan_done(void *arg, int status)
{
	struct stsd_proactive_runner *r = arg;
	r->scanning = false;
	if (r->stopped) {
		runner_free_if_done(r);
		return;
	}
	if (status < 0)
		sts_log(r->log, STS_LOG_WARNING, "proactive refresh: the policy cache could not be"
			" read completely; refreshing the %zu domains read", r->n_items);
	/* Random order, so that no domain is always last. */
	for (size_t i = r->n_items; i > 1; i--) {
		size_t j = (size_t)(uniform(r) * (double)i);
		struct item t = r->items[i - 1];
		r->items[i - 1] = r->items[j];
		r->items[j] = t;
	}
	r->next_item = 0;
	r->run_ok = r->run_failed = 0;
	if (r->n_items == 0) {
		sts_log(r->log, STS_LOG_DEBUG, "proactive refresh: none of %zu cached domains due",
			r->scanned);
		return;
	}
	uint64_t spread = interval_ms(r) / 4;
	if (spread > SPREAD_MAX_MS)
		spread = SPREAD_MAX_MS;
	uint64_t step = spread / r->n_items;
	if (step < 1)
		step = 1;
	sts_log(r->log, STS_LOG_INFO, "proactive refresh: %zu of %zu cached domains due,"
		" spread over %.1f s", r->n_items, r->scanned,
		(double)(step * r->n_items) / 1000.0);
	uv_timer_start(&r->tick, on_tick, 0, step);
}

static void
on_cycle(uv_timer_t *t)
{
	struct stsd_proactive_runner *r = t->data;
	if (r->stopped)
		return;
	uint64_t iv = interval_ms(r);
	uint64_t next = (uint64_t)((double)iv * (0.9 + 0.2 * uniform(r)));
	uv_timer_start(&r->cycle, on_cycle, next > 0 ? next : 1, 0);
	if (r->scanning || r->next_item < r->n_items || r->inflight > 0) {
		sts_log(r->log, STS_LOG_WARNING, "proactive refresh: the previous run is still"
			" going (%zu of %zu started): skipping this one; raise interval or"
			" concurrency_limit", r->next_item, r->n_items);
		return;
	}
	r->n_items = r->next_item = r->scanned = 0;
	r->scanning = true;
	r->cache->ops->scan(r->cache, scan_each, scan_done, r);
}

int
stsd_proactive_start(uv_loop_t *loop, const struct stsd_proactive *settings,
		     struct sts_cache *cache, struct sts_engine *engine,
		     const struct sts_logger *log, struct stsd_metrics *metrics,
		     stsd_proactive_result_cb on_result, void *ctx,
		     struct stsd_proactive_runner **out)
{
	*out = NULL;
	struct stsd_proactive_runner *r = calloc(1, sizeof *r);
	if (r == NULL)
		return -1;
	r->loop = loop;
	r->set = *settings;
	if (r->set.interval_s == 0)
		r->set.interval_s = 1;
	r->cache = cache;
	r->engine = engine;
	r->log = log;
	r->metrics = metrics;
	r->on_result = on_result;
	r->ctx = ctx;
	r->seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16) ^ (unsigned)(uintptr_t)r;
	uv_timer_init(loop, &r->cycle);
	uv_timer_init(loop, &r->tick);
	r->cycle.data = r->tick.data = r;
	r->handles_open = 2;
	uint64_t first = interval_ms(r) < FIRST_RUN_MAX_MS ? interval_ms(r) : FIRST_RUN_MAX_MS;
	first = (uint64_t)((double)first * (0.5 + 0.5 * uniform(r)));
	uv_timer_start(&r->cycle, on_cycle, first > 0 ? first : 1, 0);
	sts_log(log, STS_LOG_INFO, "proactive refresh every %u s (first in %.1f s), at most %u"
		" at a time", r->set.interval_s, (double)first / 1000.0, r->set.concurrency_limit);
	*out = r;
	return 0;
}

void
stsd_proactive_stop(struct stsd_proactive_runner **rp)
{
	struct stsd_proactive_runner *r = *rp;
	if (r == NULL)
		return;
	*rp = NULL;
	r->stopped = true;
	uv_timer_stop(&r->cycle);
	uv_timer_stop(&r->tick);
	uv_close((uv_handle_t *)&r->cycle, handle_closed);
	uv_close((uv_handle_t *)&r->tick, handle_closed);
}
