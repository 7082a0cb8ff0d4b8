/* test_config.c: mta-stsd configuration (daemon/config.c).
 *
 * Tables of YAML snippets with the diagnostic they must produce (code, line,
 * column, part of the message) or the effective values they must give
 * (checked on the struct, or as lines of stsd_config_write's output, which
 * spells out every key); the peer's example configurations rebuilt from
 * shared/spec/peer-postfix-mta-sts-resolver.md section 4; zone inheritance;
 * octal modes; YAML 1.1 scalars; duplicate and merge keys; write/parse
 * round trip; loading files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mtasts/mtasts.h>

#include "config.h"
#include "testutil.h"

static void
print_diags(const struct sts_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		printf("# %u:%u %s %s %s\n", d->items[i].line, d->items[i].column,
		       sts_severity_name(d->items[i].severity), d->items[i].code, d->items[i].message);
}

/* Every message tells the reader what to do. */
static bool
says_what_to_do(const char *m)
{
	static const char *const verbs[] = {
		"give", "remove", "write", "use ", "fix", "add ", "move", "rename", "save",
		"check", "set ", "choose", "merge", "quote", "indent", "define", "put it",
	};
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strstr(m, verbs[i]) != NULL)
			return true;
	return false;
}

static int
parse(const char *yaml, struct stsd_config *c, struct sts_diags *d)
{
	sts_diags_init(d);
	int rc = stsd_config_parse(yaml, strlen(yaml), "test.yml", c, d);
	print_diags(d);
	return rc;
}

/* ------------------------------------------------------------ diagnostics */

struct diag_case {
	const char *name;
	const char *yaml;
	int rc;
	const char *code;        /* must be present (NULL: no diagnostic at all) */
	unsigned line, column;   /* of that diagnostic, when line != 0 */
	const char *msg_part;
};

