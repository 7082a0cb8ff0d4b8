/* test_cache_redis.c: the Redis cache backend against real redis-servers
 * (tests/servers/redis) started in a mkdtemp directory. Speaks TAP.
 *
 *   a. URLs: malformed ones are refused with a message naming the bad part;
 *      good ones open (and close again while connecting);
 *   b. round trip (policy bytes exact, a 60 KB one too), miss, del 1/0,
 *      EXPIREAT fetched_at + max_age, an older put never replaces a newer,
 *      damaged hashes fail (get) or are skipped (scan) with a log line;
 *   c. scan over more keys than one SCAN batch, and stopping early;
 *   d. two handles see each other's entries; the UNIX socket and db=N;
 *      a server with requirepass (password, user + password, wrong one);
 *   e. server down at open: ops fail at once, the backend connects when the
 *      server comes; SIGKILL under load: every op calls back once, pending
 *      ones fail, then reconnect after the restart within the back-off;
 *   f. SIGSTOP: an op fails after timeout_ms, the late reply is ignored;
 *      close with ops pending calls each back; the loop runs out.
 *
 * The servers are killed at exit, and by a guardian process if this one
 * dies without doing so (a sanitizer report, a signal). If redis-server is
 * missing or does not start this is a failure ("Bail out!"), never a skip. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <mtasts/cache.h>
#include <mtasts/status.h>

#include "tap.h"

#define PORT_A 16379       /* the main server */
#define PORT_PW 16380      /* requirepass */
#define PORT_LATE 16381    /* down at open, started later */
#define PASSWORD "s3cret-pw"
#define TIMEOUT_MS 1000

static char root[PATH_MAX];
static char tmproot[PATH_MAX];
static char dir_a[PATH_MAX + 8], dir_pw[PATH_MAX + 8], dir_late[PATH_MAX + 8];
static char sock_a[PATH_MAX + 32];
static uv_loop_t loop;

/* ---- servers ---------------------------------------------------------------- */

/* First line of a command's output, trailing newline cut; "" on failure. */
static const char *
capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *
capture(const char *fmt, ...)
{
	static char line[512];
	char cmd[4 * PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	line[0] = '\0';
	fflush(stdout);
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return line;
	if (fgets(line, sizeof line, p) == NULL)
		line[0] = '\0';
	char rest[512];
	while (fgets(rest, sizeof rest, p) != NULL) {
	}
	pclose(p);
	line[strcspn(line, "\r\n")] = '\0';
	return line;
}

static void
server_start(const char *dir, int port, const char *password)
{
	int rc = tap_run("%sREDIS_PASSWORD='%s' '%s/tests/servers/redis' start '%s' %d >'%s.out' 2>&1",
		     "", password != NULL ? password : "", root, dir, port, dir);
	if (rc != 0) {
		char out[PATH_MAX + 16];
		snprintf(out, sizeof out, "%s.out", dir);
		diag_file("tests/servers/redis", out, 20);
		bail("tests/servers/redis start %s %d failed (status %d): is the package"
		     " redis-server installed? (scripts/install-deps)", dir, port, rc);
	}
}

static void
server(const char *what, const char *dir)
{
	if (tap_run("'%s/tests/servers/redis' %s '%s' >/dev/null 2>&1", root, what, dir) != 0)
		diag("tests/servers/redis %s %s failed", what, dir);
}

static void
servers_down(void)
{
	if (tmproot[0] == '\0')
		return;
	server("kill", dir_a);
	server("kill", dir_pw);
	server("kill", dir_late);
	tap_run("rm -rf '%s'", tmproot);
	tmproot[0] = '\0';
	tap_guardian_release();
}

/* Run by the guardian when the test dies: its servers go too. */
static void
orphaned(void)
{
	servers_down();
}

static void
setup(void)
{
	const char *src = getenv("MTASTS_SOURCE_ROOT");
	if (src == NULL || src[0] == '\0')
		bail("MTASTS_SOURCE_ROOT is not set (run through meson test)");
	if (realpath(src, root) == NULL)
		bail("MTASTS_SOURCE_ROOT=%s: %s", src, strerror(errno));
	if (strchr(root, '\'') != NULL)
		bail("the source path contains a single quote");
	if (find_tool("redis-server") == NULL)
		bail("redis-server is missing: install the package redis-server"
		     " (scripts/install-deps does)");
	if (find_tool("redis-cli") == NULL)
		bail("redis-cli is missing: install the package redis-tools");
	snprintf(tmproot, sizeof tmproot, "/tmp/mtasts-redis.XXXXXX");   /* short: socket path */
	if (mkdtemp(tmproot) == NULL)
		bail("mkdtemp: %s", strerror(errno));
	snprintf(dir_a, sizeof dir_a, "%s/a", tmproot);
	snprintf(dir_pw, sizeof dir_pw, "%s/pw", tmproot);
	snprintf(dir_late, sizeof dir_late, "%s/late", tmproot);
	snprintf(sock_a, sizeof sock_a, "%s/redis.sock", dir_a);
	tap_guardian_start(orphaned);
	atexit(servers_down);
}

/* redis-cli against server A (db 0 unless -n is in args). */
static const char *
cli_a(const char *args)
{
	return capture("redis-cli -p %d --raw %s 2>&1", PORT_A, args);
}

/* ---- the log ---------------------------------------------------------------- */

#define LOG_MAX 200000
static char *log_lines[LOG_MAX];
static size_t log_n;

static void
log_fn(void *ctx, enum sts_log_level level, const char *msg)
{
	(void)ctx;
	if (log_n < LOG_MAX) {
		char *s = malloc(strlen(msg) + 16);
		if (s != NULL) {
			sprintf(s, "%s: %s", sts_log_level_name(level), msg);
			log_lines[log_n++] = s;
		}
	}
	if (getenv("TEST_VERBOSE") != NULL)
		diag("log %s: %s", sts_log_level_name(level), msg);
}

static const struct sts_logger logger = { .fn = log_fn, .max = STS_LOG_DEBUG };

/* Lines since mark containing every one of the NULL-terminated needles. */
static size_t
log_count(size_t mark, ...)
{
	size_t n = 0;
	for (size_t i = mark; i < log_n; i++) {
		va_list ap;
		va_start(ap, mark);
		bool all = true;
		for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
			if (strstr(log_lines[i], s) == NULL)
				all = false;
		va_end(ap);
		if (all)
			n++;
	}
	return n;
}

static void
log_diag(size_t mark)
{
	for (size_t i = mark; i < log_n && i < mark + 20; i++)
		diag("log: %s", log_lines[i]);
}

/* ---- the loop ---------------------------------------------------------------- */

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_tick(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until *done or ms pass; returns *done. */
static bool
run_until(const bool *done, int64_t ms)
{
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, on_tick, 10, 10);   /* wakes the loop to check */
	int64_t end = now_ms() + ms;
	while (!*done && now_ms() < end)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return *done;
}

static void
spin(int64_t ms)
{
	bool never = false;
	run_until(&never, ms);
}

static void
on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "Bail out! the loop did not run out within 10 s\n";
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(2);
	_exit(1);
}

