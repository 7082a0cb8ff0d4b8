/* sts_cache_postgres.c: the policy cache in a PostgreSQL table, shared by
 * every daemon pointed at the same database.
 *
 * libpq in non-blocking mode on the caller's libuv loop: PQconnectStart and
 * PQconnectPoll driven by a uv_poll on PQsocket, PQsendQueryParams, PQflush
 * until the query is out, PQconsumeInput / PQisBusy / PQgetResult as the
 * answer arrives. One query is on the wire at a time; the others wait in a
 * FIFO. Each operation has its own timer: no answer within timeout_ms fails
 * it, and the connection is dropped (PQcancel blocks, so it is not used),
 * which fails the rest; the backend then reconnects with back-off. While
 * there is no connection, operations fail at once so callers fall back to
 * the network (cache.h). Only the first connection attempt after open
 * queues operations: a daemon's first lookups should not miss a cache that
 * is a few milliseconds from ready.
 *
 * A host name in the DSN is resolved by libpq inside PQconnectPoll, which
 * blocks for the lookup; use an address (or hostaddr=) where that matters. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/cache.h>
#include <mtasts/status.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define SCAN_PAGE 500      /* rows per query of a scan (scan_sql says it too) */
#define MAX_AGE_MAX 31557600     /* one year, as the engine clamps it */

/* Created on every connect: several daemons may race here, see setup_done. */
static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS mtasts_policies ("
	" domain text PRIMARY KEY,"
	" id text NOT NULL,"
	" fetched_at bigint NOT NULL,"
	" max_age integer NOT NULL,"
	" mode text NOT NULL,"
	" policy text NOT NULL)";
static const char get_sql[] =
	"SELECT domain, id, fetched_at, max_age, mode, policy FROM mtasts_policies"
	" WHERE domain = $1";
/* Never replaces a newer fetch by an older one (another daemon's, say). */
static const char put_sql[] =
	"INSERT INTO mtasts_policies (domain, id, fetched_at, max_age, mode, policy)"
	" VALUES ($1, $2, $3, $4, $5, $6)"
	" ON CONFLICT (domain) DO UPDATE SET id = EXCLUDED.id,"
	" fetched_at = EXCLUDED.fetched_at, max_age = EXCLUDED.max_age,"
	" mode = EXCLUDED.mode, policy = EXCLUDED.policy"
	" WHERE mtasts_policies.fetched_at <= EXCLUDED.fetched_at";
static const char del_sql[] = "DELETE FROM mtasts_policies WHERE domain = $1";
static const char scan_sql[] =
	"SELECT domain, id, fetched_at, max_age, mode, policy FROM mtasts_policies"
	" WHERE domain > $1 ORDER BY domain LIMIT 500";

enum op_kind { OP_GET, OP_PUT, OP_DEL, OP_SCAN };

enum conn_state {
	ST_DOWN,         /* no connection; the tick timer retries */
	ST_CONNECTING,   /* PQconnectPoll */
	ST_SETUP,        /* the schema query */
	ST_READY,
};

struct pg_cache;

struct pg_op {
	enum op_kind kind;
	struct pg_op *next;
	struct pg_cache *c;              /* NULL once finished */
	uv_timer_t timer;                /* data = op; the op is freed when it closes */
	PGresult *res;
	char domain[STS_HOST_MAX + 1];   /* get, del, put */
	char *cursor;                    /* scan: the last domain seen, any length */
	/* put */
	char id[STS_ID_MAX + 1];
	char fetched_at[24];
	char max_age[12];
	char mode[8];
	char *policy;
	size_t policy_len;
	/* callbacks */
	sts_cache_get_cb get_cb;
	sts_cache_done_cb done_cb;
	sts_cache_each_cb each;
	void *arg;
};

/* A poll handle lives apart from the cache: it is replaced whenever libpq
 * may have changed its socket, and frees itself when closed. */
struct pg_poll {
	uv_poll_t h;
	int fd;
	struct pg_cache *c;
};

struct pg_cache {
	struct sts_cache base;
	uv_loop_t *loop;
	char *dsn;
	char label[300];                 /* host:port/db, no password: for logs */
	uint64_t timeout_ms;
	PGconn *conn;
	enum conn_state state;
	struct pg_poll *poll;
	int poll_events;
	bool flushing;                   /* PQflush returned 1: wait for writable */
	PGresult *setup_res;             /* the schema query's, until its NULL */
	uv_timer_t tick;                 /* reconnect back-off, or the connect deadline */
	uint64_t backoff_ms;
	bool outage;                     /* logged as down; ops fail at once */
	bool recreating;                 /* ST_SETUP on a live connection */
	bool closing;
	struct pg_op *head, *tail;       /* head is on the wire when inflight */
	bool inflight;
};

static void kick(struct pg_cache *c);
static void start_connect(struct pg_cache *c);

/* ---- helpers ----------------------------------------------------------- */

/* libpq's messages span lines ("...failed: Connection refused\n\tIs the
 * server running..."): one line, no trailing blank. */
static const char *
one_line(const char *in, char *buf, size_t n)
{
	size_t j = 0;
	bool space = false;
	for (const char *p = in != NULL ? in : ""; *p != '\0' && j + 1 < n; p++) {
		if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
			space = j > 0;
			continue;
		}
		if (space && j + 2 < n)
			buf[j++] = ' ';
		space = false;
		buf[j++] = *p;
	}
	buf[j] = '\0';
	if (j == 0)
		snprintf(buf, n, "no message from libpq");
	return buf;
}