static const struct diag_case diag_cases[] = {
	/* wrong types */
	{ "port not a number", "host: 127.0.0.1\nport: 'abc'\n", STS_EINVAL, "config.value.type", 2, 7, "port: 'abc' is not a number: give 1-65535" },
	{ "port plain text", "port: eighty\n", STS_EINVAL, "config.value.type", 1, 7, "not a number" },
	{ "port a list", "port: [1, 2]\n", STS_EINVAL, "config.value.type", 1, 7, "is a list" },
	{ "port a float", "port: 8461.5\n", STS_EINVAL, "config.value.type", 1, 7, "whole number" },
	{ "timeout text", "default_zone:\n  timeout: soon\n", STS_EINVAL, "config.value.type", 2, 12, "default_zone.timeout: 'soon' is not a number" },
	{ "bool text", "reuse_port: maybe\n", STS_EINVAL, "config.value.type", 1, 13, "write true or false" },
	{ "bool a mapping", "reuse_port: {a: 1}\n", STS_EINVAL, "config.value.type", 1, 13, "is a mapping" },
	{ "section a scalar", "cache: sqlite\n", STS_EINVAL, "config.value.type", 1, 8, "must be a mapping" },
	{ "zones a list", "zones: [a, b]\n", STS_EINVAL, "config.value.type", 1, 8, "must be a mapping" },
	{ "zone key directly under zones", "zones:\n  timeout: 5\n", STS_EINVAL, "config.value.type", 2, 12, "put it under default_zone" },
	{ "zone body a scalar", "zones:\n  myzone: strict\n", STS_EINVAL, "config.value.type", 2, 11, "a zone must be a mapping" },
	{ "root a scalar", "just text\n", STS_EINVAL, "config.yaml.not_mapping", 1, 1, "'key: value'" },
	{ "root a list", "- port: 1\n", STS_EINVAL, "config.yaml.not_mapping", 1, 1, "a list" },
	/* ranges */
	{ "port 0", "port: 0\n", STS_EINVAL, "config.value.range", 1, 7, "out of range" },
	{ "port 70000", "port: 70000\n", STS_EINVAL, "config.value.range", 1, 7, "from 1 to 65535" },
	{ "port negative", "port: -1\n", STS_EINVAL, "config.value.range", 1, 7, "negative" },
	{ "port 2^64", "port: 18446744073709551616\n", STS_EINVAL, "config.value.range", 1, 7, NULL },
	{ "negative shutdown_timeout", "shutdown_timeout: -5\n", STS_EINVAL, "config.value.range", 1, 19, "negative" },
	{ "negative cache_grace", "cache_grace: -0.5\n", STS_EINVAL, "config.value.range", 1, 14, "negative" },
	{ "zone timeout 0", "default_zone:\n  timeout: 0\n", STS_EINVAL, "config.value.range", 2, 12, "seconds from 0.001 to 300" },
	{ "zone timeout negative", "zones:\n  z:\n    timeout: -4\n", STS_EINVAL, "config.value.range", 3, 14, "zones.z.timeout" },
	{ "zone timeout .inf", "default_zone:\n  timeout: .inf\n", STS_EINVAL, "config.value.range", 2, 12, NULL },
	{ "zone timeout .nan", "default_zone:\n  timeout: .nan\n", STS_EINVAL, "config.value.range", 2, 12, NULL },
	{ "grace_ratio 0", "proactive_policy_fetching:\n  grace_ratio: 0\n", STS_EINVAL, "config.value.range", 2, 16, "above 0" },
	{ "grace_ratio negative", "proactive_policy_fetching:\n  grace_ratio: -2.0\n", STS_EINVAL, "config.value.range", 2, 16, NULL },
	{ "grace_ratio text", "proactive_policy_fetching:\n  grace_ratio: half\n", STS_EINVAL, "config.value.type", 2, 16, NULL },
	{ "interval 0", "proactive_policy_fetching:\n  interval: 0\n", STS_EINVAL, "config.value.range", 2, 13, NULL },
	{ "concurrency 0", "proactive_policy_fetching:\n  concurrency_limit: 0\n", STS_EINVAL, "config.value.range", 2, 22, NULL },
	{ "cache_size 0", "cache:\n  options:\n    cache_size: 0\n", STS_EINVAL, "config.value.range", 3, 17, NULL },
	{ "threads 0", "cache:\n  type: sqlite\n  options:\n    threads: 0\n", STS_EINVAL, "config.value.range", 4, 14, NULL },
	{ "negative_ttl above a day", "negative_ttl: 86401\n", STS_EINVAL, "config.value.range", 1, 15, NULL },
	{ "backoff above a day", "backoff: 90000\n", STS_EINVAL, "config.value.range", 1, 10, NULL },
	{ "redis over TLS", "cache:\n  type: redis\n  options:\n    url: rediss://h/0\n", STS_EINVAL, "config.value.invalid", 4, 10, "not supported" },
	{ "https_proxy not a URL", "https_proxy: proxy.example:3128\n", STS_EINVAL, "config.value.invalid", 1, 14, "not a proxy URL" },
	{ "https_proxy scheme only", "https_proxy: http://\n", STS_EINVAL, "config.value.invalid", 1, 14, NULL },
	{ "idle_timeout below a second", "idle_timeout: 0.5\n", STS_EINVAL, "config.value.range", 1, 15, NULL },
	{ "idle_timeout text", "idle_timeout: long\n", STS_EINVAL, "config.value.type", 1, 15, NULL },
	{ "max_connections 0", "max_connections: 0\n", STS_EINVAL, "config.value.range", 1, 18, NULL },
	{ "max_connections too many", "max_connections: 100001\n", STS_EINVAL, "config.value.range", 1, 18, NULL },
	{ "unix path too long", "path: /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n", STS_EINVAL, "config.value.range", 1, 7, "choose a shorter path" },
	/* mode */
	{ "mode decimal", "path: /run/m.sock\nmode: 666\n", STS_EINVAL, "config.mode.not_octal", 2, 7, "leading 0" },
	{ "mode decimal quoted", "path: /run/m.sock\nmode: '666'\n", STS_EINVAL, "config.mode.not_octal", 2, 7, NULL },
	{ "mode hex", "path: /run/m.sock\nmode: 0x1b6\n", STS_EINVAL, "config.mode.not_octal", 2, 7, NULL },
	{ "mode text", "path: /run/m.sock\nmode: rw-rw-rw-\n", STS_EINVAL, "config.mode.invalid", 2, 7, NULL },
	{ "mode special bits", "path: /run/m.sock\nmode: 04777\n", STS_EINVAL, "config.value.range", 2, 7, "0000 to 0777" },
	{ "mode 0999 is not octal", "path: /run/m.sock\nmode: 0999\n", STS_EINVAL, "config.mode.not_octal", 2, 7, NULL },
	{ "mode without path", "mode: 0666\n", STS_OK, "config.listen.ignored", 1, 1, "set path or remove mode" },
	/* cache */
	{ "unknown cache type", "cache:\n  type: memcached\n", STS_EINVAL, "config.cache.type", 2, 9, "use one of internal, sqlite, redis, redis_sentinel, postgres" },
	{ "cache type typo", "cache:\n  type: sqllite\n", STS_EINVAL, "config.cache.type", 2, 9, "did you mean 'sqlite'" },
	{ "cache type case", "cache:\n  type: SQLite\n", STS_EINVAL, "config.cache.type", 2, 9, "did you mean 'sqlite'" },
	{ "redis without url", "cache:\n  type: redis\n", STS_EINVAL, "config.cache.missing", 2, 3, "options.url" },
	{ "redis bad url", "cache:\n  type: redis\n  options:\n    url: http://x/\n", STS_EINVAL, "config.value.invalid", 4, 10, "redis://" },
	{ "sentinel without master", "cache:\n  type: redis_sentinel\n  options:\n    sentinels: [[s1, 26379]]\n", STS_EINVAL, "config.cache.missing", 2, 3, "sentinel_master_name" },
	{ "sentinel bad port", "cache:\n  type: redis_sentinel\n  options:\n    sentinel_master_name: m\n    sentinels:\n      - [s1, 0]\n", STS_EINVAL, "config.value.invalid", 6, 9, "item 1" },
	{ "sentinels not a list", "cache:\n  type: redis_sentinel\n  options:\n    sentinel_master_name: m\n    sentinels: s1\n", STS_EINVAL, "config.value.type", 5, 16, NULL },
	{ "option of another type", "cache:\n  type: sqlite\n  options:\n    cache_size: 5\n", STS_OK, "config.cache.option_ignored", 4, 5, "for cache type internal" },
	{ "unknown sqlite option", "cache:\n  type: sqlite\n  options:\n    filname: /x.db\n", STS_OK, "config.key.unknown", 4, 5, "did you mean 'filename'" },
	{ "redis option typo passed on", "cache:\n  type: redis\n  options:\n    url: redis://h/0\n    ulr: x\n", STS_OK, "config.cache.option_passed", 5, 5, "did you mean 'url'" },
	{ "redis list option ignored", "cache:\n  type: redis\n  options:\n    url: redis://h/0\n    extra: [1]\n", STS_OK, "config.cache.option_ignored", 5, 12, NULL },
	{ "unknown cache key", "cache:\n  tpye: sqlite\n", STS_OK, "config.key.unknown", 2, 3, "did you mean 'type'" },
	{ "relative sqlite file", "cache:\n  type: sqlite\n  options:\n    filename: cache.db\n", STS_OK, "config.path.relative", 4, 15, "absolute" },
	/* unknown keys */
	{ "unknown key with hint", "host: 127.0.0.1\nport: 8461\ncach:\n  type: sqlite\n", STS_OK, "config.key.unknown", 3, 1, "unknown key 'cach' at line 3 (did you mean 'cache'?)" },
	{ "unknown key case", "Port: 8461\n", STS_OK, "config.key.unknown", 1, 1, "case-sensitive" },
	{ "transposed letters", "reuse_prot: true\n", STS_OK, "config.key.unknown", 1, 1, "did you mean 'reuse_port'" },
	{ "zone key at top level", "strict_testing: true\n", STS_OK, "config.key.unknown", 1, 1, "belongs under default_zone or zones.<name>" },
	{ "tlsrpt at top level (upstream example comment)", "tlsrpt: true\n", STS_OK, "config.key.unknown", 1, 1, "belongs under default_zone" },
	{ "timeout at top level", "timeout: 4\n", STS_OK, "config.key.unknown", 1, 1, "default_zone" },
	{ "top key inside a zone", "default_zone:\n  port: 1\n", STS_OK, "config.key.unknown", 2, 3, "belongs under the top level" },
	{ "unknown key no hint", "frobnicate: 1\n", STS_OK, "config.key.unknown", 1, 1, "it is ignored" },
	{ "unknown zone key", "zones:\n  z:\n    strict: true\n", STS_OK, "config.key.unknown", 3, 5, NULL },
	{ "unknown proactive key", "proactive_policy_fetching:\n  enable: true\n", STS_OK, "config.key.unknown", 2, 3, "did you mean 'enabled'" },
	{ "list as a key", "? [a, b]\n: 1\n", STS_OK, "config.key.not_text", 1, 3, NULL },
	/* duplicates */
	{ "duplicate key", "port: 1\nhost: ::1\nport: 2\n", STS_OK, "config.key.duplicate", 3, 1, "repeats the one at line 1" },
	{ "duplicate in zone", "zones:\n  z:\n    timeout: 1\n    timeout: 2\n", STS_OK, "config.key.duplicate", 4, 5, "zones.z" },
	{ "duplicate zone", "zones:\n  z: {}\n  z: {tlsrpt: true}\n", STS_OK, "config.key.duplicate", 3, 3, NULL },
	/* empty values */
	{ "key without value", "port:\n", STS_OK, "config.value.empty", 1, 6, "the default (8461) is used" },
	{ "tilde value", "default_zone:\n  timeout: ~\n", STS_OK, "config.value.empty", 2, 12, "the default (4)" },
	{ "quoted empty string", "host: ''\n", STS_EINVAL, "config.value.empty", 1, 7, NULL },
	{ "empty section is fine", "default_zone:\n# strict_testing: true\n", STS_OK, NULL, 0, 0, NULL },
	/* quoted and YAML 1.1 */
	{ "quoted false", "default_zone:\n  strict_testing: \"false\"\n", STS_OK, "config.value.quoted", 2, 19, "reads any quoted text as true" },
	{ "quoted number", "port: \"8461\"\n", STS_OK, "config.value.quoted", 1, 7, "remove the quotes" },
	{ "number as bool", "reuse_port: 1\n", STS_OK, "config.value.type", 1, 13, "write true or false" },
	{ "leading zero is octal", "port: 010\n", STS_OK, "config.value.octal", 1, 7, "it means 8" },
	/* our keys */
	{ "backoff below minimum", "backoff: 60\n", STS_OK, "config.backoff.min", 1, 10, "minimum of 300" },
	{ "resolver not an address", "resolver: [ns1.example]\n", STS_EINVAL, "config.value.invalid", 1, 12, "not an IP address" },
	{ "resolver port 0", "resolver:\n  - 192.0.2.1:0\n", STS_EINVAL, "config.value.invalid", 2, 5, NULL },
	{ "resolver v4 in brackets", "resolver:\n  - '[192.0.2.1]:53'\n", STS_EINVAL, "config.value.invalid", 2, 5, NULL },
	{ "resolver a mapping", "resolver: {a: 1}\n", STS_EINVAL, "config.value.type", 1, 11, NULL },
	{ "resolver null item", "resolver:\n  -\n  - 192.0.2.1\n", STS_EINVAL, "config.value.type", 0, 0, "empty" },
	{ "metrics v6 without brackets", "metrics: '::1:9464'\n", STS_EINVAL, "config.value.invalid", 1, 10, "needs brackets" },
	{ "metrics no port", "metrics: localhost\n", STS_EINVAL, "config.value.invalid", 1, 10, NULL },
	{ "metrics port 0", "metrics: 127.0.0.1:0\n", STS_EINVAL, "config.value.invalid", 1, 10, NULL },
	{ "user with space", "user: 'mta sts'\n", STS_EINVAL, "config.value.invalid", 1, 7, "not a valid name" },
	{ "group leading dash", "group: -g\n", STS_EINVAL, "config.value.invalid", 1, 8, NULL },
	{ "socket_owner without path", "socket_owner: postfix\n", STS_OK, "config.listen.ignored", 1, 1, "UNIX socket" },
	{ "host with port", "host: '127.0.0.1:8461'\n", STS_OK, NULL, 0, 0, NULL },
	{ "host in brackets", "host: '[::1]'\n", STS_EINVAL, "config.value.invalid", 1, 7, "no brackets" },
	{ "host with path", "path: /run/s.sock\nhost: 127.0.0.1\n", STS_OK, "config.listen.ignored", 2, 1, "path is set" },
	{ "reuse_port with path", "path: /run/s.sock\nreuse_port: true\n", STS_OK, "config.listen.ignored", 2, 1, "no effect on a UNIX socket" },
	{ "log level unknown", "log_level: verbose\n", STS_EINVAL, "config.value.invalid", 1, 12, "debug, info, warn, error, fatal" },
	{ "long zone timeout", "default_zone:\n  timeout: 60\n", STS_OK, "config.zone.timeout_long", 2, 12, "100 s" },
	{ "zone name with space", "zones:\n  'a b': {}\n", STS_OK, "config.zone.name", 2, 3, "never used" },
	{ "control character in a path", "pidfile: \"/run/a\\tb.pid\"\n", STS_EINVAL, "config.value.invalid", 1, 10, "control character" },
	{ "relative pidfile", "pidfile: run/x.pid\n", STS_OK, "config.path.relative", 1, 10, NULL },
	/* YAML syntax */
	{ "tab indentation", "default_zone:\n\ttimeout: 4\n", STS_EINVAL, "config.yaml.syntax", 2, 1, "TAB" },
	{ "bad indentation", "cache:\n  type: sqlite\n options:\n", STS_EINVAL, "config.yaml.syntax", 3, 2, "line 3" },
	{ "unclosed flow", "resolver: [1.2.3.4\nport: 1\n", STS_EINVAL, "config.yaml.syntax", 0, 0, "YAML syntax error" },
	{ "unclosed quote", "host: \"127.0.0.1\nport: 1\n", STS_EINVAL, "config.yaml.syntax", 3, 1, NULL },
	{ "colon in value", "host: a: b\n", STS_EINVAL, "config.yaml.syntax", 1, 8, "quote a value" },
	{ "undefined alias", "port: *p\n", STS_EINVAL, "config.yaml.syntax", 1, 7, "&anchor" },
	{ "invalid UTF-8", "host: x\nuser: \xff\n", STS_EINVAL, "config.yaml.encoding", 2, 7, "UTF-8" },
	{ "NUL byte", "host: x\n\x01", STS_EINVAL, "config.yaml.encoding", 2, 1, NULL },
	{ "UTF-16", "\xff\xfep\0", STS_EINVAL, "config.yaml.encoding", 1, 1, "UTF-16" },
	{ "error at the end without a newline", "port: 1\nhost", STS_EINVAL, "config.yaml.syntax", 2, 5, "at line 2, column 5" },
	{ "error at the end, one line", "<a: 2\n2\t", STS_EINVAL, "config.yaml.syntax", 2, 3, NULL },
	{ "two documents", "port: 1\n---\nport: 2\n", STS_EINVAL, "config.yaml.documents", 2, 1, "exactly one" },
	{ "merge of a scalar", "default_zone:\n  <<: 5\n", STS_EINVAL, "config.yaml.merge", 2, 7, NULL },
	{ "merge list of scalars", "default_zone:\n  <<: [1]\n", STS_EINVAL, "config.yaml.merge", 2, 8, NULL },
	{ "merge cycle", "default_zone: &z\n  <<: *z\n", STS_EINVAL, "config.yaml.merge_depth", 0, 0, "refer to themselves" },
	/* positions: BOM and multi-byte characters count in bytes */
	{ "BOM: columns of line 1 count it", "\xef\xbb\xbfport: x\n", STS_EINVAL, "config.value.type", 1, 10, NULL },
	{ "BOM: later lines unaffected", "\xef\xbb\xbfhost: a\nport: x\n", STS_EINVAL, "config.value.type", 2, 7, NULL },
	{ "UTF-8 before the value", "zones:\n  \xc3\xa9t\xc3\xa9: {timeout: x}\n", STS_EINVAL, "config.value.type", 2, 20, NULL },
	{ "CRLF lines", "host: a\r\nport: x\r\n", STS_EINVAL, "config.value.type", 2, 7, NULL },
	/* nothing to say */
	{ "empty file", "", STS_OK, NULL, 0, 0, NULL },
	{ "only comments", "# host: 127.0.0.1\n# port: 8461\n", STS_OK, NULL, 0, 0, NULL },
	{ "null document", "~\n", STS_OK, NULL, 0, 0, NULL },
	{ "empty mapping", "{}\n", STS_OK, NULL, 0, 0, NULL },
	{ "explicit document markers", "---\nport: 1\n...\n", STS_OK, NULL, 0, 0, NULL },
};

