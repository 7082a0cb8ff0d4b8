/* sts_check_judge.c: turns the evidence `check` gathered into findings
 * (docs/check-findings.md). Pure: no I/O, no clock (the caller passes now). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mtasts/mtasts.h>

#include "sts_check_internal.h"
#include "sts_tagrec.h"

#define DAY 86400

const char *
sts_check_status_name(enum sts_check_status s)
{
	switch (s) {
	case STS_CHECK_PASS: return "pass";
	case STS_CHECK_INFO: return "info";
	case STS_CHECK_WARN: return "warn";
	case STS_CHECK_FAIL: return "fail";
	}
	return "fail";
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s != NULL ? s : "");
	return p;
}

static void add(struct sts_check_report *r, const char *id, const char *section,
		enum sts_check_status st, const char *rule, const char *subject, const char *fix,
		const char *fmt, ...) __attribute__((format(printf, 8, 9)));

static void
add(struct sts_check_report *r, const char *id, const char *section, enum sts_check_status st,
    const char *rule, const char *subject, const char *fix, const char *fmt, ...)
{
	struct sts_finding *f = realloc(r->findings, (r->n_findings + 1) * sizeof *f);
	if (f == NULL)
		return;
	r->findings = f;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	f[r->n_findings] = (struct sts_finding){
		.id = id, .section = section, .status = st, .rule = rule != NULL ? rule : "",
		.subject = xstrdup(subject), .message = xstrdup(msg), .fix = xstrdup(fix),
	};
	r->n_findings++;
	switch (st) {
	case STS_CHECK_PASS: r->n_pass++; break;
	case STS_CHECK_INFO: r->n_info++; break;
	case STS_CHECK_WARN: r->n_warn++; break;
	case STS_CHECK_FAIL: r->n_fail++; break;
	}
}

static void
date_of(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M UTC", &tm);
}

/* --- TXT ----------------------------------------------------------------- */

static void
judge_txt(struct sts_check_report *r, const struct check_input *in)
{
	const char *S = "txt";
	char owner[STS_HOST_MAX + 16];
	snprintf(owner, sizeof owner, "_mta-sts.%s", r->domain);
	for (size_t i = 0; i < r->n_txt_cnames; i++)
		add(r, "txt.cname", S, STS_CHECK_INFO, "11", r->txt_cnames[i], "",
		    "%s is an alias: step %zu of the CNAME chain is %s", owner, i + 1, r->txt_cnames[i]);
	if (in->txt_rcode == STS_DNS_TEMPFAIL) {
		add(r, "txt.present", S, STS_CHECK_FAIL, "8", owner,
		    "check that the domain's name servers answer for _mta-sts",
		    "the TXT lookup of %s failed: %s", owner, in->txt_detail);
		return;
	}
	size_t n_cand = 0, cand = 0;
	for (size_t i = 0; i < r->n_txt; i++) {
		const char *t = r->txt[i];
		if (sts_tagrec_is_candidate((const unsigned char *)t, strlen(t), "v=STSv1")) {
			if (n_cand++ == 0)
				cand = i;
		} else {
			add(r, "txt.other_records", S, STS_CHECK_INFO, "7", owner, "",
			    "another TXT record at %s is ignored by senders: \"%.200s\"", owner, t);
		}
	}
	if (n_cand == 0) {
		add(r, "txt.present", S, STS_CHECK_FAIL, "8", owner,
		    "publish _mta-sts.<domain> IN TXT \"v=STSv1; id=<id>\" (mta-sts publish prints it)",
		    "no TXT record beginning with 'v=STSv1;' at %s: senders see no MTA-STS policy",
		    owner);
		if (in->apex_sts)
			add(r, "txt.misplaced", S, STS_CHECK_WARN, "2", r->domain,
			    "move the record to the _mta-sts label",
			    "a v=STSv1 record is published at %s itself, where senders never look",
			    r->domain);
		if (in->host_sts)
			add(r, "txt.misplaced", S, STS_CHECK_WARN, "2", r->domain,
			    "move the record from mta-sts.<domain> to _mta-sts.<domain>",
			    "a v=STSv1 record is published at mta-sts.%s (the web host), where senders"
			    " never look", r->domain);
		return;
	}
	add(r, "txt.present", S, STS_CHECK_PASS, "8", owner, "", "%s has an MTA-STS record", owner);
	if (n_cand > 1) {
		add(r, "txt.single", S, STS_CHECK_FAIL, "8", owner,
		    "delete every STS record but the current one",
		    "%zu TXT records at %s begin with 'v=STSv1': senders ignore them all and see no"
		    " policy", n_cand, owner);
		return;
	}
	add(r, "txt.single", S, STS_CHECK_PASS, "8", owner, "", "exactly one STS record");

	struct sts_diags *d = malloc(sizeof *d);
	if (d == NULL)
		return;
	sts_diags_init(d);
	struct sts_txt_record rec;
	const char *t = r->txt[cand];
	int rc = sts_txt_parse(t, strlen(t), 0, &rec, d);
	/* Strict pass for warnings the sender tolerates. */
	struct sts_diags *ds = malloc(sizeof *ds);
	struct sts_txt_record srec;
	if (ds != NULL) {
		sts_diags_init(ds);
		sts_txt_parse(t, strlen(t), STS_PARSE_STRICT, &srec, ds);
		sts_txt_record_clear(&srec);
	}
	const struct sts_diags *show = rc == STS_OK && ds != NULL ? ds : d;
	for (size_t i = 0; i < show->n; i++) {
		const struct sts_diag *g = &show->items[i];
		char where[64];
		snprintf(where, sizeof where, "column %u", g->column);
		bool fatal = g->severity == STS_SEV_ERROR && rc != STS_OK;
		add(r, "txt.syntax", S, fatal ? STS_CHECK_FAIL : STS_CHECK_WARN, g->rule, where,
		    fatal ? "fix the record; mta-sts lint --record checks it" : "",
		    "%s (%s)", g->message, g->code);
	}
	if (rc == STS_OK) {
		snprintf(r->id, sizeof r->id, "%s", rec.id);
		if (show->n == 0)
			add(r, "txt.syntax", S, STS_CHECK_PASS, "12", owner, "",
			    "the record is valid: id %s", rec.id);
	}
	sts_txt_record_clear(&rec);
	free(d);
	free(ds);
}

