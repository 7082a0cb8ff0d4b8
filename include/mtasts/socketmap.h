/* socketmap.h: the pure building blocks of the Postfix socketmap daemon
 * (mta-stsd): netstring framing, request parsing and key normalisation, and
 * reply building (rules 41-43, 45, 58, T14; Postfix socketmap_table(5) and
 * TLSRPT_README). No I/O, no logging, no globals: the daemon feeds bytes in
 * and writes the bytes that come out.
 *
 * The protocol: Postfix sends one netstring "<len>:<name> <key>," per lookup
 * and reads one netstring reply: "OK <data>", "NOTFOUND ", "TEMP <reason>",
 * "TIMEOUT <reason>" or "PERM <reason>". Requests are at most 10000 bytes and
 * replies at most 100000 (socketmap_max_reply_size). TEMP and TIMEOUT are
 * retried; PERM is a configuration error.
 *
 * @test tests/unit/test_socketmap.c, tests/fuzz/fuzz_socketmap.c */
#ifndef MTASTS_SOCKETMAP_H
#define MTASTS_SOCKETMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mtasts/buf.h>
#include <mtasts/mx.h>
#include <mtasts/parse.h>
#include <mtasts/policy.h>

#define STS_SM_REQUEST_MAX 10000    /* largest request payload Postfix sends */
#define STS_SM_REPLY_MAX 100000     /* Postfix socketmap_max_reply_size default */
#define STS_NETSTRING_LIMIT (16u * 1024 * 1024)  /* largest ceiling a codec accepts */
#define STS_SM_REASON_MAX 200       /* TEMP/PERM reason bytes after sanitising */

/* ---------------------------------------------------------------------------
 * Netstrings: "<decimal length>:<payload>,"
 *
 * The decoder is strict: the length is 1 or more ASCII digits without leading
 * zeros ("0" itself is fine), its value must not exceed the ceiling given at
 * init (checked digit by digit, so "99999999999999999999:" fails at the digit
 * that passes the ceiling, long before any payload arrives), and the payload
 * must be followed by ','. Any violation loses the framing for good: the
 * decoder stays in the error state and the caller answers "PERM <reason>"
 * once, when `reply_ok` says so, and closes the connection. */

enum sts_netstring_error {
	STS_NETSTRING_OK = 0,
	STS_NETSTRING_LEN_EMPTY,     /* ':' with no digits before it */
	STS_NETSTRING_LEN_DIGIT,     /* a byte other than a digit or ':' in the length */
	STS_NETSTRING_LEN_ZERO,      /* a leading zero ("01:") */
	STS_NETSTRING_TOO_LONG,      /* the declared length passes the ceiling */
	STS_NETSTRING_NO_COMMA,      /* the payload is not followed by ',' */
};

enum sts_netstring_rc {
	STS_NETSTRING_MORE = 0,      /* all input consumed, no payload complete yet */
	STS_NETSTRING_PAYLOAD = 1,   /* one payload complete; more input may follow */
	STS_NETSTRING_ERROR = 2,     /* framing lost; see error and reply_ok */
};

struct sts_netstring_dec {
	size_t max;                  /* payload ceiling, fixed at init */
	enum sts_netstring_error error;
	bool reply_ok;               /* set with the first error: answer PERM once */
	uint64_t offset;             /* stream bytes consumed so far (error position) */
	/* private */
	unsigned state_;
	size_t want_;                /* declared payload length */
	size_t have_;                /* payload bytes stored */
	size_t ndigits_;
	char *buf_;                  /* max + 1 bytes, owned */
};

/* Prepares a decoder for payloads of at most `max` bytes (max <=
 * STS_NETSTRING_LIMIT; the daemon uses STS_SM_REQUEST_MAX) and allocates its
 * payload buffer once, so feeding never allocates.
 * Returns STS_OK, STS_EINVAL (max too large), STS_ENOMEM. */
int sts_netstring_dec_init(struct sts_netstring_dec *d, size_t max);
void sts_netstring_dec_free(struct sts_netstring_dec *d);

