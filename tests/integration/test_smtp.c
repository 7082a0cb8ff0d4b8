/* test_smtp.c: the SMTP STARTTLS probe against a real Postfix, speaking TAP.
 *
 * tests/integration/smtp_postfix.sh makes a private PKI and a private
 * Postfix instance in a temporary directory (`postfix -c DIR/etc`), one
 * smtpd service per scenario on its own address 127.0.71.1-9 port 25: a
 * valid chain, no STARTTLS, expired, another name, an untrusted CA, TLS 1.1
 * only, wildcards, CN without subjectAltName, certificate chosen by SNI.
 * Next to it this program runs its own scripted servers on the same loop
 * (127.0.71.20-30 port 25, and [::1] on a free port) for what Postfix will
 * not do: stay silent, answer 554, a multi-line banner cut mid-line, an
 * endless reply, garbage, refuse STARTTLS, close early, plaintext after
 * the STARTTLS reply, no TLS after it, a stalled handshake, a QUIT never
 * answered. Then cancellation: a prober freed with probes in flight (also
 * inside the handshake), and freed from inside a callback.
 *
 * Postfix's maillog proves what went over the wire: SNI ("to
 * mail.sni.test") and the QUIT inside TLS ("ehlo=1 starttls=1 quit=1").
 * Postfix or openssl missing is a failure ("Bail out!"), never a skip. The
 * instance is stopped at exit, on signals, and, should this process have
 * been killed outright, by the next run (the directory's owner.pid is
 * dead). The system Postfix is never used; if it holds port 25 the test
 * says so and stops. */
#include <arpa/inet.h>
#include <errno.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <mtasts/smtp.h>

#include "tap.h"

#define TMP_PREFIX "/tmp/mtasts-smtp."
#define HELO "probe.mtasts.test"
#define SILENT_TIMEOUT_MS 800u
#define FAKE_TIMEOUT_MS 3000u

/* ---- TAP ---------------------------------------------------------------- */

static char tmpdir[256];
static char script[512];
static volatile pid_t master_pid = -1;
static bool postfix_up;




/* ---- environment: tools, files, Postfix ------------------------------------ */

static const char *
tpath(const char *rel)
{
	static char p[8][512];
	static unsigned i;
	char *out = p[i++ % 8];
	snprintf(out, sizeof p[0], "%s/%s", tmpdir, rel);
	return out;
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
			if (nb == NULL)
				free(buf);
			buf = nb;
		}
	}
	fclose(fp);
	if (buf != NULL)
		buf[n] = '\0';
	return buf;
}


static int
run_script(const char *cmd, const char *dir, const char *log)
{
	char line[1400];
	snprintf(line, sizeof line, "PATH=\"$PATH:/usr/sbin:/sbin\" sh '%s' %s '%s' > '%s' 2>&1",
		 script, cmd, dir, log);
	return system(line);
}

static void
rm_rf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static void
cleanup_at_exit(void)
{
	if (postfix_up) {
		if (run_script("down", tmpdir, "/dev/null") != 0 && master_pid > 0)
			kill(master_pid, SIGTERM);
		postfix_up = false;
	}
	if (tmpdir[0] != '\0' && getenv("MTASTS_KEEP_TMP") == NULL)
		rm_rf(tmpdir);
	else if (tmpdir[0] != '\0')
		fprintf(stderr, "kept %s\n", tmpdir);
}

static void
on_alarm(int sig)
{
	static const char msg[] = "Bail out! the test took more than 170 s\n";
	(void)sig;
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(1);
	if (master_pid > 0)
		kill(master_pid, SIGTERM);
	_exit(1);
}

static void
on_signal(int sig)
{
	/* Only async-signal-safe calls: SIGTERM to the master is "postfix
	 * abort" (it takes its children along). The next run removes the
	 * directory. */
	if (master_pid > 0)
		kill(master_pid, SIGTERM);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Whether pid is a live test_smtp: not gone, not a zombie whose parent
 * has yet to reap it, not a reused number. */
static bool
owner_alive(long pid)
{
	char path[64], buf[512];
	if (pid <= 0)
		return false;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	char *close = strrchr(buf, ')');
	char *open = strchr(buf, '(');
	if (open == NULL || close == NULL || close[1] != ' ' || close[2] == 'Z')
		return false;
	return strncmp(open + 1, "test_smtp", 9) == 0;
}

/* Instances of runs that died without cleaning up: their owner is gone. */
static void
reap_stale(void)
{
	glob_t g;
	if (glob(TMP_PREFIX "*", GLOB_NOSORT, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char path[600];
		snprintf(path, sizeof path, "%s/owner.pid", g.gl_pathv[i]);
		FILE *fp = fopen(path, "r");
		long pid = 0;
		if (fp != NULL) {
			if (fscanf(fp, "%ld", &pid) != 1)
				pid = 0;
			fclose(fp);
		}
		if (owner_alive(pid))
			continue;   /* a run in progress */
		printf("# removing the instance of a dead run: %s\n", g.gl_pathv[i]);
		run_script("down", g.gl_pathv[i], "/dev/null");
		rm_rf(g.gl_pathv[i]);
	}
	globfree(&g);
}

static bool
port_open(int family, const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
		sa->sin_family = AF_INET;
		sa->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &sa->sin_addr);
		len = sizeof *sa;
	} else {
		struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;
		sa->sin6_family = AF_INET6;
		sa->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &sa->sin6_addr);
		len = sizeof *sa;
	}
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	bool up = connect(s, (struct sockaddr *)&ss, len) == 0;
	close(s);
	return up;
}