static size_t
case_len(const struct diag_case *c)
{
	if (strcmp(c->name, "UTF-16") == 0)
		return 4;
	return strlen(c->yaml);
}

static void
test_diag_case(void **state)
{
	const struct diag_case *c = *state;
	struct sts_diags d;
	struct stsd_config cfg;
	sts_diags_init(&d);
	int rc = stsd_config_parse(c->yaml, case_len(c), "test.yml", &cfg, &d);
	print_diags(&d);
	assert_int_equal(rc, c->rc);
	if (c->code == NULL) {
		assert_int_equal(d.n, 0);
	} else {
		const struct sts_diag *g = NULL;
		for (size_t i = 0; i < d.n && g == NULL; i++)
			if (strcmp(d.items[i].code, c->code) == 0)
				g = &d.items[i];
		if (g == NULL)
			fail_msg("no diagnostic %s", c->code);
		if (c->line != 0) {
			assert_int_equal(g->line, c->line);
			assert_int_equal(g->column, c->column);
		}
		if (c->msg_part != NULL && strstr(g->message, c->msg_part) == NULL)
			fail_msg("message '%s' lacks '%s'", g->message, c->msg_part);
	}
	for (size_t i = 0; i < d.n; i++) {
		const struct sts_diag *g = &d.items[i];
		assert_true(strncmp(g->code, "config.", 7) == 0);
		assert_true(g->line >= 1 && g->column >= 1);
		assert_true(g->offset <= case_len(c));
		if (!says_what_to_do(g->message))
			fail_msg("message does not say what to do: '%s'", g->message);
	}
	if (rc == STS_OK)
		assert_null(sts_diags_first_error(&d));
	else
		assert_non_null(sts_diags_first_error(&d));
	stsd_config_free(&cfg);
}

