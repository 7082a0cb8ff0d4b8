/* sts_cache_memory.c: placeholder until the module lands. */
#include <mtasts/status.h>
