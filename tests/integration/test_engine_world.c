/* test_engine_world.c: the sender state machine against the real servers of
 * the local test world (tests/world), counting at the servers. Speaks TAP.
 *
 * Brings the world up itself (tests/world/up in a mkdtemp directory, under
 * the world lock /tmp/mtasts-world.lock that the shell tests take too) and
 * always takes it down again: at exit, and otherwise (a signal, a meson
 * timeout, a sanitizer report) from a guardian process that waits for this
 * one to die without having done so. The library is
 * used directly: c-ares against knotd on 127.0.54.1:53, libcurl against
 * nginx with the world's CA, the in-memory cache and a fake clock, so time
 * moves without sleeping. What went over the wire is read from the servers
 * with tests/world/counts: knot's per-zone query counters (mod-stats) and
 * nginx's access log (SNI, Host, path, status):
 *
 *   a. 100 overlapping lookups of coalesce.test in mixed spellings cost one
 *      TXT query, one address lookup and one HTTPS request (coalescing);
 *   d. a repeated lookup is answered from the cache after one TXT query;
 *   b. backoff.test (HTTP 404): a failed fetch is not retried for five
 *      minutes, then it is (rule 34);
 *   c. coalesce.test with a new id and its policy host answering 500: the
 *      cached policy stays in force, with the reason (rule 38), the failed
 *      id backs off, and a working host is fetched once the back-off ends;
 *   e. sts_engine_free with a fetch in flight, then the fetcher's free
 *      cancels it: no use of the freed lookup (under ASan).
 *
 * If the world cannot start this is a failure ("Bail out!"), never a skip.
 * MTASTS_KEEP_WORLD=1 leaves the world up and prints its directory. */
#include <errno.h>
#include <fcntl.h>
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

#include <curl/curl.h>   /* only for curl_global_cleanup at exit (LeakSanitizer) */
#include <uv.h>

#include <mtasts/cache.h>
#include <mtasts/clock.h>
#include <mtasts/dns.h>
#include <mtasts/engine.h>
#include <mtasts/fetch.h>

#include "tap.h"

#define WORLD_LOCK "/tmp/mtasts-world.lock"
#define LOCK_WAIT_S 240
#define RESOLVER "127.0.54.1:53"
#define N_COALESCE 100

/* ---- TAP ------------------------------------------------------------------ */






/* ---- the world -------------------------------------------------------------- */

static char root[PATH_MAX];      /* source tree */
static char tmproot[PATH_MAX];   /* mkdtemp */
static char wdir[PATH_MAX];      /* tmproot/world */
static char down_path[PATH_MAX + 32];
static bool world_made;          /* up was run: down must run */
static int lock_fd = -1;

static void
shell(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
shell(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= n)
		bail("command too long");
}

/* Paths go into sh -c in single quotes: refuse the one character that
 * would end them. */
static void
check_quotable(const char *what, const char *s)
{
	if (strchr(s, '\'') != NULL)
		bail("%s contains a single quote: %s", what, s);
}

static void
world_down(void)
{
	if (!world_made)
		return;
	world_made = false;
	char cmd[3 * PATH_MAX];
	if (getenv("MTASTS_KEEP_WORLD") != NULL) {
		printf("# world kept in %s (tests/world/down %s)\n", wdir, wdir);
		fflush(stdout);
		tap_guardian_release();
		return;
	}
	shell(cmd, sizeof cmd, "'%s' '%s' >/dev/null 2>&1", down_path, wdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_engine_world: %s failed\n", cmd);
	shell(cmd, sizeof cmd, "rm -rf '%s'", tmproot);
	if (system(cmd) != 0)
		fprintf(stderr, "test_engine_world: cannot remove %s\n", tmproot);
	tap_guardian_release();
}

static void
guardian_run(const char *file, const char *a1, const char *a2)
{
	pid_t p = fork();
	if (p == 0) {
		execl(file, file, a1, a2, (char *)NULL);
		_exit(127);
	}
	if (p > 0)
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
		}
}

