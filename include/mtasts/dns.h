/* dns.h: asynchronous DNS through c-ares, driven by a libuv loop. The only
 * module that includes <ares.h>.
 *
 * Answers tell "no such record" (NXDOMAIN, NODATA) apart from "temporary
 * failure" (SERVFAIL, REFUSED, timeout, truncation TCP could not fix): the
 * sender state machine decides differently on each (rule 9, matrix B.2).
 * @test tests/integration/test_dns.c (real knotd), tests/integration/test_query.sh */
#ifndef MTASTS_DNS_H
#define MTASTS_DNS_H

#include <stddef.h>
#include <uv.h>

#include <mtasts/parse.h>

enum sts_dns_rcode {
	STS_DNS_OK = 0,        /* records in the answer */
	STS_DNS_NXDOMAIN,      /* the name does not exist */
	STS_DNS_NODATA,        /* the name exists, no record of this type */
	STS_DNS_TEMPFAIL,      /* SERVFAIL, REFUSED, timeout, network error, cancelled */
};

struct sts_dns_opts {
	/* NULL or "": nameservers from /etc/resolv.conf. Otherwise a comma
	 * separated list of IP[:PORT] (IPv6 as [addr]:port). */
	const char *servers;
	unsigned try_timeout_ms;   /* per try and server; 0: 1500 ms */
	/* 0: 3. c-ares doubles the timeout each round, so the total deadline is
	 * about try_timeout_ms x servers x (2^tries - 1). */
	unsigned tries;
};

/* One MX record. A null MX (RFC 7505: preference 0, exchange ".") has host "". */
struct sts_dns_mx {
	unsigned preference;
	const char *host;                 /* no trailing dot, as received (case kept) */
};

/* One TLSA record in presentation form: usage, selector, matching type, hex data. */
struct sts_dns_tlsa {
	unsigned usage, selector, mtype;
	const char *data_hex;
};

/* An answer, valid only while the callback runs (copy what you keep). */
struct sts_dns_answer {
	enum sts_dns_rcode rcode;
	const char *detail;               /* why, for logs: "SERVFAIL", "timeout after 3 tries" */
	size_t n_rrs;                     /* TXT: records, their strings kept apart (rule 10) */
	const struct sts_txt_rr *rrs;
	size_t n_addrs;                   /* A/AAAA: textual addresses, IPv4 first */
	const char *const *addrs;
	size_t n_mx;                      /* MX: sorted by preference, then name */
	const struct sts_dns_mx *mx;
	size_t n_tlsa;                    /* TLSA */
	const struct sts_dns_tlsa *tlsa;
	/* CNAMEs met in the answer, in chain order: cnames[0] is the queried
	 * name's target, and so on (for TXT, A/AAAA, MX, TLSA answers). Also
	 * given with NODATA and NXDOMAIN (a CNAME to a name without the
	 * record, or to nowhere), never with TEMPFAIL. At most 16 links; a
	 * loop ends with the link that closes it. A/AAAA: the A answer's
	 * chain, or the AAAA answer's when the A answer had none. */
	size_t n_cnames;
	const char *const *cnames;
};

typedef void (*sts_dns_cb)(void *arg, const struct sts_dns_answer *ans);

struct sts_dns;

/* Creates a resolver on loop. Returns 0, or -1 with a message in err. */
int sts_dns_new(uv_loop_t *loop, const struct sts_dns_opts *opts, struct sts_dns **out,
		char *err, size_t errsz);
/* Cancels pending queries (their callbacks run with TEMPFAIL "cancelled"),
 * closes the libuv handles and frees; *dns becomes NULL. The loop must run
 * once more for the handles to close. */
void sts_dns_free(struct sts_dns **dns);

/* TXT records of name. CNAMEs are followed by the resolver (rule 11). */
void sts_dns_txt(struct sts_dns *dns, const char *name, sts_dns_cb cb, void *arg);
/* A and AAAA records of name, combined: OK when either has addresses. */
void sts_dns_addrs(struct sts_dns *dns, const char *name, sts_dns_cb cb, void *arg);

/* MX records of name (issue: mta-sts check). */
void sts_dns_mx(struct sts_dns *dns, const char *name, sts_dns_cb cb, void *arg);
/* TLSA records of name, e.g. "_25._tcp.mx.example.com" (DANE presence, rule 1). */
void sts_dns_tlsa(struct sts_dns *dns, const char *name, sts_dns_cb cb, void *arg);

/* Queries started so far (a TXT, MX or TLSA lookup counts 1, an address
 * lookup 2). */
unsigned long sts_dns_queries(const struct sts_dns *dns);

#endif