/* --- policy host ------------------------------------------------------- */

static void
judge_host(struct sts_check_report *r, const struct check_input *in)
{
	const char *S = "policy-host";
	char host[STS_HOST_MAX + 16];
	snprintf(host, sizeof host, "mta-sts.%s", r->domain);
	if (in->host_rcode != STS_DNS_OK || r->n_hosts == 0) {
		add(r, "host.address", S, STS_CHECK_FAIL, "13", host,
		    "give mta-sts.<domain> an A/AAAA record (or a CNAME to your web host)",
		    in->host_rcode == STS_DNS_TEMPFAIL ? "the address lookup of %s failed: %s"
						       : "%s has no address (%s): senders cannot fetch"
							 " the policy", host, in->host_detail);
		return;
	}
	add(r, "host.address", S, STS_CHECK_PASS, "13", host, "", "%s has %zu address%s", host,
	    r->n_hosts, r->n_hosts == 1 ? "" : "es");
	for (size_t i = 0; i < r->n_hosts; i++) {
		const struct sts_check_host *h = &r->hosts[i];
		const struct sts_fetch_probe_summary *p = &h->probe;
		const char *a = h->addr;
		enum sts_fetch_error e = (enum sts_fetch_error)p->error;
		bool tls_up = p->tls_version[0] != '\0' || e == STS_FETCH_OK ||
			      e == STS_FETCH_HTTP_STATUS || e == STS_FETCH_REDIRECT ||
			      e == STS_FETCH_CONTENT_TYPE || e == STS_FETCH_TOO_LARGE;
		if (e == STS_FETCH_CONNECT || (e == STS_FETCH_TIMEOUT && !tls_up) ||
		    e == STS_FETCH_TLS_OTHER || e == STS_FETCH_INTERNAL) {
			add(r, "host.tls", S, STS_CHECK_FAIL, e == STS_FETCH_TLS_OTHER ? "61" : "24", a,
			    "serve HTTPS (TLS 1.2 or newer) on port 443 of every address of the policy host",
			    "%s: %s", a, p->message);
			continue;
		}
		add(r, "host.tls", S, STS_CHECK_PASS, "61", a, "", "%s: TLS handshake%s%s", a,
		    p->tls_version[0] ? " with " : "", p->tls_version);
		if (e == STS_FETCH_TLS_UNTRUSTED)
			add(r, "host.cert.trusted", S, STS_CHECK_FAIL, "25", a,
			    "use a certificate from a public CA (and serve the intermediate certificates)",
			    "%s: certificate not trusted: %s (issuer %s)", a, p->message,
			    p->cert_issuer[0] ? p->cert_issuer : "unknown");
		else
			add(r, "host.cert.trusted", S, STS_CHECK_PASS, "25", a, "",
			    "%s: certificate chain is trusted", a);
		if (e == STS_FETCH_TLS_NAME)
			add(r, "host.cert.name", S, STS_CHECK_FAIL, "25", a,
			    "get a certificate that names mta-sts.<domain> (a SAN entry)",
			    "%s: the certificate does not cover %s (it names: %s)", a, host,
			    p->cert_sans[0] ? p->cert_sans : "no DNS names");
		else if (e != STS_FETCH_TLS_UNTRUSTED)
			add(r, "host.cert.name", S, STS_CHECK_PASS, "25", a, "",
			    "%s: certificate is valid for %s", a, host);
		if (e == STS_FETCH_TLS_EXPIRED) {
			char when[40] = "unknown";
			if (p->cert_not_after)
				date_of(p->cert_not_after, when, sizeof when);
			add(r, "host.cert.expiry", S, STS_CHECK_FAIL, "25", a, "renew the certificate",
			    "%s: the certificate expired (not after %s): senders refuse the policy",
			    a, when);
		} else if (p->have_cert && p->cert_not_after > 0) {
			long days = (long)((p->cert_not_after - in->now) / DAY);
			char when[40];
			date_of(p->cert_not_after, when, sizeof when);
			add(r, "host.cert.expiry", S, days < 14 ? STS_CHECK_WARN : STS_CHECK_PASS, "25", a,
			    days < 14 ? "renew the certificate now" : "",
			    "%s: certificate expires in %ld days (%s)", a, days, when);
		}
		switch (e) {
		case STS_FETCH_REDIRECT:
			add(r, "host.http.redirect", S, STS_CHECK_FAIL, "31", a,
			    "serve the file directly at /.well-known/mta-sts.txt; senders do not follow"
			    " redirects", "%s: %s", a, p->message);
			break;
		case STS_FETCH_HTTP_STATUS:
		case STS_FETCH_TIMEOUT:
			add(r, "host.http.status", S, STS_CHECK_FAIL, "30", a,
			    "serve the policy at /.well-known/mta-sts.txt with status 200", "%s: %s", a,
			    p->message);
			break;
		case STS_FETCH_CONTENT_TYPE:
			add(r, "host.http.content_type", S, STS_CHECK_FAIL, "14", a,
			    "serve the file as text/plain", "%s: %s", a, p->message);
			break;
		case STS_FETCH_TOO_LARGE:
			add(r, "host.http.size", S, STS_CHECK_FAIL, "35", a,
			    "serve only the policy fields", "%s: %s", a, p->message);
			break;
		case STS_FETCH_OK:
			add(r, "host.http.status", S, STS_CHECK_PASS, "30", a, "", "%s: HTTP 200", a);
			add(r, "host.http.content_type", S, STS_CHECK_PASS, "14", a, "", "%s: %s", a,
			    p->content_type);
			add(r, "host.http.size", S, p->body_len > 4096 ? STS_CHECK_WARN : STS_CHECK_PASS,
			    "36", a, p->body_len > 4096 ? "keep the policy short" : "",
			    "%s: %zu bytes", a, p->body_len);
			break;
		default:
			break;
		}
	}
	/* Different bodies on different addresses: senders get a random one. */
	const struct sts_check_host *first = NULL;
	bool differ = false;
	for (size_t i = 0; i < r->n_hosts; i++) {
		const struct sts_check_host *h = &r->hosts[i];
		if (h->body == NULL)
			continue;
		if (first == NULL)
			first = h;
		else if (strcmp(first->body, h->body) != 0)
			differ = true;
	}
	if (differ) {
		char list[512] = "";
		size_t o = 0;
		for (size_t i = 0; i < r->n_hosts && o < sizeof list; i++)
			if (r->hosts[i].body != NULL)
				o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "",
						      r->hosts[i].addr);
		add(r, "host.consistent", S, STS_CHECK_FAIL, "13", host,
		    "deploy the same policy file on every server behind mta-sts.<domain>",
		    "the addresses of %s (%s) serve different policies: senders get whichever"
		    " address they reach", host, list);
	} else if (r->n_hosts > 1 && first != NULL) {
		add(r, "host.consistent", S, STS_CHECK_PASS, "13", host, "",
		    "all addresses serve the same policy");
	}
}

