/* sts_dns.c: asynchronous DNS (TXT, A + AAAA, MX, TLSA) through c-ares on
 * a libuv loop; with sts_dns_wire.c (the raw answer: CNAME chains, TLSA,
 * MX), the only files that include <ares.h>.
 *
 * c-ares says which sockets it wants watched (ARES_OPT_SOCK_STATE_CB): each
 * gets a uv_poll_t. One uv_timer_t, re-armed from ares_timeout() after every
 * call into c-ares, drives retries and timeouts.
 *
 * Callbacks never run inside sts_dns_txt() and the like: a query that
 * c-ares fails at once (bad name) is answered from a zero timer. Only
 * running out of memory for the query itself answers at once.
 * sts_dns_free() may be called from a callback: the teardown then waits
 * until control is back out of c-ares (c-ares must not be destroyed from
 * inside its own callbacks).
 *
 * The sockets are opened through ares_set_socket_functions() so that we see
 * the SERVFAIL/REFUSED answers c-ares 1.18 skips and then reports only as
 * ECONNREFUSED or ETIMEOUT; the detail names what the servers said. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ares.h>
#include <uv.h>

#include <mtasts/dns.h>

#include "sts_dns_wire.h"

#define DNS_TIMEOUT_MS_DEFAULT 1500u
#define DNS_TRIES_DEFAULT 3u
#define DNS_DETAIL_MAX 512

/* A socket c-ares asked us to watch. */
struct dns_poll {
	uv_poll_t handle;          /* handle.data = this */
	struct sts_dns *dns;
	ares_socket_t fd;
	int events;                /* UV_READABLE | UV_WRITABLE, as c-ares asked */
	bool closing;              /* uv_close() called; freed in poll_closed() */
	struct dns_poll *next;     /* in dns->polls while watched */
};

/* What a lookup asks for. */
enum dns_kind {
	KIND_TXT,
	KIND_ADDRS,        /* A + AAAA: two c-ares queries */
	KIND_MX,
	KIND_TLSA,
};

/* One c-ares query of a lookup: the TXT, MX or TLSA query, or the A (0) or
 * AAAA (1) query of an address lookup. */
struct dns_part {
	int status;                         /* ares status of the query */
	int timeouts;                       /* tries that timed out */
	unsigned server_rcode;              /* last SERVFAIL/REFUSED/NOTIMP seen, or 0 */
	char (*addrs)[INET6_ADDRSTRLEN];    /* owned, n entries (A/AAAA) */
	size_t n;
	/* The CNAME chain of the answer (and its TLSA records), owned. */
	struct sts_wire_answer wire;
};

/* A lookup in flight: owns the copy of the name and the parsed result until
 * the callback has run. */
struct dns_query {
	struct sts_dns *dns;
	sts_dns_cb cb;
	void *arg;
	enum dns_kind kind;
	bool starting;             /* inside sts_dns_txt/addrs: defer the answer */
	unsigned pending;          /* c-ares queries not yet called back */
	struct dns_query *next;    /* in dns->deferred */
	struct dns_query *next_active, *prev_active; /* in dns->active while pending */
	enum sts_dns_rcode rcode;
	char detail[DNS_DETAIL_MAX];
	/* TXT: rrs[i].strings point into strings[], whose bytes belong to txt. */
	struct ares_txt_ext *txt;
	struct sts_txt_rr *rrs;
	struct sts_bytes *strings;
	size_t n_rrs;
	/* A + AAAA: addr_ptrs point into part[].addrs, IPv4 first. */
	struct dns_part part[2];
	const char **addr_ptrs;
	size_t n_addrs;
	/* MX: sorted, hosts in c-ares' data. TLSA: in part[0].wire. */
	struct sts_wire_mx mx;
	char name[];
};

struct sts_dns {
	uv_loop_t *loop;
	ares_channel channel;      /* owned; NULL once torn down */
	uv_timer_t timer;          /* c-ares timeouts; data = this */
	uv_timer_t defer;          /* delivers deferred answers; data = this */
	struct dns_poll *polls;    /* watched sockets (owned) */
	struct dns_query *active;          /* queries in c-ares (owned by c-ares' callbacks) */
	struct dns_query *deferred;        /* answers waiting for delivery (owned) */
	struct dns_query **deferred_tail;
	unsigned handles;          /* uv handles initialised and not yet closed */
	unsigned depth;            /* nesting of calls that may run callbacks */
	unsigned long queries;
	bool free_requested;       /* sts_dns_free() called */
	bool torn_down;            /* c-ares destroyed, handles closing */
};

/* ---- results ---------------------------------------------------------- */

static const char *
ares_cause(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:    return "NXDOMAIN";
	case ARES_ENODATA:      return "no records";
	case ARES_ESERVFAIL:    return "SERVFAIL";
	case ARES_EREFUSED:     return "REFUSED";
	case ARES_ENOTIMP:      return "NOTIMP";
	case ARES_EFORMERR:     return "FORMERR";
	case ARES_ETIMEOUT:     return "timeout";
	case ARES_ECONNREFUSED: return "connection refused";
	case ARES_EBADRESP:     return "bad response";
	case ARES_EBADNAME:     return "bad name";
	case ARES_ENOMEM:       return "out of memory";
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION: return "cancelled";
	default:                return ares_strerror(status);
	}
}

