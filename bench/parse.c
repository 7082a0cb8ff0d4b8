/* bench/parse.c: parser throughput on a generated, deterministic corpus.
 *
 *   bench-parse [--count N] [--rounds N] [--seed N] [--dump DIR] [--json]
 *
 * Generates N policy bodies and N _mta-sts TXT record values (default
 * 100000 each) from a seeded PRNG, so every run and every machine sees the
 * same bytes: valid and invalid, LF and CRLF, 1-6 mx lines, wildcards,
 * extensions and the mistakes seen in the real-world corpus (typos, blank
 * lines, comments, bad max_age, spaces in mx, BOM, wrong case). Then it times
 * sts_policy_parse and sts_txt_parse over the whole corpus, single-threaded,
 * for several rounds and reports the best and the median round.
 *
 * --dump DIR writes the corpus as DIR/policies.ns and DIR/txt.ns, each a
 * sequence of netstrings ("<len>:<bytes>,") in generation order, so that
 * another implementation (bench/peer_parse.py) parses exactly the same data. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <mtasts/mtasts.h>

/* ---- deterministic PRNG: splitmix64 (tiny, well distributed, portable) ---- */

static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); the modulo bias is irrelevant for corpus shaping. */
static unsigned
rng_below(unsigned n)
{
	return (unsigned)(rng_next() % n);
}

static int
rng_percent(unsigned p)
{
	return rng_below(100) < p;
}

/* ---- corpus: all items in one buffer, addressed by offset ---- */

struct corpus {
	struct sts_buf data;   /* all item bytes back to back */
	size_t *off;           /* n + 1 offsets: item i is [off[i], off[i+1]) */
	size_t n;
};

static void
die(const char *what)
{
	fprintf(stderr, "bench-parse: %s\n", what);
	exit(1);
}

static void
put(struct sts_buf *b, const char *s)
{
	if (sts_buf_puts(b, s) != STS_OK)
		die("out of memory");
}

static void
putf(struct sts_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(struct sts_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = sts_buf_vprintf(b, fmt, ap);
	va_end(ap);
	if (rc != STS_OK)
		die("out of memory");
}

static void
put_label(struct sts_buf *b, unsigned min, unsigned max)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned n = min + rng_below(max - min + 1);
	for (unsigned i = 0; i < n; i++) {
		/* letters first and last keep the label LDH-valid */
		unsigned range = (i == 0 || i + 1 == n) ? 26 : 36;
		if (sts_buf_putc(b, alnum[rng_below(range)]) != STS_OK)
			die("out of memory");
	}
}

static void
put_host(struct sts_buf *b)
{
	static const char *const tld[] = { "com", "net", "org", "de", "io", "example" };
	unsigned labels = 1 + rng_below(3);
	for (unsigned i = 0; i < labels; i++) {
		put_label(b, 2, 12);
		put(b, ".");
	}
	put(b, tld[rng_below(sizeof tld / sizeof tld[0])]);
}

/* One policy body. About one in eight carries a mistake. */
static void
gen_policy(struct sts_buf *b)
{
	static const char *const modes[] = { "enforce", "testing", "none" };
	static const uint32_t ages[] = { 86400, 604800, 1209600, 2592000, 31557600, 300 };
	const char *eol = rng_percent(50) ? "\r\n" : "\n";
	unsigned err = rng_percent(12) ? 1 + rng_below(10) : 0;

	if (err == 1)
		put(b, "\xef\xbb\xbf");   /* BOM */
	if (err != 2)
		putf(b, "version: STSv1%s", eol);
	if (err == 3)
		putf(b, "mode: enforced%s", eol);
	else
		putf(b, "mode: %s%s", modes[rng_below(3)], eol);
	unsigned n_mx = 1 + rng_below(6);
	for (unsigned i = 0; i < n_mx; i++) {
		put(b, "mx: ");
		if (rng_percent(20))
			put(b, "*.");
		put_host(b);
		if (err == 4 && i == 0)
			put(b, " mx2.example.net");   /* two names on one line */
		if (rng_percent(5))
			put(b, " ");                  /* trailing WSP: allowed */
		put(b, eol);
	}
	if (err == 5)
		put(b, eol);                          /* blank line */
	if (err == 6)
		putf(b, "# comment%s", eol);
	if (err == 7)
		putf(b, "max_age: 1w%s", eol);
	else if (err == 8)
		putf(b, "max_age: %llu%s", 31557601ull + rng_below(1000000), eol);
	else if (err == 9)
		putf(b, "Max_Age: 86400%s", eol);
	else
		putf(b, "max_age: %u%s", (unsigned)ages[rng_below(6)], eol);
	if (rng_percent(10))
		putf(b, "x-note%u: generated policy %u%s", rng_below(3), rng_below(1000), eol);
	if (err == 10)
		put(b, "mx: mail.example.com:25");       /* port, no final line end */
	else if (rng_percent(10)) {   /* no final line end: allowed */
		b->len -= strlen(eol);
		b->data[b->len] = '\0';
	}
}

