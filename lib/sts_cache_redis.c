/* sts_cache_redis.c: the Redis cache backend (hiredis, async on libuv).
 *
 * One connection per cache handle. It is made in the background: a host
 * name is resolved with uv_getaddrinfo (hiredis would call getaddrinfo on
 * the loop), then AUTH, SELECT and a PING run before the connection counts
 * as ready. Only a ready connection takes operations; otherwise each fails
 * at once, so callers go to the network instead of waiting for us.
 *
 * Every operation has a timer of its own. An operation that gets no answer
 * in time fails, and the connection is dropped: replies come in order, so
 * everything queued behind it would wait just as long, and a server that
 * stopped answering (SIGSTOP, a hung host) should cost one timeout, not one
 * per lookup. Reconnects back off from 0.5 s, doubling to 30 s. The outage
 * is logged once when it starts and once when it ends. Neither the idle
 * connection nor the reconnect timer keeps the loop alive (uv_unref):
 * only pending operations do, so a loop run "until it runs out" ends.
 *
 * Schema: hash "mtasts:policy:" DOMAIN with fields id, fetched_at, max_age,
 * mode, policy, expiring at fetched_at + max_age (an expired policy is of no
 * use to a sender). A put goes through a Lua script so that comparing
 * fetched_at and writing are one atomic step: an older policy never
 * replaces a newer one written by another process. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include <mtasts/cache.h>
#include <mtasts/status.h>

#define KEY_PREFIX "mtasts:policy:"
#define KEY_PREFIX_LEN (sizeof KEY_PREFIX - 1)
#define SCAN_COUNT "500"
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define DEFAULT_TIMEOUT_MS 5000
#define MAX_AGE_LIMIT 31557600        /* rule: max_age is at most a year */
#define POLICY_MAX (1024 * 1024)      /* far above any policy the fetcher accepts */

/* KEYS[1] the hash; ARGV id, fetched_at, max_age, mode, policy, expire-at.
 * Returns 1 written, 0 kept (the stored entry is newer). A key that is not
 * a hash, or a hash without a number in fetched_at, is replaced. */
static const char put_script[] =
	"local cur = redis.pcall('HGET', KEYS[1], 'fetched_at')\n"
	"if type(cur) == 'string' then\n"
	"  local n = tonumber(cur)\n"
	"  if n ~= nil and n > tonumber(ARGV[2]) then return 0 end\n"
	"end\n"
	"redis.call('DEL', KEYS[1])\n"
	"redis.call('HSET', KEYS[1], 'id', ARGV[1], 'fetched_at', ARGV[2],"
	" 'max_age', ARGV[3], 'mode', ARGV[4], 'policy', ARGV[5])\n"
	"redis.call('EXPIREAT', KEYS[1], ARGV[6])\n"
	"return 1\n";

enum conn_state {
	CONN_IDLE,         /* waiting for the reconnect timer */
	CONN_RESOLVING,    /* uv_getaddrinfo in flight */
	CONN_CONNECTING,   /* TCP / unix connect in progress */
	CONN_HANDSHAKE,    /* AUTH / SELECT / PING sent */
	CONN_READY,
};

enum op_kind { OP_GET, OP_PUT, OP_DEL, OP_SCAN };

struct rcache;

struct rop {
	struct rcache *c;
	enum op_kind kind;
	sts_cache_get_cb get_cb;
	sts_cache_done_cb done_cb;
	sts_cache_each_cb each;
	void *arg;
	uv_timer_t timer;
	unsigned in_redis;         /* commands whose hiredis callback is still due */
	bool timer_open;           /* the timer handle is not closed yet */
	bool answered;             /* the caller has been called back */
	struct rop *prev, *next;   /* pending list (close answers them) */
	char domain[STS_HOST_MAX + 1];
	/* scan: each SCAN reply is followed by one HMGET per key it named (in
	 * order, so the i-th reply belongs to keys[i]) and the next SCAN */
	char cursor[24];
	char (*keys)[STS_HOST_MAX + 1];
	size_t nkeys, kpos;
	bool last_batch;           /* the SCAN cursor came back "0" */
};

struct rcache {
	struct sts_cache base;
	uv_loop_t *loop;
	unsigned timeout_ms;
	/* target */
	bool is_unix;
	char host[256];            /* host name or address, or the socket path */
	char path[sizeof ((struct sockaddr_un *)0)->sun_path];
	int port;
	long db;
	char user[256];
	char password[512];
	bool has_password;
	char name[400];            /* for log lines: no password */
	/* connection */
	enum conn_state state;
	redisAsyncContext *ac;
	char addr[64];             /* resolved numeric address */
	uv_getaddrinfo_t gai;
	uv_timer_t retry;          /* reconnect back-off and handshake deadline */
	unsigned backoff_ms;
	bool down_logged;          /* an outage is under way and was logged */
	bool ever_ready;
	char last_err[200];
	/* life */
	struct rop *pending;
	unsigned refs;             /* ops alive, open handles, hiredis callbacks due */
	bool closing;
};

static void conn_start(struct rcache *c);
static void conn_fail(struct rcache *c, const char *why);

/* ---- hiredis on libuv ----------------------------------------------------- *
 * Our own hooks rather than <hiredis/adapters/libuv.h>: with hiredis 0.14
 * that adapter drops the poll callback's error status, and libuv reports
 * POLLERR (a refused connect, a reset) as an error and stops watching, so
 * a refused connect would never be noticed. Here the error is handed to
 * hiredis as readiness: its read, write or connect check finds the cause. */

