/* sd.h: the bits of libsystemd mta-stsd uses (sd_notify, socket
 * activation), loaded with dlopen only when systemd asked for them
 * (NOTIFY_SOCKET or LISTEN_FDS in the environment): outside systemd the
 * library and its dependencies are never mapped. */
#ifndef STSD_SD_H
#define STSD_SD_H

#include <stddef.h>

#define STSD_LISTEN_FDS_START 3

/* sd_listen_fds(1): the number of sockets passed, 0 when none; < 0 when
 * systemd passed some but libsystemd could not be loaded (err says why). */
int stsd_sd_listen_fds(char *err, size_t errsz);
/* sd_is_socket_unix / sd_is_socket_inet for a listening stream socket:
 * 1 yes, 0 no. */
int stsd_sd_is_unix_listener(int fd);
int stsd_sd_is_inet_listener(int fd);
/* sd_notify(0, state) when NOTIFY_SOCKET is set; quietly nothing otherwise. */
void stsd_sd_notify(const char *state);
void stsd_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
