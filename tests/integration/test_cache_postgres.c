/* test_cache_postgres.c: the PostgreSQL policy cache against a real server
 * this test starts (tests/servers/postgres in a mkdtemp directory, port
 * 15432, under the lock /tmp/mtasts-postgres-15432.lock) and stops at exit.
 * Speaks TAP. If the server cannot start this is a failure ("Bail out!"),
 * never a skip.
 *
 * Covered: bad DSNs refused at open with libpq's message; the server down
 * at open (operations fail fast, one log line, the backend connects once
 * the server is up); round trips with exact policy bodies; miss; del 1/0;
 * an older put never replaces a newer one; scans over several pages and
 * stopping early; two handles sharing entries; DSN forms (URI, key=value,
 * UNIX socket directory, passwords, a wrong password); malformed rows;
 * SIGKILL of the server under load (every pending operation called back
 * once, reconnect after a restart); a stalled server (SIGSTOP: failure after
 * timeout_ms); close with operations pending, also from a callback or from
 * a scan's each(); eight handles creating the table at once (the losers of
 * that race see a unique violation); and at the end uv_loop_close proves
 * every handle was closed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <mtasts/cache.h>
#include <mtasts/status.h>

#include "tap.h"

#define PG_PORT 15432
#define LOCK_PATH "/tmp/mtasts-postgres-15432.lock"
#define TIMEOUT_MS 3000          /* ordinary handles */
#define FAST_MS 1000             /* the stalled-server handle */
#define N_SCAN 1234              /* more than two pages of 500 */
#define N_LOAD 3000

static uv_loop_t loop;
static char root[PATH_MAX], tmproot[PATH_MAX], pgdir[PATH_MAX + 8], script[PATH_MAX + 32];
static bool server_made;
static char dsn[512], sockdir[PATH_MAX + 8], pgbin[PATH_MAX], pw_user[64], pw_pass[64],
	pw_db[64];

/* ---- the server ---------------------------------------------------------- */

static void
server(const char *what)
{
	if (tap_run("'%s' %s '%s' %d >'%s/server.out' 2>&1", script, what, pgdir,
		strcmp(what, "start") == 0 ? PG_PORT : 0, tmproot) != 0) {
		char out[PATH_MAX + 16];
		snprintf(out, sizeof out, "%s/server.out", tmproot);
		diag_file("server", out, 30);
		bail("tests/servers/postgres %s failed (package postgresql installed?)", what);
	}
}

static void
cleanup(void)
{
	if (server_made) {
		server_made = false;
		tap_run("'%s' stop '%s' >/dev/null 2>&1", script, pgdir);
	}
	if (tmproot[0] != '\0' && getenv("MTASTS_KEEP_PG") == NULL)
		tap_run("rm -rf '%s'", tmproot);
}

static void
env_value(const char *text, const char *key, char *out, size_t n)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\n%s=", key);
	const char *p = strstr(text, pat);
	if (p == NULL)
		bail("%s missing in pg.env", key);
	p += strlen(pat);
	if (*p == '\'')
		p++;
	size_t len = strcspn(p, "'\n");
	if (len >= n)
		bail("%s too long in pg.env", key);
	memcpy(out, p, len);
	out[len] = '\0';
}

static void
setup_server(void)
{
	const char *src = getenv("MTASTS_SOURCE_ROOT");
	if (src == NULL)
		bail("MTASTS_SOURCE_ROOT is not set (run through meson test)");
	if (realpath(src, root) == NULL)
		bail("MTASTS_SOURCE_ROOT=%s: %s", src, strerror(errno));
	snprintf(script, sizeof script, "%s/tests/servers/postgres", root);
	if (access(script, X_OK) != 0)
		bail("%s: %s", script, strerror(errno));
	/* Two builds running this test at once would share the port. */
	int fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		bail("open %s: %s", LOCK_PATH, strerror(errno));
	for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; i++) {
		if (i == 2400)
			bail("another test held %s for 240 s", LOCK_PATH);
		usleep(100000);
	}
	snprintf(tmproot, sizeof tmproot, "%s/mtasts-pg.XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmproot) == NULL)
		bail("mkdtemp %s: %s", tmproot, strerror(errno));
	snprintf(pgdir, sizeof pgdir, "%s/pg", tmproot);
	atexit(cleanup);
	server_made = true;
	server("start");
	char path[PATH_MAX + 16], text[4096] = "\n";
	snprintf(path, sizeof path, "%s/pg.env", pgdir);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		bail("%s: %s", path, strerror(errno));
	size_t n = fread(text + 1, 1, sizeof text - 2, fp);
	text[n + 1] = '\0';
	fclose(fp);
	env_value(text, "PG_DSN", dsn, sizeof dsn);
	env_value(text, "PG_SOCKDIR", sockdir, sizeof sockdir);
	env_value(text, "PG_BIN", pgbin, sizeof pgbin);
	env_value(text, "PG_PW_USER", pw_user, sizeof pw_user);
	env_value(text, "PG_PW_PASSWORD", pw_pass, sizeof pw_pass);
	env_value(text, "PG_PW_DB", pw_db, sizeof pw_db);
	diag("PostgreSQL on %s (%s)", dsn, pgdir);
}

