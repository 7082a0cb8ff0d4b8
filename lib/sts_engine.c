/* sts_engine.c: the RFC 8461 sender state machine (see engine.h).
 *
 * One job per domain in flight: later lookups of the same domain join it as
 * waiters (coalescing), so N concurrent lookups cost one TXT query and at
 * most one fetch. A job walks: cache -> TXT -> (addresses -> HTTPS ->
 * parse -> store) and finishes once, answering every waiter. The decisions
 * follow matrix B.2 of the requirements: a valid cached policy outlives
 * every failure, a fetched "mode: none" replaces it, a vanished TXT record
 * drops a cached "none" policy. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/engine.h>
#include <mtasts/status.h>

#define DOMAIN_MAX (STS_HOST_MAX + 1)
#define REMEMBER_MAX 65536   /* bound on negative-cache and back-off entries */

/* A remembered failure: "no policy" for a domain, or a failed fetch of one
 * (domain, id). Kept until `until`. */
struct memo {
	char key[DOMAIN_MAX + STS_ID_MAX + 2];
	int64_t until;
	char code[48];
	char message[320];
	const char *tlsrpt;
	struct memo *next;
};

struct memo_table {
	struct memo *buckets[1024];
	size_t count;
};

struct waiter {
	sts_lookup_cb cb;
	void *arg;
	struct waiter *next;
};

struct job {
	struct sts_engine *e;
	char domain[DOMAIN_MAX];
	struct waiter *waiters, **waiters_tail;
	struct job *next;              /* in the engine's in-flight list */

	bool have_cached;              /* a readable cache entry exists */
	bool cached_valid;             /* ... and it is unexpired and parses */
	struct sts_cache_entry cached;
	struct sts_policy cached_policy;

	char id[STS_ID_MAX + 1];       /* id from the TXT record */
	struct sts_policy fetched;     /* valid when have_fetched */
	bool have_fetched;
	int64_t fetched_at;
	bool force;                    /* refresh: fetch even when the id is unchanged */

	char code[48];                 /* why no policy / why not refreshed */
	char message[512];
	const char *tlsrpt;

	/* sts_engine_free answered the waiters while an I/O call (cache get,
	 * TXT, addresses or fetch: one at a time) still held the job. e is
	 * then NULL and the job is freed when that call returns. */
	bool orphan;
};

struct sts_engine {
	struct sts_engine_io io;
	struct sts_cache *cache;
	const struct sts_clock *clock;
	struct sts_logger log;
	unsigned negative_ttl;
	unsigned backoff;
	struct job *jobs;
	struct memo_table negative;    /* domain -> no policy */
	struct memo_table failed;      /* "domain id" -> last fetch failure */
	struct sts_engine_stats stats;
};

/* --- remembered failures ------------------------------------------------ */

static size_t
memo_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)(h % 1024);
}

static const struct memo *
memo_get(struct memo_table *t, const char *key, int64_t now)
{
	for (struct memo **pp = &t->buckets[memo_hash(key)]; *pp != NULL;) {
		struct memo *m = *pp;
		if (m->until <= now) {          /* expired: prune on the way */
			*pp = m->next;
			free(m);
			t->count--;
			continue;
		}
		if (strcmp(m->key, key) == 0)
			return m;
		pp = &m->next;
	}
	return NULL;
}

static void
memo_clear(struct memo_table *t)
{
	for (size_t i = 0; i < 1024; i++) {
		while (t->buckets[i] != NULL) {
			struct memo *m = t->buckets[i];
			t->buckets[i] = m->next;
			free(m);
		}
	}
	t->count = 0;
}

static void
memo_put(struct memo_table *t, const char *key, int64_t until, const char *code,
	 const char *message, const char *tlsrpt)
{
	if (t->count >= REMEMBER_MAX)
		memo_clear(t);   /* bounded memory beats perfect recall */
	struct memo **pp = &t->buckets[memo_hash(key)];
	struct memo *m = *pp;
	while (m != NULL && strcmp(m->key, key) != 0)
		m = m->next;
	if (m == NULL) {
		m = calloc(1, sizeof *m);
		if (m == NULL)
			return;
		snprintf(m->key, sizeof m->key, "%s", key);
		m->next = *pp;
		*pp = m;
		t->count++;
	}
	m->until = until;
	snprintf(m->code, sizeof m->code, "%s", code);
	snprintf(m->message, sizeof m->message, "%s", message);
	m->tlsrpt = tlsrpt;
}

