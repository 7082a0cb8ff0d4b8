/* config.c: mta-stsd configuration (see config.h for the decisions).
 *
 * libyaml loads the whole document (yaml_parser_load); the walk below only
 * looks at the node kinds, scalar texts and marks. Every section is read
 * through map_view(), which applies PyYAML's rules for merge keys and
 * duplicate keys, so the rest of the file sees one value per key. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include <mtasts/status.h>

#include "config.h"

#define PATH_MAX_LEN 4096          /* longest accepted file path */
#define NAME_MAX_LEN 64            /* user, group and zone names */
#define MERGE_DEPTH_MAX 8          /* nested merge keys (<<) */
#define WORK_MAX 1000000           /* pairs visited per parse; only aliases reach it */
#define CKPT_EVERY 256             /* characters between char->byte checkpoints */

/* ---------------------------------------------------------------- defaults */

static void
zone_defaults(struct stsd_zone *z)
{
	z->strict_testing = false;
	z->require_sni = true;
	z->tlsrpt = false;
	z->temp_on_failure = false;
	z->timeout_ms = 4000;
}

/* The peer's defaults, which a file starts from (section 4). */
static int
peer_defaults(struct stsd_config *c)
{
	memset(c, 0, sizeof *c);
	c->host = strdup("127.0.0.1");
	c->port = 8461;
	c->mode = -1;
	c->reuse_port = true;
	c->shutdown_timeout_ms = 20000;
	c->cache_grace_ms = 60000;
	c->cache.type = STSD_CACHE_INTERNAL;
	c->cache.cache_size = 10000;
	c->cache.threads = 0;
	c->cache.timeout_ms = 5000;
	c->proactive.enabled = false;
	c->proactive.interval_s = 86400;
	c->proactive.concurrency_limit = 100;
	c->proactive.grace_ratio = 2.0;
	zone_defaults(&c->default_zone);
	c->negative_ttl_s = 300;
	c->backoff_s = STSD_BACKOFF_MIN;
	c->idle_timeout_ms = 300000;
	c->max_connections = 1000;
	c->state_dir = strdup(STSD_STATE_DIR);
	c->log_level = STS_LOG_INFO;
	return c->host != NULL && c->state_dir != NULL ? STS_OK : STS_ENOMEM;
}

static char *
join_path(const char *dir, const char *file)
{
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	size_t fl = strlen(file);
	char *s = malloc(dl + 1 + fl + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, dir, dl);
	size_t o = dl;
	if (o == 0 || s[o - 1] != '/')
		s[o++] = '/';
	memcpy(s + o, file, fl + 1);
	return s;
}

int
stsd_config_defaults(struct stsd_config *c)
{
	int rc = peer_defaults(c);
	if (rc != STS_OK)
		return rc;
	c->cache.type = STSD_CACHE_SQLITE;
	c->cache.filename = join_path(c->state_dir, STSD_SQLITE_FILE);
	return c->cache.filename != NULL ? STS_OK : STS_ENOMEM;
}

static void
free_hostports(struct stsd_hostport *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].host);
	free(v);
}

static void
free_cache(struct stsd_cache_config *k)
{
	free(k->filename);
	free(k->url);
	free_hostports(k->sentinels, k->n_sentinels);
	free(k->sentinel_master_name);
	free(k->dsn);
	for (size_t i = 0; i < k->n_options; i++) {
		free(k->options[i].key);
		free(k->options[i].value);
	}
	free(k->options);
	memset(k, 0, sizeof *k);
}

void
stsd_config_free(struct stsd_config *c)
{
	if (c == NULL)
		return;
	free(c->source);
	free(c->host);
	free(c->path);
	free_cache(&c->cache);
	free(c->default_zone.name);
	for (size_t i = 0; i < c->n_zones; i++)
		free(c->zones[i].name);
	free(c->zones);
	free(c->resolvers);
	free(c->ca_file);
	free(c->https_proxy);
	free(c->user);
	free(c->group);
	free(c->socket_owner);
	free(c->socket_group);
	free(c->metrics.host);
	free(c->state_dir);
	free(c->pidfile);
	memset(c, 0, sizeof *c);
}

const char *
stsd_cache_type_name(enum stsd_cache_type t)
{
	switch (t) {
	case STSD_CACHE_INTERNAL: return "internal";
	case STSD_CACHE_SQLITE: return "sqlite";
	case STSD_CACHE_REDIS: return "redis";
	case STSD_CACHE_REDIS_SENTINEL: return "redis_sentinel";
	case STSD_CACHE_POSTGRES: return "postgres";
	}
	return "?";
}

/* -------------------------------------------------------------- key tables */

static const char *const top_keys[] = {
	"host", "port", "path", "mode", "reuse_port", "shutdown_timeout", "cache_grace",
	"cache", "proactive_policy_fetching", "default_zone", "zones",
	"resolver", "ca_file", "user", "group", "socket_owner", "socket_group", "metrics",
	"negative_ttl", "backoff", "state_dir", "pidfile", "log_level", "idle_timeout",
	"max_connections", "https_proxy", NULL,
};
enum {
	T_HOST, T_PORT, T_PATH, T_MODE, T_REUSE_PORT, T_SHUTDOWN_TIMEOUT, T_CACHE_GRACE,
	T_CACHE, T_PROACTIVE, T_DEFAULT_ZONE, T_ZONES,
	T_RESOLVER, T_CA_FILE, T_USER, T_GROUP, T_SOCKET_OWNER, T_SOCKET_GROUP, T_METRICS,
	T_NEGATIVE_TTL, T_BACKOFF, T_STATE_DIR, T_PIDFILE, T_LOG_LEVEL, T_IDLE_TIMEOUT,
	T_MAX_CONNECTIONS, T_HTTPS_PROXY,
};

static const char *const cache_keys[] = { "type", "options", NULL };
enum { C_TYPE, C_OPTIONS };

static const char *const option_keys[] = {
	"cache_size", "filename", "threads", "timeout", "url", "sentinels",
	"sentinel_master_name", "dsn", NULL,
};
enum { O_CACHE_SIZE, O_FILENAME, O_THREADS, O_TIMEOUT, O_URL, O_SENTINELS, O_MASTER, O_DSN };

/* Which options each cache type reads itself (bit per O_*). */
static const unsigned type_options[] = {
	[STSD_CACHE_INTERNAL] = 1u << O_CACHE_SIZE,
	[STSD_CACHE_SQLITE] = 1u << O_FILENAME | 1u << O_THREADS | 1u << O_TIMEOUT,
	[STSD_CACHE_REDIS] = 1u << O_URL,
	[STSD_CACHE_REDIS_SENTINEL] = 1u << O_SENTINELS | 1u << O_MASTER,
	[STSD_CACHE_POSTGRES] = 1u << O_DSN | 1u << O_TIMEOUT,
};

static const char *const cache_types[] = {
	"internal", "sqlite", "redis", "redis_sentinel", "postgres", NULL,
};

static const char *const pf_keys[] = {
	"enabled", "interval", "concurrency_limit", "grace_ratio", NULL,
};
enum { P_ENABLED, P_INTERVAL, P_CONCURRENCY, P_GRACE_RATIO };

static const char *const zone_keys[] = {
	"strict_testing", "timeout", "require_sni", "tlsrpt", "temp_on_failure", NULL,
};
enum { Z_STRICT, Z_TIMEOUT, Z_SNI, Z_TLSRPT, Z_TEMP };

/* For "unknown key" messages: where else a key is valid. */
static const struct {
	const char *where;
	const char *const *keys;
} sections[] = {
	{ "the top level", top_keys },
	{ "cache", cache_keys },
	{ "default_zone or zones.<name>", zone_keys },
	{ "cache.options", option_keys },
	{ "proactive_policy_fetching", pf_keys },
};

/* ---------------------------------------------------------------- context */

struct entry {
	yaml_node_t *k, *v;
	const char *key;        /* the key's text (not NUL-safe: use klen) */
	size_t klen;
	size_t order;           /* position in the flattened list */
	bool merged;            /* came from a merge key */
};

struct ents {
	struct entry *v;
	size_t n, cap;
};

/* Positions of keys needed by checks that span several keys. */
struct seen {
	bool set;
	yaml_mark_t mark;       /* of the key */
};

struct ctx {
	yaml_document_t *doc;
	const unsigned char *text;  /* what libyaml parsed (after a BOM) */
	size_t len;
	size_t bom;                 /* bytes of UTF-8 BOM in front of text */
	bool ascii;
	size_t *ckpt;               /* byte offset of char k * CKPT_EVERY */
	size_t n_ckpt;
	struct stsd_config *c;
	struct sts_diags *d;
	bool oom;
	bool too_complex;           /* the work limit was reported */
	size_t work;
	struct seen host, port, mode, reuse_port, socket_owner, socket_group, cache_type;
};

/* Byte offset (into text) of character index idx, as libyaml counts them. */
static size_t
char_to_byte(struct ctx *x, size_t idx)
{
	if (x->ascii)
		return idx < x->len ? idx : x->len;
	size_t k = idx / CKPT_EVERY;
	if (k >= x->n_ckpt)
		k = x->n_ckpt - 1;
	size_t b = x->ckpt[k];
	size_t ci = k * CKPT_EVERY;
	while (ci < idx && b < x->len) {
		unsigned char ch = x->text[b];
		size_t w = ch < 0x80 ? 1 : ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
		b += w;
		ci++;
	}
	return b < x->len ? b : x->len;
}

static int
build_checkpoints(struct ctx *x)
{
	x->ascii = true;
	for (size_t i = 0; i < x->len; i++)
		if (x->text[i] >= 0x80) {
			x->ascii = false;
			break;
		}
	if (x->ascii)
		return STS_OK;
	x->n_ckpt = x->len / CKPT_EVERY + 1;
	x->ckpt = malloc(x->n_ckpt * sizeof *x->ckpt);
	if (x->ckpt == NULL)
		return STS_ENOMEM;
	size_t b = 0, ci = 0, k = 0;
	x->ckpt[k++] = 0;
	while (k < x->n_ckpt) {
		unsigned char ch = b < x->len ? x->text[b] : 0;
		size_t w = ch < 0x80 ? 1 : ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
		b = b + w < x->len ? b + w : x->len;
		if (++ci % CKPT_EVERY == 0)
			x->ckpt[k++] = b;
	}
	return STS_OK;
}

struct pos {
	size_t offset;
	unsigned line, column;
};

static struct pos byte_pos(struct ctx *x, size_t off);

static struct pos
mark_pos(struct ctx *x, const yaml_mark_t *m)
{
	size_t at = char_to_byte(x, m->index);
	/* at the end of the stream libyaml starts a new line of its own when
	 * the text does not end with one: count from the text instead */
	if (at >= x->len)
		return byte_pos(x, x->len);
	size_t start = m->column <= m->index ? char_to_byte(x, m->index - m->column) : 0;
	struct pos p;
	p.offset = x->bom + at;
	/* the BOM belongs to line 1: columns there count it */
	size_t line_start = m->line == 0 ? 0 : x->bom + start;
	if (line_start > p.offset)
		line_start = p.offset;
	p.line = m->line + 1 > 0xffffffffu ? 0xffffffffu : (unsigned)(m->line + 1);
	p.column = (unsigned)(p.offset - line_start) + 1;
	return p;
}

/* Line and column of a byte offset of text, with libyaml's line breaks
 * (LF, CR, CRLF, NEL, LS, PS); for reader errors, which give bytes. */
