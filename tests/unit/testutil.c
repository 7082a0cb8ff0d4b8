/* testutil.c: see testutil.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

char *
tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "Bail out! cannot open test data %s\n", path);
		printf("Bail out! cannot open test data %s\n", path);
		exit(1);
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	size_t r;
	while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

const char *
tu_src_path(const char *rel)
{
	static char path[4096];
	const char *root = getenv("MTASTS_SOURCE_ROOT");
	snprintf(path, sizeof path, "%s/%s", root != NULL ? root : "..", rel);
	return path;
}

const char *
tu_shared_path(const char *rel)
{
	static char path[4096];
	const char *shared = getenv("MTASTS_SHARED");
	if (shared != NULL) {
		snprintf(path, sizeof path, "%s/%s", shared, rel);
	} else {
		const char *root = getenv("MTASTS_SOURCE_ROOT");
		snprintf(path, sizeof path, "%s/../shared/%s", root != NULL ? root : "..", rel);
	}
	return path;
}

size_t
tu_split_tabs(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *p = line;
	while (n < max) {
		fields[n++] = p;
		char *tab = strchr(p, '\t');
		if (tab == NULL)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	return n;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

char *
tu_unescape(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *out = malloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\' || i + 1 >= n) {
			out[o++] = s[i];
			continue;
		}
		char c = s[++i];
		if (c == 'n') out[o++] = '\n';
		else if (c == 'r') out[o++] = '\r';
		else if (c == 't') out[o++] = '\t';
		else if (c == '\\') out[o++] = '\\';
		else if (c == 'x' && i + 2 < n + 0 + 1 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			out[o++] = '\\';
			out[o++] = c;
		}
	}
	out[o] = '\0';
	*len = o;
	return out;
}

static void **kept;
static size_t n_kept, cap_kept;

void *
tu_keep(void *p)
{
	if (n_kept == cap_kept) {
		cap_kept = cap_kept ? cap_kept * 2 : 256;
		kept = realloc(kept, cap_kept * sizeof *kept);
	}
	kept[n_kept++] = p;
	return p;
}

int
tu_run(const char *group, struct CMUnitTest *tests, size_t n)
{
	int rc = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
	for (size_t i = 0; i < n_kept; i++)
		free(kept[i]);
	free(kept);
	free(tests);
	return rc;
}
