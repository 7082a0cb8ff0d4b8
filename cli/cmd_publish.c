/* cmd_publish.c: `mta-sts publish`: the id manager. Issues a new TXT id
 * exactly when the policy changes in meaning (rule 5), ids only grow, and
 * the state is recorded only after the policy reached the webroot, so the
 * order of rule 64 (policy first, then TXT) holds.
 * Exit 0 published (changed or not), 1 invalid policy, 2 usage/I/O error. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "domain.h"
#include "duration.h"
#include "state.h"
#include "stsid.h"

static void
publish_usage(FILE *fp)
{
	fprintf(fp,
		"usage: mta-sts publish --domain DOMAIN --policy FILE --state DIR\n"
		"                       [--webroot DIR] [--strict] [--json]\n"
		"\n"
		"Publishes a policy file and manages the id of the _mta-sts TXT record: a\n"
		"policy that differs in meaning from the last one published for DOMAIN\n"
		"(field values, mx set, extensions; not white space, line ends or line\n"
		"order) gets a new id, the UTC time as YYYYMMDDHHMMSS, always greater than\n"
		"every id issued before for DOMAIN (one second past the highest when the\n"
		"clock has not moved on). An unchanged policy keeps its id.\n"
		"\n"
		"  --domain DOMAIN  the policy domain (U-labels are converted to A-labels)\n"
		"  --policy FILE    the policy to publish ('-' for standard input); it must\n"
		"                   be valid (see 'mta-sts lint') or nothing is changed;\n"
		"                   files over 65536 bytes are invalid (rule 35)\n"
		"  --state DIR      state directory; DIR/DOMAIN/state.json keeps the last\n"
		"                   published policy and the ids issued, DIR/DOMAIN/lock\n"
		"                   serialises concurrent runs\n"
		"  --webroot DIR    write FILE's bytes to DIR/.well-known/mta-sts.txt\n"
		"                   (atomically) before recording the state; without it,\n"
		"                   upload the file yourself\n"
		"  --strict         refuse a policy that fails 'mta-sts lint --strict' (exit\n"
		"                   1, nothing changed); without it, deviations senders\n"
		"                   only tolerate are warnings and the policy is published\n"
		"  --json           print one JSON object: domain, changed, id, previous_id\n"
		"                   (the id before this run, null at first), txt_value,\n"
		"                   zone_line, policy_path, state_path, steps\n"
		"\n"
		"The TXT record is printed as a zone-file line with TTL %d. Keep the TXT\n"
		"TTL short: senders see a new id only once the old record's TTL has passed\n"
		"(rule 63).\n"
		"\n"
		"Then, in this order: 1. the policy is served over HTTPS, 2. update the TXT\n"
		"record, 3. senders may hold the previous policy for its max_age: until\n"
		"the date printed, keep MX hosts it lists and the new policy drops working,\n"
		"do not point MX records at hosts the new policy adds, and, after mode none,\n"
		"keep serving it before deleting the TXT record and the policy (rule 67).\n"
		"\n"
		"Environment: %s=SECONDS replaces the clock (Unix time; a test hook).\n"
		"\n"
		"Exit status: 0 published (changed or not), 1 invalid policy (nothing\n"
		"changed), 2 usage error, I/O error or corrupt state.\n", CLI_TXT_TTL, CLI_NOW_ENV);
}

static bool
set_once(const char **slot, const char *opt, const char *val)
{
	if (*slot != NULL) {
		fprintf(stderr, "mta-sts publish: %s given twice ('%s' and '%s'): give it once\n",
			opt, *slot, val);
		return false;
	}
	*slot = val;
	return true;
}

enum step_status { STEP_DONE, STEP_TODO, STEP_NONE };

static const char *const step_names[] = { "done", "to do", "nothing to do" };
static const char *const step_json[] = { "done", "todo", "none" };

struct step {
	enum step_status status;
	char text[2048];
};

/* MX patterns of the previous policy that the new one no longer lists. */
static size_t
removed_mx(const struct cli_state *prev, const struct sts_policy *p, char *out, size_t outsz)
{
	size_t n = 0, o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < json_array_size(prev->mx); i++) {
		const char *old = json_string_value(json_array_get(prev->mx, i));
		bool kept = false;
		for (size_t j = 0; j < p->n_mx && !kept; j++)
			kept = strcmp(old, p->mx[j]) == 0;
		if (kept)
			continue;
		n++;
		int w = snprintf(out + o, outsz - o, "%s%s", o > 0 ? ", " : "", old);
		if (w < 0 || (size_t)w >= outsz - o) {
			/* Keep what fits; the count still tells. */
			continue;
		}
		o += (size_t)w;
	}
	return n;
}

