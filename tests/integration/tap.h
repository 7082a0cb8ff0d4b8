/* tap.h: TAP output shared by the C integration tests. */
#ifndef MTASTS_ITEST_TAP_H
#define MTASTS_ITEST_TAP_H

#include <stdbool.h>

extern unsigned tap_n;        /* cases reported so far (for the 1..N plan) */
extern unsigned tap_failed;   /* of which failed */

/* Reports one case: "ok N - ..." or "not ok N - ...". */
bool ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# ..." diagnostic line. */
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints up to max_lines of a file as "# label: line" diagnostics. */
void diag_file(const char *label, const char *path, int max_lines);
/* "Bail out! ..." and exit(1); servers are stopped by the test's atexit handler. */
void bail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The guardian: a child process that runs on_orphan (in the child, with
 * standard streams on /dev/null) when the test dies without calling
 * tap_guardian_release, so servers a test started never outlive it.
 * Start it before the loop, curl or c-ares make threads. */
void tap_guardian_start(void (*on_orphan)(void));
/* All is well: the guardian exits without running on_orphan. */
void tap_guardian_release(void);

/* Runs a shell command made like printf (bail if it is too long) and
 * returns its exit status (-1 when it could not run, 128 when killed). */
int tap_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Absolute path of an executable in $PATH or the sbin directories, or NULL.
 * Static buffer. */
const char *find_tool(const char *name);

#endif