/* --- policy content and MX coverage ------------------------------------ */

static void
judge_policy(struct sts_check_report *r, const struct check_input *in, struct sts_policy *p,
	     bool *have_policy)
{
	const char *S = "policy";
	*have_policy = false;
	if (r->policy == NULL)
		return;
	struct sts_diags *d = malloc(sizeof *d), *ds = malloc(sizeof *ds);
	if (d == NULL || ds == NULL) {
		free(d);
		free(ds);
		return;
	}
	sts_diags_init(d);
	sts_diags_init(ds);
	size_t len = strlen(r->policy);
	int rc = sts_policy_parse(r->policy, len, 0, p, d);
	struct sts_policy sp;
	sts_policy_parse(r->policy, len, STS_PARSE_STRICT, &sp, ds);
	sts_policy_clear(&sp);
	const struct sts_diags *show = rc == STS_OK ? ds : d;
	size_t shown = 0;
	for (size_t i = 0; i < show->n; i++) {
		const struct sts_diag *g = &show->items[i];
		if (strcmp(g->code, "policy.max_age.too_large") == 0 ||
		    strcmp(g->code, "policy.max_age.short") == 0)
			continue;   /* judged by policy.max_age below */
		shown++;
		char where[48];
		snprintf(where, sizeof where, "line %u", g->line);
		bool fatal = g->severity == STS_SEV_ERROR && rc != STS_OK;
		add(r, "policy.syntax", S, fatal ? STS_CHECK_FAIL : STS_CHECK_WARN, g->rule, where,
		    fatal ? "fix the policy file; mta-sts lint shows every problem" : "",
		    "line %u, column %u: %s (%s)", g->line, g->column, g->message, g->code);
	}
	bool clean = shown == 0;
	free(d);
	free(ds);
	if (rc != STS_OK) {
		add(r, "policy.syntax", S, STS_CHECK_FAIL, "37", "", "fix the errors above",
		    "senders reject this policy and deliver as if the domain had no MTA-STS");
		return;
	}
	*have_policy = true;
	if (clean)
		add(r, "policy.syntax", S, STS_CHECK_PASS, "20", "", "", "the policy is valid");

	switch (p->mode) {
	case STS_MODE_ENFORCE:
		add(r, "policy.mode", S, STS_CHECK_PASS, "48", "", "", "mode enforce: senders refuse"
		    " MX hosts that fail the policy");
		break;
	case STS_MODE_TESTING:
		add(r, "policy.mode", S, STS_CHECK_WARN, "49", "",
		    "once TLSRPT reports show no failures, switch to mode: enforce (with a new id)",
		    "mode testing: failures are only reported, mail is still delivered without"
		    " protection");
		break;
	default:
		add(r, "policy.mode", S, STS_CHECK_INFO, "50", "", "",
		    "mode none: the domain has no active policy");
		break;
	}

	if (p->max_age_raw > STS_MAX_AGE_MAX)
		add(r, "policy.max_age", S, STS_CHECK_FAIL, "15", "", "write max_age: 31557600 or less",
		    "max_age %llu is above the maximum 31557600: senders cap or reject it",
		    (unsigned long long)p->max_age_raw);
	else if (p->mode != STS_MODE_NONE && p->max_age < DAY)
		add(r, "policy.max_age", S, STS_CHECK_WARN, "17", "", "use at least 604800 (one week)",
		    "max_age %u is under one day: senders forget the policy quickly", p->max_age);
	else if (p->mode == STS_MODE_ENFORCE && p->max_age < 7 * DAY)
		add(r, "policy.max_age", S, STS_CHECK_WARN, "17", "",
		    "use at least 604800 (one week), ideally more",
		    "max_age %u is under one week for an enforced policy", p->max_age);
	else
		add(r, "policy.max_age", S, STS_CHECK_PASS, "17", "", "", "max_age %u (%.1f days)",
		    p->max_age, (double)p->max_age / DAY);

	for (size_t i = 0; i < p->n_mx; i++) {
		const char *m = p->mx[i];
		if (m[0] == '*' && strchr(m + 2, '.') == NULL)
			add(r, "policy.mx.broad", S, STS_CHECK_WARN, "73", m,
			    "list your MX hosts or a wildcard under your own domain",
			    "mx %s covers every host under a top-level domain", m);
	}
	(void)in;
}

