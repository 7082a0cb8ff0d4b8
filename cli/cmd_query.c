/* cmd_query.c: `mta-sts query`: what a sender would apply now for each
 * domain, through the same engine the daemon uses.
 * Exit 0 every domain has an enforce/testing policy in force, 1 some has no
 * policy (absent, invalid or none), 2 a temporary error with nothing cached,
 * 3 usage error. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <mtasts/engine.h>

#include "cli.h"

enum { Q_OK = 0, Q_NO_POLICY = 1, Q_TEMP = 2, Q_USAGE = 3 };

struct answer {
	const char *asked;
	bool done;
	enum sts_lookup_status status;
	char domain[STS_HOST_MAX + 1];
	char mode[16];
	json_t *mx;          /* owned */
	long long max_age;
	char id[STS_ID_MAX + 1];
	enum sts_lookup_source source;
	int64_t fetched_at, expires_at;
	char code[64];
	char message[600];
	const char *tlsrpt;
};

static void
query_usage(FILE *fp)
{
	fprintf(fp,
		"usage: mta-sts query [--json] [--resolver IP[:PORT],...] [--ca-file FILE]\n"
		"                     [--cache FILE|none] [--timeout SECONDS] [-v] DOMAIN...\n"
		"\n"
		"Shows the MTA-STS policy a sending MTA would apply now for each DOMAIN:\n"
		"mode, mx patterns, max_age, id, when it was fetched and when it expires,\n"
		"and whether it came from the network or the cache; or why there is none.\n"
		"\n"
		"  --json         one JSON object per domain (JSON Lines), see mta-sts(1)\n"
		"  --resolver     DNS servers to ask instead of /etc/resolv.conf\n"
		"  --ca-file      trust anchors for the HTTPS fetch instead of the system's\n"
		"  --cache        policy cache (SQLite) to read and update; 'none' for no\n"
		"                 cache. Default: $XDG_CACHE_HOME/mtasts/cache.db\n"
		"  --timeout      seconds allowed for each lookup (default 15)\n"
		"  -v, --verbose  log what the engine does on standard error\n"
		"\n"
		"Exit status: 0 every domain has an enforce or testing policy in force,\n"
		"1 some domain has no policy (none, absent, invalid), 2 temporary error\n"
		"with nothing cached, 3 usage error.\n");
}

static void
on_lookup(void *arg, const struct sts_lookup_result *r)
{
	struct answer *a = arg;
	a->done = true;
	a->status = r->status;
	snprintf(a->domain, sizeof a->domain, "%s", r->domain);
	snprintf(a->id, sizeof a->id, "%s", r->id);
	a->source = r->source;
	a->fetched_at = r->fetched_at;
	a->expires_at = r->expires_at;
	if (r->policy != NULL) {
		snprintf(a->mode, sizeof a->mode, "%s", sts_mode_name(r->policy->mode));
		a->max_age = r->policy->max_age;
		a->mx = json_array();
		for (size_t i = 0; i < r->policy->n_mx; i++)
			json_array_append_new(a->mx, json_string(r->policy->mx[i]));
	}
	if (r->error_code != NULL) {
		snprintf(a->code, sizeof a->code, "%s", r->error_code);
		snprintf(a->message, sizeof a->message, "%s",
			 r->error_message != NULL ? r->error_message : "");
		a->tlsrpt = r->tlsrpt_type;
	}
}

