/* common.c: file I/O and diagnostic output shared by the subcommands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

bool
cli_read_file(const char *path, struct sts_buf *b)
{
	bool too_big = false;
	if (!cli_read_file_bounded(path, b, &too_big))
		return false;
	if (too_big) {
		fprintf(stderr, "mta-sts: %s: larger than %zu bytes, more than this command"
			" accepts: check that it is the right file\n", path, b->max);
		return false;
	}
	return true;
}

bool
cli_read_file_bounded(const char *path, struct sts_buf *b, bool *too_big)
{
	*too_big = false;
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "mta-sts: %s: %s\n", path, strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mta-sts: %s: is a directory; give a file\n", path);
		if (fd != STDIN_FILENO)
			close(fd);
		return false;
	}
	char chunk[16384];
	bool ok = true;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "mta-sts: %s: %s\n", path, strerror(errno));
			ok = false;
			break;
		}
		if (n == 0)
			break;
		size_t take = (size_t)n;
		if (take > b->max - b->len) {
			take = b->max - b->len;
			*too_big = true;
		}
		int rc = sts_buf_append(b, chunk, take);
		if (*too_big && rc == STS_OK)
			break;
		if (rc != STS_OK) {
			fprintf(stderr, "mta-sts: %s: %s\n", path, sts_strerror(rc));
			ok = false;
			break;
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return ok;
}

bool
cli_zone_line(char *buf, size_t bufsz, const char *domain, const char *value)
{
	int w = snprintf(buf, bufsz, "_mta-sts.%s. %d IN TXT \"%s\"", domain, CLI_TXT_TTL, value);
	return w >= 0 && (size_t)w < bufsz;
}

/* The option of opts whose name is exactly name[0..len), or the only one it
 * abbreviates; NULL when none. *n_prefix counts the options it abbreviates. */
static const struct option *
find_long(const struct option *opts, const char *name, size_t len, size_t *n_prefix)
{
	const struct option *hit = NULL;
	*n_prefix = 0;
	for (const struct option *o = opts; o->name != NULL; o++) {
		if (strncmp(o->name, name, len) != 0)
			continue;
		if (strlen(o->name) == len) {
			*n_prefix = 1;
			return o;
		}
		(*n_prefix)++;
		hit = o;
	}
	return *n_prefix == 1 ? hit : NULL;
}

void
cli_opt_error(const char *cmd, const struct option *opts, int ch, char **argv)
{
	/* After an error getopt_long has stepped past a long option, so it is
	 * argv[optind - 1]; a short option may sit inside a group ("-sx"), so
	 * it is named by optopt. optopt is 0 for an unknown long option. */
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	bool is_long = arg != NULL && strncmp(arg, "--", 2) == 0 && arg[2] != '\0';
	const char *name = is_long ? arg + 2 : "";
	size_t len = strcspn(name, "=");
	size_t n_prefix = 0;
	const struct option *o = is_long ? find_long(opts, name, len, &n_prefix) : NULL;
	/* A long option in argv[optind - 1] is the culprit only if it is the
	 * option getopt_long reported (a short one in a later group may be). */
	bool long_culprit = is_long && (optopt == 0 || (o != NULL && o->flag == NULL &&
							o->val == optopt));
	if (ch == ':') {
		if (long_culprit)
			fprintf(stderr, "mta-sts %s: option '--%s' needs a value\n", cmd,
				o != NULL ? o->name : name);
		else
			fprintf(stderr, "mta-sts %s: option '-%c' needs a value\n", cmd, optopt);
	} else if (long_culprit && optopt != 0) {
		fprintf(stderr, "mta-sts %s: option '--%s' takes no value\n", cmd, o->name);
	} else if (long_culprit && n_prefix > 1) {
		fprintf(stderr, "mta-sts %s: option '--%.*s' is ambiguous (", cmd, (int)len, name);
		const char *sep = "";
		for (const struct option *p = opts; p->name != NULL; p++)
			if (strncmp(p->name, name, len) == 0) {
				fprintf(stderr, "%s--%s", sep, p->name);
				sep = ", ";
			}
		fprintf(stderr, "): give more of its name\n");
	} else if (long_culprit) {
		fprintf(stderr, "mta-sts %s: unknown option '--%.*s'\n", cmd, (int)len, name);
	} else if (optopt > 0x20 && optopt < 0x7f) {
		fprintf(stderr, "mta-sts %s: unknown option '-%c'\n", cmd, optopt);
	} else {
		fprintf(stderr, "mta-sts %s: unknown option (byte 0x%02x)\n", cmd,
			(unsigned)optopt & 0xffu);
	}
}

void
cli_print_diags(FILE *fp, const char *file, const struct sts_diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct sts_diag *g = &d->items[i];
		fprintf(fp, "%s:%u:%u: %s: %s", file, g->line, g->column,
			sts_severity_name(g->severity), g->message);
		if (g->rule[0] != '\0')
			fprintf(fp, " [rule %s]", g->rule);
		fprintf(fp, " (%s)\n", g->code);
	}
	if (d->n_dropped > 0)
		fprintf(fp, "%s: note: %zu more diagnostics not shown\n", file, d->n_dropped);
}

json_t *
cli_diags_json(const struct sts_diags *d, enum sts_severity sev)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < d->n; i++) {
		const struct sts_diag *g = &d->items[i];
		if (g->severity != sev)
			continue;
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:s, s:s}",
			"code", g->code, "line", (json_int_t)g->line, "column", (json_int_t)g->column,
			"offset", (json_int_t)g->offset, "rule", g->rule, "message", g->message));
	}
	return arr;
}

static bool
mkdirs_for(const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return false;
	char *dir = dirname(copy);
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			free(copy);
			return false;
		}
		*p = '/';
	}
	bool ok = mkdir(dir, 0755) == 0 || errno == EEXIST;
	free(copy);
	return ok;
}

bool
cli_write_atomic(const char *path, const void *data, size_t len, bool mkdirs)
{
	if (mkdirs && !mkdirs_for(path))
		return false;
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 16);
	if (tmp == NULL)
		return false;
	snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		free(tmp);
		return false;
	}
	const char *p = data;
	size_t left = len;
	bool ok = true;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = false;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	ok = ok && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
	int saved = errno;
	if (close(fd) != 0 && ok) {
		ok = false;
		saved = errno;
	}
	if (ok && rename(tmp, path) != 0) {
		ok = false;
		saved = errno;
	}
	if (!ok) {
		unlink(tmp);
		free(tmp);
		errno = saved;
		return false;
	}
	free(tmp);
	/* Make the rename itself durable. */
	char *copy = strdup(path);
	if (copy != NULL) {
		int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(copy);
	}
	return true;
}

/* $XDG_CACHE_HOME/mtasts/cache.db or ~/.cache/mtasts/cache.db; creates the directory. */
bool
cli_default_cache_path(char *out, size_t n)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char dir[PATH_MAX];
	if (xdg != NULL && xdg[0] == '/')
		snprintf(dir, sizeof dir, "%s/mtasts", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(dir, sizeof dir, "%s/.cache/mtasts", home);
	else
		return false;
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		mkdir(parent, 0700);
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return false;
	return snprintf(out, n, "%s/cache.db", dir) < (int)n;
}
