/* testutil.h: helpers shared by the unit tests (files, TSV rows, escapes). */
#ifndef MTASTS_TESTUTIL_H
#define MTASTS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* Reads a whole file; aborts the test program when it cannot (a test that
 * cannot find its data must fail loudly, never pass). Caller frees. */
char *tu_read_file(const char *path, size_t *len);
/* Path of a file below the source tree ($MTASTS_SOURCE_ROOT or ".."). Static buffer. */
const char *tu_src_path(const char *rel);
/* Path below the shared reference tree ($MTASTS_SHARED or SOURCE_ROOT/../shared). */
const char *tu_shared_path(const char *rel);

/* Splits a line at TABs into at most max fields (in place). Returns the count. */
size_t tu_split_tabs(char *line, char **fields, size_t max);
/* Decodes vectors.tsv escapes (\\ \n \r \t \xHH) into a new buffer. */
char *tu_unescape(const char *s, size_t *len);

/* Registers an allocation that lives until tu_run() returns; returns p. */
void *tu_keep(void *p);
/* Runs a cmocka group built on the heap, then frees `tests` and every
 * tu_keep() allocation (so LeakSanitizer sees a clean exit). */
int tu_run(const char *group, struct CMUnitTest *tests, size_t n);

#endif
