/* cmd_cache.c: `mta-sts cache`: list, show and purge entries of the SQLite
 * policy cache that `mta-sts query` and the daemon mta-stsd use.
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

#include "cli.h"

static void
cache_usage(FILE *fp)
{
	fprintf(fp,
		"usage: mta-sts cache list [--cache FILE] [--json]\n"
		"       mta-sts cache show DOMAIN [--cache FILE] [--json]\n"
		"       mta-sts cache purge DOMAIN|--all [--cache FILE] [--json]\n"
		"\n"
		"Lists, shows or deletes the policies held in an MTA-STS policy cache.\n"
		"\n"
		"  list           one line per domain: domain, mode, id, fetched at,\n"
		"                 expires at (UTC), expired yes/no\n"
		"  show DOMAIN    the entry of DOMAIN and its raw policy text\n"
		"  purge DOMAIN   delete the entry of DOMAIN; --all deletes every entry\n"
		"\n"
		"  --cache FILE   the cache (SQLite). Default: $XDG_CACHE_HOME/mtasts/cache.db,\n"
		"                 the one mta-sts query uses; the daemon's is\n"
		"                 --cache /var/lib/mta-stsd/cache.db\n"
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
};

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
}

static void
on_del(void *arg, int status)
{
	struct ctx *c = arg;
	c->found = status;
}

static void
on_show(void *arg, int status, const struct sts_cache_entry *e)
{
	struct ctx *c = arg;
	c->found = status;
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
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, all = false;
	const char *cache_opt = NULL;
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":C:jah", opts, NULL)) != -1) {
		switch (ch) {
		case 'C': cache_opt = optarg; break;
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

	char path[PATH_MAX];
	if (cache_opt == NULL && !cli_default_cache_path(path, sizeof path)) {
		fprintf(stderr, "mta-sts cache: no cache directory (set HOME or XDG_CACHE_HOME,"
			" or give --cache FILE)\n");
		return CLI_USAGE;
	}
	if (cache_opt != NULL)
		snprintf(path, sizeof path, "%s", cache_opt);
	if (!check_cache_file(path, op == PURGE))
		return CLI_USAGE;
	struct sts_cache *cache = NULL;
	struct sts_logger lg = { log_stderr, NULL, STS_LOG_WARNING };
	char err[600];
	if (sts_cache_sqlite_open(path, &lg, &cache, err, sizeof err) != 0) {
		fprintf(stderr, "mta-sts cache: %s\n", err);
		return CLI_USAGE;
	}

	struct ctx c = { .json = json, .now = (int64_t)time(NULL), .found = -1 };
	int rc = CLI_OK;
	switch (op) {
	case LIST:
		cache->ops->scan(cache, on_list, on_done, &c);
		if (c.status < 0) {
			fprintf(stderr, "mta-sts cache: %s: reading the cache failed\n", path);
			rc = CLI_USAGE;
		}
		break;
	case SHOW:
		cache->ops->get(cache, domain, on_show, &c);
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
		if (c.oom || c.status < 0) {
			fprintf(stderr, "mta-sts cache: %s: %s\n", path,
				c.oom ? "out of memory" : "reading the cache failed");
			rc = CLI_USAGE;
			break;
		}
		json_t *done = json_array();
		for (size_t i = 0; i < c.n; i++) {
			c.found = -1;
			cache->ops->del(cache, c.domains[i], on_del, &c);
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
	if (fflush(stdout) != 0 && rc == CLI_OK) {
		fprintf(stderr, "mta-sts cache: writing the output failed: %s\n", strerror(errno));
		rc = CLI_USAGE;
	}
	return rc;
}