/* One TXT record value (the RR's strings already joined). */
static void
gen_txt(struct sts_buf *b)
{
	static const char *const seps[] = { "; ", ";", " ; ", ";\t" };
	unsigned err = rng_percent(12) ? 1 + rng_below(6) : 0;
	const char *sep = seps[rng_below(4)];

	if (err == 1)
		put(b, "V=STSv1");
	else if (err == 2)
		put(b, "v=STSv2");
	else
		put(b, "v=STSv1");
	put(b, sep);
	if (err == 3) {
		put(b, "id=2024-01-01");
	} else if (err != 4) {
		put(b, "id=");
		if (rng_percent(60))
			putf(b, "%04u%02u%02u%02u%02u%02u", 2016 + rng_below(10), 1 + rng_below(12),
			     1 + rng_below(28), rng_below(24), rng_below(60), rng_below(60));
		else
			put_label(b, 1, err == 5 ? 40 : 32);
	}
	if (rng_percent(10)) {
		put(b, sep);
		putf(b, "ext%u=value%u", rng_below(5), rng_below(100));
	}
	if (err == 6)
		put(b, " ");   /* trailing WSP without ';' */
	else if (rng_percent(50))
		put(b, ";");
}

static void
corpus_build(struct corpus *c, size_t n, void (*gen)(struct sts_buf *))
{
	sts_buf_init(&c->data, SIZE_MAX / 2);
	c->n = n;
	c->off = malloc((n + 1) * sizeof *c->off);
	if (c->off == NULL)
		die("out of memory");
	struct sts_buf one;
	sts_buf_init(&one, STS_POLICY_MAX);
	for (size_t i = 0; i < n; i++) {
		sts_buf_reset(&one);
		gen(&one);
		c->off[i] = c->data.len;
		if (sts_buf_append(&c->data, one.data, one.len) != STS_OK)
			die("out of memory");
	}
	c->off[n] = c->data.len;
	sts_buf_free(&one);
}

static void
corpus_free(struct corpus *c)
{
	sts_buf_free(&c->data);
	free(c->off);
}

