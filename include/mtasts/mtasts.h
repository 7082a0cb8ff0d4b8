/* mtasts.h: libmtasts umbrella header. */
#ifndef MTASTS_MTASTS_H
#define MTASTS_MTASTS_H

#include <mtasts/status.h>
#include <mtasts/buf.h>
#include <mtasts/diag.h>
#include <mtasts/parse.h>
#include <mtasts/txt.h>
#include <mtasts/tlsrpt.h>
#include <mtasts/policy.h>
#include <mtasts/mx.h>

#define MTASTS_VERSION "0.1.0"

#endif