static void
judge_coverage(struct sts_check_report *r, const struct sts_policy *p)
{
	const char *S = "policy";
	if (p->mode == STS_MODE_NONE)
		return;
	size_t real_mx = 0;
	bool all = true;
	for (size_t i = 0; i < r->n_mx; i++) {
		const struct sts_check_mx *m = &r->mx[i];
		if (m->host[0] == '\0' || sts_host_is_ip_literal(m->host))
			continue;
		real_mx++;
		char norm[STS_HOST_MAX + 1];
		bool ok = sts_host_normalize(m->host, strlen(m->host), norm) == STS_OK &&
			  sts_policy_matches_host(p, norm);
		if (!ok) {
			all = false;
			bool enforce = p->mode == STS_MODE_ENFORCE;
			add(r, "policy.mx.coverage", S, enforce ? STS_CHECK_FAIL : STS_CHECK_WARN, "45",
			    m->host, "add 'mx: <host>' (or a matching '*.' pattern) and publish with a new id",
			    "MX host %s matches no mx pattern: %s", m->host,
			    enforce ? "senders refuse to deliver to it" : "senders report failures for it");
		}
	}
	if (real_mx > 0 && all)
		add(r, "policy.mx.coverage", S, STS_CHECK_PASS, "45", "", "",
		    "every MX host matches an mx pattern");
	for (size_t i = 0; i < p->n_mx; i++) {
		bool used = false;
		for (size_t j = 0; j < r->n_mx && !used; j++) {
			char norm[STS_HOST_MAX + 1];
			if (r->mx[j].host[0] != '\0' &&
			    sts_host_normalize(r->mx[j].host, strlen(r->mx[j].host), norm) == STS_OK)
				used = sts_mx_match(p->mx[i], norm);
		}
		if (!used && real_mx > 0)
			add(r, "policy.mx.unused", S, STS_CHECK_WARN, "45", p->mx[i],
			    "remove the pattern if the host no longer receives mail (new id, after the"
			    " old max_age)", "mx pattern %s matches none of the domain's MX hosts",
			    p->mx[i]);
	}
}