struct uv_events {
	redisAsyncContext *ac;
	uv_poll_t poll;
	int events;
};

/* hiredis sends with write(2), not send(MSG_NOSIGNAL): a server that went
 * away would raise SIGPIPE and kill a process that does not ignore it. The
 * library must not depend on that, so SIGPIPE is blocked around the write
 * and one it raised is taken off the pending set before it is unblocked. */
static void
handle_write(redisAsyncContext *ac)
{
	sigset_t pipe_set, pending, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigemptyset(&pending);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	redisAsyncHandleWrite(ac);
	if (!was_pending) {
		int saved = errno;
		const struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
		}
		errno = saved;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void
ev_poll(uv_poll_t *h, int status, int events)
{
	struct uv_events *p = h->data;
	if (status < 0)
		events = p->events != 0 ? p->events : UV_READABLE;
	if (p->ac != NULL && (events & UV_READABLE))
		redisAsyncHandleRead(p->ac);
	if (p->ac != NULL && (events & UV_WRITABLE))
		handle_write(p->ac);
	/* libuv stopped the handle; hiredis still wants these events. */
	if (status < 0 && p->ac != NULL && p->events != 0)
		uv_poll_start(&p->poll, p->events, ev_poll);
}

static void
ev_update(struct uv_events *p, int events)
{
	p->events = events;
	if (events != 0)
		uv_poll_start(&p->poll, events, ev_poll);
	else
		uv_poll_stop(&p->poll);
}

static void
ev_add_read(void *d)
{
	struct uv_events *p = d;
	ev_update(p, p->events | UV_READABLE);
}

static void
ev_del_read(void *d)
{
	struct uv_events *p = d;
	ev_update(p, p->events & ~UV_READABLE);
}

static void
ev_add_write(void *d)
{
	struct uv_events *p = d;
	ev_update(p, p->events | UV_WRITABLE);
}

static void
ev_del_write(void *d)
{
	struct uv_events *p = d;
	ev_update(p, p->events & ~UV_WRITABLE);
}

static void
ev_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
ev_cleanup(void *d)
{
	struct uv_events *p = d;
	if (p == NULL || p->ac == NULL)
		return;   /* called twice */
	p->ac = NULL;   /* the context is going away */
	uv_close((uv_handle_t *)&p->poll, ev_closed);
}

static int
ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	if (ac->ev.data != NULL)
		return REDIS_ERR;
	struct uv_events *p = calloc(1, sizeof *p);
	if (p == NULL)
		return REDIS_ERR;
	if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
		free(p);
		return REDIS_ERR;
	}
	/* An idle connection is no work: it must not keep the loop alive (a
	 * daemon runs its loop until it runs out, then closes the cache). The
	 * timers of pending operations do keep it alive. */
	uv_unref((uv_handle_t *)&p->poll);
	p->ac = ac;
	p->poll.data = p;
	ac->ev.data = p;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	return REDIS_OK;
}

/* ---- lifetime -------------------------------------------------------------- */

static void
cache_unref(struct rcache *c)
{
	if (--c->refs == 0 && c->closing) {
		/* Scrub the password from freed memory. */
		memset(c->password, 0, sizeof c->password);
		free(c);
	}
}

static void
op_maybe_free(struct rop *op)
{
	if (op->in_redis > 0 || op->timer_open || !op->answered)
		return;
	struct rcache *c = op->c;
	free(op->keys);
	free(op);
	cache_unref(c);
}

static void
op_timer_closed(uv_handle_t *h)
{
	struct rop *op = h->data;
	op->timer_open = false;
	op_maybe_free(op);
}

/* Unlinks op from the pending list and closes its timer; the caller then
 * calls the op's callback. */
static void
op_finish(struct rop *op)
{
	struct rcache *c = op->c;
	op->answered = true;
	if (op->prev != NULL)
		op->prev->next = op->next;
	else if (c->pending == op)
		c->pending = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
	if (op->timer_open && !uv_is_closing((uv_handle_t *)&op->timer))
		uv_close((uv_handle_t *)&op->timer, op_timer_closed);
}

/* Answers op with status and no entry (a failure, or put/del/scan done),
 * exactly once. */
static void
op_fail(struct rop *op, int status)
{
	if (op->answered)
		return;
	op_finish(op);
	switch (op->kind) {
	case OP_GET:
		op->get_cb(op->arg, status, NULL);
		break;
	case OP_PUT:
	case OP_DEL:
	case OP_SCAN:
		if (op->done_cb != NULL)
			op->done_cb(op->arg, status);
		break;
	}
	op_maybe_free(op);
}

static void
op_timeout(uv_timer_t *t)
{
	struct rop *op = t->data;
	struct rcache *c = op->c;
	char why[96];
	snprintf(why, sizeof why, "no answer within %u ms", c->timeout_ms);
	op_fail(op, STS_EIO);
	/* Whatever is queued behind the stalled reply would wait as long. */
	if (c->state == CONN_READY)
		conn_fail(c, why);
}

/* A new operation, linked as pending with its timer running; NULL when out
 * of memory. */