static const char *
kind_name(enum dns_kind kind)
{
	switch (kind) {
	case KIND_TXT:   return "TXT";
	case KIND_ADDRS: return "A/AAAA";
	case KIND_MX:    return "MX";
	case KIND_TLSA:  return "TLSA";
	}
	return "?";
}

/* The query type of a one-query lookup. */
static int
kind_qtype(enum dns_kind kind)
{
	switch (kind) {
	case KIND_MX:   return (int)STS_WIRE_TYPE_MX;
	case KIND_TLSA: return (int)STS_WIRE_TYPE_TLSA;
	default:        return ns_t_txt;
	}
}

static const char *
rcode_text(unsigned rcode)
{
	switch (rcode) {
	case ns_r_servfail: return "SERVFAIL";
	case ns_r_notimpl:  return "NOTIMP";
	case ns_r_refused:  return "REFUSED";
	default:            return NULL;
	}
}

/* Why a c-ares query failed. c-ares 1.18 skips servers that answer
 * SERVFAIL/REFUSED/NOTIMP and, when none is left, ends the query with the
 * status it started with (ECONNREFUSED) or ETIMEOUT: the server's own
 * answer, noted by sock_recvfrom(), says more. */
static void
part_cause(const struct dns_part *part, char *buf, size_t size)
{
	const char *seen = rcode_text(part->server_rcode);

	switch (part->status) {
	case ARES_SUCCESS:
		snprintf(buf, size, "%zu address%s", part->n, part->n == 1 ? "" : "es");
		break;
	case ARES_ETIMEOUT:
		if (part->timeouts > 0)
			snprintf(buf, size, "timeout after %d tr%s%s%s", part->timeouts,
				 part->timeouts == 1 ? "y" : "ies",
				 seen ? ", a server answered " : "", seen ? seen : "");
		else
			snprintf(buf, size, "timeout%s%s", seen ? ", a server answered " : "",
				 seen ? seen : "");
		break;
	case ARES_ECONNREFUSED:
	case ARES_ESERVFAIL:
	case ARES_EREFUSED:
	case ARES_ENOTIMP:
		snprintf(buf, size, "%s", seen ? seen : ares_cause(part->status));
		break;
	default:
		snprintf(buf, size, "%s", ares_cause(part->status));
		break;
	}
}

static enum sts_dns_rcode
ares_rcode(int status)
{
	switch (status) {
	case ARES_SUCCESS:   return STS_DNS_OK;
	case ARES_ENOTFOUND: return STS_DNS_NXDOMAIN;
	case ARES_ENODATA:   return STS_DNS_NODATA;
	default:             return STS_DNS_TEMPFAIL;
	}
}

static void
query_free(struct dns_query *q)
{
	if (q->txt)
		ares_free_data(q->txt);
	free(q->rrs);
	free(q->strings);
	for (size_t i = 0; i < 2; i++) {
		free(q->part[i].addrs);
		sts_wire_answer_clear(&q->part[i].wire);
	}
	free(q->addr_ptrs);
	sts_wire_mx_clear(&q->mx);
	free(q);
}

/* Runs the callback once and frees q. */
static void
query_deliver(struct dns_query *q)
{
	struct sts_dns_answer ans = {
		.rcode = q->rcode,
		.detail = q->detail,
	};

	if (q->rcode == STS_DNS_OK) {
		ans.n_rrs = q->n_rrs;
		ans.rrs = q->n_rrs ? q->rrs : NULL;
		ans.n_addrs = q->n_addrs;
		ans.addrs = q->n_addrs ? q->addr_ptrs : NULL;
		ans.n_mx = q->mx.n_mx;
		ans.mx = q->mx.n_mx ? q->mx.mx : NULL;
		ans.n_tlsa = q->part[0].wire.n_tlsa;
		ans.tlsa = ans.n_tlsa ? q->part[0].wire.tlsa : NULL;
	}
	/* The chain also explains a NODATA or NXDOMAIN (a CNAME to a name
	 * without the record, or to nowhere). Addresses: the A answer's, or
	 * the AAAA answer's when the A answer had none. */
	if (q->rcode != STS_DNS_TEMPFAIL) {
		const struct sts_wire_answer *w = &q->part[0].wire;

		if (q->kind == KIND_ADDRS && w->n_cnames == 0)
			w = &q->part[1].wire;
		ans.n_cnames = w->n_cnames;
		ans.cnames = w->n_cnames ? (const char *const *)w->cnames : NULL;
	}
	q->cb(q->arg, &ans);
	query_free(q);
}

