/* cli.h: shared pieces of the mta-sts command-line tool. */
#ifndef MTASTS_CLI_H
#define MTASTS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <mtasts/mtasts.h>

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

/* Reads a whole file ("-" = stdin) into b (whose ceiling bounds the read).
 * On failure prints "mta-sts: PATH: reason" to stderr and returns false. */
bool cli_read_file(const char *path, struct sts_buf *b);

/* Like cli_read_file, but reading past the ceiling is not an error: b then
 * holds the first b->max bytes and *too_big is set. */
bool cli_read_file_bounded(const char *path, struct sts_buf *b, bool *too_big);

/* Prints diagnostics compiler-style: FILE:LINE:COL: SEVERITY: MESSAGE [rule N]. */
void cli_print_diags(FILE *fp, const char *file, const struct sts_diags *d);

/* Builds the JSON array of diagnostics of one severity (jansson json_t *). */
struct json_t;
struct json_t *cli_diags_json(const struct sts_diags *d, enum sts_severity sev);

/* Writes data to path atomically: a temporary file in the same directory,
 * fsync, rename, fsync of the directory. Creates missing parent directories
 * when mkdirs is true. Returns false with errno set. */
bool cli_write_atomic(const char *path, const void *data, size_t len, bool mkdirs);

#endif
