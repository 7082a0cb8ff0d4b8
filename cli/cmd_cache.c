/* cmd_cache.c: `mta-sts cache`: list, show and purge entries of the policy
 * cache that `mta-sts query` and the daemon mta-stsd use: SQLite, Redis or
 * PostgreSQL, given directly or through the daemon's configuration file.
 * Exit 0 done, 1 no such entry (show, purge DOMAIN), 2 usage or I/O error. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mtasts/cache.h>
#include <mtasts/status.h>

#include "cli.h"
#include "config.h"

#define NET_TIMEOUT_MS 5000   /* a network cache must answer within this */

static void
cache_usage(FILE *fp)
{
	fprintf(fp,
		"usage: mta-sts cache list [CACHE] [--json]\n"
		"       mta-sts cache show DOMAIN [CACHE] [--json]\n"
		"       mta-sts cache purge DOMAIN|--all [CACHE] [--json]\n"
		"\n"
		"Lists, shows or deletes the policies held in an MTA-STS policy cache.\n"
		"\n"
		"  list           one line per domain: domain, mode, id, fetched at,\n"
		"                 expires at (UTC), expired yes/no\n"
		"  show DOMAIN    the entry of DOMAIN and its raw policy text\n"
		"  purge DOMAIN   delete the entry of DOMAIN; --all deletes every entry\n"
		"\n"
		"CACHE is one of:\n"
		"  --cache FILE   an SQLite cache. Default: $XDG_CACHE_HOME/mtasts/cache.db,\n"
		"                 the one mta-sts query uses; the daemon's is\n"
		"                 --cache /var/lib/mta-stsd/cache.db\n"
		"  --config FILE  the cache the daemon's configuration names\n"
		"                 (e.g. /etc/mta-sts-daemon.yml: sqlite, redis or postgres)\n"
		"  --redis URL    redis://[[user]:password@]host[:port][/db] or unix:///path\n"
		"  --postgres DSN a libpq connection string or postgresql:// URI\n"
		"  --json         JSON output (list: one object per line)\n"
		"\n"
		"Exit status: 0 done, 1 no entry for DOMAIN (show, purge), 2 usage or I/O\n"
		"error.\n");
}

/* Refuses what sts_cache_sqlite_open would replace with a fresh database
 * (a missing file, or one that is not SQLite is moved aside): this command
 * inspects a cache and must never create or discard one. */
static bool
check_cache_file(const char *path, bool write)
{
	int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "mta-sts cache: %s: %s\n", path, strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "mta-sts cache: %s: not a regular file\n", path);
		close(fd);
		return false;
	}
	char head[16];
	ssize_t n = st.st_size > 0 ? read(fd, head, sizeof head) : 0;
	close(fd);
	if (st.st_size > 0 && (n != (ssize_t)sizeof head ||
			       memcmp(head, "SQLite format 3", 16) != 0)) {
		fprintf(stderr, "mta-sts cache: %s: %s\n", path,
			n < 0 ? strerror(errno) : "not an SQLite database; give the policy cache file");
		return false;
	}
	return true;
}

static void
iso8601(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "%lld", (long long)t);
}

static json_t *
entry_json(const struct sts_cache_entry *e, int64_t now, bool with_policy)
{
	char f[40], x[40];
	int64_t exp = e->fetched_at + (int64_t)e->max_age;
	iso8601(e->fetched_at, f, sizeof f);
	iso8601(exp, x, sizeof x);
	json_t *o = json_object();
	json_object_set_new(o, "domain", json_string(e->domain));
	json_object_set_new(o, "mode", json_string(e->mode));
	json_object_set_new(o, "id", json_string(e->id));
	json_object_set_new(o, "max_age", json_integer((json_int_t)e->max_age));
	json_object_set_new(o, "fetched_at", json_string(f));
	json_object_set_new(o, "expires_at", json_string(x));
	json_object_set_new(o, "expired", json_boolean(exp <= now));
	if (with_policy)
		json_object_set_new(o, "policy", json_stringn_nocheck(e->policy, e->policy_len));
	return o;
}