static void
corpus_dump(const struct corpus *c, const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	if (fp == NULL) {
		fprintf(stderr, "bench-parse: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	for (size_t i = 0; i < c->n; i++) {
		size_t len = c->off[i + 1] - c->off[i];
		fprintf(fp, "%zu:", len);
		fwrite(c->data.data + c->off[i], 1, len, fp);
		fputc(',', fp);
	}
	if (fclose(fp) != 0)
		die("write failed");
}

/* ---- timing ---- */

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t g_valid;   /* results feed this so the work cannot be elided */

static double
round_policies(const struct corpus *c)
{
	struct sts_diags d;
	struct sts_policy p;
	size_t valid = 0;
	double t0 = now();
	for (size_t i = 0; i < c->n; i++) {
		sts_diags_init(&d);
		if (sts_policy_parse(c->data.data + c->off[i], c->off[i + 1] - c->off[i], 0, &p,
				     &d) == STS_OK)
			valid++;
		sts_policy_clear(&p);
	}
	double t = now() - t0;
	g_valid = valid;
	return t;
}

static double
round_txt(const struct corpus *c)
{
	struct sts_diags d;
	struct sts_txt_record r;
	size_t valid = 0;
	double t0 = now();
	for (size_t i = 0; i < c->n; i++) {
		sts_diags_init(&d);
		if (sts_txt_parse(c->data.data + c->off[i], c->off[i + 1] - c->off[i], 0, &r, &d) ==
		    STS_OK)
			valid++;
		sts_txt_record_clear(&r);
	}
	double t = now() - t0;
	g_valid = valid;
	return t;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct result {
	const char *name;
	size_t items, bytes, valid;
	double best, median;   /* seconds per round */
};

static struct result
measure(const char *name, const struct corpus *c, double (*fn)(const struct corpus *),
	unsigned rounds)
{
	double *t = malloc(rounds * sizeof *t);
	if (t == NULL)
		die("out of memory");
	fn(c);   /* warm-up: page in the corpus, fill caches and the allocator */
	for (unsigned i = 0; i < rounds; i++)
		t[i] = fn(c);
	qsort(t, rounds, sizeof *t, cmp_double);
	struct result r = {
		.name = name, .items = c->n, .bytes = c->data.len, .valid = g_valid,
		.best = t[0],
		.median = rounds % 2 ? t[rounds / 2] : (t[rounds / 2 - 1] + t[rounds / 2]) / 2,
	};
	free(t);
	return r;
}

static void
print_text(const struct result *r)
{
	printf("%-8s %7zu items %8.2f MB  valid %5.1f%%  best %10.0f items/s %7.1f MB/s"
	       "  median %10.0f items/s %7.1f MB/s\n",
	       r->name, r->items, (double)r->bytes / 1e6, 100.0 * (double)r->valid / (double)r->items,
	       (double)r->items / r->best, (double)r->bytes / 1e6 / r->best,
	       (double)r->items / r->median, (double)r->bytes / 1e6 / r->median);
}

static void
print_json(const struct result *r, int last)
{
	printf("  \"%s\": {\"items\": %zu, \"bytes\": %zu, \"valid\": %zu, "
	       "\"best_s\": %.6f, \"median_s\": %.6f, "
	       "\"best_per_s\": %.0f, \"median_per_s\": %.0f, "
	       "\"best_mb_per_s\": %.2f, \"median_mb_per_s\": %.2f}%s\n",
	       r->name, r->items, r->bytes, r->valid, r->best, r->median,
	       (double)r->items / r->best, (double)r->items / r->median,
	       (double)r->bytes / 1e6 / r->best, (double)r->bytes / 1e6 / r->median,
	       last ? "" : ",");
}

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: bench-parse [--count N] [--rounds N] [--seed N] [--dump DIR] [--json]\n"
		    "  --count N   policies and TXT records to generate (default 100000 each)\n"
		    "  --rounds N  timed rounds per parser, after one warm-up (default 5)\n"
		    "  --seed N    PRNG seed (default 8461)\n"
		    "  --dump DIR  write DIR/policies.ns and DIR/txt.ns (netstrings), then time\n"
		    "  --json      machine-readable result\n");
}

static unsigned long
parse_ulong(const char *s, const char *opt)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0') {
		fprintf(stderr, "bench-parse: %s wants a number, not '%s'\n", opt, s);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 's' },
		{ "dump", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	size_t count = 100000;
	unsigned rounds = 5;
	uint64_t seed = 8461;
	const char *dump = NULL;
	int json = 0, ch;
	while ((ch = getopt_long(argc, argv, "c:r:s:d:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': count = parse_ulong(optarg, "--count"); break;
		case 'r': rounds = (unsigned)parse_ulong(optarg, "--rounds"); break;
		case 's': seed = parse_ulong(optarg, "--seed"); break;
		case 'd': dump = optarg; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || count == 0 || rounds == 0) {
		usage(stderr);
		return 2;
	}

	struct corpus pol, txt;
	rng_state = seed;
	corpus_build(&pol, count, gen_policy);
	corpus_build(&txt, count, gen_txt);
	if (dump != NULL) {
		if (mkdir(dump, 0777) != 0 && errno != EEXIST) {
			fprintf(stderr, "bench-parse: %s: %s\n", dump, strerror(errno));
			return 1;
		}
		corpus_dump(&pol, dump, "policies.ns");
		corpus_dump(&txt, dump, "txt.ns");
	}

	struct result r[2] = {
		measure("policy", &pol, round_policies, rounds),
		measure("txt", &txt, round_txt, rounds),
	};
	if (json) {
		printf("{\n  \"count\": %zu, \"rounds\": %u, \"seed\": %llu,\n", count, rounds,
		       (unsigned long long)seed);
		print_json(&r[0], 0);
		print_json(&r[1], 1);
		printf("}\n");
	} else {
		printf("bench-parse: %zu policies, %zu TXT records, seed %llu, %u rounds (+1 warm-up)\n",
		       count, count, (unsigned long long)seed, rounds);
		print_text(&r[0]);
		print_text(&r[1]);
	}
	corpus_free(&pol);
	corpus_free(&txt);
	return 0;
}