static void
poll_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
poll_drop(struct pg_cache *c)
{
	if (c->poll == NULL)
		return;
	uv_close((uv_handle_t *)&c->poll->h, poll_closed);
	c->poll = NULL;
	c->poll_events = 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches libpq's current socket for events; a new handle when the socket
 * may have changed (during connect libpq closes one and opens the next, and
 * the new one may reuse the number). Returns false when libpq has none. */
static bool
poll_watch(struct pg_cache *c, int events, bool renew)
{
	int fd = PQsocket(c->conn);
	if (fd < 0)
		return false;
	if (c->poll != NULL && (renew || c->poll->fd != fd))
		poll_drop(c);
	if (c->poll == NULL) {
		struct pg_poll *p = calloc(1, sizeof *p);
		if (p == NULL)
			return false;
		if (uv_poll_init(c->loop, &p->h, fd) != 0) {
			free(p);
			return false;
		}
		p->fd = fd;
		p->c = c;
		p->h.data = p;
		/* The connection alone does not keep the loop alive: pending
		 * operations do, through their timers. */
		uv_unref((uv_handle_t *)&p->h);
		c->poll = p;
		c->poll_events = 0;
	}
	if (c->poll_events != events) {
		if (uv_poll_start(&c->poll->h, events, on_poll) != 0)
			return false;
		c->poll_events = events;
	}
	return true;
}

/* ---- operations -------------------------------------------------------- */

static void
op_timer_closed(uv_handle_t *h)
{
	struct pg_op *op = h->data;
	PQclear(op->res);
	free(op->policy);
	free(op->cursor);
	free(op);
}

/* Unlinks op from the cache's queue (it must be there). */
static void
op_unlink(struct pg_cache *c, struct pg_op *op)
{
	struct pg_op **pp = &c->head, *prev = NULL;
	while (*pp != NULL && *pp != op) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == NULL)
		return;
	if (op == c->head)
		c->inflight = false;
	*pp = op->next;
	if (c->tail == op)
		c->tail = prev;
	op->next = NULL;
}

/* Calls op back with status (entry only for a get hit) and frees it. The
 * op must be out of the queue. Exactly once: c is cleared first. */
static void
op_finish(struct pg_op *op, int status, const struct sts_cache_entry *e)
{
	op->c = NULL;
	uv_timer_stop(&op->timer);
	switch (op->kind) {
	case OP_GET:
		op->get_cb(op->arg, status, status == 1 ? e : NULL);
		break;
	case OP_PUT:
	case OP_DEL:
	case OP_SCAN:
		if (op->done_cb != NULL)
			op->done_cb(op->arg, status);
		break;
	}
	uv_close((uv_handle_t *)&op->timer, op_timer_closed);
}

/* Fails every queued operation. The queue is taken first: a callback may
 * submit new work (which fails at once while down) or close the cache. */