/* MX patterns of the new policy that the previous one does not cover: a
 * host they match may match no previous pattern, so senders holding the
 * previous policy in mode enforce refuse to deliver to it. A host pattern
 * is covered by an equal or a matching wildcard pattern; a wildcard only by
 * itself. */
static size_t
added_mx(const struct cli_state *prev, const struct sts_policy *p, char *out, size_t outsz)
{
	size_t n = 0, o = 0;
	out[0] = '\0';
	for (size_t j = 0; j < p->n_mx; j++) {
		bool covered = false;
		for (size_t i = 0; i < json_array_size(prev->mx) && !covered; i++) {
			const char *old = json_string_value(json_array_get(prev->mx, i));
			covered = strcmp(old, p->mx[j]) == 0 ||
				  (p->mx[j][0] != '*' && sts_mx_match(old, p->mx[j]));
		}
		if (covered)
			continue;
		n++;
		int w = snprintf(out + o, outsz - o, "%s%s", o > 0 ? ", " : "", p->mx[j]);
		if (w < 0 || (size_t)w >= outsz - o)
			continue;   /* keep what fits */
		o += (size_t)w;
	}
	return n;
}

/* The longest max_age of the ids issued so far (the previous one among
 * them), and the id that had it; the previous id wins ties. */
static uint32_t
longest_max_age(const struct cli_state *prev, const char **which)
{
	uint32_t best = prev->max_age;
	*which = prev->id;
	json_t *issued = json_object_get(prev->root, "issued");
	for (size_t i = 0; i < json_array_size(issued); i++) {
		json_t *e = json_array_get(issued, i);
		json_t *age = json_object_get(e, "max_age");
		const char *id = json_string_value(json_object_get(e, "id"));
		if (id == NULL || !json_is_integer(age) || json_integer_value(age) < 0 ||
		    json_integer_value(age) > STS_MAX_AGE_MAX)
			continue;
		if ((uint32_t)json_integer_value(age) > best) {
			best = (uint32_t)json_integer_value(age);
			*which = id;
		}
	}
	return best;
}

