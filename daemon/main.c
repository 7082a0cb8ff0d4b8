/* main.c: mta-stsd, the Postfix socketmap daemon (MTA-STS policies for
 * smtp_tls_policy_maps). Command line, logging, privilege drop and the
 * libuv loop; the socketmap server itself is in server.c.
 *
 * Flags follow postfix-mta-sts-resolver's mta-sts-daemon: -c/--config,
 * -v/--verbosity, -l/--logfile, -u/--user, -g/--group, -p/--pidfile,
 * --disable-uvloop (accepted, ignored); plus --check-config, --help and
 * --version. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mtasts/cache.h>
#include <mtasts/status.h>

#include "config.h"
#include "netmod.h"
#include "server.h"

#ifndef STSD_VERSION
#define STSD_VERSION "0.0.0"
#endif

/* ------------------------------------------------------------------------
 * Logging: one line per message to the log file or standard error. */

static FILE *log_fp;
static char *log_path;

static void
log_line(void *ctx, enum sts_log_level level, const char *msg)
{
	(void)ctx;
	FILE *fp = log_fp != NULL ? log_fp : stderr;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[32];
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(fp, "%s.%03ldZ mta-stsd[%ld]: %s: %s\n", when, ts.tv_nsec / 1000000L,
		(long)getpid(), sts_log_level_name(level), msg);
	fflush(fp);
}

/* Opens (or reopens, on SIGHUP) the log file; keeps the old one on failure. */
static int
log_reopen(void)
{
	if (log_path == NULL)
		return 0;
	FILE *fp = fopen(log_path, "a");
	if (fp == NULL)
		return -1;
	if (log_fp != NULL)
		fclose(log_fp);
	log_fp = fp;
	return 0;
}

/* ------------------------------------------------------------------------
 * SIGHUP: reopen the log, read the configuration again and apply it. A file
 * with errors changes nothing (each error is logged); the running
 * configuration stays. */

struct reload_ctx {
	struct sts_logger *lg;
	struct stsd_server *srv;
	struct stsd_config *cfg;      /* in force; replaced by a reload */
	const char *path;             /* NULL: defaults, no file to read */
	bool level_from_flag;         /* -v given: it wins over log_level */
};

static void
on_hup(void *ctx)
{
	struct reload_ctx *r = ctx;
	if (log_reopen() != 0)
		sts_log(r->lg, STS_LOG_ERROR, "SIGHUP: cannot reopen log file %s: %s", log_path,
			strerror(errno));
	if (r->path == NULL) {
		sts_log(r->lg, STS_LOG_INFO, "SIGHUP: log reopened; running on built-in defaults,"
			" no configuration file to read");
		return;
	}
	struct stsd_config *next = calloc(1, sizeof *next);
	struct sts_diags *d = malloc(sizeof *d);
	if (next == NULL || d == NULL) {
		free(next);
		free(d);
		sts_log(r->lg, STS_LOG_ERROR, "SIGHUP: out of memory: configuration not reloaded");
		return;
	}
	sts_diags_init(d);
	int rc = stsd_config_load(r->path, next, d);
	for (size_t i = 0; i < d->n; i++) {
		const struct sts_diag *g = &d->items[i];
		sts_log(r->lg, g->severity == STS_SEV_ERROR ? STS_LOG_ERROR : STS_LOG_WARNING,
			"%s:%u:%u: %s [%s]", r->path, g->line, g->column, g->message, g->code);
	}
	free(d);
	if (rc == STS_ENOTFOUND) {
		sts_log(r->lg, STS_LOG_ERROR, "SIGHUP: %s is gone: keeping the running"
			" configuration", r->path);
		stsd_config_free(next);
		free(next);
		return;
	}
	if (rc != STS_OK) {
		sts_log(r->lg, STS_LOG_ERROR, "SIGHUP: %s has errors: keeping the running"
			" configuration; fix them and send SIGHUP again (mta-stsd --check-config"
			" -c %s)", r->path, r->path);
		stsd_config_free(next);
		free(next);
		return;
	}
	char err[512];
	if (stsd_server_reload(r->srv, next, err, sizeof err) != 0)
		sts_log(r->lg, STS_LOG_ERROR, "SIGHUP: %s", err);
	if (!r->level_from_flag)
		r->lg->max = next->log_level;
	stsd_config_free(r->cfg);
	free(r->cfg);
	r->cfg = next;
}