static struct pos
byte_pos(struct ctx *x, size_t off)
{
	if (off > x->len)
		off = x->len;
	unsigned line = 1;
	size_t start = 0;
	for (size_t i = 0; i < off;) {
		const unsigned char *s = x->text + i;
		size_t w = 0;
		if (s[0] == '\r')
			w = i + 1 < x->len && s[1] == '\n' ? 2 : 1;
		else if (s[0] == '\n')
			w = 1;
		else if (s[0] == 0xc2 && i + 1 < x->len && s[1] == 0x85)
			w = 2;
		else if (s[0] == 0xe2 && i + 2 < x->len && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9))
			w = 3;
		if (w == 0) {
			i++;
			continue;
		}
		if (i + w > off)
			break;
		i += w;
		line++;
		start = i;
	}
	struct pos p;
	p.offset = x->bom + off;
	p.line = line;
	p.column = (unsigned)(line == 1 ? p.offset : off - start) + 1;
	return p;
}

/* True when a diagnostic of this severity would only be counted (the list
 * is full and it is not the first error): callers skip the formatting. */
static bool
diags_full(const struct ctx *x, enum sts_severity sev)
{
	return x->d->n >= STS_DIAGS_MAX && (sev == STS_SEV_WARNING || x->d->first_error >= 0);
}

static void __attribute__((format(printf, 5, 6)))
diag(struct ctx *x, enum sts_severity sev, const char *code, const yaml_mark_t *m,
     const char *fmt, ...)
{
	if (diags_full(x, sev)) {
		sts_diags_add(x->d, sev, code, "", 0, 1, 1, "%s", "");   /* counted, dropped */
		return;
	}
	char msg[STS_DIAG_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct pos p = { 0, 1, 1 };
	if (m != NULL)
		p = mark_pos(x, m);
	sts_diags_add(x->d, sev, code, "", p.offset, p.line, p.column, "%s", msg);
}

#define ERR(x, code, node, ...) diag((x), STS_SEV_ERROR, (code), &(node)->start_mark, __VA_ARGS__)
#define WARN(x, code, node, ...) diag((x), STS_SEV_WARNING, (code), &(node)->start_mark, __VA_ARGS__)

static yaml_node_t *
node(struct ctx *x, int id)
{
	return yaml_document_get_node(x->doc, id);
}

static const char *
kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE: return "a mapping";
	case YAML_SEQUENCE_NODE: return "a list";
	default: return "a value";
	}
}

/* ---------------------------------------------------------------- scalars */

struct sv {
	const char *s;
	size_t n;
	bool plain;
	bool null;
};

static bool
scalar(const yaml_node_t *n, struct sv *out)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return false;
	out->s = (const char *)n->data.scalar.value;
	out->n = n->data.scalar.length;
	out->plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
		     n->data.scalar.style == YAML_ANY_SCALAR_STYLE;
	out->null = out->plain &&
		    (out->n == 0 || (out->n == 1 && out->s[0] == '~') ||
		     (out->n == 4 && (memcmp(out->s, "null", 4) == 0 || memcmp(out->s, "Null", 4) == 0 ||
				      memcmp(out->s, "NULL", 4) == 0)));
	return true;
}

static bool
sv_is(const struct sv *v, const char *lit)
{
	size_t l = strlen(lit);
	return v->n == l && memcmp(v->s, lit, l) == 0;
}

/* Escaped copy of a scalar for messages. */
static const char *
esc(const struct sv *v, char *buf, size_t bufsz)
{
	return sts_escape(v->s, v->n, buf, bufsz);
}

static char *
sv_dup(struct ctx *x, const struct sv *v)
{
	char *s = malloc(v->n + 1);
	if (s == NULL) {
		x->oom = true;
		return NULL;
	}
	memcpy(s, v->s, v->n);
	s[v->n] = '\0';
	return s;
}

static void
replace_str(char **dst, char *src)
{
	free(*dst);
	*dst = src;
}

enum num_kind { N_NONE, N_INT, N_FLOAT };

struct num {
	enum num_kind kind;
	bool neg;
	bool overflow;          /* integer magnitude beyond 64 bits */
	bool leading_zero;      /* YAML 1.1 octal spelt 0NNN */
	bool octal;             /* 0NNN or 0oNNN */
	uint64_t mag;
	double f;
};

static int
digit_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return 99;
}

/* Digits of one base with '_' separators: at least one digit. */
static bool
int_digits(const char *s, size_t n, unsigned base, bool underscores, struct num *r)
{
	bool any = false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_' && underscores)
			continue;
		int dv = digit_val(s[i]);
		if (dv >= (int)base)
			return false;
		any = true;
		if (v > (UINT64_MAX - (uint64_t)dv) / base)
			r->overflow = true;
		else
			v = v * base + (uint64_t)dv;
	}
	r->mag = v;
	return any;
}

/* YAML 1.1 integer and float resolution, as PyYAML's safe loader does it,
 * plus 0o (YAML 1.2) octal and exponents without a dot or sign. */
static void
parse_num(const struct sv *v, struct num *r)
{
	memset(r, 0, sizeof *r);
	const char *s = v->s;
	size_t n = v->n;
	if (n > 0 && (s[0] == '-' || s[0] == '+')) {
		r->neg = s[0] == '-';
		s++;
		n--;
	}
	if (n == 0)
		return;
	if (n > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'x' || s[1] == 'o')) {
		unsigned base = s[1] == 'b' ? 2 : s[1] == 'x' ? 16 : 8;
		if (int_digits(s + 2, n - 2, base, true, r)) {
			r->kind = N_INT;
			r->octal = base == 8;
		}
		return;
	}
	if (s[0] == '0' && n > 1 && int_digits(s + 1, n - 1, 8, true, r)) {
		r->kind = N_INT;
		r->octal = r->leading_zero = true;
		return;
	}
	if (n == 1 && s[0] == '0') {
		r->kind = N_INT;
		return;
	}
	/* decimal, or sexagesimal 1:30 */
	if (s[0] >= '1' && s[0] <= '9') {
		size_t i = 0;
		while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			i++;
		if (i == n || s[i] == ':') {
			struct num head = { 0 };
			int_digits(s, i, 10, true, &head);
			uint64_t val = head.mag;
			bool over = head.overflow;
			bool ok = true;
			while (i < n && ok) {
				/* ":" [0-5]?[0-9] */
				size_t j = i + 1, k = j;
				while (k < n && s[k] >= '0' && s[k] <= '9')
					k++;
				if (k == j || k - j > 2 || (k - j == 2 && s[j] > '5') || (k < n && s[k] != ':'))
					ok = false;
				else {
					uint64_t part = (uint64_t)(s[k - 1] - '0') +
							(k - j == 2 ? 10u * (uint64_t)(s[j] - '0') : 0);
					if (val > (UINT64_MAX - part) / 60)
						over = true;
					else
						val = val * 60 + part;
				}
				i = k;
			}
			if (ok) {
				r->kind = N_INT;
				r->mag = val;
				r->overflow = over;
				return;
			}
		}
	}
	/* floats */
	if ((n == 4 && (memcmp(s, ".inf", 4) == 0 || memcmp(s, ".Inf", 4) == 0 ||
			memcmp(s, ".INF", 4) == 0))) {
		r->kind = N_FLOAT;
		r->f = r->neg ? -INFINITY : INFINITY;
		return;
	}
	if (n == 4 && !r->neg && (memcmp(s, ".nan", 4) == 0 || memcmp(s, ".NaN", 4) == 0 ||
				  memcmp(s, ".NAN", 4) == 0)) {
		r->kind = N_FLOAT;
		r->f = NAN;
		return;
	}
	size_t i = 0, digits = 0;
	bool dot = false, exp = false;
	while (i < n && ((s[i] >= '0' && s[i] <= '9') || (s[i] == '_' && digits > 0))) {
		digits += s[i] != '_';
		i++;
	}
	if (i < n && s[i] == '.') {
		dot = true;
		i++;
		while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
			digits += s[i] != '_';
			i++;
		}
	}
	if (digits == 0)
		return;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;
		if (j < n && (s[j] == '+' || s[j] == '-'))
			j++;
		size_t k = j;
		while (k < n && s[k] >= '0' && s[k] <= '9')
			k++;
		if (k == j)
			return;
		exp = true;
		i = k;
	}
	if (i != n || (!dot && !exp))
		return;
	char *buf = malloc(n + 2);
	if (buf == NULL)
		return;
	size_t o = 0;
	for (size_t k = 0; k < n; k++)
		if (s[k] != '_')
			buf[o++] = s[k];
	buf[o] = '\0';
	r->f = strtod(buf, NULL);
	if (r->neg)
		r->f = -r->f;
	free(buf);
	r->kind = N_FLOAT;
}

static double
num_value(const struct num *r)
{
	if (r->kind == N_FLOAT)
		return r->f;
	double v = r->overflow ? 1e30 : (double)r->mag;
	return r->neg ? -v : v;
}

/* ------------------------------------------------------------ value getters */

/* A key no value: keep the default. Returns true when the caller stops. */
static bool
null_value(struct ctx *x, const char *path, const yaml_node_t *v, const struct sv *sv,
	   const char *deflt)
{
	if (!sv->null)
		return false;
	WARN(x, "config.value.empty", v,
	     "'%s' has no value: the default (%s) is used; give a value or remove the line",
	     path, deflt);
	return true;
}

static bool
need_scalar(struct ctx *x, const char *path, const yaml_node_t *v, struct sv *sv,
	    const char *what)
{
	if (scalar(v, sv))
		return true;
	ERR(x, "config.value.type", v, "'%s' is %s: give %s", path, kind_name(v), what);
	return false;
}

static void
quoted_number(struct ctx *x, const char *path, const yaml_node_t *v, const struct sv *sv)
{
	char b[48];
	WARN(x, "config.value.quoted", v,
	     "'%s: \"%s\"' is quoted: it was read as a number, but mta-sts-daemon sees text;"
	     " remove the quotes", path, esc(sv, b, sizeof b));
}

/* Whole number in [lo, hi]. */
static bool
get_uint(struct ctx *x, const char *path, const yaml_node_t *v, uint64_t lo, uint64_t hi,
	 const char *unit, uint32_t *out, const char *deflt)
{
	struct sv sv;
	char what[96], dv[24], b[48];
	snprintf(what, sizeof what, "a whole number%s%s from %llu to %llu", *unit ? " of " : "",
		 unit, (unsigned long long)lo, (unsigned long long)hi);
	if (!need_scalar(x, path, v, &sv, what))
		return false;
	snprintf(dv, sizeof dv, "%u", *out);
	if (null_value(x, path, v, &sv, deflt != NULL ? deflt : dv))
		return false;
	struct num r;
	parse_num(&sv, &r);
	if (r.kind == N_NONE) {
		ERR(x, "config.value.type", v, "%s: '%s' is not a number: give %llu-%llu", path,
		    esc(&sv, b, sizeof b), (unsigned long long)lo, (unsigned long long)hi);
		return false;
	}
	if (r.kind == N_FLOAT) {
		ERR(x, "config.value.type", v, "%s: '%s' is not a whole number: give %s", path,
		    esc(&sv, b, sizeof b), what);
		return false;
	}
	if (r.neg && r.mag != 0) {
		ERR(x, "config.value.range", v, "%s: '%s' is negative: give %s", path,
		    esc(&sv, b, sizeof b), what);
		return false;
	}
	if (r.overflow || r.mag < lo || r.mag > hi) {
		ERR(x, "config.value.range", v, "%s: '%s' is out of range: give %s", path,
		    esc(&sv, b, sizeof b), what);
		return false;
	}
	if (!sv.plain)
		quoted_number(x, path, v, &sv);
	else if (r.leading_zero)
		WARN(x, "config.value.octal", v,
		     "%s: '%s' starts with 0, so YAML reads it as octal: it means %llu;"
		     " write %llu to say so", path, esc(&sv, b, sizeof b),
		     (unsigned long long)r.mag, (unsigned long long)r.mag);
	*out = (uint32_t)r.mag;
	return true;
}

