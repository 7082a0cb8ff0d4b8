/* sts_engine.c: placeholder until the module lands. */
#include <mtasts/status.h>
