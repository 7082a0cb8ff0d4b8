/* sts_check.c: the gathering half of `mta-sts check`. One job per domain
 * fans out every lookup and probe at once on the loop, counts what is still
 * pending, and hands the evidence to the judge (sts_check_judge.c) when the
 * last answer is in. SMTP probes are shared between domains of one checker:
 * many domains use the same MX hosts, and one probe per (host, address)
 * tells the same story for all of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtasts/mtasts.h>

#include "sts_check_internal.h"

#define MAX_MX 10          /* MX hosts probed per domain */
#define MAX_ADDRS 4        /* addresses probed per host */

struct smtp_waiter {
	struct cjob *job;
	struct sts_check_smtp *slot;
	struct smtp_waiter *next;
};

/* One SMTP probe, shared by every domain that needs it. */
struct smtp_memo {
	char host[STS_HOST_MAX + 1];
	char addr[64];
	bool done;
	struct sts_check_smtp result;
	struct smtp_waiter *waiters;
	struct smtp_memo *next;
	struct sts_checker *checker;
};

struct sts_checker {
	struct sts_check_opts o;
	struct smtp_memo *smtp_memos;
};

struct cjob {
	struct sts_checker *c;
	sts_check_cb cb;
	void *arg;
	struct sts_check_report r;
	struct check_input in;
	int pending;
};

struct mx_ctx {
	struct cjob *job;
	size_t index;
};

static void job_done(struct cjob *j);

static void
job_finish_one(struct cjob *j)
{
	if (--j->pending == 0)
		job_done(j);
}

static char *
join_rr(const struct sts_txt_rr *rr)
{
	size_t n = 0;
	for (size_t i = 0; i < rr->n_strings; i++)
		n += rr->strings[i].len;
	char *s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < rr->n_strings; i++) {
		memcpy(s + o, rr->strings[i].ptr, rr->strings[i].len);
		o += rr->strings[i].len;
	}
	s[o] = '\0';
	/* A NUL inside a TXT string would cut the text short; show it as '?'. */
	for (size_t i = 0; i < o; i++)
		if (s[i] == '\0')
			s[i] = '?';
	return s;
}

static void
copy_txt(const struct sts_dns_answer *a, char ***out, size_t *n)
{
	*out = calloc(a->n_rrs + 1, sizeof **out);
	*n = 0;
	if (*out == NULL)
		return;
	for (size_t i = 0; i < a->n_rrs; i++) {
		char *s = join_rr(&a->rrs[i]);
		if (s != NULL)
			(*out)[(*n)++] = s;
	}
}

static bool
has_sts(const struct sts_dns_answer *a)
{
	for (size_t i = 0; a->rcode == STS_DNS_OK && i < a->n_rrs; i++) {
		char *s = join_rr(&a->rrs[i]);
		bool yes = s != NULL && strncmp(s, "v=STSv1", 7) == 0;
		free(s);
		if (yes)
			return true;
	}
	return false;
}

/* --- TXT ------------------------------------------------------------------ */

static void
on_txt(void *arg, const struct sts_dns_answer *a)
{
	struct cjob *j = arg;
	j->in.txt_rcode = a->rcode;
	snprintf(j->in.txt_detail, sizeof j->in.txt_detail, "%s", a->detail ? a->detail : "");
	if (a->rcode == STS_DNS_OK)
		copy_txt(a, &j->r.txt, &j->r.n_txt);
	if (a->n_cnames > 0) {
		j->r.txt_cnames = calloc(a->n_cnames, sizeof *j->r.txt_cnames);
		for (size_t i = 0; j->r.txt_cnames != NULL && i < a->n_cnames; i++)
			j->r.txt_cnames[j->r.n_txt_cnames++] = strdup(a->cnames[i]);
	}
	job_finish_one(j);
}

static void
on_apex_txt(void *arg, const struct sts_dns_answer *a)
{
	struct cjob *j = arg;
	j->in.apex_sts = has_sts(a);
	job_finish_one(j);
}

static void
on_host_txt(void *arg, const struct sts_dns_answer *a)
{
	struct cjob *j = arg;
	j->in.host_sts = has_sts(a);
	job_finish_one(j);
}

static void
on_tlsrpt(void *arg, const struct sts_dns_answer *a)
{
	struct cjob *j = arg;
	j->in.tlsrpt_rcode = a->rcode;
	if (a->rcode == STS_DNS_OK)
		copy_txt(a, &j->in.tlsrpt_rrs, &j->in.n_tlsrpt);
	job_finish_one(j);
}

/* --- policy host ------------------------------------------------------ */

