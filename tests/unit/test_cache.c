/* test_cache.c: both cache backends through the vtable: get/put/del/scan,
 * LRU bound, SQLite persistence across a killed process, a corrupt file moved
 * aside (the service goes on), a newer schema refused (never overwritten). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mtasts/cache.h>
#include <mtasts/status.h>

#include "testutil.h"

struct got {
	int status;
	struct sts_cache_entry e;
};

static void
on_get(void *arg, int status, const struct sts_cache_entry *e)
{
	struct got *g = arg;
	g->status = status;
	memset(&g->e, 0, sizeof g->e);
	if (e != NULL) {
		g->e = *e;
		g->e.policy = strdup(e->policy);
	}
}

static void
on_done(void *arg, int status)
{
	*(int *)arg = status;
}

static struct sts_cache_entry
entry(const char *domain, const char *id, const char *body)
{
	struct sts_cache_entry e = { .fetched_at = 1700000000, .max_age = 86400 };
	snprintf(e.domain, sizeof e.domain, "%s", domain);
	snprintf(e.id, sizeof e.id, "%s", id);
	snprintf(e.mode, sizeof e.mode, "enforce");
	e.policy = (char *)body;
	e.policy_len = strlen(body);
	return e;
}

static int
get(struct sts_cache *c, const char *domain, struct got *g)
{
	g->status = -99;
	c->ops->get(c, domain, on_get, g);
	return g->status;
}

static void
exercise(struct sts_cache *c)
{
	struct got g;
	int st = -99;
	assert_int_equal(get(c, "a.example", &g), 0);
	struct sts_cache_entry e = entry("a.example", "id1", "version: STSv1\n");
	c->ops->put(c, &e, on_done, &st);
	assert_int_equal(st, 0);
	assert_int_equal(get(c, "a.example", &g), 1);
	assert_string_equal(g.e.id, "id1");
	assert_string_equal(g.e.policy, "version: STSv1\n");
	assert_int_equal(g.e.max_age, 86400);
	assert_int_equal(g.e.fetched_at, 1700000000);
	sts_cache_entry_clear(&g.e);
	e = entry("a.example", "id2", "x");
	c->ops->put(c, &e, on_done, &st);      /* replaces */
	assert_int_equal(get(c, "a.example", &g), 1);
	assert_string_equal(g.e.id, "id2");
	sts_cache_entry_clear(&g.e);
	c->ops->del(c, "a.example", on_done, &st);
	assert_int_equal(st, 1);
	c->ops->del(c, "a.example", on_done, &st);
	assert_int_equal(st, 0);
	assert_int_equal(get(c, "a.example", &g), 0);
}

static int scanned;
static int count_each(void *arg, const struct sts_cache_entry *e)
{
	(void)arg;
	(void)e;
	scanned++;
	return 0;
}

static void
test_memory(void **state)
{
	(void)state;
	struct sts_cache *c;
	assert_int_equal(sts_cache_memory_open(3, NULL, &c), STS_OK);
	exercise(c);
	/* LRU: touching a keeps it; the least recently used (b) goes. */
	int st;
	const char *names[] = { "a.example", "b.example", "c.example" };
	for (int i = 0; i < 3; i++) {
		struct sts_cache_entry e = entry(names[i], "1", "p");
		c->ops->put(c, &e, on_done, &st);
	}
	struct got g;
	assert_int_equal(get(c, "a.example", &g), 1);
	sts_cache_entry_clear(&g.e);
	struct sts_cache_entry d = entry("d.example", "1", "p");
	c->ops->put(c, &d, on_done, &st);
	assert_int_equal(get(c, "b.example", &g), 0);
	assert_int_equal(get(c, "a.example", &g), 1);
	sts_cache_entry_clear(&g.e);
	scanned = 0;
	c->ops->scan(c, count_each, on_done, &st);
	assert_int_equal(scanned, 3);
	sts_cache_close(&c);
	assert_null(c);
	assert_int_not_equal(sts_cache_memory_open(0, NULL, &c), STS_OK);
}

static char tmpdir[256];