static void
fmt_seconds(uint64_t ms, char *buf, size_t sz)
{
	if (ms % 1000 == 0) {
		snprintf(buf, sz, "%llu", (unsigned long long)(ms / 1000));
		return;
	}
	char frac[8];
	snprintf(frac, sizeof frac, "%03u", (unsigned)(ms % 1000));
	size_t l = strlen(frac);
	while (l > 0 && frac[l - 1] == '0')
		frac[--l] = '\0';
	snprintf(buf, sz, "%llu.%s", (unsigned long long)(ms / 1000), frac);
}

/* Seconds (whole or fractional) in [lo_ms, hi_ms] once converted to ms. */
static bool
get_duration(struct ctx *x, const char *path, const yaml_node_t *v, uint32_t lo_ms,
	     uint32_t hi_ms, uint32_t *out_ms)
{
	struct sv sv;
	char lo[24], hi[24], what[96], dv[24], b[48];
	fmt_seconds(lo_ms, lo, sizeof lo);
	fmt_seconds(hi_ms, hi, sizeof hi);
	snprintf(what, sizeof what, "seconds from %s to %s", lo, hi);
	if (!need_scalar(x, path, v, &sv, what))
		return false;
	fmt_seconds(*out_ms, dv, sizeof dv);
	if (null_value(x, path, v, &sv, dv))
		return false;
	struct num r;
	parse_num(&sv, &r);
	if (r.kind == N_NONE) {
		ERR(x, "config.value.type", v, "%s: '%s' is not a number: give %s", path,
		    esc(&sv, b, sizeof b), what);
		return false;
	}
	double sec = num_value(&r);
	if (isnan(sec)) {
		ERR(x, "config.value.range", v, "%s: '%s' is not a number: give %s", path,
		    esc(&sv, b, sizeof b), what);
		return false;
	}
	if (sec < 0) {
		ERR(x, "config.value.range", v, "%s: '%s' is negative: give %s", path,
		    esc(&sv, b, sizeof b), what);
		return false;
	}
	double ms = sec * 1000.0 + 0.5;   /* rounded to the nearest millisecond */
	if (!(ms < 4294967295.0) || (uint32_t)ms < lo_ms || (uint32_t)ms > hi_ms) {
		ERR(x, "config.value.range", v, "%s: '%s' is out of range: give %s", path,
		    esc(&sv, b, sizeof b), what);
		return false;
	}
	if (!sv.plain)
		quoted_number(x, path, v, &sv);
	*out_ms = (uint32_t)ms;
	return true;
}

static bool
get_bool(struct ctx *x, const char *path, const yaml_node_t *v, bool *out)
{
	static const char *const yes[] = { "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL };
	static const char *const no[] = { "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL };
	struct sv sv;
	char b[48];
	if (!need_scalar(x, path, v, &sv, "true or false"))
		return false;
	if (null_value(x, path, v, &sv, *out ? "true" : "false"))
		return false;
	int val = -1;
	for (size_t i = 0; yes[i] != NULL && val < 0; i++)
		if (sv_is(&sv, yes[i]))
			val = 1;
	for (size_t i = 0; no[i] != NULL && val < 0; i++)
		if (sv_is(&sv, no[i]))
			val = 0;
	if (val >= 0 && sv.plain) {
		*out = val == 1;
		return true;
	}
	if (!sv.plain && sv.n <= 5) {
		char low[8];
		for (size_t i = 0; i < sv.n; i++)
			low[i] = (char)(sv.s[i] >= 'A' && sv.s[i] <= 'Z' ? sv.s[i] + 32 : sv.s[i]);
		low[sv.n] = '\0';
		val = -1;
		if (!strcmp(low, "true") || !strcmp(low, "yes") || !strcmp(low, "on"))
			val = 1;
		else if (!strcmp(low, "false") || !strcmp(low, "no") || !strcmp(low, "off"))
			val = 0;
		if (val >= 0) {
			WARN(x, "config.value.quoted", v,
			     "'%s: \"%s\"' is quoted: it was read as %s, but mta-sts-daemon reads any"
			     " quoted text as true; remove the quotes", path, esc(&sv, b, sizeof b),
			     val ? "true" : "false");
			*out = val == 1;
			return true;
		}
	}
	struct num r;
	if (sv.plain) {
		parse_num(&sv, &r);
		if (r.kind == N_INT) {
			*out = r.mag != 0 || r.overflow;
			WARN(x, "config.value.type", v,
			     "'%s: %s' is a number: it was read as %s, as mta-sts-daemon does; write"
			     " true or false", path, esc(&sv, b, sizeof b), *out ? "true" : "false");
			return true;
		}
	}
	ERR(x, "config.value.type", v, "%s: '%s' is not true or false: write true or false", path,
	    esc(&sv, b, sizeof b));
	return false;
}

/* Text without control characters or NUL. Returns a new string, or NULL
 * (reported, or a null value with a warning when deflt is given). */
static char *
get_text(struct ctx *x, const char *path, const yaml_node_t *v, const char *what,
	 const char *deflt)
{
	struct sv sv;
	char b[48];
	if (!need_scalar(x, path, v, &sv, what))
		return NULL;
	if (null_value(x, path, v, &sv, deflt))
		return NULL;
	if (sv.n == 0) {
		ERR(x, "config.value.empty", v, "'%s' is empty: give %s, or remove the line", path, what);
		return NULL;
	}
	for (size_t i = 0; i < sv.n; i++) {
		unsigned char ch = (unsigned char)sv.s[i];
		if (ch < 0x20 || ch == 0x7f) {
			ERR(x, "config.value.invalid", v,
			    "%s: '%s' contains a control character: give %s", path,
			    esc(&sv, b, sizeof b), what);
			return NULL;
		}
	}
	return sv_dup(x, &sv);
}

static char *
get_path(struct ctx *x, const char *path, const yaml_node_t *v, size_t max, const char *deflt)
{
	char what[64];
	snprintf(what, sizeof what, "a file path of at most %zu bytes", max);
	char *s = get_text(x, path, v, what, deflt);
	if (s == NULL)
		return NULL;
	size_t l = strlen(s);
	char b[48];
	if (l > max) {
		ERR(x, "config.value.range", v, "%s: '%s' is %zu bytes long; at most %zu fit here:"
		    " choose a shorter path", path, sts_escape(s, l, b, sizeof b), l, max);
		free(s);
		return NULL;
	}
	if (s[0] != '/')
		WARN(x, "config.path.relative", v,
		     "%s: '%s' is a relative path: it depends on the directory mta-stsd starts in;"
		     " give an absolute path", path, sts_escape(s, l, b, sizeof b));
	return s;
}

/* User and group names, or numeric ids. */
static char *
get_name(struct ctx *x, const char *path, const yaml_node_t *v, const char *what)
{
	char *s = get_text(x, path, v, what, "none");
	if (s == NULL)
		return NULL;
	size_t l = strlen(s);
	bool ok = l <= NAME_MAX_LEN && s[0] != '-';
	for (size_t i = 0; i < l && ok; i++) {
		char ch = s[i];
		ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		     ch == '_' || ch == '-' || ch == '.' || (ch == '$' && i == l - 1);
	}
	if (!ok) {
		char b[48];
		ERR(x, "config.value.invalid", v,
		    "%s: '%s' is not a valid name: give %s (letters, digits, '.', '_', '-';"
		    " at most %d)", path, sts_escape(s, l, b, sizeof b), what, NAME_MAX_LEN);
		free(s);
		return NULL;
	}
	return s;
}

/* "host:port", "[v6]:port"; host may be a name. */
static bool
split_hostport(const char *s, size_t n, const char **h, size_t *hl, const char **p, size_t *pl)
{
	if (n > 0 && s[0] == '[') {
		const char *e = memchr(s, ']', n);
		if (e == NULL || (size_t)(e - s) + 1 >= n || e[1] != ':')
			return false;
		*h = s + 1;
		*hl = (size_t)(e - s) - 1;
		*p = e + 2;
		*pl = n - (size_t)(e - s) - 2;
		return *hl > 0;
	}
	const char *c = memchr(s, ':', n);
	if (c == NULL || memchr(c + 1, ':', n - (size_t)(c - s) - 1) != NULL)
		return false;
	*h = s;
	*hl = (size_t)(c - s);
	*p = c + 1;
	*pl = n - *hl - 1;
	return *hl > 0;
}

static bool
parse_port(const char *s, size_t n, uint16_t *out)
{
	if (n == 0 || n > 5)
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

static bool
host_chars_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch == 0x7f || ch == '[' || ch == ']' || ch == '/')
			return false;
	}
	return n > 0;
}

/* An IP address with an optional port: 192.0.2.1, 192.0.2.1:5353, ::1, [::1]:53. */
static bool
parse_addr(const char *s, size_t n, struct stsd_addr *a)
{
	char ip[64];
	const char *h = s, *p = NULL;
	size_t hl = n, pl = 0;
	a->port = 53;
	if (memchr(s, '\0', n) != NULL)
		return false;
	if (n > 0 && s[0] == '[') {
		const char *e = memchr(s, ']', n);
		if (e == NULL)
			return false;
		h = s + 1;
		hl = (size_t)(e - s) - 1;
		if ((size_t)(e - s) + 1 < n) {
			if (e[1] != ':')
				return false;
			p = e + 2;
			pl = n - (size_t)(e - s) - 2;
		}
	} else {
		const char *c = memchr(s, ':', n);
		if (c != NULL && memchr(c + 1, ':', n - (size_t)(c - s) - 1) == NULL) {
			hl = (size_t)(c - s);
			p = c + 1;
			pl = n - hl - 1;
		}
	}
	if (hl == 0 || hl >= sizeof ip)
		return false;
	memcpy(ip, h, hl);
	ip[hl] = '\0';
	unsigned char bin[16];
	if (inet_pton(AF_INET, ip, bin) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, bin) == 1)
		a->family = AF_INET6;
	else
		return false;
	if (s[0] == '[' && a->family != AF_INET6)
		return false;
	if (p != NULL && !parse_port(p, pl, &a->port))
		return false;
	return inet_ntop(a->family, bin, a->ip, sizeof a->ip) != NULL;
}

/* ------------------------------------------------------------- map walking */

static bool
ents_push(struct ctx *x, struct ents *e, const struct entry *it)
{
	if (e->n == e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 16;
		struct entry *nv = realloc(e->v, nc * sizeof *nv);
		if (nv == NULL) {
			x->oom = true;
			return false;
		}
		e->v = nv;
		e->cap = nc;
	}
	e->v[e->n++] = *it;
	return true;
}

static bool
budget(struct ctx *x, const yaml_node_t *at)
{
	if (++x->work <= WORK_MAX)
		return true;
	if (!x->too_complex) {
		x->too_complex = true;
		ERR(x, "config.yaml.too_complex", at,
		    "anchors and merge keys expand this file to more than %d keys: write the"
		    " sections out instead", WORK_MAX);
	}
	return false;
}

static bool
is_merge_key(const yaml_node_t *k)
{
	struct sv sv;
	return scalar(k, &sv) && sv.plain && sv_is(&sv, "<<");
}

/* PyYAML's flatten_mapping: the pairs of merged mappings first (those of an
 * earlier list item after those of a later one, so that the earlier wins),
 * then the mapping's own pairs. Returns false on a fatal problem. */
