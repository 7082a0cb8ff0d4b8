/* server.c: the socketmap server of mta-stsd (see server.h). */
#include <errno.h>
#include <inttypes.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <mtasts/engine.h>
#include <mtasts/socketmap.h>
#include <mtasts/status.h>

#include "metrics.h"
#include "netmod.h"
#include "proactive.h"
#include "sd.h"
#include "server.h"

#define MEMO_BUCKETS 4096u

struct memo {
	struct memo *next;               /* hash chain */
	struct memo *lprev, *lnext;      /* recency: head = most recently used */
	enum sts_lookup_status status;   /* POLICY, NONE or NO_POLICY */
	bool has_policy;
	struct sts_policy policy;
	uint64_t stored_ms;              /* uv_now when the engine answered */
	bool stale;                      /* refresh at the next request (read from the cache) */
	char *reply;                     /* the last reply rendered from policy, or NULL */
	size_t reply_len;
	unsigned reply_key;              /* the zone options it was rendered for */
	int64_t expires_at;              /* of the policy (unix seconds); 0 without one */
	char domain[STS_HOST_MAX + 1];
};

struct req;
struct conn;

/* One engine lookup in flight for a domain; requests wait on it. */
struct flight {
	struct flight *next;
	struct stsd_server *srv;
	struct req *waiters;
	char domain[STS_HOST_MAX + 1];
};

struct req {
	struct req *next;                /* in the connection's queue, in request order */
	struct req *fnext;               /* among a flight's waiters */
	struct conn *conn;
	struct flight *flight;           /* waiting on it, or NULL */
	uv_timer_t *timer;               /* zone timeout while waiting, or NULL */
	struct stsd_zone zone;           /* a copy (name NULL): a reload frees the old */
	uint64_t start_ns;               /* uv_hrtime when the request was read */
	bool done;
	struct sts_buf reply;            /* payload, without netstring framing */
	char host[STS_HOST_MAX + 1];
};

struct conn {
	struct conn *prev, *next;
	struct stsd_server *srv;
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
		uv_stream_t stream;
		uv_handle_t handle;
	} u;
	uv_timer_t idle;
	uint64_t last_read;              /* uv_now of the last read */
	uint32_t idle_ms;                /* idle_timeout when accepted */
	uv_shutdown_t shutdown_req;
	struct sts_netstring_dec dec;
	struct req *head, *tail;
	unsigned n_writes;
	unsigned n_queued;               /* requests not yet answered and sent */
	bool paused;                     /* reading stopped: STSD_MAX_PIPELINE reached */
	int closes_pending;
	bool eof, broken, shut, closing;
	unsigned long id;
};

struct wreq {
	uv_write_t w;
	struct conn *conn;
	uv_buf_t b;
	char data[];
};

struct stsd_server {
	const struct stsd_config *cfg;
	const struct sts_logger *log;
	uv_loop_t loop;
	bool loop_ok;
	union {
		uv_tcp_t tcp;
		uv_pipe_t pipe;
		uv_stream_t stream;
		uv_handle_t handle;
	} lis;
	bool lis_ok, is_unix, unix_bound;
	uv_signal_t sig_term, sig_int, sig_hup;
	bool sigs_ok;
	uv_timer_t shutdown_timer;
	bool shutdown_timer_ok;
	void (*hup_fn)(void *);
	void *hup_ctx;

	struct sts_dns *dns;
	struct sts_fetcher *fetcher;     /* made at the first fetch (the module loads then) */
	const struct sts_netmod *net;    /* the network module, once loaded */
	struct sts_fetch_opts fopts;     /* for the fetcher; strings owned below */
	char *fopt_ca_file, *fopt_proxy;
	bool net_failed_logged;
	struct sts_cache *cache;         /* the backend behind an observer (below) */
	struct sts_cache *observed;      /* what the engine uses: counts backend health */
	struct sts_engine *engine;
	struct sts_engine_io io;         /* DNS here, HTTPS through the module */
	struct stsd_proactive_runner *proactive;
	struct stsd_metrics metrics;
	struct stsd_metrics_http *metrics_http;
	char *unix_path;                 /* the socket file we made, removed on exit */
	bool activated;                  /* listener from systemd (LISTEN_FDS) */

	struct conn *conns;
	unsigned n_conns;
	unsigned long next_id;
	struct flight *flights;
	struct memo *memo[MEMO_BUCKETS];
	struct memo *lru_head, *lru_tail;
	size_t n_memo, max_memo;
	bool stopping, finished;
	char rbuf[65536];
	bool rbuf_busy;
};

static void conn_flush(struct conn *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static const struct sts_netmod *net_module(struct stsd_server *s, char *err, size_t errsz);
static void conn_close(struct conn *c);
static void server_maybe_finish(struct stsd_server *s);

/* ------------------------------------------------------------------------
 * The in-memory map of last answers. */

static unsigned
memo_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h & (MEMO_BUCKETS - 1);
}

static struct memo *
memo_get(struct stsd_server *s, const char *domain)
{
	for (struct memo *m = s->memo[memo_hash(domain)]; m != NULL; m = m->next)
		if (strcmp(m->domain, domain) == 0)
			return m;
	return NULL;
}

static void
lru_unlink(struct stsd_server *s, struct memo *m)
{
	if (m->lprev != NULL)
		m->lprev->lnext = m->lnext;
	else
		s->lru_head = m->lnext;
	if (m->lnext != NULL)
		m->lnext->lprev = m->lprev;
	else
		s->lru_tail = m->lprev;
	m->lprev = m->lnext = NULL;
}

static void
lru_push(struct stsd_server *s, struct memo *m)
{
	m->lprev = NULL;
	m->lnext = s->lru_head;
	if (s->lru_head != NULL)
		s->lru_head->lprev = m;
	s->lru_head = m;
	if (s->lru_tail == NULL)
		s->lru_tail = m;
}

/* A request answered from the map keeps its domain in it. */
static void
memo_touch(struct stsd_server *s, struct memo *m)
{
	if (s->lru_head != m) {
		lru_unlink(s, m);
		lru_push(s, m);
	}
}

/* The map is full: the least recently used answer goes (its domain, if
 * asked again, is answered from the policy cache or looked up). */
