/* sd.c: libsystemd on demand (see sd.h). */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "sd.h"

static struct {
	bool tried;
	int (*notify)(int, const char *);
	int (*listen_fds)(int);
	int (*is_unix)(int, int, int, const char *, size_t);
	int (*is_inet)(int, int, int, int, uint16_t);
	char error[256];
} sd;

static bool
sd_load(void)
{
	if (sd.tried)
		return sd.notify != NULL;
	sd.tried = true;
	void *h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		snprintf(sd.error, sizeof sd.error, "libsystemd.so.0: %s", e ? e : "cannot load");
		return false;
	}
	*(void **)&sd.notify = dlsym(h, "sd_notify");
	*(void **)&sd.listen_fds = dlsym(h, "sd_listen_fds");
	*(void **)&sd.is_unix = dlsym(h, "sd_is_socket_unix");
	*(void **)&sd.is_inet = dlsym(h, "sd_is_socket_inet");
	if (sd.notify == NULL || sd.listen_fds == NULL || sd.is_unix == NULL ||
	    sd.is_inet == NULL) {
		snprintf(sd.error, sizeof sd.error, "libsystemd.so.0 lacks sd_notify or"
			 " sd_listen_fds");
		sd.notify = NULL;
		return false;
	}
	return true;
}

int
stsd_sd_listen_fds(char *err, size_t errsz)
{
	if (getenv("LISTEN_FDS") == NULL)
		return 0;
	if (!sd_load()) {
		snprintf(err, errsz, "systemd passed sockets but %s", sd.error);
		return -1;
	}
	return sd.listen_fds(1);
}

int
stsd_sd_is_unix_listener(int fd)
{
	return sd_load() && sd.is_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0;
}

int
stsd_sd_is_inet_listener(int fd)
{
	return sd_load() && sd.is_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0;
}

void
stsd_sd_notify(const char *state)
{
	if (getenv("NOTIFY_SOCKET") == NULL || !sd_load())
		return;
	(void)sd.notify(0, state);
}

void
stsd_sd_notifyf(const char *fmt, ...)
{
	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	stsd_sd_notify(buf);
}