static int
psql(const char *sql)
{
	return tap_run("'%s/psql' -X -q -v ON_ERROR_STOP=1 -h '%s' -p %d -U postgres -d mtasts"
		   " -c \"%s\" >>'%s/psql.out' 2>&1", pgbin, sockdir, PG_PORT, sql, tmproot);
}

/* ---- the loop and logs ----------------------------------------------------- */

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
on_deadline(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Runs the loop until *flag or secs pass. The cache's own handles do not
 * keep the loop alive, so a timer does. */
static bool
run_until(const bool *flag, double secs)
{
	bool late = false;
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	t.data = &late;
	uv_timer_start(&t, on_deadline, (uint64_t)(secs * 1000), 0);
	while (!*flag && !late)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return *flag;
}

static void
sleep_loop(double secs)
{
	bool never = false;
	run_until(&never, secs);
}

struct logbuf {
	char text[64 * 1024];
	size_t len;
};

static void
log_fn(void *ctx, enum sts_log_level level, const char *msg)
{
	struct logbuf *lb = ctx;
	(void)level;
	int n = snprintf(lb->text + lb->len, sizeof lb->text - lb->len, "%s\n", msg);
	if (n > 0 && lb->len + (size_t)n < sizeof lb->text)
		lb->len += (size_t)n;
	if (getenv("MTASTS_TEST_VERBOSE") != NULL)
		diag("log: %s", msg);
}

static unsigned
count_in(const struct logbuf *lb, const char *needle)
{
	unsigned n = 0;
	for (const char *p = lb->text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

#define DOWN_LINE "operations fail until it is back"
#define BACK_LINE "connected again"

/* ---- synchronous wrappers ---------------------------------------------------- */

struct res {
	bool done;
	int calls;
	int status;
	struct sts_cache_entry e;   /* a copy on a hit */
	double at;
};

static void
get_cb(void *arg, int status, const struct sts_cache_entry *e)
{
	struct res *r = arg;
	r->calls++;
	r->done = true;
	r->status = status;
	r->at = now_s();
	if (status == 1 && e != NULL) {
		r->e = *e;
		r->e.policy = malloc(e->policy_len + 1);
		if (r->e.policy == NULL)
			bail("out of memory");
		memcpy(r->e.policy, e->policy, e->policy_len + 1);
	}
}

static void
done_cb(void *arg, int status)
{
	struct res *r = arg;
	r->calls++;
	r->done = true;
	r->status = status;
	r->at = now_s();
}

static int
get_sync(struct sts_cache *c, const char *domain, struct sts_cache_entry *out)
{
	struct res r = { 0 };
	c->ops->get(c, domain, get_cb, &r);
	if (!run_until(&r.done, 30))
		bail("get %s: no callback in 30 s", domain);
	if (out != NULL)
		*out = r.e;
	else
		sts_cache_entry_clear(&r.e);
	return r.status;
}

static int
put_sync(struct sts_cache *c, const struct sts_cache_entry *e)
{
	struct res r = { 0 };
	c->ops->put(c, e, done_cb, &r);
	if (!run_until(&r.done, 30))
		bail("put %s: no callback in 30 s", e->domain);
	return r.status;
}

static int
del_sync(struct sts_cache *c, const char *domain)
{
	struct res r = { 0 };
	c->ops->del(c, domain, done_cb, &r);
	if (!run_until(&r.done, 30))
		bail("del %s: no callback in 30 s", domain);
	return r.status;
}

struct scan {
	struct res r;              /* first: done_cb's argument */
	unsigned seen, stop_after, out_of_order;
	char last[STS_HOST_MAX + 1];
	const char *prefix;        /* count only these */
	unsigned matching;
};

static int
each_cb(void *arg, const struct sts_cache_entry *e)
{
	struct scan *s = arg;
	s->seen++;
	if (s->last[0] != '\0' && strcmp(s->last, e->domain) >= 0)
		s->out_of_order++;
	snprintf(s->last, sizeof s->last, "%s", e->domain);
	if (s->prefix != NULL && strncmp(e->domain, s->prefix, strlen(s->prefix)) == 0)
		s->matching++;
	return s->stop_after > 0 && s->seen >= s->stop_after;
}

static int
scan_sync(struct sts_cache *c, struct scan *s)
{
	c->ops->scan(c, each_cb, done_cb, s);
	if (!run_until(&s->r.done, 60))
		bail("scan: no callback in 60 s");
	return s->r.status;
}

static struct sts_cache *
open_ok(const char *d, unsigned timeout_ms, struct logbuf *lb)
{
	struct sts_logger lg = { .fn = log_fn, .ctx = lb, .max = STS_LOG_DEBUG };
	struct sts_cache *c = NULL;
	char err[512] = "";
	if (sts_cache_postgres_open(&loop, d, timeout_ms, &lg, &c, err, sizeof err) != 0)
		bail("open %s: %s", d, err);
	return c;
}

/* Waits until an operation succeeds (the backend has connected). */
static bool
wait_ready(struct sts_cache *c, double secs)
{
	double end = now_s() + secs;
	while (now_s() < end) {
		if (get_sync(c, "ready-probe.invalid", NULL) >= 0)
			return true;
		sleep_loop(0.05);
	}
	return false;
}

static void
fill(struct sts_cache_entry *e, const char *domain, const char *id, int64_t at,
     const char *body)
{
	memset(e, 0, sizeof *e);
	snprintf(e->domain, sizeof e->domain, "%s", domain);
	snprintf(e->id, sizeof e->id, "%s", id);
	snprintf(e->mode, sizeof e->mode, "enforce");
	e->fetched_at = at;
	e->max_age = 604800;
	e->policy = (char *)body;
	e->policy_len = strlen(body);
}

/* ---- the cases ----------------------------------------------------------------- */

static void
test_bad_dsns(void)
{
	static const struct { const char *dsn, *want; } cases[] = {
		{ "nosuchkey=1", "invalid connection option \"nosuchkey\"" },
		{ "host='127.0.0.1", "unterminated quoted string" },
		{ "port", "missing \"=\" after \"port\"" },
		{ "postgresql://[::1", "IPv6 host address" },
		{ "postgresql://127.0.0.1/db?bogus=1", "invalid URI query parameter: \"bogus\"" },
		{ "postgresql://%zz@127.0.0.1/db", "invalid percent-encoded token" },
		{ "redis://127.0.0.1/0", "missing \"=\"" },
		{ "host=127.0.0.1 sslmode=sometimes", "invalid sslmode value: \"sometimes\"" },
		{ "host=127.0.0.1 port=54x", "invalid port number" },
		{ "postgresql://127.0.0.1:99999/db", "invalid port number" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sts_cache *c = (struct sts_cache *)&loop;   /* must become NULL */
		char err[512] = "";
		int rc = sts_cache_postgres_open(&loop, cases[i].dsn, 1000, NULL, &c, err, sizeof err);
		ok(rc == -1 && c == NULL && strstr(err, cases[i].want) != NULL &&
		   strstr(err, "PostgreSQL DSN") != NULL && strchr(err, '\n') == NULL,
		   "bad DSN '%s' refused: %s", cases[i].dsn, err);
		if (c != NULL && c != (struct sts_cache *)&loop)
			sts_cache_close(&c);
	}
	struct sts_cache *c = NULL;
	char err[256] = "";
	ok(sts_cache_postgres_open(&loop, NULL, 1000, NULL, &c, err, sizeof err) == -1 && c == NULL,
	   "NULL DSN refused: %s", err);
}

/* Before the server exists: open succeeds, operations fail fast, one log
 * line; then the server starts and the backend connects by itself. */
static struct sts_cache *
test_down_at_open(struct logbuf *lb)
{
	struct sts_cache *c = open_ok(dsn, TIMEOUT_MS, lb);
	ok(c != NULL, "open with the server down succeeds");
	double t0 = now_s();
	int st = get_sync(c, "enforce.test", NULL);
	double dt = now_s() - t0;
	ok(st < 0 && dt < 1.0, "server down at open: get fails (%d) in %.3f s", st, dt);
	struct res r = { 0 };
	c->ops->get(c, "enforce.test", get_cb, &r);
	ok(r.calls == 1 && r.status < 0, "while down, get calls back before it returns");
	struct res p = { 0 }, d = { 0 };
	struct sts_cache_entry e;
	fill(&e, "x.test", "x1", 1, "version: STSv1\r\n");
	c->ops->put(c, &e, done_cb, &p);
	c->ops->del(c, "x.test", done_cb, &d);
	ok(p.calls == 1 && p.status < 0 && d.calls == 1 && d.status < 0,
	   "while down, put and del fail at once");
	c->ops->put(c, &e, NULL, NULL);   /* the engine's style: no callback */
	sleep_loop(1.2);                   /* a retry or two fail meanwhile */
	ok(count_in(lb, DOWN_LINE) == 1, "one log line for the outage (%u)", count_in(lb, DOWN_LINE));
	ok(strstr(lb->text, "127.0.0.1:15432/mtasts") != NULL, "the log line names host:port/db");
	ok(strstr(lb->text, "Connection refused") != NULL, "and libpq's reason");
	server("start");
	t0 = now_s();
	bool up = wait_ready(c, 10);
	ok(up, "connects after the server starts (%.2f s)", now_s() - t0);
	ok(count_in(lb, BACK_LINE) == 1, "one log line when it is back");
	ok(count_in(lb, DOWN_LINE) == 1, "still one down line after retries");
	return c;
}

static void
test_round_trip(struct sts_cache *c)
{
	static char big[60001];
	memset(big, 'p', sizeof big - 1);
	static const char head[] = "version: STSv1\r\nmode: enforce\r\nmx: a.test\r\nmax_age: 1\r\nx: ";
	memcpy(big, head, sizeof head - 1);
	static const struct { const char *domain, *id, *mode, *body; int64_t at; uint32_t max_age; } cases[] = {
		{ "enforce.test", "enforce1", "enforce",
		  "version: STSv1\r\nmode: enforce\r\nmx: mail.enforce.test\r\nmax_age: 604800\r\n",
		  1764400000, 604800 },
		{ "testing.test", "t20240101", "testing",
		  "version: STSv1\nmode: testing\nmx: mail.testing.test\nmx: *.backup.testing.test\nmax_age: 86400\n",
		  1764400001, 86400 },
		{ "none.test", "n", "none", "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n",
		  -5, 0 },
		{ "quotes.test", "q1", "enforce",
		  "version: STSv1\r\nmode: enforce\r\nmx: 'a'.test\r\nx: \"\\\\' ; DROP TABLE mtasts_policies; --\r\nmax_age: 31557600\r\n",
		  INT64_MAX, 31557600 },
		{ "xn--mller-kva.test", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "enforce",
		  "version: STSv1\r\nmode: enforce\r\nmx: m\xc3\xbcller.test\r\nmax_age: 60\r\n",
		  INT64_MIN, 60 },
		{ "big.test", "big1", "enforce", big, 1, 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sts_cache_entry e, g;
		fill(&e, cases[i].domain, cases[i].id, cases[i].at, cases[i].body);
		snprintf(e.mode, sizeof e.mode, "%s", cases[i].mode);
		e.max_age = cases[i].max_age;
		int ps = put_sync(c, &e);
		int gs = get_sync(c, cases[i].domain, &g);
		ok(ps == 0 && gs == 1 && strcmp(g.domain, e.domain) == 0 && strcmp(g.id, e.id) == 0 &&
		   g.fetched_at == e.fetched_at && g.max_age == e.max_age &&
		   strcmp(g.mode, e.mode) == 0 && g.policy_len == e.policy_len &&
		   g.policy != NULL && memcmp(g.policy, e.policy, e.policy_len) == 0 &&
		   g.policy[g.policy_len] == '\0',
		   "round trip %s (%zu bytes, fetched_at %" PRId64 "): put %d, get %d",
		   cases[i].domain, e.policy_len, e.fetched_at, ps, gs);
		sts_cache_entry_clear(&g);
	}
	ok(get_sync(c, "absent.test", NULL) == 0, "miss: 0");
	ok(del_sync(c, "none.test") == 1, "del of a present entry: 1");
	ok(del_sync(c, "none.test") == 0, "del again: 0");
	ok(get_sync(c, "none.test", NULL) == 0, "deleted entry misses");
	char longname[STS_HOST_MAX + 20];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ok(get_sync(c, longname, NULL) < 0, "a name longer than STS_HOST_MAX fails, no crash");

	/* Never replace newer by older; equal or newer replaces. */
	struct sts_cache_entry e, g;
	fill(&e, "order.test", "new1", 2000, "version: STSv1\r\nmode: enforce\r\nid: new\r\n");
	put_sync(c, &e);
	fill(&e, "order.test", "old1", 1000, "version: STSv1\r\nmode: enforce\r\nid: old\r\n");
	int ps = put_sync(c, &e);
	get_sync(c, "order.test", &g);
	ok(ps == 0 && strcmp(g.id, "new1") == 0 && g.fetched_at == 2000,
	   "an older put does not replace a newer entry (id %s)", g.id);
	sts_cache_entry_clear(&g);
	fill(&e, "order.test", "same1", 2000, "version: STSv1\r\nmode: enforce\r\nid: same\r\n");
	put_sync(c, &e);
	get_sync(c, "order.test", &g);
	ok(strcmp(g.id, "same1") == 0, "a put with the same fetched_at replaces (id %s)", g.id);
	sts_cache_entry_clear(&g);
	fill(&e, "order.test", "newer1", 3000, "version: STSv1\r\nmode: enforce\r\nid: newer\r\n");
	put_sync(c, &e);
	get_sync(c, "order.test", &g);
	ok(strcmp(g.id, "newer1") == 0 && strstr(g.policy, "id: newer") != NULL,
	   "a newer put replaces (id %s)", g.id);
	sts_cache_entry_clear(&g);
}

struct counter {
	unsigned done, failed, twice;
	unsigned char *calls;
};

struct counted {
	struct counter *k;
	unsigned i;
};

static void
counted_done(void *arg, int status)
{
	struct counted *x = arg;
	if (x->k->calls[x->i]++ > 0)
		x->k->twice++;
	x->k->done++;
	if (status < 0)
		x->k->failed++;
}

static void
counted_get(void *arg, int status, const struct sts_cache_entry *e)
{
	(void)e;
	counted_done(arg, status < 0 ? status : 0);
}

static void
test_scan(struct sts_cache *c)
{
	/* N_SCAN puts in flight at once: the queue, not one by one. */
	struct counter k = { 0 };
	k.calls = calloc(N_SCAN, 1);
	struct counted *xs = calloc(N_SCAN, sizeof *xs);
	if (k.calls == NULL || xs == NULL)
		bail("out of memory");
	for (unsigned i = 0; i < N_SCAN; i++) {
		char d[64], id[16];
		snprintf(d, sizeof d, "s%05u.scan.test", i);
		snprintf(id, sizeof id, "s%u", i);
		struct sts_cache_entry e;
		fill(&e, d, id, 100 + i, "version: STSv1\r\nmode: enforce\r\nmx: mx.scan.test\r\nmax_age: 86400\r\n");
		xs[i] = (struct counted){ &k, i };
		c->ops->put(c, &e, counted_done, &xs[i]);
	}
	double t0 = now_s();
	while (k.done < N_SCAN && now_s() - t0 < 60)
		sleep_loop(0.01);
	ok(k.done == N_SCAN && k.failed == 0 && k.twice == 0,
	   "%u queued puts all done once (%u failed) in %.2f s", k.done, k.failed, now_s() - t0);
	free(k.calls);
	free(xs);

	struct scan s = { .prefix = "s" };
	int st = scan_sync(c, &s);
	ok(st == 0 && s.matching == N_SCAN && s.out_of_order == 0,
	   "scan over %u pages: %u entries, %u of ours, in order (status %d)",
	   (s.seen + 499) / 500, s.seen, s.matching, st);
	static const unsigned stops[] = { 1, 10, 500, 501, 700 };
	for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
		struct scan t = { .stop_after = stops[i] };
		st = scan_sync(c, &t);
		ok(st == 0 && t.seen == stops[i] && t.r.calls == 1,
		   "scan stops when each returns non-zero after %u (saw %u, status %d)", stops[i],
		   t.seen, st);
	}
}

static void
test_two_handles(struct sts_cache *c1)
{
	struct logbuf *lb = calloc(1, sizeof *lb);
	struct sts_cache *c2 = open_ok(dsn, TIMEOUT_MS, lb);
	ok(wait_ready(c2, 10), "a second handle connects");
	struct sts_cache_entry e, g;
	fill(&e, "shared.test", "shared1", 5000, "version: STSv1\r\nmode: testing\r\nmx: s.test\r\nmax_age: 100\r\n");
	put_sync(c1, &e);
	ok(get_sync(c2, "shared.test", &g) == 1 && strcmp(g.id, "shared1") == 0,
	   "handle 2 sees handle 1's put");
	sts_cache_entry_clear(&g);
	fill(&e, "shared.test", "shared2", 6000, "version: STSv1\r\nmode: testing\r\nmx: s.test\r\nmax_age: 100\r\n");
	put_sync(c2, &e);
	ok(get_sync(c1, "shared.test", &g) == 1 && strcmp(g.id, "shared2") == 0,
	   "handle 1 sees handle 2's newer put");
	sts_cache_entry_clear(&g);
	fill(&e, "shared.test", "stale1", 5500, "version: STSv1\r\n");
	put_sync(c1, &e);
	ok(get_sync(c2, "shared.test", &g) == 1 && strcmp(g.id, "shared2") == 0,
	   "handle 1's older put does not replace handle 2's newer one");
	sts_cache_entry_clear(&g);
	ok(del_sync(c2, "shared.test") == 1 && get_sync(c1, "shared.test", NULL) == 0,
	   "handle 2's del is seen by handle 1");
	sts_cache_close(&c2);
	free(lb);
}

static void
test_dsn_forms(void)
{
	char uri_pw[512], kv_pw[512], kv[512], sock_kv[1024], sock_uri[1024], bad_pw[512],
		sock_enc[PATH_MAX * 3];
	/* ':' and '@' in the password are percent-encoded in a URI. */
	char enc[192];
	size_t j = 0;
	for (const char *p = pw_pass; *p != '\0' && j + 4 < sizeof enc; p++) {
		if (*p == ':' || *p == '@' || *p == '%' || *p == '/')
			j += (size_t)snprintf(enc + j, sizeof enc - j, "%%%02X", (unsigned char)*p);
		else
			enc[j++] = *p;
	}
	enc[j] = '\0';
	j = 0;
	for (const char *p = sockdir; *p != '\0' && j + 4 < sizeof sock_enc; p++) {
		if (*p == '/')
			j += (size_t)snprintf(sock_enc + j, sizeof sock_enc - j, "%%2F");
		else
			sock_enc[j++] = *p;
	}
	sock_enc[j] = '\0';
	snprintf(kv, sizeof kv, "host=127.0.0.1 port=%d user=postgres dbname=mtasts", PG_PORT);
	snprintf(sock_kv, sizeof sock_kv, "host=%s port=%d user=postgres dbname=mtasts", sockdir,
		 PG_PORT);
	snprintf(sock_uri, sizeof sock_uri, "postgresql://postgres@%s:%d/mtasts", sock_enc, PG_PORT);
	snprintf(uri_pw, sizeof uri_pw, "postgresql://%s:%s@127.0.0.1:%d/%s", pw_user, enc,
		 PG_PORT, pw_db);
	snprintf(kv_pw, sizeof kv_pw, "host=127.0.0.1 port=%d user=%s password='%s' dbname=%s"
		 " connect_timeout=5 application_name=mtasts-test", PG_PORT, pw_user, pw_pass, pw_db);
	snprintf(bad_pw, sizeof bad_pw, "host=127.0.0.1 port=%d user=%s password=wrong dbname=%s",
		 PG_PORT, pw_user, pw_db);
	const struct { const char *what, *dsn; } cases[] = {
		{ "URI", dsn },
		{ "key=value", kv },
		{ "UNIX socket directory (host=/path)", sock_kv },
		{ "UNIX socket directory in a URI (%2F)", sock_uri },
		{ "URI with a percent-encoded password", uri_pw },
		{ "key=value with a quoted password", kv_pw },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct logbuf *lb = calloc(1, sizeof *lb);
		struct sts_cache *c = open_ok(cases[i].dsn, TIMEOUT_MS, lb);
		bool up = wait_ready(c, 10);
		struct sts_cache_entry e, g = { 0 };
		char d[64];
		snprintf(d, sizeof d, "dsn%zu.test", i);
		fill(&e, d, "dsn1", 7, "version: STSv1\r\nmode: none\r\nmax_age: 5\r\n");
		int ps = up ? put_sync(c, &e) : -99;
		int gs = up ? get_sync(c, d, &g) : -99;
		ok(up && ps == 0 && gs == 1 && strcmp(g.policy, e.policy) == 0,
		   "DSN form %s: connects, put %d, get %d", cases[i].what, ps, gs);
		if (!up)
			diag("log: %s", lb->text);
		ok(strstr(lb->text, pw_pass) == NULL && strstr(lb->text, enc) == NULL,
		   "DSN form %s: no password in the log", cases[i].what);
		sts_cache_entry_clear(&g);
		sts_cache_close(&c);
		free(lb);
	}
	struct logbuf *lb = calloc(1, sizeof *lb);
	struct sts_cache *c = open_ok(bad_pw, TIMEOUT_MS, lb);
	ok(c != NULL, "a wrong password is not an error at open");
	sleep_loop(0.3);
	int st = get_sync(c, "enforce.test", NULL);
	ok(st < 0, "wrong password: operations fail (%d)", st);
	ok(strstr(lb->text, "password authentication failed") != NULL &&
	   count_in(lb, DOWN_LINE) == 1, "wrong password: logged once, with libpq's reason");
	ok(strstr(lb->text, "wrong") == NULL || strstr(lb->text, "password=wrong") == NULL,
	   "wrong password: the password is not in the log");
	sts_cache_close(&c);
	free(lb);
}

static void
test_malformed_rows(struct sts_cache *c, struct logbuf *lb)
{
	char longdom[400] = "";
	memset(longdom, 'l', 300);
	char sql[2048];
	snprintf(sql, sizeof sql,
		 "INSERT INTO mtasts_policies VALUES"
		 " ('bad-mode.test', 'id1', 1, 1, 'bogus', 'version: STSv1'),"
		 " ('bad-id.test', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456', 1, 1, 'enforce', 'p'),"
		 " ('bad-age.test', 'id1', 1, -5, 'enforce', 'p'),"
		 " ('bad-empty-id.test', '', 1, 1, 'enforce', 'p'),"
		 " ('%s', 'id1', 1, 1, 'enforce', 'p')", longdom);
	if (psql(sql) != 0) {
		char out[PATH_MAX + 16];
		snprintf(out, sizeof out, "%s/psql.out", tmproot);
		diag_file("psql", out, 10);
		bail("cannot insert malformed rows");
	}
	static const char *const bad[] = { "bad-mode.test", "bad-id.test", "bad-age.test",
					   "bad-empty-id.test" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		unsigned before = count_in(lb, "malformed");
		int st = get_sync(c, bad[i], NULL);
		ok(st < 0 && count_in(lb, "malformed") == before + 1,
		   "malformed row %s: get fails (%d) with a log line", bad[i], st);
	}
	unsigned before = count_in(lb, "malformed");
	struct scan s = { .prefix = "bad" };
	int st = scan_sync(c, &s);
	ok(st == 0 && s.matching == 0 && count_in(lb, "malformed") == before + 5 &&
	   s.out_of_order == 0,
	   "scan skips the 5 malformed rows with a line each (saw %u, status %d)", s.seen, st);
	psql("DELETE FROM mtasts_policies WHERE domain LIKE 'bad%' OR domain LIKE 'lll%'");
}

/* SIGKILL of the server with thousands of operations queued. */
static void
test_kill(struct sts_cache *c, struct logbuf *lb)
{
	struct counter k = { 0 };
	k.calls = calloc(N_LOAD, 1);
	struct counted *xs = calloc(N_LOAD, sizeof *xs);
	if (k.calls == NULL || xs == NULL)
		bail("out of memory");
	unsigned down0 = count_in(lb, DOWN_LINE), back0 = count_in(lb, BACK_LINE);
	for (unsigned i = 0; i < N_LOAD; i++) {
		char d[64];
		snprintf(d, sizeof d, "s%05u.scan.test", i % N_SCAN);
		xs[i] = (struct counted){ &k, i };
		if (i % 3 == 0) {
			struct sts_cache_entry e;
			fill(&e, d, "load1", 100000 + i, "version: STSv1\r\nmode: enforce\r\nmx: mx.scan.test\r\n");
			c->ops->put(c, &e, counted_done, &xs[i]);
		} else {
			c->ops->get(c, d, counted_get, &xs[i]);
		}
	}
	double t0 = now_s();
	while (k.done < 200 && now_s() - t0 < 30)
		uv_run(&loop, UV_RUN_ONCE);
	unsigned before_kill = k.done;
	server("kill");
	t0 = now_s();
	while (k.done < N_LOAD && now_s() - t0 < 30)
		sleep_loop(0.01);
	double dt = now_s() - t0;
	ok(k.done == N_LOAD && k.twice == 0,
	   "SIGKILL mid-load: all %u operations called back once (%u before the kill, %u failed, %.2f s)",
	   k.done, before_kill, k.failed, dt);
	ok(k.failed > 0 && dt < 2.0, "the pending ones failed at once");
	ok(count_in(lb, DOWN_LINE) == down0 + 1, "the outage is logged once");
	ok(count_in(lb, "bad file descriptor") == 0, "with libpq's reason, not libuv's EBADF");
	t0 = now_s();
	int st = get_sync(c, "enforce.test", NULL);
	ok(st < 0 && now_s() - t0 < 0.5, "while the server is dead, get fails fast (%d)", st);
	sleep_loop(0.8);
	server("start");
	t0 = now_s();
	ok(wait_ready(c, 40), "reconnects after the restart (%.2f s)", now_s() - t0);
	ok(count_in(lb, BACK_LINE) == back0 + 1 && count_in(lb, DOWN_LINE) == down0 + 1,
	   "back logged once, down still once");
	struct sts_cache_entry g;
	st = get_sync(c, "enforce.test", &g);
	ok(st == 1 && strcmp(g.id, "enforce1") == 0, "entries written before the kill are there");
	sts_cache_entry_clear(&g);
	free(k.calls);
	free(xs);
}

/* SIGSTOP: the server accepts nothing and answers nothing. */
static void
test_stall(struct logbuf *lb)
{
	struct sts_cache *c = open_ok(dsn, FAST_MS, lb);
	if (!wait_ready(c, 10))
		bail("the fast handle did not connect");
	unsigned down0 = count_in(lb, DOWN_LINE);
	server("pause");
	struct res r[4] = { { 0 } };
	double t0 = now_s();
	c->ops->get(c, "enforce.test", get_cb, &r[0]);
	c->ops->get(c, "testing.test", get_cb, &r[1]);
	struct sts_cache_entry e;
	fill(&e, "stall.test", "st1", 1, "version: STSv1\r\n");
	c->ops->put(c, &e, done_cb, &r[2]);
	c->ops->del(c, "stall.test", done_cb, &r[3]);
	bool all = false;
	while (!all && now_s() - t0 < 10) {
		sleep_loop(0.02);
		all = r[0].done && r[1].done && r[2].done && r[3].done;
	}
	double dt = r[0].at - t0;
	ok(all && r[0].status < 0 && r[1].status < 0 && r[2].status < 0 && r[3].status < 0,
	   "stalled server: the op on the wire and those queued behind it fail");
	ok(r[0].calls == 1 && r[1].calls == 1 && r[2].calls == 1 && r[3].calls == 1,
	   "each called back exactly once");
	ok(dt >= 0.8 && dt < 2.5, "failure after timeout_ms %d (%.3f s)", FAST_MS, dt);
	ok(strstr(lb->text, "no answer within 1000 ms") != NULL && count_in(lb, DOWN_LINE) == down0 + 1,
	   "the timeout is logged once as the outage");
	t0 = now_s();
	int st = get_sync(c, "enforce.test", NULL);
	ok(st < 0 && now_s() - t0 < 0.5, "after the timeout, ops fail fast while reconnecting");
	sleep_loop(2.5);   /* reconnect attempts stall and time out meanwhile */
	ok(count_in(lb, DOWN_LINE) == down0 + 1, "stalled reconnects are not logged again");
	server("resume");
	t0 = now_s();
	ok(wait_ready(c, 40), "reconnects after the server resumes (%.2f s)", now_s() - t0);

	/* close with an operation stalled on the wire */
	server("pause");
	struct res a = { 0 };
	c->ops->get(c, "enforce.test", get_cb, &a);
	sleep_loop(0.2);
	sts_cache_close(&c);
	ok(a.calls == 1 && a.status < 0, "close with an op stalled on the wire calls it back");
	server("resume");
}

struct closer {
	struct sts_cache **c;
	struct res r;
};

static void
close_in_cb(void *arg, int status, const struct sts_cache_entry *e)
{
	struct closer *x = arg;
	get_cb(&x->r, status, e);
	sts_cache_close(x->c);
}

struct scan_closer {
	struct res r;              /* first: done_cb's argument */
	struct res inner;
	struct sts_cache **c;
	unsigned seen, close_at, submit_at;
};

static int
each_closing(void *arg, const struct sts_cache_entry *e)
{
	struct scan_closer *x = arg;
	(void)e;
	if (++x->seen == x->submit_at)
		(*x->c)->ops->get(*x->c, "enforce.test", get_cb, &x->inner);
	if (x->seen == x->close_at)
		sts_cache_close(x->c);
	return 0;
}

static void
test_close_pending(void)
{
	struct logbuf *lb = calloc(1, sizeof *lb);
	/* right after open: the first connect is still going on */
	struct sts_cache *c = open_ok(dsn, TIMEOUT_MS, lb);
	struct res r[5] = { { 0 } };
	struct scan s = { 0 };
	struct sts_cache_entry e;
	fill(&e, "close.test", "c1", 1, "version: STSv1\r\n");
	c->ops->get(c, "enforce.test", get_cb, &r[0]);
	c->ops->put(c, &e, done_cb, &r[1]);
	c->ops->del(c, "close.test", done_cb, &r[2]);
	c->ops->scan(c, each_cb, done_cb, &s);
	c->ops->put(c, &e, NULL, NULL);
	bool before = r[0].calls == 0 && r[1].calls == 0 && r[2].calls == 0 && s.r.calls == 0;
	sts_cache_close(&c);
	ok(before && c == NULL, "ops queued while the first connect runs (not failed at once)");
	ok(r[0].calls == 1 && r[1].calls == 1 && r[2].calls == 1 && s.r.calls == 1 &&
	   r[0].status < 0 && r[1].status < 0 && r[2].status < 0 && s.r.status < 0,
	   "close during the first connect calls back every pending op once, with failure");

	/* connected, with a queue: close from inside the first callback */
	c = open_ok(dsn, TIMEOUT_MS, lb);
	if (!wait_ready(c, 10))
		bail("no connection for the close test");
	struct closer x = { .c = &c };
	c->ops->get(c, "enforce.test", close_in_cb, &x);
	memset(r, 0, sizeof r);
	for (int i = 0; i < 5; i++)
		c->ops->get(c, "enforce.test", get_cb, &r[i]);
	run_until(&x.r.done, 10);
	sts_cache_entry_clear(&x.r.e);
	bool all = true;
	for (int i = 0; i < 5; i++)
		all = all && r[i].calls == 1 && r[i].status < 0;
	ok(x.r.calls == 1 && x.r.status == 1 && c == NULL && all,
	   "close from inside a callback: the rest fail once, no use after free");

	/* a scan whose each() submits a get on the same handle, then one whose
	 * each() closes it */
	c = open_ok(dsn, TIMEOUT_MS, lb);
	if (!wait_ready(c, 10))
		bail("no connection for the close test");
	struct scan_closer sc = { .c = &c, .submit_at = 3 };
	c->ops->scan(c, each_closing, done_cb, &sc);
	run_until(&sc.r.done, 10);
	run_until(&sc.inner.done, 10);
	sts_cache_entry_clear(&sc.inner.e);
	ok(sc.r.calls == 1 && sc.r.status == 0 && sc.seen > 1000 && sc.inner.calls == 1 &&
	   sc.inner.status == 1, "each() may submit a get: it runs after the scan (%u seen;"
	   " scan %d/%d, get %d/%d)", sc.seen, sc.r.calls, sc.r.status, sc.inner.calls,
	   sc.inner.status);
	sc = (struct scan_closer){ .c = &c, .close_at = 600 };
	c->ops->scan(c, each_closing, done_cb, &sc);
	run_until(&sc.r.done, 10);
	ok(sc.r.calls == 1 && sc.r.status < 0 && sc.seen == 600 && c == NULL,
	   "close from inside each(): done once with failure, no further each() (%u seen;"
	   " done %d/%d)", sc.seen, sc.r.calls, sc.r.status);

	/* closed while down, with the retry timer armed */
	char d[256];
	snprintf(d, sizeof d, "host=127.0.0.1 port=%d user=postgres dbname=mtasts", PG_PORT + 1);
	c = open_ok(d, TIMEOUT_MS, lb);
	sleep_loop(0.2);
	sts_cache_close(&c);
	ok(c == NULL, "close while reconnecting");
	free(lb);
}

/* Daemons starting together on a fresh database all create the table. */
static void
test_schema_race(struct sts_cache *c, struct logbuf *clb)
{
	enum { N = 8 };
	/* dropped under a live connection: one op fails, the next works */
	if (psql("DROP TABLE mtasts_policies") != 0)
		bail("cannot drop the table");
	int st1 = get_sync(c, "enforce.test", NULL);
	int st2 = get_sync(c, "enforce.test", NULL);
	ok(st1 < 0 && st2 == 0 && count_in(clb, "was missing; created it again") == 1,
	   "table dropped under a live connection: one failure (%d), then recreated (%d)", st1,
	   st2);
	if (psql("DROP TABLE mtasts_policies") != 0)
		bail("cannot drop the table");
	struct logbuf *lb = calloc(N, sizeof *lb);
	struct sts_cache *cs[N];
	for (int i = 0; i < N; i++)
		cs[i] = open_ok(dsn, TIMEOUT_MS, &lb[i]);
	unsigned ready = 0, shared = 0;
	for (int i = 0; i < N; i++)
		ready += wait_ready(cs[i], 10);
	struct sts_cache_entry e;
	fill(&e, "race.test", "race1", 1, "version: STSv1\r\nmode: none\r\nmax_age: 1\r\n");
	put_sync(cs[0], &e);
	for (int i = 0; i < N; i++) {
		shared += get_sync(cs[i], "race.test", NULL) == 1;
		sts_cache_close(&cs[i]);
	}
	ok(ready == N && shared == N, "%d handles opened at once on a database without the table:"
	   " %u ready, %u see the same entry", N, ready, shared);
	free(lb);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	uv_loop_init(&loop);
	setup_server();
	/* test_down_at_open starts the server again: stop the first start. */
	server("stop");

	struct logbuf *lb = calloc(1, sizeof *lb), *lbf = calloc(1, sizeof *lbf);
	if (lb == NULL || lbf == NULL)
		bail("out of memory");
	test_bad_dsns();
	struct sts_cache *c = test_down_at_open(lb);
	test_round_trip(c);
	test_scan(c);
	test_two_handles(c);
	test_dsn_forms();
	test_malformed_rows(c, lb);
	test_kill(c, lb);
	test_stall(lbf);
	test_close_pending();
	test_schema_race(c, lb);
	ok(wait_ready(c, 20), "the first handle still works after everything");
	sts_cache_close(&c);

	/* Every handle the backend made must be closed: the loop runs out. */
	uv_run(&loop, UV_RUN_DEFAULT);
	int lc = uv_loop_close(&loop);
	ok(lc == 0, "uv_loop_close: every handle closed (%s)", lc == 0 ? "ok" : uv_strerror(lc));
	free(lb);
	free(lbf);
	printf("1..%u\n", tap_n);
	return tap_failed == 0 ? 0 : 1;
}