static struct rop *
op_new(struct rcache *c, enum op_kind kind, void *arg)
{
	struct rop *op = calloc(1, sizeof *op);
	if (op == NULL)
		return NULL;
	op->c = c;
	op->kind = kind;
	op->arg = arg;
	uv_timer_init(c->loop, &op->timer);
	op->timer.data = op;
	op->timer_open = true;
	uv_timer_start(&op->timer, op_timeout, c->timeout_ms, 0);
	op->next = c->pending;
	if (c->pending != NULL)
		c->pending->prev = op;
	c->pending = op;
	c->refs++;
	return op;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

/* Sends one command for op; false (nothing was queued) when hiredis
 * refuses it, e.g. while it tears the connection down. */
static bool
op_send(struct rop *op, int argc, const char **argv, const size_t *lens)
{
	struct rcache *c = op->c;
	if (c->state != CONN_READY || c->ac == NULL)
		return false;
	if (redisAsyncCommandArgv(c->ac, on_reply, op, argc, argv, lens) != REDIS_OK)
		return false;
	op->in_redis++;
	return true;
}


/* ---- reading entries back -------------------------------------------------- */

static bool
parse_i64(const redisReply *r, int64_t min, int64_t max, int64_t *out)
{
	if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
		return false;
	char buf[24];
	memcpy(buf, r->str, r->len);
	buf[r->len] = '\0';
	if (buf[0] != '-' && (buf[0] < '0' || buf[0] > '9'))
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Fills e from an HMGET reply (id, fetched_at, max_age, mode, policy).
 * Returns 1 (entry), 0 (no such hash), or < 0 with what is wrong in why.
 * Whatever is stored is checked: another program may share the server. */
static int
entry_from_reply(const redisReply *r, const char *domain, struct sts_cache_entry *e,
		 const char **why)
{
	memset(e, 0, sizeof *e);
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
		*why = r->type == REDIS_REPLY_ERROR ? "the server answered an error"
						     : "unexpected reply";
		return STS_ESTATE;
	}
	bool all_nil = true;
	for (size_t i = 0; i < 5; i++)
		if (r->element[i]->type != REDIS_REPLY_NIL)
			all_nil = false;
	if (all_nil)
		return 0;
	const redisReply *id = r->element[0], *mode = r->element[3], *pol = r->element[4];
	int64_t fetched_at, max_age;
	size_t dlen = strlen(domain);
	if (dlen == 0 || dlen > STS_HOST_MAX) {
		*why = "the domain in the key is empty or too long";
		return STS_ESTATE;
	}
	if (id->type != REDIS_REPLY_STRING || id->len == 0 || id->len > STS_ID_MAX ||
	    memchr(id->str, '\0', id->len) != NULL) {
		*why = "field id is missing or not an id";
		return STS_ESTATE;
	}
	if (!parse_i64(r->element[1], 0, INT64_MAX / 2, &fetched_at)) {
		*why = "field fetched_at is missing or not a number";
		return STS_ESTATE;
	}
	if (!parse_i64(r->element[2], 0, UINT32_MAX, &max_age)) {
		*why = "field max_age is missing or not a number";
		return STS_ESTATE;
	}
	if (mode->type != REDIS_REPLY_STRING || mode->len >= sizeof e->mode ||
	    memchr(mode->str, '\0', mode->len) != NULL) {
		*why = "field mode is missing or too long";
		return STS_ESTATE;
	}
	if (pol->type != REDIS_REPLY_STRING || pol->len > POLICY_MAX) {
		*why = "field policy is missing or too long";
		return STS_ESTATE;
	}
	e->policy = malloc(pol->len + 1);
	if (e->policy == NULL) {
		*why = "out of memory";
		return STS_ENOMEM;
	}
	memcpy(e->policy, pol->str, pol->len);
	e->policy[pol->len] = '\0';
	e->policy_len = pol->len;
	memcpy(e->domain, domain, dlen + 1);
	memcpy(e->id, id->str, id->len);
	memcpy(e->mode, mode->str, mode->len);
	e->fetched_at = fetched_at;
	e->max_age = max_age > MAX_AGE_LIMIT ? MAX_AGE_LIMIT : (uint32_t)max_age;
	return 1;
}

/* "mtasts:policy:" DOMAIN into key; false when the domain cannot be one. */
static bool
make_key(const char *domain, char key[KEY_PREFIX_LEN + STS_HOST_MAX + 1], size_t *len)
{
	size_t dlen = strlen(domain);
	if (dlen == 0 || dlen > STS_HOST_MAX)
		return false;
	memcpy(key, KEY_PREFIX, KEY_PREFIX_LEN);
	memcpy(key + KEY_PREFIX_LEN, domain, dlen + 1);
	*len = KEY_PREFIX_LEN + dlen;
	return true;
}

static bool
send_hmget(struct rop *op, const char *key, size_t keylen)
{
	const char *argv[7] = { "HMGET", key, "id", "fetched_at", "max_age", "mode", "policy" };
	size_t lens[7] = { 5, keylen };
	for (size_t i = 2; i < 7; i++)
		lens[i] = strlen(argv[i]);
	return op_send(op, 7, argv, lens);
}

/* ---- scan -------------------------------------------------------------------- */

static void
scan_send(struct rop *op)
{
	const char *argv[6] = { "SCAN", op->cursor, "MATCH", KEY_PREFIX "*", "COUNT",
				SCAN_COUNT };
	size_t lens[6];
	for (size_t i = 0; i < 6; i++)
		lens[i] = strlen(argv[i]);
	if (!op_send(op, 6, argv, lens))
		op_fail(op, STS_EIO);
}

/* A SCAN reply: [cursor, [key...]]. Queues one HMGET per key, then the next
 * SCAN, so a batch costs one round trip. */
static void
scan_batch(struct rop *op, const redisReply *r)
{
	struct rcache *c = op->c;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len == 0 ||
	    r->element[0]->len >= sizeof op->cursor || r->element[1]->type != REDIS_REPLY_ARRAY) {
		sts_log(&c->base.log, STS_LOG_ERROR, "redis cache %s: unexpected SCAN reply",
			c->name);
		op_fail(op, STS_EIO);
		return;
	}
	memcpy(op->cursor, r->element[0]->str, r->element[0]->len);
	op->cursor[r->element[0]->len] = '\0';
	op->last_batch = strcmp(op->cursor, "0") == 0;
	const redisReply *keys = r->element[1];
	free(op->keys);
	op->keys = NULL;
	op->nkeys = op->kpos = 0;
	if (keys->elements > 0) {
		op->keys = calloc(keys->elements, sizeof *op->keys);
		if (op->keys == NULL) {
			op_fail(op, STS_ENOMEM);
			return;
		}
	}
	for (size_t i = 0; i < keys->elements; i++) {
		const redisReply *k = keys->element[i];
		size_t dlen = k->type == REDIS_REPLY_STRING ? k->len - KEY_PREFIX_LEN : 0;
		if (k->type != REDIS_REPLY_STRING || k->len <= KEY_PREFIX_LEN ||
		    dlen > STS_HOST_MAX || memchr(k->str, '\0', k->len) != NULL) {
			sts_log(&c->base.log, STS_LOG_WARNING,
				"redis cache %s: skipping a key that names no domain", c->name);
			continue;
		}
		if (!send_hmget(op, k->str, k->len)) {
			op_fail(op, STS_EIO);
			return;
		}
		memcpy(op->keys[op->nkeys], k->str + KEY_PREFIX_LEN, dlen);
		op->keys[op->nkeys][dlen] = '\0';
		op->nkeys++;
	}
	if (op->last_batch) {
		if (op->nkeys == 0)
			op_fail(op, STS_OK);
		return;
	}
	scan_send(op);
}

