/* fuzz_config.c: stsd_config_parse and stsd_config_write (daemon/config.c).
 *
 * Input: the bytes of a configuration file.
 *
 * Invariants:
 * - the result is OK exactly when no error was reported, diagnostics are
 *   well-formed (positions inside the input, printable messages);
 * - every value of the configuration is within its documented range, even
 *   after errors (rejected values keep their defaults): port >= 1, mode -1
 *   or at most 0777, backoff >= 300, timeouts within bounds, an sqlite cache
 *   has a file name, zones are sorted with unique names and each is found by
 *   its own name, unknown names give the default zone;
 * - a valid configuration written by stsd_config_write parses without
 *   errors and writes the same bytes again. */
#include <sys/socket.h>

#include "fuzz_common.h"

#include "config.h"

/* Upper bound on libyaml's line count: LF, CR, NEL, LS and PS all end lines. */
static size_t
max_lines(const uint8_t *data, size_t size)
{
	size_t n = 1;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n' || data[i] == '\r')
			n++;
		else if (data[i] == 0xc2 && i + 1 < size && data[i + 1] == 0x85)
			n++;
		else if (data[i] == 0xe2 && i + 2 < size && data[i + 1] == 0x80 &&
			 (data[i + 2] == 0xa8 || data[i + 2] == 0xa9))
			n++;
	}
	return n;
}

static void
check_zone(const struct stsd_zone *z)
{
	CHECK(z->timeout_ms >= 1 && z->timeout_ms <= 300000);
}

static void
check_config(const struct stsd_config *c)
{
	CHECK(c->host != NULL && c->host[0] != '\0');
	CHECK(c->port >= 1);
	CHECK(c->mode >= -1 && c->mode <= 0777);
	CHECK(c->path == NULL || (c->path[0] != '\0' && strlen(c->path) <= STSD_UNIX_PATH_MAX));
	CHECK(c->shutdown_timeout_ms <= 3600000);
	CHECK(c->cache.type <= STSD_CACHE_POSTGRES);
	CHECK(c->cache.cache_size >= 1);
	CHECK(c->cache.threads <= 256);
	CHECK(c->cache.timeout_ms >= 1);
	if (c->cache.type == STSD_CACHE_SQLITE)
		CHECK(c->cache.filename != NULL && c->cache.filename[0] != '\0');
	for (size_t i = 0; i < c->cache.n_sentinels; i++)
		CHECK(c->cache.sentinels[i].host != NULL && c->cache.sentinels[i].port >= 1);
	for (size_t i = 0; i < c->cache.n_options; i++)
		CHECK(c->cache.options[i].key != NULL && c->cache.options[i].value != NULL);
	CHECK(c->proactive.interval_s >= 1);
	CHECK(c->proactive.concurrency_limit >= 1);
	CHECK(c->proactive.grace_ratio > 0 && c->proactive.grace_ratio <= 1e6);
	CHECK(c->default_zone.name == NULL);
	check_zone(&c->default_zone);
	for (size_t i = 0; i < c->n_zones; i++) {
		const struct stsd_zone *z = &c->zones[i];
		CHECK(z->name != NULL);
		check_zone(z);
		if (i > 0)
			CHECK(strcmp(c->zones[i - 1].name, z->name) < 0);
		CHECK(stsd_config_zone(c, z->name, strlen(z->name)) == z);
	}
	const struct stsd_zone *e = stsd_config_zone(c, "", 0);
	CHECK(e == &c->default_zone || e->name[0] == '\0');
	const struct stsd_zone *q = stsd_config_zone(c, "no such zone", 12);
	CHECK(q == &c->default_zone || strcmp(q->name, "no such zone") == 0);
	for (size_t i = 0; i < c->n_resolvers; i++) {
		const struct stsd_addr *a = &c->resolvers[i];
		CHECK(a->family == AF_INET || a->family == AF_INET6);
		CHECK(a->port >= 1 && memchr(a->ip, '\0', sizeof a->ip) != NULL);
	}
	CHECK((c->metrics.host == NULL) == (c->metrics.port == 0));
	CHECK(c->negative_ttl_s <= 86400);
	CHECK(c->backoff_s >= STSD_BACKOFF_MIN && c->backoff_s <= 86400);
	CHECK(c->state_dir != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_diags d;
	struct stsd_config c;
	sts_diags_init(&d);
	int rc = stsd_config_parse((const char *)data, size, "fuzz.yml", &c, &d);
	if (rc == STS_ENOMEM) {
		stsd_config_free(&c);
		return 0;
	}
	fz_check_diags(&d, rc, size, max_lines(data, size));
	check_config(&c);

	struct sts_buf w1;
	sts_buf_init(&w1, STSD_CONFIG_MAX);
	CHECK(stsd_config_write(&c, &w1) == STS_OK);
	if (rc == STS_OK) {
		struct stsd_config c2;
		struct sts_diags d2;
		sts_diags_init(&d2);
		int rc2 = stsd_config_parse(w1.data, w1.len, NULL, &c2, &d2);
		if (rc2 != STS_OK) {
			for (size_t i = 0; i < d2.n; i++)
				fprintf(stderr, "%u:%u %s %s\n", d2.items[i].line, d2.items[i].column,
					d2.items[i].code, d2.items[i].message);
			fprintf(stderr, "%s", sts_buf_cstr(&w1));
		}
		CHECK(rc2 == STS_OK);
		check_config(&c2);
		struct sts_buf w2;
		sts_buf_init(&w2, STSD_CONFIG_MAX);
		CHECK(stsd_config_write(&c2, &w2) == STS_OK);
		CHECK(w1.len == w2.len && memcmp(w1.data, w2.data, w1.len) == 0);
		sts_buf_free(&w2);
		stsd_config_free(&c2);
	}
	sts_buf_free(&w1);
	stsd_config_free(&c);
	return 0;
}