/* --- MX, DANE ------------------------------------------------------------ */

static void
judge_mx(struct sts_check_report *r, const struct check_input *in)
{
	const char *S = "mx";
	if (in->mx_rcode == STS_DNS_TEMPFAIL) {
		add(r, "mx.present", S, STS_CHECK_FAIL, "44", r->domain, "",
		    "the MX lookup failed: %s", in->mx_detail);
		return;
	}
	if (in->mx_rcode != STS_DNS_OK || r->n_mx == 0) {
		add(r, "mx.present", S, STS_CHECK_FAIL, "44", r->domain,
		    "publish MX records naming your mail servers",
		    "%s has no MX records: MTA-STS protects delivery to MX hosts", r->domain);
		return;
	}
	if (r->n_mx == 1 && r->mx[0].host[0] == '\0') {
		add(r, "mx.null", S, STS_CHECK_INFO, "", r->domain, "",
		    "null MX (RFC 7505): %s accepts no mail", r->domain);
		return;
	}
	add(r, "mx.present", S, STS_CHECK_PASS, "44", r->domain, "", "%zu MX record%s", r->n_mx,
	    r->n_mx == 1 ? "" : "s");
	for (size_t i = 0; i < r->n_mx; i++) {
		const struct sts_check_mx *m = &r->mx[i];
		if (m->host[0] == '\0')
			continue;
		if (sts_host_is_ip_literal(m->host)) {
			add(r, "mx.ip", S, STS_CHECK_FAIL, "45", m->host,
			    "point the MX record at a host name", "MX %s is an IP address, not a host"
			    " name: no certificate or policy pattern can match it", m->host);
			continue;
		}
		if (m->is_cname)
			add(r, "mx.cname", S, STS_CHECK_WARN, "45", m->host,
			    "point the MX record at the canonical host name",
			    "MX host %s is a CNAME: senders match and verify the MX name, not the"
			    " alias target", m->host);
		if (m->n_tlsa > 0)
			add(r, "dane.tlsa", "dane", STS_CHECK_INFO, "1", m->host, "",
			    "%s has %zu TLSA record%s at _25._tcp: senders that support DANE use it and"
			    " MTA-STS must not override it", m->host, m->n_tlsa, m->n_tlsa == 1 ? "" : "s");
		if (m->n_addrs == 0) {
			if (m->addr_rcode == STS_DNS_TEMPFAIL)
				add(r, "mx.address", S, STS_CHECK_FAIL, "44", m->host,
				    "check the name servers that answer for the MX host, then check again",
				    "the address lookup of MX host %s failed: %s", m->host, m->addr_detail);
			else
				add(r, "mx.address", S, STS_CHECK_FAIL, "44", m->host,
				    "give the MX host an A/AAAA record", "MX host %s has no address",
				    m->host);
			continue;
		}
		add(r, "mx.address", S, STS_CHECK_PASS, "44", m->host, "", "%s has %zu address%s",
		    m->host, m->n_addrs, m->n_addrs == 1 ? "" : "es");
		if (!in->smtp_probed)
			continue;
		for (size_t j = 0; j < m->n_addrs; j++) {
			const struct sts_check_smtp *s = &m->smtp[j];
			char subj[STS_HOST_MAX + 80];
			snprintf(subj, sizeof subj, "%s %s", m->host, s->addr);
			enum sts_smtp_error e = (enum sts_smtp_error)s->error;
			if (e == STS_SMTP_CONNECT || e == STS_SMTP_TIMEOUT || e == STS_SMTP_PROTOCOL ||
			    e == STS_SMTP_INTERNAL) {
				add(r, "mx.reachable", S, STS_CHECK_FAIL, "44", subj,
				    "make port 25 reachable and answering", "%s: %s", subj, s->message);
				continue;
			}
			add(r, "mx.reachable", S, STS_CHECK_PASS, "44", subj, "", "%s answers on port 25",
			    subj);
			if (e != STS_SMTP_OK) {
				add(r, "mx.starttls", S, STS_CHECK_FAIL, "48", subj,
				    "enable STARTTLS with a certificate for the MX name (TLS 1.2+)",
				    "%s: %s", subj, s->message);
				continue;
			}
			add(r, "mx.starttls", S, STS_CHECK_PASS, "44", subj, "", "%s: STARTTLS with %s",
			    subj, s->tls_version);
			enum sts_smtp_cert c = (enum sts_smtp_cert)s->cert;
			add(r, "mx.cert.trusted", S,
			    c == STS_SMTP_CERT_UNTRUSTED ? STS_CHECK_FAIL : STS_CHECK_PASS, "46", subj,
			    c == STS_SMTP_CERT_UNTRUSTED ? "use a certificate from a public CA with the"
							   " full chain" : "",
			    c == STS_SMTP_CERT_UNTRUSTED ? "%s: certificate not trusted: %s (issuer %s)"
							 : "%s: certificate chain is trusted%s%s",
			    subj, c == STS_SMTP_CERT_UNTRUSTED ? s->cert_message : "",
			    c == STS_SMTP_CERT_UNTRUSTED ? s->cert_issuer : "");
			if (c == STS_SMTP_CERT_NAME)
				add(r, "mx.cert.name", S, STS_CHECK_FAIL, "46", subj,
				    "get a certificate that names the MX host",
				    "%s: the certificate is not valid for %s (subject %s)", subj, m->host,
				    s->cert_subject);
			else if (c != STS_SMTP_CERT_UNTRUSTED)
				add(r, "mx.cert.name", S, STS_CHECK_PASS, "46", subj, "",
				    "%s: certificate is valid for %s", subj, m->host);
			char when[40] = "unknown";
			if (s->cert_not_after)
				date_of(s->cert_not_after, when, sizeof when);
			if (c == STS_SMTP_CERT_EXPIRED) {
				add(r, "mx.cert.expiry", S, STS_CHECK_FAIL, "46", subj, "renew the certificate",
				    "%s: certificate expired or not yet valid (not after %s)", subj, when);
			} else if (s->cert_not_after > 0) {
				long days = (long)((s->cert_not_after - in->now) / DAY);
				add(r, "mx.cert.expiry", S, days < 14 ? STS_CHECK_WARN : STS_CHECK_PASS, "46",
				    subj, days < 14 ? "renew the certificate now" : "",
				    "%s: certificate expires in %ld days (%s)", subj, days, when);
			}
		}
	}
}