/* Runs the loop until it runs out; bails out after 10 s. */
static void
run_out(void)
{
	signal(SIGALRM, on_alarm);
	alarm(10);
	uv_run(&loop, UV_RUN_DEFAULT);
	alarm(0);
}

/* ---- synchronous wrappers ---------------------------------------------------- */

struct res {
	bool done;
	int calls;
	int status;
	struct sts_cache_entry e;
};

static void
get_cb(void *arg, int status, const struct sts_cache_entry *e)
{
	struct res *r = arg;
	r->calls++;
	r->done = true;
	r->status = status;
	if (status == 1 && e != NULL) {
		r->e = *e;
		r->e.policy = malloc(e->policy_len + 1);
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
}

/* status, or -100 when no callback came within 10 s */
static int
cget(struct sts_cache *c, const char *domain, struct sts_cache_entry *out)
{
	struct res r = { 0 };
	c->ops->get(c, domain, get_cb, &r);
	if (!run_until(&r.done, 10000))
		return -100;
	if (out != NULL)
		*out = r.e;
	else
		sts_cache_entry_clear(&r.e);
	return r.status;
}

static int
cput(struct sts_cache *c, const struct sts_cache_entry *e)
{
	struct res r = { 0 };
	c->ops->put(c, e, done_cb, &r);
	return run_until(&r.done, 10000) ? r.status : -100;
}

static int
cdel(struct sts_cache *c, const char *domain)
{
	struct res r = { 0 };
	c->ops->del(c, domain, done_cb, &r);
	return run_until(&r.done, 10000) ? r.status : -100;
}

struct scan_res {
	struct res r;
	size_t seen, stop_after, bad;
	size_t with_prefix;        /* domains starting with prefix */
	const char *prefix;
};

static int
scan_each(void *arg, const struct sts_cache_entry *e)
{
	struct scan_res *s = arg;
	s->seen++;
	if (e->domain[0] == '\0' || e->policy == NULL || strlen(e->policy) != e->policy_len ||
	    e->id[0] == '\0')
		s->bad++;
	if (s->prefix != NULL && strncmp(e->domain, s->prefix, strlen(s->prefix)) == 0)
		s->with_prefix++;
	return s->stop_after > 0 && s->seen >= s->stop_after;
}

static int
cscan(struct sts_cache *c, struct scan_res *s)
{
	c->ops->scan(c, scan_each, done_cb, s);
	return run_until(&s->r.done, 20000) ? s->r.status : -100;
}

/* Waits until an op succeeds; milliseconds it took, or -1. */
static int64_t
wait_ready(struct sts_cache *c, int64_t ms)
{
	int64_t t0 = now_ms();
	while (now_ms() - t0 < ms) {
		if (cget(c, "probe.invalid", NULL) >= 0)
			return now_ms() - t0;
		spin(20);
	}
	return -1;
}

static struct sts_cache *
open_ok(const char *url, unsigned timeout_ms)
{
	char err[256] = "";
	struct sts_cache *c = NULL;
	if (sts_cache_redis_open(&loop, url, timeout_ms, &logger, &c, err, sizeof err) != 0)
		bail("open %s: %s", url, err);
	return c;
}

static void
entry(struct sts_cache_entry *e, const char *domain, const char *id, int64_t fetched_at,
      uint32_t max_age, const char *policy)
{
	memset(e, 0, sizeof *e);
	snprintf(e->domain, sizeof e->domain, "%s", domain);
	snprintf(e->id, sizeof e->id, "%s", id);
	snprintf(e->mode, sizeof e->mode, "enforce");
	e->fetched_at = fetched_at;
	e->max_age = max_age;
	e->policy = (char *)policy;
	e->policy_len = strlen(policy);
}

static void
close_and_drain(struct sts_cache **c)
{
	sts_cache_close(c);
	spin(50);
}

/* ---- a. URLs ----------------------------------------------------------------- */

static void
test_urls(void)
{
	static const struct {
		const char *url;
		const char *want;   /* NULL: opens */
	} cases[] = {
		{ "redis://127.0.0.1:16399/0", NULL },
		{ "redis://127.0.0.1", NULL },
		{ "redis://localhost:16399/5", NULL },
		{ "redis://:pw@127.0.0.1:16399/1", NULL },
		{ "redis://user:p%40ss@127.0.0.1:16399", NULL },
		{ "redis://[::1]:16399/0", NULL },
		{ "redis://127.0.0.1:16399/", NULL },
		{ "unix:///tmp/none.sock", NULL },
		{ "unix:///tmp/none.sock?db=3", NULL },
		{ "unix://:pw@/tmp/none.sock?db=3", NULL },
		{ "http://127.0.0.1/0", "scheme 'http'" },
		{ "127.0.0.1:6379", "is not redis:// or unix://" },
		{ "rediss://127.0.0.1/0", "TLS" },
		{ "redis://127.0.0.1:0/0", "port '0'" },
		{ "redis://127.0.0.1:65536/0", "port '65536'" },
		{ "redis://127.0.0.1:http/0", "port 'http'" },
		{ "redis://127.0.0.1:6379/x", "database 'x'" },
		{ "redis://127.0.0.1:6379/0/1", "database '0/1'" },
		{ "redis://:6379/0", "host is missing" },
		{ "redis://ho st/0", "host 'ho st'" },
		{ "redis://[::1/0", "without a ']'" },
		{ "redis://[nothex]:1/0", "'nothex' is not an IPv6" },
		{ "redis://pwonly@127.0.0.1/0", "needs a ':'" },
		{ "redis://:@127.0.0.1/0", "password after ':' is empty" },
		{ "redis://:p%4@127.0.0.1/0", "bad %-escape" },
		{ "redis://:p%00@127.0.0.1/0", "bad %-escape" },
		{ "redis://127.0.0.1:6379?db=1", "port '6379?db=1'" },
		{ "unix://relative.sock", "absolute socket path" },
		{ "unix://", "absolute socket path" },
		{ "unix:///tmp/x.sock?db=one", "db 'one'" },
		{ "unix:///tmp/x.sock?timeout=1", "unknown parameter 'timeout=1'" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "";
		struct sts_cache *c = NULL;
		int rc = sts_cache_redis_open(&loop, cases[i].url, 500, NULL, &c, err, sizeof err);
		if (cases[i].want == NULL) {
			ok(rc == 0 && c != NULL, "URL %s opens", cases[i].url);
			if (rc != 0)
				diag("err: %s", err);
			/* Closed while it connects or resolves. */
			sts_cache_close(&c);
		} else {
			ok(rc == -1 && c == NULL && strstr(err, cases[i].want) != NULL &&
			   strstr(err, "redis URL") != NULL,
			   "URL %s refused: %s", cases[i].url, err);
			if (strstr(err, cases[i].want) == NULL)
				diag("want '%s' in the message", cases[i].want);
		}
	}
	char err[256] = "";
	struct sts_cache *c = NULL;
	sts_cache_redis_open(&loop, "redis://user:Sup3rSecret@127.0.0.1:99999/0", 500, NULL, &c,
			     err, sizeof err);
	ok(strstr(err, "Sup3rSecret") == NULL && strstr(err, "99999") != NULL,
	   "an error message names the bad port, not the password");
	/* Everything opened above was closed while connecting: nothing is left. */
	run_out();
	ok(uv_loop_alive(&loop) == 0, "the loop runs out after closing while connecting");
}

/* ---- b. entries ---------------------------------------------------------------- */

static void
test_entries(struct sts_cache *c)
{
	int64_t now = (int64_t)time(NULL);
	const char *body = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
			   "mx: *.m\xc3\xb8x.example\r\nmax_age: 86400\r\n";
	struct sts_cache_entry e, got;
	entry(&e, "example.com", "20240101abc", now - 100, 86400, body);
	ok(cget(c, "example.com", NULL) == 0, "get of an absent domain is a miss (0)");
	ok(cput(c, &e) == 0, "put returns 0");
	int st = cget(c, "example.com", &got);
	ok(st == 1 && strcmp(got.domain, "example.com") == 0 && strcmp(got.id, e.id) == 0 &&
	   got.fetched_at == e.fetched_at && got.max_age == 86400 &&
	   strcmp(got.mode, "enforce") == 0, "get returns the entry (status %d)", st);
	ok(st == 1 && got.policy_len == strlen(body) && memcmp(got.policy, body, got.policy_len) == 0 &&
	   got.policy[got.policy_len] == '\0', "the policy body comes back byte for byte");
	sts_cache_entry_clear(&got);

	/* The schema other tools see. */
	ok(strcmp(cli_a("TYPE mtasts:policy:example.com"), "hash") == 0,
	   "stored as a hash at mtasts:policy:example.com");
	char want[32];
	snprintf(want, sizeof want, "%lld", (long long)(now - 100 + 86400));
	const char *et = cli_a("EXPIRETIME mtasts:policy:example.com");
	ok(strcmp(et, want) == 0, "EXPIRETIME is fetched_at + max_age (%s, want %s)", et, want);
	long ttl = atol(cli_a("TTL mtasts:policy:example.com"));
	ok(ttl > 86300 - 5 && ttl <= 86300, "TTL counts from fetched_at (%ld s)", ttl);
	ok(strcmp(cli_a("HGET mtasts:policy:example.com fetched_at"), want + 0) != 0 &&
	   atoll(cli_a("HGET mtasts:policy:example.com fetched_at")) == now - 100,
	   "field fetched_at holds unix seconds");

	/* A 60 KB body with every byte value but NUL. */
	size_t big_n = 60000;
	char *big = malloc(big_n + 1);
	for (size_t i = 0; i < big_n; i++)
		big[i] = (char)(1 + i % 255);
	big[big_n] = '\0';
	entry(&e, "big.example", "big1", now, 3600, big);
	ok(cput(c, &e) == 0, "put of a 60 KB policy");
	st = cget(c, "big.example", &got);
	ok(st == 1 && got.policy_len == big_n && memcmp(got.policy, big, big_n) == 0,
	   "the 60 KB policy comes back byte for byte");
	sts_cache_entry_clear(&got);
	free(big);

	/* Older never replaces newer; newer replaces older. */
	entry(&e, "order.example", "new1", now - 50, 86400, "version: STSv1\r\nmode: none\r\n");
	snprintf(e.mode, sizeof e.mode, "none");
	cput(c, &e);
	entry(&e, "order.example", "old1", now - 1000, 86400, "old body");
	ok(cput(c, &e) == 0, "a put of an older entry is not an error");
	st = cget(c, "order.example", &got);
	ok(st == 1 && strcmp(got.id, "new1") == 0 && got.fetched_at == now - 50 &&
	   strcmp(got.mode, "none") == 0, "an older fetched_at does not replace a newer (id %s)",
	   got.id);
	sts_cache_entry_clear(&got);
	snprintf(want, sizeof want, "%lld", (long long)(now - 50 + 86400));
	ok(strcmp(cli_a("EXPIRETIME mtasts:policy:order.example"), want) == 0,
	   "nor its expiry");
	entry(&e, "order.example", "newer1", now, 600, "newer body");
	cput(c, &e);
	st = cget(c, "order.example", &got);
	ok(st == 1 && strcmp(got.id, "newer1") == 0 && got.max_age == 600 &&
	   strcmp(got.policy, "newer body") == 0, "a newer fetched_at replaces the entry");
	sts_cache_entry_clear(&got);
	long t2 = atol(cli_a("TTL mtasts:policy:order.example"));
	ok(t2 > 590 && t2 <= 600, "and its expiry (TTL %ld)", t2);

	/* An entry already expired is of no use: it is gone at once. */
	entry(&e, "expired.example", "exp1", now - 7200, 3600, "body");
	ok(cput(c, &e) == 0 && cget(c, "expired.example", NULL) == 0,
	   "an entry put after its expiry is not kept");

	/* del */
	ok(cdel(c, "order.example") == 1, "del of a present entry returns 1");
	ok(cdel(c, "order.example") == 0, "del of an absent entry returns 0");
	ok(cget(c, "order.example", NULL) == 0, "the deleted entry is a miss");

	/* Bad arguments fail at once. */
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ok(cget(c, longname, NULL) == STS_EINVAL && cget(c, "", NULL) == STS_EINVAL,
	   "get of an impossible domain is STS_EINVAL");
	entry(&e, "noid.example", "", now, 60, "x");
	ok(cput(c, &e) == STS_EINVAL, "put without an id is STS_EINVAL");

	/* Damaged entries, written by something else. */
	static const struct {
		const char *domain, *setup, *why;
	} bad[] = {
		{ "nan.example", "HSET mtasts:policy:nan.example id a1 fetched_at soon max_age 60"
		  " mode enforce policy x", "fetched_at" },
		{ "longid.example", "HSET mtasts:policy:longid.example id"
		  " 0123456789012345678901234567890123456789 fetched_at 1 max_age 60 mode enforce"
		  " policy x", "field id" },
		{ "nopolicy.example", "HSET mtasts:policy:nopolicy.example id a1 fetched_at 1"
		  " max_age 60 mode enforce", "field policy" },
		{ "negage.example", "HSET mtasts:policy:negage.example id a1 fetched_at 1"
		  " max_age -5 mode enforce policy x", "max_age" },
		{ "longmode.example", "HSET mtasts:policy:longmode.example id a1 fetched_at 1"
		  " max_age 5 mode enforcing policy x", "field mode" },
		{ "string.example", "SET mtasts:policy:string.example notahash", "WRONGTYPE" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cli_a(bad[i].setup);
		size_t mark = log_n;
		st = cget(c, bad[i].domain, NULL);
		ok(st < 0 && log_count(mark, bad[i].domain, bad[i].why, NULL) == 1,
		   "damaged %s: get fails (%d) with a log line naming %s", bad[i].domain, st,
		   bad[i].why);
		if (log_count(mark, bad[i].why, NULL) != 1)
			log_diag(mark);
	}
	/* A put repairs a damaged entry (the script replaces what it cannot read). */
	entry(&e, "string.example", "fixed1", now, 600, "fixed");
	ok(cput(c, &e) == 0 && cget(c, "string.example", NULL) == 1,
	   "a put replaces a key of the wrong type");
	entry(&e, "nan.example", "fixed1", now, 600, "fixed");
	ok(cput(c, &e) == 0 && cget(c, "nan.example", NULL) == 1,
	   "a put replaces a hash without a number in fetched_at");
}

/* ---- c. scan -------------------------------------------------------------------- */

static void
test_scan(struct sts_cache *c)
{
	cli_a("FLUSHDB");
	int64_t now = (int64_t)time(NULL);
	const size_t n = 1200;   /* more than one SCAN COUNT 500 batch */
	struct res *rs = calloc(n, sizeof *rs);
	for (size_t i = 0; i < n; i++) {
		char d[64];
		struct sts_cache_entry e;
		snprintf(d, sizeof d, "d%04zu.scan.example", i);
		entry(&e, d, "scan1", now, 86400, "version: STSv1\r\nmode: testing\r\n");
		c->ops->put(c, &e, done_cb, &rs[i]);
	}
	bool all = false;
	int64_t t0 = now_ms();
	while (!all && now_ms() - t0 < 20000) {
		spin(10);
		all = true;
		for (size_t i = 0; i < n; i++)
			if (!rs[i].done)
				all = false;
	}
	size_t good = 0;
	for (size_t i = 0; i < n; i++)
		good += rs[i].done && rs[i].calls == 1 && rs[i].status == 0;
	ok(good == n, "%zu pipelined puts answered once each with 0 (%zu)", n, good);
	free(rs);
	/* Not ours: other keys in the same database are left alone. */
	cli_a("SET other:key 1");
	cli_a("HSET mtasts:policy:broken.scan.example id a1");
	struct scan_res s = { .prefix = "d" };
	size_t mark = log_n;
	int st = cscan(c, &s);
	ok(st == 0 && s.r.calls == 1, "scan finishes with status 0, once (%d)", st);
	ok(s.seen == n && s.with_prefix == n && s.bad == 0,
	   "scan sees every entry, each whole (%zu of %zu)", s.seen, n);
	ok(log_count(mark, "broken.scan.example", "damaged", "skipping", NULL) == 1,
	   "scan skips a damaged entry with a log line");
	struct scan_res s2 = { .stop_after = 7 };
	st = cscan(c, &s2);
	ok(st == 0 && s2.seen == 7 && s2.r.calls == 1,
	   "scan stops when each returns non-zero (%zu seen)", s2.seen);
	spin(200);
	ok(s2.seen == 7 && s2.r.calls == 1, "and nothing is called after done");
	cli_a("FLUSHDB");
	struct scan_res s3 = { 0 };
	ok(cscan(c, &s3) == 0 && s3.seen == 0, "scan of an empty database");
}

/* ---- d. sharing, socket, db, password ---------------------------------------- */

static void
test_sharing(struct sts_cache *c1, const char *url)
{
	int64_t now = (int64_t)time(NULL);
	struct sts_cache *c2 = open_ok(url, TIMEOUT_MS);
	ok(wait_ready(c2, 5000) >= 0, "a second handle connects");
	struct sts_cache_entry e, got;
	entry(&e, "shared.example", "shared1", now, 3600, "version: STSv1\r\nmode: enforce\r\n");
	cput(c1, &e);
	int st = cget(c2, "shared.example", &got);
	ok(st == 1 && strcmp(got.id, "shared1") == 0, "an entry put by one handle is seen by the other");
	sts_cache_entry_clear(&got);
	entry(&e, "shared.example", "shared2", now + 1, 3600, "v2");
	cput(c2, &e);
	st = cget(c1, "shared.example", &got);
	ok(st == 1 && strcmp(got.id, "shared2") == 0, "and the other way round");
	sts_cache_entry_clear(&got);
	ok(cdel(c2, "shared.example") == 1 && cget(c1, "shared.example", NULL) == 0,
	   "a delete by one is seen by the other");
	close_and_drain(&c2);

	/* The UNIX socket, db 0 and db 3 */
	entry(&e, "sock.example", "sock1", now, 3600, "via tcp");
	cput(c1, &e);
	char u[PATH_MAX + 64];
	snprintf(u, sizeof u, "unix://%s", sock_a);
	struct sts_cache *cu = open_ok(u, TIMEOUT_MS);
	ok(wait_ready(cu, 5000) >= 0, "unix:// connects");
	st = cget(cu, "sock.example", &got);
	ok(st == 1 && strcmp(got.policy, "via tcp") == 0, "unix:// sees db 0's entries");
	sts_cache_entry_clear(&got);
	snprintf(u, sizeof u, "unix://%s?db=3", sock_a);
	struct sts_cache *c3 = open_ok(u, TIMEOUT_MS);
	ok(wait_ready(c3, 5000) >= 0, "unix://...?db=3 connects");
	ok(cget(c3, "sock.example", NULL) == 0, "db 3 does not see db 0's entries");
	entry(&e, "db3.example", "db3", now, 3600, "in db 3");
	cput(c3, &e);
	ok(strcmp(cli_a("-n 3 HGET mtasts:policy:db3.example policy"), "in db 3") == 0 &&
	   strcmp(cli_a("-n 0 EXISTS mtasts:policy:db3.example"), "0") == 0,
	   "a put through db=3 lands in database 3 only");
	close_and_drain(&cu);
	close_and_drain(&c3);

	/* requirepass */
	server_start(dir_pw, PORT_PW, PASSWORD);
	char url_pw[128];
	snprintf(url_pw, sizeof url_pw, "redis://:%s@127.0.0.1:%d/2", PASSWORD, PORT_PW);
	struct sts_cache *cp = open_ok(url_pw, TIMEOUT_MS);
	ok(wait_ready(cp, 5000) >= 0, "redis://:PASSWORD@host/2 authenticates");
	entry(&e, "pw.example", "pw1", now, 3600, "behind a password");
	ok(cput(cp, &e) == 0, "put with a password");
	ok(strcmp(capture("redis-cli -p %d -a %s -n 2 --no-auth-warning --raw HGET"
			  " mtasts:policy:pw.example id 2>&1", PORT_PW, PASSWORD), "pw1") == 0,
	   "the entry is in database 2 of that server");
	close_and_drain(&cp);
	snprintf(url_pw, sizeof url_pw, "redis://default:%s@127.0.0.1:%d/2", PASSWORD, PORT_PW);
	cp = open_ok(url_pw, TIMEOUT_MS);
	ok(wait_ready(cp, 5000) >= 0 && cget(cp, "pw.example", NULL) == 1,
	   "redis://USER:PASSWORD@ (AUTH user password) works");
	close_and_drain(&cp);
	size_t mark = log_n;
	snprintf(url_pw, sizeof url_pw, "redis://:wrong@127.0.0.1:%d/2", PORT_PW);
	cp = open_ok(url_pw, TIMEOUT_MS);
	ok(wait_ready(cp, 1500) < 0, "a wrong password: operations fail");
	ok(log_count(mark, "error:", "refused", "WRONGPASS", NULL) == 1 &&
	   log_count(mark, "wrong", NULL) == 0,
	   "one log line says the server refused us, without the password");
	if (log_count(mark, "error:", "WRONGPASS", NULL) != 1)
		log_diag(mark);
	close_and_drain(&cp);
	snprintf(url_pw, sizeof url_pw, "redis://127.0.0.1:%d/0", PORT_PW);
	mark = log_n;
	cp = open_ok(url_pw, TIMEOUT_MS);
	ok(wait_ready(cp, 1500) < 0 && log_count(mark, "NOAUTH", NULL) >= 1,
	   "no password where one is needed: refused (NOAUTH), logged");
	close_and_drain(&cp);
	snprintf(url_pw, sizeof url_pw, "redis://:%s@127.0.0.1:%d/99", PASSWORD, PORT_PW);
	mark = log_n;
	cp = open_ok(url_pw, TIMEOUT_MS);
	ok(wait_ready(cp, 1500) < 0 && log_count(mark, "DB index", NULL) >= 1,
	   "a database the server does not have: refused, logged");
	close_and_drain(&cp);
	server("stop", dir_pw);
}

/* ---- e. outages ---------------------------------------------------------------- */

static void
test_late_server(void)
{
	char url[64];
	snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", PORT_LATE);
	size_t mark = log_n;
	struct sts_cache *c = open_ok(url, TIMEOUT_MS);
	spin(100);
	int64_t t0 = now_ms();
	int st = cget(c, "example.com", NULL);
	int64_t dt = now_ms() - t0;
	ok(st < 0 && dt < 50, "server down at open: get fails at once (%d after %lld ms)", st,
	   (long long)dt);
	struct sts_cache_entry e;
	entry(&e, "late.example", "late1", (int64_t)time(NULL), 60, "x");
	ok(cput(c, &e) < 0 && cdel(c, "late.example") < 0, "so do put and del");
	struct scan_res s = { 0 };
	ok(cscan(c, &s) < 0 && s.seen == 0, "and scan");
	ok(log_count(mark, "unreachable", NULL) == 1, "one log line says it is unreachable");
	spin(1200);   /* a few attempts */
	ok(log_count(mark, "debug:", "still down", "next try in 1000 ms", NULL) == 1,
	   "it retries after 0.5 s, then after 1 s (back-off doubles)");
	run_out();
	ok(true, "reconnecting does not keep the loop alive (it ran out)");
	ok(log_count(mark, "unreachable", NULL) == 1 && log_count(mark, "error:", NULL) == 1,
	   "retries do not log again");
	if (log_count(mark, "error:", NULL) != 1)
		log_diag(mark);
	server_start(dir_late, PORT_LATE, NULL);
	int64_t w = wait_ready(c, 10000);
	ok(w >= 0 && w < 5000, "the backend connects once the server starts (%lld ms)",
	   (long long)w);
	ok(log_count(mark, "is back", NULL) == 1, "one log line says it is back");
	if (log_count(mark, "is back", NULL) != 1)
		log_diag(mark);
	ok(cput(c, &e) == 0 && cget(c, "late.example", NULL) == 1, "and it works");
	close_and_drain(&c);
	server("stop", dir_late);
}

/* Load: chains of get/put, each issuing the next from its callback until
 * one fails; an op that fails within the call that issued it ended the
 * chain at once, one that fails later was pending on the connection. */
#define CHAINS 200
static struct sts_cache *load_cache;
static struct sts_cache_entry load_entry;
static size_t load_ok, load_fail_sync, load_fail_async, load_calls, load_issued;
static size_t load_chains_done;
static bool load_issuing;

static void load_issue(size_t chain);

static void
load_done(size_t chain, int status, int want)
{
	load_calls++;
	if (status == want) {
		load_ok++;
		load_issue(chain);
		return;
	}
	if (load_issuing)
		load_fail_sync++;
	else
		load_fail_async++;
	load_chains_done++;
}

static void
load_get_cb(void *arg, int status, const struct sts_cache_entry *e)
{
	(void)e;
	load_done((size_t)(uintptr_t)arg, status, 1);
}

static void
load_put_cb(void *arg, int status)
{
	load_done((size_t)(uintptr_t)arg, status, 0);
}

static void
load_issue(size_t chain)
{
	bool outer = !load_issuing;
	load_issuing = true;
	load_issued++;
	if (load_issued % 3 == 0)
		load_cache->ops->put(load_cache, &load_entry, load_put_cb, (void *)(uintptr_t)chain);
	else
		load_cache->ops->get(load_cache, "kill.example", load_get_cb,
				     (void *)(uintptr_t)chain);
	if (outer)
		load_issuing = false;
}

static bool killer_done;

static void
on_killer_exit(uv_process_t *p, int64_t status, int sig)
{
	(void)status;
	(void)sig;
	killer_done = true;
	uv_close((uv_handle_t *)p, NULL);
}

static void
test_kill(struct sts_cache *c)
{
	int64_t now = (int64_t)time(NULL);
	static char body[2000];
	memset(body, 'p', sizeof body - 1);
	entry(&load_entry, "kill.example", "kill1", now, 3600, body);
	cput(c, &load_entry);
	size_t mark = log_n;
	load_cache = c;
	for (size_t i = 0; i < CHAINS; i++)
		load_issue(i);
	spin(300);
	size_t before = load_ok;
	/* SIGKILL from another process while the loop keeps the load going. */
	char script[PATH_MAX + 32];
	snprintf(script, sizeof script, "%s/tests/servers/redis", root);
	char *args[] = { script, "kill", dir_a, NULL };
	uv_process_t proc;
	uv_process_options_t po = { .exit_cb = on_killer_exit, .file = script, .args = args };
	if (uv_spawn(&loop, &proc, &po) != 0)
		bail("cannot run %s kill", script);
	bool all = false;
	int64_t t0 = now_ms();
	while (now_ms() - t0 < 10000 && !all) {
		spin(10);
		all = killer_done && load_chains_done == CHAINS;
	}
	ok(before > 100, "load before the kill (%zu ops done)", before);
	ok(all && load_calls == load_issued,
	   "SIGKILL under load: each of %zu ops called back once (%zu callbacks)", load_issued,
	   load_calls);
	ok(load_fail_async > 0,
	   "ops pending at the kill failed (%zu; %zu failed at once after it, %zu succeeded)",
	   load_fail_async, load_fail_sync, load_ok);
	ok(log_count(mark, "is down", NULL) == 1, "one log line says the backend is down");
	int64_t t1 = now_ms();
	int st = cget(c, "kill.example", NULL);
	ok(st < 0 && now_ms() - t1 < 50, "while down, get fails at once");
	spin(1600);   /* tries 0.5 s and 1.5 s after the kill; the next 2 s later */
	server_start(dir_a, PORT_A, NULL);
	/* The next try or, on a slow machine, the one after (4 s later). */
	int64_t w = wait_ready(c, 10000);
	ok(w >= 0 && w <= 4500, "after the restart it reconnects within the back-off (%lld ms)",
	   (long long)w);
	ok(log_count(mark, "is back", NULL) == 1 && log_count(mark, "is down", NULL) == 1,
	   "one log line says it is back");
	if (log_count(mark, "is back", NULL) != 1)
		log_diag(mark);
}

/* ---- f. stalls and close -------------------------------------------------------- */

static void
test_stall(struct sts_cache *c)
{
	int64_t now = (int64_t)time(NULL);
	struct sts_cache_entry e;
	entry(&e, "stall.example", "stall1", now, 3600, "x");
	ok(cput(c, &e) == 0, "put before the stall");
	size_t mark = log_n;
	server("pause", dir_a);
	struct res r = { 0 };
	int64_t t0 = now_ms();
	c->ops->get(c, "stall.example", get_cb, &r);
	run_until(&r.done, 10000);
	int64_t dt = now_ms() - t0;
	ok(r.done && r.status < 0 && dt >= TIMEOUT_MS - 50 && dt < TIMEOUT_MS + 1500,
	   "SIGSTOP: get fails after timeout_ms (%d after %lld ms, timeout %d)", r.status,
	   (long long)dt, TIMEOUT_MS);
	ok(log_count(mark, "no answer within", NULL) == 1, "the outage is logged once");
	t0 = now_ms();
	ok(cget(c, "stall.example", NULL) < 0 && now_ms() - t0 < 50,
	   "the next op fails at once: the stalled connection was dropped");
	server("resume", dir_a);
	spin(300);   /* the late reply, if any, would come now */
	ok(r.calls == 1, "the late reply is ignored: one callback");
	ok(wait_ready(c, 5000) >= 0, "after SIGCONT the backend reconnects");
	ok(cget(c, "stall.example", NULL) == 1, "and the entry is there");

	/* scan under a stall */
	server("pause", dir_a);
	struct scan_res s = { 0 };
	t0 = now_ms();
	int st = cscan(c, &s);
	dt = now_ms() - t0;
	ok(st < 0 && s.r.calls == 1 && dt >= TIMEOUT_MS - 50 && dt < TIMEOUT_MS + 1500,
	   "SIGSTOP: scan fails after timeout_ms (%lld ms)", (long long)dt);
	server("resume", dir_a);
	ok(wait_ready(c, 5000) >= 0, "reconnects again");
}

static struct sts_cache *closing_cache;
static int close_in_cb_calls;

static void
close_in_cb(void *arg, int status, const struct sts_cache_entry *e)
{
	(void)arg;
	(void)e;
	(void)status;
	close_in_cb_calls++;
	sts_cache_close(&closing_cache);
}

static void
test_close(const char *url)
{
	struct sts_cache *c = open_ok(url, 30000);
	ok(wait_ready(c, 5000) >= 0, "a handle for the close test connects");
	server("pause", dir_a);
	enum { N = 6 };
	struct res rs[N];
	memset(rs, 0, sizeof rs);
	struct sts_cache_entry e;
	entry(&e, "close.example", "close1", (int64_t)time(NULL), 60, "x");
	c->ops->get(c, "a.example", get_cb, &rs[0]);
	c->ops->get(c, "b.example", get_cb, &rs[1]);
	c->ops->put(c, &e, done_cb, &rs[2]);
	c->ops->del(c, "c.example", done_cb, &rs[3]);
	struct scan_res s = { 0 };
	c->ops->scan(c, scan_each, done_cb, &s);
	c->ops->put(c, &e, NULL, NULL);   /* no callback wanted */
	spin(100);
	bool none = true;
	for (int i = 0; i < 4; i++)
		none = none && !rs[i].done;
	ok(none && !s.r.done, "ops wait on the stalled server");
	sts_cache_close(&c);
	bool all = s.r.calls == 1 && s.r.status < 0;
	for (int i = 0; i < 4; i++)
		all = all && rs[i].calls == 1 && rs[i].status < 0;
	ok(all && c == NULL, "close calls back every pending op with failure, before it returns");
	server("resume", dir_a);

	/* close from inside a callback of the same cache */
	closing_cache = open_ok(url, TIMEOUT_MS);
	ok(wait_ready(closing_cache, 5000) >= 0, "another handle connects");
	struct res more = { 0 };
	closing_cache->ops->get(closing_cache, "x.example", close_in_cb, NULL);
	closing_cache->ops->get(closing_cache, "y.example", get_cb, &more);
	spin(300);
	ok(close_in_cb_calls == 1 && closing_cache == NULL && more.calls == 1 && more.status < 0,
	   "close inside a callback: the next op fails, each called once");
}

/* ---- main ----------------------------------------------------------------------- */

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (uv_loop_init(&loop) != 0)
		bail("uv_loop_init");
	test_urls();
	setup();
	server_start(dir_a, PORT_A, NULL);
	char url[64];
	snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", PORT_A);
	size_t mark = log_n;
	struct sts_cache *c = open_ok(url, TIMEOUT_MS);
	ok(wait_ready(c, 5000) >= 0, "the backend connects to %s", url);
	ok(log_count(mark, "connected", NULL) == 1, "and logs it once");
	run_out();
	ok(cget(c, "probe.invalid", NULL) == 0,
	   "an idle connection does not keep the loop alive (it ran out), and still works");
	cli_a("FLUSHALL");
	test_entries(c);
	test_scan(c);
	test_sharing(c, url);
	struct sts_cache *cl = open_ok("redis://localhost:16379", TIMEOUT_MS);
	ok(wait_ready(cl, 5000) >= 0, "a host name is resolved (redis://localhost:16379)");
	close_and_drain(&cl);
	test_late_server();
	test_kill(c);
	test_stall(c);
	close_and_drain(&c);
	test_close(url);
	run_out();
	ok(uv_loop_close(&loop) == 0, "every handle is closed: the loop runs out");
	for (size_t i = 0; i < log_n; i++)
		free(log_lines[i]);
	servers_down();
	printf("1..%u\n", tap_n);
	return tap_failed == 0 ? 0 : 1;
}
