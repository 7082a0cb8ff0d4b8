/* test_fetch.c: the policy fetch against a real nginx, speaking TAP.
 *
 * Makes a private CA (and a second, untrusted one) with the openssl command
 * in a temporary directory, starts nginx on 127.0.44.1:443 and
 * 127.0.44.2:443 with one SNI-selected server block per case, and runs every
 * case concurrently on one libuv loop: a policy, 404, 204, a redirect, HTML,
 * oversized bodies with and without Content-Length, a stalled server, a
 * wrong-name / untrusted / self-signed / expired / not-yet-valid
 * certificate, a refused connection, a TLS 1.1-only server, and requests
 * that never reach curl. nginx's access log proves what went over the wire:
 * the path, Host and SNI, no conditional or compression headers, and
 * exactly one request for a redirect. Then diagnostic probes
 * (sts_fetch_probe) of single addresses, whose TLS and certificate details
 * are compared with what `openssl x509` says about the test's own files, and
 * cancellation, including a free from inside a callback.
 *
 * The *_proxy environment variables point at a dead address throughout, so
 * a fetch that honoured them would fail. nginx or openssl missing is a
 * failure ("Bail out!"), never a skip. nginx dies with this process
 * (atexit, signal handlers and PR_SET_PDEATHSIG). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>   /* only for curl_global_cleanup at exit (LeakSanitizer) */
#include <uv.h>

#include <mtasts/fetch.h>
#include <mtasts/policy.h>

#include "tap.h"

#define IP_MAIN "127.0.44.1"
#define IP_TLS11 "127.0.44.2"
#define IP_DEAD "127.0.44.9"    /* nothing listens here */
#define ECHO_MODULE "/usr/lib/nginx/modules/ngx_http_echo_module.so"
#define POLICY "version: STSv1\nmode: enforce\nmx: mail.ok.test\nmax_age: 86400\n"
#define POLICY_NGX "version: STSv1\\nmode: enforce\\nmx: mail.ok.test\\nmax_age: 86400\\n"
#define STALL_TIMEOUT_MS 1500u

/* ---- TAP ---------------------------------------------------------------- */

static char tmpdir[256];
static pid_t nginx_pid = -1;




/* ---- environment: tools, files, nginx ------------------------------------ */

static void
stop_nginx(void)
{
	if (nginx_pid <= 0)
		return;
	kill(nginx_pid, SIGTERM);
	for (int i = 0; i < 60; i++) {
		if (waitpid(nginx_pid, NULL, WNOHANG) == nginx_pid) {
			nginx_pid = -1;
			return;
		}
		usleep(50000);
	}
	kill(nginx_pid, SIGKILL);
	waitpid(nginx_pid, NULL, 0);
	nginx_pid = -1;
}

static void
cleanup_at_exit(void)
{
	stop_nginx();
	if (tmpdir[0] != '\0' && getenv("MTASTS_KEEP_TMP") == NULL) {
		char cmd[320];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	} else if (tmpdir[0] != '\0') {
		fprintf(stderr, "kept %s\n", tmpdir);
	}
}

static void
on_signal(int sig)
{
	/* Only async-signal-safe calls. */
	if (nginx_pid > 0)
		kill(nginx_pid, SIGTERM);
	signal(sig, SIG_DFL);
	raise(sig);
}


static const char *
tpath(const char *rel)
{
	static char p[8][512];
	static unsigned i;
	char *out = p[i++ % 8];
	snprintf(out, sizeof p[0], "%s/%s", tmpdir, rel);
	return out;
}

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	if (fp == NULL || fwrite(data, 1, len, fp) != len || fclose(fp) != 0)
		bail("cannot write %s: %s", path, strerror(errno));
}

