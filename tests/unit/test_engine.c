/* test_engine.c: the sender state machine against matrix B.2 of
 * shared/spec/rfc8461-requirements.md, with DNS and HTTPS faked at the
 * engine's I/O seam (struct sts_engine_io) and a movable clock. Every case
 * counts TXT queries and fetches, so coalescing and back-off are proven by
 * what reached the (fake) network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>
#include <mtasts/engine.h>

#include "testutil.h"

#define POL_ENFORCE "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n"
#define POL_TESTING "version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 86400\n"
#define POL_NONE "version: STSv1\nmode: none\nmax_age: 86400\n"
#define POL_SHORT "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 100\n"
#define POL_ZERO "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 0\n"

/* What the fake network answers now. */
struct world {
	enum sts_dns_rcode txt_rcode;
	const char *txt[3];            /* one string per RR, NULL-terminated */
	enum sts_dns_rcode addr_rcode;
	enum sts_fetch_error fetch_error;
	const char *body;
	bool defer;                    /* queue answers until pump() */
	unsigned long txt_queries, addr_queries, fetches;
	/* deferred operations */
	struct pending { int kind; sts_dns_cb dcb; sts_fetch_cb fcb; void *arg; } q[256];
	size_t nq;
};

struct fixture {
	struct world w;
	int64_t now;
	struct sts_clock clock;
	struct sts_cache *cache;
	struct sts_engine *e;
	struct sts_engine_io io;
	/* last result */
	int calls;
	enum sts_lookup_status status;
	enum sts_lookup_source source;
	char code[64], id[40], mode[16];
	int64_t expires_at;
};

static int64_t fake_now(void *ctx) { return ((struct fixture *)ctx)->now; }

static void
answer_txt(struct world *w, sts_dns_cb cb, void *arg)
{
	struct sts_bytes strs[3];
	struct sts_txt_rr rrs[3];
	size_t n = 0;
	for (; n < 3 && w->txt[n] != NULL; n++) {
		strs[n].ptr = w->txt[n];
		strs[n].len = strlen(w->txt[n]);
		rrs[n].strings = &strs[n];
		rrs[n].n_strings = 1;
	}
	struct sts_dns_answer a = { .rcode = w->txt_rcode, .detail = "SERVFAIL",
				    .n_rrs = w->txt_rcode == STS_DNS_OK ? n : 0, .rrs = rrs };
	cb(arg, &a);
}

static void
answer_addrs(struct world *w, sts_dns_cb cb, void *arg)
{
	static const char *const addrs[] = { "127.0.0.1" };
	struct sts_dns_answer a = { .rcode = w->addr_rcode, .detail = "timeout",
				    .n_addrs = w->addr_rcode == STS_DNS_OK ? 1 : 0, .addrs = addrs };
	cb(arg, &a);
}

static void
answer_fetch(struct world *w, sts_fetch_cb cb, void *arg)
{
	struct sts_fetch_result r = { .error = w->fetch_error, .http_status = 200 };
	snprintf(r.message, sizeof r.message, "%s", w->fetch_error ? "HTTP status 404" : "");
	if (w->fetch_error == STS_FETCH_OK) {
		r.body = w->body;
		r.body_len = strlen(w->body);
	}
	cb(arg, &r);
}

static void
fake_txt(void *ctx, const char *name, sts_dns_cb cb, void *arg)
{
	struct world *w = ctx;
	assert_true(strncmp(name, "_mta-sts.", 9) == 0);   /* rule 2 */
	w->txt_queries++;
	if (w->defer) {
		w->q[w->nq++] = (struct pending){ 0, cb, NULL, arg };
		return;
	}
	answer_txt(w, cb, arg);
}

static void
fake_addrs(void *ctx, const char *name, sts_dns_cb cb, void *arg)
{
	struct world *w = ctx;
	assert_true(strncmp(name, "mta-sts.", 8) == 0);    /* rule 13 */
	w->addr_queries++;
	if (w->defer) {
		w->q[w->nq++] = (struct pending){ 1, cb, NULL, arg };
		return;
	}
	answer_addrs(w, cb, arg);
}