static void
active_add(struct dns_query *q)
{
	struct sts_dns *dns = q->dns;

	q->prev_active = NULL;
	q->next_active = dns->active;
	if (dns->active)
		dns->active->prev_active = q;
	dns->active = q;
}

static void
active_remove(struct dns_query *q)
{
	if (q->prev_active)
		q->prev_active->next_active = q->next_active;
	else if (q->dns->active == q)
		q->dns->active = q->next_active;
	if (q->next_active)
		q->next_active->prev_active = q->prev_active;
	q->next_active = q->prev_active = NULL;
}

static void defer_cb(uv_timer_t *t);

/* q has its answer: deliver now, or later if the caller has not returned
 * yet from starting it. */
static void
query_complete(struct dns_query *q)
{
	struct sts_dns *dns = q->dns;

	active_remove(q);
	if (!q->starting) {
		query_deliver(q);
		return;
	}
	q->next = NULL;
	*dns->deferred_tail = q;
	dns->deferred_tail = &q->next;
	/* After sts_dns_free() the teardown drains the list instead. */
	if (!dns->free_requested)
		uv_timer_start(&dns->defer, defer_cb, 0, 0);
}

static struct dns_query *
deferred_pop(struct sts_dns *dns)
{
	struct dns_query *q = dns->deferred;

	if (q) {
		dns->deferred = q->next;
		if (!dns->deferred)
			dns->deferred_tail = &dns->deferred;
	}
	return q;
}

static void
query_cancelled(struct dns_query *q)
{
	q->rcode = STS_DNS_TEMPFAIL;
	snprintf(q->detail, sizeof q->detail, "%s %s: cancelled", q->name, kind_name(q->kind));
}

/* ---- server answers c-ares does not report ---------------------------- */

/* Whether the dotted name (one trailing dot allowed) equals qname. */
static bool
name_eq(const char *name, const char *qname, size_t qlen)
{
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		len--;
	return len == qlen && strncasecmp(name, qname, len) == 0;
}

/* Notes the rcode of a SERVFAIL/REFUSED/NOTIMP answer on the queries that
 * asked its question, for part_cause(). Bytes from the network: every
 * length is checked; a mismatch only costs the better message. */
static void
note_server_rcode(struct sts_dns *dns, const unsigned char *m, size_t n)
{
	char qname[NS_MAXDNAME];
	size_t at = 0, off = NS_HFIXEDSZ;
	unsigned rcode, qtype;

	if (n < NS_HFIXEDSZ || !(m[2] & 0x80) || ((m[4] << 8) | m[5]) == 0)
		return;
	rcode = m[3] & 0x0fu;
	if (!rcode_text(rcode))
		return;
	for (;;) {
		size_t len;

		if (off >= n)
			return;
		len = m[off++];
		if (len == 0)
			break;
		/* Labels only: a question is never compressed. */
		if (len > 63 || len > n - off || at + len + 1 >= sizeof qname)
			return;
		if (at > 0)
			qname[at++] = '.';
		memcpy(qname + at, m + off, len);
		at += len;
		off += len;
	}
	if (n - off < 2)
		return;
	qtype = (unsigned)(m[off] << 8 | m[off + 1]);
	for (struct dns_query *q = dns->active; q; q = q->next_active) {
		if (!name_eq(q->name, qname, at))
			continue;
		if (q->kind != KIND_ADDRS && qtype == (unsigned)kind_qtype(q->kind))
			q->part[0].server_rcode = rcode;
		else if (q->kind == KIND_ADDRS && qtype == ns_t_a)
			q->part[0].server_rcode = rcode;
		else if (q->kind == KIND_ADDRS && qtype == ns_t_aaaa)
			q->part[1].server_rcode = rcode;
	}
}

/* c-ares leaves user-managed sockets as they are: non-blocking,
 * close-on-exec and TCP_NODELAY are set here. */
static ares_socket_t
sock_open(int af, int type, int protocol, void *data)
{
	int fd = socket(af, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	int one = 1;

	(void)data;
	if (fd < 0)
		return ARES_SOCKET_BAD;
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (type == SOCK_DGRAM) {
		/* Hundreds of answers can arrive between two loop turns (bulk
		 * checks, a daemon warming its cache); the default buffer drops
		 * them and each loss costs a whole retry timeout. The kernel caps
		 * the request at net.core.rmem_max. */
		int rcvbuf = 4 << 20;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	}
	return fd;
}

static int
sock_close(ares_socket_t fd, void *data)
{
	(void)data;
	return close(fd);
}

static int
sock_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *data)
{
	(void)data;
	return connect(fd, sa, len);
}

static ares_ssize_t
sock_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags, struct sockaddr *from,
	      ares_socklen_t *from_len, void *data)
{
	ssize_t n = recvfrom(fd, buf, len, flags, from, from_len);
	int type = 0;
	socklen_t tlen = sizeof type;

	/* UDP only: one datagram is one whole message; a TCP read may be
	 * any piece of the stream. */
	if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 &&
	    type == SOCK_DGRAM)
		note_server_rcode(data, buf, (size_t)n);
	return n;
}