/* -------------------------------------------------- values via the writer */

/* Each expected line must appear in stsd_config_write's output. */
struct value_case {
	const char *name;
	const char *yaml;
	const char *lines[6];
};

static const struct value_case value_cases[] = {
	{ "empty file: peer defaults", "", { "host: \"127.0.0.1\"\n", "port: 8461\n", "reuse_port: true\n", "shutdown_timeout: 20\n", "cache_grace: 60\n", "  type: internal\n  options:\n    cache_size: 10000\n" } },
	{ "empty file: proactive defaults", "", { "  enabled: false\n  interval: 86400\n  concurrency_limit: 100\n  grace_ratio: 2\n" } },
	{ "empty file: zone defaults", "", { "default_zone:\n  strict_testing: false\n  require_sni: true\n  tlsrpt: false\n  temp_on_failure: false\n  timeout: 4\n", "zones: {}\n" } },
	{ "empty file: our defaults", "", { "negative_ttl: 300\n", "backoff: 300\n", "state_dir: \"/var/lib/mta-stsd\"\n", "log_level: info\n", "resolver: []\n" } },
	{ "host and port", "host: 0.0.0.0\nport: 18461\n", { "host: \"0.0.0.0\"\n", "port: 18461\n" } },
	{ "IPv6 host", "host: '::1'\n", { "host: \"::1\"\n" } },
	{ "unix socket", "path: /var/spool/postfix/run/mta-sts.sock\nmode: 0660\n", { "path: \"/var/spool/postfix/run/mta-sts.sock\"\n", "mode: 0660\n" } },
	{ "reuse_port off", "reuse_port: false\n", { "reuse_port: false\n" } },
	{ "fractional timeouts", "shutdown_timeout: 2.5\ncache_grace: 0\n", { "shutdown_timeout: 2.5\n", "cache_grace: 0\n" } },
	{ "sqlite with threads", "cache:\n  type: sqlite\n  options:\n    filename: /tmp/c.db\n    threads: 4\n    timeout: 1.25\n", { "  type: sqlite\n", "    filename: \"/tmp/c.db\"\n    threads: 4\n    timeout: 1.25\n" } },
	{ "sqlite defaults to the state dir", "cache:\n  type: sqlite\n", { "    filename: \"/var/lib/mta-stsd/cache.db\"\n" } },
	{ "sqlite follows state_dir (set after cache)", "cache: {type: sqlite}\nstate_dir: /srv/sts/\n", { "    filename: \"/srv/sts/cache.db\"\n", "state_dir: \"/srv/sts/\"\n" } },
	{ "internal size", "cache:\n  type: internal\n  options:\n    cache_size: 500\n", { "    cache_size: 500\n" } },
	{ "redis options kept", "cache:\n  type: redis\n  options:\n    url: \"redis://127.0.0.1/0\"\n    max_connections: 25\n    socket_timeout: 1.0\n    password: \"a b\"\n", { "    url: \"redis://127.0.0.1/0\"\n", "    \"max_connections\": 25\n", "    \"socket_timeout\": 1.0\n", "    \"password\": \"a b\"\n" } },
	{ "redis_sentinel", "cache:\n  type: redis_sentinel\n  options:\n    sentinel_master_name: \"mymaster\"\n    sentinels:\n      - [\"sentinel1\", 26379]\n      - sentinel2:26380\n    password: \"x\"\n", { "    sentinel_master_name: \"mymaster\"\n    sentinels:\n      - [\"sentinel1\", 26379]\n      - [\"sentinel2\", 26380]\n", "    \"password\": \"x\"\n" } },
	{ "postgres", "cache:\n  type: postgres\n  options:\n    dsn: postgres://user@%2Frun%2Fpostgresql/user\n    timeout: 3\n    min_size: 2\n", { "  type: postgres\n", "    dsn: \"postgres://user@%2Frun%2Fpostgresql/user\"\n    timeout: 3\n", "    \"min_size\": 2\n" } },
	{ "proactive", "proactive_policy_fetching:\n  enabled: true\n  interval: 3600\n  concurrency_limit: 10\n  grace_ratio: 1.5\n", { "  enabled: true\n  interval: 3600\n  concurrency_limit: 10\n  grace_ratio: 1.5\n" } },
	{ "default zone", "default_zone:\n  strict_testing: yes\n  timeout: 2\n  require_sni: off\n  tlsrpt: on\n  temp_on_failure: True\n", { "default_zone:\n  strict_testing: true\n  require_sni: false\n  tlsrpt: true\n  temp_on_failure: true\n  timeout: 2\n" } },
	{ "resolvers", "resolver:\n  - 127.0.0.1:5353\n  - 192.0.2.1\n  - '::1'\n  - '[2001:db8::1]:53'\n  - '[::ffff:192.0.2.1]'\n", { "resolver:\n  - \"127.0.0.1:5353\"\n  - \"192.0.2.1:53\"\n  - \"[::1]:53\"\n  - \"[2001:db8::1]:53\"\n  - \"[::ffff:192.0.2.1]:53\"\n" } },
	{ "one resolver as a scalar", "resolver: 10.0.0.53\n", { "resolver:\n  - \"10.0.0.53:53\"\n" } },
	{ "our keys", "ca_file: /etc/ssl/test-ca.pem\nuser: _mta-sts\ngroup: '117'\npath: /run/s.sock\nsocket_owner: postfix\nsocket_group: postfix\npidfile: /run/mta-stsd.pid\nlog_level: DEBUG\n", { "ca_file: \"/etc/ssl/test-ca.pem\"\n", "user: \"_mta-sts\"\ngroup: \"117\"\nsocket_owner: \"postfix\"\nsocket_group: \"postfix\"\n", "pidfile: \"/run/mta-stsd.pid\"\n", "log_level: debug\n" } },
	{ "metrics host:port", "metrics: 127.0.0.1:9464\n", { "metrics: \"127.0.0.1:9464\"\n" } },
	{ "metrics IPv6", "metrics: '[::1]:9464'\n", { "metrics: \"[::1]:9464\"\n" } },
	{ "metrics port only", "metrics: 9464\n", { "metrics: \"127.0.0.1:9464\"\n" } },
	{ "ttl and backoff", "negative_ttl: 0\nbackoff: 900\n", { "negative_ttl: 0\nbackoff: 900\n" } },
	{ "https_proxy", "https_proxy: http://proxy.example:3128\n", { "https_proxy: \"http://proxy.example:3128\"\n" } },
	{ "https_proxy none", "https_proxy: none\n", { "https_proxy: \"none\"\n" } },
	{ "idle_timeout and max_connections", "idle_timeout: 10\nmax_connections: 50\n", { "idle_timeout: 10\nmax_connections: 50\n" } },
	{ "idle_timeout and max_connections defaults", "", { "idle_timeout: 300\nmax_connections: 1000\n" } },
	{ "log level warn and fatal", "log_level: warning\n", { "log_level: warn\n" } },
	{ "backoff raised to minimum", "backoff: 5\n", { "backoff: 300\n" } },
	{ "rejected value keeps default", "port: abc\nshutdown_timeout: -1\n", { "port: 8461\n", "shutdown_timeout: 20\n" } },
	{ "duplicate: last wins", "port: 1\nport: 2\n", { "port: 2\n" } },
	{ "duplicate section replaced, not merged", "cache:\n  type: sqlite\n  options: {threads: 3}\ncache:\n  options:\n    cache_size: 7\n", { "  type: internal\n  options:\n    cache_size: 7\n" } },
	{ "flow style", "{port: 9, default_zone: {timeout: 1}}\n", { "port: 9\n", "  timeout: 1\n" } },
};