struct host_ctx {
	struct cjob *job;
	size_t index;
	bool verified;
};

static void
on_probe(void *arg, const struct sts_fetch_probe *p)
{
	struct host_ctx *hc = arg;
	struct cjob *j = hc->job;
	struct sts_check_host *h = &j->r.hosts[hc->index];
	struct sts_fetch_probe_summary *s = &h->probe;
	if (hc->verified) {
		s->error = p->r.error;
		snprintf(s->error_code, sizeof s->error_code, "%s", sts_fetch_error_code(p->r.error));
		snprintf(s->message, sizeof s->message, "%s", p->r.message);
		s->http_status = p->r.http_status;
		snprintf(s->content_type, sizeof s->content_type, "%s", p->r.content_type);
		snprintf(s->location, sizeof s->location, "%s", p->r.location);
	}
	if (s->tls_version[0] == '\0')
		snprintf(s->tls_version, sizeof s->tls_version, "%s", p->tls_version);
	if (!s->have_cert && p->have_cert) {
		s->have_cert = true;
		snprintf(s->cert_subject, sizeof s->cert_subject, "%s", p->cert_subject);
		snprintf(s->cert_issuer, sizeof s->cert_issuer, "%s", p->cert_issuer);
		snprintf(s->cert_sans, sizeof s->cert_sans, "%s", p->cert_sans);
		s->cert_not_after = p->cert_not_after;
	}
	if (p->r.error == STS_FETCH_OK && h->body == NULL && p->r.body != NULL) {
		h->body = malloc(p->r.body_len + 1);
		if (h->body != NULL) {
			memcpy(h->body, p->r.body, p->r.body_len);
			h->body[p->r.body_len] = '\0';
			s->body_len = p->r.body_len;
		}
	}
	/* A certificate problem: look again without verification, so the
	 * report can show the certificate and still lint the policy. */
	if (hc->verified && (p->r.error == STS_FETCH_TLS_UNTRUSTED ||
			     p->r.error == STS_FETCH_TLS_EXPIRED || p->r.error == STS_FETCH_TLS_NAME)) {
		hc->verified = false;
		j->pending++;
		sts_fetch_probe(j->c->o.fetcher, j->r.domain, h->addr, false, on_probe, hc);
		job_finish_one(j);
		return;
	}
	free(hc);
	job_finish_one(j);
}

static void
on_host_addrs(void *arg, const struct sts_dns_answer *a)
{
	struct cjob *j = arg;
	j->in.host_rcode = a->rcode;
	snprintf(j->in.host_detail, sizeof j->in.host_detail, "%s", a->detail ? a->detail : "");
	size_t n = a->rcode == STS_DNS_OK ? a->n_addrs : 0;
	if (n > MAX_ADDRS)
		n = MAX_ADDRS;
	if (n > 0)
		j->r.hosts = calloc(n, sizeof *j->r.hosts);
	if (j->r.hosts == NULL)
		n = 0;
	j->r.n_hosts = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(j->r.hosts[i].addr, sizeof j->r.hosts[i].addr, "%s", a->addrs[i]);
		struct host_ctx *hc = calloc(1, sizeof *hc);
		if (hc == NULL)
			continue;
		*hc = (struct host_ctx){ j, i, true };
		j->pending++;
		sts_fetch_probe(j->c->o.fetcher, j->r.domain, j->r.hosts[i].addr, true, on_probe, hc);
	}
	job_finish_one(j);
}

/* --- MX ------------------------------------------------------------------ */

static void
memo_deliver(struct smtp_memo *m)
{
	while (m->waiters != NULL) {
		struct smtp_waiter *w = m->waiters;
		m->waiters = w->next;
		char addr[64];
		snprintf(addr, sizeof addr, "%s", w->slot->addr);
		*w->slot = m->result;
		snprintf(w->slot->addr, sizeof w->slot->addr, "%s", addr);
		struct cjob *j = w->job;
		free(w);
		job_finish_one(j);
	}
}

static void
on_smtp(void *arg, const struct sts_smtp_result *s)
{
	struct smtp_memo *m = arg;
	struct sts_check_smtp *r = &m->result;
	r->error = s->error;
	snprintf(r->error_code, sizeof r->error_code, "%s", sts_smtp_error_code(s->error));
	snprintf(r->message, sizeof r->message, "%s", s->message);
	r->starttls = s->starttls_offered;
	snprintf(r->tls_version, sizeof r->tls_version, "%s", s->tls_version);
	r->cert = s->cert;
	snprintf(r->cert_message, sizeof r->cert_message, "%s", s->cert_message);
	snprintf(r->cert_subject, sizeof r->cert_subject, "%s", s->cert_subject);
	snprintf(r->cert_issuer, sizeof r->cert_issuer, "%s", s->cert_issuer);
	r->cert_not_after = s->cert_not_after;
	m->done = true;
	memo_deliver(m);
}