static ares_ssize_t
sock_sendv(ares_socket_t fd, const struct iovec *iov, int iovcnt, void *data)
{
	struct msghdr msg = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = iovcnt > 0 ? (size_t)iovcnt : 0,
	};

	(void)data;
	/* MSG_NOSIGNAL: a TCP peer that went away must not raise SIGPIPE. */
	return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

static const struct ares_socket_functions sock_funcs = {
	.asocket = sock_open,
	.aclose = sock_close,
	.aconnect = sock_connect,
	.arecvfrom = sock_recvfrom,
	.asendv = sock_sendv,
};

/* ---- TXT -------------------------------------------------------------- */

/* Groups the character-strings of the answer into RRs (record_start marks
 * the first string of each RR). Returns an ares status. */
static int
txt_parse(struct dns_query *q, const unsigned char *abuf, int alen)
{
	struct ares_txt_ext *head = NULL;
	size_t n_rrs = 0, n_strings = 0, r = 0, s = 0;
	int rc;

	rc = ares_parse_txt_reply_ext(abuf, alen, &head);
	if (rc != ARES_SUCCESS)
		return rc;
	q->txt = head;
	for (const struct ares_txt_ext *t = head; t; t = t->next) {
		if (t->record_start || n_rrs == 0)
			n_rrs++;
		n_strings++;
	}
	if (n_strings == 0)
		return ARES_ENODATA;
	q->rrs = calloc(n_rrs, sizeof *q->rrs);
	q->strings = calloc(n_strings, sizeof *q->strings);
	if (!q->rrs || !q->strings)
		return ARES_ENOMEM;
	for (const struct ares_txt_ext *t = head; t; t = t->next, s++) {
		if (t->record_start || s == 0) {
			if (s > 0)
				r++;
			q->rrs[r].strings = &q->strings[s];
		}
		q->strings[s].ptr = t->txt;
		q->strings[s].len = t->length;
		q->rrs[r].n_strings++;
	}
	q->n_rrs = n_rrs;
	return ARES_SUCCESS;
}

/* ---- the raw answer: CNAME chain, TLSA, MX ---------------------------- */

/* Reads the CNAME chain (flags: and the TLSA records) of an answer whose
 * ares status so far is status into part->wire. Returns the new status:
 * a malformed answer is EBADRESP, no TLSA record ENODATA. A NODATA or
 * NXDOMAIN answer keeps its status (the chain is then only lost if the
 * rest of the answer is malformed). */
static int
wire_read(struct dns_part *part, int status, const unsigned char *abuf, int alen,
	  unsigned flags)
{
	bool ok = status == ARES_SUCCESS;

	if (!ok && status != ARES_ENODATA && status != ARES_ENOTFOUND)
		return status;
	if (!abuf || alen <= 0)
		return ok ? ARES_EBADRESP : status;
	switch (sts_wire_parse(abuf, (size_t)alen, flags, &part->wire)) {
	case STS_WIRE_OK:
		return status;
	case STS_WIRE_NODATA:
		return ok ? ARES_ENODATA : status;
	case STS_WIRE_NOMEM:
		return ARES_ENOMEM;
	case STS_WIRE_BADRESP:
	default:
		return ok ? ARES_EBADRESP : status;
	}
}

static int
mx_parse(struct dns_query *q, const unsigned char *abuf, int alen)
{
	switch (sts_wire_mx(abuf, (size_t)alen, &q->mx)) {
	case STS_WIRE_OK:     return ARES_SUCCESS;
	case STS_WIRE_NODATA: return ARES_ENODATA;
	case STS_WIRE_NOMEM:  return ARES_ENOMEM;
	default:              return ARES_EBADRESP;
	}
}

/* ---- one-query lookups: TXT, MX, TLSA --------------------------------- */

static void
single_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns_part *part = &q->part[0];
	const char *kind = kind_name(q->kind);
	char cause[128];
	size_t n = 0;

	q->pending--;
	if (status == ARES_SUCCESS && (!abuf || alen <= 0))
		status = ARES_EBADRESP;
	if (status == ARES_SUCCESS && q->kind == KIND_TXT)
		status = txt_parse(q, abuf, alen);
	else if (status == ARES_SUCCESS && q->kind == KIND_MX)
		status = mx_parse(q, abuf, alen);
	status = wire_read(part, status, abuf, alen, q->kind == KIND_TLSA ? STS_WIRE_TLSA : 0);
	part->status = status;
	part->timeouts = timeouts;
	q->rcode = ares_rcode(status);
	if (q->kind == KIND_TXT)
		n = q->n_rrs;
	else if (q->kind == KIND_MX)
		n = q->mx.n_mx;
	else if (q->kind == KIND_TLSA)
		n = part->wire.n_tlsa;
	if (status == ARES_SUCCESS)
		snprintf(q->detail, sizeof q->detail, "%s %s: %zu record%s", q->name, kind, n,
			 n == 1 ? "" : "s");
	else {
		part_cause(part, cause, sizeof cause);
		snprintf(q->detail, sizeof q->detail, "%s %s: %s", q->name, kind, cause);
	}
	query_complete(q);
}

