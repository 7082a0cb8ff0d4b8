/* metrics.c: placeholder until the metrics module lands (see metrics.h). */
#include <stdio.h>

#include <mtasts/status.h>

#include "metrics.h"

void
stsd_metrics_request(struct stsd_metrics *m, enum stsd_result r, uint64_t latency_us)
{
	(void)latency_us;
	m->requests[r]++;
}

void
stsd_metrics_fetch(struct stsd_metrics *m, const char *outcome)
{
	(void)outcome;
	m->fetches_other++;
}

int
stsd_metrics_render(const struct stsd_metrics *m, struct sts_buf *out)
{
	(void)m;
	(void)out;
	return STS_OK;
}

int
stsd_metrics_http_start(uv_loop_t *loop, const char *host, uint16_t port,
			const struct stsd_metrics *m, const struct sts_logger *log,
			struct stsd_metrics_http **out, char *err, size_t errsz)
{
	(void)loop;
	(void)host;
	(void)port;
	(void)m;
	(void)log;
	*out = NULL;
	snprintf(err, errsz, "metrics are not built yet");
	return -1;
}

void
stsd_metrics_http_stop(struct stsd_metrics_http **h)
{
	*h = NULL;
}
