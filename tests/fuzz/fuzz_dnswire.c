/* fuzz_dnswire.c: the raw DNS answer walker of lib/sts_dns_wire.c.
 *
 * Input: one DNS message as it comes off the wire (UDP payload, or a TCP
 * message without its length prefix). Each input goes through
 * sts_wire_parse() without and with TLSA collection, and through
 * sts_wire_mx().
 *
 * Invariants: only OK, NODATA (TLSA only) or BADRESP, never NOMEM; a
 * failed parse leaves its output cleared; a parse gives the qname and at
 * most STS_WIRE_CHAIN_MAX CNAMEs, where only the last one may repeat an
 * earlier name (the link that closes a loop); collecting TLSA does not
 * change the chain, and fails only where the plain walk fails or on a bad
 * TLSA rdata; TLSA records are OK exactly when there is at least one, with
 * octet-sized fields and lower-case hex data that fits in the message; MX
 * lists are non-empty when OK, sorted by preference then host, and hosts
 * carry no (unescaped) trailing dot.
 *
 * Seeds (corpus/dnswire): knot-* are answers of knotd 3.2.6 (UDP, no EDNS,
 * as c-ares 1.18 asks) from the zone of tests/integration/test_dns.c, with
 * a second TLSA record; hand-* are hand-made: CNAME loops, a 17-link chain,
 * compression loops, short and cut TLSA rdata, a huge ancount, no question,
 * reserved label types, unsorted MX with an escaped dot and a null MX. */
#include <strings.h>

#include "fuzz_common.h"
#include "sts_dns_wire.h"

static bool
is_cleared(const struct sts_wire_answer *a)
{
	return a->qname == NULL && a->n_cnames == 0 && a->tlsa == NULL && a->n_tlsa == 0 &&
	       a->hex == NULL;
}

static bool
ends_with_bare_dot(const char *s)
{
	size_t n = strlen(s), bs = 0;

	if (n == 0 || s[n - 1] != '.')
		return false;
	while (bs < n - 1 && s[n - 2 - bs] == '\\')
		bs++;
	return bs % 2 == 0;
}

static void
check_chain(const struct sts_wire_answer *a)
{
	CHECK(a->qname != NULL);
	CHECK(a->n_cnames <= STS_WIRE_CHAIN_MAX);
	for (size_t i = 0; i < STS_WIRE_CHAIN_MAX; i++)
		CHECK((a->cnames[i] != NULL) == (i < a->n_cnames));
	/* Only the last link may return to a name already seen. */
	for (size_t i = 0; i + 1 < a->n_cnames; i++) {
		CHECK(strcasecmp(a->cnames[i], a->qname) != 0);
		for (size_t j = 0; j < i; j++)
			CHECK(strcasecmp(a->cnames[i], a->cnames[j]) != 0);
	}
}

static void
check_tlsa(const struct sts_wire_answer *a, enum sts_wire_status st, size_t size)
{
	size_t bytes = 0;

	CHECK((st == STS_WIRE_OK) == (a->n_tlsa > 0));
	CHECK((a->tlsa != NULL) == (a->n_tlsa > 0));
	CHECK((a->hex != NULL) == (a->n_tlsa > 0));
	for (size_t i = 0; i < a->n_tlsa; i++) {
		const struct sts_dns_tlsa *t = &a->tlsa[i];
		size_t n;

		CHECK(t->usage <= 255 && t->selector <= 255 && t->mtype <= 255);
		CHECK(t->data_hex != NULL);
		n = strlen(t->data_hex);
		CHECK(n % 2 == 0);
		for (size_t j = 0; j < n; j++)
			CHECK((t->data_hex[j] >= '0' && t->data_hex[j] <= '9') ||
			      (t->data_hex[j] >= 'a' && t->data_hex[j] <= 'f'));
		/* Each record stands for at least 11 bytes of RR header and
		 * its rdata (3 + n / 2 bytes) somewhere in the message. */
		bytes += 3 + n / 2;
		CHECK(bytes <= size);
	}
}

static void
check_mx(const struct sts_wire_mx *m, enum sts_wire_status st)
{
	CHECK(st == STS_WIRE_OK || st == STS_WIRE_NODATA || st == STS_WIRE_BADRESP);
	if (st != STS_WIRE_OK) {
		CHECK(m->mx == NULL && m->n_mx == 0 && m->reply == NULL);
		return;
	}
	CHECK(m->n_mx > 0 && m->mx != NULL && m->reply != NULL);
	for (size_t i = 0; i < m->n_mx; i++) {
		CHECK(m->mx[i].host != NULL);
		CHECK(m->mx[i].preference <= 65535);
		CHECK(!ends_with_bare_dot(m->mx[i].host));
		if (i > 0) {
			CHECK(m->mx[i - 1].preference <= m->mx[i].preference);
			if (m->mx[i - 1].preference == m->mx[i].preference)
				CHECK(strcasecmp(m->mx[i - 1].host, m->mx[i].host) <= 0);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sts_wire_answer plain, tlsa;
	struct sts_wire_mx mx;
	enum sts_wire_status sp, st, sm;

	sp = sts_wire_parse(data, size, 0, &plain);
	CHECK(sp == STS_WIRE_OK || sp == STS_WIRE_BADRESP);
	if (sp == STS_WIRE_OK) {
		check_chain(&plain);
		CHECK(plain.tlsa == NULL && plain.n_tlsa == 0 && plain.hex == NULL);
	} else {
		CHECK(is_cleared(&plain));
	}

	st = sts_wire_parse(data, size, STS_WIRE_TLSA, &tlsa);
	CHECK(st == STS_WIRE_OK || st == STS_WIRE_NODATA || st == STS_WIRE_BADRESP);
	if (st == STS_WIRE_BADRESP) {
		CHECK(is_cleared(&tlsa));
	} else {
		/* TLSA collection only adds checks; the chain is the same. */
		CHECK(sp == STS_WIRE_OK);
		check_chain(&tlsa);
		check_tlsa(&tlsa, st, size);
		CHECK(strcmp(tlsa.qname, plain.qname) == 0);
		CHECK(tlsa.n_cnames == plain.n_cnames);
		for (size_t i = 0; i < tlsa.n_cnames; i++)
			CHECK(strcmp(tlsa.cnames[i], plain.cnames[i]) == 0);
	}

	sm = sts_wire_mx(data, size, &mx);
	check_mx(&mx, sm);

	sts_wire_answer_clear(&plain);
	sts_wire_answer_clear(&tlsa);
	sts_wire_mx_clear(&mx);
	CHECK(is_cleared(&plain) && is_cleared(&tlsa));
	return 0;
}
