/* cmd_check.c: `mta-sts check`: audit one domain or thousands.
 * Exit 0 every finding passes (info allowed), 1 warnings only, 2 any
 * failure, 3 usage or internal error. Findings: docs/check-findings.md. */
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

#include <mtasts/check.h>
#include <mtasts/engine.h>

#include "cli.h"

enum { C_OK = 0, C_WARN = 1, C_FAIL = 2, C_USAGE = 3 };

struct bulk {
	uv_loop_t *loop;
	struct sts_checker *checker;
	bool json, color;
	FILE *list;               /* domains to read, or NULL when from argv */
	char **argv;
	int argc, argi;
	size_t concurrency, inflight, started, done, total_known;
	bool progress;
	uint64_t t0;
	int worst;
	/* summary */
	unsigned long by_mode[5];         /* enforce, testing, none, no policy, invalid */
	struct count { char id[48]; unsigned long n; char example[160]; } fails[64];
	size_t n_fails;
};

static void
check_usage(FILE *fp)
{
	fprintf(fp,
		"usage: mta-sts check [--json] [--state DIR|none] [--resolver IP[:PORT],...]\n"
		"                     [--ca-file FILE] [--smtp-port N] [--no-smtp] [--timeout S]\n"
		"                     DOMAIN...\n"
		"       mta-sts check -f FILE|- [--concurrency N] [--json] [options]\n"
		"\n"
		"Audits each domain's MTA-STS setup the way senders see it: the _mta-sts TXT\n"
		"record, the policy host (every address: TLS, certificate, HTTP), the policy,\n"
		"the MX hosts (STARTTLS and certificates on port 25), TLSRPT, DANE, and with\n"
		"--state whether the id changed whenever the policy did. Every finding has an\n"
		"id (docs/check-findings.md), a status, a message and a fix.\n"
		"\n"
		"  --json            one JSON object per domain (JSON Lines), see mta-sts(1)\n"
		"  --state DIR       remember ids and policies between runs (default:\n"
		"                    $XDG_CACHE_HOME/mtasts/check-state); 'none' to forget\n"
		"  --resolver        DNS servers instead of /etc/resolv.conf\n"
		"  --ca-file         trust anchors for HTTPS and SMTP instead of the system's\n"
		"  --smtp-port N     port of the MX hosts (default 25)\n"
		"  --no-smtp         do not connect to the MX hosts\n"
		"  --timeout S       seconds per network step (default 10)\n"
		"  -f FILE           read domains from FILE ('-': standard input), one per line\n"
		"  --concurrency N   domains checked at once (default 20)\n"
		"\n"
		"Exit status: 0 all pass, 1 warnings only, 2 any failure, 3 usage error.\n");
}

static const char *const section_title[][2] = {
	{ "txt", "TXT record (_mta-sts)" },
	{ "policy-host", "Policy host (mta-sts.<domain>)" },
	{ "policy", "Policy" },
	{ "mx", "MX hosts" },
	{ "tlsrpt", "TLS reporting (_smtp._tls)" },
	{ "dane", "DANE" },
	{ "id", "Id discipline" },
};

static const char *
paint(const struct bulk *b, enum sts_check_status s)
{
	if (!b->color)
		return "";
	switch (s) {
	case STS_CHECK_PASS: return "\033[32m";
	case STS_CHECK_INFO: return "\033[36m";
	case STS_CHECK_WARN: return "\033[33m";
	case STS_CHECK_FAIL: return "\033[31;1m";
	}
	return "";
}

static int
verdict(const struct sts_check_report *r)
{
	return r->n_fail > 0 ? C_FAIL : r->n_warn > 0 ? C_WARN : C_OK;
}

