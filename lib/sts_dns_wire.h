/* sts_dns_wire.h: what c-ares 1.18 does not give from a raw DNS answer.
 * Internal to lib/ (used by sts_dns.c).
 *
 *  - the CNAME chain from the queried name (any answer type);
 *  - TLSA records (c-ares 1.18 has no TLSA parser);
 *  - MX records through ares_parse_mx_reply(), in the form dns.h promises
 *    (no trailing dot, root exchange as "", sorted).
 *
 * Pure functions over the message bytes: no sockets, no channel, so that
 * tests/fuzz/fuzz_dnswire.c can feed them hostile messages. Every offset
 * and length read from the message is checked against its size; names are
 * read with ares_expand_name() (compression pointers, loops, label types).
 * The names are in c-ares' presentation form: no trailing dot, the root
 * as "", special characters escaped ("\." "\\" "\DDD"). */
#ifndef STS_DNS_WIRE_H
#define STS_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <mtasts/dns.h>

#define STS_WIRE_TYPE_CNAME 5u
#define STS_WIRE_TYPE_MX 15u
#define STS_WIRE_TYPE_TLSA 52u
#define STS_WIRE_CLASS_IN 1u
/* Links of a CNAME chain followed at most. */
#define STS_WIRE_CHAIN_MAX 16

enum sts_wire_status {
	STS_WIRE_OK = 0,
	STS_WIRE_NODATA,        /* well formed, no record of the type asked for */
	STS_WIRE_BADRESP,       /* malformed: truncated, bad name, bad rdata */
	STS_WIRE_NOMEM,
};

/* What sts_wire_parse() found. Owned: sts_wire_answer_clear() frees. */
struct sts_wire_answer {
	char *qname;                        /* the question's name */
	/* The chain: cnames[0] is the target of the qname's CNAME, cnames[i]
	 * that of cnames[i - 1]. Unrelated CNAMEs are ignored. The walk stops
	 * after STS_WIRE_CHAIN_MAX links, or after the link that closes a loop
	 * (whose target is then the qname or an earlier cnames[j]). */
	char *cnames[STS_WIRE_CHAIN_MAX];
	size_t n_cnames;
	/* TLSA (STS_WIRE_TLSA): the class IN TLSA RRs owned by the end of the
	 * chain, in answer order; data_hex is lower-case hex and points into
	 * hex (owned). */
	struct sts_dns_tlsa *tlsa;
	size_t n_tlsa;
	char *hex;
};

#define STS_WIRE_TLSA 0x1u      /* flag: collect TLSA records */

/* Walks the header, the question (exactly one) and the answer section of
 * msg. Returns STS_WIRE_OK (TLSA wanted: at least one TLSA record),
 * STS_WIRE_NODATA (TLSA wanted, none), STS_WIRE_BADRESP (a malformed
 * question or answer RR, or a TLSA rdata shorter than 3 bytes) or
 * STS_WIRE_NOMEM. On OK and NODATA out holds the qname and the chain;
 * otherwise out is left cleared. The authority and additional sections
 * are not read. */
enum sts_wire_status sts_wire_parse(const unsigned char *msg, size_t len, unsigned flags,
				    struct sts_wire_answer *out);
void sts_wire_answer_clear(struct sts_wire_answer *a);

/* MX records of msg, by ares_parse_mx_reply(). */
struct sts_wire_mx {
	struct sts_dns_mx *mx;              /* sorted by preference, then host */
	size_t n_mx;
	void *reply;                        /* the hosts' storage (c-ares data) */
};

/* Returns STS_WIRE_OK (n_mx >= 1), STS_WIRE_NODATA, STS_WIRE_BADRESP or
 * STS_WIRE_NOMEM; out is cleared unless OK. Hosts lose one trailing dot;
 * the root exchange (null MX, RFC 7505) is "". */
enum sts_wire_status sts_wire_mx(const unsigned char *msg, size_t len, struct sts_wire_mx *out);
void sts_wire_mx_clear(struct sts_wire_mx *m);

#endif