static bool
put_json(json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (text == NULL)
		return false;
	puts(text);
	free(text);
	return true;
}

struct ctx {
	bool json;
	int64_t now;
	int status;                 /* from the done callback */
	int found;                  /* get / del result */
	char **domains;             /* purge --all: collected names */
	size_t n, cap;
	bool oom;
	bool done;                  /* the operation called back */
};

/* A network cache answers on the loop: run it until the callback came, at
 * most NET_TIMEOUT_MS (the backends time out their operations themselves;
 * this is a second guard). SQLite answers before the call returns. */
static void
run_until_done(uv_loop_t *loop, struct ctx *c)
{
	uint64_t end = uv_now(loop) + NET_TIMEOUT_MS + 1000;
	while (!c->done && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
}

static void
on_probe(void *arg, int status, const struct sts_cache_entry *e)
{
	(void)e;
	struct ctx *c = arg;
	c->status = status;
	c->done = true;
}

static void
tick(uv_timer_t *t)
{
	(void)t;
}

static void
free_handle(uv_handle_t *h)
{
	free(h);
}

/* A network backend connects in the background and refuses operations
 * until it is connected: probe until it answers, at most NET_TIMEOUT_MS. */
static bool
wait_connected(uv_loop_t *loop, struct sts_cache *cache)
{
	uv_timer_t *t = malloc(sizeof *t);
	if (t == NULL)
		return false;
	uv_timer_init(loop, t);
	uint64_t end = uv_now(loop) + NET_TIMEOUT_MS;
	bool up = false;
	for (;;) {
		struct ctx probe = { .status = -1 };
		cache->ops->get(cache, "connection-probe.invalid", on_probe, &probe);
		run_until_done(loop, &probe);
		if (probe.done && probe.status >= 0) {
			up = true;
			break;
		}
		if (uv_now(loop) >= end)
			break;
		uv_timer_start(t, tick, 100, 0);
		uv_run(loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)t, free_handle);
	return up;
}

enum source { SRC_DEFAULT, SRC_SQLITE, SRC_REDIS, SRC_POSTGRES, SRC_CONFIG };

/* Reads the daemon's configuration and picks its cache. Returns false with
 * a message when it names none we can open. */
static bool
source_from_config(const char *file, enum source *src, char *target, size_t n)
{
	struct stsd_config cfg;
	struct sts_diags *d = malloc(sizeof *d);
	if (d == NULL)
		return false;
	sts_diags_init(d);
	int rc = stsd_config_load(file, &cfg, d);
	if (rc == STS_ENOTFOUND) {
		fprintf(stderr, "mta-sts cache: %s: no such file\n", file);
	} else if (rc != STS_OK) {
		const struct sts_diag *g = sts_diags_first_error(d);
		fprintf(stderr, "mta-sts cache: %s:%u:%u: %s (check it with mta-stsd"
			" --check-config -c %s)\n", file, g ? g->line : 0, g ? g->column : 0,
			g ? g->message : "cannot read the configuration", file);
	}
	free(d);
	bool ok = false;
	if (rc == STS_OK) {
		switch (cfg.cache.type) {
		case STSD_CACHE_SQLITE:
			*src = SRC_SQLITE;
			if (cfg.cache.filename != NULL)
				snprintf(target, n, "%s", cfg.cache.filename);
			else
				snprintf(target, n, "%s/%s", cfg.state_dir, STSD_SQLITE_FILE);
			ok = true;
			break;
		case STSD_CACHE_REDIS:
			*src = SRC_REDIS;
			snprintf(target, n, "%s", cfg.cache.url ? cfg.cache.url : "");
			ok = cfg.cache.url != NULL;
			if (!ok)
				fprintf(stderr, "mta-sts cache: %s: cache type redis without"
					" options.url\n", file);
			break;
		case STSD_CACHE_POSTGRES:
			*src = SRC_POSTGRES;
			snprintf(target, n, "%s", cfg.cache.dsn ? cfg.cache.dsn : "");
			ok = true;
			break;
		default:
			fprintf(stderr, "mta-sts cache: %s: cache type %s lives in the daemon's"
				" memory and cannot be inspected\n", file,
				stsd_cache_type_name(cfg.cache.type));
			break;
		}
	}
	stsd_config_free(&cfg);
	return ok;
}

static int
on_list(void *arg, const struct sts_cache_entry *e)
{
	struct ctx *c = arg;
	if (c->json)
		return !put_json(entry_json(e, c->now, false));
	char f[40], x[40];
	int64_t exp = e->fetched_at + (int64_t)e->max_age;
	iso8601(e->fetched_at, f, sizeof f);
	iso8601(exp, x, sizeof x);
	printf("%s %s %s %s %s %s\n", e->domain, e->mode, e->id, f, x, exp <= c->now ? "yes" : "no");
	return 0;
}

static int
on_collect(void *arg, const struct sts_cache_entry *e)
{
	struct ctx *c = arg;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		char **d = realloc(c->domains, cap * sizeof *d);
		if (d == NULL) {
			c->oom = true;
			return 1;
		}
		c->domains = d;
		c->cap = cap;
	}
	if ((c->domains[c->n] = strdup(e->domain)) == NULL) {
		c->oom = true;
		return 1;
	}
	c->n++;
	return 0;
}