static void
fail_all(struct pg_cache *c, int status)
{
	struct pg_op *op = c->head;
	c->head = c->tail = NULL;
	c->inflight = false;
	while (op != NULL) {
		struct pg_op *next = op->next;
		op->next = NULL;
		op_finish(op, status, NULL);
		op = next;
	}
}

/* ---- connection -------------------------------------------------------- */

static void
drop_conn(struct pg_cache *c)
{
	poll_drop(c);   /* before PQfinish closes the socket under the poll */
	PQclear(c->setup_res);
	c->setup_res = NULL;
	if (c->conn != NULL)
		PQfinish(c->conn);
	c->conn = NULL;
	c->flushing = false;
	c->recreating = false;
	c->state = ST_DOWN;
}

static void
on_retry(uv_timer_t *t)
{
	struct pg_cache *c = t->data;
	if (c->state == ST_DOWN && !c->closing)
		start_connect(c);
}

static void conn_failed(struct pg_cache *c, const char *what, const char *why);

static void
on_connect_deadline(uv_timer_t *t)
{
	struct pg_cache *c = t->data;
	char msg[96];
	snprintf(msg, sizeof msg, "no answer within %" PRIu64 " ms", c->timeout_ms);
	conn_failed(c, "cannot connect", msg);
}

static void
schedule_retry(struct pg_cache *c)
{
	uv_timer_stop(&c->tick);
	uv_timer_start(&c->tick, on_retry, c->backoff_ms, 0);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* The connection (or the attempt) is gone: log once per outage, retry
 * later, and fail what was waiting for it. */
static void
conn_failed(struct pg_cache *c, const char *what, const char *why)
{
	drop_conn(c);
	if (c->closing)
		return;
	if (!c->outage) {
		c->outage = true;
		sts_log(&c->base.log, STS_LOG_ERROR,
			"cache PostgreSQL %s: %s: %s; operations fail until it is back"
			" (retrying in the background)", c->label, what, why);
	} else {
		sts_log(&c->base.log, STS_LOG_DEBUG, "cache PostgreSQL %s: %s: %s", c->label,
			what, why);
	}
	schedule_retry(c);
	fail_all(c, STS_EIO);
}

static void
conn_broken(struct pg_cache *c)
{
	char buf[512];
	one_line(PQerrorMessage(c->conn), buf, sizeof buf);
	conn_failed(c, c->state == ST_READY ? "connection lost" : "cannot connect", buf);
}

static void
setup_done(struct pg_cache *c, PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	/* Two daemons creating the table at once: the loser sees a unique
	 * violation in the catalog (23505) or "already exists" (42P07). */
	bool raced = st == PGRES_FATAL_ERROR && code != NULL &&
		     (strcmp(code, "23505") == 0 || strcmp(code, "42P07") == 0);
	if (st != PGRES_COMMAND_OK && !raced) {
		char buf[512];
		one_line(PQresultErrorMessage(r), buf, sizeof buf);
		PQclear(r);
		conn_failed(c, "cannot create the table mtasts_policies", buf);
		return;
	}
	PQclear(r);
	c->state = ST_READY;
	uv_timer_stop(&c->tick);
	c->backoff_ms = BACKOFF_MIN_MS;
	if (c->recreating)
		sts_log(&c->base.log, STS_LOG_WARNING, "cache PostgreSQL %s: the table"
			" mtasts_policies was missing; created it again", c->label);
	else if (c->outage)
		sts_log(&c->base.log, STS_LOG_WARNING, "cache PostgreSQL %s: connected again",
			c->label);
	else
		sts_log(&c->base.log, STS_LOG_INFO, "cache PostgreSQL %s: connected", c->label);
	c->outage = false;
	c->recreating = false;
}

/* Sends what libpq has buffered; the poll waits for writable until done. */
static bool
flush_out(struct pg_cache *c)
{
	int r = PQflush(c->conn);
	if (r < 0)
		return false;
	c->flushing = r == 1;
	return poll_watch(c, c->flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE, false);
}

static void
nothing_notices(void *arg, const char *message)
{
	/* "relation already exists, skipping" and the like: the library never
	 * prints, and these say nothing an operator needs. */
	(void)arg;
	(void)message;
}

static void
connected(struct pg_cache *c)
{
	PQsetNoticeProcessor(c->conn, nothing_notices, NULL);
	if (PQsetnonblocking(c->conn, 1) != 0 || !PQsendQuery(c->conn, schema_sql)) {
		conn_broken(c);
		return;
	}
	c->state = ST_SETUP;
	if (!flush_out(c))
		conn_broken(c);
}

/* The table went away under a live connection (dropped by hand): create it
 * again before the next operation, which queues meanwhile. */
static void
recreate_table(struct pg_cache *c)
{
	if (!PQsendQuery(c->conn, schema_sql)) {
		conn_broken(c);
		return;
	}
	c->state = ST_SETUP;
	c->recreating = true;
	uv_timer_stop(&c->tick);
	uv_timer_start(&c->tick, on_connect_deadline, c->timeout_ms, 0);
	if (!flush_out(c))
		conn_broken(c);
}

static void
connect_step(struct pg_cache *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		if (!poll_watch(c, UV_READABLE, true))
			conn_broken(c);
		break;
	case PGRES_POLLING_WRITING:
		if (!poll_watch(c, UV_WRITABLE, true))
			conn_broken(c);
		break;
	case PGRES_POLLING_OK:
		connected(c);
		break;
	case PGRES_POLLING_FAILED:
	default:
		conn_broken(c);
		break;
	}
}