/* Run by the guardian when the test dies without cleaning up: the world is
 * taken down (unless MTASTS_KEEP_WORLD), so the next test is not blocked. */
static void
world_orphaned(void)
{
	if (getenv("MTASTS_KEEP_WORLD") != NULL)
		return;
	guardian_run(down_path, wdir, NULL);
	guardian_run("/bin/rm", "-rf", tmproot);
}

static void
take_lock(void)
{
	lock_fd = open(WORLD_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (lock_fd < 0)
		bail("cannot open %s: %s", WORLD_LOCK, strerror(errno));
	for (int i = 0; i < LOCK_WAIT_S * 10; i++) {
		if (flock(lock_fd, LOCK_EX | LOCK_NB) == 0)
			return;
		if (errno != EWOULDBLOCK && errno != EINTR)
			bail("flock %s: %s", WORLD_LOCK, strerror(errno));
		if (i == 0)
			diag("waiting for another test world to finish (%s)", WORLD_LOCK);
		usleep(100000);
	}
	bail("another test world held %s for %d s", WORLD_LOCK, LOCK_WAIT_S);
}

static void
world_up(void)
{
	const char *src = getenv("MTASTS_SOURCE_ROOT");
	if (src == NULL || src[0] == '\0')
		bail("MTASTS_SOURCE_ROOT is not set (run through meson test)");
	if (realpath(src, root) == NULL)
		bail("MTASTS_SOURCE_ROOT=%s: %s", src, strerror(errno));
	check_quotable("MTASTS_SOURCE_ROOT", root);
	snprintf(down_path, sizeof down_path, "%s/tests/world/down", root);
	if (access(down_path, X_OK) != 0)
		bail("%s is not executable: %s", down_path, strerror(errno));

	take_lock();   /* first: a run killed while it waits leaves nothing behind */
	const char *t = getenv("TMPDIR");
	snprintf(tmproot, sizeof tmproot, "%s/mtasts-engine.XXXXXX",
		 t != NULL && t[0] != '\0' ? t : "/tmp");
	if (mkdtemp(tmproot) == NULL)
		bail("mkdtemp %s: %s", tmproot, strerror(errno));
	check_quotable("TMPDIR", tmproot);
	snprintf(wdir, sizeof wdir, "%s/world", tmproot);

	tap_guardian_start(world_orphaned);
	world_made = true;
	char cmd[3 * PATH_MAX], out[PATH_MAX + 16];
	snprintf(out, sizeof out, "%s/up.out", tmproot);
	shell(cmd, sizeof cmd, "WORLD_QUIET=1 '%s/tests/world/up' '%s' >'%s' 2>&1", root, wdir,
	      out);
	int rc = system(cmd);
	if (rc != 0) {
		diag_file("up", out, 40);
		bail("tests/world/up failed (status %d)", rc);
	}
}

/* What the servers saw for a counted domain (tests/world/counts). */
struct counts {
	long txt, a, aaaa, https, policy, s200, s404, s500;
};

static bool
read_counts(const char *domain, struct counts *c)
{
	char cmd[3 * PATH_MAX];
	shell(cmd, sizeof cmd, "'%s/tests/world/counts' '%s' '%s' 2>&1", root, wdir, domain);
	memset(c, 0, sizeof *c);
	long seen = 0;
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		return false;
	char line[256], key[64];
	long v;
	while (fgets(line, sizeof line, p) != NULL) {
		if (sscanf(line, "%63s %ld", key, &v) != 2) {
			diag("counts: %s", line);
			continue;
		}
		seen++;
		if (strcmp(key, "dns.TXT") == 0)
			c->txt = v;
		else if (strcmp(key, "dns.A") == 0)
			c->a = v;
		else if (strcmp(key, "dns.AAAA") == 0)
			c->aaaa = v;
		else if (strcmp(key, "https") == 0)
			c->https = v;
		else if (strcmp(key, "https.policy") == 0)
			c->policy = v;
		else if (strcmp(key, "https.status.200") == 0)
			c->s200 = v;
		else if (strcmp(key, "https.status.404") == 0)
			c->s404 = v;
		else if (strcmp(key, "https.status.500") == 0)
			c->s500 = v;
	}
	int rc = pclose(p);
	if (rc != 0 || seen < 7) {
		diag("tests/world/counts %s failed (status %d)", domain, rc);
		return false;
	}
	return true;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* nginx logs a request just after it sent the response, so the client can
 * be a little ahead of the log: wait (up to 5 s) until at least min_https
 * requests are logged, then a little longer so that a request too many
 * would show too. knot counts a query before it answers. */
static bool
settled_counts(const char *domain, long min_https, struct counts *c)
{
	for (int i = 0; i < 100; i++) {
		if (!read_counts(domain, c))
			return false;
		if (c->https >= min_https)
			break;
		sleep_ms(50);
	}
	sleep_ms(300);
	return read_counts(domain, c);
}

static void
diag_counts(const char *domain, const struct counts *c)
{
	diag("%s at the servers: TXT %ld, A %ld, AAAA %ld; HTTPS %ld (policy path %ld; 200: %ld,"
	     " 404: %ld, 500: %ld)", domain, c->txt, c->a, c->aaaa, c->https, c->policy, c->s200,
	     c->s404, c->s500);
}

/* ---- the engine --------------------------------------------------------------- */

static int64_t fake_now;

static int64_t
fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

static void
log_line(void *ctx, enum sts_log_level level, const char *msg)
{
	(void)ctx;
	printf("# engine %s: %s\n", sts_log_level_name(level), msg);
	fflush(stdout);
}

struct rec {
	unsigned calls;
	enum sts_lookup_status status;
	enum sts_lookup_source source;
	bool has_policy;
	char domain[256];
	char id[64];
	char code[64];             /* "" for none */
	char tlsrpt[64];
};

static uv_loop_t loop;
static struct sts_engine *engine;
static unsigned pending;

static void
on_lookup(void *arg, const struct sts_lookup_result *r)
{
	struct rec *x = arg;
	if (x->calls++ == 0 && pending > 0)
		pending--;
	x->status = r->status;
	x->source = r->source;
	x->has_policy = r->policy != NULL;
	snprintf(x->domain, sizeof x->domain, "%s", r->domain != NULL ? r->domain : "(null)");
	snprintf(x->id, sizeof x->id, "%s", r->id != NULL ? r->id : "(null)");
	snprintf(x->code, sizeof x->code, "%s", r->error_code != NULL ? r->error_code : "");
	snprintf(x->tlsrpt, sizeof x->tlsrpt, "%s", r->tlsrpt_type != NULL ? r->tlsrpt_type : "");
	if (r->error_code != NULL)
		diag("lookup %s: %s (%s: %s)", x->domain, sts_lookup_status_name(r->status),
		     r->error_code, r->error_message != NULL ? r->error_message : "");
}

static void
on_watchdog(uv_timer_t *t)
{
	(void)t;
	diag("watchdog: lookups still pending after 30 s");
	uv_stop(&loop);
}

/* Starts one lookup per name, then runs the loop until all have answered.
 * Bails out when some did not answer within 30 s. */
static bool
lookups(const char *const *names, struct rec *recs, size_t n)
{
	memset(recs, 0, n * sizeof *recs);
	pending = (unsigned)n;
	for (size_t i = 0; i < n; i++)
		sts_engine_lookup(engine, names[i], on_lookup, &recs[i]);
	uv_timer_t dog;
	uv_timer_init(&loop, &dog);
	uv_timer_start(&dog, on_watchdog, 30000, 0);
	uv_unref((uv_handle_t *)&dog);   /* the lookups keep the loop alive, not this */
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&dog, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	if (pending != 0)   /* their callbacks would write into freed records */
		bail("%u of %zu lookups did not answer within 30 s", pending, n);
	return true;
}

static bool
lookup1(const char *name, struct rec *r)
{
	const char *names[1] = { name };
	bool done = lookups(names, r, 1);
	ok(done && r->calls == 1, "%s: the callback ran once", name);
	return done;
}

static bool
streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* ---- cases ------------------------------------------------------------------ */

static void
case_coalesce(void)
{
	static const char *const spell[] = { "coalesce.test", "COALESCE.TEST.", "Coalesce.Test",
					     "coalesce.test.", "cOaLeScE.tEsT" };
	const char *names[N_COALESCE];
	static struct rec recs[N_COALESCE];
	for (size_t i = 0; i < N_COALESCE; i++)
		names[i] = spell[i % (sizeof spell / sizeof spell[0])];
	struct sts_engine_stats s0, s1;
	sts_engine_stats(engine, &s0);
	bool done = lookups(names, recs, N_COALESCE);
	sts_engine_stats(engine, &s1);

	size_t once = 0, policy = 0, same = 0;
	for (size_t i = 0; i < N_COALESCE; i++) {
		once += recs[i].calls == 1;
		policy += recs[i].status == STS_LOOKUP_POLICY && recs[i].has_policy;
		same += recs[i].source == STS_SOURCE_FETCH && streq(recs[i].domain, "coalesce.test") &&
			streq(recs[i].id, "coalesce1") && recs[i].code[0] == '\0';
	}
	ok(done && once == N_COALESCE, "coalesce: all %d callbacks ran, each once (%zu)",
	   N_COALESCE, once);
	ok(policy == N_COALESCE, "coalesce: all %d got STS_LOOKUP_POLICY (%zu)", N_COALESCE,
	   policy);
	ok(same == N_COALESCE, "coalesce: all %d: fetched, domain coalesce.test, id coalesce1,"
	   " no error (%zu)", N_COALESCE, same);
	ok(s1.coalesced - s0.coalesced == N_COALESCE - 1, "coalesce: engine stats coalesced == %d"
	   " (%lu)", N_COALESCE - 1, s1.coalesced - s0.coalesced);
	ok(s1.txt_queries - s0.txt_queries == 1 && s1.fetches - s0.fetches == 1,
	   "coalesce: engine stats: 1 TXT query, 1 fetch (%lu, %lu)",
	   s1.txt_queries - s0.txt_queries, s1.fetches - s0.fetches);

	struct counts c;
	bool got = settled_counts("coalesce.test", 1, &c);
	diag_counts("coalesce.test", &c);
	ok(got && c.txt == 1, "coalesce: knot saw exactly 1 TXT query for _mta-sts.coalesce.test"
	   " (%ld)", c.txt);
	ok(got && c.a == 1 && c.aaaa == 1, "coalesce: knot saw 1 A and 1 AAAA query for"
	   " mta-sts.coalesce.test (%ld, %ld)", c.a, c.aaaa);
	ok(got && c.policy == 1 && c.https == 1 && c.s200 == 1,
	   "coalesce: nginx saw exactly 1 HTTPS request, GET /.well-known/mta-sts.txt with SNI and"
	   " Host mta-sts.coalesce.test, answered 200 (%ld, of all %ld)", c.policy, c.https);
}

/* d: the same id again: one TXT query, the policy from the cache. */
static void
case_cached(void)
{
	struct counts c0, c;
	bool got = read_counts("coalesce.test", &c0);
	fake_now += 10;
	struct rec r;
	if (lookup1("coalesce.test", &r)) {
		ok(r.status == STS_LOOKUP_POLICY && r.source == STS_SOURCE_CACHE &&
		   streq(r.id, "coalesce1") && r.code[0] == '\0',
		   "cached: policy from the cache, id coalesce1, no error (status %s, source %d,"
		   " id %s, code '%s')", sts_lookup_status_name(r.status), (int)r.source, r.id,
		   r.code);
	} else {
		ok(false, "cached: policy from the cache");
	}
	got = settled_counts("coalesce.test", c0.https, &c) && got;
	diag_counts("coalesce.test", &c);
	ok(got && c.txt == c0.txt + 1, "cached: knot saw 1 more TXT query (%ld -> %ld)", c0.txt,
	   c.txt);
	ok(got && c.https == c0.https && c.a == c0.a && c.aaaa == c0.aaaa,
	   "cached: no HTTPS request and no address lookup (HTTPS %ld -> %ld, A %ld -> %ld)",
	   c0.https, c.https, c0.a, c.a);
}

/* b: rule 34, at most one fetch of one id per five minutes. */
static void
case_backoff(void)
{
	int64_t t0 = fake_now;
	struct rec r;
	struct counts c, c1;
	bool got;

	lookup1("backoff.test", &r);
	ok(r.status == STS_LOOKUP_NO_POLICY && streq(r.code, "fetch.http.status") &&
	   streq(r.tlsrpt, "sts-policy-fetch-error"),
	   "backoff: no policy, fetch.http.status, sts-policy-fetch-error (%s, '%s', '%s')",
	   sts_lookup_status_name(r.status), r.code, r.tlsrpt);
	got = settled_counts("backoff.test", 1, &c1);
	diag_counts("backoff.test", &c1);
	ok(got && c1.https == 1 && c1.policy == 1 && c1.s404 == 1,
	   "backoff: nginx saw 1 HTTPS request for the policy, answered 404 (%ld)", c1.https);
	ok(got && c1.txt == 1, "backoff: knot saw 1 TXT query (%ld)", c1.txt);

	static const struct {
		int64_t at;
		const char *what;
	} later[] = { { 60, "60 s later" }, { 299, "299 s after the first" } };
	for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
		fake_now = t0 + later[i].at;
		lookup1("backoff.test", &r);
		ok(r.status == STS_LOOKUP_NO_POLICY && streq(r.code, "fetch.http.status"),
		   "backoff, %s: still no policy, fetch.http.status (%s, '%s')", later[i].what,
		   sts_lookup_status_name(r.status), r.code);
		got = settled_counts("backoff.test", 1, &c);
		diag_counts("backoff.test", &c);
		ok(got && c.https == 1, "backoff, %s: still exactly 1 HTTPS request at nginx (%ld)",
		   later[i].what, c.https);
		ok(got && c.a == c1.a && c.aaaa == c1.aaaa,
		   "backoff, %s: no address lookup either (A %ld, AAAA %ld)", later[i].what, c.a,
		   c.aaaa);
		ok(got && c.txt <= c1.txt + (long)i + 1,
		   "backoff, %s: at most one more TXT query (%ld)", later[i].what, c.txt);
	}

	fake_now = t0 + 301;
	lookup1("backoff.test", &r);
	ok(r.status == STS_LOOKUP_NO_POLICY && streq(r.code, "fetch.http.status"),
	   "backoff, 301 s after the first: no policy, fetch.http.status (%s, '%s')",
	   sts_lookup_status_name(r.status), r.code);
	got = settled_counts("backoff.test", 2, &c);
	diag_counts("backoff.test", &c);
	ok(got && c.https == 2 && c.s404 == 2,
	   "backoff, 301 s after the first: fetched again, 2 HTTPS requests at nginx (%ld)",
	   c.https);
}

static bool
run(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool
run(const char *what, const char *fmt, ...)
{
	char cmd[3 * PATH_MAX], out[PATH_MAX + 16];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(cmd, sizeof cmd - PATH_MAX - 32, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof cmd - PATH_MAX - 32)
		bail("command too long");
	snprintf(out, sizeof out, "%s/run.out", tmproot);
	strcat(cmd, " >'");
	strcat(cmd, out);
	strcat(cmd, "' 2>&1");
	int rc = system(cmd);
	if (rc != 0) {
		diag("%s failed (status %d): %s", what, rc, cmd);
		diag_file(what, out, 20);
	}
	return rc == 0;
}

/* c: rule 38 at the servers: a new id, the policy host answers 500. */
static void
case_cached_survives(void)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/www/coalesce/down", wdir);
	FILE *fp = fopen(path, "w");
	bool edited = fp != NULL && fclose(fp) == 0;
	edited = run("zone edit", "sed -i 's/id=coalesce1/id=coalesce2/' '%s/zones/coalesce.test.zone'",
		     wdir) && edited;
	edited = run("tests/world/reload", "'%s/tests/world/reload' '%s'", root, wdir) && edited;
	ok(edited, "rule 38: TXT id of coalesce.test now coalesce2, its policy host answers 500,"
	   " world reloaded");

	struct counts c0, c;
	bool got = read_counts("coalesce.test", &c0);
	diag_counts("coalesce.test", &c0);
	fake_now += 10;
	struct rec r;
	lookup1("coalesce.test", &r);
	ok(r.status == STS_LOOKUP_POLICY && r.source == STS_SOURCE_CACHE && r.has_policy &&
	   streq(r.id, "coalesce1"),
	   "rule 38: the cached policy (id coalesce1) stays in force (%s, source %d, id %s)",
	   sts_lookup_status_name(r.status), (int)r.source, r.id);
	ok(streq(r.code, "fetch.http.status") && streq(r.tlsrpt, "sts-policy-fetch-error"),
	   "rule 38: with the reason it was not refreshed: fetch.http.status,"
	   " sts-policy-fetch-error ('%s', '%s')", r.code, r.tlsrpt);
	got = settled_counts("coalesce.test", c0.https + 1, &c) && got;
	diag_counts("coalesce.test", &c);
	ok(got && c.txt == c0.txt + 1, "rule 38: knot saw 1 more TXT query (%ld -> %ld)", c0.txt,
	   c.txt);
	ok(got && c.https == c0.https + 1 && c.policy == c0.policy + 1 && c.s500 == 1,
	   "rule 38: nginx saw the fetch attempt: 1 more request, answered 500 (%ld -> %ld)",
	   c0.https, c.https);

	/* The failed id backs off (rule 34) while the cached policy applies. */
	c0 = c;
	int64_t t_fail = fake_now;
	fake_now = t_fail + 60;
	lookup1("coalesce.test", &r);
	ok(r.status == STS_LOOKUP_POLICY && r.source == STS_SOURCE_CACHE &&
	   streq(r.id, "coalesce1") && streq(r.code, "fetch.http.status"),
	   "rule 38 + 34, 60 s later: cached policy, fetch.http.status (%s, source %d, '%s')",
	   sts_lookup_status_name(r.status), (int)r.source, r.code);
	got = settled_counts("coalesce.test", c0.https, &c);
	diag_counts("coalesce.test", &c);
	ok(got && c.https == c0.https, "rule 38 + 34, 60 s later: no new HTTPS request (%ld -> %ld)",
	   c0.https, c.https);

	/* The host works again; after the back-off the new id is fetched. */
	c0 = c;
	ok(unlink(path) == 0, "policy host of coalesce.test serves the policy again");
	fake_now = t_fail + 301;
	lookup1("coalesce.test", &r);
	ok(r.status == STS_LOOKUP_POLICY && r.source == STS_SOURCE_FETCH &&
	   streq(r.id, "coalesce2") && r.code[0] == '\0',
	   "after the back-off: id coalesce2 fetched, no error (%s, source %d, id %s, '%s')",
	   sts_lookup_status_name(r.status), (int)r.source, r.id, r.code);
	got = settled_counts("coalesce.test", c0.https + 1, &c);
	diag_counts("coalesce.test", &c);
	ok(got && c.https == c0.https + 1 && c.s200 == c0.s200 + 1,
	   "after the back-off: nginx saw 1 more request, answered 200 (%ld -> %ld)", c0.https,
	   c.https);
}

/* e: sts_engine_free with a fetch in flight (stall.test: the handshake
 * completes, then nginx sleeps 60 s). The lookup completes at once with
 * TEMPFAIL; the fetch, cancelled when the fetcher is freed afterwards,
 * still calls back into the engine: that must not touch the freed job
 * (ASan turns a use after free into a failure here). */
static uv_timer_t stop_timer;

static void
on_stop_timer(uv_timer_t *t)
{
	uv_stop(t->loop);
}

static void
case_free_in_flight(struct sts_fetcher **fetcher, struct sts_dns **dns)
{
	struct rec r;
	memset(&r, 0, sizeof r);
	pending = 1;
	sts_engine_lookup(engine, "stall.test", on_lookup, &r);
	uv_timer_init(&loop, &stop_timer);
	uv_timer_start(&stop_timer, on_stop_timer, 1500, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&stop_timer, NULL);
	ok(r.calls == 0, "free in flight: after 1.5 s the stall.test lookup still waits for nginx");
	sts_engine_free(&engine);
	ok(r.calls == 1 && r.status == STS_LOOKUP_TEMPFAIL && streq(r.code, "internal"),
	   "free in flight: sts_engine_free completes the lookup with TEMPFAIL (%u calls, %s, '%s')",
	   r.calls, sts_lookup_status_name(r.status), r.code);
	sts_fetcher_free(fetcher);   /* the cancelled fetch calls back now */
	sts_dns_free(dns);
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(r.calls == 1, "free in flight: the cancelled fetch did not answer the lookup again (%u)",
	   r.calls);
}

/* ---- main ------------------------------------------------------------------- */

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	atexit(world_down);

	world_up();
	char ca[PATH_MAX + 16];
	snprintf(ca, sizeof ca, "%s/ca.pem", wdir);

	if (uv_loop_init(&loop) != 0)
		bail("uv_loop_init failed");
	char err[512];
	struct sts_dns *dns = NULL;
	struct sts_dns_opts dopts = { .servers = RESOLVER, .try_timeout_ms = 2000, .tries = 2 };
	if (sts_dns_new(&loop, &dopts, &dns, err, sizeof err) != 0)
		bail("sts_dns_new: %s", err);
	struct sts_fetcher *fetcher = NULL;
	struct sts_fetch_opts fopts = { .ca_file = ca, .timeout_ms = 10000 };
	if (sts_fetcher_new(&loop, &fopts, &fetcher, err, sizeof err) != 0)
		bail("sts_fetcher_new: %s", err);
	struct sts_logger lg = { .fn = log_line, .max = STS_LOG_INFO };
	struct sts_cache *cache = NULL;
	if (sts_cache_memory_open(64, &lg, &cache) != 0)
		bail("sts_cache_memory_open failed");
	fake_now = (int64_t)time(NULL);
	struct sts_clock clock = { .now = fake_clock };
	struct sts_engine_opts eo = { .dns = dns, .fetcher = fetcher, .cache = cache,
				      .clock = &clock, .log = lg };
	if (sts_engine_new(&eo, &engine) != 0)
		bail("sts_engine_new failed");

	case_coalesce();
	case_cached();
	case_backoff();
	case_cached_survives();
	case_free_in_flight(&fetcher, &dns);

	sts_engine_free(&engine);
	sts_fetcher_free(&fetcher);
	sts_dns_free(&dns);
	sts_cache_close(&cache);
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(uv_loop_close(&loop) == 0, "teardown: every libuv handle closed");
	curl_global_cleanup();

	printf("1..%u\n", tap_n);
	world_down();
	if (lock_fd >= 0)
		close(lock_fd);
	return tap_failed == 0 ? 0 : 1;
}
