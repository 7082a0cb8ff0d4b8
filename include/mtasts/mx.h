/* mx.h: MX host patterns and host-name matching (rules 18, 19, 45, 73, 75).
 * @test tests/unit/test_mx.c, tests/unit/test_vectors.c */
#ifndef MTASTS_MX_H
#define MTASTS_MX_H

#include <stdbool.h>
#include <stddef.h>

#include <mtasts/diag.h>

#define STS_HOST_MAX 253   /* presentation length of a domain name, no root dot */
#define STS_LABEL_MAX 63

/* Where a pattern sits in the parsed input, for diagnostics. */
struct sts_pos {
	size_t offset;
	unsigned line;
	unsigned column;
};

/* Validates one `mx` value, `["*."] Domain` with A-labels only, and writes its
 * normalised form (lower case, a tolerated trailing dot removed) to out.
 * Problems are added to d at `pos` (+ offset within the pattern).
 * Returns STS_OK, or STS_EINVAL when any error was added (in strict mode a
 * tolerated deviation such as a trailing dot is an error too); `out` holds
 * the normalised pattern whenever the name itself could be read. */
int sts_mx_pattern_check(const char *p, size_t len, unsigned flags,
			 char out[STS_HOST_MAX + 1], struct sts_diags *d,
			 struct sts_pos pos);

/* Normalises a host name for matching: lower case, one trailing root dot
 * removed, U-labels converted to A-labels (libidn2, IDNA2008).
 * Returns STS_OK or STS_EINVAL (not a usable host name). */
int sts_host_normalize(const char *host, size_t len, char out[STS_HOST_MAX + 1]);

/* True when host is an address literal rather than a name: it contains
 * ':' (IPv6) or its last label is all digits (no top-level domain is). */
bool sts_host_is_ip_literal(const char *host);

/* Matches a normalised pattern against a normalised host: equality, or a
 * "*." pattern whose remainder equals the host after its first, non-empty
 * label. Case-insensitive. */
bool sts_mx_match(const char *pattern, const char *host);

#endif