static void
start_connect(struct pg_cache *c)
{
	static const char *const keys[] = { "dbname", "fallback_application_name", NULL };
	const char *const vals[] = { c->dsn, "mtasts", NULL };
	/* expand_dbname: the DSN (URI or key=value) is read as a whole. */
	c->conn = PQconnectStartParams(keys, vals, 1);
	if (c->conn == NULL) {
		conn_failed(c, "cannot connect", "out of memory");
		return;
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		conn_broken(c);
		return;
	}
	c->state = ST_CONNECTING;
	/* PQconnectPoll has no clock of its own. */
	uv_timer_stop(&c->tick);
	uv_timer_start(&c->tick, on_connect_deadline, c->timeout_ms, 0);
	/* As if PQconnectPoll had said PGRES_POLLING_WRITING (libpq's docs). */
	if (!poll_watch(c, UV_WRITABLE, true))
		conn_broken(c);
}

/* ---- results ----------------------------------------------------------- */

static bool
parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* Fills e from row i, borrowing the policy text from r. A value that does
 * not fit (a row written by something else, or damaged) is refused. */
static bool
row_to_entry(PGresult *r, int i, struct sts_cache_entry *e)
{
	memset(e, 0, sizeof *e);
	if (PQnfields(r) != 6)
		return false;
	for (int f = 0; f < 6; f++)
		if (PQgetisnull(r, i, f))
			return false;
	int dl = PQgetlength(r, i, 0), il = PQgetlength(r, i, 1), ml = PQgetlength(r, i, 4);
	if (dl < 1 || dl > STS_HOST_MAX || il < 1 || il > STS_ID_MAX || ml < 1 ||
	    (size_t)ml >= sizeof e->mode)
		return false;
	const char *mode = PQgetvalue(r, i, 4);
	if (strcmp(mode, "enforce") != 0 && strcmp(mode, "testing") != 0 &&
	    strcmp(mode, "none") != 0)
		return false;
	int64_t fetched_at, max_age;
	if (!parse_i64(PQgetvalue(r, i, 2), &fetched_at) ||
	    !parse_i64(PQgetvalue(r, i, 3), &max_age) || max_age < 0 || max_age > MAX_AGE_MAX)
		return false;
	const char *policy = PQgetvalue(r, i, 5);
	int pl = PQgetlength(r, i, 5);
	if (pl < 0 || strlen(policy) != (size_t)pl)
		return false;
	memcpy(e->domain, PQgetvalue(r, i, 0), (size_t)dl);
	memcpy(e->id, PQgetvalue(r, i, 1), (size_t)il);
	memcpy(e->mode, mode, (size_t)ml);
	e->fetched_at = fetched_at;
	e->max_age = (uint32_t)max_age;
	e->policy = PQgetvalue(r, i, 5);   /* borrowed: not cleared by us */
	e->policy_len = (size_t)pl;
	return true;
}