static void
test_value_case(void **state)
{
	const struct value_case *c = *state;
	struct sts_diags d;
	struct stsd_config cfg;
	int rc = parse(c->yaml, &cfg, &d);
	(void)rc;
	struct sts_buf b;
	sts_buf_init(&b, 1 << 20);
	assert_int_equal(stsd_config_write(&cfg, &b), STS_OK);
	for (size_t i = 0; i < 6 && c->lines[i] != NULL; i++)
		if (strstr(sts_buf_cstr(&b), c->lines[i]) == NULL)
			fail_msg("effective config lacks '%s':\n%s", c->lines[i], sts_buf_cstr(&b));
	sts_buf_free(&b);
	stsd_config_free(&cfg);
}

/* ------------------------------------------------------- direct checks */

/* The peer's example files (§4 and the Debian examples), rebuilt. */
static const char peer_internal[] =
	"host: 127.0.0.1\n"
	"port: 8461\n"
	"reuse_port: true\n"
	"shutdown_timeout: 20\n"
	"cache:\n"
	"  type: internal\n"
	"  options:\n"
	"    cache_size: 10000\n"
	"default_zone:\n"
	"  strict_testing: false\n"
	"  timeout: 4\n"
	"zones:\n"
	"  myzone:\n"
	"    strict_testing: false\n"
	"    timeout: 4\n";

static const char peer_unixsock[] =
	"path: \"/var/run/mta-sts.sock\"\n"
	"mode: 0666\n"
	"shutdown_timeout: 20\n"
	"cache:\n"
	"  type: sqlite\n"
	"  options:\n"
	"    filename: \"/var/lib/mta-sts/cache.db\"\n"
	"default_zone:\n"
	"  strict_testing: false\n"
	"  timeout: 4\n"
	"zones:\n"
	"  myzone:\n"
	"    strict_testing: false\n"
	"    timeout: 4\n";

static const char peer_debian_etc[] =
	"# host: 127.0.0.1\n"
	"# port: 8461\n"
	"# reuse_port: true\n"
	"# shutdown_timeout: 20\n"
	"cache:\n"
	"  type: sqlite\n"
	"  options:\n"
	"    filename: \"/var/lib/mta-sts/cache.db\"\n"
	"# default_zone:\n"
	"#   strict_testing: false\n"
	"#   timeout: 4\n";

static const char peer_full[] =
	"host: 127.0.0.1\n"
	"port: 8461\n"
	"reuse_port: true\n"
	"shutdown_timeout: 20\n"
	"cache_grace: 60\n"
	"proactive_policy_fetching:\n"
	"  enabled: true\n"
	"  interval: 86400\n"
	"  concurrency_limit: 100\n"
	"  grace_ratio: 2.0\n"
	"cache:\n"
	"  type: redis\n"
	"  options:\n"
	"    url: \"redis://127.0.0.1/0\"\n"
	"    max_connections: 25\n"
	"    socket_timeout: 1.0\n"
	"    socket_connect_timeout: 1.0\n"
	"default_zone:\n"
	"  strict_testing: false\n"
	"  timeout: 4\n"
	"  require_sni: true\n"
	"  tlsrpt: false\n"
	"zones:\n"
	"  myzone:\n"
	"    strict_testing: true\n"
	"    timeout: 10\n"
	"    require_sni: false\n"
	"    tlsrpt: true\n";

static void
test_peer_examples(void **state)
{
	(void)state;
	struct sts_diags d;
	struct stsd_config c;

	assert_int_equal(parse(peer_internal, &c, &d), STS_OK);
	assert_int_equal(d.n, 0);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.port, 8461);
	assert_null(c.path);
	assert_int_equal(c.mode, -1);
	assert_true(c.reuse_port);
	assert_int_equal(c.shutdown_timeout_ms, 20000);
	assert_int_equal(c.cache.type, STSD_CACHE_INTERNAL);
	assert_int_equal(c.cache.cache_size, 10000);
	assert_int_equal(c.n_zones, 1);
	assert_string_equal(c.zones[0].name, "myzone");
	assert_int_equal(c.zones[0].line, 13);
	assert_int_equal(c.zones[0].timeout_ms, 4000);
	stsd_config_free(&c);

	assert_int_equal(parse(peer_unixsock, &c, &d), STS_OK);
	assert_int_equal(d.n, 0);
	assert_string_equal(c.path, "/var/run/mta-sts.sock");
	assert_int_equal(c.mode, 0666);
	assert_int_equal(c.cache.type, STSD_CACHE_SQLITE);
	assert_string_equal(c.cache.filename, "/var/lib/mta-sts/cache.db");
	assert_int_equal(c.cache.threads, 0);
	assert_int_equal(c.cache.timeout_ms, 5000);
	stsd_config_free(&c);

	assert_int_equal(parse(peer_debian_etc, &c, &d), STS_OK);
	assert_int_equal(d.n, 0);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.port, 8461);
	assert_int_equal(c.cache.type, STSD_CACHE_SQLITE);
	assert_int_equal(c.n_zones, 0);
	stsd_config_free(&c);

	assert_int_equal(parse(peer_full, &c, &d), STS_OK);
	assert_int_equal(d.n, 0);
	assert_true(c.proactive.enabled);
	assert_int_equal(c.proactive.interval_s, 86400);
	assert_int_equal(c.proactive.concurrency_limit, 100);
	assert_true(c.proactive.grace_ratio == 2.0);
	assert_int_equal(c.cache_grace_ms, 60000);
	assert_int_equal(c.cache.type, STSD_CACHE_REDIS);
	assert_string_equal(c.cache.url, "redis://127.0.0.1/0");
	assert_int_equal(c.cache.n_options, 3);
	assert_string_equal(c.cache.options[0].key, "max_connections");
	assert_string_equal(c.cache.options[0].value, "25");
	assert_true(c.cache.options[0].plain);
	assert_int_equal(c.cache.options[0].line, 15);
	assert_string_equal(c.cache.options[2].key, "socket_connect_timeout");
	const struct stsd_zone *z = stsd_config_zone(&c, "myzone", 6);
	assert_true(z->strict_testing && !z->require_sni && z->tlsrpt);
	assert_int_equal(z->timeout_ms, 10000);
	stsd_config_free(&c);
}