static void
memo_del(struct memo_table *t, const char *key)
{
	for (struct memo **pp = &t->buckets[memo_hash(key)]; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->key, key) == 0) {
			struct memo *m = *pp;
			*pp = m->next;
			free(m);
			t->count--;
			return;
		}
	}
}

/* --- default I/O: the real DNS and fetch modules ------------------------- */

struct real_io {
	struct sts_dns *dns;
	struct sts_fetcher *fetcher;
};

static void
io_txt(void *ctx, const char *name, sts_dns_cb cb, void *arg)
{
	sts_dns_txt(((struct real_io *)ctx)->dns, name, cb, arg);
}

static void
io_addrs(void *ctx, const char *name, sts_dns_cb cb, void *arg)
{
	sts_dns_addrs(((struct real_io *)ctx)->dns, name, cb, arg);
}

/* Weak: a program that gives the engine its own I/O (mta-stsd loads the
 * HTTPS stack only when it first needs it) does not link libcurl for the
 * default I/O it never uses. */
#pragma weak sts_fetch_policy

static void
io_fetch(void *ctx, const char *domain, const char *const *addrs, size_t n, sts_fetch_cb cb,
	 void *arg)
{
	if (sts_fetch_policy == NULL) {
		struct sts_fetch_result r = { .error = STS_FETCH_INTERNAL };
		snprintf(r.message, sizeof r.message, "no HTTPS fetcher in this program");
		cb(arg, &r);
		return;
	}
	sts_fetch_policy(((struct real_io *)ctx)->fetcher, domain, addrs, n, cb, arg);
}

/* --- finishing ------------------------------------------------------------ */

static int64_t
now_of(const struct sts_engine *e)
{
	return sts_clock_now(e->clock);
}

static void
job_free(struct job *j)
{
	while (j->waiters != NULL) {
		struct waiter *w = j->waiters;
		j->waiters = w->next;
		free(w);
	}
	sts_cache_entry_clear(&j->cached);
	sts_policy_clear(&j->cached_policy);
	sts_policy_clear(&j->fetched);
	free(j);
}

static void
job_unlink(struct job *j)
{
	for (struct job **pp = &j->e->jobs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			return;
		}
	}
}

static void
set_error(struct job *j, const char *code, const char *tlsrpt, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
set_error(struct job *j, const char *code, const char *tlsrpt, const char *fmt, ...)
{
	snprintf(j->code, sizeof j->code, "%s", code);
	j->tlsrpt = tlsrpt;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->message, sizeof j->message, fmt, ap);
	va_end(ap);
}

/* Answers every waiter. The job leaves the in-flight list first, so a
 * callback may start a new lookup of the same domain. */
static void
finish(struct job *j, const struct sts_lookup_result *r)
{
	job_unlink(j);
	for (struct waiter *w = j->waiters; w != NULL; w = w->next)
		w->cb(w->arg, r);
	if (j->orphan)
		j->e = NULL;   /* freed by reaped() when its I/O call returns */
	else
		job_free(j);
}

/* True (and the job freed) when the engine is gone: every I/O callback
 * asks first. */
static bool
reaped(struct job *j)
{
	if (j->e != NULL)
		return false;
	job_free(j);
	return true;
}

static void
finish_status(struct job *j, enum sts_lookup_status status)
{
	struct sts_lookup_result r = {
		.status = status,
		.domain = j->domain,
		.id = "",
		.error_code = j->code[0] ? j->code : NULL,
		.error_message = j->code[0] ? j->message : NULL,
		.tlsrpt_type = j->tlsrpt,
	};
	finish(j, &r);
}

static enum sts_lookup_status
status_of(const struct sts_policy *p)
{
	return p->mode == STS_MODE_NONE ? STS_LOOKUP_NONE : STS_LOOKUP_POLICY;
}

/* Applies the cached policy; an error set on the job says why it was not
 * refreshed (rule 38, rule 40). */