static void
fake_fetch(void *ctx, const char *domain, const char *const *addrs, size_t n, sts_fetch_cb cb,
	   void *arg)
{
	(void)domain;
	(void)addrs;
	assert_true(n >= 1);
	struct world *w = ctx;
	w->fetches++;
	if (w->defer) {
		w->q[w->nq++] = (struct pending){ 2, NULL, cb, arg };
		return;
	}
	answer_fetch(w, cb, arg);
}

/* Answers queued operations (and those they start) until none is left. */
static void
pump(struct world *w)
{
	while (w->nq > 0) {
		struct pending p = w->q[0];
		memmove(w->q, w->q + 1, (w->nq - 1) * sizeof w->q[0]);
		w->nq--;
		if (p.kind == 0) answer_txt(w, p.dcb, p.arg);
		else if (p.kind == 1) answer_addrs(w, p.dcb, p.arg);
		else answer_fetch(w, p.fcb, p.arg);
	}
}

static void
on_result(void *arg, const struct sts_lookup_result *r)
{
	struct fixture *f = arg;
	f->calls++;
	f->status = r->status;
	f->source = r->source;
	snprintf(f->code, sizeof f->code, "%s", r->error_code ? r->error_code : "");
	snprintf(f->id, sizeof f->id, "%s", r->id);
	snprintf(f->mode, sizeof f->mode, "%s", r->policy ? sts_mode_name(r->policy->mode) : "");
	f->expires_at = r->expires_at;
	if (r->status == STS_LOOKUP_POLICY || r->status == STS_LOOKUP_NONE)
		assert_non_null(r->policy);
	else
		assert_null(r->policy);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	f->now = 1700000000;
	f->clock = (struct sts_clock){ fake_now, f };
	f->w.txt_rcode = STS_DNS_OK;
	f->w.txt[0] = "v=STSv1; id=one";
	f->w.addr_rcode = STS_DNS_OK;
	f->w.body = POL_ENFORCE;
	assert_int_equal(sts_cache_memory_open(100, NULL, &f->cache), STS_OK);
	f->io = (struct sts_engine_io){ &f->w, fake_txt, fake_addrs, fake_fetch };
	struct sts_engine_opts o = { .io = &f->io, .cache = f->cache, .clock = &f->clock };
	assert_int_equal(sts_engine_new(&o, &f->e), STS_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	sts_engine_free(&f->e);
	sts_cache_close(&f->cache);
	free(f);
	return 0;
}

static void
lookup(struct fixture *f, const char *domain)
{
	f->calls = 0;
	sts_engine_lookup(f->e, domain, on_result, f);
	pump(&f->w);
	assert_int_equal(f->calls, 1);
}

/* Row 6 of B.2: valid TXT, no cache, 200 + valid policy: store and apply. */
static void
test_fetch_and_cache(void **state)
{
	struct fixture *f = *state;
	lookup(f, "Example.COM.");
	assert_int_equal(f->status, STS_LOOKUP_POLICY);
	assert_int_equal(f->source, STS_SOURCE_FETCH);
	assert_string_equal(f->id, "one");
	assert_int_equal(f->expires_at, f->now + 86400);   /* rule 16 */
	f->now += 3600;
	lookup(f, "example.com");
	assert_int_equal(f->source, STS_SOURCE_CACHE);    /* id unchanged: no fetch */
	assert_int_equal(f->w.fetches, 1);
	assert_int_equal(f->w.txt_queries, 2);
}

static void
refresh(struct fixture *f, const char *domain)
{
	f->calls = 0;
	sts_engine_refresh(f->e, domain, on_result, f);
	pump(&f->w);
	assert_int_equal(f->calls, 1);
}

/* Rules 39, 71: a proactive refresh fetches again under an unchanged id,
 * picks up a body changed without a new id, and restarts max_age; a
 * failed refresh keeps the cached policy (rule 38) and backs off (rule 34). */
static void
test_refresh_refetches(void **state)
{
	struct fixture *f = *state;
	lookup(f, "example.com");
	f->now += 7200;
	f->w.body = POL_TESTING;                          /* same id "one" */
	lookup(f, "example.com");
	assert_string_equal(f->mode, "enforce");          /* a plain lookup keeps it */
	assert_int_equal(f->w.fetches, 1);
	refresh(f, "example.com");
	assert_int_equal(f->source, STS_SOURCE_FETCH);
	assert_string_equal(f->mode, "testing");
	assert_int_equal(f->expires_at, f->now + 86400);
	assert_int_equal(f->w.fetches, 2);
	lookup(f, "example.com");
	assert_int_equal(f->source, STS_SOURCE_CACHE);
	assert_string_equal(f->mode, "testing");          /* the cache holds the new one */
	f->now += 60;
	f->w.fetch_error = STS_FETCH_TIMEOUT;
	refresh(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_POLICY);
	assert_string_equal(f->mode, "testing");
	assert_string_equal(f->code, "fetch.timeout");
	assert_int_equal(f->w.fetches, 3);
	f->now += 60;
	refresh(f, "example.com");                        /* inside the back-off */
	assert_int_equal(f->w.fetches, 3);
	assert_string_equal(f->code, "fetch.timeout");
}

/* Rule 16: the cached policy expires max_age after the fetch. */
static void
test_expiry(void **state)
{
	struct fixture *f = *state;
	f->w.body = POL_SHORT;
	lookup(f, "example.com");
	f->now += 99;
	lookup(f, "example.com");
	assert_int_equal(f->source, STS_SOURCE_CACHE);
	f->now += 1;
	lookup(f, "example.com");
	assert_int_equal(f->source, STS_SOURCE_FETCH);
	assert_int_equal(f->w.fetches, 2);
}

/* Rules 8, 9: no TXT and nothing cached: no policy, remembered for the
 * negative TTL (no second TXT query), asked again after it. */
static void
test_no_record_negative_cache(void **state)
{
	struct fixture *f = *state;
	f->w.txt_rcode = STS_DNS_NXDOMAIN;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_NO_POLICY);
	assert_string_equal(f->code, "txt.rrset.none");
	f->now += 299;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_NO_POLICY);
	assert_int_equal(f->w.txt_queries, 1);
	f->now += 1;
	lookup(f, "example.com");
	assert_int_equal(f->w.txt_queries, 2);
}