static bool
flatten(struct ctx *x, yaml_node_t *map, struct ents *out, int depth, bool merged)
{
	if (depth > MERGE_DEPTH_MAX) {
		if (!x->too_complex) {
			x->too_complex = true;
			ERR(x, "config.yaml.merge_depth", map,
			    "merge keys (<<) nest more than %d deep here, or refer to themselves:"
			    " merge a mapping that is written out", MERGE_DEPTH_MAX);
		}
		return false;
	}
	yaml_node_pair_t *p;
	/* merges first; every pair counts against the budget here, once */
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(x, p->key), *v = node(x, p->value);
		if (!budget(x, k != NULL ? k : map))
			return false;
		if (k == NULL || v == NULL || !is_merge_key(k))
			continue;
		if (v->type == YAML_MAPPING_NODE) {
			if (!flatten(x, v, out, depth + 1, true))
				return false;
		} else if (v->type == YAML_SEQUENCE_NODE) {
			yaml_node_item_t *i;
			for (i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
				yaml_node_t *m = node(x, *i);
				if (m == NULL || m->type != YAML_MAPPING_NODE) {
					ERR(x, "config.yaml.merge", m != NULL ? m : v,
					    "a merge list (<<: [...]) may only hold mappings such as"
					    " *anchor; this item is %s: remove it", m ? kind_name(m) : "empty");
					return false;
				}
			}
			for (i = v->data.sequence.items.top; i > v->data.sequence.items.start; i--)
				if (!flatten(x, node(x, i[-1]), out, depth + 1, true))
					return false;
		} else {
			ERR(x, "config.yaml.merge", v,
			    "a merge key (<<) needs a mapping or a list of mappings, e.g."
			    " '<<: *defaults'; this is a value: fix or remove it");
			return false;
		}
	}
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(x, p->key), *v = node(x, p->value);
		if (k == NULL || v == NULL || is_merge_key(k))
			continue;
		struct entry it = { .k = k, .v = v, .merged = merged, .order = out->n };
		struct sv sv;
		if (!scalar(k, &sv)) {
			if (!merged)
				WARN(x, "config.key.not_text", k,
				     "a key at line %zu is %s, not text: it is ignored; remove it",
				     k->start_mark.line + 1, kind_name(k));
			continue;
		}
		it.key = sv.s;
		it.klen = sv.n;
		if (!ents_push(x, out, &it))
			return false;
	}
	return true;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct entry *p = a, *q = b;
	size_t m = p->klen < q->klen ? p->klen : q->klen;
	int c = memcmp(p->key, q->key, m);
	if (c != 0)
		return c;
	if (p->klen != q->klen)
		return p->klen < q->klen ? -1 : 1;
	return p->order < q->order ? -1 : p->order > q->order;
}

static int
cmp_order(const void *a, const void *b)
{
	const struct entry *p = a, *q = b;
	return p->order < q->order ? -1 : p->order > q->order;
}

/* The effective pairs of a mapping, one per key, in document order: merge
 * keys applied and the last of duplicate keys kept (PyYAML), with a warning
 * for each explicit key that a later explicit key replaces. */
static bool
map_view(struct ctx *x, yaml_node_t *map, const char *where, struct ents *out)
{
	memset(out, 0, sizeof *out);
	if (!flatten(x, map, out, 0, false))
		return false;
	if (out->n < 2)
		return true;
	qsort(out->v, out->n, sizeof *out->v, cmp_entry);
	size_t w = 0;
	for (size_t i = 0; i < out->n; i++) {
		bool last = i + 1 == out->n || out->v[i + 1].klen != out->v[i].klen ||
			    memcmp(out->v[i + 1].key, out->v[i].key, out->v[i].klen) != 0;
		if (!last) {
			const struct entry *a = &out->v[i], *b = &out->v[i + 1];
			if (!a->merged && !b->merged) {
				char kb[48];
				struct sv ks = { a->key, a->klen, true, false };
				WARN(x, "config.key.duplicate", b->k,
				     "'%s' in %s at line %zu repeats the one at line %zu: the last one"
				     " wins (as in mta-sts-daemon), so line %zu is ignored; remove one",
				     esc(&ks, kb, sizeof kb), where, b->k->start_mark.line + 1,
				     a->k->start_mark.line + 1, a->k->start_mark.line + 1);
			}
			continue;
		}
		out->v[w++] = out->v[i];
	}
	out->n = w;
	qsort(out->v, out->n, sizeof *out->v, cmp_order);
	return true;
}

static int
key_index(const struct entry *e, const char *const *keys)
{
	for (int i = 0; keys[i] != NULL; i++)
		if (strlen(keys[i]) == e->klen && memcmp(keys[i], e->key, e->klen) == 0)
			return i;
	return -1;
}

static const struct entry *
find_key(const struct ents *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strlen(key) == m->v[i].klen && memcmp(key, m->v[i].key, m->v[i].klen) == 0)
			return &m->v[i];
	return NULL;
}

static char
lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
}

/* Optimal string alignment distance, case-insensitive; short strings only. */
static size_t
edit_distance(const char *a, size_t al, const char *b, size_t bl)
{
	size_t d[33][33];
	if (al > 32 || bl > 32)
		return 99;
	for (size_t i = 0; i <= al; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= bl; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= al; i++)
		for (size_t j = 1; j <= bl; j++) {
			size_t cost = lower(a[i - 1]) != lower(b[j - 1]);
			size_t v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
			    lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[al][bl];
}

static const char *
closest(const char *s, size_t n, const char *const *keys)
{
	const char *best = NULL;
	size_t bd = 99;
	for (size_t i = 0; keys[i] != NULL; i++) {
		size_t kl = strlen(keys[i]);
		size_t dd = edit_distance(s, n, keys[i], kl);
		size_t limit = kl <= 4 ? 1 : kl <= 8 ? 2 : 3;
		if (dd <= limit && dd < bd) {
			bd = dd;
			best = keys[i];
		}
	}
	return best;
}

static void
unknown_key(struct ctx *x, const struct entry *e, const char *where, const char *const *keys)
{
	char kb[48];
	struct sv ks = { e->key, e->klen, true, false };
	if (diags_full(x, STS_SEV_WARNING)) {
		WARN(x, "config.key.unknown", e->k, "unknown key");
		return;
	}
	esc(&ks, kb, sizeof kb);
	unsigned line = (unsigned)e->k->start_mark.line + 1;
	const char *near = closest(e->key, e->klen, keys);
	if (near != NULL) {
		bool case_only = strlen(near) == e->klen && strncasecmp(near, e->key, e->klen) == 0;
		WARN(x, "config.key.unknown", e->k,
		     "unknown key '%s' at line %u (did you mean '%s'?%s): it is ignored; fix or"
		     " remove it", kb, line, near, case_only ? " keys are case-sensitive" : "");
		return;
	}
	for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
		if (sections[s].keys == keys)
			continue;
		for (size_t i = 0; sections[s].keys[i] != NULL; i++)
			if (strlen(sections[s].keys[i]) == e->klen &&
			    memcmp(sections[s].keys[i], e->key, e->klen) == 0) {
				WARN(x, "config.key.unknown", e->k,
				     "unknown key '%s' at line %u in %s: it belongs under %s; move it"
				     " there (here it is ignored)", kb, line, where, sections[s].where);
				return;
			}
	}
	WARN(x, "config.key.unknown", e->k,
	     "unknown key '%s' at line %u in %s: it is ignored; remove it or check the"
	     " spelling against mta-stsd.yml(5)", kb, line, where);
}

/* A section's value: a mapping, or nothing. Returns false to skip it. */
static bool
section(struct ctx *x, const char *path, yaml_node_t *v, const char *example)
{
	struct sv sv;
	if (v->type == YAML_MAPPING_NODE)
		return true;
	if (scalar(v, &sv) && sv.null)
		return false;   /* an empty section: every key keeps its default */
	ERR(x, "config.value.type", v, "'%s' is %s: it must be a mapping; write it like %s", path,
	    kind_name(v), example);
	return false;
}

/* ---------------------------------------------------------------- sections */

static void
walk_zone(struct ctx *x, const char *path, yaml_node_t *map, struct stsd_zone *z)
{
	struct ents m;
	if (!map_view(x, map, path, &m)) {
		free(m.v);
		return;
	}
	char kp[160];
	for (size_t i = 0; i < m.n; i++) {
		const struct entry *e = &m.v[i];
		int id = key_index(e, zone_keys);
		if (id < 0) {
			unknown_key(x, e, path, zone_keys);
			continue;
		}
		snprintf(kp, sizeof kp, "%s.%s", path, zone_keys[id]);
		switch (id) {
		case Z_STRICT: get_bool(x, kp, e->v, &z->strict_testing); break;
		case Z_SNI: get_bool(x, kp, e->v, &z->require_sni); break;
		case Z_TLSRPT: get_bool(x, kp, e->v, &z->tlsrpt); break;
		case Z_TEMP: get_bool(x, kp, e->v, &z->temp_on_failure); break;
		case Z_TIMEOUT:
			if (get_duration(x, kp, e->v, 1, 300000, &z->timeout_ms) &&
			    z->timeout_ms > 45000) {
				char secs[24];
				fmt_seconds(z->timeout_ms, secs, sizeof secs);
				WARN(x, "config.zone.timeout_long", e->v,
				     "%s: %s s is long: DNS and HTTPS may each take that long, and"
				     " Postfix gives up a socketmap lookup after 100 s; use 45 or less",
				     kp, secs);
			}
			break;
		}
	}
	free(m.v);
}

static int
cmp_zone(const void *a, const void *b)
{
	return strcmp(((const struct stsd_zone *)a)->name, ((const struct stsd_zone *)b)->name);
}

static void
walk_zones(struct ctx *x, yaml_node_t *map)
{
	struct ents m;
	if (!map_view(x, map, "zones", &m)) {
		free(m.v);
		return;
	}
	struct stsd_config *c = x->c;
	c->zones = calloc(m.n ? m.n : 1, sizeof *c->zones);
	if (c->zones == NULL) {
		x->oom = true;
		free(m.v);
		return;
	}
	for (size_t i = 0; i < m.n; i++) {
		const struct entry *e = &m.v[i];
		struct sv ks = { e->key, e->klen, true, false };
		char nb[48], path[80];
		esc(&ks, nb, sizeof nb);
		snprintf(path, sizeof path, "zones.%s", nb);
		if (memchr(e->key, '\0', e->klen) != NULL) {
			ERR(x, "config.zone.name", e->k,
			    "zone name '%s' contains a NUL byte: Postfix can never send it; rename it", nb);
			continue;
		}
		bool bad = e->klen == 0;
		for (size_t j = 0; j < e->klen && !bad; j++) {
			unsigned char ch = (unsigned char)e->key[j];
			bad = ch <= 0x20 || ch == 0x7f || ch == ':';
		}
		if (bad)
			WARN(x, "config.zone.name", e->k,
			     "zone name '%s' is empty or has a space, control character or ':': Postfix"
			     " can never send it as a socketmap name, so the zone is never used; rename it",
			     nb);
		struct stsd_zone z;
		zone_defaults(&z);
		z.line = (unsigned)e->k->start_mark.line + 1;
		if (e->v->type != YAML_MAPPING_NODE) {
			struct sv vs;
			if (!(scalar(e->v, &vs) && vs.null)) {
				if (key_index(e, zone_keys) >= 0)
					ERR(x, "config.value.type", e->v,
					    "'%s' is %s: zones holds one mapping per socketmap name, e.g."
					    " 'zones: {myzone: {%s: ...}}'; to change it for every lookup,"
					    " put it under default_zone", path, kind_name(e->v), nb);
				else
					ERR(x, "config.value.type", e->v,
					    "'%s' is %s: a zone must be a mapping of zone keys; write it like"
					    " '%s: {timeout: 4}'", path, kind_name(e->v), nb);
				continue;
			}
		} else {
			walk_zone(x, path, e->v, &z);
		}
		z.name = sv_dup(x, &ks);
		if (z.name == NULL)
			break;
		c->zones[c->n_zones++] = z;
	}
	qsort(c->zones, c->n_zones, sizeof *c->zones, cmp_zone);
	free(m.v);
}

