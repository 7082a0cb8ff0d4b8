/* tap.c: see tap.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

unsigned tap_n, tap_failed;

void
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