static void
log_row(struct pg_cache *c, PGresult *r, int i)
{
	char dom[STS_HOST_MAX + 1];
	snprintf(dom, sizeof dom, "%s", PQgetisnull(r, i, 0) ? "(null)" : PQgetvalue(r, i, 0));
	sts_log(&c->base.log, STS_LOG_ERROR,
		"cache PostgreSQL %s: the row for '%s' in mtasts_policies is malformed; ignoring it",
		c->label, dom);
}

static bool send_op(struct pg_cache *c, struct pg_op *op);

/* The answer to the head operation is complete (PQgetResult gave NULL). */
static void
op_answered(struct pg_cache *c)
{
	struct pg_op *op = c->head;
	PGresult *r = op->res;
	ExecStatusType st = PQresultStatus(r);
	if (r == NULL || (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)) {
		char buf[512];
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		bool missing = code != NULL && strcmp(code, "42P01") == 0;   /* undefined_table */
		one_line(r != NULL ? PQresultErrorMessage(r) : "no result", buf, sizeof buf);
		sts_log(&c->base.log, STS_LOG_ERROR, "cache PostgreSQL %s: %s %s failed: %s",
			c->label, op->kind == OP_GET ? "reading" : op->kind == OP_PUT ? "storing" :
			op->kind == OP_DEL ? "deleting" : "scanning", op->kind == OP_SCAN ? "the table" :
			op->domain, buf);
		op_unlink(c, op);
		/* Before the callback: what it submits must queue behind this. */
		if (missing)
			recreate_table(c);
		op_finish(op, STS_EIO, NULL);
		return;
	}
	switch (op->kind) {
	case OP_GET: {
		op_unlink(c, op);
		struct sts_cache_entry e;
		if (PQntuples(r) == 0) {
			op_finish(op, 0, NULL);
		} else if (!row_to_entry(r, 0, &e) || strcmp(e.domain, op->domain) != 0) {
			log_row(c, r, 0);
			op_finish(op, STS_ESTATE, NULL);
		} else {
			op_finish(op, 1, &e);
		}
		break;
	}
	case OP_PUT:
		op_unlink(c, op);
		op_finish(op, 0, NULL);
		break;
	case OP_DEL: {
		const char *n = PQcmdTuples(r);
		op_unlink(c, op);
		op_finish(op, n[0] != '\0' && strcmp(n, "0") != 0 ? 1 : 0, NULL);
		break;
	}
	case OP_SCAN: {
		int rows = PQntuples(r);
		/* The op stays at the head (in flight) while each() runs, so work
		 * it submits queues behind the scan. */
		for (int i = 0; i < rows; i++) {
			struct sts_cache_entry e;
			char *cur = strdup(PQgetvalue(r, i, 0));
			if (cur == NULL) {
				op_unlink(c, op);
				op_finish(op, STS_ENOMEM, NULL);
				return;
			}
			free(op->cursor);
			op->cursor = cur;
			if (!row_to_entry(r, i, &e)) {
				log_row(c, r, i);
				continue;
			}
			int stop = op->each(op->arg, &e);
			if (c->closing || op->c == NULL)
				return;   /* close() called it back */
			if (stop) {
				op_unlink(c, op);
				op_finish(op, 0, NULL);
				return;
			}
		}
		PQclear(op->res);
		op->res = NULL;
		if (rows < SCAN_PAGE) {
			op_unlink(c, op);
			op_finish(op, 0, NULL);
			return;
		}
		/* The next page: the timeout counts per answer. */
		uv_timer_again(&op->timer);
		if (!send_op(c, op))
			conn_broken(c);
		break;
	}
	}
}