/* Appends printf output to the step text; "; " between parts. */
static void
step_add(struct step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
step_add(struct step *s, const char *fmt, ...)
{
	size_t o = strlen(s->text);
	if (o > 0 && o + 2 < sizeof s->text) {
		memcpy(s->text + o, "; ", 3);
		o += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->text + o, sizeof s->text - o, fmt, ap);
	va_end(ap);
}

/* Step 3: what senders that still hold an earlier policy mean for the MX
 * hosts and, when retiring MTA-STS, for the removal (rules 63, 67). */
static void
step_three(struct step *s, bool first, bool changed, const struct cli_state *prev,
	   const struct sts_policy *p, int64_t now)
{
	char list[512], h1[32], h2[32], until[21];
	s->text[0] = '\0';
	s->status = STEP_NONE;
	if (first || !changed) {
		step_add(s, "%s", first ? "no earlier policy: no MX host to retire" :
			 "no id change: no MX host to retire");
		return;
	}
	static const char counted[] = "counted from now: add any delay before step 2"
		" and the TXT record's TTL";
	if (p->mode == STS_MODE_NONE) {
		/* Retiring (rule 67): the TXT record and the file go last. */
		const char *which;
		uint32_t age = longest_max_age(prev, &which);
		if (!cli_time_iso(now + age, until))
			snprintf(until, sizeof until, "(now + %u s)", age);
		s->status = STEP_TODO;
		if (strcmp(which, prev->id) == 0)
			step_add(s, "senders may keep the previous policy (id %s, mode %s) until"
				 " %s (its max_age, %u seconds (%s), %s)", prev->id, prev->mode,
				 until, age, cli_duration_format(age, h1, sizeof h1), counted);
		else
			step_add(s, "senders may keep the previous policy (id %s, mode %s) or an"
				 " earlier one until %s (the longest max_age published, %u seconds"
				 " (%s) for id %s, %s)", prev->id, prev->mode, until, age,
				 cli_duration_format(age, h1, sizeof h1), which, counted);
		step_add(s, "after that date, and after the none policy's own max_age, %u"
			 " seconds (%s), has passed for everyone who fetched it, delete the TXT"
			 " record, then the policy file; keep serving mode: none until then"
			 " (rule 67)", p->max_age, cli_duration_format(p->max_age, h2, sizeof h2));
		return;
	}
	if (!cli_time_iso(now + prev->max_age, until))
		snprintf(until, sizeof until, "(now + %u s)", prev->max_age);
	cli_duration_format(prev->max_age, h1, sizeof h1);
	bool prev_enforce = strcmp(prev->mode, "enforce") == 0;
	bool prev_testing = strcmp(prev->mode, "testing") == 0;
	size_t n_new = added_mx(prev, p, list, sizeof list);
	if (n_new > 0 && prev_enforce) {
		s->status = STEP_TODO;
		step_add(s, "senders that cached the previous policy (id %s) reject the new MX"
			 " host%s until %s (the previous max_age, %u seconds (%s), %s): do not"
			 " point MX records at %s before that date (rule 63)", prev->id,
			 n_new == 1 ? "" : "s", until, prev->max_age, h1, counted, list);
	} else if (n_new > 0 && !prev_testing) {
		step_add(s, "the previous policy (id %s) was mode %s: no sender rejects the new"
			 " MX host%s (%s)", prev->id, prev->mode, n_new == 1 ? "" : "s", list);
	} else if (n_new > 0) {
		step_add(s, "the previous policy (id %s) was mode testing: senders that cached"
			 " it deliver to the new MX host%s (%s) but report it as a failure"
			 " until %s (the previous max_age, %u seconds (%s), %s)", prev->id,
			 n_new == 1 ? "" : "s", list, until, prev->max_age, h1, counted);
	}
	size_t n_gone = removed_mx(prev, p, list, sizeof list);
	if (n_gone > 0) {
		s->status = STEP_TODO;
		step_add(s, "after step 2, keep the MX host%s the old policy lists (%s) working"
			 " for the old max_age, %u seconds (%s), before removing %s: senders may"
			 " use the old policy that long (rule 63)", n_gone == 1 ? "" : "s", list,
			 prev->max_age, h1, n_gone == 1 ? "it" : "them");
	}
	if (n_new == 0 && n_gone == 0)
		step_add(s, "no MX host was added or dropped: no MX change to wait for");
}

/* The parser already warns below one day; enforce deserves a week. */
static void
warn_max_age(const char *shown, const struct sts_policy *p)
{
	char human[32];
	cli_duration_format(p->max_age, human, sizeof human);
	if (p->mode == STS_MODE_ENFORCE && p->max_age >= 86400 && p->max_age < 604800)
		fprintf(stderr, "mta-sts publish: %s: warning: max_age %u (%s) is under one week"
			" for mode enforce; prefer 1w or more (rules 17, 70)\n", shown, p->max_age,
			human);
}

int
cmd_publish(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "policy", required_argument, NULL, 'p' },
		{ "state", required_argument, NULL, 's' },
		{ "webroot", required_argument, NULL, 'w' },
		{ "strict", no_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain_arg = NULL, *policy_path = NULL, *state_dir = NULL, *webroot = NULL;
	bool json = false, strict = false;
	int rc = CLI_USAGE;
	struct sts_diags *d = NULL;
	struct sts_buf in, canon;
	struct sts_policy p;
	struct cli_state_dir sd = { .lock_fd = -1 };
	struct cli_state prev;
	json_t *doc = NULL;
	char *web_path = NULL;
	memset(&p, 0, sizeof p);
	memset(&prev, 0, sizeof prev);
	sts_buf_init(&in, STS_POLICY_MAX + 1);
	sts_buf_init(&canon, 4 * STS_POLICY_MAX);

	int ch;
	optind = 1;
	opterr = 0;   /* our own messages carry the "mta-sts publish:" prefix */
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		bool ok = true;
		switch (ch) {
		case 'd': ok = set_once(&domain_arg, "--domain", optarg); break;
		case 'p': ok = set_once(&policy_path, "--policy", optarg); break;
		case 's': ok = set_once(&state_dir, "--state", optarg); break;
		case 'w': ok = set_once(&webroot, "--webroot", optarg); break;
		case 'S': strict = true; break;
		case 'j': json = true; break;
		case 'h': publish_usage(stdout); rc = CLI_OK; goto out;
		default:
			cli_opt_error("publish", opts, ch, argv);
			publish_usage(stderr);
			goto out;
		}
		if (!ok)
			goto out;
	}
	if (optind < argc) {
		fprintf(stderr, "mta-sts publish: unexpected argument '%s': give the policy file"
			" with --policy\n", argv[optind]);
		goto out;
	}
	bool missing = false;
	if (domain_arg == NULL) {
		fprintf(stderr, "mta-sts publish: --domain is required: the policy domain, e.g."
			" --domain example.com\n");
		missing = true;
	}
	if (policy_path == NULL) {
		fprintf(stderr, "mta-sts publish: --policy is required: the policy file to"
			" publish (e.g. from 'mta-sts generate')\n");
		missing = true;
	}
	if (state_dir == NULL) {
		fprintf(stderr, "mta-sts publish: --state is required: a directory that keeps"
			" the ids issued so far (keep it across runs)\n");
		missing = true;
	}
	if (missing) {
		fprintf(stderr, "Try 'mta-sts publish --help'.\n");
		goto out;
	}
	char domain[STS_HOST_MAX + 1];
	if (!cli_domain_arg("publish", domain_arg, domain))
		goto out;
	if (webroot != NULL && webroot[0] == '\0') {
		fprintf(stderr, "mta-sts publish: --webroot is empty: give the web server's"
			" document root for mta-sts.%s, or leave the option out\n", domain);
		goto out;
	}
	int64_t now;
	if (!cli_now("publish", &now))
		goto out;

	/* Everything about the input is checked before the state is touched. */
	const char *shown = strcmp(policy_path, "-") == 0 ? "<stdin>" : policy_path;
	/* Up to one byte past the ceiling: the parser names an oversized policy
	 * (policy.too_large, rule 35) as it does every other invalid one. */
	bool too_big;
	if (!cli_read_file_bounded(policy_path, &in, &too_big)) {
		fprintf(stderr, "mta-sts publish: cannot read the --policy file: give a readable"
			" policy file (or - for standard input)\n");
		goto out;
	}
	d = malloc(sizeof *d);
	if (d == NULL) {
		fprintf(stderr, "mta-sts publish: out of memory\n");
		goto out;
	}
	sts_diags_init(d);
	int prc = sts_policy_parse(in.data, in.len, strict ? STS_PARSE_STRICT : 0, &p, d);
	if (prc == STS_ENOMEM) {
		fprintf(stderr, "mta-sts publish: out of memory\n");
		goto out;
	}
	cli_print_diags(stderr, shown, d);
	if (prc != STS_OK) {
		fprintf(stderr, "mta-sts publish: %s: the policy is invalid%s (%zu error%s):"
			" nothing was published or recorded; fix it and check it with"
			" 'mta-sts lint%s %s'\n", shown, strict ? " under --strict" : "",
			d->n_errors, d->n_errors == 1 ? "" : "s", strict ? " --strict" : "", shown);
		rc = CLI_INVALID;
		goto out;
	}
	if (!strict && d->n_warnings > 0) {
		/* Some warnings (unknown fields) stay warnings under --strict: hint
		 * only when --strict would refuse the policy. */
		struct sts_policy probe;
		sts_diags_init(d);
		int src = sts_policy_parse(in.data, in.len, STS_PARSE_STRICT, &probe, d);
		sts_policy_clear(&probe);
		if (src == STS_EINVAL && d->n_errors > 0)
			fprintf(stderr, "mta-sts publish: %s: %zu of these warnings %s an error"
				" under --strict; the policy is published anyway: run with --strict"
				" to refuse deviations senders only tolerate\n", shown, d->n_errors,
				d->n_errors == 1 ? "is" : "are each");
	}
	warn_max_age(shown, &p);
	int crc = sts_policy_canonical(&p, &canon);
	if (crc != STS_OK) {
		fprintf(stderr, "mta-sts publish: %s\n", sts_strerror(crc));
		goto out;
	}

	if (webroot != NULL) {
		size_t n = strlen(webroot) + sizeof "/.well-known/mta-sts.txt";
		web_path = malloc(n);
		const char *sep = webroot[strlen(webroot) - 1] == '/' ? "" : "/";
		int w = web_path != NULL ?
			snprintf(web_path, n, "%s%s.well-known/mta-sts.txt", webroot, sep) : -1;
		if (w < 0 || (size_t)w >= n) {
			fprintf(stderr, "mta-sts publish: out of memory\n");
			goto out;
		}
	}

	/* From here on the lock is held: load, decide, write, record. */
	if (!cli_state_open("publish", state_dir, domain, &sd))
		goto out;
	int lrc = cli_state_load("publish", &sd, domain, &prev);
	if (lrc < 0)
		goto out;
	bool first = lrc == 0;
	bool changed = first || strcmp(prev.canonical, sts_buf_cstr(&canon)) != 0;
	char id[CLI_ID_LEN + 1];
	bool record = true;   /* whether state.json needs writing */
	if (changed) {
		if (!cli_id_next(now, first ? NULL : prev.highest, id)) {
			fprintf(stderr, "mta-sts publish: no 14-digit id after %s can be formed"
				" from the clock (%lld)\n", first ? "(none)" : prev.highest,
				(long long)now);
			goto out;
		}
		doc = cli_state_new_id(&prev, domain, id, now, &p, sts_buf_cstr(&canon),
				       in.data, in.len);
	} else {
		snprintf(id, sizeof id, "%s", prev.id);
		record = !cli_state_same_bytes(&prev, in.data, in.len);
		if (record)
			doc = cli_state_new_bytes(&prev, now, in.data, in.len);
	}
	if (record && doc == NULL) {
		fprintf(stderr, "mta-sts publish: out of memory building the state\n");
		goto out;
	}
	if (web_path != NULL && !cli_write_atomic(web_path, in.data, in.len, true)) {
		char was[64] = "no id was issued";
		if (!first)
			snprintf(was, sizeof was, "the id stays %s", prev.id);
		fprintf(stderr, "mta-sts publish: cannot write %s: %s: check that --webroot '%s'"
			" is a writable directory; nothing was recorded, %s\n", web_path,
			strerror(errno), webroot, was);
		goto out;
	}
	if (record && !cli_state_save("publish", &sd, doc)) {
		if (web_path != NULL && changed)
			fprintf(stderr, "mta-sts publish: %s already holds the new policy but its"
				" id was not recorded: fix the problem and run publish again\n",
				web_path);
		goto out;
	}

	/* Report. */
	char value[64], zone[STS_HOST_MAX + 96];
	snprintf(value, sizeof value, "v=STSv1; id=%s", id);
	cli_zone_line(zone, sizeof zone, domain, value);
	struct step steps[3];
	if (web_path != NULL) {
		steps[0].status = STEP_DONE;
		snprintf(steps[0].text, sizeof steps[0].text, "the policy is in %s: check that"
			 " https://mta-sts.%s/.well-known/mta-sts.txt serves it", web_path, domain);
	} else {
		steps[0].status = STEP_TODO;
		snprintf(steps[0].text, sizeof steps[0].text, "upload %s so that"
			 " https://mta-sts.%s/.well-known/mta-sts.txt serves it (no --webroot"
			 " given)", shown, domain);
	}
	if (changed) {
		steps[1].status = STEP_TODO;
		snprintf(steps[1].text, sizeof steps[1].text, "after step 1, not before: set the"
			 " TXT record to %s (rule 64)", zone);
	} else {
		steps[1].status = STEP_NONE;
		snprintf(steps[1].text, sizeof steps[1].text, "the TXT record keeps id %s; publish"
			 " %s only if it is not in DNS yet", id, zone);
	}
	step_three(&steps[2], first, changed, &prev, &p, now);

	if (json) {
		json_t *js = json_array();
		for (size_t i = 0; i < 3; i++)
			json_array_append_new(js, json_pack("{s:I, s:s, s:s}", "step",
				(json_int_t)(i + 1), "status", step_json[steps[i].status],
				"action", steps[i].text));
		json_t *o = json_pack("{s:s, s:b, s:s, s:o, s:s, s:s, s:o, s:s, s:o}",
			"domain", domain, "changed", changed, "id", id,
			"previous_id", first ? json_null() : json_string(prev.id),
			"txt_value", value, "zone_line", zone,
			"policy_path", web_path != NULL ? json_string(web_path) : json_null(),
			"state_path", sd.file, "steps", js);
		char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		json_decref(o);
		if (text == NULL) {
			fprintf(stderr, "mta-sts publish: cannot build the JSON output\n");
			goto out;
		}
		puts(text);
		free(text);
	} else {
		if (first)
			printf("%s: first publication: id %s\n", domain, id);
		else if (changed)
			printf("%s: changed in meaning: new id %s (was %s)\n", domain, id, prev.id);
		else
			printf("%s: unchanged in meaning: keeping id %s\n", domain, id);
		if (web_path != NULL)
			printf("policy written to %s\n", web_path);
		printf("state %s %s\n\nTXT record:\n  %s\n\nsteps, in this order:\n",
		       record ? "recorded in" : "already up to date in", sd.file, zone);
		for (size_t i = 0; i < 3; i++)
			printf("  %zu. [%s] %s\n", i + 1, step_names[steps[i].status], steps[i].text);
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "mta-sts publish: writing to standard output failed: %s\n",
			strerror(errno));
		goto out;
	}
	rc = CLI_OK;
out:
	cli_state_close(&sd);
	cli_state_free(&prev);
	json_decref(doc);
	sts_policy_clear(&p);
	sts_buf_free(&in);
	sts_buf_free(&canon);
	free(web_path);
	free(d);
	return rc;
}