static void
memo_evict_one(struct stsd_server *s)
{
	struct memo *m = s->lru_tail;
	if (m == NULL)
		return;
	lru_unlink(s, m);
	for (struct memo **pp = &s->memo[memo_hash(m->domain)]; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	sts_policy_clear(&m->policy);
	free(m->reply);
	free(m);
	s->n_memo--;
}

static void
memo_clear(struct stsd_server *s)
{
	for (unsigned i = 0; i < MEMO_BUCKETS; i++) {
		struct memo *m = s->memo[i];
		while (m != NULL) {
			struct memo *n = m->next;
			sts_policy_clear(&m->policy);
			free(m->reply);
			free(m);
			m = n;
		}
		s->memo[i] = NULL;
	}
	s->lru_head = s->lru_tail = NULL;
	s->n_memo = 0;
	s->metrics.answer_entries = 0;
}

/* Copies a policy by rendering and parsing it again. */
static bool
policy_copy(const struct sts_policy *from, struct sts_policy *to)
{
	struct sts_buf b;
	sts_buf_init(&b, 1u << 20);
	bool ok = false;
	memset(to, 0, sizeof *to);
	if (sts_policy_render(from, &b) == STS_OK) {
		struct sts_diags *d = malloc(sizeof *d);
		if (d != NULL) {
			sts_diags_init(d);
			ok = sts_policy_parse(b.data, b.len, 0, to, d) == STS_OK;
			free(d);
		}
		if (!ok)
			sts_policy_clear(to);
	}
	sts_buf_free(&b);
	return ok;
}

static void
memo_put(struct stsd_server *s, const struct sts_lookup_result *r)
{
	if (r->status == STS_LOOKUP_TEMPFAIL || r->domain == NULL || r->domain[0] == '\0' ||
	    strlen(r->domain) > STS_HOST_MAX)
		return;
	struct memo *m = memo_get(s, r->domain);
	if (m == NULL) {
		while (s->n_memo >= s->max_memo && s->lru_tail != NULL)
			memo_evict_one(s);
		m = calloc(1, sizeof *m);
		if (m == NULL)
			return;
		snprintf(m->domain, sizeof m->domain, "%s", r->domain);
		unsigned h = memo_hash(m->domain);
		m->next = s->memo[h];
		s->memo[h] = m;
		lru_push(s, m);
		s->n_memo++;
		s->metrics.answer_entries = s->n_memo;
	} else if (m->has_policy) {
		sts_policy_clear(&m->policy);
		m->has_policy = false;
	}
	free(m->reply);
	m->reply = NULL;
	m->status = r->status;
	m->stored_ms = uv_now(&s->loop);
	m->stale = false;
	m->expires_at = r->policy != NULL ? r->expires_at : 0;
	if (r->policy != NULL)
		m->has_policy = policy_copy(r->policy, &m->policy);
	if (r->status == STS_LOOKUP_POLICY && !m->has_policy)
		m->status = STS_LOOKUP_NO_POLICY;  /* out of memory: answer NOTFOUND */
}

/* ------------------------------------------------------------------------
 * Replies */

static void
count_reply(struct stsd_server *s, const struct req *q)
{
	enum stsd_result r = STSD_RESULT_NOTFOUND;
	switch (q->reply.len > 0 ? q->reply.data[0] : 'N') {
	case 'O': r = STSD_RESULT_OK; break;
	case 'T': r = STSD_RESULT_TEMP; break;
	case 'P': r = STSD_RESULT_PERM; break;
	default: break;
	}
	stsd_metrics_request(&s->metrics, r, (uv_hrtime() - q->start_ns) / 1000u);
}

static void
reply_for(struct req *q, enum sts_lookup_status status, const struct sts_policy *p,
	  const char *why)
{
	struct stsd_server *s = q->conn->srv;
	sts_buf_reset(&q->reply);
	int rc = STS_OK;
	if (status == STS_LOOKUP_POLICY && p != NULL) {
		struct sts_sm_reply_opts o = {
			.strict_testing = q->zone.strict_testing,
			.require_sni = q->zone.require_sni,
			.tlsrpt = q->zone.tlsrpt,
			.policy_domain = q->host,
		};
		rc = sts_sm_reply_policy(p, &o, &q->reply, NULL);
		if (rc != STS_OK) {
			sts_log(s->log, STS_LOG_WARNING, "%s: policy cannot be answered (%d):"
				" NOTFOUND", q->host, rc);
			sts_buf_reset(&q->reply);
			rc = sts_sm_reply_notfound(&q->reply);
		}
	} else if (status == STS_LOOKUP_TEMPFAIL && q->zone.temp_on_failure) {
		rc = sts_sm_reply_temp(&q->reply, why);
	} else {
		rc = sts_sm_reply_notfound(&q->reply);
	}
	if (rc != STS_OK) {
		sts_buf_reset(&q->reply);
		sts_buf_puts(&q->reply, "TEMP out of memory");
	}
	q->done = true;
	count_reply(s, q);
	sts_log(s->log, STS_LOG_DEBUG, "conn %lu: %s -> %s", q->conn->id, q->host,
		sts_buf_cstr(&q->reply));
}

/* A policy's reply depends only on it and the zone's options: render it
 * once per answer-map entry, not for every request. */
static void
reply_from_memo(struct req *q, struct memo *m)
{
	struct stsd_server *s = q->conn->srv;
	if (m->status != STS_LOOKUP_POLICY || !m->has_policy) {
		reply_for(q, m->status, NULL, NULL);
		return;
	}
	unsigned key = 1u | (unsigned)q->zone.strict_testing << 1 |
		       (unsigned)q->zone.require_sni << 2 | (unsigned)q->zone.tlsrpt << 3;
	if (m->reply != NULL && m->reply_key == key) {
		sts_buf_reset(&q->reply);
		if (sts_buf_append(&q->reply, m->reply, m->reply_len) == STS_OK) {
			q->done = true;
			count_reply(s, q);
			sts_log(s->log, STS_LOG_DEBUG, "conn %lu: %s -> %s", q->conn->id, q->host,
				sts_buf_cstr(&q->reply));
			return;
		}
	}
	reply_for(q, m->status, &m->policy, NULL);
	char *copy = malloc(q->reply.len + 1);
	if (copy != NULL) {
		memcpy(copy, q->reply.data, q->reply.len);
		copy[q->reply.len] = '\0';
		free(m->reply);
		m->reply = copy;
		m->reply_len = q->reply.len;
		m->reply_key = key;
	}
}

static void
timer_free_cb(uv_handle_t *h)
{
	free(h);
}

static void
req_stop_timer(struct req *q)
{
	if (q->timer != NULL) {
		uv_timer_stop(q->timer);
		uv_close((uv_handle_t *)q->timer, timer_free_cb);
		q->timer = NULL;
	}
}

static void
req_detach(struct req *q)
{
	struct flight *f = q->flight;
	if (f != NULL) {
		for (struct req **pp = &f->waiters; *pp != NULL; pp = &(*pp)->fnext) {
			if (*pp == q) {
				*pp = q->fnext;
				break;
			}
		}
		q->flight = NULL;
		q->fnext = NULL;
	}
	req_stop_timer(q);
}

/* ------------------------------------------------------------------------
 * Engine lookups */

/* Fetch outcomes for the metrics: a fetch happened when the result came
 * from one, or when its error is a fetch error. */
static void
count_fetch(struct stsd_server *s, const struct sts_lookup_result *r)
{
	if (r->error_code != NULL && strncmp(r->error_code, "fetch.", 6) == 0)
		stsd_metrics_fetch(&s->metrics, r->error_code);
	else if (r->source == STS_SOURCE_FETCH && r->error_code == NULL &&
		 (r->status == STS_LOOKUP_POLICY || r->status == STS_LOOKUP_NONE))
		stsd_metrics_fetch(&s->metrics, "ok");
}

/* Answers every request waiting on the flight. Closing a connection never
 * frees its requests before the loop runs again, so the list stays valid. */
static void
flight_answer(struct flight *f, enum sts_lookup_status status, const struct sts_policy *p,
	      const char *why)
{
	struct req *list = f->waiters;
	f->waiters = NULL;
	for (struct req *q = list; q != NULL; q = q->fnext) {
		q->flight = NULL;
		req_stop_timer(q);
		reply_for(q, status, p, why);
	}
	for (struct req *q = list, *n; q != NULL; q = n) {
		n = q->fnext;
		q->fnext = NULL;
		if (!q->conn->closing)
			conn_flush(q->conn);
	}
}

static void
flight_unlink(struct flight *f)
{
	for (struct flight **pp = &f->srv->flights; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
}

static void
flight_done(void *arg, const struct sts_lookup_result *r)
{
	struct flight *f = arg;
	struct stsd_server *s = f->srv;
	for (struct flight **pp = &s->flights; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	if (r->status == STS_LOOKUP_TEMPFAIL || r->error_code != NULL)
		sts_log(s->log, r->status == STS_LOOKUP_TEMPFAIL ? STS_LOG_WARNING : STS_LOG_INFO,
			"%s: %s%s%s%s%s", f->domain, sts_lookup_status_name(r->status),
			r->error_code ? ": " : "", r->error_message ? r->error_message : "",
			r->error_code ? " " : "", r->error_code ? r->error_code : "");
	else
		sts_log(s->log, STS_LOG_DEBUG, "%s: %s (%s)", f->domain,
			sts_lookup_status_name(r->status),
			r->source == STS_SOURCE_FETCH ? "fetched" : "cache");
	count_fetch(s, r);
	if (!s->stopping || r->status != STS_LOOKUP_TEMPFAIL)
		memo_put(s, r);
	flight_answer(f, r->status, r->policy,
		      r->error_message ? r->error_message : "policy lookup failed");
	free(f);
}

static struct flight *
flight_find(struct stsd_server *s, const char *domain)
{
	for (struct flight *f = s->flights; f != NULL; f = f->next)
		if (strcmp(f->domain, domain) == 0)
			return f;
	return NULL;
}

static struct flight *
flight_new(struct stsd_server *s, const char *domain)
{
	struct flight *f = calloc(1, sizeof *f);
	if (f == NULL)
		return NULL;
	f->srv = s;
	snprintf(f->domain, sizeof f->domain, "%s", domain);
	f->next = s->flights;
	s->flights = f;
	return f;
}

static void
flight_go(struct flight *f)
{
	struct stsd_server *s = f->srv;
	if (s->engine == NULL) {
		/* Draining ended while the cache was being asked. */
		flight_unlink(f);
		flight_answer(f, STS_LOOKUP_TEMPFAIL, NULL, "shutting down");
		free(f);
		return;
	}
	sts_engine_lookup(s->engine, f->domain, flight_done, f);
}

/* A domain not in the answer map may have an unexpired policy in the policy
 * cache (an earlier run, or another daemon sharing Redis or PostgreSQL): the
 * waiting requests are answered from it as soon as the cache replies, and
 * the engine refreshes it behind them. Otherwise, or when the cache fails,
 * the engine looks the domain up while the requests wait. */
static void
probe_done(void *arg, int status, const struct sts_cache_entry *e)
{
	struct flight *f = arg;
	struct stsd_server *s = f->srv;
	bool hit = false;
	struct sts_policy p;
	memset(&p, 0, sizeof p);
	int64_t expires = 0;
	if (status == 1 && e != NULL && e->policy != NULL && !s->stopping) {
		expires = e->fetched_at + (int64_t)e->max_age;
		struct sts_diags *d = malloc(sizeof *d);
		if ((int64_t)time(NULL) < expires && d != NULL) {
			sts_diags_init(d);
			hit = sts_policy_parse(e->policy, e->policy_len, 0, &p, d) == STS_OK;
			if (!hit)
				sts_policy_clear(&p);
		}
		free(d);
	}
	if (hit) {
		struct sts_lookup_result r = {
			.status = p.mode == STS_MODE_NONE ? STS_LOOKUP_NONE : STS_LOOKUP_POLICY,
			.domain = f->domain,
			.policy = &p,
			.expires_at = expires,
		};
		memo_put(s, &r);
		struct memo *m = memo_get(s, f->domain);
		if (m != NULL)
			m->stale = true;
		sts_log(s->log, STS_LOG_DEBUG, "%s: answered from the policy cache, refreshing"
			" behind", f->domain);
		flight_answer(f, r.status, &p, NULL);
		sts_policy_clear(&p);
	}
	flight_go(f);
}

static void
flight_start(struct flight *f)
{
	struct stsd_server *s = f->srv;
	if (s->observed != NULL && !s->stopping)
		s->observed->ops->get(s->observed, f->domain, probe_done, f);
	else
		flight_go(f);
}

static void
req_timeout(uv_timer_t *t)
{
	struct req *q = t->data;
	req_detach(q);
	sts_log(q->conn->srv->log, STS_LOG_INFO, "%s: no answer within %u ms: %s", q->host,
		q->zone.timeout_ms, q->zone.temp_on_failure ? "TEMP" : "NOTFOUND");
	reply_for(q, STS_LOOKUP_TEMPFAIL, NULL, "policy lookup timed out");
	conn_flush(q->conn);
}

/* ------------------------------------------------------------------------
 * Requests */

static struct req *
req_push(struct conn *c)
{
	struct req *q = calloc(1, sizeof *q);
	if (q == NULL)
		return NULL;
	q->conn = c;
	q->start_ns = uv_hrtime();
	sts_buf_init(&q->reply, STS_SM_REPLY_MAX);
	if (c->tail != NULL)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->n_queued++;
	return q;
}

static void
req_free(struct req *q)
{
	sts_buf_free(&q->reply);
	free(q);
}

static bool
handle_request(struct conn *c, const struct sts_bytes *payload)
{
	struct stsd_server *s = c->srv;
	struct req *q = req_push(c);
	if (q == NULL)
		return false;
	struct sts_sm_request r;
	sts_sm_parse_request(payload->ptr, payload->len, &r);
	q->zone = *stsd_config_zone(s->cfg, r.name, r.name_len);
	q->zone.name = NULL;
	snprintf(q->host, sizeof q->host, "%s", r.host);
	switch (r.cls) {
	case STS_SM_KEY_NOTFOUND_PARENT:
	case STS_SM_KEY_NOTFOUND_IP:
		reply_for(q, STS_LOOKUP_NO_POLICY, NULL, NULL);
		return true;
	case STS_SM_KEY_INVALID: {
		char esc[200];
		sts_escape(r.key, r.key_len, esc, sizeof esc);
		sts_log(s->log, STS_LOG_INFO, "conn %lu: invalid key '%s': %s: NOTFOUND", c->id,
			esc, r.reason);
		reply_for(q, STS_LOOKUP_NO_POLICY, NULL, NULL);
		return true;
	}
	case STS_SM_KEY_DOMAIN:
		break;
	}

	struct memo *m = memo_get(s, q->host);
	if (m != NULL && m->expires_at != 0 && (int64_t)time(NULL) >= m->expires_at)
		m = NULL;   /* the policy expired and could not be refreshed: ask again */
	if (m != NULL) {
		s->metrics.answer_hits++;
		memo_touch(s, m);
	} else {
		s->metrics.answer_misses++;
	}
	if (m != NULL) {
		reply_from_memo(q, m);
		if ((m->stale || uv_now(&s->loop) - m->stored_ms > s->cfg->cache_grace_ms) &&
		    flight_find(s, q->host) == NULL && !s->stopping) {
			struct flight *f = flight_new(s, q->host);
			if (f != NULL) {
				sts_log(s->log, STS_LOG_DEBUG, "%s: refreshing in the background",
					q->host);
				flight_go(f);
			}
		}
		return true;
	}

	struct flight *f = flight_find(s, q->host);
	bool start = f == NULL;
	if (start && (f = flight_new(s, q->host)) == NULL) {
		reply_for(q, STS_LOOKUP_TEMPFAIL, NULL, "out of memory");
		return true;
	}
	q->timer = malloc(sizeof *q->timer);
	if (q->timer != NULL) {
		uv_timer_init(&s->loop, q->timer);
		q->timer->data = q;
		uv_timer_start(q->timer, req_timeout, q->zone.timeout_ms, 0);
	}
	q->flight = f;
	q->fnext = f->waiters;
	f->waiters = q;
	if (start)
		flight_start(f);
	return true;
}

/* ------------------------------------------------------------------------
 * Connections */

static void
write_done(uv_write_t *w, int status)
{
	struct wreq *wr = (struct wreq *)w;
	struct conn *c = wr->conn;
	free(wr);
	c->n_writes--;
	if (c->closing)
		return;
	if (status < 0) {
		sts_log(c->srv->log, STS_LOG_INFO, "conn %lu: write: %s", c->id, uv_strerror(status));
		conn_close(c);
		return;
	}
	conn_flush(c);
}

static void
shutdown_done(uv_shutdown_t *r, int status)
{
	(void)status;
	struct conn *c = r->data;
	if (!c->closing && c->eof)
		conn_close(c);
}

/* Sends bytes; false (connection closed) on failure. Tries a direct write
 * first: a reply that fits the socket buffer (nearly always) needs no write
 * request, no copy and no POLLOUT round trip through epoll. */
static bool
conn_write(struct conn *c, const char *data, size_t len)
{
	if (c->n_writes == 0) {
		uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
		int n = uv_try_write(&c->u.stream, &b, 1);
		if (n == (int)len)
			return true;
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n != UV_EAGAIN && n != UV_ENOSYS) {
			sts_log(c->srv->log, STS_LOG_INFO, "conn %lu: write: %s", c->id,
				uv_strerror(n));
			conn_close(c);
			return false;
		}
	}
	struct wreq *wr = malloc(sizeof *wr + len);
	if (wr == NULL) {
		conn_close(c);
		return false;
	}
	memcpy(wr->data, data, len);
	wr->b = uv_buf_init(wr->data, (unsigned)len);
	wr->conn = c;
	int e = uv_write(&wr->w, &c->u.stream, &wr->b, 1, write_done);
	if (e < 0) {
		free(wr);
		sts_log(c->srv->log, STS_LOG_INFO, "conn %lu: write: %s", c->id, uv_strerror(e));
		conn_close(c);
		return false;
	}
	c->n_writes++;
	return true;
}

/* Replies batched into one write: a pipelining client that sent 16
 * requests in one packet gets 16 replies in one write, not 16 writes. */
#define FLUSH_BATCH_MAX (1024 * 1024)

/* Writes every finished reply at the head of the queue, in order; closes
 * the connection when it has nothing more to do. */
static void
conn_flush(struct conn *c)
{
	struct sts_buf batch;
	sts_buf_init(&batch, FLUSH_BATCH_MAX);
	while (c->head != NULL && c->head->done && !c->closing) {
		struct req *q = c->head;
		c->head = q->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->n_queued--;
		const char *p = q->reply.data ? q->reply.data : "";
		int rc = sts_netstring_encode(&batch, p, q->reply.len, STS_SM_REPLY_MAX);
		if (rc == STS_ETOOBIG && batch.len > 0) {
			/* The batch is full: send it and start the next one. */
			if (!conn_write(c, batch.data, batch.len)) {
				req_free(q);
				sts_buf_free(&batch);
				return;
			}
			sts_buf_reset(&batch);
			rc = sts_netstring_encode(&batch, p, q->reply.len, STS_SM_REPLY_MAX);
		}
		req_free(q);
		if (rc != STS_OK) {
			sts_buf_free(&batch);
			conn_close(c);
			return;
		}
	}
	if (batch.len > 0 && !c->closing && !conn_write(c, batch.data, batch.len)) {
		sts_buf_free(&batch);
		return;
	}
	sts_buf_free(&batch);
	if (c->paused && !c->closing && !c->srv->stopping && c->n_queued < STSD_MAX_PIPELINE / 2) {
		c->paused = false;
		if (uv_read_start(&c->u.stream, alloc_cb, read_cb) < 0) {
			conn_close(c);
			return;
		}
		sts_log(c->srv->log, STS_LOG_DEBUG, "conn %lu: reading again", c->id);
	}
	if (c->closing || c->head != NULL || c->n_writes > 0)
		return;
	if (c->broken) {
		/* PERM sent: half-close, then read until the peer closes. */
		if (!c->shut) {
			c->shut = true;
			c->shutdown_req.data = c;
			if (uv_shutdown(&c->shutdown_req, &c->u.stream, shutdown_done) < 0)
				conn_close(c);
		}
		return;
	}
	if (c->eof || c->srv->stopping)
		conn_close(c);
}

static void
conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->closes_pending > 0)
		return;
	struct stsd_server *s = c->srv;
	while (c->head != NULL) {
		struct req *q = c->head;
		c->head = q->next;
		req_free(q);
	}
	sts_netstring_dec_free(&c->dec);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_conns--;
	s->metrics.connections = s->n_conns;
	free(c);
	server_maybe_finish(s);
}