static void
print_human(const struct bulk *b, const struct sts_check_report *r)
{
	const char *bold = b->color ? "\033[1m" : "", *reset = b->color ? "\033[0m" : "";
	printf("%s%s%s\n", bold, r->domain, reset);
	for (size_t s = 0; s < sizeof section_title / sizeof section_title[0]; s++) {
		bool any = false;
		for (size_t i = 0; i < r->n_findings; i++) {
			const struct sts_finding *f = &r->findings[i];
			if (strcmp(f->section, section_title[s][0]) != 0)
				continue;
			if (!any)
				printf("  %s\n", section_title[s][1]);
			any = true;
			printf("    %s%-4s%s  %-28s %s\n", paint(b, f->status),
			       sts_check_status_name(f->status), reset, f->id, f->message);
			if (f->fix[0] != '\0' && f->status >= STS_CHECK_WARN)
				printf("          %-28s fix: %s%s%s\n", "", "", f->fix,
				       f->rule[0] ? "" : "");
		}
	}
	int v = verdict(r);
	printf("%s: %s%s%s: %zu pass, %zu info, %zu warn, %zu fail\n\n", r->domain,
	       paint(b, v == C_FAIL ? STS_CHECK_FAIL : v == C_WARN ? STS_CHECK_WARN : STS_CHECK_PASS),
	       v == C_FAIL ? "FAIL" : v == C_WARN ? "WARN" : "OK", reset, r->n_pass, r->n_info,
	       r->n_warn, r->n_fail);
}

static json_t *
str_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *
time_or_null(int64_t t)
{
	if (t == 0)
		return json_null();
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* "a, b, c" -> ["a","b","c"] */
static json_t *
names_array(const char *list)
{
	json_t *a = json_array();
	const char *p = list;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		size_t lead = strspn(p, " ");
		if (n > lead)
			json_array_append_new(a, json_stringn(p + lead, n - lead));
		p += n;
		if (*p == ',')
			p++;
	}
	return a;
}

static void
print_json(const struct sts_check_report *r)
{
	json_t *findings = json_array();
	for (size_t i = 0; i < r->n_findings; i++) {
		const struct sts_finding *f = &r->findings[i];
		json_array_append_new(findings, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
			"id", f->id, "section", f->section, "status", sts_check_status_name(f->status),
			"rule", f->rule, "subject", f->subject, "message", f->message, "fix", f->fix));
	}
	json_t *txt = json_array(), *cn = json_array(), *hosts = json_array(), *mx = json_array();
	for (size_t i = 0; i < r->n_txt; i++)
		json_array_append_new(txt, json_string(r->txt[i]));
	for (size_t i = 0; i < r->n_txt_cnames; i++)
		json_array_append_new(cn, json_string(r->txt_cnames[i]));
	for (size_t i = 0; i < r->n_hosts; i++) {
		const struct sts_check_host *h = &r->hosts[i];
		const struct sts_fetch_probe_summary *p = &h->probe;
		json_array_append_new(hosts, json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:I, s:o, s:o}",
			"address", h->addr, "result", p->error_code, "message", p->message,
			"http_status", (json_int_t)p->http_status, "content_type", str_or_null(p->content_type),
			"location", str_or_null(p->location), "size", (json_int_t)p->body_len,
			"tls_version", str_or_null(p->tls_version),
			"certificate", p->have_cert ? json_pack("{s:s, s:s, s:o, s:o}",
				"subject", p->cert_subject, "issuer", p->cert_issuer,
				"dns_names", names_array(p->cert_sans),
				"not_after", time_or_null(p->cert_not_after)) : json_null()));
	}
	for (size_t i = 0; i < r->n_mx; i++) {
		const struct sts_check_mx *m = &r->mx[i];
		json_t *addrs = json_array();
		for (size_t j = 0; j < m->n_addrs; j++) {
			const struct sts_check_smtp *s = &m->smtp[j];
			json_array_append_new(addrs, json_pack("{s:s, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o}",
				"address", s->addr, "result", str_or_null(s->error_code),
				"message", str_or_null(s->message), "starttls", s->starttls,
				"tls_version", str_or_null(s->tls_version),
				"certificate", s->error_code[0] ? json_string(sts_smtp_cert_name(
					(enum sts_smtp_cert)s->cert)) : json_null(),
				"subject", str_or_null(s->cert_subject), "issuer", str_or_null(s->cert_issuer),
				"not_after", time_or_null(s->cert_not_after)));
		}
		json_array_append_new(mx, json_pack("{s:s, s:I, s:b, s:I, s:o}", "host", m->host,
			"preference", (json_int_t)m->preference, "cname", m->is_cname,
			"tlsa", (json_int_t)m->n_tlsa, "addresses", addrs));
	}
	int v = verdict(r);
	json_t *o = json_pack("{s:s, s:o, s:s, s:{s:I, s:I, s:I, s:I}, s:o, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o}}",
		"domain", r->domain, "checked_at", time_or_null(r->checked_at),
		"status", v == C_FAIL ? "fail" : v == C_WARN ? "warn" : "pass",
		"counts", "pass", (json_int_t)r->n_pass, "info", (json_int_t)r->n_info,
		"warn", (json_int_t)r->n_warn, "fail", (json_int_t)r->n_fail,
		"findings", findings,
		"data", "txt", txt, "txt_cnames", cn, "id", str_or_null(r->id), "policy_hosts", hosts,
		"policy", str_or_null(r->policy), "mx", mx, "tlsrpt", str_or_null(r->tlsrpt));
	char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (text != NULL)
		puts(text);
	free(text);
	json_decref(o);
	fflush(stdout);
}

