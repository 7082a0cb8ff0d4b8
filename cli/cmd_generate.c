/* cmd_generate.c: `mta-sts generate`: write a policy file that passes
 * `lint --strict` and print the TXT record that announces it.
 * Exit 0 written, 2 usage or I/O error (bad arguments are usage errors). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "domain.h"
#include "duration.h"
#include "stsid.h"

static void
generate_usage(FILE *fp)
{
	fprintf(fp,
		"usage: mta-sts generate --domain DOMAIN --mode enforce|testing|none\n"
		"                        --mx PATTERN [--mx PATTERN...] --max-age DURATION\n"
		"                        [--id ID] [--out-dir DIR] [--json]\n"
		"\n"
		"Builds a policy file (CRLF line ends; version, mode, mx..., max_age) that\n"
		"passes 'mta-sts lint --strict', and the _mta-sts TXT record announcing it.\n"
		"\n"
		"  --domain DOMAIN    the policy domain (U-labels are converted to A-labels)\n"
		"  --mode MODE        enforce, testing or none\n"
		"  --mx PATTERN       an MX host name or '*.example.com', as A-labels; repeat\n"
		"                     for each MX host (needed for enforce and testing)\n"
		"  --max-age DURATION seconds (604800) or units s, m, h, d, w combined, e.g.\n"
		"                     1w, 1w2d, 36h; at most 31557600 (one year)\n"
		"  --id ID            the TXT record id (1-32 letters or digits); default: the\n"
		"                     current UTC time as YYYYMMDDHHMMSS\n"
		"  --out-dir DIR      write DIR/.well-known/mta-sts.txt (atomically, creating\n"
		"                     directories) instead of printing the policy\n"
		"  --json             print one JSON object: domain, policy, txt_owner,\n"
		"                     txt_value, zone_line, path (or null), id\n"
		"\n"
		"Without --out-dir the policy goes to standard output and the TXT record and\n"
		"guidance to standard error; with --out-dir standard output gets the path\n"
		"written and the zone-file line of the TXT record (TTL %d). Keep the TXT\n"
		"TTL short: senders see a new id only once the old record's TTL has passed\n"
		"(rule 63).\n"
		"Publish the policy on https://mta-sts.DOMAIN/.well-known/mta-sts.txt before\n"
		"the TXT record; 'mta-sts publish' manages ids across policy changes.\n"
		"\n"
		"Environment: %s=SECONDS replaces the clock used for the default id\n"
		"(Unix time; a test hook).\n"
		"\n"
		"Exit status: 0 success, 2 invalid arguments or I/O error.\n",
		CLI_TXT_TTL, CLI_NOW_ENV);
}

/* Stores a single-valued option; a repeated one is a usage error. */
static bool
set_once(const char **slot, const char *opt, const char *val)
{
	if (*slot != NULL) {
		fprintf(stderr, "mta-sts generate: %s given twice ('%s' and '%s'): give it once\n",
			opt, *slot, val);
		return false;
	}
	*slot = val;
	return true;
}

/* Validates every --mx in strict mode and appends the normalised, distinct
 * patterns to mx (n_mx entries of STS_HOST_MAX + 1 bytes). */
static bool
check_mx(char *const *args, size_t n_args, char (*mx)[STS_HOST_MAX + 1], size_t *n_mx,
	 struct sts_diags *d)
{
	bool ok = true;
	*n_mx = 0;
	for (size_t i = 0; i < n_args; i++) {
		char shown[96];
		size_t len = strlen(args[i]);
		sts_escape(args[i], len, shown, sizeof shown);
		/* Longer patterns can match no host name (253 at most), and the
		 * library's output buffer holds no more than that. */
		size_t limit = STS_HOST_MAX + (len > 0 && args[i][len - 1] == '.' ? 1u : 0u);
		if (len > limit) {
			fprintf(stderr, "mta-sts generate: --mx '%s' is %zu characters; a pattern"
				" has at most %d\n", shown, len, STS_HOST_MAX);
			ok = false;
			continue;
		}
		sts_diags_init(d);
		struct sts_pos pos = { 0, 1, 1 };
		int rc = sts_mx_pattern_check(args[i], len, STS_PARSE_STRICT, mx[*n_mx], d, pos);
		for (size_t j = 0; j < d->n; j++)
			fprintf(stderr, "mta-sts generate: %s: --mx '%s': %s [rule %s]\n",
				d->items[j].severity == STS_SEV_ERROR ? "error" : "warning", shown,
				d->items[j].message, d->items[j].rule);
		if (rc != STS_OK || d->n_errors > 0) {
			ok = false;
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < *n_mx && !dup; j++)
			dup = strcmp(mx[j], mx[*n_mx]) == 0;
		if (dup)
			fprintf(stderr, "mta-sts generate: warning: --mx '%s' given more than once;"
				" it is listed once\n", mx[*n_mx]);
		else
			(*n_mx)++;
	}
	return ok;
}