static void
walk_proactive(struct ctx *x, yaml_node_t *map)
{
	struct ents m;
	struct stsd_proactive *p = &x->c->proactive;
	if (!map_view(x, map, "proactive_policy_fetching", &m)) {
		free(m.v);
		return;
	}
	for (size_t i = 0; i < m.n; i++) {
		const struct entry *e = &m.v[i];
		int id = key_index(e, pf_keys);
		char kp[64];
		if (id < 0) {
			unknown_key(x, e, "proactive_policy_fetching", pf_keys);
			continue;
		}
		snprintf(kp, sizeof kp, "proactive_policy_fetching.%s", pf_keys[id]);
		switch (id) {
		case P_ENABLED: get_bool(x, kp, e->v, &p->enabled); break;
		case P_INTERVAL:
			get_uint(x, kp, e->v, 1, 31557600, "seconds", &p->interval_s, NULL);
			break;
		case P_CONCURRENCY:
			get_uint(x, kp, e->v, 1, 10000, "", &p->concurrency_limit, NULL);
			break;
		case P_GRACE_RATIO: {
			struct sv sv;
			char b[48];
			const char *what = "a number above 0 (up to 1000000), e.g. 2.0";
			if (!need_scalar(x, kp, e->v, &sv, what) || null_value(x, kp, e->v, &sv, "2.0"))
				break;
			struct num r;
			parse_num(&sv, &r);
			double g = num_value(&r);
			if (r.kind == N_NONE)
				ERR(x, "config.value.type", e->v, "%s: '%s' is not a number: give %s", kp,
				    esc(&sv, b, sizeof b), what);
			else if (!(g > 0) || !(g <= 1e6))
				ERR(x, "config.value.range", e->v, "%s: '%s' is out of range: give %s",
				    kp, esc(&sv, b, sizeof b), what);
			else {
				if (!sv.plain)
					quoted_number(x, kp, e->v, &sv);
				p->grace_ratio = g;
			}
			break;
		}
		}
	}
	free(m.v);
}

static bool
add_option(struct ctx *x, const struct entry *e, const char *path)
{
	struct stsd_cache_config *k = &x->c->cache;
	struct sv sv;
	char b[48];
	struct sv ks = { e->key, e->klen, true, false };
	if (!scalar(e->v, &sv)) {
		WARN(x, "config.cache.option_ignored", e->v,
		     "%s.%s is %s: only single values are passed to the %s backend; it is"
		     " ignored: write one value or remove it",
		     path, esc(&ks, b, sizeof b), kind_name(e->v), stsd_cache_type_name(k->type));
		return true;
	}
	if (memchr(e->key, '\0', e->klen) != NULL || memchr(sv.s, '\0', sv.n) != NULL) {
		ERR(x, "config.value.invalid", e->k, "%s.%s contains a NUL byte: remove it", path,
		    esc(&ks, b, sizeof b));
		return true;
	}
	struct stsd_option *o = &k->options[k->n_options];
	struct sv empty = { "", 0, false, false };
	o->key = sv_dup(x, &ks);
	o->value = sv_dup(x, sv.null ? &empty : &sv);
	o->line = (unsigned)e->k->start_mark.line + 1;
	o->plain = sv.plain;
	if (o->key == NULL || o->value == NULL) {
		free(o->key);
		free(o->value);
		x->oom = true;
		return false;
	}
	k->n_options++;
	return true;
}

static void
get_sentinels(struct ctx *x, const char *path, yaml_node_t *v)
{
	struct stsd_cache_config *k = &x->c->cache;
	struct sv sv;
	char b[48];
	const char *what = "a list of [host, port] pairs, e.g. '- [\"sentinel1\", 26379]'";
	if (v->type != YAML_SEQUENCE_NODE) {
		if (scalar(v, &sv) && null_value(x, path, v, &sv, "none"))
			return;
		ERR(x, "config.value.type", v, "'%s' is %s: give %s", path, kind_name(v), what);
		return;
	}
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	struct stsd_hostport *list = calloc(n ? n : 1, sizeof *list);
	if (list == NULL) {
		x->oom = true;
		return;
	}
	size_t got = 0;
	bool bad = false;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = node(x, v->data.sequence.items.start[i]);
		const char *h = NULL, *p = NULL;
		size_t hl = 0, pl = 0;
		bool ok = false;
		if (it != NULL && it->type == YAML_SEQUENCE_NODE &&
		    it->data.sequence.items.top - it->data.sequence.items.start == 2) {
			struct sv hs, ps;
			if (scalar(node(x, it->data.sequence.items.start[0]), &hs) &&
			    scalar(node(x, it->data.sequence.items.start[1]), &ps)) {
				h = hs.s, hl = hs.n, p = ps.s, pl = ps.n;
				ok = true;
			}
		} else if (scalar(it, &sv)) {
			ok = split_hostport(sv.s, sv.n, &h, &hl, &p, &pl);
		}
		uint16_t port = 0;
		ok = ok && host_chars_ok(h, hl) && parse_port(p, pl, &port);
		if (!ok) {
			struct sv is = { "", 0, true, false };
			if (it != NULL)
				scalar(it, &is);
			ERR(x, "config.value.invalid", it != NULL ? it : v,
			    "%s: item %zu ('%s') is not a sentinel address: give %s", path, i + 1,
			    esc(&is, b, sizeof b), what);
			bad = true;
			continue;
		}
		struct sv hs = { h, hl, true, false };
		list[got].host = sv_dup(x, &hs);
		if (list[got].host == NULL)
			break;
		list[got++].port = port;
	}
	if (bad || x->oom) {
		free_hostports(list, got);
		return;
	}
	free_hostports(k->sentinels, k->n_sentinels);
	k->sentinels = list;
	k->n_sentinels = got;
}

static void
walk_options(struct ctx *x, yaml_node_t *map)
{
	struct stsd_cache_config *k = &x->c->cache;
	const char *tn = stsd_cache_type_name(k->type);
	struct ents m;
	if (!map_view(x, map, "cache.options", &m)) {
		free(m.v);
		return;
	}
	bool passes_on = k->type == STSD_CACHE_REDIS || k->type == STSD_CACHE_REDIS_SENTINEL ||
			 k->type == STSD_CACHE_POSTGRES;
	if (passes_on) {
		/* room for every pair; add_option appends without growing */
		k->options = calloc(m.n ? m.n : 1, sizeof *k->options);
		if (k->options == NULL) {
			x->oom = true;
			free(m.v);
			return;
		}
	}
	for (size_t i = 0; i < m.n && !x->oom; i++) {
		const struct entry *e = &m.v[i];
		int id = key_index(e, option_keys);
		char kp[64];
		if (id < 0) {
			if (!passes_on) {
				unknown_key(x, e, "cache.options", option_keys);
				continue;
			}
			/* the backend's own keyword: passed on as it is */
			if (!add_option(x, e, "cache.options"))
				break;
			const char *near = closest(e->key, e->klen, option_keys);
			if (near != NULL) {
				char b[48];
				struct sv ks = { e->key, e->klen, true, false };
				WARN(x, "config.cache.option_passed", e->k,
				     "cache.options.%s is not an option mta-stsd reads (did you mean"
				     " '%s'?): it is passed to the %s backend as it is; check the name",
				     esc(&ks, b, sizeof b),
				     near, tn);
			}
			continue;
		}
		if (!(type_options[k->type] & (1u << id))) {
			char need[64] = "";
			for (int t = 0; t <= STSD_CACHE_POSTGRES; t++)
				if (type_options[t] & (1u << id))
					snprintf(need + strlen(need), sizeof need - strlen(need), "%s%s",
						 need[0] ? " or " : "", cache_types[t]);
			WARN(x, "config.cache.option_ignored", e->k,
			     "cache.options.%s is for cache type %s, but the type is %s: it is"
			     " ignored; remove it", option_keys[id], need, tn);
			continue;
		}
		snprintf(kp, sizeof kp, "cache.options.%s", option_keys[id]);
		switch (id) {
		case O_CACHE_SIZE:
			get_uint(x, kp, e->v, 1, 100000000, "entries", &k->cache_size, NULL);
			break;
		case O_THREADS:
			get_uint(x, kp, e->v, 1, 256, "", &k->threads, "one per CPU");
			break;
		case O_TIMEOUT:
			get_duration(x, kp, e->v, 1, 3600000, &k->timeout_ms);
			break;
		case O_FILENAME: {
			char *s = get_path(x, kp, e->v, PATH_MAX_LEN, "STATE_DIR/cache.db");
			if (s != NULL)
				replace_str(&k->filename, s);
			break;
		}
		case O_URL: {
			char *s = get_text(x, kp, e->v, "a redis URL, e.g. redis://127.0.0.1/0", "none");
			if (s == NULL)
				break;
			if (strncmp(s, "rediss://", 9) == 0) {
				/* Debian 12's hiredis 0.14 has no TLS. */
				ERR(x, "config.value.invalid", e->v,
				    "%s: rediss:// (Redis over TLS) is not supported: use redis://"
				    " to a Redis on this host or a private network, or unix:///path",
				    kp);
				free(s);
				break;
			}
			if (strncmp(s, "redis://", 8) != 0 && strncmp(s, "unix://", 7) != 0) {
				char b[48];
				ERR(x, "config.value.invalid", e->v,
				    "%s: '%s' is not a redis URL: give one that starts with redis://,"
				    " or unix://, e.g. redis://127.0.0.1/0", kp, sts_escape(s, strlen(s), b, sizeof b));
				free(s);
				break;
			}
			replace_str(&k->url, s);
			break;
		}
		case O_SENTINELS:
			get_sentinels(x, kp, e->v);
			break;
		case O_MASTER: {
			char *s = get_text(x, kp, e->v, "the sentinel's master name", "none");
			if (s != NULL)
				replace_str(&k->sentinel_master_name, s);
			break;
		}
		case O_DSN: {
			char *s = get_text(x, kp, e->v, "a PostgreSQL DSN, e.g. postgres://user@host/db",
					   "none");
			if (s != NULL)
				replace_str(&k->dsn, s);
			break;
		}
		}
	}
	free(m.v);
}

