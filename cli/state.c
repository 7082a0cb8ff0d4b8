/* state.c: the state directory of `mta-sts publish` (see state.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "state.h"

static char *
join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);
	if (s == NULL)
		return NULL;
	const char *sep = a[0] != '\0' && a[strlen(a) - 1] == '/' ? "" : "/";
	int w = snprintf(s, n, "%s%s%s", a, sep, b);
	if (w < 0 || (size_t)w >= n) {
		free(s);
		return NULL;
	}
	return s;
}

/* mkdir -p: true when path is (now) a directory; errno set otherwise. */
static bool
mkdir_p(const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL)
		return false;
	bool ok = true;
	for (char *p = copy + 1; ok && *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		ok = mkdir(copy, 0755) == 0 || errno == EEXIST;
		*p = '/';
	}
	ok = ok && (mkdir(copy, 0755) == 0 || errno == EEXIST);
	free(copy);
	struct stat st;
	if (ok && stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		ok = false;
	}
	return ok;
}

bool
cli_state_open(const char *cmd, const char *state_dir, const char *domain,
	       struct cli_state_dir *sd)
{
	memset(sd, 0, sizeof *sd);
	sd->lock_fd = -1;
	if (state_dir[0] == '\0') {
		fprintf(stderr, "mta-sts %s: --state is empty: give the state directory\n", cmd);
		return false;
	}
	sd->dir = join(state_dir, domain);
	sd->file = sd->dir != NULL ? join(sd->dir, "state.json") : NULL;
	sd->lock = sd->dir != NULL ? join(sd->dir, "lock") : NULL;
	if (sd->file == NULL || sd->lock == NULL) {
		fprintf(stderr, "mta-sts %s: out of memory\n", cmd);
		goto fail;
	}
	if (!mkdir_p(sd->dir)) {
		fprintf(stderr, "mta-sts %s: cannot create the state directory %s: %s: check"
			" --state '%s'\n", cmd, sd->dir, strerror(errno), state_dir);
		goto fail;
	}
	sd->lock_fd = open(sd->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (sd->lock_fd < 0) {
		fprintf(stderr, "mta-sts %s: cannot open the lock file %s: %s\n", cmd, sd->lock,
			strerror(errno));
		goto fail;
	}
	if (flock(sd->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK) {
			fprintf(stderr, "mta-sts %s: cannot lock %s: %s\n", cmd, sd->lock,
				strerror(errno));
			goto fail;
		}
		fprintf(stderr, "mta-sts %s: waiting for another publish of %s to finish"
			" (lock %s)\n", cmd, domain, sd->lock);
		int rc;
		while ((rc = flock(sd->lock_fd, LOCK_EX)) != 0 && errno == EINTR)
			;
		if (rc != 0) {
			fprintf(stderr, "mta-sts %s: cannot lock %s: %s\n", cmd, sd->lock,
				strerror(errno));
			goto fail;
		}
	}
	return true;
fail:
	cli_state_close(sd);
	return false;
}

void
cli_state_close(struct cli_state_dir *sd)
{
	if (sd->lock_fd >= 0)
		close(sd->lock_fd);   /* drops the flock */
	sd->lock_fd = -1;
	free(sd->dir);
	free(sd->file);
	free(sd->lock);
	sd->dir = sd->file = sd->lock = NULL;
}

static void
corrupt(const char *cmd, const struct cli_state_dir *sd, const char *why)
{
	fprintf(stderr,
		"mta-sts %s: %s: corrupt state: %s.\n"
		"  Nothing was changed. Restore the file from a backup or repair it by hand.\n"
		"  Moving it away starts a new id history: new ids then only grow if the\n"
		"  clock is past the id now in DNS.\n", cmd, sd->file, why);
}

/* A 14-digit timestamp id member, or NULL. */
static const char *
get_id(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	int64_t t;
	return s != NULL && cli_id_to_time(s, &t) ? s : NULL;
}

int
cli_state_load(const char *cmd, const struct cli_state_dir *sd, const char *domain,
	       struct cli_state *st)
{
	memset(st, 0, sizeof *st);
	int fd = open(sd->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "mta-sts %s: cannot read %s: %s\n", cmd, sd->file, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		corrupt(cmd, sd, "not a regular file");
		close(fd);
		return -1;
	}
	json_error_t jerr;
	json_t *root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	char why[256];
	if (root == NULL) {
		snprintf(why, sizeof why, "not valid JSON (line %d, column %d: %s)", jerr.line,
			 jerr.column, jerr.text);
		corrupt(cmd, sd, why);
		return -1;
	}
	st->root = root;
	const char *missing = NULL;
	json_t *fmt = json_object_get(root, "format");
	const char *dom = json_string_value(json_object_get(root, "domain"));
	json_t *max_age = json_object_get(root, "max_age");
	if (!json_is_object(root)) {
		snprintf(why, sizeof why, "the top level is not a JSON object");
		goto bad;
	}
	if (!json_is_integer(fmt)) {
		missing = "format";
	} else if (json_integer_value(fmt) != CLI_STATE_FORMAT) {
		snprintf(why, sizeof why, "format %lld is not %d (written by another version of"
			 " mta-sts?)", (long long)json_integer_value(fmt), CLI_STATE_FORMAT);
		goto bad;
	} else if (dom == NULL) {
		missing = "domain";
	} else if (strcmp(dom, domain) != 0) {
		snprintf(why, sizeof why, "it records domain '%.100s', not '%s'", dom, domain);
		goto bad;
	} else if ((st->id = get_id(root, "id")) == NULL) {
		missing = "id (a 14-digit UTC timestamp)";
	} else if ((st->highest = get_id(root, "highest_issued_id")) == NULL) {
		missing = "highest_issued_id (a 14-digit UTC timestamp)";
	} else if ((st->canonical = json_string_value(json_object_get(root, "canonical"))) == NULL) {
		missing = "canonical";
	} else if ((st->mode = json_string_value(json_object_get(root, "mode"))) == NULL) {
		missing = "mode";
	} else if (!json_is_integer(max_age) || json_integer_value(max_age) < 0 ||
		   json_integer_value(max_age) > STS_MAX_AGE_MAX) {
		missing = "max_age (0-31557600)";
	} else if (!json_is_array(st->mx = json_object_get(root, "mx"))) {
		missing = "mx (an array)";
	} else if ((st->published_at = json_string_value(json_object_get(root, "published_at"))) == NULL) {
		missing = "published_at";
	} else if (!json_is_array(json_object_get(root, "issued"))) {
		missing = "issued (an array)";
	}
	if (missing != NULL) {
		snprintf(why, sizeof why, "member '%s' is missing or invalid", missing);
		goto bad;
	}
	if (strcmp(st->highest, st->id) < 0) {
		snprintf(why, sizeof why, "highest_issued_id %s is lower than id %s", st->highest,
			 st->id);
		goto bad;
	}
	for (size_t i = 0; i < json_array_size(st->mx); i++)
		if (!json_is_string(json_array_get(st->mx, i))) {
			snprintf(why, sizeof why, "mx[%zu] is not a string", i);
			goto bad;
		}
	st->max_age = (uint32_t)json_integer_value(max_age);
	return 1;
bad:
	corrupt(cmd, sd, why);
	cli_state_free(st);
	return -1;
}

void
cli_state_free(struct cli_state *st)
{
	json_decref(st->root);
	memset(st, 0, sizeof *st);
}

static char *
base64(const void *data, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = data;
	char *out = malloc((len + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

/* Stores the raw policy as "policy", or as "policy_base64" when the bytes
 * are not UTF-8 (comments and ignored duplicate fields may hold any byte). */
static bool
set_raw(json_t *doc, const void *raw, size_t raw_len)
{
	json_object_del(doc, "policy");
	json_object_del(doc, "policy_base64");
	json_t *s = json_stringn(raw, raw_len);
	if (s != NULL)
		return json_object_set_new(doc, "policy", s) == 0;
	char *b = base64(raw, raw_len);
	bool ok = b != NULL && json_object_set_new(doc, "policy_base64", json_string(b)) == 0;
	free(b);
	return ok;
}

bool
cli_state_same_bytes(const struct cli_state *st, const void *raw, size_t raw_len)
{
	json_t *s = json_object_get(st->root, "policy");
	if (json_is_string(s))
		return json_string_length(s) == raw_len &&
		       memcmp(json_string_value(s), raw, raw_len) == 0;
	const char *b = json_string_value(json_object_get(st->root, "policy_base64"));
	char *mine = b != NULL ? base64(raw, raw_len) : NULL;
	bool same = mine != NULL && strcmp(mine, b) == 0;
	free(mine);
	return same;
}

json_t *
cli_state_new_id(const struct cli_state *prev, const char *domain, const char *id,
		 int64_t now, const struct sts_policy *p, const char *canonical,
		 const void *raw, size_t raw_len)
{
	char at[21];
	if (!cli_time_iso(now, at))
		return NULL;
	json_t *mx = json_array();
	json_t *issued = json_array();
	json_t *doc = json_object();
	if (mx == NULL || issued == NULL || doc == NULL)
		goto fail;
	for (size_t i = 0; i < p->n_mx; i++)
		if (json_array_append_new(mx, json_string(p->mx[i])) != 0)
			goto fail;
	json_t *old = prev->root != NULL ? json_object_get(prev->root, "issued") : NULL;
	size_t n_old = json_array_size(old);
	/* Keep the newest entries; highest_issued_id alone guarantees growth. */
	size_t skip = n_old + 1 > CLI_STATE_HISTORY_MAX ? n_old + 1 - CLI_STATE_HISTORY_MAX : 0;
	for (size_t i = skip; i < n_old; i++)
		if (json_array_append(issued, json_array_get(old, i)) != 0)
			goto fail;
	if (json_array_append_new(issued, json_pack("{s:s, s:s, s:s, s:I}", "id", id,
			"published_at", at, "mode", sts_mode_name(p->mode),
			"max_age", (json_int_t)p->max_age)) != 0)
		goto fail;
	int rc = 0;
	rc |= json_object_set_new(doc, "format", json_integer(CLI_STATE_FORMAT));
	rc |= json_object_set_new(doc, "domain", json_string(domain));
	rc |= json_object_set_new(doc, "id", json_string(id));
	rc |= json_object_set_new(doc, "published_at", json_string(at));
	rc |= json_object_set_new(doc, "highest_issued_id", json_string(id));
	rc |= json_object_set_new(doc, "mode", json_string(sts_mode_name(p->mode)));
	rc |= json_object_set_new(doc, "max_age", json_integer((json_int_t)p->max_age));
	rc |= json_object_set(doc, "mx", mx);
	rc |= json_object_set_new(doc, "canonical", json_string(canonical));
	if (rc != 0 || !set_raw(doc, raw, raw_len))
		goto fail;
	if (json_object_set(doc, "issued", issued) != 0)
		goto fail;
	json_decref(mx);
	json_decref(issued);
	return doc;
fail:
	json_decref(mx);
	json_decref(issued);
	json_decref(doc);
	return NULL;
}

json_t *
cli_state_new_bytes(const struct cli_state *prev, int64_t now, const void *raw, size_t raw_len)
{
	char at[21];
	json_t *doc = json_deep_copy(prev->root);
	if (doc == NULL || !cli_time_iso(now, at) || !set_raw(doc, raw, raw_len) ||
	    json_object_set_new(doc, "updated_at", json_string(at)) != 0) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

bool
cli_state_save(const char *cmd, const struct cli_state_dir *sd, json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2));
	if (text == NULL) {
		fprintf(stderr, "mta-sts %s: cannot serialise the state\n", cmd);
		return false;
	}
	size_t n = strlen(text);
	/* One trailing newline, as text files have. */
	char *buf = realloc(text, n + 2);
	if (buf == NULL) {
		free(text);
		fprintf(stderr, "mta-sts %s: out of memory\n", cmd);
		return false;
	}
	buf[n] = '\n';
	buf[n + 1] = '\0';
	bool ok = cli_write_atomic(sd->file, buf, n + 1, false);
	if (!ok)
		fprintf(stderr, "mta-sts %s: cannot write %s: %s\n", cmd, sd->file, strerror(errno));
	free(buf);
	return ok;
}