/* ------------------------------------------------------------------------ */

/* What the Redis or PostgreSQL backend would refuse at start, said now
 * (also by --check-config), on the URL the server would give it. */
static bool
check_cache_target(const struct stsd_config *c, const char *file)
{
	char err[512], url[4096];
	int rc = 0;
	if (c->cache.type == STSD_CACHE_REDIS && c->cache.url != NULL) {
		char unused[512];
		unsigned timeout_ms = 0;
		stsd_redis_target(c->cache.url, url, sizeof url, &timeout_ms, unused, sizeof unused);
		const struct sts_netmod *m = stsd_netmod(err, sizeof err);
		rc = m == NULL ? -1 : m->redis_check_url(url, err, sizeof err);
	} else if (c->cache.type == STSD_CACHE_POSTGRES) {
		const struct sts_netmod *m = stsd_netmod(err, sizeof err);
		rc = m == NULL ? -1 : m->postgres_check_dsn(c->cache.dsn != NULL ? c->cache.dsn : "",
							    err, sizeof err);
	}
	if (rc == 0)
		return true;
	fprintf(stderr, "%s: error: cache.options.%s: %s [config.cache.target]\n", file,
		c->cache.type == STSD_CACHE_REDIS ? "url" : "dsn", err);
	return false;
}

static void
config_release(struct stsd_config *c)
{
	stsd_config_free(c);
	free(c);
}

/* Built-in defaults keep the cache in /var/lib/mta-stsd, which only root
 * can create: another user (a trial run, `make run`) gets its own state
 * directory under $XDG_STATE_HOME (or ~/.local/state) instead. */