/* Reads what arrived; completes the head operation when its answer is. */
static void
read_results(struct pg_cache *c)
{
	if (!PQconsumeInput(c->conn)) {
		conn_broken(c);
		return;
	}
	/* libpq's docs: after reading, flush again what is still to go. */
	if (c->flushing && !flush_out(c)) {
		conn_broken(c);
		return;
	}
	while (c->conn != NULL && !c->closing && !PQisBusy(c->conn)) {
		PGresult *r = PQgetResult(c->conn);
		if (c->state == ST_SETUP) {
			/* Keep the result until libpq says the query is over (NULL). */
			if (r != NULL) {
				PQclear(c->setup_res);
				c->setup_res = r;
				continue;
			}
			r = c->setup_res;
			c->setup_res = NULL;
			if (r == NULL)
				break;
			setup_done(c, r);
			if (c->state == ST_READY)
				kick(c);
			return;
		}
		if (!c->inflight) {
			/* Nothing was asked: an error the server sends before it
			 * closes (administrator command), or nothing at all. */
			if (r == NULL)
				break;
			PQclear(r);
			continue;
		}
		if (r != NULL) {
			PQclear(c->head->res);
			c->head->res = r;
			continue;
		}
		op_answered(c);
		if (c->conn != NULL && !c->closing)
			kick(c);
		return;   /* kick sent the next query, or nothing is pending */
	}
	if (c->conn != NULL && PQstatus(c->conn) == CONNECTION_BAD)
		conn_broken(c);
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
	struct pg_poll *p = h->data;
	struct pg_cache *c = p->c;
	if (c->poll != p || c->conn == NULL || c->closing)
		return;
	if (status < 0) {
		/* libuv reports POLLERR (a refused connect, a reset) as UV_EBADF
		 * and stops the handle: let libpq read the socket's real error. */
		c->poll_events = 0;
		if (c->state == ST_CONNECTING) {
			connect_step(c);
			return;
		}
		if (!PQconsumeInput(c->conn)) {
			conn_broken(c);
			return;
		}
		conn_failed(c, c->state == ST_READY ? "connection lost" : "cannot connect",
			    uv_strerror(status));
		return;
	}
	if (c->state == ST_CONNECTING) {
		connect_step(c);
		return;
	}
	if ((events & UV_WRITABLE) && c->flushing && !flush_out(c)) {
		conn_broken(c);
		return;
	}
	if (events & UV_READABLE)
		read_results(c);
}

/* ---- ops --------------------------------------------------------------- */

static bool
send_op(struct pg_cache *c, struct pg_op *op)
{
	const char *vals[6];
	int lens[6] = { 0 }, fmts[6] = { 0 };
	int ok = 0;
	vals[0] = op->domain;
	switch (op->kind) {
	case OP_GET:
		ok = PQsendQueryParams(c->conn, get_sql, 1, NULL, vals, NULL, NULL, 0);
		break;
	case OP_DEL:
		ok = PQsendQueryParams(c->conn, del_sql, 1, NULL, vals, NULL, NULL, 0);
		break;
	case OP_SCAN:
		vals[0] = op->cursor != NULL ? op->cursor : "";
		ok = PQsendQueryParams(c->conn, scan_sql, 1, NULL, vals, NULL, NULL, 0);
		break;
	case OP_PUT:
		vals[1] = op->id;
		vals[2] = op->fetched_at;
		vals[3] = op->max_age;
		vals[4] = op->mode;
		/* Binary: exactly policy_len bytes (a text value is the bytes). */
		vals[5] = op->policy;
		lens[5] = (int)op->policy_len;
		fmts[5] = 1;
		ok = PQsendQueryParams(c->conn, put_sql, 6, NULL, vals, lens, fmts, 0);
		break;
	}
	if (!ok)
		return false;
	c->inflight = true;
	return flush_out(c);
}

/* Sends the head operation when the connection is idle and ready. */
static void
kick(struct pg_cache *c)
{
	if (c->closing || c->state != ST_READY || c->inflight || c->head == NULL)
		return;
	if (!send_op(c, c->head))
		conn_broken(c);
}

static void
on_op_timeout(uv_timer_t *t)
{
	struct pg_op *op = t->data;
	struct pg_cache *c = op->c;
	if (c == NULL)
		return;
	char msg[96];
	snprintf(msg, sizeof msg, "no answer within %" PRIu64 " ms", c->timeout_ms);
	/* An answer may still come for what is on the wire: only a new
	 * connection is safe. conn_failed fails this op with the rest. */
	if (c->state == ST_READY)
		conn_failed(c, "connection dropped", msg);
	else
		conn_failed(c, "cannot connect", msg);
}