static void
finish_cached(struct job *j)
{
	j->e->stats.cache_hits++;
	struct sts_lookup_result r = {
		.status = status_of(&j->cached_policy),
		.domain = j->domain,
		.policy = &j->cached_policy,
		.id = j->cached.id,
		.source = STS_SOURCE_CACHE,
		.fetched_at = j->cached.fetched_at,
		.expires_at = j->cached.fetched_at + (int64_t)j->cached.max_age,
		.error_code = j->code[0] ? j->code : NULL,
		.error_message = j->code[0] ? j->message : NULL,
		.tlsrpt_type = j->tlsrpt,
	};
	if (j->code[0] != '\0')
		sts_log(&j->e->log,
			j->cached_policy.mode == STS_MODE_NONE ? STS_LOG_DEBUG : STS_LOG_WARNING,
			"%s: could not refresh the policy (%s: %s); applying cached policy id %s"
			" until it expires", j->domain, j->code, j->message, j->cached.id);
	finish(j, &r);
}

static void
finish_fetched(struct job *j)
{
	struct sts_lookup_result r = {
		.status = status_of(&j->fetched),
		.domain = j->domain,
		.policy = &j->fetched,
		.id = j->id,
		.source = STS_SOURCE_FETCH,
		.fetched_at = j->fetched_at,
		.expires_at = j->fetched_at + (int64_t)j->fetched.max_age,
	};
	finish(j, &r);
}

/* --- the walk ---------------------------------------------------------- */

static void on_addrs(void *arg, const struct sts_dns_answer *ans);
static void on_fetch(void *arg, const struct sts_fetch_result *res);

static void
backoff_key(const struct job *j, char *key, size_t n)
{
	snprintf(key, n, "%s %s", j->domain, j->id);
}

/* No usable TXT record (rules 8, 9): keep a valid cached policy, except a
 * cached "none" policy, which is dropped (rule 67). */
static void
no_record(struct job *j)
{
	struct sts_engine *e = j->e;
	if (j->cached_valid) {
		if (j->cached_policy.mode == STS_MODE_NONE) {
			if (e->cache != NULL)
				e->cache->ops->del(e->cache, j->domain, NULL, NULL);
			sts_log(&e->log, STS_LOG_INFO, "%s: TXT record gone and cached policy is"
				" mode none: dropping it", j->domain);
			finish_status(j, STS_LOOKUP_NO_POLICY);
			return;
		}
		finish_cached(j);
		return;
	}
	memo_put(&e->negative, j->domain, now_of(e) + e->negative_ttl, j->code, j->message,
		 j->tlsrpt);
	sts_log(&e->log, STS_LOG_DEBUG, "%s: no MTA-STS policy (%s: %s)", j->domain, j->code,
		j->message);
	finish_status(j, STS_LOOKUP_NO_POLICY);
}

/* A fetch failed (any reason): back off this id (rule 34), keep a valid
 * cached policy (rule 38), else deliver without MTA-STS (rule 37). */
static void
fetch_failed(struct job *j, enum sts_fetch_error err, const char *message)
{
	struct sts_engine *e = j->e;
	set_error(j, sts_fetch_error_code(err), sts_fetch_tlsrpt_type(err), "%s", message);
	char key[sizeof ((struct memo *)0)->key];
	backoff_key(j, key, sizeof key);
	memo_put(&e->failed, key, now_of(e) + e->backoff, j->code, j->message, j->tlsrpt);
	if (j->cached_valid) {
		finish_cached(j);
		return;
	}
	sts_log(&e->log, STS_LOG_WARNING, "%s: policy id %s could not be fetched (%s: %s);"
		" delivering without MTA-STS", j->domain, j->id, j->code, j->message);
	finish_status(j, STS_LOOKUP_NO_POLICY);
}