static void
start_postfix(void)
{
	for (int i = 1; i <= 9; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "127.0.71.%d", i);
		if (port_open(AF_INET, ip, 25))
			bail("something already listens on %s:25: the system Postfix "
			     "(systemctl stop postfix; systemctl disable postfix), or another "
			     "run of this test (" TMP_PREFIX "*/owner.pid)", ip);
	}
	postfix_up = true;   /* from here on, "down" at exit */
	if (run_script("up", tmpdir, tpath("up.log")) != 0) {
		diag_file("up", tpath("up.log"), 40);
		diag_file("maillog", tpath("maillog"), 40);
		bail("cannot start the test Postfix (see above)");
	}
	char *pid = read_all(tpath("queue/pid/master.pid"));
	if (pid != NULL)
		master_pid = (pid_t)atol(pid);
	free(pid);
	for (int t = 0; t < 100; t++) {
		bool all = true;
		for (int i = 1; i <= 9 && all; i++) {
			char ip[32];
			snprintf(ip, sizeof ip, "127.0.71.%d", i);
			all = port_open(AF_INET, ip, 25);
		}
		if (all)
			return;
		usleep(50000);
	}
	diag_file("maillog", tpath("maillog"), 40);
	bail("the test Postfix does not listen on 127.0.71.1-9:25 after 5 s");
}

/* Whether this machine's Postfix/OpenSSL can serve TLS 1.1 at all; without
 * that the TLS 1.1 case would prove nothing, so it is left out. */
static bool
tls11_server_works(void)
{
	char cmd[640];
	snprintf(cmd, sizeof cmd,
		 "openssl s_client -starttls smtp -connect 127.0.71.6:25 -tls1_1 "
		 "-cipher DEFAULT@SECLEVEL=0 < /dev/null > '%s' 2>&1", tpath("tls11.out"));
	if (system(cmd) != 0)
		return false;
	char *out = read_all(tpath("tls11.out"));
	bool yes = out != NULL && strstr(out, "TLSv1.1") != NULL;
	free(out);
	return yes;
}

/* Lines of the maillog that contain every given string; waits up to 3 s
 * for at least `want` of them (postlogd writes behind our back). */
static unsigned
maillog_count(unsigned want, const char *a, const char *b, const char *c)
{
	unsigned n = 0;
	for (int t = 0; t < 60; t++) {
		char *log = read_all(tpath("maillog"));
		n = 0;
		for (char *l = log; l != NULL && *l != '\0';) {
			char *nl = strchr(l, '\n');
			if (nl != NULL)
				*nl = '\0';
			if (strstr(l, a) != NULL && (b == NULL || strstr(l, b) != NULL) &&
			    (c == NULL || strstr(l, c) != NULL))
				n++;
			l = nl != NULL ? nl + 1 : NULL;
		}
		free(log);
		if (n >= want)
			break;
		usleep(50000);
	}
	return n;
}

/* ---- scripted servers ------------------------------------------------------ */

enum fake_kind {
	FK_SILENT,        /* accepts, never writes */
	FK_554,           /* banner 554 */
	FK_MULTI,         /* multi-line banner in two writes cut mid-line; STARTTLS -> 454 */
	FK_ENDLESS,       /* 220- lines without end */
	FK_GARBAGE,       /* an HTTP answer for a banner */
	FK_NOREPLY_TLS,   /* offers STARTTLS, never answers it */
	FK_CLOSE_EHLO,    /* closes on EHLO */
	FK_INJECT,        /* "220 go ahead" plus a plaintext line after it */
	FK_NOT_TLS,       /* "220 go ahead", then plaintext instead of TLS */
	FK_TLS_STALL,     /* "220 go ahead", then swallows the ClientHello */
	FK_QUIT_DEAF,     /* no STARTTLS, and QUIT is never answered */
	FK_V6_NOTLS,      /* IPv6; EHLO with STARTTLS look-alikes only */
	FK_N
};

static const char *const fake_ip[FK_N] = {
	"127.0.71.20", "127.0.71.21", "127.0.71.22", "127.0.71.23", "127.0.71.24",
	"127.0.71.25", "127.0.71.26", "127.0.71.27", "127.0.71.28", "127.0.71.29",
	"127.0.71.30", "::1",
};

struct fake_srv {
	uv_tcp_t tcp;
	enum fake_kind kind;
	bool open;
	unsigned conns;
	unsigned quits;            /* QUIT commands seen */
	unsigned eofs;             /* connections the client closed */
	char ehlo[128];            /* the last EHLO line seen */
};

struct fake_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;          /* FK_MULTI: the second half of the banner */
	struct fake_srv *srv;
	char in[1024];
	size_t in_len;
	bool tls_phase;            /* FK_NOT_TLS: after "220 go ahead" */
	bool closing;
	int handles;
};

static struct fake_srv fakes[FK_N];
static unsigned v6_port;

static void
fake_conn_closed(uv_handle_t *h)
{
	struct fake_conn *c = h->data;
	if (--c->handles == 0)
		free(c);
}

static void
fake_close(struct fake_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->timer, fake_conn_closed);
	uv_close((uv_handle_t *)&c->tcp, fake_conn_closed);
}

static void
fake_written(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

static void
fake_send(struct fake_conn *c, const char *s, size_t n)
{
	if (c->closing)
		return;
	uv_write_t *req = malloc(sizeof *req + n);
	if (req == NULL)
		bail("out of memory");
	char *copy = (char *)(req + 1);
	memcpy(copy, s, n);
	uv_buf_t b = uv_buf_init(copy, (unsigned)n);
	if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, fake_written) != 0)
		free(req);
}

static void
fake_say(struct fake_conn *c, const char *s)
{
	fake_send(c, s, strlen(s));
}

static void
fake_second_half(uv_timer_t *t)
{
	fake_say(t->data, "st line\r\n220-second line\r\n220 fake.test ready\r\n");
}

