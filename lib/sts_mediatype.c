/* sts_mediatype.c: placeholder until the module lands. */
#include <mtasts/status.h>