/* --- TLSRPT ------------------------------------------------------------ */

static void
judge_tlsrpt(struct sts_check_report *r, const struct check_input *in)
{
	const char *S = "tlsrpt";
	char owner[STS_HOST_MAX + 16];
	snprintf(owner, sizeof owner, "_smtp._tls.%s", r->domain);
	if (in->tlsrpt_rcode == STS_DNS_TEMPFAIL) {
		add(r, "tlsrpt.present", S, STS_CHECK_WARN, "T1", owner, "", "the lookup of %s failed",
		    owner);
		return;
	}
	struct sts_bytes *strs = calloc(in->n_tlsrpt + 1, sizeof *strs);
	struct sts_txt_rr *rrs = calloc(in->n_tlsrpt + 1, sizeof *rrs);
	if (strs == NULL || rrs == NULL) {
		free(strs);
		free(rrs);
		return;
	}
	for (size_t i = 0; i < in->n_tlsrpt; i++) {
		strs[i].ptr = in->tlsrpt_rrs[i];
		strs[i].len = strlen(in->tlsrpt_rrs[i]);
		rrs[i].strings = &strs[i];
		rrs[i].n_strings = 1;
	}
	struct sts_diags *d = malloc(sizeof *d);
	struct sts_tlsrpt_record rec;
	if (d != NULL) {
		sts_diags_init(d);
		int rc = sts_tlsrpt_select(rrs, in->n_tlsrpt, 0, &rec, d);
		const struct sts_diag *g = sts_diags_first_error(d);
		if (rc == STS_OK) {
			add(r, "tlsrpt.present", S, STS_CHECK_PASS, "T1", owner, "", "%s is published",
			    owner);
			char list[512] = "";
			size_t o = 0;
			for (size_t i = 0; i < rec.n_rua && o < sizeof list; i++)
				o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "",
						      rec.rua[i]);
			add(r, "tlsrpt.syntax", S, STS_CHECK_PASS, "T3", owner, "",
			    "reports go to %s", list);
			for (size_t i = 0; i < in->n_tlsrpt; i++)
				if (sts_tagrec_is_candidate((const unsigned char *)in->tlsrpt_rrs[i],
							    strlen(in->tlsrpt_rrs[i]), "v=TLSRPTv1")) {
					r->tlsrpt = strdup(in->tlsrpt_rrs[i]);
					break;
				}
		} else if (g != NULL && strcmp(g->code, "tlsrpt.rrset.none") == 0) {
			add(r, "tlsrpt.present", S, STS_CHECK_WARN, "T1", owner,
			    "publish _smtp._tls.<domain> IN TXT \"v=TLSRPTv1; rua=mailto:...\"",
			    "no TLSRPT record: you will not hear about delivery failures");
		} else {
			add(r, "tlsrpt.present", S, STS_CHECK_PASS, "T1", owner, "", "%s has a record",
			    owner);
			for (size_t i = 0; i < in->n_tlsrpt && r->tlsrpt == NULL; i++)
				if (strncmp(in->tlsrpt_rrs[i], "v=TLSRPTv1", 10) == 0)
					r->tlsrpt = strdup(in->tlsrpt_rrs[i]);
			for (size_t i = 0; i < d->n; i++)
				if (d->items[i].severity == STS_SEV_ERROR)
					add(r, "tlsrpt.syntax", S, STS_CHECK_FAIL, d->items[i].rule, owner,
					    "fix the record; mta-sts lint --tlsrpt checks it", "%s (%s)",
					    d->items[i].message, d->items[i].code);
		}
		sts_tlsrpt_record_clear(&rec);
	}
	free(d);
	free(strs);
	free(rrs);
}