static void
iso8601(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
print_json(const struct answer *a)
{
	bool has = a->status == STS_LOOKUP_POLICY || a->status == STS_LOOKUP_NONE;
	char f[32], x[32];
	iso8601(a->fetched_at, f, sizeof f);
	iso8601(a->expires_at, x, sizeof x);
	json_t *o = json_object();
	json_object_set_new(o, "domain", json_string(a->domain));
	json_object_set_new(o, "status", json_string(sts_lookup_status_name(a->status)));
	json_object_set_new(o, "mode", has ? json_string(a->mode) : json_null());
	json_object_set_new(o, "mx", has && a->mx ? json_incref(a->mx) : json_array());
	json_object_set_new(o, "max_age", has ? json_integer(a->max_age) : json_null());
	json_object_set_new(o, "id", has ? json_string(a->id) : json_null());
	json_object_set_new(o, "source", has ? json_string(a->source == STS_SOURCE_FETCH ?
							     "fetch" : "cache") : json_null());
	json_object_set_new(o, "fetched_at", has ? json_string(f) : json_null());
	json_object_set_new(o, "expires_at", has ? json_string(x) : json_null());
	json_object_set_new(o, "error", a->code[0] == '\0' ? json_null() :
		json_pack("{s:s, s:s, s:o}", "code", a->code, "message", a->message,
			  "tlsrpt_result_type", a->tlsrpt ? json_string(a->tlsrpt) : json_null()));
	char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (text != NULL)
		puts(text);
	free(text);
	json_decref(o);
}

static void
print_text(const struct answer *a)
{
	if (a->status == STS_LOOKUP_POLICY || a->status == STS_LOOKUP_NONE) {
		char f[32], x[32];
		iso8601(a->fetched_at, f, sizeof f);
		iso8601(a->expires_at, x, sizeof x);
		printf("%s: %s%s (id %s, %s)\n", a->domain, a->mode,
		       a->status == STS_LOOKUP_NONE ? ": no active policy" : "", a->id,
		       a->source == STS_SOURCE_FETCH ? "fetched from the network" : "from the cache");
		if (json_array_size(a->mx) > 0) {
			printf("  mx:         ");
			for (size_t i = 0; i < json_array_size(a->mx); i++)
				printf("%s%s", i ? ", " : "", json_string_value(json_array_get(a->mx, i)));
			printf("\n");
		}
		printf("  max_age:    %lld (%.1f days)\n", a->max_age, (double)a->max_age / 86400.0);
		printf("  fetched at: %s\n  expires at: %s\n", f, x);
		if (a->code[0] != '\0')
			printf("  warning:    not refreshed: %s [%s]\n", a->message, a->code);
		return;
	}
	printf("%s: %s: %s [%s]\n", a->domain[0] ? a->domain : a->asked,
	       a->status == STS_LOOKUP_TEMPFAIL ? "temporary error, no policy cached" : "no policy",
	       a->message[0] ? a->message : "no MTA-STS policy", a->code);
}

static bool verbose;

static void
log_stderr(void *ctx, enum sts_log_level level, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "mta-sts query: %s: %s\n", sts_log_level_name(level), msg);
}

