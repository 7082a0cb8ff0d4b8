/* sts_dns_wire.c: CNAME chains, TLSA and MX records out of raw DNS answers
 * (see sts_dns_wire.h). The bytes come from the network: every length and
 * offset is checked before use, names go through ares_expand_name(), and
 * the loops are bounded by the message size and STS_WIRE_CHAIN_MAX. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ares.h>

#include "sts_dns_wire.h"

#define HDR_LEN 12u             /* id, flags, qdcount, ancount, nscount, arcount */
#define RR_FIXED_LEN 10u        /* type, class, ttl, rdlength */
#define TLSA_FIXED_LEN 3u       /* usage, selector, matching type */

/* A CNAME or TLSA RR of the answer section, of class IN. */
struct rec {
	char *owner;            /* ares_expand_name() form; ares_free_string() */
	size_t rdata;           /* offset of the rdata in the message */
	size_t rdlength;
	unsigned type;
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | (unsigned)p[1];
}

static void
recs_free(struct recs *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		ares_free_string(rs->v[i].owner);
	free(rs->v);
	memset(rs, 0, sizeof *rs);
}

/* Appends r, taking its owner; on failure the owner is freed. */
static enum sts_wire_status
recs_push(struct recs *rs, const struct rec *r)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 8;
		struct rec *v = realloc(rs->v, cap * sizeof *v);

		if (!v) {
			ares_free_string(r->owner);
			return STS_WIRE_NOMEM;
		}
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n++] = *r;
	return STS_WIRE_OK;
}

/* Expands the name encoded at msg[off] into *name (ares_free_string());
 * *next becomes the offset just after its encoding at off (compression
 * pointers are followed by c-ares, not counted). */
static enum sts_wire_status
name_at(const unsigned char *msg, size_t len, size_t off, char **name, size_t *next)
{
	long enclen = 0;
	int rc;

	*name = NULL;
	if (off >= len || len > INT_MAX)
		return STS_WIRE_BADRESP;
	rc = ares_expand_name(msg + off, msg, (int)len, name, &enclen);
	if (rc != ARES_SUCCESS) {
		*name = NULL;
		return rc == ARES_ENOMEM ? STS_WIRE_NOMEM : STS_WIRE_BADRESP;
	}
	if (!*name)
		return STS_WIRE_BADRESP;
	if (enclen <= 0 || (unsigned long)enclen > len - off) {
		ares_free_string(*name);
		*name = NULL;
		return STS_WIRE_BADRESP;
	}
	*next = off + (size_t)enclen;
	return STS_WIRE_OK;
}

/* Whether name is the qname or already in the chain. */
static bool
chain_has(const struct sts_wire_answer *a, const char *name)
{
	if (strcasecmp(a->qname, name) == 0)
		return true;
	for (size_t i = 0; i < a->n_cnames; i++)
		if (strcasecmp(a->cnames[i], name) == 0)
			return true;
	return false;
}

/* Follows the CNAMEs from the qname: for each name, the first CNAME RR it
 * owns. A target is read only when its link is followed, so a malformed
 * CNAME elsewhere in the answer does not spoil it; one in the chain does. */
static enum sts_wire_status
chain_follow(const unsigned char *msg, size_t len, const struct recs *rs,
	     struct sts_wire_answer *a)
{
	const char *cur = a->qname;

	while (a->n_cnames < STS_WIRE_CHAIN_MAX) {
		const struct rec *r = NULL;
		char *target;
		size_t end;
		bool loop;
		enum sts_wire_status st;

		for (size_t i = 0; i < rs->n && !r; i++)
			if (rs->v[i].type == STS_WIRE_TYPE_CNAME &&
			    strcasecmp(rs->v[i].owner, cur) == 0)
				r = &rs->v[i];
		if (!r)
			break;
		st = name_at(msg, len, r->rdata, &target, &end);
		if (st != STS_WIRE_OK)
			return st;
		/* The name's own bytes must lie inside its RR. */
		if (end > r->rdata + r->rdlength) {
			ares_free_string(target);
			return STS_WIRE_BADRESP;
		}
		loop = chain_has(a, target);
		a->cnames[a->n_cnames++] = target;
		if (loop)
			break;
		cur = target;
	}
	return STS_WIRE_OK;
}