static void
test_defaults(void **state)
{
	(void)state;
	struct stsd_config c;
	assert_int_equal(stsd_config_defaults(&c), STS_OK);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.port, 8461);
	assert_null(c.path);
	assert_int_equal(c.cache.type, STSD_CACHE_SQLITE);
	assert_string_equal(c.cache.filename, "/var/lib/mta-stsd/cache.db");
	assert_string_equal(c.state_dir, "/var/lib/mta-stsd");
	assert_int_equal(c.negative_ttl_s, 300);
	assert_int_equal(c.backoff_s, 300);
	assert_int_equal(c.log_level, STS_LOG_INFO);
	assert_int_equal(c.default_zone.timeout_ms, 4000);
	assert_true(c.default_zone.require_sni);
	assert_false(c.default_zone.temp_on_failure);
	assert_null(c.metrics.host);
	assert_int_equal(c.n_resolvers, 0);
	stsd_config_free(&c);
	stsd_config_free(&c);   /* safe on a zeroed struct */

	/* an empty file is the peer's defaults: the internal cache */
	struct sts_diags d;
	assert_int_equal(parse("", &c, &d), STS_OK);
	assert_int_equal(c.cache.type, STSD_CACHE_INTERNAL);
	assert_null(c.cache.filename);
	assert_string_equal(c.source, "test.yml");
	stsd_config_free(&c);
}

/* Zones inherit from the built-in defaults, not from default_zone (peer). */
static void
test_zone_inheritance(void **state)
{
	(void)state;
	const char *y =
		"default_zone:\n"
		"  strict_testing: true\n"
		"  timeout: 9\n"
		"  require_sni: false\n"
		"  tlsrpt: true\n"
		"  temp_on_failure: true\n"
		"zones:\n"
		"  relay:\n"
		"    timeout: 2\n"
		"  b: ~\n"
		"  a:\n"
		"    require_sni: false\n";
	struct sts_diags d;
	struct stsd_config c;
	assert_int_equal(parse(y, &c, &d), STS_OK);
	assert_int_equal(d.n, 0);
	assert_int_equal(c.n_zones, 3);
	/* sorted by name */
	assert_string_equal(c.zones[0].name, "a");
	assert_string_equal(c.zones[1].name, "b");
	assert_string_equal(c.zones[2].name, "relay");

	const struct stsd_zone *r = stsd_config_zone(&c, "relay", 5);
	assert_string_equal(r->name, "relay");
	assert_int_equal(r->timeout_ms, 2000);
	assert_false(r->strict_testing);    /* built-in, not default_zone's true */
	assert_true(r->require_sni);
	assert_false(r->tlsrpt);
	assert_false(r->temp_on_failure);

	const struct stsd_zone *b = stsd_config_zone(&c, "b", 1);
	assert_string_equal(b->name, "b");
	assert_int_equal(b->timeout_ms, 4000);

	const struct stsd_zone *a = stsd_config_zone(&c, "a", 1);
	assert_false(a->require_sni);
	assert_int_equal(a->timeout_ms, 4000);

	/* unknown names fall back to default_zone */
	const struct stsd_zone *dz = stsd_config_zone(&c, "unknown", 7);
	assert_ptr_equal(dz, &c.default_zone);
	assert_null(dz->name);
	assert_true(dz->strict_testing);
	assert_int_equal(dz->timeout_ms, 9000);
	assert_ptr_equal(stsd_config_zone(&c, "", 0), &c.default_zone);
	assert_ptr_equal(stsd_config_zone(&c, "relayx", 6), &c.default_zone);
	assert_ptr_equal(stsd_config_zone(&c, "rela", 4), &c.default_zone);
	/* the name need not be NUL-terminated */
	assert_ptr_equal(stsd_config_zone(&c, "relay example.com", 5), r);
	stsd_config_free(&c);

	/* an empty zone name is kept (with a warning) and found */
	assert_int_equal(parse("zones:\n  '': {tlsrpt: true}\n", &c, &d), STS_OK);
	assert_true(sts_diags_has(&d, "config.zone.name"));
	assert_true(stsd_config_zone(&c, "", 0)->tlsrpt);
	assert_false(stsd_config_zone(&c, "x", 1)->tlsrpt);
	stsd_config_free(&c);
}

struct mode_case {
	const char *text;
	int mode;      /* -1: rejected */
};

static const struct mode_case mode_cases[] = {
	{ "0666", 0666 }, { "0660", 0660 }, { "0600", 0600 }, { "0777", 0777 }, { "0", 0 },
	{ "00", 0 }, { "0o666", 0666 }, { "'0666'", 0666 }, { "\"0644\"", 0644 }, { "0_666", 0666 },
	{ "666", -1 }, { "438", -1 }, { "0x1b6", -1 }, { "0b110", -1 }, { "0888", -1 },
	{ "01777", -1 }, { "-0666", -1 }, { "6.66", -1 }, { "true", -1 }, { "[0666]", -1 },
};

static void
test_octal_mode(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof mode_cases / sizeof mode_cases[0]; i++) {
		char y[128];
		snprintf(y, sizeof y, "path: /run/x.sock\nmode: %s\n", mode_cases[i].text);
		struct sts_diags d;
		struct stsd_config c;
		int rc = parse(y, &c, &d);
		if (mode_cases[i].mode < 0) {
			if (rc != STS_EINVAL || c.mode != -1)
				fail_msg("mode %s: accepted as %o", mode_cases[i].text, (unsigned)c.mode);
		} else if (rc != STS_OK || c.mode != mode_cases[i].mode) {
			fail_msg("mode %s: rc %d mode %o", mode_cases[i].text, rc, (unsigned)c.mode);
		}
		stsd_config_free(&c);
	}
}

/* YAML 1.1 integers and floats as PyYAML resolves them. */
struct num_case {
	const char *text;
	long long port;       /* -1: rejected */
};

static const struct num_case num_cases[] = {
	{ "8461", 8461 }, { "+8461", 8461 }, { "8_461", 8461 }, { "0x210d", 8461 }, { "0b10000100001101", 8461 },
	{ "020415", 8461 }, { "0o20415", 8461 }, { "2:21:1", 8461 }, { "141:01", 8461 }, { "140:61", -1 },
	{ "1:60", -1 }, { "8461.0", -1 }, { "8e3", -1 }, { "0x", -1 }, { "0b2", -1 }, { "08461", -1 },
	{ "'8461'", 8461 }, { "\"0x210d\"", 8461 }, { "8461 # comment", 8461 }, { "- 1", -1 },
	{ "65535", 65535 }, { "65536", -1 }, { "99999999999999999999999", -1 }, { "_1", -1 },
};

