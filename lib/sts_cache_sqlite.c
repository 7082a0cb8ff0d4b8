/* sts_cache_sqlite.c: placeholder until the module lands. */
#include <mtasts/status.h>