/* --- id discipline ------------------------------------------------------ */

static bool
judge_id(struct sts_check_report *r, const struct check_input *in, const struct sts_policy *p,
	 bool have_policy, struct sts_check_state *next)
{
	const char *S = "id";
	if (!in->use_state || r->id[0] == '\0' || !have_policy)
		return false;
	struct sts_buf canon;
	sts_buf_init(&canon, 4 * STS_POLICY_MAX);
	if (sts_policy_canonical(p, &canon) != STS_OK) {
		sts_buf_free(&canon);
		return false;
	}
	memset(next, 0, sizeof *next);
	snprintf(next->id, sizeof next->id, "%s", r->id);
	next->seen_at = in->now;
	next->max_age = p->max_age;
	next->canonical = strdup(sts_buf_cstr(&canon));
	sts_buf_free(&canon);

	if (!in->have_prev) {
		add(r, "id.first_seen", S, STS_CHECK_INFO, "5", r->id, "",
		    "first check with this state directory: id %s and its policy are remembered",
		    r->id);
		return true;
	}
	const struct sts_check_state *pv = &in->prev;
	bool same_id = strcmp(pv->id, r->id) == 0;
	bool same_policy = pv->canonical != NULL && strcmp(pv->canonical, next->canonical) == 0;
	char until[40];
	date_of(in->now + (int64_t)pv->max_age, until, sizeof until);
	if (same_id && !same_policy) {
		if (pv->id_with_old_body) {
			add(r, "id.txt_before_policy", S, STS_CHECK_WARN, "64", r->id,
			    "next time upload the policy first, then change the TXT id",
			    "id %s was published before its policy: senders that fetched in between"
			    " cached the old policy under id %s and keep it until %s", r->id, r->id, until);
		} else {
			add(r, "id.policy_changed_same_id", S, STS_CHECK_FAIL, "5", r->id,
			    "publish a new id in the TXT record (mta-sts publish assigns one)",
			    "the policy changed but the id is still %s: senders that cached id %s keep"
			    " the old policy until %s", r->id, r->id, until);
			/* Keep the old state: every run fails until the id changes, so a
			 * monitor that missed one run still sees it. */
			return false;
		}
		next->id_with_old_body = false;
		return true;
	}
	if (!same_id && same_policy) {
		add(r, "id.changed_policy_unchanged", S, STS_CHECK_INFO, "5", r->id,
		    "if you meant to change the policy, upload it now (then senders refetch once more)",
		    "the id changed from %s to %s but the policy did not", pv->id, r->id);
		next->id_with_old_body = true;
		return true;
	}
	next->id_with_old_body = same_id ? pv->id_with_old_body : false;
	add(r, "id.discipline", S, STS_CHECK_PASS, "5", r->id, "",
	    same_id ? "policy and id unchanged since the last check"
		    : "the policy changed and so did the id (%s -> %s)", pv->id, r->id);
	return true;
}