static void
test_yaml11_numbers(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof num_cases / sizeof num_cases[0]; i++) {
		char y[128];
		snprintf(y, sizeof y, "port: %s\n", num_cases[i].text);
		struct sts_diags d;
		struct stsd_config c;
		int rc = parse(y, &c, &d);
		if (num_cases[i].port < 0) {
			if (rc != STS_EINVAL || c.port != 8461)
				fail_msg("port %s: accepted as %u", num_cases[i].text, c.port);
		} else if (rc != STS_OK || c.port != num_cases[i].port) {
			fail_msg("port %s: rc %d port %u", num_cases[i].text, rc, c.port);
		}
		stsd_config_free(&c);
	}
	/* durations: floats in several spellings, stored in milliseconds */
	static const struct {
		const char *text;
		long long ms;
	} dur[] = {
		{ "4", 4000 }, { "4.5", 4500 }, { "0.001", 1 }, { ".5", 500 }, { "1_0.2_5", 10250 },
		{ "1.5e1", 15000 }, { "1.5E+1", 15000 }, { "2e0", 2000 }, { "300", 300000 },
		{ "300.001", -1 }, { "0.0004", -1 }, { "1e", -1 }, { ".", -1 }, { "1.2.3", -1 },
		{ "-.inf", -1 }, { "4s", -1 },
	};
	for (size_t i = 0; i < sizeof dur / sizeof dur[0]; i++) {
		char y[128];
		snprintf(y, sizeof y, "default_zone:\n  timeout: %s\n", dur[i].text);
		struct sts_diags d;
		struct stsd_config c;
		int rc = parse(y, &c, &d);
		if (dur[i].ms < 0) {
			if (rc != STS_EINVAL || c.default_zone.timeout_ms != 4000)
				fail_msg("timeout %s: accepted as %u ms", dur[i].text, c.default_zone.timeout_ms);
		} else if (rc != STS_OK || c.default_zone.timeout_ms != dur[i].ms) {
			fail_msg("timeout %s: rc %d, %u ms", dur[i].text, rc, c.default_zone.timeout_ms);
		}
		stsd_config_free(&c);
	}
}

static void
test_yaml11_bools(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int v;            /* -1: rejected */
		bool warn;
	} cases[] = {
		{ "true", 1, false }, { "True", 1, false }, { "TRUE", 1, false }, { "yes", 1, false },
		{ "Yes", 1, false }, { "on", 1, false }, { "ON", 1, false }, { "false", 0, false },
		{ "False", 0, false }, { "no", 0, false }, { "NO", 0, false }, { "off", 0, false },
		{ "Off", 0, false }, { "'true'", 1, true }, { "\"no\"", 0, true }, { "'OFF'", 0, true },
		{ "1", 1, true }, { "0", 0, true }, { "2", 1, true }, { "tRUE", -1, false },
		{ "y", -1, false }, { "enabled", -1, false }, { "'1'", -1, false }, { "1.0", -1, false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char y[128];
		snprintf(y, sizeof y, "proactive_policy_fetching:\n  enabled: %s\n", cases[i].text);
		struct sts_diags d;
		struct stsd_config c;
		int rc = parse(y, &c, &d);
		if (cases[i].v < 0) {
			if (rc != STS_EINVAL || c.proactive.enabled)
				fail_msg("bool %s accepted", cases[i].text);
		} else if (rc != STS_OK || c.proactive.enabled != (cases[i].v == 1) ||
			   (d.n_warnings > 0) != cases[i].warn) {
			fail_msg("bool %s: rc %d value %d warnings %zu", cases[i].text, rc,
				 c.proactive.enabled, d.n_warnings);
		}
		stsd_config_free(&c);
	}
}

