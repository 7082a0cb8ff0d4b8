/* stsid.h: the clock and the timestamp ids that generate and publish issue. */
#ifndef MTASTS_CLI_STSID_H
#define MTASTS_CLI_STSID_H

#include <stdbool.h>
#include <stdint.h>

#define CLI_ID_LEN 14   /* YYYYMMDDHHMMSS */

/* Environment variable that replaces the clock (Unix seconds), for tests. */
#define CLI_NOW_ENV "MTA_STS_NOW"

/* The current time, or MTA_STS_NOW when set. On a malformed MTA_STS_NOW
 * prints "mta-sts CMD: ..." to stderr and returns false. */
bool cli_now(const char *cmd, int64_t *now);

/* Formats t (UTC) as YYYYMMDDHHMMSS. False when t is before 1970 or past 9999. */
bool cli_id_from_time(int64_t t, char out[CLI_ID_LEN + 1]);

/* Parses an id written by cli_id_from_time back to Unix seconds. False when
 * s is not exactly 14 digits forming a real UTC date and time. */
bool cli_id_to_time(const char *s, int64_t *t);

/* The id for a new policy: the timestamp of now, or one second past
 * `highest` (an id of this format, or NULL) when now is not greater, so that
 * ids only grow. False when no id can be formed. */
bool cli_id_next(int64_t now, const char *highest, char out[CLI_ID_LEN + 1]);

/* Formats t (UTC) as ISO 8601, "2026-11-29T12:00:00Z". */
bool cli_time_iso(int64_t t, char out[21]);

#endif