/* The TLSA RRs owned by the end of the chain, rdata as hex. */
static enum sts_wire_status
tlsa_collect(const unsigned char *msg, const struct recs *rs, struct sts_wire_answer *a)
{
	static const char digits[] = "0123456789abcdef";
	const char *end = a->n_cnames ? a->cnames[a->n_cnames - 1] : a->qname;
	size_t n = 0, total = 0, at = 0, k = 0;

	for (size_t i = 0; i < rs->n; i++) {
		const struct rec *r = &rs->v[i];

		if (r->type != STS_WIRE_TYPE_TLSA || strcasecmp(r->owner, end) != 0)
			continue;
		n++;
		/* rdlength <= 65535: no overflow in either sum. */
		total += 2 * (r->rdlength - TLSA_FIXED_LEN) + 1;
	}
	if (n == 0)
		return STS_WIRE_NODATA;
	a->tlsa = calloc(n, sizeof *a->tlsa);
	a->hex = malloc(total);
	if (!a->tlsa || !a->hex)
		return STS_WIRE_NOMEM;
	for (size_t i = 0; i < rs->n; i++) {
		const struct rec *r = &rs->v[i];
		const unsigned char *p = msg + r->rdata;
		struct sts_dns_tlsa *t;
		char *hex;

		if (r->type != STS_WIRE_TYPE_TLSA || strcasecmp(r->owner, end) != 0)
			continue;
		t = &a->tlsa[k++];
		hex = a->hex + at;
		t->usage = p[0];
		t->selector = p[1];
		t->mtype = p[2];
		for (size_t j = TLSA_FIXED_LEN; j < r->rdlength; j++) {
			a->hex[at++] = digits[p[j] >> 4];
			a->hex[at++] = digits[p[j] & 0x0f];
		}
		a->hex[at++] = '\0';
		t->data_hex = hex;
	}
	a->n_tlsa = n;
	return STS_WIRE_OK;
}

void
sts_wire_answer_clear(struct sts_wire_answer *a)
{
	if (!a)
		return;
	if (a->qname)
		ares_free_string(a->qname);
	for (size_t i = 0; i < a->n_cnames; i++)
		ares_free_string(a->cnames[i]);
	free(a->tlsa);
	free(a->hex);
	memset(a, 0, sizeof *a);
}

