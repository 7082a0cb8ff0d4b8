/* cmd_publish.c: `mta-sts publish`: the id manager. Issues a new TXT id
 * exactly when the policy changes in meaning (rule 5), ids only grow, and
 * the state is recorded only after the policy reached the webroot, so the
 * order of rule 64 (policy first, then TXT) holds.
 * Exit 0 published (changed or not), 1 invalid policy, 2 usage/I/O error. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
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
		"                       [--webroot DIR] [--json]\n"
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
		"                   be valid (see 'mta-sts lint') or nothing is changed\n"
		"  --state DIR      state directory; DIR/DOMAIN/state.json keeps the last\n"
		"                   published policy and the ids issued, DIR/DOMAIN/lock\n"
		"                   serialises concurrent runs\n"
		"  --webroot DIR    write FILE's bytes to DIR/.well-known/mta-sts.txt\n"
		"                   (atomically) before recording the state; without it,\n"
		"                   upload the file yourself\n"
		"  --json           print one JSON object: domain, changed, id, previous_id\n"
		"                   (the id before this run, null at first), txt_value,\n"
		"                   zone_line, policy_path, state_path, steps\n"
		"\n"
		"Then, in this order: 1. the policy is served over HTTPS, 2. update the TXT\n"
		"record, 3. wait the old max_age before removing MX hosts the old policy\n"
		"listed.\n"
		"\n"
		"Environment: %s=SECONDS replaces the clock (Unix time; a test hook).\n"
		"\n"
		"Exit status: 0 published (changed or not), 1 invalid policy (nothing\n"
		"changed), 2 usage error, I/O error or corrupt state.\n", CLI_NOW_ENV);
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
	char text[768];
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
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain_arg = NULL, *policy_path = NULL, *state_dir = NULL, *webroot = NULL;
	bool json = false;
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
		case 'j': json = true; break;
		case 'h': publish_usage(stdout); rc = CLI_OK; goto out;
		case ':':
			fprintf(stderr, "mta-sts publish: option '%s' needs a value\n", argv[optind - 1]);
			publish_usage(stderr);
			goto out;
		default:
			if (optopt != 0 && strncmp(argv[optind - 1], "--", 2) == 0)
				fprintf(stderr, "mta-sts publish: option '%s' takes no value\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "mta-sts publish: unknown option '%s'\n",
					argv[optind - 1]);
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
	if (!cli_read_file(policy_path, &in)) {
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
	int prc = sts_policy_parse(in.data, in.len, 0, &p, d);
	if (prc == STS_ENOMEM) {
		fprintf(stderr, "mta-sts publish: out of memory\n");
		goto out;
	}
	cli_print_diags(stderr, shown, d);
	if (prc != STS_OK) {
		fprintf(stderr, "mta-sts publish: %s: the policy is invalid (%zu error%s):"
			" nothing was published or recorded; fix it and check it with"
			" 'mta-sts lint %s'\n", shown, d->n_errors, d->n_errors == 1 ? "" : "s",
			shown);
		rc = CLI_INVALID;
		goto out;
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
	snprintf(zone, sizeof zone, "_mta-sts.%s. IN TXT \"%s\"", domain, value);
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
	char gone[512], human[32];
	size_t n_gone = first || !changed ? 0 : removed_mx(&prev, &p, gone, sizeof gone);
	if (n_gone > 0) {
		steps[2].status = STEP_TODO;
		snprintf(steps[2].text, sizeof steps[2].text, "after step 2, keep the MX host%s"
			 " the old policy lists (%s) working for the old max_age, %u seconds"
			 " (%s), before removing %s: senders may use the old policy that long"
			 " (rule 63)", n_gone == 1 ? "" : "s", gone, prev.max_age,
			 cli_duration_format(prev.max_age, human, sizeof human),
			 n_gone == 1 ? "it" : "them");
	} else {
		steps[2].status = STEP_NONE;
		snprintf(steps[2].text, sizeof steps[2].text, "%s", first ?
			 "no earlier policy: no MX host to retire" : !changed ?
			 "no id change: no MX host to retire" :
			 "no MX host was dropped: none to keep alive for the old max_age");
	}

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
