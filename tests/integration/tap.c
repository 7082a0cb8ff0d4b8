/* tap.c: see tap.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

unsigned tap_n, tap_failed;

bool
ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	printf("%sok %u - ", cond ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

void
diag_file(const char *label, const char *path, int max_lines)
{
	FILE *fp = fopen(path, "r");
	char line[512];
	int n = 0;
	if (fp == NULL)
		return;
	while (fgets(line, sizeof line, fp) != NULL && n++ < max_lines)
		printf("# %s: %s%s", label, line, strchr(line, '\n') ? "" : "\n");
	fclose(fp);
	fflush(stdout);
}

void
bail(const char *fmt, ...)
{
	va_list ap;
	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

void
diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Absolute path of an executable in $PATH or the sbin directories (a
 * non-root PATH often lacks /usr/sbin), or NULL. Static buffer. */
const char *
find_tool(const char *name)
{
	static char found[512];
	const char *path = getenv("PATH");
	char dirs[2048];
	snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin:/usr/local/sbin", path ? path : "/usr/bin");
	for (char *d = dirs, *end; d != NULL; d = end != NULL ? end + 1 : NULL) {
		end = strchr(d, ':');
		if (end != NULL)
			*end = '\0';
		if (*d == '\0')
			continue;
		snprintf(found, sizeof found, "%s/%s", d, name);
		if (access(found, X_OK) == 0)
			return found;
	}
	return NULL;
}