static void
scan_reply(struct rop *op, const redisReply *r)
{
	struct rcache *c = op->c;
	if (op->kpos >= op->nkeys) {
		scan_batch(op, r);
		return;
	}
	const char *domain = op->keys[op->kpos++];
	struct sts_cache_entry e;
	const char *why = "";
	int st = entry_from_reply(r, domain, &e, &why);
	if (st < 0)
		sts_log(&c->base.log, STS_LOG_ERROR,
			"redis cache %s: entry for %s is damaged (%s); skipping it", c->name, domain,
			why);
	/* 0: the entry expired or was deleted since SCAN named it. */
	int stop = st == 1 ? op->each(op->arg, &e) : 0;
	sts_cache_entry_clear(&e);
	if (op->answered)   /* each() closed the cache */
		return;
	if (stop != 0 || (op->last_batch && op->kpos == op->nkeys))
		op_fail(op, STS_OK);
}

/* ---- replies ----------------------------------------------------------------- */

static bool
reply_failed(struct rcache *c, const redisReply *r, const char *what, const char *domain)
{
	if (r == NULL)
		return true;   /* the connection went away; that was logged once */
	if (r->type == REDIS_REPLY_ERROR) {
		sts_log(&c->base.log, STS_LOG_ERROR, "redis cache %s: %s %s: %.*s", c->name, what,
			domain, (int)(r->len > 200 ? 200 : r->len), r->str);
		return true;
	}
	return false;
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	(void)ac;
	struct rop *op = privdata;
	struct rcache *c = op->c;
	redisReply *r = reply;
	op->in_redis--;
	if (op->answered) {
		/* Late (after a timeout) or flushed: nobody waits for it. */
		op_maybe_free(op);
		return;
	}
	switch (op->kind) {
	case OP_GET: {
		if (reply_failed(c, r, "reading", op->domain)) {
			op_fail(op, STS_EIO);
			return;
		}
		struct sts_cache_entry e;
		const char *why = "";
		int st = entry_from_reply(r, op->domain, &e, &why);
		if (st < 0)
			sts_log(&c->base.log, STS_LOG_ERROR,
				"redis cache %s: entry for %s is damaged (%s); ignoring it", c->name,
				op->domain, why);
		op_finish(op);
		op->get_cb(op->arg, st, st == 1 ? &e : NULL);
		sts_cache_entry_clear(&e);
		op_maybe_free(op);
		return;
	}
	case OP_PUT:
		if (reply_failed(c, r, "storing", op->domain) || r->type != REDIS_REPLY_INTEGER) {
			op_fail(op, STS_EIO);
			return;
		}
		if (r->integer == 0)
			sts_log(&c->base.log, STS_LOG_DEBUG,
				"redis cache %s: kept the newer entry of %s", c->name, op->domain);
		op_fail(op, STS_OK);
		return;
	case OP_DEL:
		if (reply_failed(c, r, "deleting", op->domain) || r->type != REDIS_REPLY_INTEGER) {
			op_fail(op, STS_EIO);
			return;
		}
		op_fail(op, r->integer > 0 ? 1 : 0);
		return;
	case OP_SCAN:
		if (reply_failed(c, r, "scanning", "the policies")) {
			op_fail(op, STS_EIO);
			return;
		}
		/* Progress: the deadline counts from the latest reply. */
		uv_timer_start(&op->timer, op_timeout, c->timeout_ms, 0);
		scan_reply(op, r);
		return;
	}
}