static void
walk_cache(struct ctx *x, yaml_node_t *map)
{
	struct stsd_cache_config *k = &x->c->cache;
	struct ents m;
	if (!map_view(x, map, "cache", &m)) {
		free(m.v);
		return;
	}
	/* the type decides how options read, so it goes first */
	const struct entry *te = find_key(&m, "type");
	if (te != NULL) {
		struct sv sv;
		char b[48];
		x->cache_type.set = true;
		x->cache_type.mark = te->k->start_mark;
		if (need_scalar(x, "cache.type", te->v, &sv, "a cache type name") &&
		    !null_value(x, "cache.type", te->v, &sv, "internal")) {
			int t = -1;
			for (int i = 0; cache_types[i] != NULL; i++)
				if (sv_is(&sv, cache_types[i]))
					t = i;
			if (t < 0) {
				const char *near = closest(sv.s, sv.n, cache_types);
				ERR(x, "config.cache.type", te->v,
				    "cache.type '%s' is not supported%s%s%s: use one of internal, sqlite,"
				    " redis, redis_sentinel, postgres", esc(&sv, b, sizeof b),
				    near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
			} else {
				k->type = (enum stsd_cache_type)t;
			}
		}
	}
	for (size_t i = 0; i < m.n; i++) {
		const struct entry *e = &m.v[i];
		int id = key_index(e, cache_keys);
		if (id < 0)
			unknown_key(x, e, "cache", cache_keys);
		else if (id == C_OPTIONS && section(x, "cache.options", e->v, "'options: {filename: ...}'"))
			walk_options(x, e->v);
	}
	free(m.v);
}

static void
get_resolvers(struct ctx *x, yaml_node_t *v)
{
	struct stsd_config *c = x->c;
	const char *what = "an IP address with an optional port, e.g. 127.0.0.1, 192.0.2.1:5353"
			   " or [::1]:53";
	struct sv sv;
	yaml_node_item_t one_item = 0;
	yaml_node_item_t *items, *end;
	if (v->type == YAML_SEQUENCE_NODE) {
		items = v->data.sequence.items.start;
		end = v->data.sequence.items.top;
	} else if (scalar(v, &sv)) {
		if (null_value(x, "resolver", v, &sv, "the servers of /etc/resolv.conf"))
			return;
		one_item = (yaml_node_item_t)(v - x->doc->nodes.start) + 1;
		items = &one_item;
		end = items + 1;
	} else {
		ERR(x, "config.value.type", v, "'resolver' is %s: give a list of addresses, each %s",
		    kind_name(v), what);
		return;
	}
	size_t n = (size_t)(end - items);
	struct stsd_addr *list = calloc(n ? n : 1, sizeof *list);
	if (list == NULL) {
		x->oom = true;
		return;
	}
	size_t got = 0;
	bool bad = false;
	for (yaml_node_item_t *i = items; i < end; i++) {
		yaml_node_t *it = node(x, *i);
		char b[64];
		bool is_scalar = scalar(it, &sv);
		if (!is_scalar || sv.null) {
			ERR(x, "config.value.type", it != NULL ? it : v,
			    "resolver: an item is %s: give %s", is_scalar || it == NULL ? "empty" :
			    kind_name(it), what);
			bad = true;
			continue;
		}
		if (!parse_addr(sv.s, sv.n, &list[got])) {
			ERR(x, "config.value.invalid", it, "resolver: '%s' is not an IP address: give %s",
			    esc(&sv, b, sizeof b), what);
			bad = true;
			continue;
		}
		got++;
	}
	if (bad) {
		free(list);
		return;
	}
	free(c->resolvers);
	c->resolvers = list;
	c->n_resolvers = got;
}

static void
get_metrics(struct ctx *x, yaml_node_t *v)
{
	struct stsd_config *c = x->c;
	const char *what = "a listen address host:port, e.g. 127.0.0.1:9464 or [::1]:9464";
	struct sv sv;
	char b[64];
	if (!need_scalar(x, "metrics", v, &sv, what) || null_value(x, "metrics", v, &sv, "off"))
		return;
	if (sv.plain && (sv_is(&sv, "false") || sv_is(&sv, "False") || sv_is(&sv, "FALSE") ||
			 sv_is(&sv, "off") || sv_is(&sv, "no"))) {
		free(c->metrics.host);
		c->metrics.host = NULL;
		c->metrics.port = 0;
		return;
	}
	const char *h, *p;
	size_t hl, pl;
	uint16_t port;
	char *host;
	if (memchr(sv.s, ':', sv.n) == NULL && parse_port(sv.s, sv.n, &port)) {
		host = strdup("127.0.0.1");
		if (host == NULL)
			x->oom = true;
	} else if (split_hostport(sv.s, sv.n, &h, &hl, &p, &pl) && host_chars_ok(h, hl) &&
		   parse_port(p, pl, &port)) {
		struct sv hs = { h, hl, true, false };
		host = sv_dup(x, &hs);
	} else {
		size_t colons = 0;
		for (size_t i = 0; i < sv.n; i++)
			colons += sv.s[i] == ':';
		bool v6 = sv.n > 0 && sv.s[0] != '[' && colons > 1;
		ERR(x, "config.value.invalid", v, "metrics: '%s' is not host:port%s: give %s",
		    esc(&sv, b, sizeof b), v6 ? " (an IPv6 address needs brackets)" : "", what);
		return;
	}
	if (host == NULL)
		return;
	free(c->metrics.host);
	c->metrics.host = host;
	c->metrics.port = port;
}

static void
get_mode(struct ctx *x, yaml_node_t *v)
{
	struct sv sv;
	char b[48];
	const char *what = "permission bits in octal, e.g. 0666 or 0660";
	if (!need_scalar(x, "mode", v, &sv, what) || null_value(x, "mode", v, &sv, "unchanged"))
		return;
	struct num r;
	parse_num(&sv, &r);
	bool digits = sv.n > 0;
	for (size_t i = 0; i < sv.n && digits; i++)
		digits = (sv.s[i] >= '0' && sv.s[i] <= '9') || (i > 0 && sv.s[i] == '_');
	if (r.kind == N_NONE && digits) {
		ERR(x, "config.mode.not_octal", v, "mode: '%s' has the digit 8 or 9, so it is not"
		    " octal: give %s", esc(&sv, b, sizeof b), what);
		return;
	}
	if (r.kind == N_NONE || r.kind == N_FLOAT) {
		ERR(x, "config.mode.invalid", v, "mode: '%s' is not a number: give %s",
		    esc(&sv, b, sizeof b), what);
		return;
	}
	if (!r.octal && !(r.mag == 0 && !r.overflow)) {
		char dec[24] = "a huge number";
		if (!r.overflow)
			snprintf(dec, sizeof dec, "decimal %s%llu", r.neg ? "-" : "",
				 (unsigned long long)r.mag);
		ERR(x, "config.mode.not_octal", v,
		    "mode: '%s' is not octal (YAML reads it as %s): write it with a leading 0,"
		    " e.g. 0666", esc(&sv, b, sizeof b), dec);
		return;
	}
	if (r.neg || r.overflow || r.mag > 0777) {
		ERR(x, "config.value.range", v, "mode: '%s' is out of range: give %s (0000 to 0777)",
		    esc(&sv, b, sizeof b), what);
		return;
	}
	x->c->mode = (int)r.mag;
}

static void
get_log_level(struct ctx *x, yaml_node_t *v)
{
	static const struct {
		const char *name;
		enum sts_log_level level;
	} levels[] = {
		{ "debug", STS_LOG_DEBUG }, { "info", STS_LOG_INFO }, { "warn", STS_LOG_WARNING },
		{ "warning", STS_LOG_WARNING }, { "error", STS_LOG_ERROR }, { "fatal", STS_LOG_ERROR },
		{ "critical", STS_LOG_ERROR },
	};
	struct sv sv;
	char b[48];
	const char *what = "one of debug, info, warn, error, fatal";
	if (!need_scalar(x, "log_level", v, &sv, what) || null_value(x, "log_level", v, &sv, "info"))
		return;
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
		if (strlen(levels[i].name) == sv.n && strncasecmp(levels[i].name, sv.s, sv.n) == 0) {
			x->c->log_level = levels[i].level;
			return;
		}
	ERR(x, "config.value.invalid", v, "log_level: '%s' is not a level: give %s",
	    esc(&sv, b, sizeof b), what);
}

static void
remember(struct seen *s, const struct entry *e)
{
	s->set = true;
	s->mark = e->k->start_mark;
}

static void
walk_top(struct ctx *x, yaml_node_t *root)
{
	struct stsd_config *c = x->c;
	struct ents m;
	if (!map_view(x, root, "the top level", &m)) {
		free(m.v);
		return;
	}
	for (size_t i = 0; i < m.n && !x->oom; i++) {
		const struct entry *e = &m.v[i];
		int id = key_index(e, top_keys);
		if (id < 0) {
			unknown_key(x, e, "the top level", top_keys);
			continue;
		}
		const char *k = top_keys[id];
		char *s;
		uint32_t u;
		switch (id) {
		case T_HOST:
			remember(&x->host, e);
			s = get_text(x, k, e->v, "an address or host name to listen on, e.g. 127.0.0.1",
				     "127.0.0.1");
			if (s != NULL && !host_chars_ok(s, strlen(s))) {
				char b[48];
				ERR(x, "config.value.invalid", e->v,
				    "host: '%s' is not an address or host name: give e.g. 127.0.0.1 or ::1"
				    " (no brackets, no port; the port goes in 'port')",
				    sts_escape(s, strlen(s), b, sizeof b));
				free(s);
				s = NULL;
			}
			if (s != NULL)
				replace_str(&c->host, s);
			break;
		case T_PORT:
			remember(&x->port, e);
			u = c->port;
			if (get_uint(x, k, e->v, 1, 65535, "", &u, NULL))
				c->port = (uint16_t)u;
			break;
		case T_PATH:
			s = get_path(x, k, e->v, STSD_UNIX_PATH_MAX, "none: listen on host:port");
			if (s != NULL)
				replace_str(&c->path, s);
			break;
		case T_MODE:
			remember(&x->mode, e);
			get_mode(x, e->v);
			break;
		case T_REUSE_PORT:
			remember(&x->reuse_port, e);
			get_bool(x, k, e->v, &c->reuse_port);
			break;
		case T_SHUTDOWN_TIMEOUT:
			get_duration(x, k, e->v, 0, 3600000, &c->shutdown_timeout_ms);
			break;
		case T_CACHE_GRACE:
			get_duration(x, k, e->v, 0, 2592000000u, &c->cache_grace_ms);
			break;
		case T_CACHE:
			if (section(x, k, e->v, "'cache: {type: sqlite, options: {filename: ...}}'"))
				walk_cache(x, e->v);
			break;
		case T_PROACTIVE:
			if (section(x, k, e->v, "'proactive_policy_fetching: {enabled: true}'"))
				walk_proactive(x, e->v);
			break;
		case T_DEFAULT_ZONE:
			if (section(x, k, e->v, "'default_zone: {timeout: 4}'"))
				walk_zone(x, "default_zone", e->v, &c->default_zone);
			break;
		case T_ZONES:
			if (section(x, k, e->v, "'zones: {myzone: {strict_testing: true}}'"))
				walk_zones(x, e->v);
			break;
		case T_RESOLVER:
			get_resolvers(x, e->v);
			break;
		case T_CA_FILE:
			s = get_path(x, k, e->v, PATH_MAX_LEN, "OpenSSL's default CA store");
			if (s != NULL)
				replace_str(&c->ca_file, s);
			break;
		case T_USER:
		case T_GROUP:
		case T_SOCKET_OWNER:
		case T_SOCKET_GROUP: {
			bool grp = id == T_GROUP || id == T_SOCKET_GROUP;
			char **dst = id == T_USER ? &c->user : id == T_GROUP ? &c->group
				     : id == T_SOCKET_OWNER ? &c->socket_owner : &c->socket_group;
			if (id == T_SOCKET_OWNER)
				remember(&x->socket_owner, e);
			if (id == T_SOCKET_GROUP)
				remember(&x->socket_group, e);
			s = get_name(x, k, e->v, grp ? "a group name or numeric gid" : "a user name or numeric uid");
			if (s != NULL)
				replace_str(dst, s);
			break;
		}
		case T_METRICS:
			get_metrics(x, e->v);
			break;
		case T_NEGATIVE_TTL:
			get_uint(x, k, e->v, 0, 86400, "seconds", &c->negative_ttl_s, NULL);
			break;
		case T_IDLE_TIMEOUT:
			/* Postfix itself drops idle socketmap connections after 10 s. */
			get_duration(x, k, e->v, 1000, 86400000, &c->idle_timeout_ms);
			break;
		case T_HTTPS_PROXY: {
			s = get_text(x, k, e->v, "a proxy URL such as http://proxy.example:3128, or none",
				     "the HTTPS_PROXY environment variable");
			if (s == NULL)
				break;
			static const char *const schemes[] = { "http://", "https://", "socks4://",
				"socks4a://", "socks5://", "socks5h://" };
			bool known = strcmp(s, "none") == 0;
			for (size_t j = 0; !known && j < sizeof schemes / sizeof schemes[0]; j++)
				known = strncmp(s, schemes[j], strlen(schemes[j])) == 0 &&
					s[strlen(schemes[j])] != '\0';
			if (!known) {
				char b[64];
				ERR(x, "config.value.invalid", e->v,
				    "https_proxy: '%s' is not a proxy URL: give http://host:port"
				    " (or https://, socks5h://), or none",
				    sts_escape(s, strlen(s), b, sizeof b));
				free(s);
				break;
			}
			replace_str(&c->https_proxy, s);
			break;
		}
		case T_MAX_CONNECTIONS:
			get_uint(x, k, e->v, 1, 100000, "connections", &c->max_connections, NULL);
			break;
		case T_BACKOFF:
			u = c->backoff_s;
			if (get_uint(x, k, e->v, 0, 86400, "seconds", &u, NULL)) {
				if (u < STSD_BACKOFF_MIN) {
					WARN(x, "config.backoff.min", e->v,
					     "backoff: %u s is below the minimum of %d s, which is used"
					     " instead; write %d or more", u, STSD_BACKOFF_MIN, STSD_BACKOFF_MIN);
					u = STSD_BACKOFF_MIN;
				}
				c->backoff_s = u;
			}
			break;
		case T_STATE_DIR:
			s = get_path(x, k, e->v, PATH_MAX_LEN - 16, STSD_STATE_DIR);
			if (s != NULL)
				replace_str(&c->state_dir, s);
			break;
		case T_PIDFILE:
			s = get_path(x, k, e->v, PATH_MAX_LEN, "none");
			if (s != NULL)
				replace_str(&c->pidfile, s);
			break;
		case T_LOG_LEVEL:
			get_log_level(x, e->v);
			break;
		}
	}
	free(m.v);
}

/* Checks that span several keys, and defaults that depend on others. */
static void
finish(struct ctx *x)
{
	struct stsd_config *c = x->c;
	if (c->path != NULL) {
		if (x->host.set)
			diag(x, STS_SEV_WARNING, "config.listen.ignored", &x->host.mark,
			     "host is ignored because path is set (a UNIX socket): remove one of them");
		if (x->port.set)
			diag(x, STS_SEV_WARNING, "config.listen.ignored", &x->port.mark,
			     "port is ignored because path is set (a UNIX socket): remove one of them");
		if (x->reuse_port.set)
			diag(x, STS_SEV_WARNING, "config.listen.ignored", &x->reuse_port.mark,
			     "reuse_port has no effect on a UNIX socket (path is set): remove it");
	} else {
		static const char *const names[] = { "mode", "socket_owner", "socket_group" };
		const struct seen *s[] = { &x->mode, &x->socket_owner, &x->socket_group };
		for (size_t i = 0; i < 3; i++)
			if (s[i]->set)
				diag(x, STS_SEV_WARNING, "config.listen.ignored", &s[i]->mark,
				     "%s applies only to the UNIX socket given by 'path'; without path it"
				     " is ignored: set path or remove %s", names[i], names[i]);
	}
	struct stsd_cache_config *k = &c->cache;
	const yaml_mark_t *tm = x->cache_type.set ? &x->cache_type.mark : NULL;
	if (k->type == STSD_CACHE_SQLITE && k->filename == NULL) {
		k->filename = join_path(c->state_dir, STSD_SQLITE_FILE);
		if (k->filename == NULL)
			x->oom = true;
	}
	if (k->type == STSD_CACHE_REDIS && k->url == NULL)
		diag(x, STS_SEV_ERROR, "config.cache.missing", tm,
		     "cache type redis needs options.url, e.g. 'url: redis://127.0.0.1/0': add it");
	if (k->type == STSD_CACHE_REDIS_SENTINEL && (k->n_sentinels == 0 || k->sentinel_master_name == NULL))
		diag(x, STS_SEV_ERROR, "config.cache.missing", tm,
		     "cache type redis_sentinel needs options.sentinels (a list of [host, port])"
		     " and options.sentinel_master_name: add %s",
		     k->n_sentinels == 0 && k->sentinel_master_name == NULL ? "both"
		     : k->n_sentinels == 0 ? "sentinels" : "sentinel_master_name");
}

/* ------------------------------------------------------------------- parse */

static void
yaml_error(struct ctx *x, yaml_parser_t *p)
{
	char hint[96] = "";
	const char *problem = p->problem != NULL ? p->problem : "unknown problem";
	if (p->error == YAML_READER_ERROR) {
		struct pos ps = byte_pos(x, p->problem_offset);
		char val[16] = "";
		if (p->problem_value >= 0)
			snprintf(val, sizeof val, " 0x%x", (unsigned)p->problem_value & 0xffffffu);
		sts_diags_add(x->d, STS_SEV_ERROR, "config.yaml.encoding", "", ps.offset, ps.line,
			      ps.column, "the file is not valid UTF-8 text here (%s%s): save it as UTF-8"
			      " without control characters", problem, val);
		return;
	}
	const yaml_mark_t *m = &p->problem_mark;
	size_t at = char_to_byte(x, m->index);
	if (strstr(problem, "tab") != NULL ||
	    (at < x->len && x->text[at] == '\t'))
		snprintf(hint, sizeof hint, "; indent with spaces, never TABs");
	else if (strstr(problem, "mapping values are not allowed") != NULL)
		snprintf(hint, sizeof hint, "; quote a value that contains ': ', or check the indentation");
	else if (strstr(problem, "could not find expected ':'") != NULL)
		snprintf(hint, sizeof hint, "; write each entry as 'key: value'");
	else if (strstr(problem, "did not find expected") != NULL)
		snprintf(hint, sizeof hint, "; check the indentation of this line against the lines above");
	else if (strstr(problem, "undefined alias") != NULL)
		snprintf(hint, sizeof hint, "; define the &anchor before using *alias");
	struct pos ps = mark_pos(x, m);
	char where[64] = "";
	if (p->context != NULL)
		snprintf(where, sizeof where, " (%s, which began at line %zu)", p->context,
			 p->context_mark.line + 1);
	sts_diags_add(x->d, STS_SEV_ERROR, "config.yaml.syntax", "", ps.offset, ps.line, ps.column,
		      "YAML syntax error at line %u, column %u: %s%s%s", ps.line, ps.column, problem,
		      where, hint[0] ? hint : "; fix the YAML");
}

int
stsd_config_parse(const char *text, size_t len, const char *filename, struct stsd_config *out,
		  struct sts_diags *d)
{
	int rc = peer_defaults(out);
	if (rc == STS_OK && filename != NULL && (out->source = strdup(filename)) == NULL)
		rc = STS_ENOMEM;
	if (rc != STS_OK)
		return rc;
	if (len > STSD_CONFIG_MAX) {
		sts_diags_add(d, STS_SEV_ERROR, "config.file.too_large", "", 0, 1, 1,
			      "the configuration is %zu bytes; at most %d are read: check that this"
			      " is the configuration file", len, STSD_CONFIG_MAX);
		return STS_ETOOBIG;
	}
	const unsigned char *u = (const unsigned char *)text;
	if (len >= 2 && ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff))) {
		sts_diags_add(d, STS_SEV_ERROR, "config.yaml.encoding", "", 0, 1, 1,
			      "the file is UTF-16: save it as UTF-8");
		return STS_EINVAL;
	}
	struct ctx x = { .c = out, .d = d };
	/* libyaml counts a BOM as a column of line 1, which breaks the
	 * indentation of the first key: skip it and add it back to offsets */
	if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf)
		x.bom = 3;
	x.text = u + x.bom;
	x.len = len - x.bom;
	size_t errors_before = d->n_errors;
	if (build_checkpoints(&x) != STS_OK)
		return STS_ENOMEM;

	yaml_parser_t p;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&p)) {
		free(x.ckpt);
		return STS_ENOMEM;
	}
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	yaml_parser_set_input_string(&p, x.text, x.len);
	if (!yaml_parser_load(&p, &doc)) {
		if (p.error == YAML_MEMORY_ERROR)
			x.oom = true;
		else
			yaml_error(&x, &p);
	} else {
		x.doc = &doc;
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (root != NULL) {
			struct sv sv;
			if (root->type == YAML_MAPPING_NODE)
				walk_top(&x, root);
			else if (!(scalar(root, &sv) && sv.null))
				ERR(&x, "config.yaml.not_mapping", root,
				    "the file is %s, not a mapping of keys: write one 'key: value' per"
				    " line, e.g. 'port: 8461'", kind_name(root));
			/* safe_load reads exactly one document */
			yaml_document_t next;
			if (yaml_parser_load(&p, &next)) {
				yaml_node_t *r2 = yaml_document_get_root_node(&next);
				if (r2 != NULL)
					diag(&x, STS_SEV_ERROR, "config.yaml.documents", &next.start_mark,
					     "a second YAML document starts at line %zu: mta-sts-daemon reads"
					     " exactly one; remove the '---' and what follows, or merge them",
					     next.start_mark.line + 1);
				yaml_document_delete(&next);
			} else if (p.error == YAML_MEMORY_ERROR) {
				x.oom = true;
			} else {
				yaml_error(&x, &p);
			}
		}
		finish(&x);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&p);
	free(x.ckpt);
	if (x.oom)
		return STS_ENOMEM;
	return d->n_errors > errors_before ? STS_EINVAL : STS_OK;
}

