/* tap.c: see tap.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

unsigned tap_n, tap_failed;
static int guard_fd = -1;   /* write end of the guardian's pipe */

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

void
tap_guardian_start(void (*on_orphan)(void))
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		bail("pipe2: %s", strerror(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		bail("fork: %s", strerror(errno));
	if (pid > 0) {
		close(p[0]);
		guard_fd = p[1];
		return;
	}
	close(p[1]);
	setsid();
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {   /* let meson see EOF on the test's output */
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	char c = 0;
	ssize_t n;
	while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR) {
	}
	if (n != 1)
		on_orphan();
	_exit(0);
}

void
tap_guardian_release(void)
{
	if (guard_fd < 0)
		return;
	char c = 'd';
	if (write(guard_fd, &c, 1) != 1)
		fprintf(stderr, "cannot reach the test's guardian process\n");
	close(guard_fd);
	guard_fd = -1;
}

int
tap_run(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof cmd)
		bail("command too long");
	fflush(stdout);
	int rc = system(cmd);
	return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}