/* PyYAML merge keys: explicit keys win, earlier merge items win. */
static void
test_merge_keys(void **state)
{
	(void)state;
	const char *y =
		".fast: &fast {timeout: 2, require_sni: false}\n"
		".strict: &strict {strict_testing: true, timeout: 8}\n"
		"default_zone:\n"
		"  <<: *fast\n"
		"  require_sni: true\n"
		"zones:\n"
		"  a:\n"
		"    <<: [*fast, *strict]\n"
		"  b:\n"
		"    <<: [*strict, *fast]\n"
		"    timeout: 1\n"
		"  c: *strict\n";
	struct sts_diags d;
	struct stsd_config c;
	assert_int_equal(parse(y, &c, &d), STS_OK);
	assert_int_equal(d.n_warnings, 2);    /* the two anchor holders are unknown keys */
	assert_int_equal(c.default_zone.timeout_ms, 2000);
	assert_true(c.default_zone.require_sni);
	const struct stsd_zone *a = stsd_config_zone(&c, "a", 1);
	assert_int_equal(a->timeout_ms, 2000);
	assert_true(a->strict_testing);
	assert_false(a->require_sni);
	const struct stsd_zone *b = stsd_config_zone(&c, "b", 1);
	assert_int_equal(b->timeout_ms, 1000);
	assert_true(b->strict_testing);
	const struct stsd_zone *cz = stsd_config_zone(&c, "c", 1);
	assert_int_equal(cz->timeout_ms, 8000);
	stsd_config_free(&c);

	/* a merge bomb stops at the work limit with one error */
	struct sts_buf bomb;
	sts_buf_init(&bomb, 1 << 20);
	sts_buf_puts(&bomb, "l0: &l0 {timeout: 1}\n");
	for (int i = 1; i <= 8; i++)
		sts_buf_printf(&bomb, "l%d: &l%d {<<: [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]}\n",
			       i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	sts_buf_puts(&bomb, "default_zone: *l8\n");
	sts_diags_init(&d);
	assert_int_equal(stsd_config_parse(bomb.data, bomb.len, NULL, &c, &d), STS_EINVAL);
	assert_true(sts_diags_has(&d, "config.yaml.too_complex"));
	assert_int_equal(d.n_errors, 1);
	stsd_config_free(&c);
	sts_buf_free(&bomb);
}

/* Every message quotes input only through sts_escape, and errors of all
 * sections are reported in one pass. */
static void
test_all_errors_at_once(void **state)
{
	(void)state;
	const char *y =
		"port: 0\n"
		"mode: 666\n"
		"path: /run/x.sock\n"
		"cache:\n"
		"  type: nope\n"
		"proactive_policy_fetching:\n"
		"  grace_ratio: -1\n"
		"default_zone:\n"
		"  timeout: -4\n"
		"zones:\n"
		"  z:\n"
		"    strict_testing: maybe\n"
		"user: \"\\e[31mred\"\n";
	struct sts_diags d;
	struct stsd_config c;
	assert_int_equal(parse(y, &c, &d), STS_EINVAL);
	assert_int_equal(d.n_errors, 7);
	unsigned lines[] = { 1, 2, 5, 7, 9, 12, 13 };
	size_t k = 0;
	for (size_t i = 0; i < d.n; i++) {
		for (const char *m = d.items[i].message; *m; m++)
			assert_true((unsigned char)*m >= 0x20 && (unsigned char)*m < 0x7f);
		if (d.items[i].severity == STS_SEV_ERROR)
			assert_int_equal(d.items[i].line, lines[k++]);
	}
	assert_int_equal(sts_diags_first_error(&d)->line, 1);
	stsd_config_free(&c);
}

static void
round_trip(const char *yaml)
{
	struct sts_diags d;
	struct stsd_config a, b;
	struct sts_buf wa, wb;
	assert_int_equal(parse(yaml, &a, &d), STS_OK);
	sts_buf_init(&wa, 1 << 20);
	sts_buf_init(&wb, 1 << 20);
	assert_int_equal(stsd_config_write(&a, &wa), STS_OK);
	sts_diags_init(&d);
	int rc = stsd_config_parse(wa.data, wa.len, NULL, &b, &d);
	print_diags(&d);
	if (rc != STS_OK)
		fail_msg("written config does not parse:\n%s", sts_buf_cstr(&wa));
	assert_int_equal(stsd_config_write(&b, &wb), STS_OK);
	assert_string_equal(sts_buf_cstr(&wa), sts_buf_cstr(&wb));
	sts_buf_free(&wa);
	sts_buf_free(&wb);
	stsd_config_free(&a);
	stsd_config_free(&b);
}

static void
test_round_trip(void **state)
{
	(void)state;
	round_trip("");
	round_trip(peer_internal);
	round_trip(peer_unixsock);
	round_trip(peer_full);
	round_trip("cache:\n  type: redis_sentinel\n  options:\n    sentinel_master_name: \"m\\\"q\"\n"
		   "    sentinels: [[a, 1], 'b:2']\n    password: \"tab\\there\"\n    db: 0\n    n: ~\n"
		   "    x: -1\n");
	/* C1 controls, NEL, LS, PS and U+FFFE are escaped when written (they would
	 * be refused or folded when read back); U+00A0 and emoji are kept */
	round_trip("zones:\n  \"a\\x9eb\\Nc\\Ld\\Pe\\_f\\U0001F600\\uFFFEg\": {}\n"
		   "cache: {type: redis, options: {url: 'redis://h/0', password: \"\\x85\\x01\\x80\"}}\n");
	round_trip("cache: {type: postgres, options: {dsn: 'host=/run/postgresql dbname=sts', timeout: 0.25}}\n");
	round_trip("zones:\n  \"\\u00e9t\\u00e9\": {timeout: 0.75}\n  'with space': {}\n  'q\"uote': {tlsrpt: yes}\n"
		   "resolver: ['::1', 192.0.2.1:53]\nmetrics: '[::1]:9464'\nproactive_policy_fetching:\n"
		   "  grace_ratio: 0.1\nshutdown_timeout: 0.001\ncache_grace: 2592000\nlog_level: error\n"
		   "user: nobody\ngroup: nogroup\nca_file: /x\npidfile: /y\nstate_dir: /z\n");
}

/* --------------------------------------------------------------- loading */

static void
test_load(void **state)
{
	(void)state;
	struct sts_diags d;
	struct stsd_config c;
	char dir[] = "/tmp/test_config.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];

	/* missing file: embedded defaults, no diagnostic */
	snprintf(path, sizeof path, "%s/missing.yml", dir);
	sts_diags_init(&d);
	assert_int_equal(stsd_config_load(path, &c, &d), STS_ENOTFOUND);
	assert_int_equal(d.n, 0);
	assert_int_equal(c.cache.type, STSD_CACHE_SQLITE);
	assert_string_equal(c.cache.filename, "/var/lib/mta-stsd/cache.db");
	stsd_config_free(&c);

	/* a real file */
	snprintf(path, sizeof path, "%s/mta-sts-daemon.yml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(peer_unixsock, f);
	fclose(f);
	sts_diags_init(&d);
	assert_int_equal(stsd_config_load(path, &c, &d), STS_OK);
	assert_string_equal(c.source, path);
	assert_int_equal(c.mode, 0666);
	stsd_config_free(&c);

	/* a directory */
	sts_diags_init(&d);
	assert_int_equal(stsd_config_load(dir, &c, &d), STS_EIO);
	assert_true(sts_diags_has(&d, "config.file.unreadable"));
	stsd_config_free(&c);

	/* exactly the ceiling parses; one byte more does not */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("port: 1\n", f);
	for (size_t i = strlen("port: 1\n"); i < STSD_CONFIG_MAX; i++)
		fputc(i % 64 == 63 ? '\n' : '#', f);
	fclose(f);
	sts_diags_init(&d);
	assert_int_equal(stsd_config_load(path, &c, &d), STS_OK);
	assert_int_equal(c.port, 1);
	stsd_config_free(&c);
	f = fopen(path, "a");
	fputc('\n', f);
	fclose(f);
	sts_diags_init(&d);
	assert_int_equal(stsd_config_load(path, &c, &d), STS_ETOOBIG);
	assert_true(sts_diags_has(&d, "config.file.too_large"));
	stsd_config_free(&c);

	/* unreadable (skipped as root, who reads everything) */
	if (geteuid() != 0) {
		chmod(path, 0);
		sts_diags_init(&d);
		assert_int_equal(stsd_config_load(path, &c, &d), STS_EIO);
		stsd_config_free(&c);
	}
	unlink(path);
	rmdir(dir);
}
/* The peer's redis-py URL parameters: what the Redis backend gets. */
static const struct {
	const char *in, *url, *unused;
	unsigned timeout_ms;
} redis_targets[] = {
	{ "redis://127.0.0.1/0", "redis://127.0.0.1/0", "", 5000 },
	{ "redis://127.0.0.1/0?socket_timeout=1.5", "redis://127.0.0.1/0", "", 1500 },
	{ "redis://h?db=3", "redis://h/3", "", 5000 },
	{ "redis://h/2?db=3", "redis://h/2", "", 5000 },
	{ "redis://h/0?socket_timeout=5&socket_connect_timeout=5&max_connections=9",
	  "redis://h/0", "socket_connect_timeout,max_connections", 5000 },
	{ "redis://h/0?socket_timeout=0", "redis://h/0", "socket_timeout", 5000 },
	{ "unix:///run/r.sock?db=4&socket_timeout=2", "unix:///run/r.sock?db=4", "", 2000 },
	{ "redis://h/0?db=x", "redis://h/0", "db", 5000 },
};

static void
test_redis_target(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof redis_targets / sizeof redis_targets[0]; i++) {
		char url[256], unused[128];
		unsigned t = 5000;
		stsd_redis_target(redis_targets[i].in, url, sizeof url, &t, unused, sizeof unused);
		assert_string_equal(url, redis_targets[i].url);
		assert_string_equal(unused, redis_targets[i].unused);
		assert_int_equal(t, redis_targets[i].timeout_ms);
	}
}


int
main(void)
{
	size_t nd = sizeof diag_cases / sizeof diag_cases[0];
	size_t nv = sizeof value_cases / sizeof value_cases[0];
	struct CMUnitTest more[] = {
		cmocka_unit_test(test_peer_examples),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_zone_inheritance),
		cmocka_unit_test(test_octal_mode),
		cmocka_unit_test(test_yaml11_numbers),
		cmocka_unit_test(test_yaml11_bools),
		cmocka_unit_test(test_merge_keys),
		cmocka_unit_test(test_all_errors_at_once),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_redis_target),
	};
	size_t nm = sizeof more / sizeof more[0];
	struct CMUnitTest *tests = calloc(nd + nv + nm, sizeof *tests);
	for (size_t i = 0; i < nd; i++) {
		tests[i].name = diag_cases[i].name;
		tests[i].test_func = test_diag_case;
		tests[i].initial_state = (void *)&diag_cases[i];
	}
	for (size_t i = 0; i < nv; i++) {
		tests[nd + i].name = value_cases[i].name;
		tests[nd + i].test_func = test_value_case;
		tests[nd + i].initial_state = (void *)&value_cases[i];
	}
	memcpy(tests + nd + nv, more, sizeof more);
	return tu_run("config", tests, nd + nv + nm);
}
