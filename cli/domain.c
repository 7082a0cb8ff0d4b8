/* domain.c: validation of the policy domain given on the command line.
 * sts_host_normalize converts U-labels and lowers case; the LDH rules are
 * checked here with a message for each mistake, and xn-- labels with libidn2. */
#include <idn2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "domain.h"

static bool
is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* LDH rules on name[0..len), each failure with its own message. */
static bool
labels_ok(const char *cmd, const char *shown, const char *name, size_t len)
{
	size_t label = 0, n_labels = 0;
	bool numeric = true;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '.')
			continue;
		size_t ll = i - label;
		n_labels++;
		if (ll == 0) {
			fprintf(stderr, "mta-sts %s: --domain '%s' has an empty label ('..' or a"
				" leading '.'): remove the extra dot\n", cmd, shown);
			return false;
		}
		if (ll > STS_LABEL_MAX) {
			fprintf(stderr, "mta-sts %s: --domain '%s': a label has %zu characters; at"
				" most %d are allowed\n", cmd, shown, ll, STS_LABEL_MAX);
			return false;
		}
		numeric = true;
		for (size_t j = label; j < i; j++) {
			if (!is_ldh(name[j])) {
				char bad[8];
				sts_escape(name + j, 1, bad, sizeof bad);
				fprintf(stderr, "mta-sts %s: --domain '%s': '%s' is not allowed in a"
					" domain name (letters, digits, '-' and '.' only)\n", cmd,
					shown, bad);
				return false;
			}
			if (name[j] < '0' || name[j] > '9')
				numeric = false;
		}
		if (name[label] == '-' || name[i - 1] == '-') {
			fprintf(stderr, "mta-sts %s: --domain '%s': a label may not begin or end"
				" with '-'\n", cmd, shown);
			return false;
		}
		label = i + 1;
	}
	if (numeric) {
		fprintf(stderr, "mta-sts %s: --domain '%s' looks like an IP address: give the"
			" mail domain name, e.g. --domain example.com\n", cmd, shown);
		return false;
	}
	if (n_labels < 2) {
		fprintf(stderr, "mta-sts %s: --domain '%s' has a single label: give the full"
			" mail domain, e.g. --domain example.com\n", cmd, shown);
		return false;
	}
	return true;
}

bool
cli_domain_arg(const char *cmd, const char *arg, char out[STS_HOST_MAX + 1])
{
	char shown[96];
	size_t alen = strlen(arg);
	sts_escape(arg, alen, shown, sizeof shown);
	if (arg[0] == '\0') {
		fprintf(stderr, "mta-sts %s: --domain is empty: give the policy domain, e.g."
			" --domain example.com\n", cmd);
		return false;
	}
	if (strncmp(arg, "_mta-sts.", 9) == 0 || strncmp(arg, "_MTA-STS.", 9) == 0) {
		fprintf(stderr, "mta-sts %s: --domain '%s': give the policy domain without the"
			" '_mta-sts.' prefix, e.g. --domain %s\n", cmd, shown, shown + 9);
		return false;
	}
	if (strstr(arg, "://") != NULL || strchr(arg, '/') != NULL || strchr(arg, '@') != NULL) {
		fprintf(stderr, "mta-sts %s: --domain '%s' is not a domain name: give just the"
			" domain, e.g. --domain example.com\n", cmd, shown);
		return false;
	}
	bool ascii = true;
	for (size_t i = 0; i < alen; i++)
		if ((unsigned char)arg[i] >= 0x80)
			ascii = false;
	/* ASCII input is checked as typed so each mistake gets its own message;
	 * U-labels can only be checked after conversion. */
	size_t tlen = alen > 0 && arg[alen - 1] == '.' ? alen - 1 : alen;
	if (ascii && tlen <= STS_HOST_MAX && !labels_ok(cmd, shown, arg, tlen))
		return false;
	if (sts_host_normalize(arg, alen, out) != STS_OK) {
		fprintf(stderr, "mta-sts %s: --domain '%s' is not a valid domain name (%s): give"
			" the domain as in 'example.com' or 'bücher.example'\n", cmd, shown,
			ascii ? "longer than 253 characters" :
			"an internationalised name that IDNA2008 rejects");
		return false;
	}
	size_t len = strlen(out);
	if (!ascii && !labels_ok(cmd, shown, out, len))
		return false;
	if (len > CLI_DOMAIN_MAX) {
		fprintf(stderr, "mta-sts %s: --domain '%s' is %zu characters; with the"
			" '_mta-sts.' prefix the TXT owner name would pass 253, so at most %d are"
			" possible\n", cmd, shown, len, CLI_DOMAIN_MAX);
		return false;
	}
	bool ok = true;
	for (const char *l = out; ok && l != NULL;) {
		size_t ll = strcspn(l, ".");
		if (strncmp(l, "xn--", 4) == 0) {
			/* An A-label must decode to a valid U-label (RFC 5891). */
			char lab[STS_LABEL_MAX + 1];
			memcpy(lab, l, ll);
			lab[ll] = '\0';
			char *res = NULL;
			int rc = idn2_lookup_u8((const uint8_t *)lab, (uint8_t **)&res,
						IDN2_NONTRANSITIONAL);
			free(res);
			if (rc != IDN2_OK) {
				fprintf(stderr, "mta-sts %s: --domain '%s': label '%s' is not a"
					" valid A-label (%s): copy the domain again or give it in"
					" Unicode\n", cmd, shown, lab, idn2_strerror(rc));
				ok = false;
			}
		}
		l = l[ll] == '.' ? l + ll + 1 : NULL;
	}
	if (ok && strncmp(out, "mta-sts.", 8) == 0)
		fprintf(stderr, "mta-sts %s: warning: --domain '%s' starts with 'mta-sts.': that"
			" is the policy host; the policy domain is usually '%s'\n", cmd, out, out + 8);
	return ok;
}
