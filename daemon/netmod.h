/* netmod.h: mta-stsd's loader of the network module (mtasts-net.so, see
 * include/mtasts/netmod.h). Loaded once, on first use, never unloaded.
 * Where from: $MTASTS_NETMOD if set (a path), else ../lib/mtasts-net.so
 * next to the running binary (the build tree), else STSD_NETMOD_PATH (the
 * installed location). */
#ifndef STSD_NETMOD_H
#define STSD_NETMOD_H

#include <stddef.h>

#include <mtasts/netmod.h>

/* The module's table, or NULL with the reason (paths tried, dlerror) in
 * err. A failure is remembered: later calls give the same answer. */
const struct sts_netmod *stsd_netmod(char *err, size_t errsz);

#endif
