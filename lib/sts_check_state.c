/* sts_check_state.c: what `check --state DIR` remembers per domain for the
 * id discipline (rule 5): the id, the canonical policy, when it was seen,
 * its max_age, and whether the id first appeared with the previous body.
 * A small line format (no JSON dependency in the library), written
 * atomically; an unreadable file is treated as absent and replaced. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mtasts/status.h>

#include "sts_check_state.h"

void
sts_check_state_clear(struct sts_check_state *s)
{
	free(s->canonical);
	memset(s, 0, sizeof *s);
}

static void
path_of(const char *dir, const char *domain, char *out, size_t n)
{
	snprintf(out, n, "%s/%s.state", dir, domain);
}

int
sts_check_state_load(const char *dir, const char *domain, struct sts_check_state *s)
{
	memset(s, 0, sizeof *s);
	char path[4096];
	path_of(dir, domain, path, sizeof path);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return errno == ENOENT ? STS_ENOTFOUND : STS_EIO;
	char line[256];
	long long seen = 0, max_age = 0, len = -1;
	int flag = 0;
	int ok = fgets(line, sizeof line, fp) != NULL && strcmp(line, "mtasts-check-state 1\n") == 0 &&
		 fscanf(fp, "id %32s\nseen_at %lld\nmax_age %lld\nid_with_old_body %d\ncanonical %lld\n",
			s->id, &seen, &max_age, &flag, &len) == 5 &&
		 len >= 0 && len <= 1 << 20;
	if (ok) {
		s->canonical = malloc((size_t)len + 1);
		ok = s->canonical != NULL && fread(s->canonical, 1, (size_t)len, fp) == (size_t)len;
		if (ok)
			s->canonical[len] = '\0';
	}
	fclose(fp);
	if (!ok) {
		sts_check_state_clear(s);
		return STS_ESTATE;
	}
	s->seen_at = seen;
	s->max_age = max_age < 0 ? 0 : (uint32_t)max_age;
	s->id_with_old_body = flag != 0;
	return STS_OK;
}

int
sts_check_state_save(const char *dir, const char *domain, const struct sts_check_state *s)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return STS_EIO;
	char path[4096], tmp[4200];
	path_of(dir, domain, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	FILE *fp = fopen(tmp, "w");
	if (fp == NULL)
		return STS_EIO;
	size_t clen = s->canonical != NULL ? strlen(s->canonical) : 0;
	fprintf(fp, "mtasts-check-state 1\nid %s\nseen_at %lld\nmax_age %u\nid_with_old_body %d\n"
		"canonical %zu\n", s->id, (long long)s->seen_at, s->max_age, s->id_with_old_body ? 1 : 0,
		clen);
	if (clen > 0)
		fwrite(s->canonical, 1, clen, fp);
	bool ok = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	ok = fclose(fp) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return STS_EIO;
	}
	return STS_OK;
}
