/* sts_status.c: status codes to text. */
#include <mtasts/status.h>

const char *
sts_strerror(int status)
{
	switch (status) {
	case STS_OK: return "success";
	case STS_EINVAL: return "invalid input";
	case STS_ENOMEM: return "out of memory";
	case STS_ETOOBIG: return "input larger than the configured limit";
	case STS_EIO: return "input/output error";
	case STS_ENOTFOUND: return "not found";
	case STS_ESTATE: return "stored state is unreadable";
	}
	return "unknown status";
}
