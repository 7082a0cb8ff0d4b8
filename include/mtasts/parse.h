/* parse.h: flags and shared types of the pure parsers (txt.h, policy.h,
 * tlsrpt.h, mx.h). Parsers take bytes and return structs plus diagnostics:
 * no I/O, no logging, no globals. */
#ifndef MTASTS_PARSE_H
#define MTASTS_PARSE_H

#include <stddef.h>

/* Default (sender) mode tolerates the deviations listed in
 * docs/conformance.md as warnings. STS_PARSE_STRICT turns every deviation
 * from the RFC's ABNF and prose into an error (what `lint --strict` uses). */
#define STS_PARSE_STRICT 0x1u

/* A borrowed view of bytes. */
struct sts_bytes {
	const void *ptr;
	size_t len;
};

/* One unknown name/value field kept from a record or policy. */
struct sts_ext {
	const char *name;   /* NUL-terminated, owned by the enclosing struct */
	const char *value;  /* NUL-terminated, owned by the enclosing struct */
};

/* One TXT resource record as received: its character-strings kept apart. */
struct sts_txt_rr {
	const struct sts_bytes *strings;
	size_t n_strings;
};

#endif