bool
sts_check_judge(struct sts_check_report *r, const struct check_input *in,
		struct sts_check_state *next)
{
	judge_txt(r, in);
	judge_host(r, in);
	struct sts_policy p;
	memset(&p, 0, sizeof p);
	bool have_policy = false;
	judge_policy(r, in, &p, &have_policy);
	if (have_policy)
		judge_coverage(r, &p);
	judge_mx(r, in);
	judge_tlsrpt(r, in);
	bool save = judge_id(r, in, &p, have_policy, next);
	sts_policy_clear(&p);
	return save;
}

void
sts_check_report_clear(struct sts_check_report *r)
{
	for (size_t i = 0; i < r->n_findings; i++) {
		free(r->findings[i].subject);
		free(r->findings[i].message);
		free(r->findings[i].fix);
	}
	free(r->findings);
	for (size_t i = 0; i < r->n_txt; i++)
		free(r->txt[i]);
	free(r->txt);
	for (size_t i = 0; i < r->n_txt_cnames; i++)
		free(r->txt_cnames[i]);
	free(r->txt_cnames);
	for (size_t i = 0; i < r->n_hosts; i++)
		free(r->hosts[i].body);
	free(r->hosts);
	free(r->policy);
	for (size_t i = 0; i < r->n_mx; i++)
		free(r->mx[i].smtp);
	free(r->mx);
	free(r->tlsrpt);
	memset(r, 0, sizeof *r);
}
