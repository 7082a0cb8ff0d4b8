/* tap.h: TAP output shared by the C integration tests. */
#ifndef MTASTS_ITEST_TAP_H
#define MTASTS_ITEST_TAP_H

#include <stdbool.h>

extern unsigned tap_n;        /* cases reported so far (for the 1..N plan) */
extern unsigned tap_failed;   /* of which failed */

/* Reports one case: "ok N - ..." or "not ok N - ...". */
void ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints up to max_lines of a file as "# label: line" diagnostics. */
void diag_file(const char *label, const char *path, int max_lines);
/* "Bail out! ..." and exit(1); servers are stopped by the test's atexit handler. */
void bail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