static void
tally(struct bulk *b, const struct sts_check_report *r)
{
	int mode = 3;   /* no policy: no usable TXT record, or no body */
	if (r->policy != NULL && r->id[0] != '\0') {
		struct sts_diags *d = malloc(sizeof *d);
		struct sts_policy p;
		if (d != NULL) {
			sts_diags_init(d);
			if (sts_policy_parse(r->policy, strlen(r->policy), 0, &p, d) == STS_OK)
				mode = p.mode == STS_MODE_ENFORCE ? 0 : p.mode == STS_MODE_TESTING ? 1 : 2;
			else
				mode = 4;
			sts_policy_clear(&p);
			free(d);
		}
	}
	b->by_mode[mode]++;
	for (size_t i = 0; i < r->n_findings; i++) {
		const struct sts_finding *f = &r->findings[i];
		if (f->status != STS_CHECK_FAIL)
			continue;
		/* Count domains, not findings: one per id per domain. */
		bool seen = false;
		for (size_t e = 0; e < i && !seen; e++)
			seen = r->findings[e].status == STS_CHECK_FAIL &&
			       strcmp(r->findings[e].id, f->id) == 0;
		if (seen)
			continue;
		size_t k = 0;
		while (k < b->n_fails && strcmp(b->fails[k].id, f->id) != 0)
			k++;
		if (k == b->n_fails) {
			if (k == sizeof b->fails / sizeof b->fails[0])
				continue;
			snprintf(b->fails[k].id, sizeof b->fails[k].id, "%s", f->id);
			snprintf(b->fails[k].example, sizeof b->fails[k].example, "%s: %s", r->domain,
				 f->message);
			b->n_fails++;
		}
		b->fails[k].n++;
	}
}

static void
progress(struct bulk *b)
{
	if (!b->progress)
		return;
	double secs = (double)(uv_hrtime() - b->t0) / 1e9;
	double rate = secs > 0 ? (double)b->done / secs : 0;
	if (b->total_known > 0) {
		int width = 30;
		int filled = (int)((double)width * (double)b->done / (double)b->total_known);
		double eta = rate > 0 ? (double)(b->total_known - b->done) / rate : 0;
		fprintf(stderr, "\r[%.*s%*s] %zu/%zu %.1f/s ETA %.0fs ", filled,
			"##############################", width - filled, "", b->done, b->total_known,
			rate, eta);
	} else {
		fprintf(stderr, "\r%zu checked, %.1f/s ", b->done, rate);
	}
	fflush(stderr);
}

static void start_more(struct bulk *b);

static void
on_report(void *arg, const struct sts_check_report *r)
{
	struct bulk *b = arg;
	b->inflight--;
	b->done++;
	if (b->progress)
		fprintf(stderr, "\r\033[K");
	if (b->json)
		print_json(r);
	else
		print_human(b, r);
	int v = verdict(r);
	if (v > b->worst)
		b->worst = v;
	tally(b, r);
	progress(b);
	start_more(b);
}

/* Next domain from argv or the list file; NULL at the end. Static buffer. */
static const char *
next_domain(struct bulk *b)
{
	static char line[512];
	if (b->list == NULL)
		return b->argi < b->argc ? b->argv[b->argi++] : NULL;
	while (fgets(line, sizeof line, b->list) != NULL) {
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		s[strcspn(s, " \t\r\n#")] = '\0';
		if (*s != '\0')
			return s;
	}
	return NULL;
}