/* Closes the connection; its requests are freed when the handles are
 * closed (never before the loop runs again). */
static void
conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	for (struct req *q = c->head; q != NULL; q = q->next)
		req_detach(q);
	sts_log(c->srv->log, STS_LOG_DEBUG, "conn %lu: closed", c->id);
	uv_timer_stop(&c->idle);
	c->closes_pending = 2;
	uv_close((uv_handle_t *)&c->idle, conn_closed);
	uv_close(&c->u.handle, conn_closed);
}

/* Reads only note the time; the timer checks it when it fires and sleeps
 * again for what is left, instead of being re-armed (a heap operation) on
 * every read. */
static void
idle_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t idle = uv_now(&c->srv->loop) - c->last_read;
	uint64_t limit = c->idle_ms;
	if (idle < limit) {
		uv_timer_start(&c->idle, idle_timeout, limit - idle, 0);
		return;
	}
	sts_log(c->srv->log, STS_LOG_DEBUG, "conn %lu: idle for %" PRIu64 " ms", c->id, idle);
	conn_close(c);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct conn *c = h->data;
	struct stsd_server *s = c->srv;
	if (s->rbuf_busy) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	s->rbuf_busy = true;
	*buf = uv_buf_init(s->rbuf, sizeof s->rbuf);
}