/* ------------------------------------------------------------------- load */

int
stsd_config_load(const char *path, struct stsd_config *out, struct sts_diags *d)
{
	char pb[96];
	sts_escape(path, strlen(path), pb, sizeof pb);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT) {
			int rc = stsd_config_defaults(out);
			return rc != STS_OK ? rc : STS_ENOTFOUND;
		}
		memset(out, 0, sizeof *out);
		sts_diags_add(d, STS_SEV_ERROR, "config.file.unreadable", "", 0, 1, 1,
			      "cannot open %s: %s: check the path and its permissions", pb, strerror(e));
		return STS_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		memset(out, 0, sizeof *out);
		sts_diags_add(d, STS_SEV_ERROR, "config.file.unreadable", "", 0, 1, 1,
			      "%s is not a regular file: give the path of the YAML file", pb);
		return STS_EIO;
	}
	size_t cap = STSD_CONFIG_MAX + 1, n = 0;
	char *buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		memset(out, 0, sizeof *out);
		return STS_ENOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			free(buf);
			memset(out, 0, sizeof *out);
			sts_diags_add(d, STS_SEV_ERROR, "config.file.unreadable", "", 0, 1, 1,
				      "cannot read %s: %s: check the file", pb, strerror(e));
			return STS_EIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap)
			break;   /* one byte past the ceiling: parse reports it */
	}
	close(fd);
	int rc = stsd_config_parse(buf, n, path, out, d);
	free(buf);
	return rc;
}

/* ----------------------------------------------------------------- lookup */

