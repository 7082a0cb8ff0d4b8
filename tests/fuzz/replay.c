/* replay.c: runs a fuzz target over its corpus without libFuzzer.
 *
 *   fuzz-TARGET PATH...
 *
 * Each PATH is a file or a directory (its regular files, in name order).
 * Every input is fed once to LLVMFuzzerTestOneInput, and the result is TAP:
 * "1..N", then "ok N - corpus/<target>/<name>" per input. A broken invariant
 * aborts the process, so the last "# running" line on stderr names the input
 * that crashed; TAP consumers see a short plan and report failure. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	char *path;    /* for opening */
	char *label;   /* for the TAP line: the last two directory names + file */
};

struct list {
	struct input *v;
	size_t n, cap;
};

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL) {
		perror("replay");
		exit(2);
	}
	return d;
}

/* "a/b/corpus/policy" + "x" -> "corpus/policy/x"; keeps TAP lines short and
 * independent of where the source tree lives. */
static char *
make_label(const char *dir, const char *name)
{
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	size_t start = dl, slashes = 0;
	while (start > 0) {
		if (dir[start - 1] == '/' && ++slashes == 2)
			break;
		start--;
	}
	size_t n = (dl - start) + 1 + strlen(name) + 1;
	char *s = malloc(n);
	if (s == NULL) {
		perror("replay");
		exit(2);
	}
	snprintf(s, n, "%.*s/%s", (int)(dl - start), dir + start, name);
	return s;
}

static void
add(struct list *l, char *path, char *label)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 64;
		struct input *v = realloc(l->v, ncap * sizeof *v);
		if (v == NULL) {
			perror("replay");
			exit(2);
		}
		l->v = v;
		l->cap = ncap;
	}
	l->v[l->n].path = path;
	l->v[l->n].label = label;
	l->n++;
}

static int
collect(struct list *l, const char *arg)
{
	struct stat st;
	if (stat(arg, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", arg, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		add(l, xstrdup(arg), xstrdup(arg));
		return 0;
	}
	struct dirent **names;
	int n = scandir(arg, &names, NULL, alphasort);   /* sorted: stable test numbers */
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", arg, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		size_t pl = strlen(arg) + 1 + strlen(name) + 1;
		char *path = malloc(pl);
		if (path == NULL) {
			perror("replay");
			exit(2);
		}
		snprintf(path, pl, "%s/%s", arg, name);
		if (name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			add(l, path, make_label(arg, name));
		else
			free(path);
		free(names[i]);
	}
	free(names);
	return 0;
}

/* Reads a whole file into an allocation of exactly its size, so that a read
 * past the end is a real heap overflow for ASan or valgrind. */
static uint8_t *
slurp(const char *path, size_t *size)
{
	FILE *fp = fopen(path, "rb");
	if (fp == NULL)
		return NULL;
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	while (buf != NULL) {
		n += fread(buf + n, 1, cap - n, fp);
		if (n < cap)
			break;
		uint8_t *nb = realloc(buf, cap * 2);
		if (nb == NULL) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	int bad = ferror(fp);
	fclose(fp);
	if (buf == NULL || bad) {
		free(buf);
		return NULL;
	}
	uint8_t *exact = malloc(n ? n : 1);
	if (exact != NULL && n > 0)
		memcpy(exact, buf, n);
	free(buf);
	*size = n;
	return exact;
}

int
main(int argc, char **argv)
{
	struct list l = { 0 };
	int status = 0;
	for (int i = 1; i < argc; i++)
		if (collect(&l, argv[i]) != 0)
			status = 1;
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
		return 2;
	}
	printf("1..%zu\n", l.n);
	fflush(stdout);
	for (size_t i = 0; i < l.n; i++) {
		size_t size = 0;
		uint8_t *data = slurp(l.v[i].path, &size);
		if (data == NULL) {
			printf("not ok %zu - %s # cannot read: %s\n", i + 1, l.v[i].label,
			       strerror(errno));
			status = 1;
		} else {
			fprintf(stderr, "# running %s\n", l.v[i].path);
			LLVMFuzzerTestOneInput(data, size);
			printf("ok %zu - %s\n", i + 1, l.v[i].label);
		}
		fflush(stdout);
		free(data);
		free(l.v[i].path);
		free(l.v[i].label);
	}
	free(l.v);
	return status;
}
