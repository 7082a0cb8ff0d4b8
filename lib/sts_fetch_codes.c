/* sts_fetch_codes.c: the stable names of fetch outcomes. Apart from
 * sts_fetch.c so that code which only names outcomes (the engine, the
 * daemon) does not pull libcurl in. */
#include <stddef.h>

#include <mtasts/fetch.h>

const char *
sts_fetch_error_code(enum sts_fetch_error e)
{
	switch (e) {
	case STS_FETCH_OK: return "ok";
	case STS_FETCH_DNS_TEMP: return "fetch.dns.temporary";
	case STS_FETCH_NO_ADDRESS: return "fetch.dns.no_address";
	case STS_FETCH_CONNECT: return "fetch.connect";
	case STS_FETCH_TLS_UNTRUSTED: return "fetch.tls.untrusted";
	case STS_FETCH_TLS_EXPIRED: return "fetch.tls.expired";
	case STS_FETCH_TLS_NAME: return "fetch.tls.name";
	case STS_FETCH_TLS_OTHER: return "fetch.tls.handshake";
	case STS_FETCH_HTTP_STATUS: return "fetch.http.status";
	case STS_FETCH_REDIRECT: return "fetch.http.redirect";
	case STS_FETCH_CONTENT_TYPE: return "fetch.http.content_type";
	case STS_FETCH_TOO_LARGE: return "fetch.http.too_large";
	case STS_FETCH_TIMEOUT: return "fetch.timeout";
	case STS_FETCH_POLICY_INVALID: return "policy.invalid";
	case STS_FETCH_INTERNAL: return "fetch.internal";
	}
	return "fetch.internal";
}

const char *
sts_fetch_tlsrpt_type(enum sts_fetch_error e)
{
	switch (e) {
	case STS_FETCH_OK:
		return NULL;
	case STS_FETCH_TLS_UNTRUSTED:
	case STS_FETCH_TLS_EXPIRED:
	case STS_FETCH_TLS_NAME:
	case STS_FETCH_TLS_OTHER:
		/* RFC 8460 4.3.2.2: the policy host's certificate or handshake. */
		return "sts-webpki-invalid";
	case STS_FETCH_POLICY_INVALID:
		return "sts-policy-invalid";
	default:
		return "sts-policy-fetch-error";
	}
}
