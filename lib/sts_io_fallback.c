/* TEMPORARY: weak stand-ins so the tree links while sts_dns.c and
 * sts_fetch.c are being written. Removed once both modules land. */
#include <stdio.h>
#include <mtasts/dns.h>
#include <mtasts/fetch.h>
#define W __attribute__((weak))
W int sts_dns_new(uv_loop_t *l, const struct sts_dns_opts *o, struct sts_dns **out, char *err, size_t n)
{ (void)l; (void)o; *out = NULL; snprintf(err, n, "DNS module not built"); return -1; }
W void sts_dns_free(struct sts_dns **d) { (void)d; }
W void sts_dns_txt(struct sts_dns *d, const char *n, sts_dns_cb cb, void *a) { (void)d; (void)n; (void)cb; (void)a; }
W void sts_dns_addrs(struct sts_dns *d, const char *n, sts_dns_cb cb, void *a) { (void)d; (void)n; (void)cb; (void)a; }
W unsigned long sts_dns_queries(const struct sts_dns *d) { (void)d; return 0; }
W int sts_fetcher_new(uv_loop_t *l, const struct sts_fetch_opts *o, struct sts_fetcher **out, char *err, size_t n)
{ (void)l; (void)o; *out = NULL; snprintf(err, n, "fetch module not built"); return -1; }
W void sts_fetcher_free(struct sts_fetcher **f) { (void)f; }
W void sts_fetch_policy(struct sts_fetcher *f, const char *d, const char *const *ad, size_t n, sts_fetch_cb cb, void *a)
{ (void)f; (void)d; (void)ad; (void)n; (void)cb; (void)a; }
W unsigned long sts_fetch_requests(const struct sts_fetcher *f) { (void)f; return 0; }
W const char *sts_fetch_error_code(enum sts_fetch_error e) { (void)e; return "fetch.internal"; }
W const char *sts_fetch_tlsrpt_type(enum sts_fetch_error e) { (void)e; return NULL; }
W bool sts_media_type_ok(const char *v) { (void)v; return false; }