static void
on_done(void *arg, int status)
{
	((struct ctx *)arg)->status = status;
	((struct ctx *)arg)->done = true;
}

static void
on_del(void *arg, int status)
{
	struct ctx *c = arg;
	c->found = status;
	c->done = true;
}

static void
on_show(void *arg, int status, const struct sts_cache_entry *e)
{
	struct ctx *c = arg;
	c->found = status;
	c->done = true;
	if (status != 1)
		return;
	if (c->json) {
		put_json(entry_json(e, c->now, true));
		return;
	}
	char f[40], x[40];
	int64_t exp = e->fetched_at + (int64_t)e->max_age;
	iso8601(e->fetched_at, f, sizeof f);
	iso8601(exp, x, sizeof x);
	printf("domain:     %s\nmode:       %s\nid:         %s\nmax_age:    %lu (%.1f days)\n"
	       "fetched at: %s\nexpires at: %s\nexpired:    %s\npolicy:\n",
	       e->domain, e->mode, e->id, (unsigned long)e->max_age, (double)e->max_age / 86400.0,
	       f, x, exp <= c->now ? "yes" : "no");
	fwrite(e->policy, 1, e->policy_len, stdout);
	if (e->policy_len > 0 && e->policy[e->policy_len - 1] != '\n')
		putchar('\n');
}

static void
log_stderr(void *ctx, enum sts_log_level level, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "mta-sts cache: %s: %s\n", sts_log_level_name(level), msg);
}

/* Lower case, no trailing dot: the form the cache keys on. */
static bool
norm_domain(const char *arg, char out[STS_HOST_MAX + 1])
{
	size_t len = strlen(arg);
	if (len > 0 && arg[len - 1] == '.')
		len--;
	if (len == 0 || len > STS_HOST_MAX) {
		fprintf(stderr, "mta-sts cache: '%s' is not a domain name\n", arg);
		return false;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)arg[i]);
	out[len] = '\0';
	return true;
}

