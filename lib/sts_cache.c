/* sts_cache.c: placeholder until the module lands. */
#include <mtasts/status.h>