enum sts_wire_status
sts_wire_parse(const unsigned char *msg, size_t len, unsigned flags, struct sts_wire_answer *out)
{
	struct recs rs = { 0 };
	enum sts_wire_status st;
	size_t off, ancount;

	memset(out, 0, sizeof *out);
	if (!msg || len < HDR_LEN || len > INT_MAX)
		return STS_WIRE_BADRESP;
	/* c-ares sends one question and matches the answer's against it. */
	if (get16(msg + 4) != 1)
		return STS_WIRE_BADRESP;
	ancount = get16(msg + 6);
	st = name_at(msg, len, HDR_LEN, &out->qname, &off);
	if (st != STS_WIRE_OK)
		goto fail;
	if (len - off < 4) {            /* qtype, qclass */
		st = STS_WIRE_BADRESP;
		goto fail;
	}
	off += 4;
	/* Each RR takes at least 11 bytes: at most len / 11 turns. */
	for (size_t i = 0; i < ancount; i++) {
		struct rec r = { 0 };
		unsigned type, rclass;

		st = name_at(msg, len, off, &r.owner, &off);
		if (st != STS_WIRE_OK)
			goto fail;
		if (len - off < RR_FIXED_LEN) {
			ares_free_string(r.owner);
			st = STS_WIRE_BADRESP;
			goto fail;
		}
		type = get16(msg + off);
		rclass = get16(msg + off + 2);
		r.rdlength = get16(msg + off + 8);
		r.rdata = off + RR_FIXED_LEN;
		r.type = type;
		if (len - r.rdata < r.rdlength) {
			ares_free_string(r.owner);
			st = STS_WIRE_BADRESP;
			goto fail;
		}
		off = r.rdata + r.rdlength;
		if (rclass != STS_WIRE_CLASS_IN ||
		    (type != STS_WIRE_TYPE_CNAME &&
		     (type != STS_WIRE_TYPE_TLSA || !(flags & STS_WIRE_TLSA)))) {
			ares_free_string(r.owner);
			continue;
		}
		if (type == STS_WIRE_TYPE_TLSA && r.rdlength < TLSA_FIXED_LEN) {
			ares_free_string(r.owner);
			st = STS_WIRE_BADRESP;
			goto fail;
		}
		st = recs_push(&rs, &r);
		if (st != STS_WIRE_OK)
			goto fail;
	}
	st = chain_follow(msg, len, &rs, out);
	if (st != STS_WIRE_OK)
		goto fail;
	if (flags & STS_WIRE_TLSA) {
		st = tlsa_collect(msg, &rs, out);
		if (st != STS_WIRE_OK && st != STS_WIRE_NODATA)
			goto fail;
	}
	recs_free(&rs);
	return st;
fail:
	recs_free(&rs);
	sts_wire_answer_clear(out);
	return st;
}

/* ---- MX --------------------------------------------------------------- */

static int
mx_cmp(const void *pa, const void *pb)
{
	const struct sts_dns_mx *a = pa, *b = pb;
	int c;

	if (a->preference != b->preference)
		return a->preference < b->preference ? -1 : 1;
	c = strcasecmp(a->host, b->host);
	return c ? c : strcmp(a->host, b->host);
}

/* Drops one trailing dot, unless it is an escaped one ("a\."). */
static void
strip_dot(char *host)
{
	size_t len = strlen(host), bs = 0;

	if (len == 0 || host[len - 1] != '.')
		return;
	while (bs < len - 1 && host[len - 2 - bs] == '\\')
		bs++;
	if (bs % 2 == 0)
		host[len - 1] = '\0';
}

void
sts_wire_mx_clear(struct sts_wire_mx *m)
{
	if (!m)
		return;
	free(m->mx);
	if (m->reply)
		ares_free_data(m->reply);
	memset(m, 0, sizeof *m);
}

enum sts_wire_status
sts_wire_mx(const unsigned char *msg, size_t len, struct sts_wire_mx *out)
{
	struct ares_mx_reply *head = NULL;
	size_t n = 0, i = 0;
	int rc;

	memset(out, 0, sizeof *out);
	if (!msg || len < HDR_LEN || len > INT_MAX)
		return STS_WIRE_BADRESP;
	rc = ares_parse_mx_reply(msg, (int)len, &head);
	if (rc != ARES_SUCCESS) {
		if (head)
			ares_free_data(head);
		return rc == ARES_ENOMEM ? STS_WIRE_NOMEM
		     : rc == ARES_ENODATA ? STS_WIRE_NODATA : STS_WIRE_BADRESP;
	}
	out->reply = head;
	for (const struct ares_mx_reply *r = head; r; r = r->next)
		n++;
	if (n == 0) {
		sts_wire_mx_clear(out);
		return STS_WIRE_NODATA;    /* e.g. only a CNAME in the answer */
	}
	out->mx = calloc(n, sizeof *out->mx);
	if (!out->mx) {
		sts_wire_mx_clear(out);
		return STS_WIRE_NOMEM;
	}
	for (struct ares_mx_reply *r = head; r; r = r->next, i++) {
		if (r->host)
			strip_dot(r->host);
		out->mx[i].preference = r->priority;
		out->mx[i].host = r->host ? r->host : "";
	}
	out->n_mx = n;
	qsort(out->mx, n, sizeof *out->mx, mx_cmp);
	return STS_WIRE_OK;
}