/* Rule 8: two STS records: no policy. */
static void
test_two_records(void **state)
{
	struct fixture *f = *state;
	f->w.txt[0] = "v=STSv1; id=1";
	f->w.txt[1] = "v=STSv1; id=2";
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_NO_POLICY);
	assert_string_equal(f->code, "txt.rrset.multiple");
	assert_int_equal(f->w.fetches, 0);
}

/* Row 2 of B.2 and rule 9: the TXT record vanishes; a cached enforce
 * policy stays in force. */
static void
test_txt_gone_keeps_cached(void **state)
{
	struct fixture *f = *state;
	lookup(f, "example.com");
	f->w.txt_rcode = STS_DNS_NXDOMAIN;
	f->now += 60;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_POLICY);
	assert_int_equal(f->source, STS_SOURCE_CACHE);
	assert_string_equal(f->code, "txt.rrset.none");
}

/* Rule 67: TXT gone while the cached policy is none: drop it. */
static void
test_txt_gone_drops_none(void **state)
{
	struct fixture *f = *state;
	f->w.body = POL_NONE;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_NONE);
	f->w.txt_rcode = STS_DNS_NXDOMAIN;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_NO_POLICY);
	f->w.txt_rcode = STS_DNS_OK;        /* even back again: must refetch */
	lookup(f, "example.com");
	assert_int_equal(f->source, STS_SOURCE_FETCH);
	assert_int_equal(f->w.fetches, 2);
}