static void
read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = st->data;
	struct stsd_server *s = c->srv;
	if (buf->base == s->rbuf)
		s->rbuf_busy = false;
	if (c->closing)
		return;
	if (nread < 0) {
		if (nread != UV_EOF)
			sts_log(s->log, STS_LOG_DEBUG, "conn %lu: read: %s", c->id,
				uv_strerror((int)nread));
		else if (!c->broken && !sts_netstring_dec_idle(&c->dec))
			sts_log(s->log, STS_LOG_INFO, "conn %lu: truncated request at EOF", c->id);
		c->eof = true;
		uv_read_stop(st);
		if (nread != UV_EOF || c->shut)
			conn_close(c);
		else
			conn_flush(c);
		return;
	}
	if (nread == 0)
		return;
	c->last_read = uv_now(&s->loop);
	if (c->broken)
		return;   /* draining after PERM */
	const char *p = buf->base;
	size_t left = (size_t)nread;
	while (left > 0) {
		size_t used = 0;
		struct sts_bytes payload;
		enum sts_netstring_rc rc = sts_netstring_dec_feed(&c->dec, p, left, &used, &payload);
		p += used;
		left -= used;
		if (rc == STS_NETSTRING_PAYLOAD) {
			if (!handle_request(c, &payload)) {
				conn_close(c);
				return;
			}
			continue;
		}
		if (rc == STS_NETSTRING_ERROR) {
			const char *why = sts_netstring_strerror(c->dec.error);
			sts_log(s->log, STS_LOG_WARNING, "conn %lu: malformed request at byte %llu:"
				" %s: PERM and close", c->id, (unsigned long long)c->dec.offset, why);
			c->broken = true;
			if (c->dec.reply_ok) {
				struct req *q = req_push(c);
				if (q != NULL) {
					if (sts_sm_reply_perm(&q->reply, why) != STS_OK)
						sts_buf_puts(&q->reply, "PERM");
					q->done = true;
					count_reply(s, q);
				}
			}
			break;
		}
		break;  /* MORE */
	}
	conn_flush(c);
	/* Too many requests waiting for lookups: read no more until they are
	 * answered (a client cannot make the daemon queue without bound; one
	 * read of at most 64 KiB may still pass the limit). */
	if (!c->closing && !c->paused && !c->eof && !c->broken &&
	    c->n_queued >= STSD_MAX_PIPELINE) {
		c->paused = true;
		uv_read_stop(&c->u.stream);
		sts_log(s->log, STS_LOG_DEBUG, "conn %lu: %u requests waiting: pausing reads",
			c->id, c->n_queued);
	}
}

static void
on_connection(uv_stream_t *lis, int status)
{
	struct stsd_server *s = lis->data;
	if (status < 0) {
		sts_log(s->log, STS_LOG_WARNING, "accept: %s", uv_strerror(status));
		return;
	}
	struct conn *c = calloc(1, sizeof *c);
	if (c == NULL || sts_netstring_dec_init(&c->dec, STS_SM_REQUEST_MAX) != STS_OK) {
		free(c);
		sts_log(s->log, STS_LOG_ERROR, "accept: out of memory");
		return;
	}
	c->srv = s;
	c->id = ++s->next_id;
	if (s->is_unix)
		uv_pipe_init(&s->loop, &c->u.pipe, 0);
	else
		uv_tcp_init(&s->loop, &c->u.tcp);
	uv_timer_init(&s->loop, &c->idle);
	c->u.handle.data = c;
	c->idle.data = c;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	s->metrics.connections = s->n_conns;
	int e = uv_accept(lis, &c->u.stream);
	if (e < 0) {
		sts_log(s->log, STS_LOG_WARNING, "accept: %s", uv_strerror(e));
		conn_close(c);
		return;
	}
	if (s->n_conns > s->cfg->max_connections || s->stopping) {
		if (!s->stopping)
			sts_log(s->log, STS_LOG_WARNING, "too many connections (max_connections %u):"
				" closing a new one", s->cfg->max_connections);
		conn_close(c);
		return;
	}
	if (!s->is_unix)
		uv_tcp_nodelay(&c->u.tcp, 1);
	sts_log(s->log, STS_LOG_DEBUG, "conn %lu: accepted", c->id);
	c->idle_ms = s->cfg->idle_timeout_ms;
	c->last_read = uv_now(&s->loop);
	uv_timer_start(&c->idle, idle_timeout, c->idle_ms, 0);
	e = uv_read_start(&c->u.stream, alloc_cb, read_cb);
	if (e < 0)
		conn_close(c);
}

