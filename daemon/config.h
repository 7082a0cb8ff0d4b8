/* config.h: configuration of mta-stsd, the Postfix socketmap daemon.
 *
 * mta-stsd reads the YAML file of postfix-mta-sts-resolver's mta-sts-daemon
 * (/etc/mta-sts-daemon.yml) with the same keys, defaults and meaning
 * (shared/spec/peer-postfix-mta-sts-resolver.md section 4), plus keys of its
 * own. The file is parsed by libyaml's document API; this module only walks
 * the resulting nodes. It never touches the network or the file system
 * except for stsd_config_load() reading the file.
 *
 * Compatibility decisions (each differs from, or pins down, the peer):
 *
 * - Unknown keys are warnings (the peer ignores them silently), with a
 *   "did you mean" hint or the section the key belongs to.
 * - Duplicate keys: the LAST one wins, as in PyYAML's safe_load, with a
 *   warning at the later occurrence. A repeated section (two `cache:`) is
 *   replaced as a whole, again like PyYAML; it is never merged.
 * - YAML 1.1 merge keys (`<<: *anchor`) work as in PyYAML; explicit keys win
 *   over merged ones and earlier maps of a merge list win over later ones.
 * - Scalars follow PyYAML's YAML 1.1 resolution: yes/no/on/off are booleans;
 *   `0666` is octal; 0x, 0b, `_` separators and 1:30 (sexagesimal) are
 *   integers. A number or boolean in quotes is accepted with a warning (the
 *   peer would see a string: it reads `"false"` as true).
 * - `mode` must be written in octal (0666, 0o666 or '0666'); a plain decimal
 *   such as 666 is an error, because PyYAML reads it as 0o1232.
 * - A key with no value (`port:`) keeps its default, with a warning; an empty
 *   section (`default_zone:` with everything commented out) is the same as
 *   an absent one. The peer crashes on both.
 * - Zones inherit unspecified keys from the built-in defaults, NOT from
 *   default_zone, exactly like the peer.
 * - `reuse_port` is honoured on the TCP listener (SO_REUSEADDR plus
 *   SO_REUSEPORT when true, the default): upstream's systemd "reload" trick
 *   starts a second instance on the same port. It has no effect on a UNIX
 *   socket.
 * - cache.type sqlite without options.filename uses STATE_DIR/cache.db (the
 *   peer crashes). With no file at all, the embedded defaults use the SQLite
 *   cache (stsd_config_defaults); an existing file without `cache:` means the
 *   peer's default, the internal cache.
 * - `backoff` below its minimum of 300 s is raised to 300 with a warning.
 * - Errors never stop the walk: every problem in the file is reported at
 *   once, and the configuration holds the defaults wherever a value was
 *   rejected. A daemon must not start when the parse returns an error.
 */
#ifndef STSD_CONFIG_H
#define STSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mtasts/buf.h>
#include <mtasts/diag.h>
#include <mtasts/log.h>

#define STSD_CONFIG_PATH "/etc/mta-sts-daemon.yml"
#define STSD_CONFIG_MAX (1024 * 1024)      /* bytes a configuration file may have */
#define STSD_STATE_DIR "/var/lib/mta-stsd"
#define STSD_SQLITE_FILE "cache.db"         /* in the state directory */
#define STSD_UNIX_PATH_MAX 107              /* sizeof sun_path - 1 on Linux */
#define STSD_BACKOFF_MIN 300

enum stsd_cache_type {
	STSD_CACHE_INTERNAL = 0,
	STSD_CACHE_SQLITE,
	STSD_CACHE_REDIS,
	STSD_CACHE_REDIS_SENTINEL,
	STSD_CACHE_POSTGRES,
};

/* A host (name or address) and a port. host NULL: not set. */
struct stsd_hostport {
	char *host;
	uint16_t port;
};

/* A DNS server for the resolver key: a numeric address and a port. */
struct stsd_addr {
	int family;                /* AF_INET or AF_INET6 */
	char ip[46];               /* INET6_ADDRSTRLEN; normalised by inet_ntop */
	uint16_t port;             /* 53 when not given */
};

/* An option of a network cache backend the daemon does not interpret
 * itself (redis: passed to the client like redis-py's from_url keywords;
 * postgres: like asyncpg's create_pool keywords). value is the scalar's
 * text; a list or mapping is not kept (warning). */
struct stsd_option {
	char *key;
	char *value;               /* "" for a YAML null */
	bool plain;                /* unquoted: YAML 1.1 types apply (25, 1.0, true, ~);
				    * quoted: always text */
	unsigned line;             /* 1-based line in the file */
};

struct stsd_cache_config {
	enum stsd_cache_type type;                 /* internal */
	uint32_t cache_size;                       /* internal: LRU entries, 10000 */
	char *filename;                            /* sqlite; default STATE_DIR/cache.db */
	uint32_t threads;                          /* sqlite pool size; 0 = one per CPU */
	uint32_t timeout_ms;                       /* sqlite and postgres: 5000 */
	char *url;                                 /* redis (required there) */
	struct stsd_hostport *sentinels;           /* redis_sentinel (required) */
	size_t n_sentinels;
	char *sentinel_master_name;                /* redis_sentinel (required) */
	char *dsn;                                 /* postgres */
	struct stsd_option *options;               /* other options of redis,    */
	size_t n_options;                          /* redis_sentinel, postgres   */
};