static void
fake_line(struct fake_conn *c, const char *line)
{
	struct fake_srv *s = c->srv;
	if (strncasecmp(line, "QUIT", 4) == 0) {
		s->quits++;
		if (s->kind == FK_QUIT_DEAF)
			return;
		fake_say(c, "221 2.0.0 bye\r\n");
		fake_close(c);
		return;
	}
	if (strncasecmp(line, "EHLO", 4) == 0) {
		snprintf(s->ehlo, sizeof s->ehlo, "%s", line);
		switch (s->kind) {
		case FK_MULTI:
			fake_say(c, "250-fake.test\r\n250-PIPELINING\r\n250-starttls\r\n"
				    "250 8BITMIME\r\n");
			break;
		case FK_CLOSE_EHLO:
			fake_close(c);
			break;
		case FK_QUIT_DEAF:
			fake_say(c, "250-fake.test\r\n250 SIZE 1000\r\n");
			break;
		case FK_V6_NOTLS:
			fake_say(c, "250-STARTTLS.fake.test\r\n250-STARTTLSX\r\n"
				    "250-X-STARTTLS\r\n250 SIZE 1000\r\n");
			break;
		default:
			fake_say(c, "250-fake.test\r\n250 STARTTLS\r\n");
			break;
		}
		return;
	}
	if (strncasecmp(line, "STARTTLS", 8) == 0) {
		switch (s->kind) {
		case FK_MULTI:
			fake_say(c, "454 4.7.0 TLS not available due to local problem\r\n");
			break;
		case FK_NOREPLY_TLS:
			break;
		case FK_INJECT:
			fake_say(c, "220 2.0.0 go ahead\r\n250 injected\r\n");
			break;
		case FK_NOT_TLS:
			fake_say(c, "220 2.0.0 go ahead\r\n");
			c->tls_phase = true;
			break;
		case FK_TLS_STALL:
			fake_say(c, "220 2.0.0 go ahead\r\n");
			c->tls_phase = true;
			break;
		default:
			fake_say(c, "502 5.5.1 no\r\n");
			break;
		}
		return;
	}
	fake_say(c, "500 5.5.2 what?\r\n");
}

static void
fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char scratch[65536];
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(scratch, sizeof scratch);
}

static void
fake_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct fake_conn *c = st->data;
	if (nread < 0) {
		if (nread == UV_EOF)
			c->srv->eofs++;
		fake_close(c);
		return;
	}
	if (c->tls_phase && c->srv->kind == FK_TLS_STALL)
		return;
	if (c->tls_phase) {
		/* A ClientHello: answer with something that is not TLS. */
		fake_say(c, "this is not TLS at all\r\n");
		c->tls_phase = false;
		return;
	}
	for (ssize_t i = 0; i < nread && !c->closing; i++) {
		char ch = buf->base[i];
		if (ch == '\n') {
			if (c->in_len > 0 && c->in[c->in_len - 1] == '\r')
				c->in_len--;
			c->in[c->in_len] = '\0';
			c->in_len = 0;
			fake_line(c, c->in);
		} else if (c->in_len + 1 < sizeof c->in) {
			c->in[c->in_len++] = ch;
		}
	}
}

