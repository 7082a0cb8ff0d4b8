/* cmd_match.c: `mta-sts match`: does an MX host match an mx pattern (rule 45)?
 *   mta-sts match PATTERN HOST          exit 0 match, 1 no match, 2 bad pattern
 *   mta-sts match --policy FILE HOST... one line per host; exit 0 all match */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void
match_usage(FILE *fp)
{
	fprintf(fp,
		"usage: mta-sts match PATTERN HOST\n"
		"       mta-sts match --policy FILE HOST...\n"
		"\n"
		"Tests MX host names against an mx pattern ('mail.example.com' or\n"
		"'*.example.com') the way senders do (RFC 8461 section 4.1): case-insensitive,\n"
		"'*' covers exactly one left-most label, U-labels are converted to A-labels.\n"
		"\n"
		"With --policy, FILE is read as 'mta-sts lint' reads it (without --strict);\n"
		"a policy over 65536 bytes is invalid (rule 35).\n"
		"\n"
		"Exit status: 0 every host matches, 1 some host does not match,\n"
		"2 invalid pattern, invalid policy, or usage error.\n");
}

int
cmd_match(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *policy_path = NULL;
	int ch;
	optind = 1;
	opterr = 0;   /* our own messages carry the "mta-sts match:" prefix */
	while ((ch = getopt_long(argc, argv, ":p:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': policy_path = optarg; break;
		case 'h': match_usage(stdout); return CLI_OK;
		default:
			cli_opt_error("match", opts, ch, argv);
			match_usage(stderr);
			return CLI_USAGE;
		}
	}
	struct sts_diags *d = malloc(sizeof *d);
	if (d == NULL)
		return CLI_USAGE;
	sts_diags_init(d);
	int rc = CLI_OK;

	if (policy_path == NULL) {
		if (argc - optind != 2) {
			fprintf(stderr, "mta-sts match: give PATTERN and HOST\n");
			match_usage(stderr);
			free(d);
			return CLI_USAGE;
		}
		const char *pattern = argv[optind], *host = argv[optind + 1];
		char norm[STS_HOST_MAX + 1], hnorm[STS_HOST_MAX + 1];
		struct sts_pos pos = { 0, 1, 1 };
		if (sts_mx_pattern_check(pattern, strlen(pattern), 0, norm, d, pos) != STS_OK) {
			cli_print_diags(stderr, "pattern", d);
			free(d);
			return CLI_USAGE;
		}
		cli_print_diags(stderr, "pattern", d);
		if (sts_host_normalize(host, strlen(host), hnorm) != STS_OK) {
			fprintf(stderr, "mta-sts match: '%s' is not a usable host name\n", host);
			free(d);
			return CLI_INVALID;
		}
		bool m = sts_mx_match(norm, hnorm);
		if (m)
			printf("%s: match (mx: %s)\n", host, norm);
		else
			printf("%s: no match (mx: %s)\n", host, norm);
		free(d);
		return m ? CLI_OK : CLI_INVALID;
	}

	if (argc - optind < 1) {
		fprintf(stderr, "mta-sts match: give at least one HOST after --policy FILE\n");
		free(d);
		return CLI_USAGE;
	}
	struct sts_buf in;
	/* One byte over the parser's ceiling, so the parser names the excess
	 * (policy.too_large) as it does for every other invalid policy. */
	sts_buf_init(&in, STS_POLICY_MAX + 1);
	bool too_big;
	if (!cli_read_file_bounded(policy_path, &in, &too_big)) {
		sts_buf_free(&in);
		free(d);
		return CLI_USAGE;
	}
	struct sts_policy p;
	int prc = sts_policy_parse(in.data, in.len, 0, &p, d);
	sts_buf_free(&in);
	if (prc != STS_OK) {
		cli_print_diags(stderr, policy_path, d);
		fprintf(stderr, "mta-sts match: %s: policy is invalid; senders would not use it\n",
			policy_path);
		sts_policy_clear(&p);
		free(d);
		return CLI_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		char hnorm[STS_HOST_MAX + 1];
		const char *hit = NULL;
		if (sts_host_normalize(argv[i], strlen(argv[i]), hnorm) == STS_OK) {
			for (size_t j = 0; j < p.n_mx && hit == NULL; j++)
				if (sts_mx_match(p.mx[j], hnorm))
					hit = p.mx[j];
		} else {
			snprintf(hnorm, sizeof hnorm, "%s", argv[i]);
		}
		if (hit != NULL) {
			printf("%s: match (mx: %s)\n", argv[i], hit);
		} else {
			printf("%s: no match\n", argv[i]);
			rc = CLI_INVALID;
		}
	}
	sts_policy_clear(&p);
	free(d);
	return rc;
}