/* Queues op, or fails it at once while there is no connection. */
static void
submit(struct pg_cache *c, struct pg_op *op)
{
	op->c = c;
	uv_timer_init(c->loop, &op->timer);
	op->timer.data = op;
	if (c->closing || c->outage || c->state == ST_DOWN) {
		op_finish(op, STS_EIO, NULL);
		return;
	}
	uv_timer_start(&op->timer, on_op_timeout, c->timeout_ms, c->timeout_ms);
	if (c->tail != NULL)
		c->tail->next = op;
	else
		c->head = op;
	c->tail = op;
	kick(c);
}

static struct pg_op *
op_new(enum op_kind kind, const char *domain)
{
	struct pg_op *op = calloc(1, sizeof *op);
	if (op == NULL)
		return NULL;
	op->kind = kind;
	if (domain != NULL && strlen(domain) > STS_HOST_MAX) {
		free(op);
		return NULL;
	}
	if (domain != NULL)
		snprintf(op->domain, sizeof op->domain, "%s", domain);
	return op;
}

static void
pg_get(struct sts_cache *base, const char *domain, sts_cache_get_cb cb, void *arg)
{
	struct pg_cache *c = (struct pg_cache *)base;
	struct pg_op *op = op_new(OP_GET, domain);
	if (op == NULL) {
		cb(arg, strlen(domain) > STS_HOST_MAX ? STS_EINVAL : STS_ENOMEM, NULL);
		return;
	}
	op->get_cb = cb;
	op->arg = arg;
	submit(c, op);
}

static void
pg_put(struct sts_cache *base, const struct sts_cache_entry *e, sts_cache_done_cb cb,
       void *arg)
{
	struct pg_cache *c = (struct pg_cache *)base;
	struct pg_op *op = op_new(OP_PUT, e->domain);
	if (op != NULL) {
		op->policy = malloc(e->policy_len + 1);
		if (op->policy == NULL) {
			free(op);
			op = NULL;
		}
	}
	if (op == NULL) {
		if (cb) cb(arg, STS_ENOMEM);
		return;
	}
	memcpy(op->policy, e->policy, e->policy_len);
	op->policy[e->policy_len] = '\0';
	op->policy_len = e->policy_len;
	snprintf(op->id, sizeof op->id, "%s", e->id);
	snprintf(op->mode, sizeof op->mode, "%s", e->mode);
	snprintf(op->fetched_at, sizeof op->fetched_at, "%" PRId64, e->fetched_at);
	snprintf(op->max_age, sizeof op->max_age, "%" PRIu32,
		 e->max_age > MAX_AGE_MAX ? (uint32_t)MAX_AGE_MAX : e->max_age);
	op->done_cb = cb;
	op->arg = arg;
	submit(c, op);
}

static void
pg_del(struct sts_cache *base, const char *domain, sts_cache_done_cb cb, void *arg)
{
	struct pg_cache *c = (struct pg_cache *)base;
	struct pg_op *op = op_new(OP_DEL, domain);
	if (op == NULL) {
		if (cb) cb(arg, strlen(domain) > STS_HOST_MAX ? STS_EINVAL : STS_ENOMEM);
		return;
	}
	op->done_cb = cb;
	op->arg = arg;
	submit(c, op);
}

static void
pg_scan(struct sts_cache *base, sts_cache_each_cb each, sts_cache_done_cb done, void *arg)
{
	struct pg_cache *c = (struct pg_cache *)base;
	struct pg_op *op = op_new(OP_SCAN, "");
	if (op == NULL) {
		if (done) done(arg, STS_ENOMEM);
		return;
	}
	op->each = each;
	op->done_cb = done;
	op->arg = arg;
	submit(c, op);
}

static void
tick_closed(uv_handle_t *h)
{
	struct pg_cache *c = h->data;
	free(c->dsn);
	free(c);
}

static void
pg_close(struct sts_cache *base)
{
	struct pg_cache *c = (struct pg_cache *)base;
	if (c->closing)
		return;
	c->closing = true;
	drop_conn(c);
	uv_timer_stop(&c->tick);
	/* Freed when the timer has closed: a callback below, or the frame that
	 * called back into close, may still look at c->closing. */
	uv_close((uv_handle_t *)&c->tick, tick_closed);
	fail_all(c, STS_EIO);
}

static const struct sts_cache_ops pg_ops = {
	.name = "postgres",
	.get = pg_get,
	.put = pg_put,
	.del = pg_del,
	.scan = pg_scan,
	.close = pg_close,
};