/* Rows 3, 4 of B.2: DNS temporary failure. */
static void
test_dns_tempfail(void **state)
{
	struct fixture *f = *state;
	f->w.txt_rcode = STS_DNS_TEMPFAIL;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_TEMPFAIL);
	assert_string_equal(f->code, "dns.txt.temporary");
	f->w.txt_rcode = STS_DNS_OK;
	lookup(f, "example.com");
	f->w.txt_rcode = STS_DNS_TEMPFAIL;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_POLICY);     /* rule 38 */
	assert_int_equal(f->source, STS_SOURCE_CACHE);
	f->now += 86400;                                    /* expired now */
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_TEMPFAIL);
}

/* Rules 34, 37: fetch fails with nothing cached: no policy, and the same id
 * is not fetched again for five minutes; a new id is. */
static void
test_fetch_fail_backoff(void **state)
{
	struct fixture *f = *state;
	f->w.fetch_error = STS_FETCH_HTTP_STATUS;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_NO_POLICY);
	assert_string_equal(f->code, "fetch.http.status");
	f->now += 60;
	lookup(f, "example.com");
	assert_int_equal(f->w.fetches, 1);
	assert_string_equal(f->code, "fetch.http.status");
	f->w.txt[0] = "v=STSv1; id=two";
	lookup(f, "example.com");
	assert_int_equal(f->w.fetches, 2);
	f->w.txt[0] = "v=STSv1; id=one";
	f->now += 240;                                      /* 300 s after the first */
	f->w.fetch_error = STS_FETCH_OK;
	lookup(f, "example.com");
	assert_int_equal(f->w.fetches, 3);
	assert_int_equal(f->status, STS_LOOKUP_POLICY);
}

/* Row 8 of B.2: new id, fetch fails, valid cache: apply the cache, report. */
static void
test_fetch_fail_keeps_cached(void **state)
{
	struct fixture *f = *state;
	lookup(f, "example.com");
	f->w.txt[0] = "v=STSv1; id=two";
	f->w.fetch_error = STS_FETCH_TLS_NAME;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_POLICY);
	assert_int_equal(f->source, STS_SOURCE_CACHE);
	assert_string_equal(f->id, "one");
	assert_string_equal(f->code, "fetch.tls.name");
}

/* Last row of B.2: a new policy that is invalid never erases a good one. */
static void
test_invalid_new_policy_keeps_cached(void **state)
{
	struct fixture *f = *state;
	lookup(f, "example.com");
	f->w.txt[0] = "v=STSv1; id=two";
	f->w.body = "version: STSv1\nmode: enforced\nmx: a.example\nmax_age: 1\n";
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_POLICY);
	assert_string_equal(f->id, "one");
	assert_string_equal(f->code, "policy.invalid");
}

/* A fetched mode none replaces a cached enforce policy at once. */
static void
test_none_replaces(void **state)
{
	struct fixture *f = *state;
	lookup(f, "example.com");
	f->w.txt[0] = "v=STSv1; id=two";
	f->w.body = POL_NONE;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_NONE);
	f->w.body = POL_ENFORCE;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_NONE);      /* cached none, same id */
	assert_int_equal(f->source, STS_SOURCE_CACHE);
}

/* Table B.1: max_age 0 is used once and not stored. */
static void
test_max_age_zero_not_stored(void **state)
{
	struct fixture *f = *state;
	f->w.body = POL_ZERO;
	lookup(f, "example.com");
	assert_int_equal(f->status, STS_LOOKUP_POLICY);
	lookup(f, "example.com");
	assert_int_equal(f->source, STS_SOURCE_FETCH);
	assert_int_equal(f->w.fetches, 2);
}

/* Rule 33 / coalescing: 100 concurrent lookups of one domain cause one TXT
 * query and one fetch, and all 100 get the answer. */
static int coalesced_calls;
static void on_count(void *arg, const struct sts_lookup_result *r)
{
	(void)arg;
	assert_int_equal(r->status, STS_LOOKUP_POLICY);
	coalesced_calls++;
}