/* ---- A + AAAA --------------------------------------------------------- */

/* Formats the addresses of an A (idx 0) or AAAA (idx 1) answer. */
static int
addr_parse(struct dns_part *part, int idx, const unsigned char *abuf, int alen)
{
	struct hostent *he = NULL;
	int af = idx == 0 ? AF_INET : AF_INET6;
	int want_len = idx == 0 ? 4 : 16;
	size_t n = 0;
	int rc;

	rc = idx == 0 ? ares_parse_a_reply(abuf, alen, &he, NULL, NULL)
		      : ares_parse_aaaa_reply(abuf, alen, &he, NULL, NULL);
	if (rc != ARES_SUCCESS)
		goto out;
	if (he->h_addrtype != af || he->h_length != want_len || !he->h_addr_list) {
		rc = ARES_ENODATA;
		goto out;
	}
	while (he->h_addr_list[n])
		n++;
	if (n == 0) {
		rc = ARES_ENODATA;
		goto out;
	}
	part->addrs = calloc(n, sizeof *part->addrs);
	if (!part->addrs) {
		rc = ARES_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (inet_ntop(af, he->h_addr_list[i], part->addrs[part->n],
			      sizeof part->addrs[part->n]))
			part->n++;
	if (part->n == 0)
		rc = ARES_ENODATA;
out:
	if (he)
		ares_free_hostent(he);
	return rc;
}

static bool
status_is_temp(int status)
{
	return status != ARES_SUCCESS && status != ARES_ENOTFOUND && status != ARES_ENODATA;
}

/* Both families answered: OK if either has addresses, NXDOMAIN if both say
 * so, TEMPFAIL if either failed temporarily, else NODATA. */
static void
addrs_combine(struct dns_query *q)
{
	const struct dns_part *a = &q->part[0], *aaaa = &q->part[1];
	char ca[128], caaaa[128];
	size_t n = a->n + aaaa->n;

	part_cause(a, ca, sizeof ca);
	part_cause(aaaa, caaaa, sizeof caaaa);
	snprintf(q->detail, sizeof q->detail, "%s A: %s; AAAA: %s", q->name, ca, caaaa);
	if (n > 0) {
		q->addr_ptrs = calloc(n, sizeof *q->addr_ptrs);
		if (!q->addr_ptrs) {
			q->rcode = STS_DNS_TEMPFAIL;
			snprintf(q->detail, sizeof q->detail, "%s A/AAAA: out of memory", q->name);
			return;
		}
		for (size_t i = 0; i < a->n; i++)
			q->addr_ptrs[q->n_addrs++] = a->addrs[i];
		for (size_t i = 0; i < aaaa->n; i++)
			q->addr_ptrs[q->n_addrs++] = aaaa->addrs[i];
		q->rcode = STS_DNS_OK;
	} else if (a->status == ARES_ENOTFOUND && aaaa->status == ARES_ENOTFOUND) {
		q->rcode = STS_DNS_NXDOMAIN;
	} else if (status_is_temp(a->status) || status_is_temp(aaaa->status)) {
		q->rcode = STS_DNS_TEMPFAIL;
	} else {
		q->rcode = STS_DNS_NODATA;
	}
}

static void
addr_done(struct dns_query *q, int idx, int status, int timeouts, const unsigned char *abuf,
	  int alen)
{
	struct dns_part *part = &q->part[idx];

	if (status == ARES_SUCCESS)
		status = abuf ? addr_parse(part, idx, abuf, alen) : ARES_EBADRESP;
	status = wire_read(part, status, abuf, alen, 0);
	part->status = status;
	part->timeouts = timeouts;
	if (--q->pending > 0)
		return;
	addrs_combine(q);
	query_complete(q);
}

static void
a_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	addr_done(arg, 0, status, timeouts, abuf, alen);
}

static void
aaaa_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	addr_done(arg, 1, status, timeouts, abuf, alen);
}

/* ---- the loop glue ---------------------------------------------------- */

static void teardown(struct sts_dns *dns);
static void timer_cb(uv_timer_t *t);

static void
handle_closed(struct sts_dns *dns)
{
	/* Memory goes only after the last handle is closed: libuv still
	 * touches each handle until its close callback. */
	if (--dns->handles == 0 && dns->torn_down)
		free(dns);
}

static void
timer_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

static void
poll_closed(uv_handle_t *h)
{
	struct dns_poll *p = h->data;
	struct sts_dns *dns = p->dns;

	free(p);
	handle_closed(dns);
}