static bool
one_of(const char *v, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(v, *set) == 0)
			return true;
	return false;
}

/* PQconninfoParse takes any value; libpq checks these few only when it
 * connects, and would then fail on every retry. A typo in the
 * configuration is an error at open, with libpq's wording. */
static bool
check_values(PQconninfoOption *opts, char *err, size_t errsz)
{
	static const char *const sslmodes[] = { "disable", "allow", "prefer", "require",
						"verify-ca", "verify-full", NULL };
	static const char *const gssmodes[] = { "disable", "prefer", "require", NULL };
	static const char *const attrs[] = { "any", "read-write", "read-only", "primary",
					     "standby", "prefer-standby", NULL };
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		const char *v = o->val;
		if (v == NULL)
			continue;
		const char *const *set = strcmp(o->keyword, "sslmode") == 0 ? sslmodes :
					 strcmp(o->keyword, "gssencmode") == 0 ? gssmodes :
					 strcmp(o->keyword, "target_session_attrs") == 0 ? attrs : NULL;
		if (set != NULL && !one_of(v, set)) {
			snprintf(err, errsz, "invalid PostgreSQL DSN: invalid %s value: \"%.64s\"",
				 o->keyword, v);
			return false;
		}
		if (strcmp(o->keyword, "port") != 0)
			continue;
		/* A port per host, comma-separated; an empty one is the default. */
		for (const char *p = v; ; p++) {
			long n = 0;
			const char *start = p;
			while (*p >= '0' && *p <= '9' && n <= 65535)
				n = n * 10 + (*p++ - '0');
			if ((*p != ',' && *p != '\0') || n > 65535 || (p > start && n == 0)) {
				snprintf(err, errsz, "invalid PostgreSQL DSN: invalid port number: \"%.64s\"",
					 v);
				return false;
			}
			if (*p == '\0')
				break;
		}
	}
	return true;
}

/* host[:port][/dbname] from the parsed DSN, for log lines (never the
 * password). */
static void
make_label(PQconninfoOption *opts, char *buf, size_t n)
{
	const char *host = NULL, *hostaddr = NULL, *port = NULL, *db = NULL;
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0) host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0) hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0) port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0) db = o->val;
	}
	const char *h = host != NULL ? host : hostaddr != NULL ? hostaddr : "(default host)";
	snprintf(buf, n, "%s%s%s%s%s", h, port != NULL ? ":" : "", port != NULL ? port : "",
		 db != NULL ? "/" : "", db != NULL ? db : "");
}

int
sts_cache_postgres_check_dsn(const char *dsn, char *err, size_t errsz)
{
	if (dsn == NULL) {
		snprintf(err, errsz, "no PostgreSQL DSN given");
		return -1;
	}
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
	if (opts == NULL) {
		char buf[512];
		snprintf(err, errsz, "invalid PostgreSQL DSN: %s",
			 perr != NULL ? one_line(perr, buf, sizeof buf) : "out of memory");
		PQfreemem(perr);
		return -1;
	}
	bool ok = check_values(opts, err, errsz);
	PQconninfoFree(opts);
	return ok ? 0 : -1;
}

int
sts_cache_postgres_open(uv_loop_t *loop, const char *dsn, unsigned timeout_ms,
			const struct sts_logger *log, struct sts_cache **out, char *err,
			size_t errsz)
{
	*out = NULL;
	if (sts_cache_postgres_check_dsn(dsn, err, errsz) != 0)
		return -1;
	PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
	if (opts == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	struct pg_cache *c = calloc(1, sizeof *c);
	if (c == NULL || (c->dsn = strdup(dsn)) == NULL) {
		free(c);
		PQconninfoFree(opts);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	make_label(opts, c->label, sizeof c->label);
	PQconninfoFree(opts);
	c->base.ops = &pg_ops;
	if (log != NULL)
		c->base.log = *log;
	c->loop = loop;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->state = ST_DOWN;
	uv_timer_init(loop, &c->tick);
	c->tick.data = c;
	/* Background reconnects do not keep a loop alive on their own. */
	uv_unref((uv_handle_t *)&c->tick);
	start_connect(c);
	*out = &c->base;
	return 0;
}
