/* cmd_lint.c: `mta-sts lint`: validate a policy file, _mta-sts TXT record
 * or TLSRPT record. Exit 0 valid (warnings allowed), 1 invalid, 2 usage/I/O. */
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"

enum lint_kind { LINT_POLICY, LINT_RECORD, LINT_TLSRPT };

static void
lint_usage(FILE *fp)
{
	fprintf(fp,
		"usage: mta-sts lint [--strict] [--json] [--record | --tlsrpt] FILE|-\n"
		"\n"
		"Validates a policy file (default), an _mta-sts TXT record value (--record)\n"
		"or an _smtp._tls TLSRPT record value (--tlsrpt). A record value is the text\n"
		"of one record with its character-strings joined, without quotes.\n"
		"\n"
		"  --strict   every deviation from RFC 8461/8460 is an error (default: the\n"
		"             deviations senders tolerate are warnings; see conformance.md)\n"
		"  --json     print one JSON object instead of compiler-style lines\n"
		"\n"
		"Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage or I/O error.\n");
}

/* A record value given in a file may end with a newline; it is not part of
 * the record. Strip one LF or CRLF. */
static size_t
record_len(const struct sts_buf *b)
{
	size_t n = b->len;
	if (n > 0 && b->data[n - 1] == '\n') {
		n--;
		if (n > 0 && b->data[n - 1] == '\r')
			n--;
	}
	return n;
}

static json_t *
ext_json(const struct sts_ext *ext, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, ext[i].name, json_string(ext[i].value));
	return o;
}

static json_t *
policy_json(const struct sts_policy *p)
{
	json_t *mx = json_array();
	for (size_t i = 0; i < p->n_mx; i++)
		json_array_append_new(mx, json_string(p->mx[i]));
	return json_pack("{s:o, s:o, s:o, s:o, s:o}",
		"version", p->has_version ? json_string("STSv1") : json_null(),
		"mode", p->mode != STS_MODE_UNSET ? json_string(sts_mode_name(p->mode)) : json_null(),
		"max_age", p->has_max_age ? json_integer((json_int_t)p->max_age) : json_null(),
		"mx", mx,
		"extensions", ext_json(p->ext, p->n_ext));
}

int
cmd_lint(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "strict", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "record", no_argument, NULL, 'r' },
		{ "tlsrpt", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = 0;
	bool json = false;
	enum lint_kind kind = LINT_POLICY;
	int kinds = 0;
	int ch;
	optind = 1;
	opterr = 0;   /* our own messages carry the "mta-sts lint:" prefix */
	while ((ch = getopt_long(argc, argv, ":sjrth", opts, NULL)) != -1) {
		switch (ch) {
		case 's': flags |= STS_PARSE_STRICT; break;
		case 'j': json = true; break;
		case 'r': kind = LINT_RECORD; kinds++; break;
		case 't': kind = LINT_TLSRPT; kinds++; break;
		case 'h': lint_usage(stdout); return CLI_OK;
		default:
			cli_opt_error("lint", opts, ch, argv);
			lint_usage(stderr);
			return CLI_USAGE;
		}
	}
	if (kinds > 1) {
		fprintf(stderr, "mta-sts lint: --record and --tlsrpt exclude each other\n");
		return CLI_USAGE;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "mta-sts lint: give exactly one FILE (or - for standard input)\n");
		lint_usage(stderr);
		return CLI_USAGE;
	}
	const char *path = argv[optind];
	const char *shown = strcmp(path, "-") == 0 ? "<stdin>" : path;

	struct sts_buf in;
	/* One byte over the parser's ceiling, so the parser names the excess. */
	sts_buf_init(&in, kind == LINT_POLICY ? STS_POLICY_MAX + 1 : STS_TXT_RECORD_MAX + 2);
	bool too_big;
	if (!cli_read_file_bounded(path, &in, &too_big)) {
		sts_buf_free(&in);
		return CLI_USAGE;
	}

	struct sts_diags *d = malloc(sizeof *d);
	if (d == NULL) {
		sts_buf_free(&in);
		fprintf(stderr, "mta-sts lint: out of memory\n");
		return CLI_USAGE;
	}
	sts_diags_init(d);
	json_t *parsed = NULL;
	const char *parsed_key = "policy";
	int rc;
	if (kind == LINT_POLICY) {
		struct sts_policy p;
		rc = sts_policy_parse(in.data, in.len, flags, &p, d);
		if (json)
			parsed = policy_json(&p);
		sts_policy_clear(&p);
	} else if (kind == LINT_RECORD) {
		struct sts_txt_record r;
		rc = sts_txt_parse(in.data, record_len(&in), flags, &r, d);
		parsed_key = "record";
		if (json)
			parsed = json_pack("{s:o, s:o}",
				"id", r.id[0] ? json_string(r.id) : json_null(),
				"extensions", ext_json(r.ext, r.n_ext));
		sts_txt_record_clear(&r);
	} else {
		struct sts_tlsrpt_record r;
		rc = sts_tlsrpt_parse(in.data, record_len(&in), flags, &r, d);
		parsed_key = "tlsrpt";
		if (json) {
			json_t *rua = json_array();
			for (size_t i = 0; i < r.n_rua; i++)
				json_array_append_new(rua, json_string(r.rua[i]));
			parsed = json_pack("{s:o, s:o}", "rua", rua,
					   "extensions", ext_json(r.ext, r.n_ext));
		}
		sts_tlsrpt_record_clear(&r);
	}
	sts_buf_free(&in);
	if (rc == STS_ENOMEM) {
		free(d);
		json_decref(parsed);
		fprintf(stderr, "mta-sts lint: out of memory\n");
		return CLI_USAGE;
	}
	bool valid = rc == STS_OK;

	if (json) {
		json_t *o = json_pack("{s:b, s:s, s:o, s:o, s:o}", "valid", valid, "file", shown,
				      "errors", cli_diags_json(d, STS_SEV_ERROR),
				      "warnings", cli_diags_json(d, STS_SEV_WARNING),
				      parsed_key, parsed);
		char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
		if (text != NULL)
			puts(text);
		free(text);
		json_decref(o);
	} else {
		cli_print_diags(stdout, shown, d);
		if (valid)
			printf("%s: valid%s\n", shown,
			       d->n_warnings ? " (with warnings)" : "");
		else
			printf("%s: invalid: %zu error%s\n", shown, d->n_errors,
			       d->n_errors == 1 ? "" : "s");
	}
	free(d);
	return valid ? CLI_OK : CLI_INVALID;
}
