/* sts_dns.c: placeholder until the module lands. */
#include <mtasts/status.h>
