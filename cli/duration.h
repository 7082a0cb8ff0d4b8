/* duration.h: max_age durations given on the command line ("86400", "1w2d"). */
#ifndef MTASTS_CLI_DURATION_H
#define MTASTS_CLI_DURATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a duration: plain seconds ("86400") or number+unit groups with the
 * units s, m, h, d, w, each used at most once ("1w", "1w2d", "36h").
 * The result must not exceed STS_MAX_AGE_MAX (rule 15).
 * On failure returns false and writes a message naming the problem and the
 * fix (without the option name) to err. */
bool cli_duration_parse(const char *s, uint32_t *out, char *err, size_t errsz);

/* Writes seconds as the largest units that divide it exactly, e.g.
 * 694800 -> "1w1d1h", 0 -> "0s". Returns buf. */
char *cli_duration_format(uint64_t secs, char *buf, size_t bufsz);

#endif