static int
user_state_dir(struct stsd_config *c)
{
	if (geteuid() == 0)
		return 0;
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[PATH_MAX];
	if (xdg != NULL && xdg[0] == '/')
		snprintf(dir, sizeof dir, "%s/mta-stsd", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(dir, sizeof dir, "%s/.local/state/mta-stsd", home);
	else
		return 0;
	char file[PATH_MAX + 16];
	snprintf(file, sizeof file, "%s/%s", dir, STSD_SQLITE_FILE);
	char *d = strdup(dir), *f = strdup(file);
	if (d == NULL || f == NULL) {
		free(d);
		free(f);
		return -1;
	}
	free(c->state_dir);
	c->state_dir = d;
	free(c->cache.filename);
	c->cache.filename = f;
	/* ~/.local/state may not exist yet: make the parents (the last one is
	 * made with the daemon's usual mode below). */
	for (char *p = strchr(d + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		(void)mkdir(d, 0700);
		*p = '/';
	}
	return 0;
}

/* With no configuration file, say what to add to Postfix. */
static void
print_postfix_hint(const struct stsd_config *c)
{
	if (c->path != NULL)
		printf("mta-stsd: add to Postfix's main.cf:\n"
		       "  smtp_tls_policy_maps = socketmap:unix:%s:postfix\n", c->path);
	else
		printf("mta-stsd: add to Postfix's main.cf:\n"
		       "  smtp_tls_policy_maps = socketmap:inet:%s:%u:postfix\n", c->host,
		       (unsigned)c->port);
	printf("mta-stsd: running on built-in defaults; policy cache %s\n",
	       c->cache.filename != NULL ? c->cache.filename : "in memory");
	fflush(stdout);
}

static void
usage(FILE *fp)
{
	fprintf(fp,
		"usage: mta-stsd [-c FILE] [-v LEVEL] [-l FILE] [-u USER] [-g GROUP] [-p FILE]\n"
		"                [--disable-uvloop] [--check-config] [--help] [--version]\n"
		"\n"
		"Postfix socketmap daemon answering smtp_tls_policy_maps lookups with\n"
		"MTA-STS policies (RFC 8461).\n"
		"\n"
		"  -c, --config FILE     configuration (default " STSD_CONFIG_PATH ";\n"
		"                        built-in defaults when the default file is missing)\n"
		"  -v, --verbosity LEVEL debug, info, warn, error or fatal\n"
		"  -l, --logfile FILE    log to FILE instead of standard error (SIGHUP reopens it)\n"
		"  -u, --user USER       drop privileges to USER after binding\n"
		"  -g, --group GROUP     drop privileges to GROUP after binding\n"
		"  -p, --pidfile FILE    write the process id to FILE\n"
		"      --disable-uvloop  accepted for compatibility, ignored\n"
		"      --check-config    check the configuration and exit (0 fine, 1 errors)\n"
		"      --no-config       ignore " STSD_CONFIG_PATH " and use the built-in defaults\n"
		"      --help            this text\n"
		"      --version         print the version\n");
}

static int
parse_level(const char *s, enum sts_log_level *out)
{
	static const struct { const char *name; enum sts_log_level level; } levels[] = {
		{ "debug", STS_LOG_DEBUG }, { "info", STS_LOG_INFO },
		{ "warn", STS_LOG_WARNING }, { "warning", STS_LOG_WARNING },
		{ "error", STS_LOG_ERROR }, { "fatal", STS_LOG_ERROR },
	};
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		if (strcasecmp(s, levels[i].name) == 0) {
			*out = levels[i].level;
			return 0;
		}
	}
	return -1;
}

static void
print_diags(const struct sts_diags *d, const char *file)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct sts_diag *g = &d->items[i];
		fprintf(stderr, "%s:%u:%u: %s: %s [%s]\n", file, g->line, g->column,
			sts_severity_name(g->severity), g->message, g->code);
	}
	if (d->n_dropped > 0)
		fprintf(stderr, "%s: %zu more diagnostics not shown\n", file, d->n_dropped);
}