static void
probe_smtp(struct cjob *j, const char *host, struct sts_check_smtp *slot)
{
	struct sts_checker *c = j->c;
	struct smtp_memo *m = c->smtp_memos;
	while (m != NULL && !(strcmp(m->host, host) == 0 && strcmp(m->addr, slot->addr) == 0))
		m = m->next;
	struct smtp_waiter *w = calloc(1, sizeof *w);
	if (w == NULL)
		return;
	w->job = j;
	w->slot = slot;
	j->pending++;
	if (m != NULL) {
		w->next = m->waiters;
		m->waiters = w;
		if (m->done)
			memo_deliver(m);
		return;
	}
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		free(w);
		j->pending--;
		return;
	}
	snprintf(m->host, sizeof m->host, "%s", host);
	snprintf(m->addr, sizeof m->addr, "%s", slot->addr);
	m->checker = c;
	m->waiters = w;
	m->next = c->smtp_memos;
	c->smtp_memos = m;
	sts_smtp_probe(c->o.smtp, m->host, m->addr, on_smtp, m);
}

static void
on_mx_addrs(void *arg, const struct sts_dns_answer *a)
{
	struct mx_ctx *mc = arg;
	struct cjob *j = mc->job;
	struct sts_check_mx *m = &j->r.mx[mc->index];
	m->is_cname = a->n_cnames > 0;
	m->addr_rcode = a->rcode;
	snprintf(m->addr_detail, sizeof m->addr_detail, "%s", a->detail ? a->detail : "");
	size_t n = a->rcode == STS_DNS_OK ? a->n_addrs : 0;
	if (n > MAX_ADDRS)
		n = MAX_ADDRS;
	if (n > 0)
		m->smtp = calloc(n, sizeof *m->smtp);
	m->n_addrs = m->smtp != NULL ? n : 0;
	for (size_t i = 0; i < m->n_addrs; i++) {
		snprintf(m->smtp[i].addr, sizeof m->smtp[i].addr, "%s", a->addrs[i]);
		if (j->c->o.smtp != NULL)
			probe_smtp(j, m->host, &m->smtp[i]);
	}
	free(mc);
	job_finish_one(j);
}

static void
on_mx_tlsa(void *arg, const struct sts_dns_answer *a)
{
	struct mx_ctx *mc = arg;
	struct cjob *j = mc->job;
	j->r.mx[mc->index].n_tlsa = a->rcode == STS_DNS_OK ? a->n_tlsa : 0;
	free(mc);
	job_finish_one(j);
}

static void
on_mx(void *arg, const struct sts_dns_answer *a)
{
	struct cjob *j = arg;
	j->in.mx_rcode = a->rcode;
	snprintf(j->in.mx_detail, sizeof j->in.mx_detail, "%s", a->detail ? a->detail : "");
	size_t n = a->rcode == STS_DNS_OK ? a->n_mx : 0;
	if (n > MAX_MX)
		n = MAX_MX;
	if (n > 0)
		j->r.mx = calloc(n, sizeof *j->r.mx);
	j->r.n_mx = j->r.mx != NULL ? n : 0;
	for (size_t i = 0; i < j->r.n_mx; i++) {
		struct sts_check_mx *m = &j->r.mx[i];
		snprintf(m->host, sizeof m->host, "%s", a->mx[i].host);
		m->preference = a->mx[i].preference;
		if (m->host[0] == '\0' || sts_host_is_ip_literal(m->host))
			continue;
		struct mx_ctx *c1 = calloc(1, sizeof *c1), *c2 = calloc(1, sizeof *c2);
		if (c1 == NULL || c2 == NULL) {
			free(c1);
			free(c2);
			continue;
		}
		*c1 = (struct mx_ctx){ j, i };
		*c2 = (struct mx_ctx){ j, i };
		char tlsa[STS_HOST_MAX + 16];
		snprintf(tlsa, sizeof tlsa, "_25._tcp.%s", m->host);
		j->pending += 2;
		sts_dns_addrs(j->c->o.dns, m->host, on_mx_addrs, c1);
		sts_dns_tlsa(j->c->o.dns, tlsa, on_mx_tlsa, c2);
	}
	job_finish_one(j);
}

/* --- finishing ----------------------------------------------------------- */

