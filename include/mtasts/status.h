/* status.h: the one status type of libmtasts.
 *
 * Every fallible library call returns an int: STS_OK (0) or a negative
 * sts_status. Details about *why* input was rejected travel separately in an
 * sts_diags (see diag.h), so a status never has to carry a message. */
#ifndef MTASTS_STATUS_H
#define MTASTS_STATUS_H

enum sts_status {
	STS_OK = 0,
	STS_EINVAL = -1,   /* input violates the grammar; see the diagnostics */
	STS_ENOMEM = -2,   /* allocation failed */
	STS_ETOOBIG = -3,  /* a bounded buffer would pass its ceiling */
	STS_EIO = -4,      /* an operating-system call failed (errno kept) */
	STS_ENOTFOUND = -5,/* lookup found nothing (not an error in itself) */
	STS_ESTATE = -6,   /* stored state is unreadable or inconsistent */
};

/* Returns a static, never-NULL description of a status code. */
const char *sts_strerror(int status);

#endif