static void
mkdirs(const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
	for (char *s = p + strlen(tmpdir) + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		bail("mkdir %s: %s", p, strerror(errno));
}

static char *
read_all(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (fp == NULL)
		return NULL;
	size_t cap = 4096, n = 0, r;
	char *buf = malloc(cap + 1);
	while (buf != NULL && (r = fread(buf + n, 1, cap - n, fp)) > 0) {
		n += r;
		if (n == cap) {
			char *nb = realloc(buf, (cap *= 2) + 1);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
		}
	}
	fclose(fp);
	if (buf != NULL)
		buf[n] = '\0';
	return buf;
}

/* The test PKI. Every leaf but the wrong-name one carries its server's name
 * as a DNS SAN; expired and not-yet-valid leaves come from `openssl ca`,
 * which is the 3.0 command that takes explicit dates. */
static const char gen_sh[] =
	"set -e\n"
	"EC='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
	"ca() { openssl req -x509 $EC -keyout $1.key -out $1.crt -days 30 -subj \"/CN=$2\" "
	"-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }\n"
	"csr() { openssl req -new $EC -keyout $1.key -out $1.csr -subj \"/CN=$2\" "
	"-addext \"subjectAltName=$3\"; }\n"
	"sign() { openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key -CAcreateserial -days 30 "
	"-copy_extensions copy -out $1.crt; }\n"
	"ca ca 'mtasts test CA'\n"
	"ca rogue 'mtasts untrusted CA'\n"
	"csr good mta-sts.ok.test 'DNS:mta-sts.ok.test,DNS:mta-sts.multi.test,"
	"DNS:mta-sts.notfound.test,DNS:mta-sts.nocontent.test,DNS:mta-sts.redirect.test,"
	"DNS:mta-sts.html.test,DNS:mta-sts.charset.test,DNS:mta-sts.big.test,"
	"DNS:mta-sts.exact.test,DNS:mta-sts.chunked.test,DNS:mta-sts.stall.test,"
	"DNS:mta-sts.cancel.test,DNS:mta-sts.tls11.test'\n"
	"sign good ca\n"
	"csr other mta-sts.other.test DNS:mta-sts.other.test\n"
	"sign other ca\n"
	"csr untrusted mta-sts.untrusted.test DNS:mta-sts.untrusted.test\n"
	"sign untrusted rogue\n"
	"openssl req -x509 $EC -keyout selfsigned.key -out selfsigned.crt -days 30 "
	"-subj /CN=mta-sts.selfsigned.test -addext subjectAltName=DNS:mta-sts.selfsigned.test\n"
	"mkdir -p newcerts; : > index.txt; echo 1000 > serial\n"
	"printf '[ca]\\ndefault_ca=t\\n[t]\\ndir=.\\ndatabase=index.txt\\nnew_certs_dir=newcerts\\n"
	"serial=serial\\ndefault_md=sha256\\npolicy=p\\ncopy_extensions=copy\\n"
	"unique_subject=no\\n[p]\\ncommonName=supplied\\n' > ca.cnf\n"
	"csr expired mta-sts.expired.test DNS:mta-sts.expired.test\n"
	"openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr "
	"-out expired.crt -startdate 20200101000000Z -enddate 20200201000000Z\n"
	"csr future mta-sts.future.test DNS:mta-sts.future.test\n"
	"openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in future.csr "
	"-out future.crt -startdate 20990101000000Z -enddate 20991231000000Z\n";

static void
make_pki(void)
{
	char cmd[512];
	write_file(tpath("gen.sh"), gen_sh, sizeof gen_sh - 1);
	snprintf(cmd, sizeof cmd, "cd '%s' && sh gen.sh > gen.log 2>&1", tmpdir);
	if (system(cmd) != 0) {
		diag_file("gen.log", tpath("gen.log"), 40);
		bail("openssl failed to make the test certificates (see gen.log above)");
	}
}

/* One server block on 127.0.44.1 per case, chosen by SNI. */
static void
write_nginx_conf(void)
{
	FILE *fp = fopen(tpath("nginx.conf"), "w");
	if (fp == NULL)
		bail("cannot write nginx.conf");
	const char *t = tmpdir;
	fprintf(fp,
		"load_module " ECHO_MODULE ";\n"
		"daemon off;\n"
		"worker_processes 1;\n"
		"%s"
		"pid %s/nginx.pid;\n"
		"error_log %s/error.log info;\n"
		"events { worker_connections 256; }\n"
		"http {\n"
		"  log_format fetch '$ssl_server_name|$host|$request|$status|$ssl_protocol|"
		"$http_user_agent|$http_if_modified_since|$http_if_none_match|"
		"$http_accept_encoding|$sent_http_content_length|$sent_http_transfer_encoding';\n"
		"  access_log %s/access.log fetch;\n"
		"  client_body_temp_path %s/t_body; proxy_temp_path %s/t_proxy;\n"
		"  fastcgi_temp_path %s/t_fcgi; uwsgi_temp_path %s/t_uwsgi; scgi_temp_path %s/t_scgi;\n"
		"  ssl_certificate %s/good.crt; ssl_certificate_key %s/good.key;\n"
		"  default_type text/plain;\n",
		geteuid() == 0 ? "user root;\n" : "", t, t, t, t, t, t, t, t, t, t);
#define SRV "  server { listen " IP_MAIN ":443 ssl; server_name mta-sts.%s.test;%s }\n"
	fprintf(fp, "  server { listen " IP_MAIN ":443 ssl default_server;"
		    " server_name mta-sts.ok.test mta-sts.multi.test;\n"
		    "    location = /.well-known/mta-sts.txt { return 200 \"" POLICY_NGX "\"; }\n"
		    "    location / { return 404; } }\n");
	fprintf(fp, SRV, "notfound", " location / { return 404; }");
	fprintf(fp, SRV, "nocontent", " location / { return 204; }");
	fprintf(fp, SRV, "redirect",
		" location / { return 301 https://mta-sts.ok.test/.well-known/mta-sts.txt; }");
	fprintf(fp, SRV, "html",
		" location / { default_type text/html; return 200 \"<html><body>hi</body></html>\"; }");
	fprintf(fp, SRV, "charset",
		" location / { default_type \"text/plain; charset=iso-8859-1\";"
		" return 200 \"" POLICY_NGX "\"; }");
	fprintf(fp, "  server { listen " IP_MAIN ":443 ssl; server_name mta-sts.big.test;"
		    " root %s/www/big; }\n", t);
	fprintf(fp, "  server { listen " IP_MAIN ":443 ssl; server_name mta-sts.exact.test;"
		    " root %s/www/exact; }\n", t);
	/* The echo module streams: chunked, no Content-Length. */
	fprintf(fp, SRV, "chunked", " location / { echo_duplicate 65537 \"a\"; }");
	fprintf(fp, SRV, "stall", " location / { echo_sleep 30; echo late; }");
	fprintf(fp, SRV, "cancel", " location / { echo_sleep 30; echo late; }");
	const char *certs[][2] = {
		{ "wrongname", "other" }, { "untrusted", "untrusted" },
		{ "selfsigned", "selfsigned" }, { "expired", "expired" }, { "future", "future" },
	};
	for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
		fprintf(fp, "  server { listen " IP_MAIN ":443 ssl; server_name mta-sts.%s.test;"
			    " ssl_certificate %s/%s.crt; ssl_certificate_key %s/%s.key;"
			    " location / { return 200 \"" POLICY_NGX "\"; } }\n",
			certs[i][0], t, certs[i][1], t, certs[i][1]);
	/* Protocol versions are settled before SNI picks a server block, so
	 * the TLS 1.1-only server needs an address of its own. SECLEVEL=0
	 * lets Debian's OpenSSL speak TLS 1.1 at all. */
	fprintf(fp, "  server { listen " IP_TLS11 ":443 ssl default_server;"
		    " server_name mta-sts.tls11.test;"
		    " ssl_protocols TLSv1.1; ssl_ciphers DEFAULT:@SECLEVEL=0;"
		    " location / { return 200 \"" POLICY_NGX "\"; } }\n");
	fprintf(fp, "}\n");
	if (fclose(fp) != 0)
		bail("cannot write nginx.conf");
}

static bool
port_open(const char *ip)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(443);
	inet_pton(AF_INET, ip, &sa.sin_addr);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	bool up = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(s);
	return up;
}

