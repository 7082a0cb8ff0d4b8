/* sts_cache_sqlite.c: the embedded default cache backend.
 *
 * WAL journal with synchronous=NORMAL: a committed put survives the process
 * being killed. The schema is versioned with PRAGMA user_version; a file
 * that is not a readable database is moved aside and a fresh one started,
 * so a damaged cache never stops the service. A database written by a newer
 * schema is refused rather than overwritten. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mtasts/cache.h>
#include <mtasts/status.h>

#define SCHEMA_VERSION 1

struct sql_cache {
	struct sts_cache base;
	sqlite3 *db;
	sqlite3_stmt *get, *put, *del, *scan;
	char path[4096];
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS policies ("
	" domain TEXT PRIMARY KEY,"
	" id TEXT NOT NULL,"
	" fetched_at INTEGER NOT NULL,"
	" max_age INTEGER NOT NULL,"
	" mode TEXT NOT NULL,"
	" policy BLOB NOT NULL);"
	"PRAGMA user_version = 1;";

static int
row_to_entry(sqlite3_stmt *st, struct sts_cache_entry *e)
{
	memset(e, 0, sizeof *e);
	const char *domain = (const char *)sqlite3_column_text(st, 0);
	const char *id = (const char *)sqlite3_column_text(st, 1);
	const char *mode = (const char *)sqlite3_column_text(st, 4);
	const void *policy = sqlite3_column_blob(st, 5);
	int plen = sqlite3_column_bytes(st, 5);
	if (domain == NULL || id == NULL || mode == NULL || plen < 0 ||
	    strlen(domain) > STS_HOST_MAX || strlen(id) > STS_ID_MAX)
		return STS_ESTATE;
	snprintf(e->domain, sizeof e->domain, "%s", domain);
	snprintf(e->id, sizeof e->id, "%s", id);
	snprintf(e->mode, sizeof e->mode, "%s", mode);
	e->fetched_at = sqlite3_column_int64(st, 2);
	sqlite3_int64 ma = sqlite3_column_int64(st, 3);
	e->max_age = ma < 0 ? 0 : ma > 31557600 ? 31557600 : (uint32_t)ma;
	e->policy = malloc((size_t)plen + 1);
	if (e->policy == NULL)
		return STS_ENOMEM;
	if (plen > 0)
		memcpy(e->policy, policy, (size_t)plen);
	e->policy[plen] = '\0';
	e->policy_len = (size_t)plen;
	return STS_OK;
}

static void
sql_get(struct sts_cache *c, const char *domain, sts_cache_get_cb cb, void *arg)
{
	struct sql_cache *s = (struct sql_cache *)c;
	sqlite3_reset(s->get);
	sqlite3_bind_text(s->get, 1, domain, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s->get);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s->get);
		cb(arg, 0, NULL);
		return;
	}
	if (rc != SQLITE_ROW) {
		sts_log(&c->log, STS_LOG_ERROR, "cache %s: reading %s failed: %s", s->path, domain,
			sqlite3_errmsg(s->db));
		sqlite3_reset(s->get);
		cb(arg, STS_EIO, NULL);
		return;
	}
	struct sts_cache_entry e;
	int st = row_to_entry(s->get, &e);
	sqlite3_reset(s->get);
	if (st != STS_OK) {
		sts_log(&c->log, STS_LOG_ERROR, "cache %s: entry for %s is damaged; ignoring it",
			s->path, domain);
		sts_cache_entry_clear(&e);
		cb(arg, st, NULL);
		return;
	}
	cb(arg, 1, &e);
	sts_cache_entry_clear(&e);
}

static void
sql_put(struct sts_cache *c, const struct sts_cache_entry *e, sts_cache_done_cb cb, void *arg)
{
	struct sql_cache *s = (struct sql_cache *)c;
	sqlite3_reset(s->put);
	sqlite3_bind_text(s->put, 1, e->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->put, 2, e->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->put, 3, e->fetched_at);
	sqlite3_bind_int64(s->put, 4, e->max_age);
	sqlite3_bind_text(s->put, 5, e->mode, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s->put, 6, e->policy, (int)e->policy_len, SQLITE_STATIC);
	int rc = sqlite3_step(s->put);
	sqlite3_reset(s->put);
	if (rc != SQLITE_DONE) {
		sts_log(&c->log, STS_LOG_ERROR, "cache %s: storing %s failed: %s", s->path,
			e->domain, sqlite3_errmsg(s->db));
		if (cb) cb(arg, STS_EIO);
		return;
	}
	if (cb) cb(arg, 0);
}

static void
sql_del(struct sts_cache *c, const char *domain, sts_cache_done_cb cb, void *arg)
{
	struct sql_cache *s = (struct sql_cache *)c;
	sqlite3_reset(s->del);
	sqlite3_bind_text(s->del, 1, domain, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s->del);
	sqlite3_reset(s->del);
	if (rc != SQLITE_DONE) {
		sts_log(&c->log, STS_LOG_ERROR, "cache %s: deleting %s failed: %s", s->path, domain,
			sqlite3_errmsg(s->db));
		if (cb) cb(arg, STS_EIO);
		return;
	}
	if (cb) cb(arg, sqlite3_changes(s->db) > 0);
}

static void
sql_scan(struct sts_cache *c, sts_cache_each_cb each, sts_cache_done_cb done, void *arg)
{
	struct sql_cache *s = (struct sql_cache *)c;
	int status = 0, rc;
	sqlite3_reset(s->scan);
	while ((rc = sqlite3_step(s->scan)) == SQLITE_ROW) {
		struct sts_cache_entry e;
		if (row_to_entry(s->scan, &e) != STS_OK) {
			sts_cache_entry_clear(&e);
			continue;
		}
		int stop = each(arg, &e);
		sts_cache_entry_clear(&e);
		if (stop)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		status = STS_EIO;
	sqlite3_reset(s->scan);
	if (done) done(arg, status);
}

static void
sql_close(struct sts_cache *c)
{
	struct sql_cache *s = (struct sql_cache *)c;
	sqlite3_finalize(s->get);
	sqlite3_finalize(s->put);
	sqlite3_finalize(s->del);
	sqlite3_finalize(s->scan);
	sqlite3_close(s->db);
	free(s);
}

static const struct sts_cache_ops sql_ops = {
	.name = "sqlite",
	.get = sql_get,
	.put = sql_put,
	.del = sql_del,
	.scan = sql_scan,
	.close = sql_close,
};

/* Opens and prepares the database. Returns SQLITE_OK, SQLITE_NOTADB /
 * SQLITE_CORRUPT for a damaged file, or another code; msg says why. */