static void
on_txt(void *arg, const struct sts_dns_answer *ans)
{
	struct job *j = arg;
	if (reaped(j))
		return;
	struct sts_engine *e = j->e;

	if (ans->rcode == STS_DNS_TEMPFAIL) {
		set_error(j, "dns.txt.temporary", NULL, "temporary DNS failure: %s",
			  ans->detail != NULL ? ans->detail : "no answer");
		if (j->cached_valid) {
			finish_cached(j);
			return;
		}
		sts_log(&e->log, STS_LOG_WARNING, "%s: %s", j->domain, j->message);
		finish_status(j, STS_LOOKUP_TEMPFAIL);
		return;
	}
	if (ans->rcode != STS_DNS_OK) {
		set_error(j, "txt.rrset.none", NULL, "no TXT record at _mta-sts.%s (%s)", j->domain,
			  ans->rcode == STS_DNS_NXDOMAIN ? "NXDOMAIN" : "no TXT data");
		no_record(j);
		return;
	}

	struct sts_diags *d = malloc(sizeof *d);
	if (d == NULL) {
		set_error(j, "internal", NULL, "out of memory");
		if (j->cached_valid)
			finish_cached(j);
		else
			finish_status(j, STS_LOOKUP_TEMPFAIL);
		return;
	}
	sts_diags_init(d);
	struct sts_txt_record rec;
	int rc = sts_txt_select(ans->rrs, ans->n_rrs, 0, &rec, d);
	if (rc != STS_OK) {
		const struct sts_diag *g = sts_diags_first_error(d);
		set_error(j, g != NULL ? g->code : "txt.invalid", NULL, "_mta-sts.%s: %s", j->domain,
			  g != NULL ? g->message : sts_strerror(rc));
		sts_txt_record_clear(&rec);
		free(d);
		no_record(j);
		return;
	}
	snprintf(j->id, sizeof j->id, "%s", rec.id);
	sts_txt_record_clear(&rec);
	free(d);

	if (j->cached_valid && strcmp(j->cached.id, j->id) == 0 && !j->force) {
		finish_cached(j);
		return;
	}
	char key[sizeof ((struct memo *)0)->key];
	backoff_key(j, key, sizeof key);
	const struct memo *m = memo_get(&e->failed, key, now_of(e));
	if (m != NULL) {
		/* Rule 34: at most one attempt per five minutes for this id. */
		set_error(j, m->code, m->tlsrpt, "%s (not retried before the back-off ends)",
			  m->message);
		if (j->cached_valid)
			finish_cached(j);
		else
			finish_status(j, STS_LOOKUP_NO_POLICY);
		return;
	}
	char host[DOMAIN_MAX + 8];
	snprintf(host, sizeof host, "mta-sts.%s", j->domain);
	e->io.addrs(e->io.ctx, host, on_addrs, j);
}

static void
on_addrs(void *arg, const struct sts_dns_answer *ans)
{
	struct job *j = arg;
	if (reaped(j))
		return;
	struct sts_engine *e = j->e;
	char msg[300];
	if (ans->rcode == STS_DNS_TEMPFAIL) {
		snprintf(msg, sizeof msg, "address lookup of mta-sts.%s failed: %s", j->domain,
			 ans->detail != NULL ? ans->detail : "temporary failure");
		fetch_failed(j, STS_FETCH_DNS_TEMP, msg);
		return;
	}
	if (ans->rcode != STS_DNS_OK || ans->n_addrs == 0) {
		snprintf(msg, sizeof msg, "mta-sts.%s has no A or AAAA record: the policy cannot"
			 " be fetched", j->domain);
		fetch_failed(j, STS_FETCH_NO_ADDRESS, msg);
		return;
	}
	e->stats.fetches++;
	e->io.fetch(e->io.ctx, j->domain, ans->addrs, ans->n_addrs, on_fetch, j);
}