/* Drops to user/group (either may be NULL). Returns 0 or -1 with a message. */
static int
drop_privileges(const char *user, const char *group, char *err, size_t errsz)
{
	uid_t uid = 0;
	gid_t gid = 0;
	bool have_uid = false, have_gid = false;
	if (user != NULL) {
		struct passwd *pw = getpwnam(user);
		if (pw == NULL) {
			snprintf(err, errsz, "unknown user '%s'", user);
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		have_uid = have_gid = true;
	}
	if (group != NULL) {
		struct group *gr = getgrnam(group);
		if (gr == NULL) {
			snprintf(err, errsz, "unknown group '%s'", group);
			return -1;
		}
		gid = gr->gr_gid;
		have_gid = true;
	}
	/* Already that user and group (a test, or systemd's User=): nothing to
	 * drop, and without root setgroups would fail. */
	if (geteuid() != 0 && (!have_uid || uid == geteuid()) && (!have_gid || gid == getegid()))
		return 0;
	if (have_gid) {
		if (setgroups(1, &gid) != 0) {
			snprintf(err, errsz, "setgroups(%ld): %s", (long)gid, strerror(errno));
			return -1;
		}
		if (setgid(gid) != 0) {
			snprintf(err, errsz, "setgid(%ld): %s", (long)gid, strerror(errno));
			return -1;
		}
	}
	if (have_uid) {
		if (setuid(uid) != 0) {
			snprintf(err, errsz, "setuid(%ld): %s", (long)uid, strerror(errno));
			return -1;
		}
		if (uid != 0 && setuid(0) == 0) {
			snprintf(err, errsz, "could regain root after setuid(%ld)", (long)uid);
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	enum { OPT_DISABLE_UVLOOP = 256, OPT_CHECK, OPT_HELP, OPT_VERSION, OPT_NO_CONFIG };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbosity", required_argument, NULL, 'v' },
		{ "logfile", required_argument, NULL, 'l' },
		{ "user", required_argument, NULL, 'u' },
		{ "group", required_argument, NULL, 'g' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "disable-uvloop", no_argument, NULL, OPT_DISABLE_UVLOOP },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "no-config", no_argument, NULL, OPT_NO_CONFIG },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL, *user = NULL, *group = NULL, *pidfile = NULL;
	bool check = false, have_level = false, no_config = false;
	enum sts_log_level level = STS_LOG_INFO;
	int ch;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:v:l:u:g:p:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'v':
			if (parse_level(optarg, &level) != 0) {
				fprintf(stderr, "mta-stsd: -v '%s': give debug, info, warn, error"
					" or fatal\n", optarg);
				return 2;
			}
			have_level = true;
			break;
		case 'l': log_path = optarg; break;
		case 'u': user = optarg; break;
		case 'g': group = optarg; break;
		case 'p': pidfile = optarg; break;
		case OPT_DISABLE_UVLOOP: break;
		case OPT_CHECK: check = true; break;
		case OPT_NO_CONFIG: no_config = true; break;
		case 'h':
		case OPT_HELP: usage(stdout); return 0;
		case OPT_VERSION: printf("mta-stsd %s\n", STSD_VERSION); return 0;
		case ':':
			fprintf(stderr, "mta-stsd: option '%s' needs a value\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "mta-stsd: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mta-stsd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	/* Configuration: on the heap, a reload replaces it. */
	struct stsd_config *cfgp = calloc(1, sizeof *cfgp);
	struct sts_diags *d = malloc(sizeof *d);
	if (d == NULL || cfgp == NULL) {
		free(d);
		free(cfgp);
		fprintf(stderr, "mta-stsd: out of memory\n");
		return 1;
	}
	sts_diags_init(d);
	if (no_config && config_path != NULL) {
		fprintf(stderr, "mta-stsd: -c and --no-config exclude each other\n");
		free(d);
		free(cfgp);
		return 2;
	}
	const char *path = config_path != NULL ? config_path : STSD_CONFIG_PATH;
	int rc = no_config ? STS_ENOTFOUND : stsd_config_load(path, cfgp, d);
	if (no_config && stsd_config_defaults(cfgp) != STS_OK) {
		fprintf(stderr, "mta-stsd: out of memory\n");
		free(d);
		config_release(cfgp);
		return 1;
	}
	bool have_file = rc != STS_ENOTFOUND;
	if (rc == STS_ENOTFOUND) {
		if (config_path != NULL) {
			fprintf(stderr, "mta-stsd: %s: no such file\n", path);
			config_release(cfgp);
			free(d);
			return 1;
		}
		if (check)
			printf("%s: %s: the built-in defaults apply\n", path,
			       no_config ? "not read (--no-config)" : "not found");
		rc = STS_OK;
		if (user_state_dir(cfgp) != 0) {
			fprintf(stderr, "mta-stsd: out of memory\n");
			free(d);
			config_release(cfgp);
			return 1;
		}
	}
	print_diags(d, path);
	if (rc == STS_OK && !check_cache_target(cfgp, path))
		rc = STS_EINVAL;
	if (check) {
		if (rc == STS_OK)
			printf("%s: configuration OK (%zu warnings)\n", path, d->n_warnings);
		config_release(cfgp);
		free(d);
		return rc == STS_OK ? 0 : 1;
	}
	free(d);
	if (rc != STS_OK) {
		fprintf(stderr, "mta-stsd: %s: configuration has errors, not starting\n", path);
		config_release(cfgp);
		return 1;
	}
	if (!have_level)
		level = cfgp->log_level;
	if (user == NULL)
		user = cfgp->user;
	if (group == NULL)
		group = cfgp->group;
	if (pidfile == NULL)
		pidfile = cfgp->pidfile;
	/* A reload frees the configuration; the pid file is removed at exit. */
	char pidpath[PATH_MAX] = "";
	if (pidfile != NULL) {
		snprintf(pidpath, sizeof pidpath, "%s", pidfile);
		pidfile = pidpath;
	}

	if (log_path != NULL && log_reopen() != 0) {
		fprintf(stderr, "mta-stsd: --logfile %s: %s\n", log_path, strerror(errno));
		config_release(cfgp);
		return 1;
	}
	struct sts_logger lg = { log_line, NULL, level };

	struct stsd_server *srv = NULL;
	char err[512];
	if (stsd_server_new(cfgp, &lg, &srv, err, sizeof err) != 0) {
		sts_log(&lg, STS_LOG_ERROR, "%s", err);
		fprintf(stderr, "mta-stsd: %s\n", err);
		config_release(cfgp);
		if (log_fp != NULL)
			fclose(log_fp);
		return 1;
	}
	struct reload_ctx rctx = { .lg = &lg, .srv = srv, .cfg = cfgp,
				   .path = have_file ? path : NULL, .level_from_flag = have_level };
	stsd_server_on_hup(srv, on_hup, &rctx);
	if (!have_file)
		print_postfix_hint(cfgp);

	if (pidfile != NULL) {
		FILE *pf = fopen(pidfile, "w");
		if (pf == NULL) {
			sts_log(&lg, STS_LOG_ERROR, "pidfile %s: %s", pidfile, strerror(errno));
			goto fail;
		}
		fprintf(pf, "%ld\n", (long)getpid());
		fclose(pf);
	}

	/* The directory of the SQLite cache (the state directory, or the one
	 * of cache.options.filename) is created and given to the daemon's user. */
	if (cfgp->cache.type == STSD_CACHE_SQLITE) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s", cfgp->cache.filename != NULL ? cfgp->cache.filename
			 : cfgp->state_dir != NULL ? cfgp->state_dir : STSD_STATE_DIR);
		if (cfgp->cache.filename != NULL) {
			char *slash = strrchr(dir, '/');
			if (slash == NULL)
				snprintf(dir, sizeof dir, ".");
			else if (slash == dir)
				dir[1] = '\0';
			else
				*slash = '\0';
		}
		struct stat st;
		if (stat(dir, &st) != 0) {
			if (mkdir(dir, 0750) != 0) {
				sts_log(&lg, STS_LOG_ERROR, "cache directory %s: %s", dir,
					strerror(errno));
				goto fail;
			}
			if (user != NULL) {
				struct passwd *pw = getpwnam(user);
				if (pw != NULL && chown(dir, pw->pw_uid, pw->pw_gid) != 0)
					sts_log(&lg, STS_LOG_WARNING, "chown %s: %s", dir,
						strerror(errno));
			}
		}
	}
	if (user != NULL || group != NULL) {
		if (drop_privileges(user, group, err, sizeof err) != 0) {
			sts_log(&lg, STS_LOG_ERROR, "cannot drop privileges: %s", err);
			fprintf(stderr, "mta-stsd: cannot drop privileges: %s\n", err);
			goto fail;
		}
		sts_log(&lg, STS_LOG_INFO, "running as user %s group %s", user ? user : "(same)",
			group ? group : "(user's)");
	}
	if (stsd_server_start(srv, err, sizeof err) != 0) {
		sts_log(&lg, STS_LOG_ERROR, "%s", err);
		fprintf(stderr, "mta-stsd: %s\n", err);
		goto fail;
	}
	rc = stsd_server_run(srv);
	stsd_server_free(&srv);
	if (pidfile != NULL)
		unlink(pidfile);
	config_release(rctx.cfg);
	sts_log(&lg, STS_LOG_INFO, "stopped");
	if (log_fp != NULL)
		fclose(log_fp);
	return rc;
fail:
	stsd_server_free(&srv);
	if (pidfile != NULL)
		unlink(pidfile);
	config_release(rctx.cfg);
	if (log_fp != NULL)
		fclose(log_fp);
	return 1;
}