static void
timer_rearm(struct sts_dns *dns)
{
	struct timeval tv, *tvp;
	uint64_t ms;

	tvp = ares_timeout(dns->channel, NULL, &tv);
	if (!tvp) {
		/* Nothing in flight: let the loop end. */
		uv_timer_stop(&dns->timer);
		return;
	}
	ms = 0;
	if (tvp->tv_sec > 0)
		ms = (uint64_t)tvp->tv_sec * 1000u;
	if (tvp->tv_usec > 0)
		ms += ((uint64_t)tvp->tv_usec + 999u) / 1000u;
	uv_timer_start(&dns->timer, timer_cb, ms, 0);
}

/* Brackets every entry point that can reach user callbacks. */
static void
enter(struct sts_dns *dns)
{
	dns->depth++;
}

static void
leave(struct sts_dns *dns)
{
	if (--dns->depth > 0)
		return;
	if (dns->free_requested) {
		if (!dns->torn_down)
			teardown(dns);
		return;
	}
	timer_rearm(dns);
}

static void
timer_cb(uv_timer_t *t)
{
	struct sts_dns *dns = t->data;

	enter(dns);
	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	leave(dns);
}

static void
defer_cb(uv_timer_t *t)
{
	struct sts_dns *dns = t->data;
	struct dns_query *q;

	enter(dns);
	/* Once sts_dns_free() is called, the teardown answers the rest. */
	while (!dns->free_requested && (q = deferred_pop(dns)) != NULL)
		query_deliver(q);
	leave(dns);
}

static struct dns_poll *
poll_find(struct sts_dns *dns, ares_socket_t fd)
{
	for (struct dns_poll *p = dns->polls; p; p = p->next)
		if (p->fd == fd)
			return p;
	return NULL;
}

static void
poll_close(struct dns_poll *p)
{
	struct dns_poll **pp = &p->dns->polls;

	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	p->next = NULL;
	p->closing = true;
	uv_close((uv_handle_t *)&p->handle, poll_closed);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct dns_poll *p = h->data;
	struct sts_dns *dns = p->dns;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	if (status < 0) {
		/* A socket error (e.g. the ICMP port unreachable of a dead
		 * server): libuv has stopped the handle. Let c-ares read the
		 * error so that it fails over to the next server. */
		rfd = p->fd;
		wfd = p->fd;
	} else {
		if (events & UV_READABLE)
			rfd = p->fd;
		if (events & UV_WRITABLE)
			wfd = p->fd;
	}
	enter(dns);
	ares_process_fd(dns->channel, rfd, wfd);
	/* c-ares kept the socket after the error: watch it again. p is still
	 * allocated here even if closed (freed in poll_closed). */
	if (status < 0 && !p->closing && !dns->torn_down)
		uv_poll_start(&p->handle, p->events, poll_cb);
	leave(dns);
}

/* c-ares opens, changes or closes interest in a socket. It reports (0, 0)
 * before it closes the socket, so the watcher goes before the fd does. */
static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct sts_dns *dns = data;
	struct dns_poll *p = poll_find(dns, fd);

	if (!readable && !writable) {
		if (p)
			poll_close(p);
		return;
	}
	if (!p) {
		if (dns->torn_down)
			return;
		/* Without a watcher the query still ends, by timeout. */
		p = calloc(1, sizeof *p);
		if (!p)
			return;
		if (uv_poll_init_socket(dns->loop, &p->handle, fd) != 0) {
			free(p);
			return;
		}
		dns->handles++;
		p->handle.data = p;
		p->dns = dns;
		p->fd = fd;
		p->next = dns->polls;
		dns->polls = p;
		/* c-ares keeps idle sockets open; the timer, armed while any
		 * query is in flight, is what keeps the loop alive. */
		uv_unref((uv_handle_t *)&p->handle);
	}
	p->events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
	uv_poll_start(&p->handle, p->events, poll_cb);
}

/* Cancels what is pending, destroys the channel and closes the handles;
 * dns itself goes in the last close callback. Runs at depth 0 only. */
static void
teardown(struct sts_dns *dns)
{
	struct dns_query *q;

	dns->torn_down = true;
	dns->depth++;
	/* ares_cancel answers every query with ARES_ECANCELLED; whatever a
	 * callback starts meanwhile is refused (free_requested). */
	ares_cancel(dns->channel);
	ares_destroy(dns->channel);
	dns->channel = NULL;
	while ((q = deferred_pop(dns)) != NULL) {
		query_cancelled(q);
		query_deliver(q);
	}
	while (dns->polls)
		poll_close(dns->polls);
	uv_timer_stop(&dns->timer);
	uv_timer_stop(&dns->defer);
	uv_close((uv_handle_t *)&dns->timer, timer_closed);
	uv_close((uv_handle_t *)&dns->defer, timer_closed);
	dns->depth--;
}

/* ---- options ---------------------------------------------------------- */

static bool
parse_port(const char *s, size_t len)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

static bool
is_addr(int af, const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];

	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(af, buf, bin) == 1;
}

static void
append(char *out, size_t *at, const char *s, size_t len)
{
	memcpy(out + *at, s, len);
	*at += len;
	out[*at] = '\0';
}