/* ---- the operations -------------------------------------------------------- */

static bool
usable(struct rcache *c)
{
	return !c->closing && c->state == CONN_READY && c->ac != NULL;
}

static void
rc_get(struct sts_cache *base, const char *domain, sts_cache_get_cb cb, void *arg)
{
	struct rcache *c = (struct rcache *)base;
	char key[KEY_PREFIX_LEN + STS_HOST_MAX + 1];
	size_t keylen;
	if (!make_key(domain, key, &keylen)) {
		cb(arg, STS_EINVAL, NULL);
		return;
	}
	if (!usable(c)) {
		cb(arg, STS_EIO, NULL);
		return;
	}
	struct rop *op = op_new(c, OP_GET, arg);
	if (op == NULL) {
		cb(arg, STS_ENOMEM, NULL);
		return;
	}
	op->get_cb = cb;
	memcpy(op->domain, domain, strlen(domain) + 1);
	if (!send_hmget(op, key, keylen))
		op_fail(op, STS_EIO);
}

static void
rc_put(struct sts_cache *base, const struct sts_cache_entry *e, sts_cache_done_cb cb, void *arg)
{
	struct rcache *c = (struct rcache *)base;
	char key[KEY_PREFIX_LEN + STS_HOST_MAX + 1];
	size_t keylen;
	size_t idlen = strnlen(e->id, sizeof e->id), modelen = strnlen(e->mode, sizeof e->mode);
	if (!make_key(e->domain, key, &keylen) || idlen == 0 || idlen > STS_ID_MAX ||
	    modelen >= sizeof e->mode || e->fetched_at < 0 || e->fetched_at > INT64_MAX / 2 ||
	    (e->policy == NULL && e->policy_len > 0) || e->policy_len > POLICY_MAX) {
		if (cb) cb(arg, STS_EINVAL);
		return;
	}
	if (!usable(c)) {
		if (cb) cb(arg, STS_EIO);
		return;
	}
	struct rop *op = op_new(c, OP_PUT, arg);
	if (op == NULL) {
		if (cb) cb(arg, STS_ENOMEM);
		return;
	}
	op->done_cb = cb;
	memcpy(op->domain, e->domain, strlen(e->domain) + 1);
	char fetched[24], max_age[16], expire[24];
	snprintf(fetched, sizeof fetched, "%" PRId64, e->fetched_at);
	snprintf(max_age, sizeof max_age, "%" PRIu32, e->max_age);
	snprintf(expire, sizeof expire, "%" PRId64, e->fetched_at + (int64_t)e->max_age);
	const char *argv[10] = { "EVAL", put_script, "1", key, e->id, fetched, max_age, e->mode,
				 e->policy != NULL ? e->policy : "", expire };
	size_t lens[10];
	for (size_t i = 0; i < 10; i++)
		lens[i] = strlen(argv[i]);
	lens[3] = keylen;
	lens[8] = e->policy_len;
	if (!op_send(op, 10, argv, lens))
		op_fail(op, STS_EIO);
}

static void
rc_del(struct sts_cache *base, const char *domain, sts_cache_done_cb cb, void *arg)
{
	struct rcache *c = (struct rcache *)base;
	char key[KEY_PREFIX_LEN + STS_HOST_MAX + 1];
	size_t keylen;
	if (!make_key(domain, key, &keylen)) {
		if (cb) cb(arg, STS_EINVAL);
		return;
	}
	if (!usable(c)) {
		if (cb) cb(arg, STS_EIO);
		return;
	}
	struct rop *op = op_new(c, OP_DEL, arg);
	if (op == NULL) {
		if (cb) cb(arg, STS_ENOMEM);
		return;
	}
	op->done_cb = cb;
	memcpy(op->domain, domain, strlen(domain) + 1);
	const char *argv[2] = { "DEL", key };
	size_t lens[2] = { 3, keylen };
	if (!op_send(op, 2, argv, lens))
		op_fail(op, STS_EIO);
}

static void
rc_scan(struct sts_cache *base, sts_cache_each_cb each, sts_cache_done_cb done, void *arg)
{
	struct rcache *c = (struct rcache *)base;
	if (!usable(c)) {
		if (done) done(arg, STS_EIO);
		return;
	}
	struct rop *op = op_new(c, OP_SCAN, arg);
	if (op == NULL) {
		if (done) done(arg, STS_ENOMEM);
		return;
	}
	op->each = each;
	op->done_cb = done;
	snprintf(op->cursor, sizeof op->cursor, "0");
	scan_send(op);
}

/* ---- the connection -------------------------------------------------------- */

static void
on_retry(uv_timer_t *t)
{
	struct rcache *c = t->data;
	if (c->state == CONN_IDLE) {
		conn_start(c);
		return;
	}
	char why[96];
	snprintf(why, sizeof why, "no answer within %u ms while connecting", c->timeout_ms);
	conn_fail(c, why);
}

/* Drops the connection, fails what waits on it, logs the outage once and
 * schedules the next attempt. */
