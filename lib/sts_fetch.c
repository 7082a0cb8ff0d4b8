/* sts_fetch.c: placeholder until the module lands. */
#include <mtasts/status.h>