/* Checks one IP[:PORT] entry and appends it to out in the form c-ares
 * parses without guessing: "IPv4", "IPv4:PORT" or "[IPv6]:PORT". c-ares
 * alone would accept "1.2.3" (as 1.2.3.255) and mistake the last group of
 * a bare IPv6 address for a port only sometimes. */
static int
server_entry(const char *s, size_t len, char *out, size_t *at, char *err, size_t errsz)
{
	const char *colon = memchr(s, ':', len);
	const char *port = NULL;
	size_t port_len = 0;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		size_t host_len;

		if (!close)
			goto not_ip;
		host_len = (size_t)(close - s) - 1;
		if (!is_addr(AF_INET6, s + 1, host_len))
			goto not_ip;
		if (close + 1 < s + len) {
			if (close[1] != ':')
				goto not_ip;
			port = close + 2;
			port_len = (size_t)(s + len - port);
			if (!parse_port(port, port_len))
				goto bad_port;
		}
		append(out, at, s, host_len + 2);
		append(out, at, ":", 1);
		if (port)
			append(out, at, port, port_len);
		else
			append(out, at, "53", 2);
		return 0;
	}
	if (colon && memchr(colon + 1, ':', (size_t)(s + len - colon - 1))) {
		/* Two colons or more: a bare IPv6 address, no port. */
		if (!is_addr(AF_INET6, s, len))
			goto not_ip;
		append(out, at, "[", 1);
		append(out, at, s, len);
		append(out, at, "]:53", 4);
		return 0;
	}
	if (!is_addr(AF_INET, s, colon ? (size_t)(colon - s) : len))
		goto not_ip;
	if (colon && !parse_port(colon + 1, (size_t)(s + len - colon - 1)))
		goto bad_port;
	append(out, at, s, len);
	return 0;
not_ip:
	snprintf(err, errsz, "resolver '%.*s' is not an IP address: give IP or IP:PORT "
		 "(IPv6 as [addr]:port)", (int)len, s);
	return -1;
bad_port:
	snprintf(err, errsz, "resolver '%.*s' has an invalid port: give IP or IP:PORT "
		 "with a port from 1 to 65535", (int)len, s);
	return -1;
}

/* Validates the comma separated list and returns it normalised in *csv
 * (malloc'd, caller frees). */
static int
servers_normalise(const char *servers, char **csv, char *err, size_t errsz)
{
	size_t cap = strlen(servers) * 2 + 16, at = 0;
	const char *p = servers;
	char *out;

	/* Each entry grows by at most "[" "]:53" and a comma. */
	out = malloc(cap);
	if (!out) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	out[0] = '\0';
	for (;;) {
		const char *end = strchr(p, ',');
		const char *s = p, *e = end ? end : p + strlen(p);

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (s == e) {
			snprintf(err, errsz, "resolver list '%s' has an empty entry: give IP or "
				 "IP:PORT, comma separated", servers);
			goto fail;
		}
		if (at > 0)
			append(out, &at, ",", 1);
		if (server_entry(s, (size_t)(e - s), out, &at, err, errsz) != 0)
			goto fail;
		if (!end)
			break;
		p = end + 1;
	}
	*csv = out;
	return 0;
fail:
	free(out);
	return -1;
}

/* ---- public ----------------------------------------------------------- */

int
sts_dns_new(uv_loop_t *loop, const struct sts_dns_opts *opts, struct sts_dns **out,
	    char *err, size_t errsz)
{
	static bool ares_ready;
	struct sts_dns *dns = NULL;
	struct ares_options ao;
	char *csv = NULL;
	unsigned timeout_ms = opts && opts->try_timeout_ms ? opts->try_timeout_ms
							   : DNS_TIMEOUT_MS_DEFAULT;
	unsigned tries = opts && opts->tries ? opts->tries : DNS_TRIES_DEFAULT;
	int rc;

	*out = NULL;
	if (errsz > 0)
		err[0] = '\0';
	if (opts && opts->servers && opts->servers[0] != '\0' &&
	    servers_normalise(opts->servers, &csv, err, errsz) != 0)
		return -1;
	/* Once per process; no threads here, so a flag is enough. */
	if (!ares_ready) {
		rc = ares_library_init(ARES_LIB_INIT_ALL);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errsz, "cannot initialise c-ares: %s", ares_strerror(rc));
			goto fail;
		}
		ares_ready = true;
	}
	dns = calloc(1, sizeof *dns);
	if (!dns) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	dns->loop = loop;
	dns->deferred_tail = &dns->deferred;

	memset(&ao, 0, sizeof ao);
	/* No ARES_FLAG_NOCHECKRESP: SERVFAIL/REFUSED/NOTIMP from one server
	 * makes c-ares try the next. No ARES_FLAG_IGNTC: truncated UDP
	 * answers are retried over TCP. */
	ao.flags = 0;
	ao.timeout = timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms;
	ao.tries = tries > INT_MAX ? INT_MAX : (int)tries;
	ao.sock_state_cb = sock_state_cb;
	ao.sock_state_cb_data = dns;
	/* NOROTATE: always start with the first server, even when resolv.conf
	 * says "options rotate". */
	rc = ares_init_options(&dns->channel, &ao,
			       ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
			       ARES_OPT_NOROTATE | ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		dns->channel = NULL;
		snprintf(err, errsz, "cannot initialise the resolver: %s", ares_strerror(rc));
		goto fail;
	}
	/* Our own socket calls, to see the rcode of answers c-ares skips. */
	ares_set_socket_functions(dns->channel, &sock_funcs, dns);
	if (csv) {
		rc = ares_set_servers_ports_csv(dns->channel, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errsz, "cannot use resolvers '%s': %s", opts->servers,
				 ares_strerror(rc));
			goto fail;
		}
	}
	/* uv_timer_init cannot fail on a valid loop; from here on the handles
	 * exist and only teardown() may end this object. */
	uv_timer_init(loop, &dns->timer);
	dns->timer.data = dns;
	uv_timer_init(loop, &dns->defer);
	dns->defer.data = dns;
	dns->handles = 2;
	free(csv);
	*out = dns;
	return 0;
