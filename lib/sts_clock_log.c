/* sts_clock_log.c: placeholder until the module lands. */
#include <mtasts/status.h>