static void
on_fetch(void *arg, const struct sts_fetch_result *res)
{
	struct job *j = arg;
	if (reaped(j))
		return;
	struct sts_engine *e = j->e;
	if (res->error != STS_FETCH_OK) {
		fetch_failed(j, res->error, res->message);
		return;
	}
	struct sts_diags *d = malloc(sizeof *d);
	if (d == NULL) {
		fetch_failed(j, STS_FETCH_INTERNAL, "out of memory");
		return;
	}
	sts_diags_init(d);
	int rc = sts_policy_parse(res->body, res->body_len, 0, &j->fetched, d);
	if (rc != STS_OK) {
		const struct sts_diag *g = sts_diags_first_error(d);
		char msg[400];
		if (g != NULL)
			snprintf(msg, sizeof msg, "policy invalid at line %u, column %u: %s (%s)",
				 g->line, g->column, g->message, g->code);
		else
			snprintf(msg, sizeof msg, "policy could not be parsed: %s", sts_strerror(rc));
		free(d);
		sts_policy_clear(&j->fetched);
		fetch_failed(j, STS_FETCH_POLICY_INVALID, msg);
		return;
	}
	free(d);
	j->have_fetched = true;
	j->fetched_at = now_of(e);

	char key[sizeof ((struct memo *)0)->key];
	backoff_key(j, key, sizeof key);
	memo_del(&e->failed, key);
	memo_del(&e->negative, j->domain);

	/* max_age 0: use once, do not store (table B.1). */
	if (e->cache != NULL && j->fetched.max_age > 0) {
		struct sts_cache_entry ent = { .fetched_at = j->fetched_at,
					       .max_age = j->fetched.max_age };
		snprintf(ent.domain, sizeof ent.domain, "%s", j->domain);
		snprintf(ent.id, sizeof ent.id, "%s", j->id);
		snprintf(ent.mode, sizeof ent.mode, "%s", sts_mode_name(j->fetched.mode));
		ent.policy = (char *)res->body;
		ent.policy_len = res->body_len;
		e->cache->ops->put(e->cache, &ent, NULL, NULL);
	}
	if (j->cached_valid && strcmp(j->cached.id, j->id) == 0 &&
	    (j->cached.policy_len != res->body_len ||
	     memcmp(j->cached.policy, res->body, res->body_len) != 0))
		/* Senders that do not refetch keep the old one until it expires. */
		sts_log(&e->log, STS_LOG_WARNING, "%s: the policy changed but its id %s did not:"
			" the domain must publish a new id with every change (rule 5)", j->domain,
			j->id);
	sts_log(&e->log, STS_LOG_INFO, "%s: fetched policy id %s (mode %s, max_age %u)",
		j->domain, j->id, sts_mode_name(j->fetched.mode), j->fetched.max_age);
	finish_fetched(j);
}

static void
on_cache_get(void *arg, int status, const struct sts_cache_entry *ent)
{
	struct job *j = arg;
	if (reaped(j))
		return;
	struct sts_engine *e = j->e;
	int64_t now = now_of(e);

	/* Debug only: a backend that is down fails every lookup, and the
	 * backend itself logs the outage once. */
	if (status < 0)
		sts_log(&e->log, STS_LOG_DEBUG, "%s: cache lookup failed; asking the network",
			j->domain);
	if (status == 1 && ent != NULL) {
		j->have_cached = true;
		j->cached = *ent;
		j->cached.policy = NULL;   /* never the cache's own buffer */
		j->cached.policy = malloc(ent->policy_len + 1);
		if (j->cached.policy != NULL) {
			memcpy(j->cached.policy, ent->policy, ent->policy_len);
			j->cached.policy[ent->policy_len] = '\0';
			struct sts_diags *d = malloc(sizeof *d);
			if (d != NULL) {
				sts_diags_init(d);
				j->cached_valid =
					sts_policy_parse(j->cached.policy, ent->policy_len, 0,
							 &j->cached_policy, d) == STS_OK &&
					now < ent->fetched_at + (int64_t)ent->max_age;
				free(d);
			}
		}
	}
	if (!j->cached_valid) {
		const struct memo *m = memo_get(&e->negative, j->domain, now);
		if (m != NULL) {
			set_error(j, m->code, m->tlsrpt, "%s", m->message);
			finish_status(j, STS_LOOKUP_NO_POLICY);
			return;
		}
	}
	char name[DOMAIN_MAX + 10];
	snprintf(name, sizeof name, "_mta-sts.%s", j->domain);
	e->stats.txt_queries++;
	e->io.txt(e->io.ctx, name, on_txt, j);
}

/* --- public ------------------------------------------------------------ */

