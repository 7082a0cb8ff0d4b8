/* test_check.c: the judging half of `mta-sts check` on made-up evidence:
 * each scenario asserts the finding ids and statuses of docs/check-findings.md,
 * and the id discipline across runs (rules 5, 64). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>

#include "../../lib/sts_check_internal.h"
#include "testutil.h"

#define NOW 1800000000
#define GOOD_POLICY "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n"

static void
base(struct sts_check_report *r, struct check_input *in, const char *policy)
{
	memset(r, 0, sizeof *r);
	memset(in, 0, sizeof *in);
	snprintf(r->domain, sizeof r->domain, "example.com");
	in->now = NOW;
	in->txt_rcode = STS_DNS_OK;
	r->n_txt = 1;
	r->txt = calloc(2, sizeof *r->txt);
	r->txt[0] = strdup("v=STSv1; id=20261129120000");
	in->host_rcode = STS_DNS_OK;
	r->n_hosts = 1;
	r->hosts = calloc(2, sizeof *r->hosts);
	snprintf(r->hosts[0].addr, sizeof r->hosts[0].addr, "192.0.2.1");
	struct sts_fetch_probe_summary *p = &r->hosts[0].probe;
	p->error = STS_FETCH_OK;
	snprintf(p->tls_version, sizeof p->tls_version, "TLSv1.3");
	snprintf(p->content_type, sizeof p->content_type, "text/plain");
	p->have_cert = true;
	p->cert_not_after = NOW + 90 * 86400;
	p->body_len = strlen(policy);
	r->hosts[0].body = strdup(policy);
	r->policy = strdup(policy);
	in->mx_rcode = STS_DNS_OK;
	r->n_mx = 1;
	r->mx = calloc(2, sizeof *r->mx);
	snprintf(r->mx[0].host, sizeof r->mx[0].host, "mail.example.com");
	r->mx[0].n_addrs = 1;
	r->mx[0].smtp = calloc(1, sizeof *r->mx[0].smtp);
	struct sts_check_smtp *s = &r->mx[0].smtp[0];
	snprintf(s->addr, sizeof s->addr, "192.0.2.25");
	s->error = STS_SMTP_OK;
	s->starttls = true;
	snprintf(s->tls_version, sizeof s->tls_version, "TLSv1.3");
	s->cert = STS_SMTP_CERT_VALID;
	s->cert_not_after = NOW + 60 * 86400;
	in->smtp_probed = true;
	in->tlsrpt_rcode = STS_DNS_OK;
	in->n_tlsrpt = 1;
	in->tlsrpt_rrs = calloc(2, sizeof *in->tlsrpt_rrs);
	in->tlsrpt_rrs[0] = strdup("v=TLSRPTv1; rua=mailto:tlsrpt@example.com");
}

static void
done(struct sts_check_report *r, struct check_input *in)
{
	for (size_t i = 0; i < in->n_tlsrpt; i++)
		free(in->tlsrpt_rrs[i]);
	free(in->tlsrpt_rrs);
	sts_check_state_clear(&in->prev);
	sts_check_report_clear(r);
}

/* Status of the first finding with id (and subject containing `about`, if given), or -1. */
static int
status_of(const struct sts_check_report *r, const char *id, const char *about)
{
	for (size_t i = 0; i < r->n_findings; i++)
		if (strcmp(r->findings[i].id, id) == 0 &&
		    (about == NULL || strstr(r->findings[i].subject, about) != NULL ||
		     strstr(r->findings[i].message, about) != NULL))
			return (int)r->findings[i].status;
	return -1;
}

static void
dump(const struct sts_check_report *r)
{
	for (size_t i = 0; i < r->n_findings; i++)
		printf("# %-5s %-28s %s\n", sts_check_status_name(r->findings[i].status),
		       r->findings[i].id, r->findings[i].message);
}

static void
judge(struct sts_check_report *r, struct check_input *in)
{
	struct sts_check_state next;
	memset(&next, 0, sizeof next);
	sts_check_judge(r, in, &next);
	sts_check_state_clear(&next);
	dump(r);
}