static int
mk_tmp(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/mtasts-cache-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int
rm_tmp(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int logged;
static void count_log(void *ctx, enum sts_log_level l, const char *msg)
{
	(void)ctx;
	(void)l;
	printf("# log: %s\n", msg);
	logged++;
}

static void
test_sqlite_basic(void **state)
{
	(void)state;
	char path[300], err[512];
	snprintf(path, sizeof path, "%s/basic.db", tmpdir);
	struct sts_cache *c;
	assert_int_equal(sts_cache_sqlite_open(path, NULL, &c, err, sizeof err), 0);
	exercise(c);
	sts_cache_close(&c);
}

/* A policy stored before the process is killed is there afterwards. */
static void
test_sqlite_survives_kill(void **state)
{
	(void)state;
	char path[300], err[512];
	snprintf(path, sizeof path, "%s/kill.db", tmpdir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sts_cache *c;
		if (sts_cache_sqlite_open(path, NULL, &c, err, sizeof err) != 0)
			_exit(1);
		struct sts_cache_entry e = entry("k.example", "kid", "version: STSv1\n");
		int st = -1;
		c->ops->put(c, &e, on_done, &st);
		if (st != 0)
			_exit(2);
		raise(SIGKILL);   /* no close, no checkpoint */
		_exit(3);
	}
	int ws;
	waitpid(pid, &ws, 0);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
	struct sts_cache *c;
	assert_int_equal(sts_cache_sqlite_open(path, NULL, &c, err, sizeof err), 0);
	struct got g;
	assert_int_equal(get(c, "k.example", &g), 1);
	assert_string_equal(g.e.id, "kid");
	sts_cache_entry_clear(&g.e);
	sts_cache_close(&c);
}

/* Garbage where the database should be: moved aside, fresh start, logged. */
static void
test_sqlite_corrupt(void **state)
{
	(void)state;
	char path[300], err[512];
	snprintf(path, sizeof path, "%s/corrupt.db", tmpdir);
	FILE *fp = fopen(path, "wb");
	for (int i = 0; i < 4096; i++)
		fputc(i * 7 % 251, fp);
	fclose(fp);
	struct sts_logger lg = { count_log, NULL, STS_LOG_DEBUG };
	logged = 0;
	struct sts_cache *c;
	assert_int_equal(sts_cache_sqlite_open(path, &lg, &c, err, sizeof err), 0);
	assert_true(logged >= 1);
	exercise(c);
	sts_cache_close(&c);
	char cmd[400];
	snprintf(cmd, sizeof cmd, "ls %s/corrupt.db.corrupt-* >/dev/null 2>&1", tmpdir);
	assert_int_equal(system(cmd), 0);
}

/* A database from a newer schema is refused, not overwritten. */
static void
test_sqlite_newer_schema(void **state)
{
	(void)state;
	char path[300], err[512], cmd[400];
	snprintf(path, sizeof path, "%s/newer.db", tmpdir);
	struct sts_cache *c;
	assert_int_equal(sts_cache_sqlite_open(path, NULL, &c, err, sizeof err), 0);
	sts_cache_close(&c);
	snprintf(cmd, sizeof cmd, "sqlite3 '%s' 'PRAGMA user_version=9' 2>/dev/null || "
		 "python3 -c \"import sqlite3;c=sqlite3.connect('%s');c.execute('PRAGMA user_version=9');c.commit()\"",
		 path, path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(sts_cache_sqlite_open(path, NULL, &c, err, sizeof err), -1);
	printf("# %s\n", err);
	assert_non_null(strstr(err, "newer"));
}

static void
test_sqlite_unwritable(void **state)
{
	(void)state;
	char err[512];
	struct sts_cache *c;
	assert_int_equal(sts_cache_sqlite_open("/nonexistent-dir/x/cache.db", NULL, &c, err,
					       sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent-dir/x/cache.db"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_sqlite_basic),
		cmocka_unit_test(test_sqlite_survives_kill),
		cmocka_unit_test(test_sqlite_corrupt),
		cmocka_unit_test(test_sqlite_newer_schema),
		cmocka_unit_test(test_sqlite_unwritable),
	};
	return cmocka_run_group_tests_name("cache", tests, mk_tmp, rm_tmp);
}