int
sts_engine_new(const struct sts_engine_opts *o, struct sts_engine **out)
{
	*out = NULL;
	if (o->io == NULL && (o->dns == NULL || o->fetcher == NULL))
		return STS_EINVAL;
	struct sts_engine *e = calloc(1, sizeof *e);
	if (e == NULL)
		return STS_ENOMEM;
	if (o->io != NULL) {
		e->io = *o->io;
	} else {
		struct real_io *r = malloc(sizeof *r);
		if (r == NULL) {
			free(e);
			return STS_ENOMEM;
		}
		r->dns = o->dns;
		r->fetcher = o->fetcher;
		e->io = (struct sts_engine_io){ .ctx = r, .txt = io_txt, .addrs = io_addrs,
						.fetch = io_fetch };
	}
	e->cache = o->cache;
	e->clock = o->clock;
	e->log = o->log;
	e->negative_ttl = o->negative_ttl ? o->negative_ttl : 300;
	e->backoff = o->backoff < 300 ? 300 : o->backoff;
	*out = e;
	return STS_OK;
}

void
sts_engine_free(struct sts_engine **ep)
{
	if (ep == NULL || *ep == NULL)
		return;
	struct sts_engine *e = *ep;
	while (e->jobs != NULL) {
		/* Every job in flight waits for one I/O call, which holds it. */
		struct job *j = e->jobs;
		set_error(j, "internal", NULL, "shutting down");
		j->orphan = true;
		finish_status(j, STS_LOOKUP_TEMPFAIL);
	}
	memo_clear(&e->negative);
	memo_clear(&e->failed);
	if (e->io.txt == io_txt)
		free(e->io.ctx);
	free(e);
	*ep = NULL;
}

static void
start_lookup(struct sts_engine *e, const char *domain, bool force, sts_lookup_cb cb, void *arg)
{
	char norm[DOMAIN_MAX];
	struct sts_lookup_result bad = { .status = STS_LOOKUP_NO_POLICY, .domain = domain, .id = "" };
	if (sts_host_normalize(domain, strlen(domain), norm) != STS_OK) {
		bad.error_code = "domain.invalid";
		bad.error_message = "not a valid domain name";
		cb(arg, &bad);
		return;
	}
	if (sts_host_is_ip_literal(norm)) {
		/* Rule 42: no policy applies to address literals. */
		bad.domain = norm;
		bad.error_code = "domain.address_literal";
		bad.error_message = "an IP address has no MTA-STS policy";
		cb(arg, &bad);
		return;
	}

	struct waiter *w = calloc(1, sizeof *w);
	if (w == NULL) {
		bad.status = STS_LOOKUP_TEMPFAIL;
		bad.error_code = "internal";
		bad.error_message = "out of memory";
		cb(arg, &bad);
		return;
	}
	w->cb = cb;
	w->arg = arg;
	for (struct job *j = e->jobs; j != NULL; j = j->next) {
		if (strcmp(j->domain, norm) == 0) {
			*j->waiters_tail = w;
			j->waiters_tail = &w->next;
			e->stats.coalesced++;
			return;
		}
	}
	struct job *j = calloc(1, sizeof *j);
	if (j == NULL) {
		free(w);
		bad.status = STS_LOOKUP_TEMPFAIL;
		bad.error_code = "internal";
		bad.error_message = "out of memory";
		cb(arg, &bad);
		return;
	}
	j->e = e;
	j->force = force;
	snprintf(j->domain, sizeof j->domain, "%s", norm);
	j->waiters = w;
	j->waiters_tail = &w->next;
	j->next = e->jobs;
	e->jobs = j;
	if (e->cache != NULL)
		e->cache->ops->get(e->cache, j->domain, on_cache_get, j);
	else
		on_cache_get(j, 0, NULL);
}

void
sts_engine_lookup(struct sts_engine *e, const char *domain, sts_lookup_cb cb, void *arg)
{
	start_lookup(e, domain, false, cb, arg);
}

void
sts_engine_refresh(struct sts_engine *e, const char *domain, sts_lookup_cb cb, void *arg)
{
	start_lookup(e, domain, true, cb, arg);
}

void
sts_engine_stats(const struct sts_engine *e, struct sts_engine_stats *out)
{
	*out = e->stats;
}

const char *
sts_lookup_status_name(enum sts_lookup_status s)
{
	switch (s) {
	case STS_LOOKUP_POLICY: return "policy";
	case STS_LOOKUP_NONE: return "none";
	case STS_LOOKUP_NO_POLICY: return "no-policy";
	case STS_LOOKUP_TEMPFAIL: return "error";
	}
	return "error";
}
