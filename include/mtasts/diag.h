/* diag.h: diagnostics produced by the parsers.
 *
 * A diagnostic names one problem in the input: its severity, a stable
 * machine code ("policy.max_age.too_large"), the byte offset plus 1-based
 * line and column, the rule number of shared/spec/rfc8461-requirements.md,
 * and a one-line message that says what to do.
 *
 * struct sts_diags holds a fixed number of diagnostics without allocating,
 * so parsing stays allocation-light; later ones are counted, not stored. The
 * first error is always kept (it replaces the last stored warning if the
 * array is already full) and its index is `first_error`. */
#ifndef MTASTS_DIAG_H
#define MTASTS_DIAG_H

#include <stdbool.h>
#include <stddef.h>

enum sts_severity {
	STS_SEV_ERROR = 0,
	STS_SEV_WARNING = 1,
};

#define STS_DIAG_MSG_MAX 240
#define STS_DIAGS_MAX 64

struct sts_diag {
	enum sts_severity severity;
	const char *code;      /* static string */
	const char *rule;      /* static string: "20", "T3", or "" when none applies */
	size_t offset;         /* byte offset into the parsed input */
	unsigned line;         /* 1-based */
	unsigned column;       /* 1-based, in bytes */
	char message[STS_DIAG_MSG_MAX];
};

struct sts_diags {
	size_t n;              /* stored diagnostics */
	size_t n_errors;       /* all errors seen, stored or not */
	size_t n_warnings;     /* all warnings seen, stored or not */
	size_t n_dropped;      /* diagnostics not stored for lack of room */
	long first_error;      /* index into items, or -1 */
	struct sts_diag items[STS_DIAGS_MAX];
};

void sts_diags_init(struct sts_diags *d);
/* Adds a diagnostic; never fails (a full array only counts it). */
void sts_diags_add(struct sts_diags *d, enum sts_severity sev, const char *code,
		   const char *rule, size_t offset, unsigned line, unsigned column,
		   const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* Returns the first error, or NULL when there is none. Borrowed. */
const struct sts_diag *sts_diags_first_error(const struct sts_diags *d);
/* True when at least one diagnostic with this code was recorded and stored. */
bool sts_diags_has(const struct sts_diags *d, const char *code);
const char *sts_severity_name(enum sts_severity sev);

/* Writes a printable, bounded rendering of untrusted bytes into out:
 * printable ASCII is kept, everything else becomes \xHH, and input beyond
 * what fits is cut with "...". Always NUL-terminates (outsz >= 8). Returns out. */
char *sts_escape(const void *p, size_t n, char *out, size_t outsz);

#endif