static void
test_all_good(void **state)
{
	(void)state;
	struct sts_check_report r;
	struct check_input in;
	base(&r, &in, GOOD_POLICY);
	judge(&r, &in);
	assert_int_equal(r.n_fail, 0);
	assert_int_equal(r.n_warn, 0);
	assert_int_equal(status_of(&r, "txt.present", NULL), STS_CHECK_PASS);
	assert_int_equal(status_of(&r, "policy.mx.coverage", NULL), STS_CHECK_PASS);
	assert_int_equal(status_of(&r, "mx.cert.name", NULL), STS_CHECK_PASS);
	assert_int_equal(status_of(&r, "tlsrpt.syntax", NULL), STS_CHECK_PASS);
	assert_string_equal(r.id, "20261129120000");
	done(&r, &in);
}

static void
test_txt_missing_misplaced(void **state)
{
	(void)state;
	struct sts_check_report r;
	struct check_input in;
	base(&r, &in, GOOD_POLICY);
	free(r.txt[0]);
	r.txt[0] = strdup("google-site-verification=abc");
	in.apex_sts = true;
	judge(&r, &in);
	assert_int_equal(status_of(&r, "txt.present", NULL), STS_CHECK_FAIL);
	assert_int_equal(status_of(&r, "txt.misplaced", NULL), STS_CHECK_WARN);
	assert_int_equal(status_of(&r, "txt.other_records", NULL), STS_CHECK_INFO);
	done(&r, &in);
}

static void
test_txt_two(void **state)
{
	(void)state;
	struct sts_check_report r;
	struct check_input in;
	base(&r, &in, GOOD_POLICY);
	r.txt = realloc(r.txt, 3 * sizeof *r.txt);
	r.txt[1] = strdup("v=STSv1; id=old");
	r.n_txt = 2;
	judge(&r, &in);
	assert_int_equal(status_of(&r, "txt.single", NULL), STS_CHECK_FAIL);
	done(&r, &in);
}

static void
test_host_problems(void **state)
{
	(void)state;
	struct sts_check_report r;
	struct check_input in;
	base(&r, &in, GOOD_POLICY);
	r.hosts[0].probe.error = STS_FETCH_TLS_NAME;
	snprintf(r.hosts[0].probe.cert_sans, sizeof r.hosts[0].probe.cert_sans, "www.example.net");
	/* a second address serving another policy */
	r.n_hosts = 2;
	snprintf(r.hosts[1].addr, sizeof r.hosts[1].addr, "192.0.2.2");
	r.hosts[1].probe.error = STS_FETCH_OK;
	r.hosts[1].probe.have_cert = true;
	r.hosts[1].probe.cert_not_after = NOW + 5 * 86400;   /* expires soon */
	r.hosts[1].body = strdup("version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 604800\n");
	judge(&r, &in);
	assert_int_equal(status_of(&r, "host.cert.name", "192.0.2.1"), STS_CHECK_FAIL);
	assert_int_equal(status_of(&r, "host.cert.expiry", "192.0.2.2"), STS_CHECK_WARN);
	assert_int_equal(status_of(&r, "host.consistent", NULL), STS_CHECK_FAIL);
	done(&r, &in);
}

