/* bench/discover.c: cold MTA-STS discovery throughput through the engine
 * (real DNS and HTTPS against the test world), at a fixed concurrency.
 *
 *   bench-discover --resolver IP:PORT --ca-file FILE --domains FILE
 *                  [--concurrency N] [--passes N] [--json]
 *
 * Pass 1 starts cold (empty in-memory cache): TXT, A/AAAA, HTTPS, parse.
 * Later passes hit the cache (TXT re-check only, no fetch). Prints
 * domains/s per pass, outcome counts and peak RSS. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include <mtasts/engine.h>

struct bench {
	uv_loop_t *loop;
	struct sts_engine *engine;
	char **domains;
	size_t n, next, done, inflight, concurrency;
	unsigned long ok, none, nopolicy, temp;
	char first_error[256];
};

static void start_more(struct bench *b);

static void
on_done(void *arg, const struct sts_lookup_result *r)
{
	struct bench *b = arg;
	b->done++;
	b->inflight--;
	switch (r->status) {
	case STS_LOOKUP_POLICY: b->ok++; break;
	case STS_LOOKUP_NONE: b->none++; break;
	case STS_LOOKUP_NO_POLICY: b->nopolicy++; break;
	case STS_LOOKUP_TEMPFAIL: b->temp++; break;
	}
	if (r->status >= STS_LOOKUP_NO_POLICY && b->first_error[0] == '\0')
		snprintf(b->first_error, sizeof b->first_error, "%s: %s: %s", r->domain,
			 r->error_code ? r->error_code : "?", r->error_message ? r->error_message : "");
	start_more(b);
}

static void
start_more(struct bench *b)
{
	while (b->inflight < b->concurrency && b->next < b->n) {
		b->inflight++;
		sts_engine_lookup(b->engine, b->domains[b->next++], on_done, b);
	}
}

static char **
read_domains(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	size_t cap = 1024;
	char **v = malloc(cap * sizeof *v);
	char line[512];
	*n = 0;
	while (fgets(line, sizeof line, fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (*n == cap)
			v = realloc(v, (cap *= 2) * sizeof *v);
		v[(*n)++] = strdup(line);
	}
	fclose(fp);
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resolver", required_argument, NULL, 'r' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "domains", required_argument, NULL, 'd' },
		{ "concurrency", required_argument, NULL, 'n' },
		{ "passes", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *resolver = NULL, *ca = NULL, *list = NULL;
	size_t conc = 50, passes = 2;
	int json = 0, ch;
	while ((ch = getopt_long(argc, argv, "r:c:d:n:p:j", opts, NULL)) != -1) {
		switch (ch) {
		case 'r': resolver = optarg; break;
		case 'c': ca = optarg; break;
		case 'd': list = optarg; break;
		case 'n': conc = strtoul(optarg, NULL, 10); break;
		case 'p': passes = strtoul(optarg, NULL, 10); break;
		case 'j': json = 1; break;
		default:
			fprintf(stderr, "usage: bench-discover --resolver IP:PORT --ca-file FILE"
				" --domains FILE [--concurrency N] [--passes N] [--json]\n");
			return 2;
		}
	}
	if (list == NULL || conc == 0) {
		fprintf(stderr, "bench-discover: --domains FILE and --concurrency >= 1 required\n");
		return 2;
	}
	struct bench b = { .concurrency = conc };
	b.domains = read_domains(list, &b.n);
	uv_loop_t loop;
	uv_loop_init(&loop);
	b.loop = &loop;
	char err[512];
	struct sts_dns *dns;
	struct sts_dns_opts dopts = { .servers = resolver, .try_timeout_ms = 2000, .tries = 3 };
	if (sts_dns_new(&loop, &dopts, &dns, err, sizeof err) != 0) {
		fprintf(stderr, "bench-discover: %s\n", err);
		return 2;
	}
	struct sts_fetcher *fetcher;
	struct sts_fetch_opts fopts = { .ca_file = ca, .timeout_ms = 20000 };
	if (sts_fetcher_new(&loop, &fopts, &fetcher, err, sizeof err) != 0) {
		fprintf(stderr, "bench-discover: %s\n", err);
		return 2;
	}
	struct sts_cache *cache;
	sts_cache_memory_open(b.n + 16, NULL, &cache);
	struct sts_engine_opts eo = { .dns = dns, .fetcher = fetcher, .cache = cache };
	sts_engine_new(&eo, &b.engine);

	if (json)
		printf("[");
	for (size_t p = 0; p < passes; p++) {
		b.next = b.done = b.inflight = 0;
		b.ok = b.none = b.nopolicy = b.temp = 0;
		b.first_error[0] = '\0';
		uint64_t t0 = uv_hrtime();
		start_more(&b);
		uv_run(&loop, UV_RUN_DEFAULT);
		double secs = (double)(uv_hrtime() - t0) / 1e9;
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		struct sts_engine_stats st;
		sts_engine_stats(b.engine, &st);
		if (json)
			printf("%s{\"pass\":%zu,\"kind\":\"%s\",\"concurrency\":%zu,\"domains\":%zu,"
			       "\"seconds\":%.3f,\"per_second\":%.1f,\"policy\":%lu,\"none\":%lu,"
			       "\"no_policy\":%lu,\"tempfail\":%lu,\"peak_rss_kb\":%ld,"
			       "\"fetches\":%lu,\"txt_queries\":%lu}", p ? "," : "", p + 1,
			       p == 0 ? "cold" : "cached", conc, b.n, secs, (double)b.n / secs, b.ok,
			       b.none, b.nopolicy, b.temp, ru.ru_maxrss, st.fetches, st.txt_queries);
		else
			printf("pass %zu (%s): %zu domains at concurrency %zu in %.2f s = %.0f domains/s;"
			       " policy %lu, none %lu, no-policy %lu, tempfail %lu; peak RSS %ld KiB;"
			       " fetches so far %lu\n", p + 1, p == 0 ? "cold" : "cached", b.n, conc,
			       secs, (double)b.n / secs, b.ok, b.none, b.nopolicy, b.temp, ru.ru_maxrss,
			       st.fetches);
		if (b.first_error[0] != '\0')
			fprintf(stderr, "first failure: %s\n", b.first_error);
	}
	if (json)
		printf("]\n");
	sts_dns_free(&dns);
	sts_fetcher_free(&fetcher);
	sts_engine_free(&b.engine);
	sts_cache_close(&cache);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	for (size_t i = 0; i < b.n; i++)
		free(b.domains[i]);
	free(b.domains);
	return 0;
}
