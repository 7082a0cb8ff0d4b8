/* check.h: `mta-sts check`, the audit of one domain's MTA-STS, TLSRPT and MX
 * TLS setup. Gathers everything asynchronously on the engine's loop (DNS,
 * HTTPS probes of every policy-host address, SMTP STARTTLS probes of every
 * MX address), then judges it into findings. Each finding has a stable id
 * (docs/check-findings.md lists them all), a status, a message that says
 * what is wrong in plain words, a fix, and the rule number.
 * @test tests/unit/test_check.c (judging), tests/integration/test_check.sh */
#ifndef MTASTS_CHECK_H
#define MTASTS_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <mtasts/clock.h>
#include <mtasts/dns.h>
#include <mtasts/fetch.h>
#include <mtasts/log.h>
#include <mtasts/mx.h>
#include <mtasts/smtp.h>
#include <mtasts/txt.h>

enum sts_check_status {
	STS_CHECK_PASS = 0,
	STS_CHECK_INFO,
	STS_CHECK_WARN,
	STS_CHECK_FAIL,
};
const char *sts_check_status_name(enum sts_check_status s);   /* "pass", ... */

struct sts_finding {
	const char *id;          /* static, stable: "policy.mx.coverage" */
	const char *section;     /* static: "txt", "policy-host", "policy", "mx", "tlsrpt", "dane", "id" */
	enum sts_check_status status;
	const char *rule;        /* static, "" when none */
	char *subject;           /* owned: the address, MX host or record this is about, or "" */
	char *message;           /* owned */
	char *fix;               /* owned, "" when nothing to do */
};

/* What one policy-host address served. */
struct sts_check_host {
	char addr[64];
	struct sts_fetch_probe_summary {
		int error;                   /* enum sts_fetch_error of the verified probe */
		char error_code[40];
		char message[256];
		long http_status;
		char content_type[128];
		char location[256];
		size_t body_len;
		char tls_version[16];
		bool have_cert;
		char cert_subject[256];
		char cert_issuer[256];
		char cert_sans[1024];
		int64_t cert_not_after;
	} probe;
	char *body;                      /* owned, NUL-terminated; NULL when none */
};

/* What one address of one MX host answered. */
struct sts_check_smtp {
	char addr[64];
	int error;                       /* enum sts_smtp_error */
	char error_code[40];
	char message[256];
	bool starttls;
	char tls_version[16];
	int cert;                        /* enum sts_smtp_cert */
	char cert_message[128];
	char cert_subject[256];
	char cert_issuer[256];
	int64_t cert_not_after;
};

struct sts_check_mx {
	char host[STS_HOST_MAX + 1];
	unsigned preference;
	bool is_cname;
	int addr_rcode;                  /* enum sts_dns_rcode of its A/AAAA lookup */
	char addr_detail[160];
	size_t n_addrs;
	struct sts_check_smtp *smtp;     /* one per address (probed or not) */
	size_t n_tlsa;                   /* TLSA records at _25._tcp.<host> */
};

struct sts_check_report {
	char domain[STS_HOST_MAX + 1];
	int64_t checked_at;
	size_t n_findings;
	struct sts_finding *findings;
	/* raw data, for --json */
	size_t n_txt;                    /* TXT RRs at _mta-sts.<domain>, strings joined */
	char **txt;
	size_t n_txt_cnames;
	char **txt_cnames;
	char id[STS_ID_MAX + 1];         /* "" when no valid record */
	size_t n_hosts;
	struct sts_check_host *hosts;
	char *policy;                    /* the body judged (first address that served one) */
	size_t n_mx;
	struct sts_check_mx *mx;
	char *tlsrpt;                    /* the selected TLSRPT record, or NULL */
	/* counts by status */
	size_t n_pass, n_info, n_warn, n_fail;
};

struct sts_check_opts {
	struct sts_dns *dns;
	struct sts_fetcher *fetcher;
	struct sts_smtp_prober *smtp;    /* NULL: no SMTP probes (--no-smtp) */
	const char *state_dir;           /* id discipline memory; NULL: none */
	const struct sts_clock *clock;
	struct sts_logger log;
};

typedef void (*sts_check_cb)(void *arg, const struct sts_check_report *r);

struct sts_checker;

int sts_checker_new(const struct sts_check_opts *opts, struct sts_checker **out);
void sts_checker_free(struct sts_checker **c);

/* Audits domain; the report is valid only while the callback runs. */
void sts_check_domain(struct sts_checker *c, const char *domain, sts_check_cb cb, void *arg);

#endif