const struct stsd_zone *
stsd_config_zone(const struct stsd_config *c, const char *name, size_t len)
{
	size_t lo = 0, hi = c->n_zones;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *zn = c->zones[mid].name;
		size_t zl = strlen(zn);
		int r = memcmp(name, zn, len < zl ? len : zl);
		if (r == 0)
			r = len < zl ? -1 : len > zl;
		if (r == 0)
			return &c->zones[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return &c->default_zone;
}

/* ------------------------------------------------------------------ write */

/* The inside of a double-quoted YAML scalar: what libyaml's reader refuses
 * (controls, C1, surrogates, U+FFFE/F) and the line breaks a double-quoted
 * scalar would fold (NEL, LS, PS) are written as escapes. */
static int
put_str_body(struct sts_buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	int rc = STS_OK;
	while (rc == STS_OK && *s != '\0') {
		unsigned char ch = *s;
		if (ch < 0x80) {
			if (ch == '"' || ch == '\\')
				rc = sts_buf_printf(b, "\\%c", ch);
			else if (ch < 0x20 || ch == 0x7f)
				rc = sts_buf_printf(b, "\\x%02x", ch);
			else
				rc = sts_buf_putc(b, ch);
			s++;
			continue;
		}
		size_t len = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 0;
		uint32_t cp = len == 4 ? ch & 0x07u : len == 3 ? ch & 0x0fu : ch & 0x1fu;
		for (size_t i = 1; i < len; i++) {
			if ((s[i] & 0xc0) != 0x80) {
				len = 0;
				break;
			}
			cp = cp << 6 | (s[i] & 0x3fu);
		}
		if (len == 0) {   /* not UTF-8 (libyaml never produces it): keep it parseable */
			rc = sts_buf_printf(b, "\\x%02x", ch);
			s++;
			continue;
		}
		bool printable = (cp >= 0xa0 && cp <= 0xd7ff && cp != 0x2028 && cp != 0x2029) ||
				 (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
		if (printable)
			rc = sts_buf_append(b, s, len);
		else if (cp <= 0xffff)
			rc = sts_buf_printf(b, "\\u%04x", (unsigned)cp);
		else
			rc = sts_buf_printf(b, "\\U%08x", (unsigned)cp);
		s += len;
	}
	return rc;
}

static int
put_str(struct sts_buf *b, const char *s)
{
	int rc = sts_buf_putc(b, '"');
	if (rc == STS_OK)
		rc = put_str_body(b, s);
	return rc == STS_OK ? sts_buf_putc(b, '"') : rc;
}

static int
put_kv_str(struct sts_buf *b, const char *indent, const char *key, const char *s)
{
	if (s == NULL)
		return STS_OK;
	int rc = sts_buf_printf(b, "%s%s: ", indent, key);
	if (rc == STS_OK)
		rc = put_str(b, s);
	return rc == STS_OK ? sts_buf_putc(b, '\n') : rc;
}

static int
put_secs(struct sts_buf *b, const char *indent, const char *key, uint32_t ms)
{
	char s[32];
	fmt_seconds(ms, s, sizeof s);
	return sts_buf_printf(b, "%s%s: %s\n", indent, key, s);
}

static const char *
tf(bool v)
{
	return v ? "true" : "false";
}

static int
put_zone(struct sts_buf *b, const char *indent, const struct stsd_zone *z)
{
	int rc = sts_buf_printf(b, "%sstrict_testing: %s\n%srequire_sni: %s\n%stlsrpt: %s\n"
				   "%stemp_on_failure: %s\n", indent, tf(z->strict_testing), indent,
				tf(z->require_sni), indent, tf(z->tlsrpt), indent, tf(z->temp_on_failure));
	return rc == STS_OK ? put_secs(b, indent, "timeout", z->timeout_ms) : rc;
}

static const char *
level_name(enum sts_log_level l)
{
	switch (l) {
	case STS_LOG_DEBUG: return "debug";
	case STS_LOG_INFO: return "info";
	case STS_LOG_WARNING: return "warn";
	case STS_LOG_ERROR: return "error";
	}
	return "info";
}

int
stsd_config_write(const struct stsd_config *c, struct sts_buf *b)
{
	const struct stsd_cache_config *k = &c->cache;
	int rc = sts_buf_puts(b, "# mta-stsd effective configuration\n");
#define TRY(e) do { if (rc == STS_OK) rc = (e); } while (0)
	TRY(put_kv_str(b, "", "host", c->host));
	TRY(sts_buf_printf(b, "port: %u\n", c->port));
	TRY(put_kv_str(b, "", "path", c->path));
	if (c->mode >= 0)
		TRY(sts_buf_printf(b, "mode: 0%03o\n", (unsigned)c->mode));
	TRY(sts_buf_printf(b, "reuse_port: %s\n", tf(c->reuse_port)));
	TRY(put_secs(b, "", "shutdown_timeout", c->shutdown_timeout_ms));
	TRY(put_secs(b, "", "cache_grace", c->cache_grace_ms));
	TRY(sts_buf_printf(b, "cache:\n  type: %s\n  options:\n", stsd_cache_type_name(k->type)));
	switch (k->type) {
	case STSD_CACHE_INTERNAL:
		TRY(sts_buf_printf(b, "    cache_size: %u\n", k->cache_size));
		break;
	case STSD_CACHE_SQLITE:
		TRY(put_kv_str(b, "    ", "filename", k->filename));
		if (k->threads != 0)
			TRY(sts_buf_printf(b, "    threads: %u\n", k->threads));
		TRY(put_secs(b, "    ", "timeout", k->timeout_ms));
		break;
	case STSD_CACHE_REDIS:
		TRY(put_kv_str(b, "    ", "url", k->url));
		break;
	case STSD_CACHE_REDIS_SENTINEL:
		TRY(put_kv_str(b, "    ", "sentinel_master_name", k->sentinel_master_name));
		if (k->n_sentinels > 0)
			TRY(sts_buf_puts(b, "    sentinels:\n"));
		for (size_t i = 0; i < k->n_sentinels; i++) {
			TRY(sts_buf_puts(b, "      - ["));
			TRY(put_str(b, k->sentinels[i].host));
			TRY(sts_buf_printf(b, ", %u]\n", k->sentinels[i].port));
		}
		break;
	case STSD_CACHE_POSTGRES:
		TRY(put_kv_str(b, "    ", "dsn", k->dsn));
		TRY(put_secs(b, "    ", "timeout", k->timeout_ms));
		break;
	}
	for (size_t i = 0; i < k->n_options; i++) {
		TRY(sts_buf_puts(b, "    "));
		const struct stsd_option *o = &k->options[i];
		TRY(put_str(b, o->key));
		TRY(sts_buf_puts(b, ": "));
		bool safe = o->plain && o->value[0] != '\0';
		for (const char *s = o->value; safe && *s != '\0'; s++)
			safe = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			       (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '+' ||
			       (*s == '-' && s != o->value);
		if (o->plain && o->value[0] == '\0')
			TRY(sts_buf_putc(b, '~'));
		else if (safe)
			TRY(sts_buf_puts(b, o->value));
		else
			TRY(put_str(b, o->value));
		TRY(sts_buf_putc(b, '\n'));
	}
	TRY(sts_buf_printf(b, "proactive_policy_fetching:\n  enabled: %s\n  interval: %u\n"
			      "  concurrency_limit: %u\n  grace_ratio: %.17g\n",
			   tf(c->proactive.enabled), c->proactive.interval_s,
			   c->proactive.concurrency_limit, c->proactive.grace_ratio));
	TRY(sts_buf_puts(b, "default_zone:\n"));
	TRY(put_zone(b, "  ", &c->default_zone));
	TRY(sts_buf_printf(b, "zones:%s\n", c->n_zones == 0 ? " {}" : ""));
	for (size_t i = 0; i < c->n_zones; i++) {
		TRY(sts_buf_puts(b, "  "));
		TRY(put_str(b, c->zones[i].name));
		TRY(sts_buf_puts(b, ":\n"));
		TRY(put_zone(b, "    ", &c->zones[i]));
	}
	TRY(sts_buf_printf(b, "resolver:%s\n", c->n_resolvers == 0 ? " []" : ""));
	for (size_t i = 0; i < c->n_resolvers; i++) {
		const struct stsd_addr *a = &c->resolvers[i];
		TRY(sts_buf_printf(b, a->family == AF_INET6 ? "  - \"[%s]:%u\"\n" : "  - \"%s:%u\"\n",
				   a->ip, a->port));
	}
	TRY(put_kv_str(b, "", "ca_file", c->ca_file));
	TRY(put_kv_str(b, "", "https_proxy", c->https_proxy));
	TRY(put_kv_str(b, "", "user", c->user));
	TRY(put_kv_str(b, "", "group", c->group));
	TRY(put_kv_str(b, "", "socket_owner", c->socket_owner));
	TRY(put_kv_str(b, "", "socket_group", c->socket_group));
	if (c->metrics.host != NULL) {
		bool v6 = strchr(c->metrics.host, ':') != NULL;
		TRY(sts_buf_printf(b, "metrics: \"%s", v6 ? "[" : ""));
		TRY(put_str_body(b, c->metrics.host));
		TRY(sts_buf_printf(b, "%s:%u\"\n", v6 ? "]" : "", c->metrics.port));
	}
	TRY(sts_buf_printf(b, "negative_ttl: %u\nbackoff: %u\n", c->negative_ttl_s, c->backoff_s));
	TRY(put_secs(b, "", "idle_timeout", c->idle_timeout_ms));
	TRY(sts_buf_printf(b, "max_connections: %u\n", c->max_connections));
	TRY(put_kv_str(b, "", "state_dir", c->state_dir));
	TRY(put_kv_str(b, "", "pidfile", c->pidfile));
	TRY(sts_buf_printf(b, "log_level: %s\n", level_name(c->log_level)));
#undef TRY
	return rc;
}

unsigned
stsd_seconds_ms(const char *text)
{
	char *end = NULL;
	double v = strtod(text, &end);
	if (end == text || *end != '\0' || !(v >= 0.001 && v <= 3600))
		return 0;
	return (unsigned)(v * 1000.0);
}

void
stsd_redis_target(const char *url_in, char *url, size_t urlsz, unsigned *timeout_ms,
		  char *unused, size_t unusedsz)
{
	snprintf(url, urlsz, "%s", url_in);
	if (unusedsz > 0)
		unused[0] = '\0';
	char *q = strchr(url, '?');
	if (q == NULL)
		return;
	*q++ = '\0';
	char db[16] = "";
	for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv != NULL;
	     kv = strtok_r(NULL, "&", &save)) {
		char *v = strchr(kv, '=');
		if (v != NULL)
			*v++ = '\0';
		if (strcmp(kv, "socket_timeout") == 0 && v != NULL && stsd_seconds_ms(v) > 0) {
			*timeout_ms = stsd_seconds_ms(v);
		} else if (strcmp(kv, "db") == 0 && v != NULL && *v != '\0' &&
			   strlen(v) < sizeof db && strspn(v, "0123456789") == strlen(v)) {
			snprintf(db, sizeof db, "%s", v);
		} else {
			size_t used = strlen(unused);
			snprintf(unused + used, unusedsz - used, "%s%s", used ? "," : "", kv);
		}
	}
	if (db[0] == '\0')
		return;
	size_t len = strlen(url);
	if (strncmp(url, "unix://", 7) == 0)
		snprintf(url + len, urlsz - len, "?db=%s", db);
	else if (strncmp(url, "redis://", 8) == 0 && strchr(url + 8, '/') == NULL)
		snprintf(url + len, urlsz - len, "/%s", db);
}