static void
conn_fail(struct rcache *c, const char *why)
{
	if (c->closing)
		return;
	redisAsyncContext *ac = c->ac;
	c->ac = NULL;
	c->state = CONN_IDLE;
	if (ac != NULL)
		redisAsyncFree(ac);   /* flushes its callbacks with NULL replies */
	while (c->pending != NULL)
		op_fail(c->pending, STS_EIO);
	if (c->closing)   /* a callback closed the cache */
		return;
	if (!c->down_logged) {
		c->down_logged = true;
		sts_log(&c->base.log, STS_LOG_ERROR,
			"redis cache %s is %s (%s); cache operations fail until it answers again,"
			" reconnecting in the background", c->name,
			c->ever_ready ? "down" : "unreachable", why);
	} else {
		sts_log(&c->base.log, STS_LOG_DEBUG, "redis cache %s: still down (%s); next try"
			" in %u ms", c->name, why, c->backoff_ms);
	}
	snprintf(c->last_err, sizeof c->last_err, "%s", why);
	uv_timer_start(&c->retry, on_retry, c->backoff_ms, 0);
	c->backoff_ms = c->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void
on_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rcache *c = privdata;
	redisReply *r = reply;
	if (c->closing || ac != c->ac || r == NULL) {
		/* An old connection, or this one failing: on_disconnect handles it. */
		cache_unref(c);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		char why[300];
		snprintf(why, sizeof why, "the server refused the handshake: %.*s",
			 (int)(r->len > 200 ? 200 : r->len), r->str);
		conn_fail(c, why);
	} else if (r->type == REDIS_REPLY_STATUS && r->len == 4 && memcmp(r->str, "PONG", 4) == 0) {
		/* The PING goes last: AUTH and SELECT were accepted. */
		uv_timer_stop(&c->retry);
		c->state = CONN_READY;
		c->backoff_ms = BACKOFF_MIN_MS;
		if (c->down_logged)
			sts_log(&c->base.log, STS_LOG_INFO, "redis cache %s is back", c->name);
		else
			sts_log(&c->base.log, STS_LOG_INFO, "redis cache %s: connected", c->name);
		c->down_logged = false;
		c->ever_ready = true;
	}
	cache_unref(c);
}

static bool
handshake_send(struct rcache *c, int argc, const char **argv)
{
	size_t lens[3];
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	if (redisAsyncCommandArgv(c->ac, on_handshake, c, argc, argv, lens) != REDIS_OK)
		return false;
	c->refs++;
	return true;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct rcache *c = ac->data;
	if (ac != c->ac)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns. */
		char why[200];
		snprintf(why, sizeof why, "%s", ac->errstr[0] ? ac->errstr : "connect failed");
		c->ac = NULL;
		conn_fail(c, why);
		return;
	}
	c->state = CONN_HANDSHAKE;
	char db[24];
	snprintf(db, sizeof db, "%ld", c->db);
	bool sent = true;
	if (c->has_password) {
		if (c->user[0] != '\0')
			sent = handshake_send(c, 3, (const char *[]){ "AUTH", c->user, c->password });
		else
			sent = handshake_send(c, 2, (const char *[]){ "AUTH", c->password });
	}
	if (sent && c->db != 0)
		sent = handshake_send(c, 2, (const char *[]){ "SELECT", db });
	if (sent)
		sent = handshake_send(c, 1, (const char *[]){ "PING" });
	if (!sent)
		conn_fail(c, "cannot queue the handshake");
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	(void)status;
	struct rcache *c = ac->data;
	if (c == NULL || ac != c->ac)
		return;   /* we dropped it ourselves */
	char why[200];
	snprintf(why, sizeof why, "%s", ac->errstr[0] ? ac->errstr : "connection closed");
	c->ac = NULL;   /* hiredis frees it after this returns */
	conn_fail(c, why);
}

static void
connect_to(struct rcache *c)
{
	redisAsyncContext *ac = c->is_unix ? redisAsyncConnectUnix(c->path)
					   : redisAsyncConnect(c->addr, c->port);
	if (ac == NULL) {
		conn_fail(c, "out of memory");
		return;
	}
	if (ac->err != 0) {
		char why[200];
		snprintf(why, sizeof why, "%s", ac->errstr);
		redisAsyncFree(ac);
		conn_fail(c, why);
		return;
	}
	if (ev_attach(ac, c->loop) != REDIS_OK) {
		redisAsyncFree(ac);
		conn_fail(c, "cannot watch the socket");
		return;
	}
	ac->data = c;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	c->ac = ac;
	c->state = CONN_CONNECTING;
	/* The deadline for connect and handshake together. */
	uv_timer_start(&c->retry, on_retry, c->timeout_ms, 0);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct rcache *c = req->data;
	if (c->closing) {
		uv_freeaddrinfo(res);
		cache_unref(c);
		return;
	}
	c->refs--;   /* c->closing is false: refs cannot reach the free here */
	if (status != 0 || res == NULL) {
		char why[300];
		snprintf(why, sizeof why, "cannot resolve %s: %s", c->host,
			 status != 0 ? uv_strerror(status) : "no address");
		uv_freeaddrinfo(res);
		conn_fail(c, why);
		return;
	}
	/* One address per attempt; IPv4 first, as "localhost" often lists ::1
	 * first while redis-server may be bound to 127.0.0.1 only. */
	const struct addrinfo *a = res;
	for (const struct addrinfo *p = res; p != NULL; p = p->ai_next)
		if (p->ai_family == AF_INET) {
			a = p;
			break;
		}
	int rc = a->ai_family == AF_INET6
		 ? uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, c->addr, sizeof c->addr)
		 : uv_ip4_name((const struct sockaddr_in *)a->ai_addr, c->addr, sizeof c->addr);
	uv_freeaddrinfo(res);
	if (rc != 0) {
		conn_fail(c, "unusable address");
		return;
	}
	connect_to(c);
}