/* ------------------------------------------------------------------------
 * Shutdown */

static void
handle_noop_close(uv_handle_t *h)
{
	(void)h;
}

/* When stopping and every connection is gone: release everything so that
 * the loop runs out. */
static void
server_maybe_finish(struct stsd_server *s)
{
	if (!s->stopping || s->finished || s->n_conns > 0)
		return;
	s->finished = true;
	stsd_proactive_stop(&s->proactive);
	stsd_metrics_http_stop(&s->metrics_http);
	if (s->shutdown_timer_ok) {
		uv_timer_stop(&s->shutdown_timer);
		uv_close((uv_handle_t *)&s->shutdown_timer, handle_noop_close);
		s->shutdown_timer_ok = false;
	}
	if (s->sigs_ok) {
		uv_close((uv_handle_t *)&s->sig_term, handle_noop_close);
		uv_close((uv_handle_t *)&s->sig_int, handle_noop_close);
		uv_close((uv_handle_t *)&s->sig_hup, handle_noop_close);
		s->sigs_ok = false;
	}
	sts_engine_free(&s->engine);
	sts_dns_free(&s->dns);
	if (s->fetcher != NULL)
		s->net->fetcher_free(&s->fetcher);
	/* A network backend's reconnect timer would keep the loop running. */
	sts_cache_close(&s->observed);
	sts_cache_close(&s->cache);
	sts_log(s->log, STS_LOG_INFO, "all connections closed");
}

static void
shutdown_timeout(uv_timer_t *t)
{
	struct stsd_server *s = t->data;
	sts_log(s->log, STS_LOG_WARNING, "shutdown timeout: closing %u connections", s->n_conns);
	for (struct conn *c = s->conns; c != NULL; c = c->next)
		conn_close(c);
}