int
cmd_query(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "resolver", required_argument, NULL, 'r' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "cache", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	const char *resolver = NULL, *ca_file = NULL, *cache_opt = NULL;
	unsigned timeout = 15;
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":jr:c:C:t:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': json = true; break;
		case 'r': resolver = optarg; break;
		case 'c': ca_file = optarg; break;
		case 'C': cache_opt = optarg; break;
		case 't': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v == 0 || v > 3600 || optarg[0] == '-') {
				fprintf(stderr, "mta-sts query: --timeout '%s' must be whole seconds"
					" from 1 to 3600\n", optarg);
				return Q_USAGE;
			}
			timeout = (unsigned)v;
			break;
		}
		case 'v': verbose = true; break;
		case 'h': query_usage(stdout); return Q_OK;
		case ':':
			fprintf(stderr, "mta-sts query: option '%s' needs a value\n", argv[optind - 1]);
			return Q_USAGE;
		default:
			fprintf(stderr, "mta-sts query: unknown option '%s'\n", argv[optind - 1]);
			query_usage(stderr);
			return Q_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "mta-sts query: give at least one DOMAIN\n");
		query_usage(stderr);
		return Q_USAGE;
	}
	if (ca_file != NULL && access(ca_file, R_OK) != 0) {
		fprintf(stderr, "mta-sts query: --ca-file %s: %s\n", ca_file, strerror(errno));
		return Q_USAGE;
	}

	int rc = Q_USAGE;
	uv_loop_t loop;
	struct sts_dns *dns = NULL;
	struct sts_fetcher *fetcher = NULL;
	struct sts_cache *cache = NULL;
	struct sts_engine *engine = NULL;
	size_t n = (size_t)(argc - optind);
	struct answer *answers = calloc(n, sizeof *answers);
	char err[512];
	struct sts_logger lg = { verbose ? log_stderr : NULL, NULL, STS_LOG_DEBUG };
	if (answers == NULL || uv_loop_init(&loop) != 0) {
		fprintf(stderr, "mta-sts query: cannot start the event loop\n");
		free(answers);
		return Q_USAGE;
	}

	struct sts_dns_opts dopts = {
		.servers = resolver,
		.try_timeout_ms = timeout * 1000 / 4 < 1500 ? timeout * 1000 / 4 : 1500,
		.tries = 2,
	};
	if (sts_dns_new(&loop, &dopts, &dns, err, sizeof err) != 0) {
		fprintf(stderr, "mta-sts query: --resolver: %s\n", err);
		goto out;
	}
	struct sts_fetch_opts fopts = { .ca_file = ca_file, .timeout_ms = timeout * 1000 };
	if (sts_fetcher_new(&loop, &fopts, &fetcher, err, sizeof err) != 0) {
		fprintf(stderr, "mta-sts query: %s\n", err);
		goto out;
	}
	char cache_path[PATH_MAX];
	if (cache_opt != NULL && strcmp(cache_opt, "none") == 0) {
		sts_cache_memory_open(1024, &lg, &cache);
	} else {
		if (cache_opt == NULL && !cli_default_cache_path(cache_path, sizeof cache_path)) {
			fprintf(stderr, "mta-sts query: no cache directory (set HOME or"
				" XDG_CACHE_HOME, or give --cache FILE|none)\n");
			goto out;
		}
		const char *path = cache_opt != NULL ? cache_opt : cache_path;
		struct sts_logger always = { log_stderr, NULL, STS_LOG_WARNING };
		if (sts_cache_sqlite_open(path, &always, &cache, err, sizeof err) != 0) {
			fprintf(stderr, "mta-sts query: %s\n", err);
			goto out;
		}
	}
	if (cache == NULL) {
		fprintf(stderr, "mta-sts query: out of memory\n");
		goto out;
	}
	struct sts_engine_opts eopts = { .dns = dns, .fetcher = fetcher, .cache = cache, .log = lg };
	if (sts_engine_new(&eopts, &engine) != STS_OK) {
		fprintf(stderr, "mta-sts query: cannot start the engine\n");
		goto out;
	}

	for (size_t i = 0; i < n; i++) {
		answers[i].asked = argv[optind + (int)i];
		sts_engine_lookup(engine, answers[i].asked, on_lookup, &answers[i]);
	}
	uv_run(&loop, UV_RUN_DEFAULT);

	rc = Q_OK;
	for (size_t i = 0; i < n; i++) {
		struct answer *a = &answers[i];
		if (!a->done) {
			a->status = STS_LOOKUP_TEMPFAIL;
			snprintf(a->code, sizeof a->code, "internal");
			snprintf(a->message, sizeof a->message, "lookup did not complete");
		}
		if (json)
			print_json(a);
		else
			print_text(a);
		int r = a->status == STS_LOOKUP_POLICY ? Q_OK
			: a->status == STS_LOOKUP_TEMPFAIL ? Q_TEMP : Q_NO_POLICY;
		if (r > rc)
			rc = r;
	}
out:
	sts_dns_free(&dns);
	sts_fetcher_free(&fetcher);
	sts_engine_free(&engine);
	sts_cache_close(&cache);
	uv_run(&loop, UV_RUN_DEFAULT);   /* let closed handles finish */
	uv_loop_close(&loop);
	for (size_t i = 0; i < n; i++)
		json_decref(answers[i].mx);
	free(answers);
	return rc;
}