static void
conn_start(struct rcache *c)
{
	if (c->is_unix) {
		connect_to(c);
		return;
	}
	unsigned char buf[16];
	if (uv_inet_pton(AF_INET, c->host, buf) == 0 || uv_inet_pton(AF_INET6, c->host, buf) == 0) {
		snprintf(c->addr, sizeof c->addr, "%s", c->host);
		connect_to(c);
		return;
	}
	/* hiredis would call getaddrinfo on the loop: resolve in the pool. */
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	c->gai.data = c;
	c->state = CONN_RESOLVING;
	int rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->host, NULL, &hints);
	if (rc != 0) {
		c->state = CONN_IDLE;
		char why[300];
		snprintf(why, sizeof why, "cannot resolve %s: %s", c->host, uv_strerror(rc));
		conn_fail(c, why);
		return;
	}
	c->refs++;
}

/* ---- close ------------------------------------------------------------------- */

static void
on_retry_closed(uv_handle_t *h)
{
	cache_unref(h->data);
}

static void
rc_close(struct sts_cache *base)
{
	struct rcache *c = (struct rcache *)base;
	c->closing = true;
	while (c->pending != NULL)
		op_fail(c->pending, STS_EIO);
	redisAsyncContext *ac = c->ac;
	c->ac = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);
	if (c->state == CONN_RESOLVING)
		uv_cancel((uv_req_t *)&c->gai);   /* on_resolved still runs, and unrefs */
	uv_close((uv_handle_t *)&c->retry, on_retry_closed);
}

static const struct sts_cache_ops redis_ops = {
	.name = "redis",
	.get = rc_get,
	.put = rc_put,
	.del = rc_del,
	.scan = rc_scan,
	.close = rc_close,
};

/* ---- the URL ----------------------------------------------------------------- */

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9') return ch - '0';
	if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into out; false when malformed or too long. */
static bool
pct_decode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '%') {
			if (i + 2 >= n)
				return false;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return false;
			ch = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = ch;
	}
	out[o] = '\0';
	return true;
}

/* Decimal in [min, max] from s[0..n). */
static bool
parse_num(const char *s, size_t n, long min, long max, long *out)
{
	if (n == 0 || n > 10)
		return false;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* [[user]:password@] from the start of s up to at (the last '@'). */
static int
parse_userinfo(struct rcache *c, const char *s, const char *at, char *err, size_t errsz)
{
	const char *colon = memchr(s, ':', (size_t)(at - s));
	if (colon == NULL) {
		snprintf(err, errsz, "redis URL: the part before '@' needs a ':' before the password"
			 " (redis://:PASSWORD@host or redis://USER:PASSWORD@host)");
		return -1;
	}
	if (!pct_decode(s, (size_t)(colon - s), c->user, sizeof c->user)) {
		snprintf(err, errsz, "redis URL: the user name is too long or has a bad %%-escape");
		return -1;
	}
	if (!pct_decode(colon + 1, (size_t)(at - colon - 1), c->password, sizeof c->password)) {
		snprintf(err, errsz, "redis URL: the password is too long or has a bad %%-escape");
		return -1;
	}
	if (c->password[0] == '\0') {
		snprintf(err, errsz, "redis URL: the password after ':' is empty");
		return -1;
	}
	c->has_password = true;
	return 0;
}

static bool
host_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_';
}

static int
parse_tcp(struct rcache *c, const char *s, char *err, size_t errsz)
{
	const char *at = strrchr(s, '@');
	if (at != NULL) {
		if (parse_userinfo(c, s, at, err, errsz) != 0)
			return -1;
		s = at + 1;
	}
	/* host: a name, an IPv4 address or [IPv6] */
	const char *h = s, *hend;
	if (*s == '[') {
		hend = strchr(s, ']');
		if (hend == NULL) {
			snprintf(err, errsz, "redis URL: '[' opens an IPv6 address without a ']'");
			return -1;
		}
		h = s + 1;
		s = hend + 1;
		unsigned char buf[16];
		char tmp[64];
		size_t n = (size_t)(hend - h);
		if (n == 0 || n >= sizeof tmp || (memcpy(tmp, h, n), tmp[n] = '\0',
						   uv_inet_pton(AF_INET6, tmp, buf) != 0)) {
			snprintf(err, errsz, "redis URL: '%.*s' is not an IPv6 address",
				 (int)(n > 60 ? 60 : n), h);
			return -1;
		}
	} else {
		while (*s != '\0' && *s != ':' && *s != '/')
			s++;
		hend = s;
		for (const char *p = h; p < hend; p++)
			if (!host_char_ok(*p)) {
				snprintf(err, errsz, "redis URL: host '%.*s' has a character that is not"
					 " allowed in a host name", (int)((hend - h) > 100 ? 100 : hend - h),
					 h);
				return -1;
			}
	}
	size_t hlen = (size_t)(hend - h);
	if (hlen == 0) {
		snprintf(err, errsz, "redis URL: the host is missing (redis://HOST[:PORT][/DB])");
		return -1;
	}
	if (hlen >= sizeof c->host) {
		snprintf(err, errsz, "redis URL: the host is too long");
		return -1;
	}
	memcpy(c->host, h, hlen);
	c->host[hlen] = '\0';
	c->port = 6379;
	if (*s == ':') {
		const char *p = ++s;
		while (*s != '\0' && *s != '/')
			s++;
		long port;
		if (!parse_num(p, (size_t)(s - p), 1, 65535, &port)) {
			snprintf(err, errsz, "redis URL: port '%.*s' is not a number from 1 to 65535",
				 (int)((s - p) > 20 ? 20 : s - p), p);
			return -1;
		}
		c->port = (int)port;
	}
	c->db = 0;
	if (*s == '/') {
		const char *p = ++s;
		size_t n = strlen(p);
		if (n > 0 && !parse_num(p, n, 0, INT_MAX, &c->db)) {
			snprintf(err, errsz, "redis URL: database '%.*s' is not a number"
				 " (redis://host:port/DB, DB from 0)", (int)(n > 20 ? 20 : n), p);
			return -1;
		}
	} else if (*s != '\0') {
		snprintf(err, errsz, "redis URL: unexpected '%.20s' after the host", s);
		return -1;
	}
	snprintf(c->name, sizeof c->name, "redis://%s%s%s:%d/%ld", strchr(c->host, ':') ? "[" : "",
		 c->host, strchr(c->host, ':') ? "]" : "", c->port, c->db);
	return 0;
}