int
cmd_cache(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cache", required_argument, NULL, 'C' },
		{ "config", required_argument, NULL, 'F' },
		{ "redis", required_argument, NULL, 'R' },
		{ "postgres", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, all = false;
	const char *cache_opt = NULL;
	enum source src = SRC_DEFAULT;
	int n_src = 0;
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":C:F:R:P:jah", opts, NULL)) != -1) {
		switch (ch) {
		case 'C': cache_opt = optarg; src = SRC_SQLITE; n_src++; break;
		case 'F': cache_opt = optarg; src = SRC_CONFIG; n_src++; break;
		case 'R': cache_opt = optarg; src = SRC_REDIS; n_src++; break;
		case 'P': cache_opt = optarg; src = SRC_POSTGRES; n_src++; break;
		case 'j': json = true; break;
		case 'a': all = true; break;
		case 'h': cache_usage(stdout); return CLI_OK;
		default:
			cli_opt_error("cache", opts, ch, argv);
			cache_usage(stderr);
			return CLI_USAGE;
		}
	}
	int nargs = argc - optind;
	const char *sub = nargs > 0 ? argv[optind] : NULL;
	enum { LIST, SHOW, PURGE } op;
	if (sub == NULL) {
		fprintf(stderr, "mta-sts cache: give list, show DOMAIN or purge DOMAIN|--all\n");
		cache_usage(stderr);
		return CLI_USAGE;
	} else if (strcmp(sub, "list") == 0) {
		op = LIST;
	} else if (strcmp(sub, "show") == 0) {
		op = SHOW;
	} else if (strcmp(sub, "purge") == 0) {
		op = PURGE;
	} else {
		fprintf(stderr, "mta-sts cache: unknown action '%s'\n", sub);
		cache_usage(stderr);
		return CLI_USAGE;
	}
	int want = op == LIST || (op == PURGE && all) ? 1 : 2;
	if (all && op != PURGE) {
		fprintf(stderr, "mta-sts cache: --all goes with purge only\n");
		return CLI_USAGE;
	}
	if (nargs != want) {
		fprintf(stderr, "mta-sts cache %s: %s\n", sub,
			op == LIST ? "takes no DOMAIN" :
			op == PURGE && all ? "give a DOMAIN or --all, not both" :
			nargs < want ? (op == PURGE ? "give a DOMAIN or --all" : "give a DOMAIN") :
			"give one DOMAIN");
		return CLI_USAGE;
	}
	char domain[STS_HOST_MAX + 1] = "";
	if (want == 2 && !norm_domain(argv[optind + 1], domain))
		return CLI_USAGE;
	if (n_src > 1) {
		fprintf(stderr, "mta-sts cache: give one of --cache, --config, --redis,"
			" --postgres\n");
		return CLI_USAGE;
	}

	char path[PATH_MAX];
	if (src == SRC_DEFAULT && !cli_default_cache_path(path, sizeof path)) {
		fprintf(stderr, "mta-sts cache: no cache directory (set HOME or XDG_CACHE_HOME,"
			" or give --cache FILE)\n");
		return CLI_USAGE;
	}
	if (src == SRC_DEFAULT)
		src = SRC_SQLITE;
	else
		snprintf(path, sizeof path, "%s", cache_opt);
	if (src == SRC_CONFIG && !source_from_config(cache_opt, &src, path, sizeof path))
		return CLI_USAGE;
	struct sts_cache *cache = NULL;
	struct sts_logger lg = { log_stderr, NULL, STS_LOG_ERROR };
	char err[600];
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0) {
		fprintf(stderr, "mta-sts cache: cannot start an event loop\n");
		return CLI_USAGE;
	}
	int orc = -1;
	switch (src) {
	case SRC_REDIS:
		orc = sts_cache_redis_open(&loop, path, NET_TIMEOUT_MS, &lg, &cache, err, sizeof err);
		break;
	case SRC_POSTGRES:
		orc = sts_cache_postgres_open(&loop, path, NET_TIMEOUT_MS, &lg, &cache, err,
					      sizeof err);
		break;
	default:
		if (!check_cache_file(path, op == PURGE)) {
			uv_loop_close(&loop);
			return CLI_USAGE;
		}
		orc = sts_cache_sqlite_open(path, &lg, &cache, err, sizeof err);
		break;
	}
	if (orc != 0) {
		fprintf(stderr, "mta-sts cache: %s\n", err);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		return CLI_USAGE;
	}
	/* Messages name the cache; a URL or DSN may hold a password. */
	if (src == SRC_REDIS || src == SRC_POSTGRES) {
		snprintf(path, sizeof path, "%s", src == SRC_REDIS ? "Redis" : "PostgreSQL");
		if (!wait_connected(&loop, cache)) {
			fprintf(stderr, "mta-sts cache: %s does not answer within %u s: check the"
				" address and that the server runs\n", path, NET_TIMEOUT_MS / 1000);
			sts_cache_close(&cache);
			uv_run(&loop, UV_RUN_DEFAULT);
			uv_loop_close(&loop);
			return CLI_USAGE;
		}
	}

	struct ctx c = { .json = json, .now = (int64_t)time(NULL), .found = -1 };
	int rc = CLI_OK;
	switch (op) {
	case LIST:
		cache->ops->scan(cache, on_list, on_done, &c);
		run_until_done(&loop, &c);
		if (!c.done || c.status < 0) {
			fprintf(stderr, "mta-sts cache: %s: reading the cache failed\n", path);
			rc = CLI_USAGE;
		}
		break;
	case SHOW:
		cache->ops->get(cache, domain, on_show, &c);
		run_until_done(&loop, &c);
		if (c.found < 0) {
			fprintf(stderr, "mta-sts cache: %s: reading %s failed\n", path, domain);
			rc = CLI_USAGE;
		} else if (c.found == 0) {
			fprintf(stderr, "mta-sts cache: %s: no entry for %s\n", path, domain);
			rc = CLI_INVALID;
		}
		break;
	case PURGE:
		if (!all) {
			cache->ops->del(cache, domain, on_del, &c);
			run_until_done(&loop, &c);
			if (c.found < 0) {
				fprintf(stderr, "mta-sts cache: %s: deleting %s failed\n", path, domain);
				rc = CLI_USAGE;
			} else if (c.found == 0) {
				fprintf(stderr, "mta-sts cache: %s: no entry for %s\n", path, domain);
				rc = CLI_INVALID;
			} else if (json) {
				put_json(json_pack("{s:[s], s:I}", "purged", domain, "count", (json_int_t)1));
			} else {
				printf("purged %s\n", domain);
			}
			break;
		}
		cache->ops->scan(cache, on_collect, on_done, &c);
		run_until_done(&loop, &c);
		if (c.oom || !c.done || c.status < 0) {
			fprintf(stderr, "mta-sts cache: %s: %s\n", path,
				c.oom ? "out of memory" : "reading the cache failed");
			rc = CLI_USAGE;
			break;
		}
		json_t *done = json_array();
		for (size_t i = 0; i < c.n; i++) {
			c.found = -1;
			c.done = false;
			cache->ops->del(cache, c.domains[i], on_del, &c);
			run_until_done(&loop, &c);
			if (c.found < 0) {
				fprintf(stderr, "mta-sts cache: %s: deleting %s failed\n", path,
					c.domains[i]);
				rc = CLI_USAGE;
			} else if (c.found == 1) {
				json_array_append_new(done, json_string(c.domains[i]));
			}
		}
		if (json)
			put_json(json_pack("{s:O, s:I}", "purged", done,
					   "count", (json_int_t)json_array_size(done)));
		else
			printf("purged %zu entries\n", json_array_size(done));
		json_decref(done);
		break;
	}
	for (size_t i = 0; i < c.n; i++)
		free(c.domains[i]);
	free(c.domains);
	sts_cache_close(&cache);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (fflush(stdout) != 0 && rc == CLI_OK) {
		fprintf(stderr, "mta-sts cache: writing the output failed: %s\n", strerror(errno));
		rc = CLI_USAGE;
	}
	return rc;
}