fail:
	if (dns && dns->channel)
		ares_destroy(dns->channel);
	free(dns);
	free(csv);
	return -1;
}

void
sts_dns_free(struct sts_dns **pdns)
{
	struct sts_dns *dns;

	if (!pdns || !*pdns)
		return;
	dns = *pdns;
	*pdns = NULL;
	if (dns->free_requested)
		return;
	dns->free_requested = true;
	/* Inside a callback: c-ares is on the stack; leave() tears down. */
	if (dns->depth == 0)
		teardown(dns);
}

/* Allocates a query for name, or answers cb at once if out of memory. */
static struct dns_query *
query_new(struct sts_dns *dns, const char *name, enum dns_kind kind, sts_dns_cb cb, void *arg)
{
	size_t len = name ? strlen(name) : 0;
	struct dns_query *q = calloc(1, sizeof *q + len + 1);

	if (!q) {
		struct sts_dns_answer ans = {
			.rcode = STS_DNS_TEMPFAIL,
			.detail = "out of memory",
		};
		cb(arg, &ans);
		return NULL;
	}
	q->dns = dns;
	q->cb = cb;
	q->arg = arg;
	q->kind = kind;
	if (len)
		memcpy(q->name, name, len);
	q->name[len] = '\0';
	return q;
}

/* A query that cannot start: answered later through the deferred list (or
 * now if the resolver is already gone and nothing would drain the list). */
static void
query_refuse(struct sts_dns *dns, struct dns_query *q, int status)
{
	q->rcode = ares_rcode(status);
	snprintf(q->detail, sizeof q->detail, "%s %s: %s", q->name, kind_name(q->kind),
		 ares_cause(status));
	if (dns->torn_down && dns->depth == 0) {
		query_deliver(q);
		return;
	}
	q->starting = true;
	query_complete(q);
}

/* Starts a lookup of kind: one c-ares query, or two for addresses. */
static void
query_start(struct sts_dns *dns, enum dns_kind kind, const char *name, sts_dns_cb cb,
	    void *arg)
{
	struct dns_query *q = query_new(dns, name, kind, cb, arg);
	unsigned parts = kind == KIND_ADDRS ? 2 : 1;

	if (!q)
		return;
	dns->queries += parts;
	if (dns->free_requested) {
		query_refuse(dns, q, ARES_ECANCELLED);
		return;
	}
	if (q->name[0] == '\0') {
		query_refuse(dns, q, ARES_EBADNAME);
		return;
	}
	enter(dns);
	q->starting = true;
	q->pending = parts;
	active_add(q);
	if (kind == KIND_ADDRS) {
		ares_query(dns->channel, q->name, C_IN, T_A, a_done, q);
		ares_query(dns->channel, q->name, C_IN, T_AAAA, aaaa_done, q);
	} else {
		ares_query(dns->channel, q->name, C_IN, kind_qtype(kind), single_done, q);
	}
	/* q is alive: answers given during ares_query wait in the deferred list. */
	q->starting = false;
	leave(dns);
}

void
sts_dns_txt(struct sts_dns *dns, const char *name, sts_dns_cb cb, void *arg)
{
	query_start(dns, KIND_TXT, name, cb, arg);
}

void
sts_dns_addrs(struct sts_dns *dns, const char *name, sts_dns_cb cb, void *arg)
{
	query_start(dns, KIND_ADDRS, name, cb, arg);
}

void
sts_dns_mx(struct sts_dns *dns, const char *name, sts_dns_cb cb, void *arg)
{
	query_start(dns, KIND_MX, name, cb, arg);
}

void
sts_dns_tlsa(struct sts_dns *dns, const char *name, sts_dns_cb cb, void *arg)
{
	query_start(dns, KIND_TLSA, name, cb, arg);
}

unsigned long
sts_dns_queries(const struct sts_dns *dns)
{
	return dns ? dns->queries : 0;
}