static void
job_done(struct cjob *j)
{
	struct sts_checker *c = j->c;
	j->in.now = sts_clock_now(c->o.clock);
	j->r.checked_at = j->in.now;
	j->in.smtp_probed = c->o.smtp != NULL;
	/* The policy judged: the first address that served one over a verified
	 * connection, else any address that served one. */
	for (int pass = 0; pass < 2 && j->r.policy == NULL; pass++)
		for (size_t i = 0; i < j->r.n_hosts && j->r.policy == NULL; i++)
			if (j->r.hosts[i].body != NULL &&
			    (pass == 1 || j->r.hosts[i].probe.error == STS_FETCH_OK))
				j->r.policy = strdup(j->r.hosts[i].body);
	if (c->o.state_dir != NULL) {
		j->in.use_state = true;
		j->in.have_prev = sts_check_state_load(c->o.state_dir, j->r.domain, &j->in.prev) ==
				  STS_OK;
	}
	struct sts_check_state next;
	memset(&next, 0, sizeof next);
	if (sts_check_judge(&j->r, &j->in, &next)) {
		if (sts_check_state_save(c->o.state_dir, j->r.domain, &next) != STS_OK)
			sts_log(&c->o.log, STS_LOG_WARNING, "%s: cannot save check state in %s",
				j->r.domain, c->o.state_dir);
	}
	sts_check_state_clear(&next);
	j->cb(j->arg, &j->r);
	sts_check_state_clear(&j->in.prev);
	for (size_t i = 0; i < j->in.n_tlsrpt; i++)
		free(j->in.tlsrpt_rrs[i]);
	free(j->in.tlsrpt_rrs);
	sts_check_report_clear(&j->r);
	free(j);
}

int
sts_checker_new(const struct sts_check_opts *o, struct sts_checker **out)
{
	*out = NULL;
	if (o->dns == NULL || o->fetcher == NULL)
		return STS_EINVAL;
	struct sts_checker *c = calloc(1, sizeof *c);
	if (c == NULL)
		return STS_ENOMEM;
	c->o = *o;
	*out = c;
	return STS_OK;
}

void
sts_checker_free(struct sts_checker **cp)
{
	if (cp == NULL || *cp == NULL)
		return;
	struct sts_checker *c = *cp;
	while (c->smtp_memos != NULL) {
		struct smtp_memo *m = c->smtp_memos;
		c->smtp_memos = m->next;
		free(m);   /* probes are done: the loop ran dry before this */
	}
	free(c);
	*cp = NULL;
}

void
sts_check_domain(struct sts_checker *c, const char *domain, sts_check_cb cb, void *arg)
{
	struct cjob *j = calloc(1, sizeof *j);
	if (j == NULL)
		return;
	j->c = c;
	j->cb = cb;
	j->arg = arg;
	if (sts_host_normalize(domain, strlen(domain), j->r.domain) != STS_OK ||
	    sts_host_is_ip_literal(j->r.domain)) {
		snprintf(j->r.domain, sizeof j->r.domain, "%.*s", STS_HOST_MAX, domain);
		j->r.findings = calloc(1, sizeof *j->r.findings);
		if (j->r.findings != NULL) {
			j->r.findings[0] = (struct sts_finding){
				.id = "domain.invalid", .section = "txt", .status = STS_CHECK_FAIL,
				.rule = "", .subject = strdup(domain),
				.message = strdup("not a domain name (an IP address or a malformed name)"),
				.fix = strdup("give a domain such as example.com"),
			};
			j->r.n_findings = 1;
			j->r.n_fail = 1;
		}
		cb(arg, &j->r);
		sts_check_report_clear(&j->r);
		free(j);
		return;
	}
	char name[STS_HOST_MAX + 20];
	j->pending = 1;   /* this function's own share, released at the end */
	j->pending += 6;
	snprintf(name, sizeof name, "_mta-sts.%s", j->r.domain);
	sts_dns_txt(c->o.dns, name, on_txt, j);
	sts_dns_txt(c->o.dns, j->r.domain, on_apex_txt, j);
	snprintf(name, sizeof name, "mta-sts.%s", j->r.domain);
	sts_dns_txt(c->o.dns, name, on_host_txt, j);
	sts_dns_addrs(c->o.dns, name, on_host_addrs, j);
	sts_dns_mx(c->o.dns, j->r.domain, on_mx, j);
	snprintf(name, sizeof name, "_smtp._tls.%s", j->r.domain);
	sts_dns_txt(c->o.dns, name, on_tlsrpt, j);
	job_finish_one(j);
}