static void
start_more(struct bulk *b)
{
	while (b->inflight < b->concurrency) {
		const char *d = next_domain(b);
		if (d == NULL)
			return;
		b->inflight++;
		b->started++;
		sts_check_domain(b->checker, d, on_report, b);
	}
}

static void
print_summary(struct bulk *b, FILE *fp)
{
	double secs = (double)(uv_hrtime() - b->t0) / 1e9;
	fprintf(fp, "summary: %zu domains in %.1f s (%.1f/s)\n", b->done, secs,
		secs > 0 ? (double)b->done / secs : 0.0);
	fprintf(fp, "  mode:  enforce %lu, testing %lu, none %lu, no policy %lu, invalid policy %lu\n",
		b->by_mode[0], b->by_mode[1], b->by_mode[2], b->by_mode[3], b->by_mode[4]);
	/* Failures by id, most frequent first. */
	for (size_t i = 0; i < b->n_fails; i++)
		for (size_t j = i + 1; j < b->n_fails; j++)
			if (b->fails[j].n > b->fails[i].n) {
				struct count t = b->fails[i];
				b->fails[i] = b->fails[j];
				b->fails[j] = t;
			}
	if (b->n_fails > 0)
		fprintf(fp, "  failures by id (domains), with an example:\n");
	for (size_t i = 0; i < b->n_fails && i < 15; i++)
		fprintf(fp, "    %-28s %6lu  %s\n", b->fails[i].id, b->fails[i].n, b->fails[i].example);
}

static void
log_warning(void *ctx, enum sts_log_level level, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "mta-sts check: %s: %s\n", sts_log_level_name(level), msg);
}

static bool
default_state_dir(char *out, size_t n)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char base[PATH_MAX];
	if (xdg != NULL && xdg[0] == '/')
		snprintf(base, sizeof base, "%s", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(base, sizeof base, "%s/.cache", home);
	else
		return false;
	mkdir(base, 0700);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/mtasts", base);
	mkdir(dir, 0700);
	return snprintf(out, n, "%s/check-state", dir) < (int)n;
}