static void
test_http_failures(void **state)
{
	(void)state;
	static const struct { int err; const char *id; } rows[] = {
		{ STS_FETCH_REDIRECT, "host.http.redirect" },
		{ STS_FETCH_HTTP_STATUS, "host.http.status" },
		{ STS_FETCH_CONTENT_TYPE, "host.http.content_type" },
		{ STS_FETCH_TOO_LARGE, "host.http.size" },
		{ STS_FETCH_CONNECT, "host.tls" },
		{ STS_FETCH_TLS_UNTRUSTED, "host.cert.trusted" },
		{ STS_FETCH_TLS_EXPIRED, "host.cert.expiry" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct sts_check_report r;
		struct check_input in;
		base(&r, &in, GOOD_POLICY);
		r.hosts[0].probe.error = rows[i].err;
		free(r.hosts[0].body);
		r.hosts[0].body = NULL;
		free(r.policy);
		r.policy = NULL;
		judge(&r, &in);
		if (status_of(&r, rows[i].id, NULL) != STS_CHECK_FAIL)
			fail_msg("fetch error %d: no failing %s", rows[i].err, rows[i].id);
		done(&r, &in);
	}
}

static void
test_policy_content(void **state)
{
	(void)state;
	struct sts_check_report r;
	struct check_input in;
	base(&r, &in, "version: STSv1\nmode: testing\nmx: mx.other.example\nmx: *.com\nmax_age: 3600\n");
	judge(&r, &in);
	assert_int_equal(status_of(&r, "policy.mode", NULL), STS_CHECK_WARN);
	assert_int_equal(status_of(&r, "policy.max_age", NULL), STS_CHECK_WARN);
	assert_int_equal(status_of(&r, "policy.mx.coverage", "mail.example.com"), STS_CHECK_WARN);
	assert_int_equal(status_of(&r, "policy.mx.unused", "mx.other.example"), STS_CHECK_WARN);
	assert_int_equal(status_of(&r, "policy.mx.broad", NULL), STS_CHECK_WARN);
	done(&r, &in);

	base(&r, &in, "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 3600\n");
	judge(&r, &in);
	assert_int_equal(status_of(&r, "policy.max_age", NULL), STS_CHECK_WARN);
	assert_int_equal(status_of(&r, "policy.syntax", NULL), STS_CHECK_PASS);
	done(&r, &in);

	base(&r, &in, "version: STSv1\nmode: enforce\nmx: mx.other.example\nmax_age: 99999999\n");
	judge(&r, &in);
	assert_int_equal(status_of(&r, "policy.mx.coverage", "mail.example.com"), STS_CHECK_FAIL);
	assert_int_equal(status_of(&r, "policy.max_age", NULL), STS_CHECK_FAIL);
	done(&r, &in);

	base(&r, &in, "version: STSv1\nmode: enforced\nmx: mail.example.com\nmax_age: 604800\n");
	judge(&r, &in);
	assert_int_equal(status_of(&r, "policy.syntax", "policy.mode.invalid"), STS_CHECK_FAIL);
	done(&r, &in);
}

static void
test_mx_problems(void **state)
{
	(void)state;
	struct sts_check_report r;
	struct check_input in;
	base(&r, &in, GOOD_POLICY);
	r.mx[0].smtp[0].error = STS_SMTP_NO_STARTTLS;
	judge(&r, &in);
	assert_int_equal(status_of(&r, "mx.starttls", NULL), STS_CHECK_FAIL);
	done(&r, &in);

	static const struct { int cert; const char *id; } certs[] = {
		{ STS_SMTP_CERT_UNTRUSTED, "mx.cert.trusted" },
		{ STS_SMTP_CERT_NAME, "mx.cert.name" },
		{ STS_SMTP_CERT_EXPIRED, "mx.cert.expiry" },
	};
	for (size_t i = 0; i < 3; i++) {
		base(&r, &in, GOOD_POLICY);
		r.mx[0].smtp[0].cert = certs[i].cert;
		judge(&r, &in);
		assert_int_equal(status_of(&r, certs[i].id, NULL), STS_CHECK_FAIL);
		done(&r, &in);
	}

	base(&r, &in, GOOD_POLICY);
	r.mx[0].is_cname = true;
	r.mx[0].n_tlsa = 2;
	judge(&r, &in);
	assert_int_equal(status_of(&r, "mx.cname", NULL), STS_CHECK_WARN);
	assert_int_equal(status_of(&r, "dane.tlsa", NULL), STS_CHECK_INFO);
	done(&r, &in);

	base(&r, &in, GOOD_POLICY);
	r.mx[0].host[0] = '\0';   /* null MX */
	judge(&r, &in);
	assert_int_equal(status_of(&r, "mx.null", NULL), STS_CHECK_INFO);
	done(&r, &in);

	base(&r, &in, GOOD_POLICY);
	in.smtp_probed = false;
	r.mx[0].smtp[0].error = STS_SMTP_NO_STARTTLS;
	judge(&r, &in);
	assert_int_equal(status_of(&r, "mx.starttls", NULL), -1);   /* --no-smtp */
	done(&r, &in);
}

static void
test_tlsrpt(void **state)
{
	(void)state;
	struct sts_check_report r;
	struct check_input in;
	base(&r, &in, GOOD_POLICY);
	in.tlsrpt_rcode = STS_DNS_NXDOMAIN;
	free(in.tlsrpt_rrs[0]);
	in.n_tlsrpt = 0;
	judge(&r, &in);
	assert_int_equal(status_of(&r, "tlsrpt.present", NULL), STS_CHECK_WARN);
	done(&r, &in);
	base(&r, &in, GOOD_POLICY);
	free(in.tlsrpt_rrs[0]);
	in.tlsrpt_rrs[0] = strdup("v=TLSRPTv1; rua=http://r.example/");
	judge(&r, &in);
	assert_int_equal(status_of(&r, "tlsrpt.syntax", NULL), STS_CHECK_FAIL);
	done(&r, &in);
}

/* One domain over five runs: first seen; the policy edited without a new id
 * fails, and keeps failing on the next run (the state is not overwritten);
 * the id bumped back to the remembered policy (info); then the policy under
 * that id changes: the TXT went out before the policy (warn). */
static void
test_id_discipline(void **state)
{
	(void)state;
	struct sts_check_state prev;
	memset(&prev, 0, sizeof prev);
	const char *b = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: mx2.example.com\nmax_age: 604800\n";
	const char *bodies[] = { GOOD_POLICY, b, b, GOOD_POLICY, b };
	const char *ids[] = { "1", "1", "1", "2", "2" };
	const char *want[] = { "id.first_seen", "id.policy_changed_same_id",
			       "id.policy_changed_same_id", "id.changed_policy_unchanged",
			       "id.txt_before_policy" };
	const int st[] = { STS_CHECK_INFO, STS_CHECK_FAIL, STS_CHECK_FAIL, STS_CHECK_INFO,
			   STS_CHECK_WARN };
	const bool saves[] = { true, false, false, true, true };
	for (int run = 0; run < 5; run++) {
		struct sts_check_report r;
		struct check_input in;
		base(&r, &in, bodies[run]);
		free(r.txt[0]);
		char rec[64];
		snprintf(rec, sizeof rec, "v=STSv1; id=%s", ids[run]);
		r.txt[0] = strdup(rec);
		in.use_state = true;
		in.have_prev = run > 0;
		if (run > 0) {
			in.prev = prev;
			in.prev.canonical = strdup(prev.canonical);
		}
		struct sts_check_state next;
		memset(&next, 0, sizeof next);
		assert_int_equal(sts_check_judge(&r, &in, &next), saves[run]);
		dump(&r);
		assert_int_equal(status_of(&r, want[run], NULL), st[run]);
		if (run == 1)
			assert_non_null(strstr(r.findings[r.n_findings - 1].message, "UTC"));
		if (saves[run]) {
			sts_check_state_clear(&prev);
			prev = next;
		} else {
			sts_check_state_clear(&next);
		}
		done(&r, &in);
	}
	sts_check_state_clear(&prev);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_good),
		cmocka_unit_test(test_txt_missing_misplaced),
		cmocka_unit_test(test_txt_two),
		cmocka_unit_test(test_host_problems),
		cmocka_unit_test(test_http_failures),
		cmocka_unit_test(test_policy_content),
		cmocka_unit_test(test_mx_problems),
		cmocka_unit_test(test_tlsrpt),
		cmocka_unit_test(test_id_discipline),
	};
	return cmocka_run_group_tests_name("check", tests, NULL, NULL);
}