/* Consumes bytes from data[0..len) up to the end of the first netstring that
 * completes, and sets *used to the number of bytes consumed:
 *   STS_NETSTRING_PAYLOAD: *payload holds the payload (NUL-terminated one
 *     byte past its length; it may contain NULs). Borrowed: valid until the
 *     next call. Feed the remaining len - *used bytes again for pipelined
 *     requests.
 *   STS_NETSTRING_MORE: *used == len; a netstring may be in progress.
 *   STS_NETSTRING_ERROR: d->error says why. On the call that detects the
 *     error, *used counts the offending byte and d->reply_ok is true; every
 *     later call consumes all input, sets reply_ok to false and returns
 *     STS_NETSTRING_ERROR again (the framing is lost: nothing more may be
 *     answered on this connection).
 * payload is {NULL, 0} unless a payload is returned. */
enum sts_netstring_rc sts_netstring_dec_feed(struct sts_netstring_dec *d, const void *data,
					     size_t len, size_t *used, struct sts_bytes *payload);

/* True when no netstring is partly read (between requests). At EOF a
 * decoder that is not idle saw a truncated request. */
bool sts_netstring_dec_idle(const struct sts_netstring_dec *d);

/* Short static reason for a PERM reply or a log line ("bad netstring length"). */
const char *sts_netstring_strerror(enum sts_netstring_error e);

/* Appends "<len>:<payload>," to out. STS_ETOOBIG when len > max (the
 * payload ceiling, e.g. STS_SM_REPLY_MAX) or out's own ceiling would be
 * passed; STS_EINVAL when max > STS_NETSTRING_LIMIT; STS_ENOMEM. On failure
 * out is unchanged. */
int sts_netstring_encode(struct sts_buf *out, const void *payload, size_t len, size_t max);

/* ---------------------------------------------------------------------------
 * Requests: "<name> <key>", split at the first space (no space: the whole
 * payload is the name and the key is empty). The name selects the zone.
 *
 * Key normalisation, as the peer (postfix-mta-sts-resolver) where it is
 * right: "[host]:port" and "[host]" give host (rule 41: the smart host is the
 * policy domain); "host:port" gives host, but only with a single ':' (a bare
 * IPv6 address is an address literal, never "2001:db8:"); a port is 1-32
 * letters, digits, '-' or '_' (a number or a service name); one trailing root
 * dot is removed; the name is lower-cased and U-labels become A-labels
 * (sts_host_normalize). Stricter than the peer: white space is not trimmed,
 * and bracket soup such as "[[a]]" is rejected. */

enum sts_sm_key_class {
	STS_SM_KEY_DOMAIN = 0,       /* look up the policy of `host` */
	STS_SM_KEY_NOTFOUND_PARENT,  /* ".example.com": Postfix's parent-domain probe (rule 43) */
	STS_SM_KEY_NOTFOUND_IP,      /* IPv4/IPv6 literal, bracketed or not (rule 42) */
	STS_SM_KEY_INVALID,          /* not a usable name; `reason` says why */
};

struct sts_sm_request {
	const char *name;            /* borrowed from the payload, not NUL-terminated */
	size_t name_len;
	const char *key;             /* borrowed raw key, not NUL-terminated */
	size_t key_len;
	enum sts_sm_key_class cls;
	/* DOMAIN: the normalised policy domain (lower-case A-labels, no
	 * trailing dot, <= 253 bytes, labels 1-63). NOTFOUND_IP: the address as
	 * written, lower case, without brackets, port or "ipv6:" tag.
	 * Otherwise "". */
	char host[STS_HOST_MAX + 1];
	const char *reason;          /* INVALID: short static reason for the log; else "" */
};

/* Parses one request payload. Never fails: an unusable key is classified
 * STS_SM_KEY_INVALID (the daemon answers NOTFOUND, since no policy can exist
 * for it, and logs the reason). Returns out->cls. */
enum sts_sm_key_class sts_sm_parse_request(const void *payload, size_t len,
					   struct sts_sm_request *out);

/* Normalises a bare key (the part after the first space); fills out->cls,
 * out->host and out->reason the same way. */
