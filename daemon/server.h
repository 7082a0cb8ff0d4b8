/* server.h: the socketmap server of mta-stsd on a libuv loop.
 *
 * stsd_server_new binds the listener (TCP host:port or a UNIX socket) and
 * prepares DNS and HTTPS; it runs before the privilege drop.
 * stsd_server_start opens the policy cache and the engine (after the drop,
 * so that the cache file belongs to the daemon's user) and installs the
 * signal handlers. stsd_server_run serves until SIGTERM/SIGINT and returns
 * the exit status.
 *
 * Request path: every answer the engine gives for a domain is remembered
 * in a small in-memory map (domain -> status, policy, time; at most
 * cache.cache_size entries, the least recently used one dropped when full).
 * A domain in the map is answered from it at once, without waiting for the
 * network; when the entry is older than cache_grace a background engine
 * lookup refreshes it (one per domain at a time). A domain not in the map
 * is first asked of the policy cache (any backend: an earlier run, or
 * another daemon sharing Redis or PostgreSQL): an unexpired policy there
 * answers the waiting requests as soon as the cache replies and is
 * refreshed in the background the same way. An entry whose policy has
 * expired is not answered from. Refresh failures (TEMPFAIL) keep the
 * previous answer. A domain in neither waits for the engine at most its
 * zone's timeout; then NOTFOUND (TEMP with temp_on_failure). Lookups of one
 * domain share one cache probe and one engine lookup.
 */
#ifndef STSD_SERVER_H
#define STSD_SERVER_H

#include <stddef.h>

#include <mtasts/log.h>

#include "config.h"

#define STSD_MAX_PIPELINE 1000u        /* unanswered requests per connection; more
					* and the connection is not read until half
					* of them are answered */

struct stsd_server;

/* cfg and log must outlive the server. Returns 0 or -1 with a message. */
int stsd_server_new(const struct stsd_config *cfg, const struct sts_logger *log,
		    struct stsd_server **out, char *err, size_t errsz);
/* fn runs on SIGHUP. */
void stsd_server_on_hup(struct stsd_server *s, void (*fn)(void *ctx), void *ctx);
int stsd_server_start(struct stsd_server *s, char *err, size_t errsz);
/* Applies a new configuration (SIGHUP): zones (how long a request waits,
 * strict_testing, require_sni, tlsrpt, temp_on_failure), cache_grace,
 * shutdown_timeout, idle_timeout and max_connections (for new
 * connections), the answer map's size, log_level, the metrics address and
 * the proactive refresh (restarted only when its settings changed) take
 * effect at once; the in-memory answers, the cache and open connections
 * stay. What needs a restart is logged: the listener (host, port, path,
 * mode, reuse_port, socket owner and group), the cache backend and its
 * options, user and group, resolver, ca_file, default_zone.timeout as the
 * DNS and HTTPS timeout, negative_ttl, backoff, pidfile.
 * cfg must outlive the server or the next reload; the previous one may be
 * freed when this returns. Returns 0, or -1 with a message (a metrics
 * listener that could not be bound; everything else is applied). */
int stsd_server_reload(struct stsd_server *s, const struct stsd_config *cfg, char *err,
		       size_t errsz);
/* Serves until SIGTERM or SIGINT, then drains within shutdown_timeout.
 * Returns 0. */
int stsd_server_run(struct stsd_server *s);
/* Closes everything, removes the UNIX socket file; *s becomes NULL. */
void stsd_server_free(struct stsd_server **s);

#endif
