/* cli.h: shared pieces of the mta-sts command-line tool. */
#ifndef MTASTS_CLI_H
#define MTASTS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <mtasts/mtasts.h>

/* TTL of the _mta-sts TXT record in the zone-file lines that generate and
 * publish print. Short, so that a new id reaches senders soon (rule 63). */
#define CLI_TXT_TTL 3600

/* Exit codes shared by all subcommands unless their man page says otherwise. */
enum {
	CLI_OK = 0,
	CLI_INVALID = 1,   /* input checked and found invalid / no match */
	CLI_USAGE = 2,     /* usage or I/O error */
};

/* Each subcommand: argv[0] is the subcommand name. Returns the exit code. */
int cmd_lint(int argc, char **argv);
int cmd_match(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_cache(int argc, char **argv);

/* Reads a whole file ("-" = stdin) into b (whose ceiling bounds the read).
 * On failure prints "mta-sts: PATH: reason" to stderr and returns false. */
bool cli_read_file(const char *path, struct sts_buf *b);

/* Like cli_read_file, but reading past the ceiling is not an error: b then
 * holds the first b->max bytes and *too_big is set. */
bool cli_read_file_bounded(const char *path, struct sts_buf *b, bool *too_big);

/* Writes the zone-file line of the _mta-sts TXT record of domain (A-labels,
 * no trailing dot) for the record value, with TTL CLI_TXT_TTL:
 *   _mta-sts.example.com. 3600 IN TXT "v=STSv1; id=20261129120000"
 * Returns false when it does not fit in buf. */
bool cli_zone_line(char *buf, size_t bufsz, const char *domain, const char *value);

/* Reports a getopt_long error with the "mta-sts CMD:" prefix, for callers
 * that set opterr = 0 and start optstring with ':'. ch is what getopt_long
 * returned (':' for a missing value, '?' otherwise); opts is the option
 * table. Names the option as given: "option '--domain' needs a value",
 * "option '--json' takes no value", "option '--st' is ambiguous (--state,
 * --strict)", "unknown option '--frob'" or "unknown option '-x'". */
struct option;
void cli_opt_error(const char *cmd, const struct option *opts, int ch, char **argv);

/* Prints diagnostics compiler-style: FILE:LINE:COL: SEVERITY: MESSAGE [rule N]. */
void cli_print_diags(FILE *fp, const char *file, const struct sts_diags *d);

/* Builds the JSON array of diagnostics of one severity (jansson json_t *). */
struct json_t;
struct json_t *cli_diags_json(const struct sts_diags *d, enum sts_severity sev);

/* Writes data to path atomically: a temporary file in the same directory,
 * fsync, rename, fsync of the directory. Creates missing parent directories
 * when mkdirs is true. Returns false with errno set. */
bool cli_write_atomic(const char *path, const void *data, size_t len, bool mkdirs);

/* The default policy cache of query and cache: $XDG_CACHE_HOME/mtasts/cache.db
 * or ~/.cache/mtasts/cache.db; creates the directory. False when neither
 * variable is set to an absolute path or the path does not fit in out. */
bool cli_default_cache_path(char *out, size_t n);

#endif