enum sts_sm_key_class sts_sm_normalize_key(const void *key, size_t len,
					   struct sts_sm_request *out);

const char *sts_sm_key_class_name(enum sts_sm_key_class c);  /* "domain", ... */

/* ---------------------------------------------------------------------------
 * Replies. Every builder appends one payload (without netstring framing) to
 * out; the payload is at most STS_SM_REPLY_MAX bytes and holds printable
 * ASCII only (no control bytes, no TAB, no line break). On failure out is
 * unchanged. */

struct sts_sm_reply_opts {
	bool strict_testing;         /* answer testing policies like enforce */
	bool require_sni;            /* append " servername=hostname" (Postfix >= 3.4) */
	bool tlsrpt;                 /* append the TLSRPT attributes (Postfix >= 3.10) */
	const char *policy_domain;   /* for policy_domain=; normalised (sts_sm_request.host) */
};

struct sts_sm_reply_info {
	bool secure;                 /* the payload is an "OK secure ..." answer */
	size_t n_match;              /* patterns in match= */
	size_t n_invalid;            /* mx entries dropped by re-validation */
	size_t n_duplicate;          /* mx entries dropped as duplicates */
	size_t n_policy_strings;     /* policy_string attributes written */
	size_t n_ext_dropped;        /* extension lines left out of policy_string */
	bool tlsrpt_omitted;         /* tlsrpt asked, attributes left out (size, bad domain) */
	bool policy_strings_truncated; /* some policy_string attributes left out for size */
};

/* The answer for a policy (NULL: no policy).
 *
 * enforce, or testing with strict_testing:
 *   "OK secure match=<p1>:<p2>..."[" servername=hostname"]
 *   patterns in policy order, de-duplicated, lower case, "*.x" written ".x"
 *   (Postfix suffix syntax). Every pattern is re-validated: 1-63 byte labels
 *   of letters, digits and inner '-', optional leading "*.", <= 253 bytes,
 *   not an IP address; anything else (white space, '{', ':', '=', control
 *   bytes, ...) is dropped, so a policy can never inject Postfix attributes.
 *   With tlsrpt:
 *   " policy_type=sts policy_domain=<d>", " mx_host_pattern=<p>" per pattern
 *   (raw "*.x" form, same list as match=), then " { policy_string = <line> }"
 *   per policy line in canonical order: version, mode, each mx (as in the
 *   policy, duplicates kept), max_age (as published, before clamping), then
 *   extension lines whose name is valid and whose value is printable ASCII
 *   without '{' or '}' (others are left out: Postfix reads "{ ... }" with
 *   brace nesting and normalises white space, so a brace or control byte
 *   inside would end or corrupt the attribute). If the TLSRPT attributes do
 *   not fit in STS_SM_REPLY_MAX, or the policy domain is not a valid name,
 *   they are left out entirely (Postfix then falls back to match=); if only
 *   some policy_string lines do not fit, the last ones are left out.
 * testing without strict_testing, none, unset, or no policy: "NOTFOUND ".
 *
 * Returns STS_OK; STS_EINVAL when an enforced policy has no valid pattern
 * left (not a valid policy: the caller handles it like a policy that failed
 * validation) or opts is NULL; STS_ETOOBIG when even the match= answer does
 * not fit (impossible for a parsed policy, whose body is <= 64 KiB);
 * STS_ENOMEM. info (may be NULL) is filled in every case. */
int sts_sm_reply_policy(const struct sts_policy *p, const struct sts_sm_reply_opts *opts,
			struct sts_buf *out, struct sts_sm_reply_info *info);

/* "NOTFOUND " (with the trailing space). */
int sts_sm_reply_notfound(struct sts_buf *out);
/* "TEMP <reason>" / "PERM <reason>": the reason is sanitised like a log
 * message (sts_escape: printable ASCII kept, other bytes as \xHH) and cut to
 * STS_SM_REASON_MAX bytes with "..."; NULL or "" becomes "unspecified". */
int sts_sm_reply_temp(struct sts_buf *out, const char *reason);
int sts_sm_reply_perm(struct sts_buf *out, const char *reason);

#endif
