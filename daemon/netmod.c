/* netmod.c: loads mtasts-net.so on first use (see netmod.h). */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netmod.h"

#ifndef STSD_NETMOD_PATH
#define STSD_NETMOD_PATH "/usr/local/lib/mtasts/" STS_NETMOD_FILE
#endif

static const struct sts_netmod *loaded;
static char failure[1024];

static void *
try_open(const char *path, char *why, size_t whysz)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		size_t used = strlen(why);
		snprintf(why + used, whysz - used, "%s%s", used ? "; " : "", e ? e : path);
	}
	return h;
}

bool
stsd_netmod_find(char *path, size_t pathsz)
{
	const char *env = getenv("MTASTS_NETMOD");
	if (env != NULL && env[0] != '\0') {
		snprintf(path, pathsz, "%s", env);
		return access(path, R_OK) == 0;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(path, pathsz, "%s/../lib/%s", exe, STS_NETMOD_FILE);
			if (access(path, R_OK) == 0)
				return true;
		}
	}
	snprintf(path, pathsz, "%s", STSD_NETMOD_PATH);
	return access(path, R_OK) == 0;
}

const struct sts_netmod *
stsd_netmod(char *err, size_t errsz)
{
	if (loaded != NULL)
		return loaded;
	if (failure[0] != '\0') {
		snprintf(err, errsz, "%s", failure);
		return NULL;
	}
	char why[900] = "", path[PATH_MAX + 32];
	(void)stsd_netmod_find(path, sizeof path);
	void *h = try_open(path, why, sizeof why);
	const struct sts_netmod *m = NULL;
	if (h != NULL) {
		m = dlsym(h, STS_NETMOD_SYMBOL);
		if (m == NULL)
			snprintf(why, sizeof why, "%s has no %s: not an mtasts network module",
				 path, STS_NETMOD_SYMBOL);
		else if (m->version != STS_NETMOD_VERSION || m->size != sizeof *m) {
			snprintf(why, sizeof why, "%s is version %u, mta-stsd needs %u: install the"
				 " module of the same build", path, m->version,
				 STS_NETMOD_VERSION);
			m = NULL;
		}
	}
	if (m == NULL) {
		snprintf(failure, sizeof failure, "cannot load the network module (HTTPS fetches,"
			 " Redis, PostgreSQL): %s; reinstall mtasts or set MTASTS_NETMOD to the"
			 " path of %s", why, STS_NETMOD_FILE);
		snprintf(err, errsz, "%s", failure);
		return NULL;
	}
	loaded = m;
	return m;
}