static void
server_stop(struct stsd_server *s, const char *why)
{
	if (s->stopping)
		return;
	s->stopping = true;
	stsd_sd_notify("STOPPING=1");
	stsd_proactive_stop(&s->proactive);
	sts_log(s->log, STS_LOG_INFO, "%s: stopping (%u connections, at most %u ms)", why,
		s->n_conns, s->cfg->shutdown_timeout_ms);
	if (s->lis_ok) {
		uv_close(&s->lis.handle, handle_noop_close);
		s->lis_ok = false;
	}
	uv_timer_init(&s->loop, &s->shutdown_timer);
	s->shutdown_timer.data = s;
	s->shutdown_timer_ok = true;
	uv_timer_start(&s->shutdown_timer, shutdown_timeout, s->cfg->shutdown_timeout_ms, 0);
	/* Answer what was asked, take no new requests. */
	for (struct conn *c = s->conns, *n; c != NULL; c = n) {
		n = c->next;
		if (!c->closing) {
			if (!c->broken)
				uv_read_stop(&c->u.stream);
			conn_flush(c);
		}
	}
	server_maybe_finish(s);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct stsd_server *s = h->data;
	if (signum == SIGHUP) {
		if (s->hup_fn != NULL)
			s->hup_fn(s->hup_ctx);
		return;
	}
	server_stop(s, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ------------------------------------------------------------------------
 * Setup */

/* A UNIX socket file left by a dead daemon is replaced; a live one is not. */
static int
unix_prepare(const char *path, char *err, size_t errsz)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errsz, "%s exists and is not a socket", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	close(fd);
	if (r == 0) {
		snprintf(err, errsz, "%s: another daemon is listening there", path);
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errsz, "cannot remove stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
listen_unix(struct stsd_server *s, char *err, size_t errsz)
{
	const struct stsd_config *cfg = s->cfg;
	s->is_unix = true;
	if (unix_prepare(cfg->path, err, errsz) != 0)
		return -1;
	uv_pipe_init(&s->loop, &s->lis.pipe, 0);
	s->lis_ok = true;
	int e = uv_pipe_bind(&s->lis.pipe, cfg->path);
	if (e < 0) {
		snprintf(err, errsz, "bind %s: %s", cfg->path, uv_strerror(e));
		return -1;
	}
	s->unix_bound = true;
	if ((s->unix_path = strdup(cfg->path)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (cfg->mode >= 0 && chmod(cfg->path, (mode_t)cfg->mode) != 0) {
		snprintf(err, errsz, "chmod %s: %s", cfg->path, strerror(errno));
		return -1;
	}
	if (cfg->socket_owner != NULL || cfg->socket_group != NULL) {
		uid_t uid = (uid_t)-1;
		gid_t gid = (gid_t)-1;
		if (cfg->socket_owner != NULL) {
			struct passwd *pw = getpwnam(cfg->socket_owner);
			if (pw == NULL) {
				snprintf(err, errsz, "socket_owner: unknown user '%s'",
					 cfg->socket_owner);
				return -1;
			}
			uid = pw->pw_uid;
		}
		if (cfg->socket_group != NULL) {
			struct group *gr = getgrnam(cfg->socket_group);
			if (gr == NULL) {
				snprintf(err, errsz, "socket_group: unknown group '%s'",
					 cfg->socket_group);
				return -1;
			}
			gid = gr->gr_gid;
		}
		if (chown(cfg->path, uid, gid) != 0) {
			snprintf(err, errsz, "chown %s: %s", cfg->path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int
listen_tcp(struct stsd_server *s, char *err, size_t errsz)
{
	const struct stsd_config *cfg = s->cfg;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	char port[8];
	snprintf(port, sizeof port, "%u", (unsigned)cfg->port);
	int g = getaddrinfo(cfg->host, port, &hints, &ai);
	if (g != 0 || ai == NULL) {
		snprintf(err, errsz, "listen address %s: %s", cfg->host ? cfg->host : "(any)",
			 gai_strerror(g));
		return -1;
	}
	uv_tcp_init_ex(&s->loop, &s->lis.tcp, (unsigned)ai->ai_family);
	s->lis_ok = true;
	if (cfg->reuse_port) {
		uv_os_fd_t fd;
		int one = 1;
		if (uv_fileno(&s->lis.handle, &fd) == 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	}
	int e = uv_tcp_bind(&s->lis.tcp, ai->ai_addr, 0);
	freeaddrinfo(ai);
	if (e < 0) {
		snprintf(err, errsz, "bind %s:%u: %s", cfg->host, (unsigned)cfg->port,
			 uv_strerror(e));
		return -1;
	}
	return 0;
}

/* systemd socket activation: the first passed socket is the listener. */
static int
listen_activated(struct stsd_server *s, int nfds, char *err, size_t errsz)
{
	int fd = STSD_LISTEN_FDS_START;
	if (nfds > 1)
		sts_log(s->log, STS_LOG_WARNING, "socket activation passed %d sockets: using the"
			" first, ignoring the others", nfds);
	int e;
	if (stsd_sd_is_unix_listener(fd)) {
		s->is_unix = true;
		uv_pipe_init(&s->loop, &s->lis.pipe, 0);
		s->lis_ok = true;
		e = uv_pipe_open(&s->lis.pipe, fd);
	} else if (stsd_sd_is_inet_listener(fd)) {
		uv_tcp_init(&s->loop, &s->lis.tcp);
		s->lis_ok = true;
		e = uv_tcp_open(&s->lis.tcp, fd);
	} else {
		snprintf(err, errsz, "socket activation: fd %d is not a listening stream socket"
			 " (ListenStream= in the .socket unit)", fd);
		return -1;
	}
	if (e < 0) {
		snprintf(err, errsz, "socket activation: fd %d: %s", fd, uv_strerror(e));
		return -1;
	}
	s->activated = true;
	sts_log(s->log, STS_LOG_INFO, "socket activation: listening on the %s socket from"
		" systemd (host, port and path of the configuration are not used)",
		s->is_unix ? "UNIX" : "TCP");
	return 0;
}

int
stsd_server_new(const struct stsd_config *cfg, const struct sts_logger *log,
		struct stsd_server **out, char *err, size_t errsz)
{
	*out = NULL;
	struct stsd_server *s = calloc(1, sizeof *s);
	if (s == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	s->cfg = cfg;
	s->log = log;
	s->max_memo = cfg->cache.cache_size > 0 ? cfg->cache.cache_size : 10000;
	if (uv_loop_init(&s->loop) != 0) {
		free(s);
		snprintf(err, errsz, "cannot start the event loop");
		return -1;
	}
	s->loop_ok = true;
	*out = s;
	signal(SIGPIPE, SIG_IGN);

	int nfds = stsd_sd_listen_fds(err, errsz);
	if (nfds < 0)
		return -1;
	if (nfds > 0) {
		if (listen_activated(s, nfds, err, errsz) != 0)
			return -1;
	} else if ((cfg->path != NULL ? listen_unix(s, err, errsz)
				       : listen_tcp(s, err, errsz)) != 0) {
		return -1;
	}
	s->lis.handle.data = s;
	int e = uv_listen(&s->lis.stream, 512, on_connection);
	if (e < 0) {
		snprintf(err, errsz, "listen: %s", uv_strerror(e));
		return -1;
	}

	/* DNS and HTTPS */
	char servers[2048] = "";
	size_t len = 0;
	for (size_t i = 0; i < cfg->n_resolvers && len < sizeof servers - 64; i++) {
		const struct stsd_addr *a = &cfg->resolvers[i];
		int n = snprintf(servers + len, sizeof servers - len,
				 a->family == AF_INET6 ? "%s[%s]:%u" : "%s%s:%u", i ? "," : "",
				 a->ip, (unsigned)a->port);
		if (n > 0)
			len += (size_t)n;
	}
	unsigned t = cfg->default_zone.timeout_ms;
	struct sts_dns_opts dopts = {
		.servers = servers,
		.try_timeout_ms = t / 4 < 1500 ? (t / 4 > 100 ? t / 4 : 100) : 1500,
		.tries = 2,
	};
	if (sts_dns_new(&s->loop, &dopts, &s->dns, err, errsz) != 0)
		return -1;
	/* A proxy: the key, else the environment the peer also honours. */
	const char *proxy = cfg->https_proxy;
	const char *proxy_from = "https_proxy";
	if (proxy == NULL && (proxy = getenv("HTTPS_PROXY")) != NULL)
		proxy_from = "HTTPS_PROXY";
	else if (proxy == NULL && (proxy = getenv("https_proxy")) != NULL)
		proxy_from = "https_proxy (environment)";
	if (proxy != NULL && (proxy[0] == '\0' || strcmp(proxy, "none") == 0))
		proxy = NULL;
	if (proxy != NULL) {
		/* Never log credentials in the URL. */
		const char *at = strrchr(proxy, '@'), *sep = strstr(proxy, "://");
		sts_log(log, STS_LOG_INFO, "policy fetches go through the proxy %.*s%s (from %s)",
			sep != NULL ? (int)(sep - proxy + 3) : 0, proxy,
			at != NULL ? at + 1 : sep != NULL ? sep + 3 : proxy, proxy_from);
	}
	/* The fetcher itself is made at the first fetch (net_fetch). */
	if ((cfg->ca_file != NULL && (s->fopt_ca_file = strdup(cfg->ca_file)) == NULL) ||
	    (proxy != NULL && (s->fopt_proxy = strdup(proxy)) == NULL)) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	s->fopts = (struct sts_fetch_opts){ .ca_file = s->fopt_ca_file, .timeout_ms = t,
					    .proxy = s->fopt_proxy };
	return 0;
}

void
stsd_server_on_hup(struct stsd_server *s, void (*fn)(void *ctx), void *ctx)
{
	s->hup_fn = fn;
	s->hup_ctx = ctx;
}

/* Every cache operation's status tells whether the backend works: the
 * observer passes calls through and keeps the backend_up gauge. */
struct observer {
	struct sts_cache base;
	struct stsd_server *srv;
	struct sts_cache *inner;
};

struct obs_call {
	struct stsd_server *srv;
	union {
		sts_cache_get_cb get;
		sts_cache_done_cb done;
	} cb;
	sts_cache_each_cb each;          /* scan only */
	void *arg;
};

static void
obs_note(struct stsd_server *s, int status)
{
	int up = status >= 0;
	if (s->cache == NULL || s->stopping)
		return;   /* closing: every pending call fails, which says nothing */
	if (s->metrics.backend_up != up)
		sts_log(s->log, up ? STS_LOG_INFO : STS_LOG_WARNING, "policy cache %s: %s",
			s->cache->ops->name, up ? "usable again" : "failing; answering from memory"
			" and the network");
	s->metrics.backend_up = up;
}

static void
obs_get_cb(void *arg, int status, const struct sts_cache_entry *e)
{
	struct obs_call *k = arg;
	obs_note(k->srv, status);
	k->cb.get(k->arg, status, e);
	free(k);
}

static void
obs_done_cb(void *arg, int status)
{
	struct obs_call *k = arg;
	obs_note(k->srv, status);
	if (k->cb.done != NULL)
		k->cb.done(k->arg, status);
	free(k);
}

static struct obs_call *
obs_call_new(struct sts_cache *c, void *arg)
{
	struct obs_call *k = calloc(1, sizeof *k);
	if (k != NULL) {
		k->srv = ((struct observer *)c)->srv;
		k->arg = arg;
	}
	return k;
}

static void
obs_get(struct sts_cache *c, const char *domain, sts_cache_get_cb cb, void *arg)
{
	struct obs_call *k = obs_call_new(c, arg);
	if (k == NULL) {
		cb(arg, STS_ENOMEM, NULL);
		return;
	}
	k->cb.get = cb;
	struct sts_cache *in = ((struct observer *)c)->inner;
	in->ops->get(in, domain, obs_get_cb, k);
}

static void
obs_put(struct sts_cache *c, const struct sts_cache_entry *e, sts_cache_done_cb cb, void *arg)
{
	struct obs_call *k = obs_call_new(c, arg);
	if (k == NULL) {
		if (cb != NULL)
			cb(arg, STS_ENOMEM);
		return;
	}
	k->cb.done = cb;
	struct sts_cache *in = ((struct observer *)c)->inner;
	in->ops->put(in, e, obs_done_cb, k);
}

static void
obs_del(struct sts_cache *c, const char *domain, sts_cache_done_cb cb, void *arg)
{
	struct obs_call *k = obs_call_new(c, arg);
	if (k == NULL) {
		if (cb != NULL)
			cb(arg, STS_ENOMEM);
		return;
	}
	k->cb.done = cb;
	struct sts_cache *in = ((struct observer *)c)->inner;
	in->ops->del(in, domain, obs_done_cb, k);
}

static int
obs_each(void *arg, const struct sts_cache_entry *e)
{
	struct obs_call *k = arg;
	return k->each(k->arg, e);
}

static void
obs_scan(struct sts_cache *c, sts_cache_each_cb each, sts_cache_done_cb done, void *arg)
{
	struct obs_call *k = obs_call_new(c, arg);
	if (k == NULL) {
		done(arg, STS_ENOMEM);
		return;
	}
	k->cb.done = done;
	k->each = each;
	struct sts_cache *in = ((struct observer *)c)->inner;
	in->ops->scan(in, obs_each, obs_done_cb, k);
}

static void
obs_close(struct sts_cache *c)
{
	free(c);   /* the backend itself is closed by the server */
}

static const struct sts_cache_ops observer_ops = {
	.name = "observer",
	.get = obs_get,
	.put = obs_put,
	.del = obs_del,
	.scan = obs_scan,
	.close = obs_close,
};

/* A redis option's value as seconds (socket_timeout: 5), else dflt_ms. */
static unsigned
option_ms(const struct stsd_server *s, const char *key, unsigned dflt_ms)
{
	const struct stsd_cache_config *k = &s->cfg->cache;
	for (size_t i = 0; i < k->n_options; i++) {
		if (strcmp(k->options[i].key, key) != 0)
			continue;
		unsigned ms = stsd_seconds_ms(k->options[i].value);
		if (ms > 0)
			return ms;
		sts_log(s->log, STS_LOG_WARNING, "cache.options.%s: '%s' is not a number of seconds"
			" from 0.001 to 3600: using %u s", key, k->options[i].value, dflt_ms / 1000);
	}
	return dflt_ms;
}

static int
open_cache(struct stsd_server *s, char *err, size_t errsz)
{
	const struct stsd_config *cfg = s->cfg;
	enum stsd_cache_type type = cfg->cache.type;
	if (type == STSD_CACHE_REDIS_SENTINEL) {
		sts_log(s->log, STS_LOG_ERROR, "cache type redis_sentinel is not supported: using"
			" the internal cache; point type: redis at the master instead");
		type = STSD_CACHE_INTERNAL;
	}
	switch (type) {
	case STSD_CACHE_SQLITE: {
		char path[4096];
		if (cfg->cache.filename != NULL)
			snprintf(path, sizeof path, "%s", cfg->cache.filename);
		else
			snprintf(path, sizeof path, "%s/%s", cfg->state_dir, STSD_SQLITE_FILE);
		if (sts_cache_sqlite_open(path, s->log, &s->cache, err, errsz) != 0)
			return -1;
		sts_log(s->log, STS_LOG_INFO, "policy cache: SQLite %s", path);
		return 0;
	}
	case STSD_CACHE_REDIS: {
		if (cfg->cache.url == NULL) {
			snprintf(err, errsz, "cache type redis needs options.url"
				 " (redis://host:port/db)");
			return -1;
		}
		unsigned t = option_ms(s, "socket_timeout", 5000);
		char url[4096], unused[512];
		stsd_redis_target(cfg->cache.url, url, sizeof url, &t, unused, sizeof unused);
		for (char *save = NULL, *p = strtok_r(unused, ",", &save); p != NULL;
		     p = strtok_r(NULL, ",", &save))
			sts_log(s->log, STS_LOG_WARNING, "cache.options.url: parameter '%s' is not"
				" used by mta-stsd", p);
		if (net_module(s, err, errsz) == NULL ||
		    s->net->redis_open(&s->loop, url, t, s->log, &s->cache, err, errsz) != 0)
			return -1;
		sts_log(s->log, STS_LOG_INFO, "policy cache: Redis (timeout %u ms)", t);
		return 0;
	}
	case STSD_CACHE_POSTGRES: {
		const char *dsn = cfg->cache.dsn != NULL ? cfg->cache.dsn : "";
		if (net_module(s, err, errsz) == NULL ||
		    s->net->postgres_open(&s->loop, dsn, cfg->cache.timeout_ms, s->log, &s->cache,
					  err, errsz) != 0)
			return -1;
		sts_log(s->log, STS_LOG_INFO, "policy cache: PostgreSQL (timeout %u ms)",
			cfg->cache.timeout_ms);
		return 0;
	}
	default: {
		size_t n = cfg->cache.cache_size > 0 ? cfg->cache.cache_size : 10000;
		if (sts_cache_memory_open(n, s->log, &s->cache) != STS_OK) {
			snprintf(err, errsz, "cannot open the memory cache");
			return -1;
		}
		sts_log(s->log, STS_LOG_INFO, "policy cache: internal, %zu entries", n);
		return 0;
	}
	}
}

/* A proactive refresh's result becomes the daemon's answer at once. */
static void
proactive_result(void *ctx, const char *domain, const struct sts_lookup_result *r)
{
	(void)domain;
	struct stsd_server *s = ctx;
	count_fetch(s, r);
	if (!s->stopping)
		memo_put(s, r);
}

static int
start_extras(struct stsd_server *s, char *err, size_t errsz)
{
	const struct stsd_config *cfg = s->cfg;
	if (cfg->metrics.host != NULL) {
		if (stsd_metrics_http_start(&s->loop, cfg->metrics.host, cfg->metrics.port,
					    &s->metrics, s->log, &s->metrics_http, err,
					    errsz) != 0)
			return -1;
		sts_log(s->log, STS_LOG_INFO, "metrics on http://%s:%u/metrics", cfg->metrics.host,
			(unsigned)cfg->metrics.port);
	}
	if (cfg->proactive.enabled &&
	    stsd_proactive_start(&s->loop, &cfg->proactive, s->observed, s->engine, s->log,
				 &s->metrics, proactive_result, s, &s->proactive) != 0) {
		snprintf(err, errsz, "cannot start the proactive refresh: out of memory");
		return -1;
	}
	return 0;
}

/* The engine's I/O: DNS through c-ares in this process; HTTPS through the
 * network module, loaded (and the fetcher made) at the first fetch. */
static void
net_txt(void *ctx, const char *name, sts_dns_cb cb, void *arg)
{
	sts_dns_txt(((struct stsd_server *)ctx)->dns, name, cb, arg);
}

static void
net_addrs(void *ctx, const char *name, sts_dns_cb cb, void *arg)
{
	sts_dns_addrs(((struct stsd_server *)ctx)->dns, name, cb, arg);
}

static const struct sts_netmod *
net_module(struct stsd_server *s, char *err, size_t errsz)
{
	if (s->net == NULL && (s->net = stsd_netmod(err, errsz)) != NULL)
		sts_log(s->log, STS_LOG_DEBUG, "network module loaded");
	return s->net;
}

static void
net_fetch(void *ctx, const char *domain, const char *const *addrs, size_t n, sts_fetch_cb cb,
	  void *arg)
{
	struct stsd_server *s = ctx;
	char err[1024] = "";
	if (s->fetcher == NULL && net_module(s, err, sizeof err) != NULL &&
	    s->net->fetcher_new(&s->loop, &s->fopts, &s->fetcher, err, sizeof err) != 0)
		s->fetcher = NULL;
	if (s->fetcher == NULL) {
		if (!s->net_failed_logged)
			sts_log(s->log, STS_LOG_ERROR, "no policy can be fetched: %s", err);
		s->net_failed_logged = true;
		struct sts_fetch_result r = { .error = STS_FETCH_INTERNAL };
		snprintf(r.message, sizeof r.message, "HTTPS is not available: %s", err);
		cb(arg, &r);
		return;
	}
	s->net->fetch_policy(s->fetcher, domain, addrs, n, cb, arg);
}

/* The engine keeps a copy of its logger; this one follows the daemon's
 * level, which a reload may change. */
static void
engine_log(void *ctx, enum sts_log_level level, const char *msg)
{
	struct stsd_server *s = ctx;
	if (level <= s->log->max && s->log->fn != NULL)
		s->log->fn(s->log->ctx, level, msg);
}

int
stsd_server_start(struct stsd_server *s, char *err, size_t errsz)
{
	const struct stsd_config *cfg = s->cfg;
	if (open_cache(s, err, errsz) != 0)
		return -1;
	char mod[4096];
	if (!stsd_netmod_find(mod, sizeof mod))
		sts_log(s->log, STS_LOG_WARNING, "the network module %s is missing or unreadable:"
			" no policy can be fetched until it is installed (or MTASTS_NETMOD names"
			" it)", mod);
	s->metrics.backend_up = 1;
	s->metrics.version = STSD_VERSION;
	struct observer *ob = calloc(1, sizeof *ob);
	if (ob == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	ob->base.ops = &observer_ops;
	ob->base.log = *s->log;
	ob->srv = s;
	ob->inner = s->cache;
	s->observed = &ob->base;
	s->io = (struct sts_engine_io){ .ctx = s, .txt = net_txt, .addrs = net_addrs,
					.fetch = net_fetch };
	struct sts_engine_opts eo = {
		.io = &s->io,
		.cache = s->observed,
		.log = { .fn = engine_log, .ctx = s, .max = STS_LOG_DEBUG },
		.negative_ttl = cfg->negative_ttl_s > 0 ? cfg->negative_ttl_s : 1,
		.backoff = cfg->backoff_s,
	};
	if (sts_engine_new(&eo, &s->engine) != STS_OK) {
		snprintf(err, errsz, "cannot start the engine");
		return -1;
	}
	if (start_extras(s, err, errsz) != 0)
		return -1;
	uv_signal_init(&s->loop, &s->sig_term);
	uv_signal_init(&s->loop, &s->sig_int);
	uv_signal_init(&s->loop, &s->sig_hup);
	s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
	s->sigs_ok = true;
	uv_signal_start(&s->sig_term, on_signal, SIGTERM);
	uv_signal_start(&s->sig_int, on_signal, SIGINT);
	uv_signal_start(&s->sig_hup, on_signal, SIGHUP);
	char where[300];
	if (s->activated)
		snprintf(where, sizeof where, "the socket from systemd");
	else if (cfg->path != NULL)
		snprintf(where, sizeof where, "%s", cfg->path);
	else
		snprintf(where, sizeof where, "%s:%u", cfg->host, (unsigned)cfg->port);
	sts_log(s->log, STS_LOG_INFO, "listening on %s", where);
	stsd_sd_notifyf("READY=1\nSTATUS=answering on %s\nMAINPID=%lu", where,
		   (unsigned long)getpid());
	return 0;
}

/* What a reload cannot change while running. */
static void
reload_warn(struct stsd_server *s, bool changed, const char *what)
{
	if (changed)
		sts_log(s->log, STS_LOG_WARNING, "reload: %s changed: restart mta-stsd to apply it",
			what);
}

static bool
str_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

int
stsd_server_reload(struct stsd_server *s, const struct stsd_config *cfg, char *err,
		   size_t errsz)
{
	const struct stsd_config *old = s->cfg;
	/* systemd's Type=notify-reload wants the time the reload started. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	stsd_sd_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ull +
			   (unsigned long long)ts.tv_nsec / 1000ull);
	reload_warn(s, !s->activated && (str_differ(old->host, cfg->host) ||
					 old->port != cfg->port ||
					 str_differ(old->path, cfg->path) ||
					 old->mode != cfg->mode),
		    "the listening socket (host, port, path, mode)");
	reload_warn(s, !s->activated && (old->reuse_port != cfg->reuse_port ||
					 str_differ(old->socket_owner, cfg->socket_owner) ||
					 str_differ(old->socket_group, cfg->socket_group)),
		    "reuse_port, socket_owner or socket_group");
	reload_warn(s, old->cache.type != cfg->cache.type ||
		       str_differ(old->cache.filename, cfg->cache.filename) ||
		       str_differ(old->cache.url, cfg->cache.url) ||
		       str_differ(old->cache.dsn, cfg->cache.dsn) ||
		       old->cache.timeout_ms != cfg->cache.timeout_ms ||
		       old->cache.threads != cfg->cache.threads ||
		       old->cache.n_options != cfg->cache.n_options ||
		       str_differ(old->state_dir, cfg->state_dir),
		    "the cache backend or its options");
	reload_warn(s, old->default_zone.timeout_ms != cfg->default_zone.timeout_ms,
		    "default_zone.timeout (the DNS and HTTPS timeouts; how long a request"
		    " waits changes now)");
	reload_warn(s, str_differ(old->pidfile, cfg->pidfile), "pidfile");
	reload_warn(s, str_differ(old->user, cfg->user) || str_differ(old->group, cfg->group),
		    "user/group");
	reload_warn(s, str_differ(old->https_proxy, cfg->https_proxy), "https_proxy");
	reload_warn(s, str_differ(old->ca_file, cfg->ca_file) ||
		       old->n_resolvers != cfg->n_resolvers ||
		       (cfg->n_resolvers > 0 &&
			memcmp(old->resolvers, cfg->resolvers,
			       cfg->n_resolvers * sizeof *cfg->resolvers) != 0),
		    "resolver or ca_file");
	reload_warn(s, old->negative_ttl_s != cfg->negative_ttl_s ||
		       old->backoff_s != cfg->backoff_s, "negative_ttl or backoff");
	s->cfg = cfg;
	s->max_memo = cfg->cache.cache_size > 0 ? cfg->cache.cache_size : 10000;
	while (s->n_memo > s->max_memo)
		memo_evict_one(s);
	s->metrics.answer_entries = s->n_memo;

	/* The metrics listener and the proactive refresh restart with the new
	 * settings. */
	bool metrics_moved = str_differ(old->metrics.host, cfg->metrics.host) ||
			     old->metrics.port != cfg->metrics.port;
	int rc = 0;
	if (metrics_moved) {
		stsd_metrics_http_stop(&s->metrics_http);
		if (cfg->metrics.host != NULL &&
		    stsd_metrics_http_start(&s->loop, cfg->metrics.host, cfg->metrics.port,
					    &s->metrics, s->log, &s->metrics_http, err,
					    errsz) != 0)
			rc = -1;
	}
	if (metrics_moved && cfg->metrics.host != NULL && rc == 0)
		sts_log(s->log, STS_LOG_INFO, "metrics now on http://%s:%u/metrics",
			cfg->metrics.host, (unsigned)cfg->metrics.port);
	/* An unchanged proactive refresh keeps its schedule and its failure
	 * counts: a daily SIGHUP (log rotation) must not hide the alerts. */
	const struct stsd_proactive *op = &old->proactive, *np = &cfg->proactive;
	bool proactive_same = op->enabled == np->enabled && op->interval_s == np->interval_s &&
			      op->concurrency_limit == np->concurrency_limit &&
			      op->grace_ratio == np->grace_ratio;
	if (!proactive_same) {
		stsd_proactive_stop(&s->proactive);
		if (np->enabled &&
		    stsd_proactive_start(&s->loop, np, s->observed, s->engine, s->log, &s->metrics,
					 proactive_result, s, &s->proactive) != 0) {
			snprintf(err, errsz, "cannot restart the proactive refresh: out of memory");
			rc = -1;
		}
	}
	sts_log(s->log, STS_LOG_INFO, "reload: configuration applied (%zu zones)", cfg->n_zones);
	stsd_sd_notify("READY=1");
	return rc;
}

int
stsd_server_run(struct stsd_server *s)
{
	uv_run(&s->loop, UV_RUN_DEFAULT);
	return 0;
}

void
stsd_server_free(struct stsd_server **sp)
{
	struct stsd_server *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	if (s->loop_ok) {
		/* Not run, or run to the end: close what is left. */
		for (struct conn *c = s->conns; c != NULL; c = c->next)
			conn_close(c);
		if (s->lis_ok)
			uv_close(&s->lis.handle, handle_noop_close);
		if (s->shutdown_timer_ok)
			uv_close((uv_handle_t *)&s->shutdown_timer, handle_noop_close);
		if (s->sigs_ok) {
			uv_close((uv_handle_t *)&s->sig_term, handle_noop_close);
			uv_close((uv_handle_t *)&s->sig_int, handle_noop_close);
			uv_close((uv_handle_t *)&s->sig_hup, handle_noop_close);
		}
		sts_engine_free(&s->engine);
		sts_dns_free(&s->dns);
		if (s->fetcher != NULL)
			s->net->fetcher_free(&s->fetcher);
		uv_run(&s->loop, UV_RUN_DEFAULT);
	}
	stsd_proactive_stop(&s->proactive);
	stsd_metrics_http_stop(&s->metrics_http);
	if (s->loop_ok)
		uv_run(&s->loop, UV_RUN_NOWAIT);
	sts_cache_close(&s->observed);
	sts_cache_close(&s->cache);
	if (s->loop_ok) {
		uv_run(&s->loop, UV_RUN_DEFAULT);
		uv_loop_close(&s->loop);
	}
	if (s->unix_bound && s->unix_path != NULL)
		unlink(s->unix_path);
	free(s->unix_path);
	free(s->fopt_ca_file);
	free(s->fopt_proxy);
	memo_clear(s);
	free(s);
}