int
cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "state", required_argument, NULL, 's' },
		{ "resolver", required_argument, NULL, 'r' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "smtp-port", required_argument, NULL, 'P' },
		{ "no-smtp", no_argument, NULL, 'N' },
		{ "timeout", required_argument, NULL, 't' },
		{ "concurrency", required_argument, NULL, 'n' },
		{ "file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bulk b = { .concurrency = 20 };
	const char *state = NULL, *resolver = NULL, *ca = NULL, *file = NULL;
	unsigned port = 25, timeout = 10;
	bool no_smtp = false;
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":js:r:c:P:Nt:n:f:h", opts, NULL)) != -1) {
		char *end;
		unsigned long v;
		switch (ch) {
		case 'j': b.json = true; break;
		case 's': state = optarg; break;
		case 'r': resolver = optarg; break;
		case 'c': ca = optarg; break;
		case 'N': no_smtp = true; break;
		case 'f': file = optarg; break;
		case 'P': case 't': case 'n':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || optarg[0] == '-' || v == 0 ||
			    (ch == 'P' && v > 65535) || (ch == 't' && v > 600) || (ch == 'n' && v > 10000)) {
				fprintf(stderr, "mta-sts check: %s '%s' is out of range (%s)\n",
					ch == 'P' ? "--smtp-port" : ch == 't' ? "--timeout" : "--concurrency",
					optarg, ch == 'P' ? "1-65535" : ch == 't' ? "1-600 seconds" : "1-10000");
				return C_USAGE;
			}
			if (ch == 'P') port = (unsigned)v;
			else if (ch == 't') timeout = (unsigned)v;
			else b.concurrency = v;
			break;
		case 'h': check_usage(stdout); return C_OK;
		case ':':
			fprintf(stderr, "mta-sts check: option '%s' needs a value\n", argv[optind - 1]);
			return C_USAGE;
		default:
			fprintf(stderr, "mta-sts check: unknown option '%s'\n", argv[optind - 1]);
			check_usage(stderr);
			return C_USAGE;
		}
	}
	b.argv = argv;
	b.argc = argc;
	b.argi = optind;
	if (file == NULL && optind >= argc) {
		fprintf(stderr, "mta-sts check: give at least one DOMAIN, or -f FILE\n");
		check_usage(stderr);
		return C_USAGE;
	}
	if (file != NULL && optind < argc) {
		fprintf(stderr, "mta-sts check: give domains either as arguments or with -f, not both\n");
		return C_USAGE;
	}
	if (file != NULL) {
		b.list = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
		if (b.list == NULL) {
			fprintf(stderr, "mta-sts check: %s: %s\n", file, strerror(errno));
			return C_USAGE;
		}
		if (b.list != stdin) {
			/* Count lines for the progress bar's ETA. */
			char line[512];
			while (fgets(line, sizeof line, b.list) != NULL) {
				char *s = line + strspn(line, " \t");
				if (*s != '\n' && *s != '#' && *s != '\0' && *s != '\r')
					b.total_known++;
			}
			rewind(b.list);
		}
	} else {
		b.total_known = (size_t)(argc - optind);
	}
	if (ca != NULL && access(ca, R_OK) != 0) {
		fprintf(stderr, "mta-sts check: --ca-file %s: %s\n", ca, strerror(errno));
		return C_USAGE;
	}
	char state_buf[PATH_MAX];
	if (state == NULL)
		state = default_state_dir(state_buf, sizeof state_buf) ? state_buf : NULL;
	else if (strcmp(state, "none") == 0)
		state = NULL;
	const char *no_color = getenv("NO_COLOR");
	b.color = !b.json && isatty(STDOUT_FILENO) && (no_color == NULL || no_color[0] == '\0');
	b.progress = isatty(STDERR_FILENO) && (file != NULL || b.total_known > 1);

	int rc = C_USAGE;
	uv_loop_t loop;
	struct sts_dns *dns = NULL;
	struct sts_fetcher *fetcher = NULL;
	struct sts_smtp_prober *smtp = NULL;
	char err[512];
	if (uv_loop_init(&loop) != 0)
		return C_USAGE;
	b.loop = &loop;
	struct sts_dns_opts dopts = { .servers = resolver,
				      .try_timeout_ms = timeout * 1000 / 4 < 1500 ? timeout * 1000 / 4 : 1500,
				      .tries = 2 };
	if (sts_dns_new(&loop, &dopts, &dns, err, sizeof err) != 0) {
		fprintf(stderr, "mta-sts check: --resolver: %s\n", err);
		goto out;
	}
	struct sts_fetch_opts fopts = { .ca_file = ca, .timeout_ms = timeout * 1000 };
	if (sts_fetcher_new(&loop, &fopts, &fetcher, err, sizeof err) != 0) {
		fprintf(stderr, "mta-sts check: %s\n", err);
		goto out;
	}
	if (!no_smtp) {
		struct sts_smtp_opts sopts = { .ca_file = ca, .timeout_ms = timeout * 1000, .port = port };
		if (sts_smtp_prober_new(&loop, &sopts, &smtp, err, sizeof err) != 0) {
			fprintf(stderr, "mta-sts check: %s\n", err);
			goto out;
		}
	}
	struct sts_check_opts copts = { .dns = dns, .fetcher = fetcher, .smtp = smtp,
					.state_dir = state,
					.log = { log_warning, NULL, STS_LOG_WARNING } };
	if (sts_checker_new(&copts, &b.checker) != STS_OK) {
		fprintf(stderr, "mta-sts check: cannot start\n");
		goto out;
	}
	b.t0 = uv_hrtime();
	start_more(&b);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (b.progress)
		fprintf(stderr, "\r\033[K");
	if (b.done > 1)
		print_summary(&b, b.json ? stderr : stdout);
	rc = b.worst;
out:
	sts_checker_free(&b.checker);
	sts_smtp_prober_free(&smtp);
	sts_fetcher_free(&fetcher);
	sts_dns_free(&dns);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (b.list != NULL && b.list != stdin)
		fclose(b.list);
	return rc;
}
