/* netmod.h: mta-stsd's loader of the network module (mtasts-net.so, see
 * include/mtasts/netmod.h). Loaded once, on first use, never unloaded.
 * Where from: $MTASTS_NETMOD if set (a path), else ../lib/mtasts-net.so
 * next to the running binary (the build tree), else STSD_NETMOD_PATH (the
 * installed location). */
#ifndef STSD_NETMOD_H
#define STSD_NETMOD_H

#include <stdbool.h>
#include <stddef.h>

#include <mtasts/netmod.h>

/* Where the module would be loaded from (into path), and whether that file
 * is readable; nothing is loaded. For an early warning. */
bool stsd_netmod_find(char *path, size_t pathsz);

/* The module's table, or NULL with the reason (paths tried, dlerror) in
 * err. A failure is remembered: later calls give the same answer. */
const struct sts_netmod *stsd_netmod(char *err, size_t errsz);

#endif