static void
fake_accept(uv_stream_t *server, int status)
{
	struct fake_srv *s = server->data;
	if (status < 0)
		return;
	struct fake_conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		bail("out of memory");
	c->srv = s;
	uv_tcp_init(server->loop, &c->tcp);
	uv_timer_init(server->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		fake_close(c);
		return;
	}
	s->conns++;
	uv_read_start((uv_stream_t *)&c->tcp, fake_alloc, fake_read);
	switch (s->kind) {
	case FK_SILENT:
		break;
	case FK_554:
		fake_say(c, "554 5.7.1 no SMTP service here\r\n");
		break;
	case FK_MULTI:
		/* Cut inside a line; the rest 50 ms later. */
		fake_say(c, "220-fake.test fir");
		uv_timer_start(&c->timer, fake_second_half, 50, 0);
		break;
	case FK_ENDLESS: {
		char line[101];
		memset(line, 'x', sizeof line);
		memcpy(line, "220-", 4);
		line[98] = '\r';
		line[99] = '\n';
		for (int i = 0; i < 250; i++)   /* 25 000 bytes, no final line */
			fake_send(c, line, 100);
		break;
	}
	case FK_GARBAGE:
		fake_say(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
		break;
	default:
		fake_say(c, "220 fake.test ESMTP\r\n");
		break;
	}
}

static void
fakes_start(uv_loop_t *loop)
{
	for (int k = 0; k < FK_N; k++) {
		struct fake_srv *s = &fakes[k];
		s->kind = (enum fake_kind)k;
		uv_tcp_init(loop, &s->tcp);
		s->tcp.data = s;
		s->open = true;
		union {
			struct sockaddr sa;
			struct sockaddr_in in4;
			struct sockaddr_in6 in6;
		} a;
		int rc = k == FK_V6_NOTLS ? uv_ip6_addr(fake_ip[k], 0, &a.in6)
					  : uv_ip4_addr(fake_ip[k], 25, &a.in4);
		if (rc == 0)
			rc = uv_tcp_bind(&s->tcp, &a.sa, 0);
		if (rc == 0)
			rc = uv_listen((uv_stream_t *)&s->tcp, 64, fake_accept);
		if (rc != 0)
			bail("cannot listen on %s%s: %s", fake_ip[k],
			     k == FK_V6_NOTLS ? " (IPv6 loopback)" : ":25", uv_strerror(rc));
		if (k == FK_V6_NOTLS) {
			int len = sizeof a;
			uv_tcp_getsockname(&s->tcp, &a.sa, &len);
			v6_port = ntohs(a.in6.sin6_port);
		}
	}
}

static void
fakes_stop(void)
{
	for (int k = 0; k < FK_N; k++)
		if (fakes[k].open) {
			uv_close((uv_handle_t *)&fakes[k].tcp, NULL);
			fakes[k].open = false;
		}
}

/* ---- probe cases ------------------------------------------------------------ */

enum prober_id { PR_CA, PR_SYSTEM, PR_FAKE, PR_SILENT, PR_V6, PR_N };

struct pcase {
	const char *name;
	enum prober_id prober;
	const char *host;
	const char *addr;
	enum sts_smtp_error want;
	enum sts_smtp_cert want_cert;
	const char *msg_has;        /* substring of message, or NULL */
	const char *cert_msg_has;   /* substring of cert_message, or NULL */
	bool optional;              /* left out when the server cannot do it */
	/* filled by the callback */
	unsigned calls;
	bool during_call;           /* callback ran inside sts_smtp_probe */
	struct sts_smtp_result r;
	char host_seen[256], addr_seen[64];
	double wall;                /* seconds from probe to callback */
	uint64_t t0;
};

#define C(n, p, h, a, w, wc, m, cm) \
	{ .name = (n), .prober = (p), .host = (h), .addr = (a), .want = (w), \
	  .want_cert = (wc), .msg_has = (m), .cert_msg_has = (cm) }
static struct pcase cases[] = {
	/* Postfix */
	C("valid chain", PR_CA, "mail.good.test", "127.0.71.1", STS_SMTP_OK,
	  STS_SMTP_CERT_VALID, "certificate valid for mail.good.test", NULL),
	C("valid, MX name with a final dot", PR_CA, "mail.good.test.", "127.0.71.1", STS_SMTP_OK,
	  STS_SMTP_CERT_VALID, NULL, NULL),
	C("valid, second SAN in upper case", PR_CA, "MX2.GOOD.TEST", "127.0.71.1", STS_SMTP_OK,
	  STS_SMTP_CERT_VALID, NULL, NULL),
	C("no STARTTLS", PR_CA, "mail.notls.test", "127.0.71.2", STS_SMTP_NO_STARTTLS,
	  STS_SMTP_CERT_NONE, "no STARTTLS in EHLO reply", NULL),
	C("expired", PR_CA, "mail.expired.test", "127.0.71.3", STS_SMTP_OK, STS_SMTP_CERT_EXPIRED,
	  "certificate expired", "certificate has expired"),
	C("another name", PR_CA, "mail.good.test", "127.0.71.4", STS_SMTP_OK, STS_SMTP_CERT_NAME,
	  "host-mismatch", "no DNS name matches mail.good.test"),
	C("another name, probed as that name", PR_CA, "mail.other.test", "127.0.71.4",
	  STS_SMTP_OK, STS_SMTP_CERT_VALID, NULL, NULL),
	C("untrusted CA", PR_CA, "mail.untrusted.test", "127.0.71.5", STS_SMTP_OK,
	  STS_SMTP_CERT_UNTRUSTED, "certificate untrusted", "unable to get local issuer"),
	C("expired and another name: expired wins", PR_CA, "mail.other.test", "127.0.71.3",
	  STS_SMTP_OK, STS_SMTP_CERT_EXPIRED, NULL, "expired"),
	C("untrusted and another name: untrusted wins", PR_CA, "mail.good.test", "127.0.71.5",
	  STS_SMTP_OK, STS_SMTP_CERT_UNTRUSTED, NULL, "unable to get local issuer"),
	{ .name = "TLS 1.1 only (rule 61)", .prober = PR_CA, .host = "mail.good.test",
	  .addr = "127.0.71.6", .want = STS_SMTP_TLS, .want_cert = STS_SMTP_CERT_NONE,
	  .msg_has = "TLS handshake with mail.good.test failed", .optional = true },
	C("wildcard *.wild.test", PR_CA, "mx1.wild.test", "127.0.71.7", STS_SMTP_OK,
	  STS_SMTP_CERT_VALID, NULL, NULL),
	C("wildcard covers one label only", PR_CA, "a.mx1.wild.test", "127.0.71.7", STS_SMTP_OK,
	  STS_SMTP_CERT_NAME, NULL, NULL),
	C("partial wildcard mx*.part.test refused", PR_CA, "mx1.part.test", "127.0.71.7",
	  STS_SMTP_OK, STS_SMTP_CERT_NAME, NULL, NULL),
	C("CN without subjectAltName does not count", PR_CA, "mail.cnonly.test", "127.0.71.8",
	  STS_SMTP_OK, STS_SMTP_CERT_NAME, NULL, NULL),
	C("SNI picks the certificate (rules 56, 58)", PR_CA, "mail.sni.test", "127.0.71.9",
	  STS_SMTP_OK, STS_SMTP_CERT_VALID, NULL, NULL),
	C("system trust store does not know the test CA", PR_SYSTEM, "mail.good.test",
	  "127.0.71.1", STS_SMTP_OK, STS_SMTP_CERT_UNTRUSTED, NULL, "unable to get local issuer"),
	C("nothing listening", PR_CA, "mail.dead.test", "127.0.71.250", STS_SMTP_CONNECT,
	  STS_SMTP_CERT_NONE, "connect to 127.0.71.250 port 25: connection refused", NULL),
	C("not an address", PR_CA, "mail.good.test", "mail.good.test", STS_SMTP_INTERNAL,
	  STS_SMTP_CERT_NONE, "not an IP address", NULL),
	C("no host name", PR_CA, "", "127.0.71.1", STS_SMTP_INTERNAL, STS_SMTP_CERT_NONE,
	  "no MX host name", NULL),
	/* scripted servers */
	C("silent server", PR_SILENT, "mail.silent.test", "127.0.71.20", STS_SMTP_TIMEOUT,
	  STS_SMTP_CERT_NONE, "no banner within 0.8 s", NULL),
	C("banner 554", PR_FAKE, "mail.554.test", "127.0.71.21", STS_SMTP_PROTOCOL,
	  STS_SMTP_CERT_NONE, "banner is not 220: \"554 5.7.1 no SMTP service here\"", NULL),
	C("multi-line banner; STARTTLS refused", PR_FAKE, "mail.multi.test", "127.0.71.22",
	  STS_SMTP_STARTTLS_REFUSED, STS_SMTP_CERT_NONE,
	  "STARTTLS refused: \"454 4.7.0 TLS not available due to local problem\"", NULL),
	C("endless reply", PR_FAKE, "mail.endless.test", "127.0.71.23", STS_SMTP_PROTOCOL,
	  STS_SMTP_CERT_NONE, "banner longer than 16384 bytes", NULL),
	C("garbage banner", PR_FAKE, "mail.http.test", "127.0.71.24", STS_SMTP_PROTOCOL,
	  STS_SMTP_CERT_NONE, "malformed banner: \"HTTP/1.1 400 Bad Request\"", NULL),
	C("STARTTLS never answered", PR_SILENT, "mail.stall.test", "127.0.71.25",
	  STS_SMTP_TIMEOUT, STS_SMTP_CERT_NONE, "no STARTTLS reply within 0.8 s", NULL),
	C("closed on EHLO", PR_FAKE, "mail.close.test", "127.0.71.26", STS_SMTP_PROTOCOL,
	  STS_SMTP_CERT_NONE, "connection closed by the server while waiting for the EHLO reply",
	  NULL),
	C("plaintext after the STARTTLS reply", PR_FAKE, "mail.inject.test", "127.0.71.27",
	  STS_SMTP_PROTOCOL, STS_SMTP_CERT_NONE, "plaintext injected before TLS", NULL),
	C("no TLS after STARTTLS", PR_FAKE, "mail.nottls.test", "127.0.71.28", STS_SMTP_TLS,
	  STS_SMTP_CERT_NONE, "TLS handshake with mail.nottls.test failed", NULL),
	C("TLS handshake never finishes", PR_SILENT, "mail.tlsstall.test", "127.0.71.29",
	  STS_SMTP_TIMEOUT, STS_SMTP_CERT_NONE, "TLS handshake not finished within 0.8 s", NULL),
	C("QUIT never answered", PR_FAKE, "mail.deaf.test", "127.0.71.30", STS_SMTP_NO_STARTTLS,
	  STS_SMTP_CERT_NONE, "no STARTTLS in EHLO reply", NULL),
	C("IPv6; STARTTLS look-alikes are not STARTTLS", PR_V6, "mail.v6.test", "::1",
	  STS_SMTP_NO_STARTTLS, STS_SMTP_CERT_NONE, "no STARTTLS in EHLO reply", NULL),
};
#undef C
#define N_CASES (sizeof cases / sizeof cases[0])

static unsigned pending;
static bool in_probe_call;

static void
on_result(void *arg, const struct sts_smtp_result *r)
{
	struct pcase *c = arg;
	c->calls++;
	c->during_call = in_probe_call;
	c->wall = (double)(uv_hrtime() - c->t0) / 1e9;
	c->r = *r;
	snprintf(c->host_seen, sizeof c->host_seen, "%s", r->host ? r->host : "(null)");
	snprintf(c->addr_seen, sizeof c->addr_seen, "%s", r->addr ? r->addr : "(null)");
	c->r.host = c->host_seen;
	c->r.addr = c->addr_seen;
	printf("# %s: %s@%s -> %s [%s] %s | banner \"%s\" | %s %s | cert %s: %s | %s | %s"
	       " | SANs %s | %.3f s\n",
	       c->name, r->host, r->addr, sts_smtp_error_code(r->error), r->message,
	       r->starttls_offered ? "starttls" : "-", r->banner, r->tls_version, r->cipher,
	       sts_smtp_cert_name(r->cert), r->cert_message, r->cert_subject, r->cert_issuer,
	       r->cert_sans, r->seconds);
	pending--;
}

static struct pcase *
find_case(const char *name)
{
	for (size_t i = 0; i < N_CASES; i++)
		if (strcmp(cases[i].name, name) == 0)
			return &cases[i];
	bail("no case %s", name);
}

static void
new_prober(uv_loop_t *loop, struct sts_smtp_opts *o, struct sts_smtp_prober **out)
{
	char err[256];
	if (sts_smtp_prober_new(loop, o, out, err, sizeof err) != 0)
		bail("sts_smtp_prober_new: %s", err);
}

static void
run_cases(uv_loop_t *loop, const char *ca, bool with_tls11)
{
	struct sts_smtp_prober *pr[PR_N];
	struct sts_smtp_opts o[PR_N] = {
		[PR_CA] = { .ca_file = ca, .timeout_ms = 20000, .helo_name = HELO },
		[PR_SYSTEM] = { .ca_file = NULL, .timeout_ms = 20000, .helo_name = HELO },
		[PR_FAKE] = { .ca_file = ca, .timeout_ms = FAKE_TIMEOUT_MS, .helo_name = HELO },
		[PR_SILENT] = { .ca_file = ca, .timeout_ms = SILENT_TIMEOUT_MS, .helo_name = HELO },
		[PR_V6] = { .ca_file = ca, .timeout_ms = FAKE_TIMEOUT_MS, .port = v6_port },
	};
	for (int i = 0; i < PR_N; i++)
		new_prober(loop, &o[i], &pr[i]);

	for (size_t i = 0; i < N_CASES; i++) {
		struct pcase *c = &cases[i];
		if (c->optional && !with_tls11)
			continue;
		pending++;
		c->t0 = uv_hrtime();
		in_probe_call = true;
		sts_smtp_probe(pr[c->prober], c->host, c->addr, on_result, c);
		in_probe_call = false;
	}
	while (pending > 0 && uv_run(loop, UV_RUN_ONCE) != 0)
		;
	ok(pending == 0, "every probe called back (%u left)", pending);
	/* With the scripted servers gone, the loop ends when every probe has
	 * closed by itself: QUIT answered, or its grace time over. */
	fakes_stop();
	uint64_t t0 = uv_hrtime();
	uv_run(loop, UV_RUN_DEFAULT);
	double linger = (double)(uv_hrtime() - t0) / 1e9;
	ok(linger < 2.0, "after the last callback every connection closed within %.3f s", linger);
	ok(fakes[FK_QUIT_DEAF].quits == 1 && fakes[FK_QUIT_DEAF].eofs == 1,
	   "a QUIT that is never answered: the probe closes by itself (QUIT %u, EOF %u)",
	   fakes[FK_QUIT_DEAF].quits, fakes[FK_QUIT_DEAF].eofs);
	for (int i = 0; i < PR_N; i++)
		sts_smtp_prober_free(&pr[i]);
	ok(pr[PR_CA] == NULL, "sts_smtp_prober_free clears the pointer");

	for (size_t i = 0; i < N_CASES; i++) {
		struct pcase *c = &cases[i];
		const struct sts_smtp_result *r = &c->r;
		if (c->optional && !with_tls11) {
			ok(true, "# SKIP %s: this Postfix/OpenSSL cannot serve TLS 1.1", c->name);
			continue;
		}
		bool good = c->calls == 1 && !c->during_call && r->error == c->want &&
			    r->cert == c->want_cert &&
			    (c->msg_has == NULL || strstr(r->message, c->msg_has) != NULL) &&
			    (c->cert_msg_has == NULL ||
			     strstr(r->cert_message, c->cert_msg_has) != NULL) &&
			    strcmp(c->host_seen, c->host) == 0 && strcmp(c->addr_seen, c->addr) == 0;
		ok(good, "%s: %s%s%s (got %s/%s \"%s\" \"%s\", %u call%s%s)", c->name,
		   sts_smtp_error_code(c->want), c->want == STS_SMTP_OK ? " + " : "",
		   c->want == STS_SMTP_OK ? sts_smtp_cert_name(c->want_cert) : "",
		   sts_smtp_error_code(r->error), sts_smtp_cert_name(r->cert), r->message,
		   r->cert_message, c->calls, c->calls == 1 ? "" : "s",
		   c->during_call ? ", inside sts_smtp_probe" : "");
	}

	/* The details of the valid chain. */
	struct pcase *v = find_case("valid chain");
	const struct sts_smtp_result *r = &v->r;
	time_t now = time(NULL);
	ok(strncmp(r->banner, "220 mx.smtp-test.invalid ESMTP", 30) == 0,
	   "banner is Postfix's 220 line: \"%s\"", r->banner);
	ok(r->starttls_offered, "STARTTLS offered");
	ok(strcmp(r->tls_version, "TLSv1.3") == 0 || strcmp(r->tls_version, "TLSv1.2") == 0,
	   "TLS version %s", r->tls_version);
	ok(r->cipher[0] != '\0', "cipher %s", r->cipher);
	ok(strcmp(r->cert_subject, "CN=mail.good.test") == 0, "subject %s", r->cert_subject);
	ok(strcmp(r->cert_issuer, "CN=mtasts smtp test intermediate") == 0, "issuer %s",
	   r->cert_issuer);
	ok(strcmp(r->cert_sans, "mail.good.test, mx2.good.test") == 0, "SANs %s", r->cert_sans);
	ok(r->cert_not_before <= (int64_t)now && r->cert_not_after > (int64_t)now &&
	   r->cert_not_after - r->cert_not_before == 30 * 86400,
	   "validity %lld..%lld spans 30 days around now", (long long)r->cert_not_before,
	   (long long)r->cert_not_after);
	ok(r->cert_message[0] == '\0', "no verify message for a valid certificate");
	ok(r->seconds > 0 && r->seconds < 20, "seconds %.3f", r->seconds);

	struct pcase *e = find_case("expired");
	ok(e->r.cert_not_after == 1580515200 && e->r.cert_not_before == 1577836800,
	   "expired: validity 2020-01-01..2020-02-01 (%lld..%lld)",
	   (long long)e->r.cert_not_before, (long long)e->r.cert_not_after);
	struct pcase *n = find_case("another name");
	ok(strcmp(n->r.cert_sans, "mail.other.test") == 0 && n->r.tls_version[0] != '\0',
	   "another name: SANs %s, TLS %s", n->r.cert_sans, n->r.tls_version);
	struct pcase *cn = find_case("CN without subjectAltName does not count");
	ok(cn->r.cert_sans[0] == '\0' && strcmp(cn->r.cert_subject, "CN=mail.cnonly.test") == 0,
	   "CN only: no SANs, subject %s", cn->r.cert_subject);
	struct pcase *nt = find_case("no STARTTLS");
	ok(!nt->r.starttls_offered && strncmp(nt->r.banner, "220 ", 4) == 0 &&
	   nt->r.tls_version[0] == '\0',
	   "no STARTTLS: not offered, banner \"%s\", no TLS", nt->r.banner);

	/* Scripted servers. */
	struct pcase *s = find_case("silent server");
	ok(s->wall >= 0.75 && s->wall < 1.5 && s->r.seconds >= 0.75 && s->r.seconds < 1.5,
	   "silent server: timed out after %.3f s (wall %.3f s) for timeout_ms 800",
	   s->r.seconds, s->wall);
	ok(fakes[FK_SILENT].conns == 1, "silent server: one connection (%u)",
	   fakes[FK_SILENT].conns);
	struct pcase *m = find_case("multi-line banner; STARTTLS refused");
	ok(strcmp(m->r.banner, "220-fake.test first line") == 0 && m->r.starttls_offered,
	   "multi-line banner: first line \"%s\", lower-case starttls keyword found",
	   m->r.banner);
	ok(strcmp(fakes[FK_MULTI].ehlo, "EHLO " HELO) == 0, "EHLO carries helo_name: \"%s\"",
	   fakes[FK_MULTI].ehlo);
	ok(fakes[FK_MULTI].quits == 1, "QUIT after the refused STARTTLS (%u)",
	   fakes[FK_MULTI].quits);
	ok(strcmp(fakes[FK_V6_NOTLS].ehlo, "EHLO mta-sts-check.invalid") == 0,
	   "default EHLO name: \"%s\"", fakes[FK_V6_NOTLS].ehlo);
	ok(fakes[FK_V6_NOTLS].quits == 1, "QUIT after the EHLO without STARTTLS (%u)",
	   fakes[FK_V6_NOTLS].quits);
	struct pcase *na = find_case("not an address");
	ok(na->wall < 0.5, "not an address: answered at once, from the loop (%.3f s)", na->wall);

	/* What Postfix saw. */
	ok(maillog_count(1, "postfix-mtasts-smtp/127.0.71.9/smtpd", "TLS connection established",
			 "to mail.sni.test") >= 1,
	   "maillog: the SNI server saw server name mail.sni.test");
	ok(maillog_count(4, "postfix-mtasts-smtp/127.0.71.1/smtpd",
			 "ehlo=1 starttls=1 quit=1 commands=3", NULL) >= 4,
	   "maillog: EHLO, STARTTLS, then QUIT inside TLS on 127.0.71.1 (4 sessions)");
	ok(maillog_count(1, "postfix-mtasts-smtp/127.0.71.2/smtpd", "ehlo=1 quit=1 commands=2",
			 NULL) >= 1,
	   "maillog: EHLO then QUIT on the server without TLS");
	/* The readiness check's bare connects show as "after CONNECT". */
	unsigned lost = maillog_count(0, "postfix-mtasts-smtp/127.0.71.1/smtpd",
				      "lost connection after", NULL) -
			maillog_count(0, "postfix-mtasts-smtp/127.0.71.1/smtpd",
				      "lost connection after CONNECT", NULL);
	ok(lost == 0, "maillog: no probe lost its connection on 127.0.71.1 (%u)", lost);
}

/* ---- cancellation ------------------------------------------------------------- */

struct ccase {
	unsigned calls;
	enum sts_smtp_error error;
	char message[256];
	bool inside_free;
};

static bool in_free;
static struct sts_smtp_prober *cb_prober;
static struct ccase inner_late;

static void
on_cancel_result(void *arg, const struct sts_smtp_result *r)
{
	struct ccase *c = arg;
	c->calls++;
	c->error = r->error;
	c->inside_free = in_free;
	snprintf(c->message, sizeof c->message, "%s", r->message);
	pending--;
}

/* Frees the prober from inside its own callback, then asks it for more. */
static void
on_free_from_cb(void *arg, const struct sts_smtp_result *r)
{
	on_cancel_result(arg, r);
	sts_smtp_prober_free(&cb_prober);
	pending++;
	sts_smtp_probe(cb_prober, "mail.good.test", "127.0.71.1", on_cancel_result, &inner_late);
}

static void
on_free_timer(uv_timer_t *t)
{
	struct sts_smtp_prober **pp = t->data;
	in_free = true;
	sts_smtp_prober_free(pp);
	in_free = false;
}

/* The scripted servers keep the loop alive: run it until nothing is
 * pending, or for a while. */
static void
run_pending(uv_loop_t *loop)
{
	while (pending > 0 && uv_run(loop, UV_RUN_ONCE) != 0)
		;
}

static void
on_spin_timer(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

static void
spin(uv_loop_t *loop, uint64_t ms)
{
	uv_timer_t t;
	bool fired = false;
	uv_timer_init(loop, &t);
	t.data = &fired;
	uv_timer_start(&t, on_spin_timer, ms, 0);
	while (!fired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

static void
run_cancel(uv_loop_t *loop, const char *ca)
{
	struct sts_smtp_opts o = { .ca_file = ca, .timeout_ms = 10000 };
	struct sts_smtp_prober *p = NULL;

	/* 1: freed right after the probes started (still connecting). */
	struct ccase a[3];
	memset(a, 0, sizeof a);
	new_prober(loop, &o, &p);
	const char *addrs[3] = { "127.0.71.1", "127.0.71.3", "127.0.71.20" };
	for (int i = 0; i < 3; i++) {
		pending++;
		sts_smtp_probe(p, "mail.good.test", addrs[i], on_cancel_result, &a[i]);
	}
	in_free = true;
	sts_smtp_prober_free(&p);
	in_free = false;
	bool all = true;
	for (int i = 0; i < 3; i++)
		all = all && a[i].calls == 1 && a[i].inside_free && a[i].error == STS_SMTP_INTERNAL &&
		      strcmp(a[i].message, "cancelled") == 0;
	ok(all, "free while connecting: 3 callbacks, once each, inside the free, "
		"INTERNAL \"cancelled\"");
	spin(loop, 300);
	all = true;
	for (int i = 0; i < 3; i++)
		all = all && a[i].calls == 1;
	ok(all && pending == 0, "free while connecting: no callback after the free");

	/* 2: freed later, while the silent server keeps two probes waiting for
	 * a banner, one waits for a STARTTLS reply, one is stuck in the TLS
	 * handshake, and one talks TLS with Postfix (or is done). */
	struct ccase b[5];
	memset(b, 0, sizeof b);
	new_prober(loop, &o, &p);
	const char *addrs2[5] = { "127.0.71.20", "127.0.71.20", "127.0.71.1", "127.0.71.25",
				  "127.0.71.29" };
	for (int i = 0; i < 5; i++) {
		pending++;
		sts_smtp_probe(p, "mail.good.test", addrs2[i], on_cancel_result, &b[i]);
	}
	uv_timer_t t;
	uv_timer_init(loop, &t);
	t.data = &p;
	uv_timer_start(&t, on_free_timer, 300, 0);
	uint64_t t0 = uv_hrtime();
	run_pending(loop);
	double took = (double)(uv_hrtime() - t0) / 1e9;
	uv_close((uv_handle_t *)&t, NULL);
	spin(loop, 100);
	ok(b[0].calls == 1 && b[1].calls == 1 && b[0].error == STS_SMTP_INTERNAL &&
	   b[1].error == STS_SMTP_INTERNAL && b[0].inside_free && b[1].inside_free,
	   "free in flight: the silent server's probes cancelled once each");
	ok(b[2].calls == 1 && (b[2].error == STS_SMTP_OK || b[2].error == STS_SMTP_INTERNAL),
	   "free in flight: the Postfix probe called back once (%s: %s)",
	   sts_smtp_error_code(b[2].error), b[2].message);
	ok(b[3].calls == 1 && b[3].error == STS_SMTP_INTERNAL && b[4].calls == 1 &&
	   b[4].error == STS_SMTP_INTERNAL && b[3].inside_free && b[4].inside_free,
	   "free in flight: the probes waiting for STARTTLS and inside the handshake cancelled");
	ok(p == NULL && pending == 0 && took > 0.25 && took < 1.0,
	   "free in flight: every callback by %.3f s (free at 0.3 s)", took);

	/* 3: freed from inside a callback; a probe asked for afterwards is
	 * answered at once. */
	struct ccase c[2];
	memset(c, 0, sizeof c);
	memset(&inner_late, 0, sizeof inner_late);
	new_prober(loop, &o, &cb_prober);
	pending += 2;
	sts_smtp_probe(cb_prober, "mail.dead.test", "127.0.71.250", on_free_from_cb, &c[0]);
	sts_smtp_probe(cb_prober, "mail.silent.test", "127.0.71.20", on_cancel_result, &c[1]);
	run_pending(loop);
	spin(loop, 100);
	ok(c[0].calls == 1 && c[0].error == STS_SMTP_CONNECT, "free from a callback: first %s",
	   sts_smtp_error_code(c[0].error));
	ok(c[1].calls == 1 && c[1].error == STS_SMTP_INTERNAL &&
	   strcmp(c[1].message, "cancelled") == 0,
	   "free from a callback: the other probe cancelled (%s)", c[1].message);
	ok(inner_late.calls == 1 && inner_late.error == STS_SMTP_INTERNAL && pending == 0,
	   "free from a callback: a probe on the freed prober is refused at once (%s)",
	   inner_late.message);
}

/* ---- options --------------------------------------------------------------- */

static void
run_opts(uv_loop_t *loop)
{
	struct sts_smtp_prober *p = NULL;
	char err[256];
	struct sts_smtp_opts bad_helo = { .helo_name = "bad helo\r\nRCPT TO:<x>" };
	int rc = sts_smtp_prober_new(loop, &bad_helo, &p, err, sizeof err);
	ok(rc != 0 && p == NULL && strstr(err, "EHLO") != NULL,
	   "an EHLO name with spaces or CRLF is refused: %s", err);
	struct sts_smtp_opts bad_ca = { .ca_file = "/nonexistent/ca.pem" };
	rc = sts_smtp_prober_new(loop, &bad_ca, &p, err, sizeof err);
	ok(rc != 0 && p == NULL && strstr(err, "/nonexistent/ca.pem") != NULL,
	   "a CA file that cannot be read is refused: %s", err);
	struct sts_smtp_opts bad_port = { .port = 70000 };
	rc = sts_smtp_prober_new(loop, &bad_port, &p, err, sizeof err);
	ok(rc != 0 && p == NULL, "port 70000 is refused: %s", err);
	rc = sts_smtp_prober_new(loop, NULL, &p, err, sizeof err);
	ok(rc == 0 && p != NULL, "no options: defaults, system trust store (%s)",
	   rc == 0 ? "ok" : err);
	sts_smtp_prober_free(&p);
	ok(strcmp(sts_smtp_error_code(STS_SMTP_NO_STARTTLS), "smtp.starttls.missing") == 0 &&
	   strcmp(sts_smtp_error_code(STS_SMTP_TLS), "smtp.tls.handshake") == 0 &&
	   strcmp(sts_smtp_cert_name(STS_SMTP_CERT_VALID), "valid") == 0 &&
	   strcmp(sts_smtp_cert_name(STS_SMTP_CERT_UNTRUSTED), "untrusted") == 0,
	   "error codes and certificate names");
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (find_tool("postfix") == NULL)
		bail("postfix not found: DEBIAN_FRONTEND=noninteractive apt-get install -y postfix "
		     "(scripts/install-deps), then systemctl stop postfix; systemctl disable postfix");
	if (find_tool("openssl") == NULL)
		bail("openssl not found: apt-get install openssl");
	if (geteuid() != 0)
		bail("must run as root: Postfix and the scripted servers bind port 25");
	const char *src = getenv("MTASTS_SOURCE_ROOT");
	if (src != NULL)
		snprintf(script, sizeof script, "%s/tests/integration/smtp_postfix.sh", src);
	else
		snprintf(script, sizeof script, "%s", __FILE__);
	if (src == NULL) {
		char *slash = strrchr(script, '/');
		snprintf(slash != NULL ? slash + 1 : script,
			 sizeof script - (size_t)(slash != NULL ? slash + 1 - script : 0),
			 "smtp_postfix.sh");
	}
	if (access(script, R_OK) != 0)
		bail("%s not found (set MTASTS_SOURCE_ROOT)", script);

	reap_stale();
	snprintf(tmpdir, sizeof tmpdir, TMP_PREFIX "XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		tmpdir[0] = '\0';
		bail("mkdtemp: %s", strerror(errno));
	}
	FILE *fp = fopen(tpath("owner.pid"), "w");
	if (fp == NULL || fprintf(fp, "%ld\n", (long)getpid()) < 0 || fclose(fp) != 0)
		bail("cannot write %s", tpath("owner.pid"));
	atexit(cleanup_at_exit);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGALRM, on_alarm);
	alarm(170);   /* below meson's 180 s: Postfix goes down with us */
	signal(SIGPIPE, SIG_IGN);

	start_postfix();
	bool with_tls11 = tls11_server_works();
	if (!with_tls11)
		printf("# this Postfix/OpenSSL cannot serve TLS 1.1; that case is left out\n");

	uv_loop_t loop;
	uv_loop_init(&loop);
	fakes_start(&loop);
	char ca[512];
	snprintf(ca, sizeof ca, "%s", tpath("pki/ca.crt"));
	run_cases(&loop, ca, with_tls11);   /* stops the scripted servers */
	fakes_start(&loop);
	run_cancel(&loop, ca);
	run_opts(&loop);
	fakes_stop();
	uv_run(&loop, UV_RUN_DEFAULT);
	int lc = uv_loop_close(&loop);
	ok(lc == 0, "uv_loop_close: every handle closed (%s)", lc == 0 ? "ok" : uv_strerror(lc));
	if (tap_failed > 0) {
		diag_file("maillog", tpath("maillog"), 200);
		if (getenv("MTASTS_KEEP_TMP") == NULL)
			printf("# set MTASTS_KEEP_TMP=1 to keep %s\n", tmpdir);
	}
	printf("1..%u\n", tap_n);
	return tap_failed > 0 ? 1 : 0;
}