static void
test_coalescing(void **state)
{
	struct fixture *f = *state;
	f->w.defer = true;
	coalesced_calls = 0;
	for (int i = 0; i < 100; i++)
		sts_engine_lookup(f->e, i % 2 ? "EXAMPLE.com" : "example.com.", on_count, NULL);
	assert_int_equal(coalesced_calls, 0);
	pump(&f->w);
	assert_int_equal(coalesced_calls, 100);
	assert_int_equal(f->w.txt_queries, 1);
	assert_int_equal(f->w.fetches, 1);
	struct sts_engine_stats st;
	sts_engine_stats(f->e, &st);
	assert_int_equal(st.coalesced, 99);
}

/* Rule 42 and bad input: no lookup at all. */
static void
test_bad_domains(void **state)
{
	struct fixture *f = *state;
	lookup(f, "192.0.2.1");
	assert_string_equal(f->code, "domain.address_literal");
	lookup(f, "exa mple.com");
	assert_string_equal(f->code, "domain.invalid");
	lookup(f, "");
	assert_string_equal(f->code, "domain.invalid");
	assert_int_equal(f->w.txt_queries, 0);
}

/* The address lookup of mta-sts.<domain> fails: typed fetch errors. */
static void
test_policy_host_dns(void **state)
{
	struct fixture *f = *state;
	f->w.addr_rcode = STS_DNS_NXDOMAIN;
	lookup(f, "example.com");
	assert_string_equal(f->code, "fetch.dns.no_address");
	f->w.txt[0] = "v=STSv1; id=two";
	f->w.addr_rcode = STS_DNS_TEMPFAIL;
	lookup(f, "example.com");
	assert_string_equal(f->code, "fetch.dns.temporary");
	assert_int_equal(f->status, STS_LOOKUP_NO_POLICY);
	assert_int_equal(f->w.fetches, 0);
}

/* sts_engine_free with I/O in flight: the lookups are answered at once;
 * the calls still out answer later (sts_dns_free and sts_fetcher_free
 * answer "cancelled") and must neither touch freed memory (ASan) nor
 * start more I/O nor answer again. */
static void
answer_head(struct world *w)
{
	struct pending p = w->q[0];
	memmove(w->q, w->q + 1, (w->nq - 1) * sizeof w->q[0]);
	w->nq--;
	if (p.kind == 0) answer_txt(w, p.dcb, p.arg);
	else if (p.kind == 1) answer_addrs(w, p.dcb, p.arg);
	else answer_fetch(w, p.fcb, p.arg);
}

static void
test_free_in_flight(void **state)
{
	struct fixture *f = *state;
	f->w.defer = true;
	f->calls = 0;
	sts_engine_lookup(f->e, "example.com", on_result, f);   /* [txt] */
	sts_engine_lookup(f->e, "example.net", on_result, f);   /* [txt, txt] */
	sts_engine_lookup(f->e, "example.org", on_result, f);   /* [txt, txt, txt] */
	answer_head(&f->w);   /* example.com: [txt, txt, addrs] */
	answer_head(&f->w);   /* example.net: [txt, addrs, addrs] */
	answer_head(&f->w);   /* example.org: [addrs, addrs, addrs] */
	answer_head(&f->w);   /* example.com: [addrs, addrs, fetch] */
	assert_int_equal(f->w.fetches, 1);
	assert_int_equal(f->calls, 0);
	sts_engine_free(&f->e);
	assert_null(f->e);
	assert_int_equal(f->calls, 3);
	assert_int_equal(f->status, STS_LOOKUP_TEMPFAIL);
	assert_string_equal(f->code, "internal");
	pump(&f->w);          /* two address answers and the fetch, to freed lookups */
	assert_int_equal(f->calls, 3);
	assert_int_equal(f->w.fetches, 1);
	assert_int_equal(f->w.nq, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fetch_and_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_refetches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_record_negative_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txt_gone_keeps_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_txt_gone_drops_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_tempfail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_fail_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_fail_keeps_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_new_policy_keeps_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_none_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_age_zero_not_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coalescing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_host_dns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_in_flight, setup, teardown),
	};
	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
