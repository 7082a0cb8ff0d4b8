/* test_corpus.c: the real-world corpus (tests/data/corpus, copied from
 * shared/corpus) as test data. Each item of verdicts.tsv is one case:
 * "valid" items must pass lint --strict and the sender parser, "invalid"
 * items must fail both, and "unsure" items (plus a few whose verdict is about
 * the owner name, not the value) follow tests/data/corpus-decisions.tsv. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>

#include "testutil.h"

struct item {
	char name[128];
	char path[128];          /* policies/NNN.txt, or "" for record values */
	char *value;             /* record value for TXT / TLSRPT items */
	int kind;                /* 0 policy, 1 txt, 2 tlsrpt */
	bool strict_valid;
	bool default_valid;
	const char *reason;
};

/* Column 2 ("value") of a records TSV, by its column-1 number. */
static char *
record_value(char *table, const char *n)
{
	char *copy = strdup(table);
	char *save = NULL, *found = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[6];
		if (tu_split_tabs(line, f, 6) >= 2 && strcmp(f[0], n) == 0) {
			found = strdup(f[1]);
			break;
		}
	}
	free(copy);
	return found;
}

static void
print_diags(const struct sts_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		printf("# %u:%u %s %s: %s\n", d->items[i].line, d->items[i].column,
		       sts_severity_name(d->items[i].severity), d->items[i].code, d->items[i].message);
}

static int
parse_item(const struct item *it, unsigned flags, struct sts_diags *d)
{
	sts_diags_init(d);
	if (it->kind == 0) {
		char rel[256];
		snprintf(rel, sizeof rel, "tests/data/corpus/%s", it->path);
		size_t len;
		char *body = tu_read_file(tu_src_path(rel), &len);
		struct sts_policy p;
		int rc = sts_policy_parse(body, len, flags, &p, d);
		if (rc == STS_OK) {
			/* A usable policy always names a mode and max_age, and mx unless none. */
			assert_true(p.mode != STS_MODE_UNSET && p.has_max_age && p.has_version);
			assert_true(p.mode == STS_MODE_NONE || p.n_mx > 0);
		}
		sts_policy_clear(&p);
		free(body);
		return rc;
	}
	if (it->kind == 1) {
		struct sts_txt_record r;
		int rc = sts_txt_parse(it->value, strlen(it->value), flags, &r, d);
		if (rc == STS_OK)
			assert_true(sts_id_valid(r.id, strlen(r.id)));
		sts_txt_record_clear(&r);
		return rc;
	}
	struct sts_tlsrpt_record r;
	int rc = sts_tlsrpt_parse(it->value, strlen(it->value), flags, &r, d);
	if (rc == STS_OK)
		assert_true(r.n_rua > 0);
	sts_tlsrpt_record_clear(&r);
	return rc;
}

static void
run_item(void **state)
{
	const struct item *it = *state;
	struct sts_diags *d = malloc(sizeof *d);
	int rc = parse_item(it, STS_PARSE_STRICT, d);
	if ((rc == STS_OK) != it->strict_valid) {
		print_diags(d);
		fail_msg("%s: strict: expected %s (%s)", it->name,
			 it->strict_valid ? "valid" : "invalid", it->reason);
	}
	rc = parse_item(it, 0, d);
	if ((rc == STS_OK) != it->default_valid) {
		print_diags(d);
		fail_msg("%s: default: expected %s (%s)", it->name,
			 it->default_valid ? "valid" : "invalid", it->reason);
	}
	/* Every diagnostic carries a code, a rule-or-empty, a message and a position. */
	for (size_t i = 0; i < d->n; i++) {
		assert_true(d->items[i].code[0] != '\0');
		assert_true(d->items[i].message[0] != '\0');
		assert_true(d->items[i].line >= 1 && d->items[i].column >= 1);
	}
	free(d);
}

int
main(void)
{
	char *verdicts = tu_keep(tu_read_file(tu_src_path("tests/data/corpus/verdicts.tsv"), NULL));
	char *decisions = tu_keep(tu_read_file(tu_src_path("tests/data/corpus-decisions.tsv"), NULL));
	char *txt = tu_keep(tu_read_file(tu_src_path("tests/data/corpus/txt-records.tsv"), NULL));
	char *tlsrpt = tu_keep(tu_read_file(tu_src_path("tests/data/corpus/tlsrpt-records.tsv"), NULL));

	size_t cap = 1024, n = 0;
	struct CMUnitTest *tests = calloc(cap, sizeof *tests);
	char *save = NULL;
	for (char *line = strtok_r(verdicts, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[5];
		if (tu_split_tabs(line, f, 5) < 3 || strcmp(f[0], "item") == 0)
			continue;
		struct item *it = tu_keep(calloc(1, sizeof *it));
		snprintf(it->name, sizeof it->name, "corpus %s", f[0]);
		it->reason = tu_keep(strdup(f[2]));
		bool valid = strcmp(f[2], "valid") == 0;
		it->strict_valid = it->default_valid = valid;

		/* A recorded decision overrides "unsure" and owner-name verdicts. */
		char *dcopy = strdup(decisions), *dsave = NULL;
		bool decided = false;
		for (char *dl = strtok_r(dcopy, "\n", &dsave); dl; dl = strtok_r(NULL, "\n", &dsave)) {
			char *g[4];
			if (dl[0] == '#' || tu_split_tabs(dl, g, 4) < 4 || strcmp(g[0], f[0]) != 0)
				continue;
			it->strict_valid = strcmp(g[1], "valid") == 0;
			it->default_valid = strcmp(g[2], "valid") == 0;
			it->reason = tu_keep(strdup(g[3]));
			decided = true;
		}
		free(dcopy);
		if (strcmp(f[2], "unsure") == 0 && !decided) {
			printf("Bail out! %s is 'unsure' and has no decision in corpus-decisions.tsv\n", f[0]);
			return 1;
		}

		if (strncmp(f[0], "policies/", 9) == 0) {
			it->kind = 0;
			snprintf(it->path, sizeof it->path, "%s", f[0]);
		} else {
			char *hash = strchr(f[0], '#');
			if (hash == NULL)
				continue;
			it->kind = strncmp(f[0], "txt-", 4) == 0 ? 1 : 2;
			it->value = tu_keep(record_value(it->kind == 1 ? txt : tlsrpt, hash + 1));
			if (it->value == NULL) {
				printf("Bail out! %s not found in its records table\n", f[0]);
				return 1;
			}
		}
		if (n == cap)
			tests = realloc(tests, (cap *= 2) * sizeof *tests);
		tests[n].name = it->name;
		tests[n].test_func = run_item;
		tests[n].initial_state = it;
		n++;
	}
	if (n < 600) {
		printf("Bail out! only %zu corpus items found\n", n);
		return 1;
	}
	return tu_run("corpus", tests, n);
}
