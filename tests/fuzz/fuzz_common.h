/* fuzz_common.h: invariant checks shared by the libFuzzer targets.
 *
 * A target must not only survive its input: it checks what the library
 * promises (diag.h, parse.h, each parser's header) and abort()s on the first
 * broken promise, so libFuzzer and the replay driver both report it as a
 * crash with the offending input. Header-only: each target is one program. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() rather than assert(): the check must also hold in -DNDEBUG builds. */
#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,    \
				__LINE__, #cond);                                     \
			abort();                                                      \
		}                                                                     \
	} while (0)

static inline size_t
fz_count_byte(const uint8_t *data, size_t size, uint8_t b)
{
	size_t n = 0;
	for (size_t i = 0; i < size; i++)
		n += data[i] == b;
	return n;
}

static inline bool
fz_is_lower_ascii_host(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || (c >= 'A' && c <= 'Z'))
			return false;
	}
	return true;
}

/* Checks one diagnostic list after a parse of `size` bytes whose text has at
 * most `max_line` lines. */
static inline void
fz_check_diag_list(const struct sts_diags *d, size_t size, size_t max_line)
{
	CHECK(d->n <= STS_DIAGS_MAX);
	/* every add is either stored or counted as dropped */
	CHECK(d->n + d->n_dropped == d->n_errors + d->n_warnings);
	CHECK((d->first_error >= 0) == (d->n_errors > 0));
	CHECK(d->first_error < (long)d->n);
	const struct sts_diag *fe = sts_diags_first_error(d);
	CHECK((fe == NULL) == (d->n_errors == 0));
	size_t errs = 0, warns = 0;
	for (size_t i = 0; i < d->n; i++) {
		const struct sts_diag *g = &d->items[i];
		CHECK(g->severity == STS_SEV_ERROR || g->severity == STS_SEV_WARNING);
		CHECK(g->code != NULL && g->code[0] != '\0');
		CHECK(g->rule != NULL);
		CHECK(g->line >= 1 && g->column >= 1);
		CHECK(g->offset <= size);
		CHECK(g->line <= max_line);
		CHECK((size_t)g->column - 1 <= g->offset);   /* a column never starts before the input */
		CHECK(memchr(g->message, '\0', sizeof g->message) != NULL);
		CHECK(g->message[0] != '\0');
		/* messages quote input only through sts_escape: printable ASCII only,
		 * so a diagnostic can never inject control bytes into a log line */
		for (const char *m = g->message; *m != '\0'; m++)
			CHECK((unsigned char)*m >= 0x20 && (unsigned char)*m < 0x7f);
		if (g->severity == STS_SEV_ERROR)
			errs++;
		else
			warns++;
		/* the first error is the first stored error */
		if (d->first_error >= 0 && (long)i < d->first_error)
			CHECK(g->severity == STS_SEV_WARNING);
	}
	if (fe != NULL)
		CHECK(fe->severity == STS_SEV_ERROR);
	CHECK(errs <= d->n_errors && warns <= d->n_warnings);
}

/* The same, plus the return code `rc` of a parser that started from an empty
 * list: STS_OK exactly when it reported no error. */
static inline void
fz_check_diags(const struct sts_diags *d, int rc, size_t size, size_t max_line)
{
	CHECK(rc == STS_OK || rc == STS_EINVAL);   /* ENOMEM here is an arena sizing bug */
	CHECK((rc == STS_OK) == (d->n_errors == 0));
	fz_check_diag_list(d, size, max_line);
}

/* Strict mode only changes the severity of tolerated deviations: the same
 * problems are reported, some of them as errors instead of warnings. */
static inline void
fz_check_strict_vs_default(const struct sts_diags *def, int rc_def,
			   const struct sts_diags *strict, int rc_strict)
{
	if (rc_strict == STS_OK)
		CHECK(rc_def == STS_OK);
	CHECK(def->n_errors + def->n_warnings == strict->n_errors + strict->n_warnings);
	CHECK(strict->n_errors >= def->n_errors);
}

/* Field names of extensions: 1-32 of ALPHA/DIGIT/"_"/"-"/".", starting alnum. */
static inline bool
fz_ext_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '-' && c != '.')))
			return false;
	}
	return true;
}

#endif