struct stsd_proactive {
	bool enabled;                              /* false */
	uint32_t interval_s;                       /* 86400 */
	uint32_t concurrency_limit;                /* 100 */
	double grace_ratio;                        /* 2.0; > 0 */
};

/* Per-zone settings; a zone is chosen by the socketmap name. */
struct stsd_zone {
	char *name;                                /* NULL for default_zone */
	unsigned line;                             /* where it is defined; 0 built in */
	bool strict_testing;                       /* false: testing -> NOTFOUND */
	bool require_sni;                          /* true: append servername=hostname */
	bool tlsrpt;                               /* false: no Postfix >= 3.10 attributes */
	bool temp_on_failure;                      /* false: NOTFOUND like the peer; true:
						    * TEMP when nothing is cached and a
						    * transient failure prevents an answer */
	uint32_t timeout_ms;                       /* 4000: DNS and HTTPS, each */
};

struct stsd_config {
	char *source;                              /* file name given to the parser, or NULL */

	/* Listener (peer keys). path set: UNIX socket, host/port unused. */
	char *host;                                /* "127.0.0.1" */
	uint16_t port;                             /* 8461 */
	char *path;                                /* NULL */
	int mode;                                  /* chmod of the socket; -1 = leave as is */
	bool reuse_port;                           /* true */
	uint32_t shutdown_timeout_ms;              /* 20000 */
	uint32_t cache_grace_ms;                   /* 60000 */

	struct stsd_cache_config cache;
	struct stsd_proactive proactive;
	struct stsd_zone default_zone;
	struct stsd_zone *zones;                   /* sorted by name (strcmp) */
	size_t n_zones;

	/* mta-stsd's own keys */
	struct stsd_addr *resolvers;               /* empty: /etc/resolv.conf */
	size_t n_resolvers;
	char *ca_file;                             /* NULL: OpenSSL's default store */
	char *https_proxy;                         /* policy fetches through it; "none": never;
						    * NULL: $HTTPS_PROXY or $https_proxy,
						    * like the peer */
	char *user, *group;                        /* drop privileges to; NULL: stay */
	char *socket_owner, *socket_group;         /* chown of the UNIX socket; NULL: leave */
	struct stsd_hostport metrics;              /* Prometheus listener; host NULL: off */
	uint32_t negative_ttl_s;                   /* 300; 0 = no negative caching */
	uint32_t backoff_s;                        /* 300, at least 300 */
	uint32_t idle_timeout_ms;                  /* 300000: a connection without requests
						    * is closed */
	uint32_t max_connections;                  /* 1000: more are accepted and closed */
	char *state_dir;                           /* STSD_STATE_DIR */
	char *pidfile;                             /* NULL: none */
	enum sts_log_level log_level;              /* info; the -v option overrides it */
};

/* Fills c with the embedded defaults used when no configuration file exists:
 * 127.0.0.1:8461 and the SQLite cache in the state directory. Returns STS_OK
 * or STS_ENOMEM (c is then still safe to free). Free with stsd_config_free. */
int stsd_config_defaults(struct stsd_config *c);

/* Parses a configuration file's text. filename (may be NULL) is kept in
 * out->source. out is always initialised (free it with stsd_config_free,
 * whatever the result) and holds the peer's defaults for every key that is
 * absent or was rejected. Problems go to d with codes "config.*", 1-based
 * lines and byte columns. Returns STS_OK (warnings possible), STS_EINVAL
 * (at least one error), STS_ETOOBIG (len > STSD_CONFIG_MAX) or STS_ENOMEM. */
int stsd_config_parse(const char *text, size_t len, const char *filename,
		      struct stsd_config *out, struct sts_diags *d);

/* Reads path (at most STSD_CONFIG_MAX bytes) and parses it. When the file
 * does not exist, returns STS_ENOTFOUND with out holding the embedded
 * defaults and nothing added to d: the caller decides whether a missing file
 * is fine (the default path) or an error (an explicit -c). Other read
 * failures: STS_EIO or STS_ETOOBIG with an error in d. */
int stsd_config_load(const char *path, struct stsd_config *out, struct sts_diags *d);

/* Frees everything c owns and zeroes it. Safe on a zeroed struct. */
void stsd_config_free(struct stsd_config *c);

/* The zone for a socketmap name (len bytes, need not be NUL-terminated);
 * an unknown name gives the default zone. Never NULL. */
const struct stsd_zone *stsd_config_zone(const struct stsd_config *c, const char *name,
					 size_t len);

/* Writes the effective configuration as YAML that stsd_config_parse reads
 * back to the same configuration (every key spelt out, zones sorted). */
int stsd_config_write(const struct stsd_config *c, struct sts_buf *out);

const char *stsd_cache_type_name(enum stsd_cache_type t);

/* Seconds (whole or fractional) as milliseconds, from 1 ms to 3600 s; 0
 * when text is not such a number. For pass-through options such as
 * socket_timeout. */
unsigned stsd_seconds_ms(const char *text);

/* The Redis URL and operation timeout the backend gets. The peer hands its
 * URL to redis-py, which also reads parameters from the query string
 * (redis://host/0?socket_timeout=5); hiredis does not, so socket_timeout
 * and db are taken from it here (a db in the path wins; unix:// keeps
 * ?db=N). *timeout_ms holds the value to use when the URL gives none. The
 * names of the other parameters go to unused, comma-separated ("" when
 * none), for the caller to report. */
void stsd_redis_target(const char *url_in, char *url, size_t urlsz, unsigned *timeout_ms,
		       char *unused, size_t unusedsz);

#endif
