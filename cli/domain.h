/* domain.h: the --domain argument of generate and publish. */
#ifndef MTASTS_CLI_DOMAIN_H
#define MTASTS_CLI_DOMAIN_H

#include <stdbool.h>

#include <mtasts/mx.h>

/* Longest policy domain whose "_mta-sts." owner name still fits in 253. */
#define CLI_DOMAIN_MAX (STS_HOST_MAX - 9)

/* Checks a policy domain given as U-labels or A-labels and writes its
 * normalised A-label form (lower case, no trailing dot) to out. On failure
 * prints "mta-sts CMD: --domain '...': what is wrong and what to do" to
 * stderr and returns false. Warnings go to stderr too. */
bool cli_domain_arg(const char *cmd, const char *arg, char out[STS_HOST_MAX + 1]);

#endif