static void
start_nginx(const char *nginx)
{
	if (port_open(IP_MAIN) || port_open(IP_TLS11))
		bail("something already listens on " IP_MAIN ":443 or " IP_TLS11
		     ":443 (a system nginx? stop it: pkill nginx)");
	pid_t pid = fork();
	if (pid < 0)
		bail("fork: %s", strerror(errno));
	if (pid == 0) {
		/* nginx goes when we go, even if we are killed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(tpath("nginx.out"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(nginx, "nginx", "-p", tmpdir, "-c", tpath("nginx.conf"), "-e",
		      tpath("error.log"), (char *)NULL);
		_exit(127);
	}
	nginx_pid = pid;
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			nginx_pid = -1;
			diag_file("nginx", tpath("nginx.out"), 20);
			diag_file("error.log", tpath("error.log"), 20);
			bail("nginx exited at start (see above)");
		}
		if (port_open(IP_MAIN) && port_open(IP_TLS11))
			return;
		usleep(50000);
	}
	diag_file("error.log", tpath("error.log"), 20);
	bail("nginx did not start listening within 10 s");
}

/* Whether this machine's nginx/OpenSSL can serve TLS 1.1 at all; without
 * that the TLS 1.1 case would prove nothing, so it is left out. */
static bool
tls11_server_works(void)
{
	char cmd[640];
	snprintf(cmd, sizeof cmd,
		 "openssl s_client -connect " IP_TLS11 ":443 -servername mta-sts.tls11.test "
		 "-tls1_1 -cipher DEFAULT@SECLEVEL=0 < /dev/null > '%s' 2>&1",
		 tpath("tls11.out"));
	if (system(cmd) != 0)
		return false;
	char *out = read_all(tpath("tls11.out"));
	bool yes = false;
	for (char *p = out; p != NULL && (p = strstr(p, "Protocol")) != NULL; p++) {
		char *eol = strchr(p, '\n');
		char *v = strstr(p, "TLSv1.1");
		if (v != NULL && (eol == NULL || v < eol)) {
			yes = true;
			break;
		}
	}
	free(out);
	return yes;
}

/* ---- fetch cases ------------------------------------------------------ */

struct fcase {
	const char *domain;
	const char *addrs[3];
	size_t n_addrs;
	bool short_timeout;          /* the fetcher with timeout_ms 1500 */
	enum sts_fetch_error want;
	const char *msg_has;         /* substring of the message, or NULL */
	unsigned logged;             /* expected access log lines for the host */
	/* filled by the callback */
	unsigned calls;
	bool during_start;           /* callback ran inside sts_fetch_policy */
	bool starting;
	enum sts_fetch_error error;
	char message[256];
	long status;
	char *body;
	size_t body_len;
	char content_type[128];
	char location[256];
	uint64_t t0, t1;
};

/* CASE(domain, short timeout, expected error, message part, log lines, addresses...) */
#define CASE(d, st, w, m, l, ...) \
	{ .domain = (d), .short_timeout = (st), .want = (w), .msg_has = (m), .logged = (l), \
	  .addrs = { __VA_ARGS__ }, \
	  .n_addrs = sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *) }
static struct fcase cases[] = {
	CASE("ok.test", false, STS_FETCH_OK, "policy fetched", 1, IP_MAIN),
	CASE("multi.test", false, STS_FETCH_OK, NULL, 1, IP_DEAD, "::1", IP_MAIN),
	CASE("charset.test", false, STS_FETCH_OK, NULL, 1, IP_MAIN),
	CASE("exact.test", false, STS_FETCH_OK, NULL, 1, IP_MAIN),
	CASE("notfound.test", false, STS_FETCH_HTTP_STATUS, "HTTP status 404", 1, IP_MAIN),
	CASE("nocontent.test", false, STS_FETCH_HTTP_STATUS, "HTTP status 204", 1, IP_MAIN),
	CASE("redirect.test", false, STS_FETCH_REDIRECT,
	     "HTTP 301 redirect to https://mta-sts.ok.test/.well-known/mta-sts.txt; "
	     "redirects are not followed (RFC 8461 3.3)", 1, IP_MAIN),
	CASE("html.test", false, STS_FETCH_CONTENT_TYPE,
	     "content type 'text/html' is not text/plain", 1, IP_MAIN),
	CASE("big.test", false, STS_FETCH_TOO_LARGE, "70000", 1, IP_MAIN),
	CASE("chunked.test", false, STS_FETCH_TOO_LARGE, "65536", 1, IP_MAIN),
	CASE("stall.test", true, STS_FETCH_TIMEOUT, "no complete answer within 1.5 s", 0, IP_MAIN),
	CASE("wrongname.test", false, STS_FETCH_TLS_NAME, "mta-sts.wrongname.test", 0, IP_MAIN),
	CASE("untrusted.test", false, STS_FETCH_TLS_UNTRUSTED, "trusted root", 0, IP_MAIN),
	CASE("selfsigned.test", false, STS_FETCH_TLS_UNTRUSTED, "self-signed", 0, IP_MAIN),
	CASE("expired.test", false, STS_FETCH_TLS_EXPIRED, "expired", 0, IP_MAIN),
	CASE("future.test", false, STS_FETCH_TLS_EXPIRED, "not yet valid", 0, IP_MAIN),
	CASE("refused.test", false, STS_FETCH_CONNECT, "connection to " IP_DEAD ":443 refused", 0,
	     IP_DEAD),
	CASE("v6.test", false, STS_FETCH_CONNECT, "connection to [::1]:443", 0, "::1"),
	CASE("tls11.test", false, STS_FETCH_TLS_OTHER, "TLS handshake", 0, IP_TLS11),
	/* Never reach curl: answered from the loop, not inside the call. */
	CASE("bad domain.test", false, STS_FETCH_INTERNAL, "invalid policy domain", 0, IP_MAIN),
	{ .domain = "noaddr.test", .want = STS_FETCH_NO_ADDRESS, .msg_has = "no address" },
	CASE("badaddr.test", false, STS_FETCH_INTERNAL, "invalid address", 0, "300.1.2.3"),
};
#define N_CASES (sizeof cases / sizeof cases[0])

static unsigned pending;

static void
on_result(void *arg, const struct sts_fetch_result *res)
{
	struct fcase *c = arg;
	c->calls++;
	c->during_start = c->starting;
	c->t1 = uv_hrtime();
	c->error = res->error;
	snprintf(c->message, sizeof c->message, "%s", res->message);
	c->status = res->http_status;
	snprintf(c->content_type, sizeof c->content_type, "%s", res->content_type);
	snprintf(c->location, sizeof c->location, "%s", res->location);
	if (res->body != NULL) {
		c->body = malloc(res->body_len + 1);
		memcpy(c->body, res->body, res->body_len);
		c->body[res->body_len] = '\0';
		c->body_len = res->body_len;
	}
	pending--;
}

static struct fcase *
find_case(const char *domain)
{
	for (size_t i = 0; i < N_CASES; i++)
		if (strcmp(cases[i].domain, domain) == 0)
			return &cases[i];
	bail("no case %s", domain);
}

/* Lines of the access log whose SNI is `host` and, when `request` is set,
 * whose request line contains it. */
static unsigned
log_count(const char *host, const char *request)
{
	char *log = read_all(tpath("access.log"));
	unsigned n = 0;
	size_t hl = strlen(host);
	for (char *l = log; l != NULL && *l != '\0';) {
		char *nl = strchr(l, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (strncmp(l, host, hl) == 0 && l[hl] == '|' &&
		    (request == NULL || strstr(l, request) != NULL))
			n++;
		l = nl != NULL ? nl + 1 : NULL;
	}
	free(log);
	return n;
}

/* The access log line of `host`, split at '|' into at most 12 fields
 * (owned by *buf): sni, host, request, status, tls, user agent,
 * if-modified-since, if-none-match, accept-encoding, content-length,
 * transfer-encoding. */
static size_t
log_fields(const char *host, char **buf, char *f[12])
{
	*buf = read_all(tpath("access.log"));
	size_t hl = strlen(host), n = 0;
	for (char *l = *buf; l != NULL && *l != '\0';) {
		char *nl = strchr(l, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (strncmp(l, host, hl) == 0 && l[hl] == '|') {
			for (char *p = l; p != NULL && n < 12;) {
				f[n++] = p;
				p = strchr(p, '|');
				if (p != NULL)
					*p++ = '\0';
			}
			return n;
		}
		l = nl != NULL ? nl + 1 : NULL;
	}
	return 0;
}

/* nginx writes a log line after sending the response, so a client can see
 * the answer first; wait until the expected lines are there, then a little
 * longer so that an extra (followed-redirect) request would show up. */
static void
settle_log(void)
{
	unsigned want = 0;
	for (size_t i = 0; i < N_CASES; i++)
		want += cases[i].logged;
	for (int i = 0; i < 60; i++) {
		unsigned have = 0;
		for (size_t j = 0; j < N_CASES; j++) {
			char host[128];
			snprintf(host, sizeof host, "mta-sts.%s", cases[j].domain);
			have += log_count(host, "GET ");
		}
		if (have >= want)
			break;
		usleep(50000);
	}
	usleep(300000);
}

static void
run_cases(uv_loop_t *loop, const char *ca, bool with_tls11)
{
	struct sts_fetcher *f = NULL, *fs = NULL;
	char err[256];
	struct sts_fetch_opts opts = { .ca_file = ca, .timeout_ms = 10000 };
	struct sts_fetch_opts sopts = { .ca_file = ca, .timeout_ms = STALL_TIMEOUT_MS };
	if (sts_fetcher_new(loop, &opts, &f, err, sizeof err) != 0 ||
	    sts_fetcher_new(loop, &sopts, &fs, err, sizeof err) != 0)
		bail("sts_fetcher_new: %s", err);
	unsigned long started = 0;
	for (size_t i = 0; i < N_CASES; i++) {
		struct fcase *c = &cases[i];
		if (!with_tls11 && strcmp(c->domain, "tls11.test") == 0)
			continue;
		pending++;
		c->t0 = uv_hrtime();
		c->starting = true;
		sts_fetch_policy(c->short_timeout ? fs : f, c->domain, c->addrs, c->n_addrs,
				 on_result, c);
		c->starting = false;
		if (c->want != STS_FETCH_INTERNAL && c->want != STS_FETCH_NO_ADDRESS &&
		    !c->short_timeout)
			started++;
	}
	uint64_t t0 = uv_hrtime();
	uv_run(loop, UV_RUN_DEFAULT);
	double secs = (double)(uv_hrtime() - t0) / 1e9;
	ok(pending == 0, "every fetch answered; the loop ran dry after %.1f s", secs);
	ok(sts_fetch_requests(f) == started && sts_fetch_requests(fs) == 1,
	   "sts_fetch_requests counts requests that reached curl (%lu of %lu, %lu of 1)",
	   sts_fetch_requests(f), started, sts_fetch_requests(fs));
	sts_fetcher_free(&f);
	sts_fetcher_free(&fs);
	ok(f == NULL && fs == NULL, "sts_fetcher_free sets the pointer to NULL");
	uv_run(loop, UV_RUN_DEFAULT);   /* close callbacks free the fetchers */

	for (size_t i = 0; i < N_CASES; i++) {
		struct fcase *c = &cases[i];
		if (!with_tls11 && strcmp(c->domain, "tls11.test") == 0)
			continue;
		bool good = c->calls == 1 && c->error == c->want &&
			    (c->msg_has == NULL || strstr(c->message, c->msg_has) != NULL);
		ok(good, "%s: %s (%s)", c->domain, sts_fetch_error_code(c->want),
		   c->msg_has ? c->msg_has : "no message check");
		/* The messages are part of the interface: show them. */
		printf("# %scalls=%u %s [%s]: %s\n", good ? "" : "GOT ", c->calls,
		       sts_fetch_error_code(c->error), sts_fetch_tlsrpt_type(c->error) ?
		       sts_fetch_tlsrpt_type(c->error) : "-", c->message);
	}

	/* Details per case. */
	struct fcase *c = find_case("ok.test");
	ok(c->status == 200 && c->body != NULL && strcmp(c->body, POLICY) == 0 &&
	   c->body_len == strlen(POLICY) && strcmp(c->content_type, "text/plain") == 0,
	   "ok.test: status 200, content type text/plain, body is the policy byte for byte");
	c = find_case("charset.test");
	ok(c->body != NULL && strcmp(c->body, POLICY) == 0 &&
	   strcmp(c->content_type, "text/plain; charset=iso-8859-1") == 0,
	   "charset.test: 'text/plain; charset=iso-8859-1' accepted (charset ignored)");
	c = find_case("exact.test");
	ok(c->body_len == STS_POLICY_MAX && c->body != NULL && c->body[0] == 'x' &&
	   c->body[STS_POLICY_MAX - 1] == 'x',
	   "exact.test: a body of exactly %d bytes is accepted whole (%zu)", STS_POLICY_MAX,
	   c->body_len);
	c = find_case("multi.test");
	ok(c->status == 200 && c->body != NULL && strcmp(c->body, POLICY) == 0,
	   "multi.test: a dead IPv4 and an IPv6 address before the live one are skipped");
	c = find_case("redirect.test");
	ok(c->status == 301 && strcmp(c->location,
				      "https://mta-sts.ok.test/.well-known/mta-sts.txt") == 0,
	   "redirect.test: status 301 and the Location are reported");
	c = find_case("notfound.test");
	ok(c->status == 404 && c->body == NULL, "notfound.test: status 404, no body handed out");
	c = find_case("html.test");
	ok(strcmp(c->content_type, "text/html") == 0, "html.test: content type kept for the report");
	c = find_case("stall.test");
	double el = (double)(c->t1 - c->t0) / 1e9;
	ok(el >= 1.3 && el < 2.5, "stall.test: gave up after %.2f s (timeout 1.5 s)", el);
	for (size_t i = 0; i < N_CASES; i++) {
		if (!cases[i].during_start)
			continue;
		ok(false, "%s: callback ran inside sts_fetch_policy", cases[i].domain);
	}
	ok(!find_case("bad domain.test")->during_start && !find_case("noaddr.test")->during_start &&
	   !find_case("badaddr.test")->during_start,
	   "requests refused before curl are answered from the loop, not inside the call");
	for (size_t i = 0; i < N_CASES; i++)
		if (cases[i].want != STS_FETCH_OK && cases[i].body != NULL)
			ok(false, "%s: failed fetch handed out a body", cases[i].domain);

	/* What nginx saw. */
	settle_log();
	for (size_t i = 0; i < N_CASES; i++) {
		char host[128];
		c = &cases[i];
		if (strchr(c->domain, ' ') != NULL || c->n_addrs == 0 || c->short_timeout)
			continue;
		if (!with_tls11 && strcmp(c->domain, "tls11.test") == 0)
			continue;
		snprintf(host, sizeof host, "mta-sts.%s", c->domain);
		unsigned n = log_count(host, "GET ");
		ok(n == c->logged, "%s: nginx logged %u request(s), want %u%s", c->domain, n,
		   c->logged, c->want == STS_FETCH_REDIRECT ? " (redirect not followed)" : "");
	}
	char *buf = NULL, *fl[12];
	size_t nf = log_fields("mta-sts.ok.test", &buf, fl);
	ok(nf == 11 && strcmp(fl[1], "mta-sts.ok.test") == 0 &&
	   strcmp(fl[2], "GET /.well-known/mta-sts.txt HTTP/1.1") == 0,
	   "ok.test: SNI and Host mta-sts.ok.test, request 'GET /.well-known/mta-sts.txt HTTP/1.1'");
	if (nf == 11)
		printf("# ok.test log: sni=%s host=%s request=%s status=%s tls=%s ua=%s\n", fl[0],
		       fl[1], fl[2], fl[3], fl[4], fl[5]);
	ok(nf == 11 && (strcmp(fl[4], "TLSv1.2") == 0 || strcmp(fl[4], "TLSv1.3") == 0),
	   "ok.test: TLS 1.2 or later (%s)", nf == 11 ? fl[4] : "?");
	ok(nf == 11 && strcmp(fl[5], "mtasts/0.1") == 0, "ok.test: User-Agent mtasts/0.1");
	ok(nf == 11 && strcmp(fl[6], "-") == 0 && strcmp(fl[7], "-") == 0 && strcmp(fl[8], "-") == 0,
	   "ok.test: no If-Modified-Since/If-None-Match, no Accept-Encoding");
	free(buf);
	nf = log_fields("mta-sts.big.test", &buf, fl);
	ok(nf == 11 && strcmp(fl[9], "70000") == 0,
	   "big.test: nginx sent Content-Length 70000 (refused from the header)");
	free(buf);
	nf = log_fields("mta-sts.chunked.test", &buf, fl);
	ok(nf == 11 && strcmp(fl[9], "-") == 0 && strcmp(fl[10], "chunked") == 0,
	   "chunked.test: nginx sent no Content-Length, chunked (refused while reading)");
	free(buf);
	ok(log_count("mta-sts.tls11.test", "GET ") == 0 || !with_tls11,
	   "tls11.test: no HTTP request over TLS 1.1");

	for (size_t i = 0; i < N_CASES; i++)
		free(cases[i].body);
}

/* ---- probes --------------------------------------------------------------- */

/* The output of a shell command run in tmpdir, trailing newlines removed
 * (owned by the caller), or NULL. */
static char *
sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
sh_out(const char *fmt, ...)
{
	char cmd[1024], *out = NULL;
	int n = snprintf(cmd, sizeof cmd, "cd '%s' && ", tmpdir);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
	va_end(ap);
	FILE *fp = popen(cmd, "r");
	if (fp == NULL)
		return NULL;
	size_t cap = 0, len = 0;
	char buf[512];
	size_t r;
	while ((r = fread(buf, 1, sizeof buf, fp)) > 0) {
		char *nb = realloc(out, cap = len + r + 1);
		if (nb == NULL)
			break;
		out = nb;
		memcpy(out + len, buf, r);
		len += r;
		out[len] = '\0';
	}
	if (pclose(fp) != 0 || out == NULL) {
		free(out);
		return NULL;
	}
	(void)cap;
	while (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
	return out;
}

/* What `openssl x509` says about the test certificate <name>.crt. */
struct certinfo {
	char *subject, *issuer, *sans;   /* RFC 2253 names; "a, b" DNS names */
	long long not_before, not_after;
};

static void
certinfo_read(struct certinfo *ci, const char *name)
{
	char *s;
	memset(ci, 0, sizeof ci[0]);
	ci->subject = sh_out("openssl x509 -in %s.crt -noout -subject -nameopt RFC2253 | "
			     "sed 's/^subject=//'", name);
	ci->issuer = sh_out("openssl x509 -in %s.crt -noout -issuer -nameopt RFC2253 | "
			    "sed 's/^issuer=//'", name);
	ci->sans = sh_out("openssl x509 -in %s.crt -noout -ext subjectAltName | tail -n +2 | "
			  "sed 's/^ *//; s/DNS://g'", name);
	s = sh_out("date -u -d \"$(openssl x509 -in %s.crt -noout -startdate | cut -d= -f2)\" "
		   "+%%s", name);
	ci->not_before = s != NULL ? atoll(s) : -1;
	free(s);
	s = sh_out("date -u -d \"$(openssl x509 -in %s.crt -noout -enddate | cut -d= -f2)\" "
		   "+%%s", name);
	ci->not_after = s != NULL ? atoll(s) : -1;
	free(s);
	if (ci->subject == NULL || ci->issuer == NULL || ci->sans == NULL ||
	    ci->not_before <= 0 || ci->not_after <= 0)
		bail("openssl x509 / date could not read %s.crt", name);
}

static void
certinfo_free(struct certinfo *ci)
{
	free(ci->subject);
	free(ci->issuer);
	free(ci->sans);
}

/* The probe's certificate is exactly the one in <name>.crt. */
static bool
cert_matches(const struct sts_fetch_probe *p, const struct certinfo *ci)
{
	return p->have_cert && strcmp(p->cert_subject, ci->subject) == 0 &&
	       strcmp(p->cert_issuer, ci->issuer) == 0 && strcmp(p->cert_sans, ci->sans) == 0 &&
	       p->cert_not_before == ci->not_before && p->cert_not_after == ci->not_after;
}

struct pcase {
	const char *domain;
	const char *addr;
	bool verify;
	enum sts_fetch_error want;
	/* filled by the callback */
	unsigned calls;
	bool starting, during_start;
	struct sts_fetch_probe p;    /* copy; p.r.body and p.addr cleared */
	char addr_seen[64];
	char *body;
};

#define PCASE(d, a, v, w) { .domain = (d), .addr = (a), .verify = (v), .want = (w) }
static struct pcase pcases[] = {
	PCASE("ok.test", IP_MAIN, true, STS_FETCH_OK),
	PCASE("expired.test", IP_MAIN, true, STS_FETCH_TLS_EXPIRED),
	PCASE("expired.test", IP_MAIN, false, STS_FETCH_OK),
	PCASE("future.test", IP_MAIN, true, STS_FETCH_TLS_EXPIRED),
	PCASE("untrusted.test", IP_MAIN, true, STS_FETCH_TLS_UNTRUSTED),
	PCASE("untrusted.test", IP_MAIN, false, STS_FETCH_OK),
	PCASE("wrongname.test", IP_MAIN, true, STS_FETCH_TLS_NAME),
	PCASE("notfound.test", IP_MAIN, true, STS_FETCH_HTTP_STATUS),
	PCASE("redirect.test", IP_MAIN, false, STS_FETCH_REDIRECT),
	PCASE("big.test", IP_MAIN, false, STS_FETCH_TOO_LARGE),
	PCASE("refused.test", IP_DEAD, true, STS_FETCH_CONNECT),
	PCASE("badaddr.test", "300.1.2.3", true, STS_FETCH_INTERNAL),
};
#define N_PCASES (sizeof pcases / sizeof pcases[0])

static unsigned ppending;

static void
on_probe(void *arg, const struct sts_fetch_probe *p)
{
	struct pcase *c = arg;
	c->calls++;
	c->during_start = c->starting;
	c->p = *p;
	c->p.r.body = NULL;
	c->p.addr = NULL;
	snprintf(c->addr_seen, sizeof c->addr_seen, "%s", p->addr != NULL ? p->addr : "(null)");
	if (p->r.body != NULL) {
		c->body = malloc(p->r.body_len + 1);
		memcpy(c->body, p->r.body, p->r.body_len);
		c->body[p->r.body_len] = '\0';
	}
	ppending--;
}

static struct pcase *
find_pcase(const char *domain, bool verify)
{
	for (size_t i = 0; i < N_PCASES; i++)
		if (strcmp(pcases[i].domain, domain) == 0 && pcases[i].verify == verify)
			return &pcases[i];
	bail("no probe case %s", domain);
}

static bool
tls12_or_13(const char *v)
{
	return strcmp(v, "TLSv1.2") == 0 || strcmp(v, "TLSv1.3") == 0;
}

static void
run_probes(uv_loop_t *loop, const char *ca)
{
	struct sts_fetcher *f = NULL;
	char err[256];
	struct sts_fetch_opts opts = { .ca_file = ca, .timeout_ms = 10000 };
	if (sts_fetcher_new(loop, &opts, &f, err, sizeof err) != 0)
		bail("sts_fetcher_new: %s", err);
	struct certinfo good, expired, future, untrusted, other;
	certinfo_read(&good, "good");
	certinfo_read(&expired, "expired");
	certinfo_read(&future, "future");
	certinfo_read(&untrusted, "untrusted");
	certinfo_read(&other, "other");

	unsigned long started = 0;
	for (size_t i = 0; i < N_PCASES; i++) {
		struct pcase *c = &pcases[i];
		ppending++;
		c->starting = true;
		sts_fetch_probe(f, c->domain, c->addr, c->verify, on_probe, c);
		c->starting = false;
		if (c->want != STS_FETCH_INTERNAL)
			started++;
	}
	uv_run(loop, UV_RUN_DEFAULT);
	ok(ppending == 0, "probes: every probe answered");
	ok(sts_fetch_requests(f) == started, "probes: sts_fetch_requests counts probes (%lu of %lu)",
	   sts_fetch_requests(f), started);
	sts_fetcher_free(&f);
	uv_run(loop, UV_RUN_DEFAULT);

	time_t now = time(NULL);
	for (size_t i = 0; i < N_PCASES; i++) {
		struct pcase *c = &pcases[i];
		const struct sts_fetch_probe *p = &c->p;
		bool good_case = c->calls == 1 && !c->during_start && p->r.error == c->want &&
				 p->verified == c->verify && strcmp(c->addr_seen, c->addr) == 0;
		ok(good_case, "probe %s verify=%s: %s, one callback from the loop, addr and "
		   "verified reported", c->domain, c->verify ? "on" : "off",
		   sts_fetch_error_code(c->want));
		printf("# %s%s [%s] %s verify=%d: %s | %s %s | subject=%s issuer=%s sans=%s "
		       "nb=%lld na=%lld %.3f s\n", good_case ? "" : "GOT ", c->domain, c->addr_seen,
		       sts_fetch_error_code(p->r.error), (int)p->verified, p->r.message,
		       p->tls_version, p->cipher, p->cert_subject, p->cert_issuer,
		       p->cert_sans[0] ? p->cert_sans : "-", (long long)p->cert_not_before,
		       (long long)p->cert_not_after, p->seconds);
	}

	struct pcase *c = find_pcase("ok.test", true);
	ok(c->body != NULL && strcmp(c->body, POLICY) == 0 && c->p.r.body_len == strlen(POLICY) &&
	   c->p.r.http_status == 200 && strcmp(c->p.r.content_type, "text/plain") == 0,
	   "probe ok.test: status 200, text/plain, the policy byte for byte");
	ok(tls12_or_13(c->p.tls_version) && c->p.cipher[0] != '\0',
	   "probe ok.test: TLS version %s, cipher %s", c->p.tls_version, c->p.cipher);
	ok(cert_matches(&c->p, &good),
	   "probe ok.test: subject, issuer, SANs and dates are those of good.crt");
	ok(strcmp(c->p.cert_subject, "CN=mta-sts.ok.test") == 0 &&
	   strstr(c->p.cert_sans, "mta-sts.ok.test") != NULL &&
	   strcmp(c->p.cert_issuer, "CN=mtasts test CA") == 0,
	   "probe ok.test: subject CN=mta-sts.ok.test, SAN mta-sts.ok.test, issuer the test CA");
	ok(c->p.cert_not_before <= now && c->p.cert_not_after > now,
	   "probe ok.test: valid now (not_after %lld in the future)",
	   (long long)c->p.cert_not_after);
	ok(c->p.seconds > 0 && c->p.seconds < 10, "probe ok.test: wall time %.3f s", c->p.seconds);

	c = find_pcase("expired.test", true);
	ok(cert_matches(&c->p, &expired) && c->p.cert_not_before == 1577836800 &&
	   c->p.cert_not_after == 1580515200 && c->p.cert_not_after < now,
	   "probe expired.test verified: the failed handshake still reports the certificate "
	   "(valid 2020-01-01 to 2020-02-01)");
	ok(c->p.tls_version[0] == '\0' && c->p.cipher[0] == '\0' && c->body == NULL &&
	   c->p.r.http_status == 0,
	   "probe expired.test verified: no TLS version or cipher (handshake aborted), no body");
	c = find_pcase("expired.test", false);
	ok(c->body != NULL && strcmp(c->body, POLICY) == 0 && cert_matches(&c->p, &expired) &&
	   c->p.cert_not_after < now && tls12_or_13(c->p.tls_version),
	   "probe expired.test unverified: policy fetched, expired certificate and %s reported",
	   c->p.tls_version);
	c = find_pcase("future.test", true);
	ok(cert_matches(&c->p, &future) && c->p.cert_not_before > now,
	   "probe future.test verified: not_before %lld in the future",
	   (long long)c->p.cert_not_before);
	c = find_pcase("untrusted.test", true);
	ok(cert_matches(&c->p, &untrusted) &&
	   strcmp(c->p.cert_issuer, "CN=mtasts untrusted CA") == 0,
	   "probe untrusted.test verified: issuer is the untrusted CA (%s)", c->p.cert_issuer);
	c = find_pcase("untrusted.test", false);
	ok(c->body != NULL && cert_matches(&c->p, &untrusted),
	   "probe untrusted.test unverified: policy fetched, certificate reported");
	c = find_pcase("wrongname.test", true);
	ok(cert_matches(&c->p, &other) && strcmp(c->p.cert_sans, "mta-sts.other.test") == 0 &&
	   strstr(c->p.r.message, "mta-sts.wrongname.test") != NULL,
	   "probe wrongname.test: SANs show the other name (%s)", c->p.cert_sans);
	ok(tls12_or_13(c->p.tls_version) && c->p.cipher[0] != '\0' && c->body == NULL,
	   "probe wrongname.test: the handshake completed before the name check (%s), no body",
	   c->p.tls_version);
	c = find_pcase("notfound.test", true);
	ok(c->p.r.http_status == 404 && c->body == NULL && cert_matches(&c->p, &good),
	   "probe notfound.test: status 404, no body, certificate reported");
	c = find_pcase("redirect.test", false);
	ok(c->p.r.http_status == 301 &&
	   strcmp(c->p.r.location, "https://mta-sts.ok.test/.well-known/mta-sts.txt") == 0 &&
	   c->body == NULL, "probe redirect.test unverified: the redirect is reported, not followed");
	c = find_pcase("big.test", false);
	ok(c->body == NULL && strstr(c->p.r.message, "70000") != NULL,
	   "probe big.test unverified: the size cap holds");
	c = find_pcase("refused.test", true);
	ok(!c->p.have_cert && c->p.tls_version[0] == '\0' && c->p.cipher[0] == '\0' &&
	   c->p.cert_subject[0] == '\0' && strstr(c->p.r.message, IP_DEAD ":443") != NULL,
	   "probe refused.test: connect error, no TLS or certificate details");
	c = find_pcase("badaddr.test", true);
	ok(!c->p.have_cert && strstr(c->p.r.message, "invalid address") != NULL,
	   "probe badaddr.test: refused before curl, answered from the loop");
	for (size_t i = 0; i < N_PCASES; i++)
		free(pcases[i].body);

	/* Cancelled: a probe stalled in curl and a probe that never reached it. */
	struct pcase stall = PCASE("stall.test", IP_MAIN, true, STS_FETCH_INTERNAL);
	struct pcase noaddr = PCASE("noaddr.test", NULL, true, STS_FETCH_INTERNAL);
	if (sts_fetcher_new(loop, &opts, &f, err, sizeof err) != 0)
		bail("sts_fetcher_new: %s", err);
	ppending = 2;
	sts_fetch_probe(f, stall.domain, stall.addr, stall.verify, on_probe, &stall);
	sts_fetch_probe(f, noaddr.domain, noaddr.addr, noaddr.verify, on_probe, &noaddr);
	bool none_yet = stall.calls == 0 && noaddr.calls == 0;
	sts_fetcher_free(&f);
	uv_run(loop, UV_RUN_DEFAULT);
	ok(none_yet && stall.calls == 1 && stall.p.r.error == STS_FETCH_INTERNAL &&
	   strcmp(stall.p.r.message, "cancelled") == 0 && strcmp(stall.addr_seen, IP_MAIN) == 0 &&
	   noaddr.calls == 1 && noaddr.p.r.error == STS_FETCH_INTERNAL,
	   "sts_fetcher_free cancels probes: one callback each, fetch.internal 'cancelled'");
	free(stall.body);
	free(noaddr.body);
	certinfo_free(&good);
	certinfo_free(&expired);
	certinfo_free(&future);
	certinfo_free(&untrusted);
	certinfo_free(&other);
}

/* ---- cancellation ------------------------------------------------------ */

struct cancel_state {
	unsigned calls[4];
	enum sts_fetch_error err[4];
	char msg[4][256];
	struct sts_fetcher *f;
	bool free_in_cb;             /* the first callback frees the fetcher */
};

struct cancel_arg {
	struct cancel_state *st;
	int i;
};

static void
on_cancel_result(void *arg, const struct sts_fetch_result *res)
{
	struct cancel_arg *a = arg;
	a->st->calls[a->i]++;
	a->st->err[a->i] = res->error;
	snprintf(a->st->msg[a->i], sizeof a->st->msg[a->i], "%s", res->message);
	if (a->st->free_in_cb && a->i == 0) {
		sts_fetcher_free(&a->st->f);
		sts_fetcher_free(&a->st->f);   /* NULL now: a no-op */
	}
}

static void
on_cancel_timer(uv_timer_t *t)
{
	struct cancel_state *st = t->data;
	sts_fetcher_free(&st->f);
	uv_close((uv_handle_t *)t, NULL);
}

static void
run_cancel(uv_loop_t *loop, const char *ca)
{
	char err[256];
	struct sts_fetch_opts opts = { .ca_file = ca, .timeout_ms = 10000 };
	const char *main_ip[] = { IP_MAIN };

	/* Freed from a timer while two transfers stall and one request waits
	 * for the loop. */
	struct cancel_state st;
	memset(&st, 0, sizeof st);
	struct cancel_arg a[3] = { { &st, 0 }, { &st, 1 }, { &st, 2 } };
	if (sts_fetcher_new(loop, &opts, &st.f, err, sizeof err) != 0)
		bail("sts_fetcher_new: %s", err);
	sts_fetch_policy(st.f, "cancel.test", main_ip, 1, on_cancel_result, &a[0]);
	sts_fetch_policy(st.f, "stall.test", main_ip, 1, on_cancel_result, &a[1]);
	uv_timer_t t;
	uv_timer_init(loop, &t);
	t.data = &st;
	uv_timer_start(&t, on_cancel_timer, 500, 0);
	uint64_t t0 = uv_hrtime();
	uv_run(loop, UV_RUN_DEFAULT);
	double el = (double)(uv_hrtime() - t0) / 1e9;
	bool good = true;
	for (int i = 0; i < 2; i++)
		good = good && st.calls[i] == 1 && st.err[i] == STS_FETCH_INTERNAL &&
		       strcmp(st.msg[i], "cancelled") == 0;
	ok(good && st.f == NULL, "sts_fetcher_free cancels stalled transfers: one callback each, "
				 "fetch.internal 'cancelled'");
	ok(el < 2.0, "the loop ran dry %.2f s after the free (handles closed)", el);

	/* Freed from inside a callback: the other transfer is cancelled, the
	 * deferred failure too, and nothing is touched afterwards. */
	memset(&st, 0, sizeof st);
	st.free_in_cb = true;
	if (sts_fetcher_new(loop, &opts, &st.f, err, sizeof err) != 0)
		bail("sts_fetcher_new: %s", err);
	sts_fetch_policy(st.f, "ok.test", main_ip, 1, on_cancel_result, &a[0]);
	sts_fetch_policy(st.f, "cancel.test", main_ip, 1, on_cancel_result, &a[1]);
	uv_run(loop, UV_RUN_DEFAULT);
	ok(st.calls[0] == 1 && st.err[0] == STS_FETCH_OK && st.calls[1] == 1 &&
	   st.err[1] == STS_FETCH_INTERNAL && strcmp(st.msg[1], "cancelled") == 0 && st.f == NULL,
	   "sts_fetcher_free inside a callback: the finished fetch reports, the other is cancelled");

	/* Freed before the loop ever ran: the deferred failure is cancelled. */
	memset(&st, 0, sizeof st);
	if (sts_fetcher_new(loop, &opts, &st.f, err, sizeof err) != 0)
		bail("sts_fetcher_new: %s", err);
	sts_fetch_policy(st.f, "noaddr.test", NULL, 0, on_cancel_result, &a[2]);
	sts_fetch_policy(st.f, "stall.test", main_ip, 1, on_cancel_result, &a[1]);
	ok(st.calls[2] == 0 && st.calls[1] == 0, "nothing answered inside sts_fetch_policy");
	sts_fetcher_free(&st.f);
	ok(st.calls[2] == 1 && st.calls[1] == 1 && st.err[2] == STS_FETCH_INTERNAL &&
	   st.err[1] == STS_FETCH_INTERNAL,
	   "sts_fetcher_free before the loop ran: both requests cancelled at once");
	uv_run(loop, UV_RUN_DEFAULT);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *nginx = getenv("NGINX");
	if (nginx == NULL || access(nginx, X_OK) != 0)
		nginx = find_tool("nginx");
	if (nginx == NULL)
		bail("nginx not found: apt-get install nginx-light");
	char nginx_path[512];
	snprintf(nginx_path, sizeof nginx_path, "%s", nginx);
	if (find_tool("openssl") == NULL)
		bail("openssl not found: apt-get install openssl");
	if (access(ECHO_MODULE, R_OK) != 0)
		bail("nginx echo module not found (" ECHO_MODULE "): apt-get install nginx-light");

	/* Environment proxies must be ignored: point them at a dead port. */
	setenv("https_proxy", "http://" IP_DEAD ":1", 1);
	setenv("HTTPS_PROXY", "http://" IP_DEAD ":1", 1);
	setenv("all_proxy", "http://" IP_DEAD ":1", 1);
	setenv("ALL_PROXY", "http://" IP_DEAD ":1", 1);
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");

	const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	snprintf(tmpdir, sizeof tmpdir, "%s/mtasts-fetch-XXXXXX", base);
	if (mkdtemp(tmpdir) == NULL) {
		tmpdir[0] = '\0';
		bail("mkdtemp: %s", strerror(errno));
	}
	chmod(tmpdir, 0755);
	atexit(cleanup_at_exit);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);

	make_pki();
	mkdirs("www/big/.well-known");
	mkdirs("www/exact/.well-known");
	char *big = malloc(70000);
	if (big == NULL)
		bail("out of memory");
	memset(big, 'x', 70000);
	write_file(tpath("www/big/.well-known/mta-sts.txt"), big, 70000);
	write_file(tpath("www/exact/.well-known/mta-sts.txt"), big, STS_POLICY_MAX);
	free(big);
	write_nginx_conf();
	start_nginx(nginx_path);
	bool with_tls11 = tls11_server_works();
	if (!with_tls11)
		printf("# this nginx/OpenSSL cannot serve TLS 1.1; the TLS 1.1 case is left out\n");

	uv_loop_t loop;
	uv_loop_init(&loop);
	char ca[512];
	snprintf(ca, sizeof ca, "%s", tpath("ca.crt"));
	run_cases(&loop, ca, with_tls11);
	run_probes(&loop, ca);
	run_cancel(&loop, ca);
	int lc = uv_loop_close(&loop);
	ok(lc == 0, "uv_loop_close: every handle closed (%s)", lc == 0 ? "ok" : uv_strerror(lc));
	if (tap_failed > 0) {
		diag_file("error.log", tpath("error.log"), 30);
		diag_file("access.log", tpath("access.log"), 40);
	}
	printf("1..%u\n", tap_n);
	curl_global_cleanup();
	return tap_failed > 0 ? 1 : 0;
}