static int
try_open(struct sql_cache *s, char *msg, size_t msgsz)
{
	int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_stmt *v = NULL;
	rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &v, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(v);
	int version = rc == SQLITE_ROW ? sqlite3_column_int(v, 0) : -1;
	sqlite3_finalize(v);
	if (rc != SQLITE_ROW)
		goto fail;
	if (version > SCHEMA_VERSION) {
		snprintf(msg, msgsz, "cache %s has schema version %d, newer than this program's %d;"
			 " use a newer mtasts or another cache file", s->path, version, SCHEMA_VERSION);
		return SQLITE_MISMATCH;
	}
	rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
			  NULL);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_exec(s->db, schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	/* Touch the table so a damaged page shows now, not at the first lookup. */
	rc = sqlite3_exec(s->db, "SELECT count(*) FROM policies", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	if ((rc = sqlite3_prepare_v2(s->db, "SELECT domain, id, fetched_at, max_age, mode, policy"
				     " FROM policies WHERE domain = ?1", -1, &s->get, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO policies (domain, id, fetched_at,"
				     " max_age, mode, policy) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1,
				     &s->put, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, "DELETE FROM policies WHERE domain = ?1", -1, &s->del,
				     NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(s->db, "SELECT domain, id, fetched_at, max_age, mode, policy"
				     " FROM policies ORDER BY domain", -1, &s->scan, NULL)) != SQLITE_OK)
		goto fail;
	return SQLITE_OK;
fail:
	snprintf(msg, msgsz, "cache %s: %s", s->path,
		 s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	return rc;
}

static void
close_handles(struct sql_cache *s)
{
	sqlite3_finalize(s->get);
	sqlite3_finalize(s->put);
	sqlite3_finalize(s->del);
	sqlite3_finalize(s->scan);
	s->get = s->put = s->del = s->scan = NULL;
	sqlite3_close(s->db);
	s->db = NULL;
}

int
sts_cache_sqlite_open(const char *path, const struct sts_logger *log, struct sts_cache **out,
		      char *err, size_t errsz)
{
	*out = NULL;
	struct sql_cache *s = calloc(1, sizeof *s);
	if (s == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (snprintf(s->path, sizeof s->path, "%s", path) >= (int)sizeof s->path) {
		snprintf(err, errsz, "cache path is too long");
		free(s);
		return -1;
	}
	s->base.ops = &sql_ops;
	if (log != NULL)
		s->base.log = *log;

	char msg[512];
	int rc = try_open(s, msg, sizeof msg);
	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
		close_handles(s);
		char aside[4200];
		snprintf(aside, sizeof aside, "%s.corrupt-%lld", path, (long long)time(NULL));
		if (rename(path, aside) != 0) {
			snprintf(err, errsz, "%s; moving it aside to %s failed: %s", msg, aside,
				 strerror(errno));
			free(s);
			return -1;
		}
		/* Stale WAL/SHM files belong to the damaged database. */
		char side[4200];
		snprintf(side, sizeof side, "%s-wal", path);
		remove(side);
		snprintf(side, sizeof side, "%s-shm", path);
		remove(side);
		sts_log(&s->base.log, STS_LOG_ERROR,
			"%s; moved it aside to %s and started an empty cache", msg, aside);
		rc = try_open(s, msg, sizeof msg);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "%s", msg);
		close_handles(s);
		free(s);
		return -1;
	}
	*out = &s->base;
	return 0;
}