static int
parse_unix(struct rcache *c, const char *s, char *err, size_t errsz)
{
	/* unix://[[user]:password@]/path[?db=N] */
	const char *q = strchr(s, '?');
	size_t end = q != NULL ? (size_t)(q - s) : strlen(s);
	const char *at = memrchr(s, '@', end);
	if (at != NULL) {
		if (parse_userinfo(c, s, at, err, errsz) != 0)
			return -1;
		end -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	if (end == 0 || s[0] != '/') {
		snprintf(err, errsz, "redis URL: unix:// needs an absolute socket path"
			 " (unix:///path/to/redis.sock)");
		return -1;
	}
	if (end >= sizeof c->path) {
		snprintf(err, errsz, "redis URL: socket path is longer than %zu bytes",
			 sizeof c->path - 1);
		return -1;
	}
	memcpy(c->path, s, end);
	c->path[end] = '\0';
	c->is_unix = true;
	c->db = 0;
	if (q != NULL) {
		const char *p = q + 1;
		if (strncmp(p, "db=", 3) != 0) {
			snprintf(err, errsz, "redis URL: unknown parameter '%.40s' (only db=N)", p);
			return -1;
		}
		p += 3;
		if (!parse_num(p, strlen(p), 0, INT_MAX, &c->db)) {
			snprintf(err, errsz, "redis URL: db '%.20s' is not a number", p);
			return -1;
		}
	}
	snprintf(c->host, sizeof c->host, "%s", c->path);
	snprintf(c->name, sizeof c->name, "unix://%s?db=%ld", c->path, c->db);
	return 0;
}

int
sts_cache_redis_check_url(const char *url, char *err, size_t errsz)
{
	struct rcache *c = calloc(1, sizeof *c);
	if (c == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	int rc;
	if (url == NULL) {
		snprintf(err, errsz, "redis cache: no URL");
		rc = -1;
	} else if (strncmp(url, "redis://", 8) == 0) {
		rc = parse_tcp(c, url + 8, err, errsz);
	} else if (strncmp(url, "unix://", 7) == 0) {
		rc = parse_unix(c, url + 7, err, errsz);
	} else {
		snprintf(err, errsz, "redis URL: give redis://host[:port][/db] or unix:///path");
		rc = -1;
	}
	memset(c->password, 0, sizeof c->password);
	free(c);
	return rc != 0 ? -1 : 0;
}

int
sts_cache_redis_open(uv_loop_t *loop, const char *url, unsigned timeout_ms,
		     const struct sts_logger *log, struct sts_cache **out, char *err, size_t errsz)
{
	*out = NULL;
	if (url == NULL || loop == NULL) {
		snprintf(err, errsz, "redis cache: no URL");
		return -1;
	}
	struct rcache *c = calloc(1, sizeof *c);
	if (c == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	int rc;
	if (strncmp(url, "redis://", 8) == 0)
		rc = parse_tcp(c, url + 8, err, errsz);
	else if (strncmp(url, "unix://", 7) == 0)
		rc = parse_unix(c, url + 7, err, errsz);
	else if (strncmp(url, "rediss://", 9) == 0) {
		snprintf(err, errsz, "redis URL: rediss:// (TLS) is not supported; use redis:// or"
			 " unix://");
		rc = -1;
	} else {
		const char *colon = strstr(url, "://");
		snprintf(err, errsz, "redis URL: scheme '%.*s' is not redis:// or unix://",
			 colon != NULL && colon - url < 20 ? (int)(colon - url) : 20, url);
		rc = -1;
	}
	if (rc != 0) {
		memset(c->password, 0, sizeof c->password);
		free(c);
		return -1;
	}
	c->base.ops = &redis_ops;
	if (log != NULL)
		c->base.log = *log;
	c->loop = loop;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->state = CONN_IDLE;
	uv_timer_init(loop, &c->retry);
	uv_unref((uv_handle_t *)&c->retry);   /* reconnecting is no reason to keep running */
	c->retry.data = c;
	c->refs = 1;   /* the retry timer, released when it is closed */
	conn_start(c);
	*out = &c->base;
	return 0;
}