static void
warn_max_age(enum sts_mode mode, uint32_t max_age)
{
	char human[32];
	cli_duration_format(max_age, human, sizeof human);
	/* mode none is the removal step (rule 67), where a short max_age is right. */
	if (mode == STS_MODE_ENFORCE && max_age < 604800)
		fprintf(stderr, "mta-sts generate: warning: max_age %u (%s) is under one week"
			" for mode enforce: senders re-fetch often and an attacker who blocks"
			" the fetch waits less; use 1w or more (rules 17, 70)\n", max_age, human);
	else if (mode == STS_MODE_TESTING && max_age < 86400)
		fprintf(stderr, "mta-sts generate: warning: max_age %u (%s) is under one day:"
			" use 1d or more, weeks once the policy is final (rules 17, 70)\n",
			max_age, human);
}

int
cmd_generate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "mode", required_argument, NULL, 'm' },
		{ "mx", required_argument, NULL, 'x' },
		{ "max-age", required_argument, NULL, 'a' },
		{ "id", required_argument, NULL, 'i' },
		{ "out-dir", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain_arg = NULL, *mode_arg = NULL, *max_age_arg = NULL;
	const char *id_arg = NULL, *out_dir = NULL;
	bool json = false;
	int rc = CLI_USAGE;
	char **mx_args = NULL;
	char (*mx)[STS_HOST_MAX + 1] = NULL;
	struct sts_diags *d = NULL;
	struct sts_buf body;
	char *path = NULL;
	struct sts_policy check;
	memset(&check, 0, sizeof check);
	sts_buf_init(&body, STS_POLICY_MAX);

	size_t n_mx_args = 0;
	mx_args = calloc((size_t)argc + 1, sizeof *mx_args);
	d = malloc(sizeof *d);
	if (mx_args == NULL || d == NULL) {
		fprintf(stderr, "mta-sts generate: out of memory\n");
		goto out;
	}
	int ch;
	optind = 1;
	opterr = 0;   /* our own messages carry the "mta-sts generate:" prefix */
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		bool ok = true;
		switch (ch) {
		case 'd': ok = set_once(&domain_arg, "--domain", optarg); break;
		case 'm': ok = set_once(&mode_arg, "--mode", optarg); break;
		case 'a': ok = set_once(&max_age_arg, "--max-age", optarg); break;
		case 'i': ok = set_once(&id_arg, "--id", optarg); break;
		case 'o': ok = set_once(&out_dir, "--out-dir", optarg); break;
		case 'x': mx_args[n_mx_args++] = optarg; break;
		case 'j': json = true; break;
		case 'h': generate_usage(stdout); rc = CLI_OK; goto out;
		default:
			cli_opt_error("generate", opts, ch, argv);
			generate_usage(stderr);
			goto out;
		}
		if (!ok)
			goto out;
	}
	if (optind < argc) {
		fprintf(stderr, "mta-sts generate: unexpected argument '%s': every value goes"
			" with an option, e.g. --mx %s\n", argv[optind], argv[optind]);
		goto out;
	}
	bool missing = false;
	if (domain_arg == NULL) {
		fprintf(stderr, "mta-sts generate: --domain is required: the policy domain,"
			" e.g. --domain example.com\n");
		missing = true;
	}
	if (mode_arg == NULL) {
		fprintf(stderr, "mta-sts generate: --mode is required: enforce, testing (to"
			" try a policy first) or none (to retire one)\n");
		missing = true;
	}
	if (max_age_arg == NULL) {
		fprintf(stderr, "mta-sts generate: --max-age is required: how long senders may"
			" cache the policy, e.g. --max-age 1w\n");
		missing = true;
	}
	if (missing) {
		fprintf(stderr, "Try 'mta-sts generate --help'.\n");
		goto out;
	}

	char domain[STS_HOST_MAX + 1];
	if (!cli_domain_arg("generate", domain_arg, domain))
		goto out;
	enum sts_mode mode = sts_mode_from_name(mode_arg);
	if (mode == STS_MODE_UNSET) {
		char shown[64];
		sts_escape(mode_arg, strlen(mode_arg), shown, sizeof shown);
		fprintf(stderr, "mta-sts generate: --mode '%s' is not a mode: use enforce, testing"
			" or none (lower case)\n", shown);
		goto out;
	}
	uint32_t max_age;
	char err[256];
	if (!cli_duration_parse(max_age_arg, &max_age, err, sizeof err)) {
		fprintf(stderr, "mta-sts generate: --max-age %s\n", err);
		goto out;
	}
	char id[STS_ID_MAX + 1];
	if (id_arg != NULL) {
		char shown[64];
		sts_escape(id_arg, strlen(id_arg), shown, sizeof shown);
		if (!sts_id_valid(id_arg, strlen(id_arg))) {
			fprintf(stderr, "mta-sts generate: --id '%s' is not a valid id: give 1-32"
				" letters or digits (no '-', '_', '.', spaces), e.g. 20261129120000,"
				" or leave --id out to use the current time\n", shown);
			goto out;
		}
		snprintf(id, sizeof id, "%s", id_arg);
	} else {
		int64_t now;
		if (!cli_now("generate", &now))
			goto out;
		if (!cli_id_from_time(now, id)) {
			fprintf(stderr, "mta-sts generate: the clock (%lld) gives no 14-digit UTC"
				" timestamp: give --id\n", (long long)now);
			goto out;
		}
	}

	mx = calloc(n_mx_args + 1, sizeof *mx);
	if (mx == NULL) {
		fprintf(stderr, "mta-sts generate: out of memory\n");
		goto out;
	}
	size_t n_mx;
	if (!check_mx(mx_args, n_mx_args, mx, &n_mx, d))
		goto out;
	if (n_mx == 0 && mode != STS_MODE_NONE) {
		fprintf(stderr, "mta-sts generate: mode %s needs at least one --mx naming your MX"
			" hosts (e.g. --mx mail.%s); only mode none may have none [rule 21]\n",
			sts_mode_name(mode), domain);
		goto out;
	}
	warn_max_age(mode, max_age);

	/* Built as text in RFC field order; the parse below is the self-check. */
	int brc = sts_buf_printf(&body, "version: STSv1\r\nmode: %s\r\n", sts_mode_name(mode));
	for (size_t i = 0; brc == STS_OK && i < n_mx; i++)
		brc = sts_buf_printf(&body, "mx: %s\r\n", mx[i]);
	if (brc == STS_OK)
		brc = sts_buf_printf(&body, "max_age: %u\r\n", max_age);
	if (brc != STS_OK) {
		fprintf(stderr, "mta-sts generate: the policy would pass %d bytes (%s): list"
			" fewer --mx patterns\n", STS_POLICY_MAX, sts_strerror(brc));
		goto out;
	}
	sts_diags_init(d);
	if (sts_policy_parse(body.data, body.len, STS_PARSE_STRICT, &check, d) != STS_OK ||
	    d->n_errors > 0 || check.mode != mode || check.max_age != max_age ||
	    check.n_mx != n_mx) {
		cli_print_diags(stderr, "<generated>", d);
		fprintf(stderr, "mta-sts generate: internal error: the generated policy does"
			" not pass strict checking; nothing was written (please report this)\n");
		goto out;
	}

	if (out_dir != NULL) {
		size_t plen = strlen(out_dir) + sizeof "/.well-known/mta-sts.txt";
		path = malloc(plen);
		if (path == NULL) {
			fprintf(stderr, "mta-sts generate: out of memory\n");
			goto out;
		}
		const char *sep = out_dir[0] != '\0' && out_dir[strlen(out_dir) - 1] == '/' ? "" : "/";
		int w = snprintf(path, plen, "%s%s.well-known/mta-sts.txt", out_dir, sep);
		if (w < 0 || (size_t)w >= plen) {
			fprintf(stderr, "mta-sts generate: --out-dir path too long\n");
			goto out;
		}
		if (!cli_write_atomic(path, body.data, body.len, true)) {
			fprintf(stderr, "mta-sts generate: cannot write %s: %s: check that --out-dir"
				" '%s' is a writable directory\n", path, strerror(errno), out_dir);
			goto out;
		}
	}

	char owner[STS_HOST_MAX + 16], value[64], zone[STS_HOST_MAX + 96];
	snprintf(owner, sizeof owner, "_mta-sts.%s.", domain);
	snprintf(value, sizeof value, "v=STSv1; id=%s", id);
	cli_zone_line(zone, sizeof zone, domain, value);

	if (json) {
		json_t *o = json_pack("{s:s, s:s%, s:s, s:s, s:s, s:o, s:s}",
			"domain", domain, "policy", body.data, body.len, "txt_owner", owner,
			"txt_value", value, "zone_line", zone,
			"path", path != NULL ? json_string(path) : json_null(), "id", id);
		char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		json_decref(o);
		if (text == NULL) {
			fprintf(stderr, "mta-sts generate: cannot build the JSON output\n");
			goto out;
		}
		puts(text);
		free(text);
	} else if (path != NULL) {
		printf("wrote %s\n%s\n", path, zone);
	} else {
		fwrite(body.data, 1, body.len, stdout);
		fprintf(stderr, "TXT record for the zone of %s:\n%s\n", domain, zone);
	}
	fprintf(stderr, "next: serve the policy at https://mta-sts.%s/.well-known/mta-sts.txt"
		" (text/plain, valid certificate), then publish the TXT record [rule 64]\n", domain);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "mta-sts generate: writing to standard output failed: %s\n",
			strerror(errno));
		goto out;
	}
	rc = CLI_OK;
out:
	sts_policy_clear(&check);
	sts_buf_free(&body);
	free(path);
	free(mx);
	free(mx_args);
	free(d);
	return rc;
}
