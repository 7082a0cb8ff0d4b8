/* TEMPORARY: weak stand-ins so the tree links while sts_dns.c is being
 * written. Removed once it lands. (sts_fetch.c has landed: a weak
 * definition here would win over it when the archive member holding it is
 * pulled first, so its stand-ins are gone.) */
#include <stdio.h>
#include <mtasts/dns.h>
#define W __attribute__((weak))
W int sts_dns_new(uv_loop_t *l, const struct sts_dns_opts *o, struct sts_dns **out, char *err, size_t n)
{ (void)l; (void)o; *out = NULL; snprintf(err, n, "DNS module not built"); return -1; }
W void sts_dns_free(struct sts_dns **d) { (void)d; }
W void sts_dns_txt(struct sts_dns *d, const char *n, sts_dns_cb cb, void *a) { (void)d; (void)n; (void)cb; (void)a; }
W void sts_dns_addrs(struct sts_dns *d, const char *n, sts_dns_cb cb, void *a) { (void)d; (void)n; (void)cb; (void)a; }
W unsigned long sts_dns_queries(const struct sts_dns *d) { (void)d; return 0; }
