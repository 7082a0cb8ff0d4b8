/* test_dns.c: lib/sts_dns.c against a real authoritative server. Starts its
 * own knotd on a loopback address (127.0.53.1:5300, or the next free
 * 127.0.53.x when another test run holds it) with a zone written into a
 * temporary directory, runs lookups through sts_dns on a libuv loop and
 * speaks TAP. knotd missing is a failure ("Bail out!"), never a skip.
 *
 * Dead resolvers: "dead" has nothing bound (the kernel answers ICMP port
 * unreachable, c-ares sees ECONNREFUSED at once); "hole" is a UDP socket
 * this program binds and never reads, so queries to it time out. "fake" is
 * a UDP responder on the test's own loop that answers SERVFAIL, REFUSED or
 * malformed TXT/A/MX/TLSA/CNAME records no real server would send. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <arpa/inet.h>

#include <uv.h>

#include <mtasts/dns.h>

#define PORT 5300
#define TLSA_HEX "0123456789abcdef0123456789abcdef00112233445566778899aabbccddeeff"

static volatile pid_t knot_pid = -1;
static char tmpdir[64];
static char live_ip[INET_ADDRSTRLEN] = "127.0.53.1";
static char dead_ip[INET_ADDRSTRLEN] = "127.0.53.9";
static char hole_ip[INET_ADDRSTRLEN] = "127.0.53.8";
static char fake_ip[INET_ADDRSTRLEN] = "127.0.53.7";
static uv_udp_t fake_udp;
static int hole_fd = -1;
static char token[32];
static unsigned n_tests, n_failed;
static uv_loop_t loop;

/* ---- TAP ---------------------------------------------------------------- */

static bool
ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	n_tests++;
	if (!cond)
		n_failed++;
	printf("%sok %u - ", cond ? "" : "not ", n_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static void
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void
dump_knot_log(void)
{
	char path[128], line[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/knot.log", tmpdir);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		printf("# knot: %s", line);
	fclose(f);
}

static _Noreturn void
bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (tmpdir[0])
		dump_knot_log();
	fflush(stdout);
	exit(1);
}

/* ---- knotd lifetime ----------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void
stop_knot(void)
{
	pid_t pid = knot_pid;

	if (pid > 0) {
		kill(pid, SIGTERM);
		for (int i = 0; i < 40; i++) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };

			if (waitpid(pid, NULL, WNOHANG) == pid) {
				pid = -1;
				break;
			}
			nanosleep(&ts, NULL);
		}
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		knot_pid = -1;
	}
	if (hole_fd >= 0) {
		close(hole_fd);
		hole_fd = -1;
	}
	if (tmpdir[0]) {
		nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		tmpdir[0] = '\0';
	}
}

/* Async-signal-safe: knotd must not outlive a killed test (the meson
 * timeout sends SIGTERM). The temp dir stays behind in that case. */
static void
on_signal(int sig)
{
	if (knot_pid > 0)
		kill(knot_pid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static const char *
find_knotd(void)
{
	static char found[512];
	const char *env = getenv("KNOTD");
	const char *path = getenv("PATH");
	const char *fixed[] = { "/usr/sbin/knotd", "/usr/local/sbin/knotd", "/usr/bin/knotd" };

	if (env && access(env, X_OK) == 0)
		return env;
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (access(fixed[i], X_OK) == 0)
			return fixed[i];
	while (path && *path) {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);

		if (len > 0 && len < sizeof found - 8) {
			snprintf(found, sizeof found, "%.*s/knotd", (int)len, path);
			if (access(found, X_OK) == 0)
				return found;
		}
		path = end ? end + 1 : NULL;
	}
	return NULL;
}

/* Whether ip:PORT is free for UDP and TCP (a plain bind, no SO_REUSEPORT,
 * fails against any knotd already there, ours or another test run's). */
static bool
addr_free(const char *ip)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	bool free_ = true;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return false;
	for (int t = 0; t < 2 && free_; t++) {
		int fd = socket(AF_INET, t ? SOCK_STREAM : SOCK_DGRAM, 0);

		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
			free_ = false;
		if (fd >= 0)
			close(fd);
	}
	return free_;
}

/* Picks the first free 127.0.53.x among candidates (preferred first). */
static void
pick_addr(char *ip, size_t size, unsigned preferred, const char *taken1, const char *taken2)
{
	for (unsigned x = 0; x < 64; x++) {
		unsigned last = x == 0 ? preferred : 10 + x;

		snprintf(ip, size, "127.0.53.%u", last);
		if (strcmp(ip, taken1) != 0 && strcmp(ip, taken2) != 0 && addr_free(ip))
			return;
	}
	bail("no free address in 127.0.53.0/24 port %d", PORT);
}

static void
write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (!f || fputs(text, f) == EOF || fclose(f) != 0)
		bail("cannot write %s: %s", path, strerror(errno));
}

/* Appends formatted text to a growing heap string. */
static void
cat(char **s, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	p = realloc(*s, *len + (size_t)n + 1);
	if (!p)
		bail("out of memory");
	*s = p;
	va_start(ap, fmt);
	vsnprintf(p + *len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*len += (size_t)n;
}

static void
write_config(void)
{
	char *s = NULL;
	size_t len = 0;

	cat(&s, &len,
	    "server:\n"
	    "    rundir: \"%s\"\n"
	    "    listen: %s@%d\n"
	    "    udp-workers: 1\n"
	    "    tcp-workers: 1\n"
	    "    background-workers: 1\n"
	    "database:\n"
	    "    storage: \"%s/db\"\n"
	    "log:\n"
	    "  - target: stderr\n"
	    "    any: info\n"
	    "template:\n"
	    "  - id: default\n"
	    "    storage: \"%s\"\n"
	    "    file: \"%%s.zone\"\n"
	    "    zonefile-sync: -1\n"
	    "    journal-content: none\n"
	    "zone:\n"
	    "  - domain: example.test\n",
	    tmpdir, live_ip, PORT, tmpdir, tmpdir);
	write_file("knot.conf", s);
	free(s);

	len = 0;
	s = NULL;
	cat(&s, &len,
	    "$ORIGIN example.test.\n"
	    "$TTL 300\n"
	    "@        SOA ns hostmaster %u 3600 600 86400 300\n"
	    "@        NS ns\n"
	    "ns       A %s\n"
	    "probe    TXT \"%s\"\n"
	    "_mta-sts TXT \"v=STSv1; id=20240101T000000\"\n"
	    "multi    TXT \"v=STSv1; \" \"id=abc\" \"123\"\n"
	    "two      TXT \"v=STSv1; id=one\"\n"
	    "two      TXT \"v=STSv1; id=two\"\n"
	    "emptystr TXT \"\"\n"
	    "emptymix TXT \"\" \"v=STSv1; id=mix\" \"\"\n"
	    "aonly    A 192.0.2.1\n"
	    "aaaaonly AAAA 2001:db8::1\n"
	    "both     A 192.0.2.10\n"
	    "both     AAAA 2001:db8::10\n"
	    "alias    CNAME _mta-sts\n"
	    "alias2   CNAME alias\n"
	    "dangling CNAME nowhere\n"
	    "alias-a  CNAME aonly\n"
	    /* MX: sorted by preference, then host; a null MX; an MX host that
	     * is a CNAME; MX records reached through a CNAME. */
	    "mx2      MX 20 mail2\n"
	    "mx2      MX 10 mail\n"
	    "mx2      MX 20 backup\n"
	    "nullmx   MX 0 .\n"
	    "cnmx     MX 10 mxalias\n"
	    "mxalias  CNAME mail\n"
	    "mxvia    CNAME mx2\n"
	    "mail     A 192.0.2.25\n"
	    "mail     AAAA 2001:db8::25\n"
	    /* TLSA: DANE-EE SPKI SHA-256, and through a CNAME. */
	    "_25._tcp.mail TLSA 3 1 1 %s\n"
	    "tlsalias CNAME _25._tcp.mail\n",
	    (unsigned)time(NULL), live_ip, token, TLSA_HEX);
	/* Over 512 bytes: knotd sets TC over UDP, c-ares retries over TCP. */
	cat(&s, &len, "big      TXT");
	for (int i = 0; i < 4; i++) {
		cat(&s, &len, " \"");
		for (int j = 0; j < 255; j++)
			cat(&s, &len, "%c", 'a' + i);
		cat(&s, &len, "\"");
	}
	cat(&s, &len, "\n");
	for (int i = 0; i < 40; i++)
		cat(&s, &len, "many     TXT \"v=STSv1; id=many%02d\"\n", i);
	write_file("example.test.zone", s);
	free(s);
}

/* One raw UDP query for probe.example.test TXT; true when the answer
 * carries our token (so it is our knotd, not another run's). */
static bool
probe_knot(void)
{
	static const unsigned char q[] = {
		0x53, 0x54, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		5, 'p', 'r', 'o', 'b', 'e', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
		4, 't', 'e', 's', 't', 0, 0x00, 0x10, 0x00, 0x01,
	};
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	unsigned char buf[1500];
	struct pollfd pfd;
	bool found = false;
	ssize_t n;
	int fd;

	inet_pton(AF_INET, live_ip, &sa.sin_addr);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    send(fd, q, sizeof q, 0) != (ssize_t)sizeof q)
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 200) != 1)
		goto out;
	n = recv(fd, buf, sizeof buf, 0);
	if (n > 12 && buf[0] == 0x53 && buf[1] == 0x54 &&
	    memmem(buf, (size_t)n, token, strlen(token)))
		found = true;
out:
	close(fd);
	return found;
}

static void
start_knot(void)
{
	const char *knotd = find_knotd();
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	char conf[128], log[128];
	pid_t parent = getpid();

	if (!knotd)
		bail("knotd not found: apt-get install knot");
	snprintf(tmpdir, sizeof tmpdir, "/tmp/mtasts-test-dns-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		tmpdir[0] = '\0';
		bail("mkdtemp: %s", strerror(errno));
	}
	snprintf(token, sizeof token, "tok-%ld-%ld", (long)getpid(), (long)time(NULL));

	/* Addresses: live (for knotd), dead (nothing bound), hole (bound here,
	 * never read). Another run may hold the preferred ones. */
	pick_addr(live_ip, sizeof live_ip, 1, "127.0.53.8", "127.0.53.9");
	pick_addr(dead_ip, sizeof dead_ip, 9, live_ip, "127.0.53.8");
	pick_addr(hole_ip, sizeof hole_ip, 8, live_ip, dead_ip);
	pick_addr(fake_ip, sizeof fake_ip, 7, live_ip, dead_ip);
	if (strcmp(fake_ip, hole_ip) == 0)
		pick_addr(fake_ip, sizeof fake_ip, 6, live_ip, hole_ip);
	hole_fd = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, hole_ip, &sa.sin_addr);
	if (hole_fd < 0 || bind(hole_fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		bail("cannot bind the black hole %s:%d: %s", hole_ip, PORT, strerror(errno));
	diag("knotd %s on %s:%d, dead %s, black hole %s, fake %s, dir %s", knotd, live_ip,
	     PORT, dead_ip, hole_ip, fake_ip, tmpdir);

	write_config();
	snprintf(conf, sizeof conf, "%s/knot.conf", tmpdir);
	snprintf(log, sizeof log, "%s/knot.log", tmpdir);
	fflush(stdout);
	knot_pid = fork();
	if (knot_pid < 0)
		bail("fork: %s", strerror(errno));
	if (knot_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		/* knotd dies with us even if we are SIGKILLed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		execl(knotd, "knotd", "-c", conf, (char *)NULL);
		_exit(127);
	}
	/* Up to 10 s: knotd binds, then loads the zone. */
	for (int i = 0; i < 200; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		int st;

		if (waitpid(knot_pid, &st, WNOHANG) == knot_pid) {
			knot_pid = -1;
			bail("knotd exited at start (status %d)", st);
		}
		if (probe_knot())
			return;
		nanosleep(&ts, NULL);
	}
	bail("knotd did not answer on %s:%d", live_ip, PORT);
}

/* ---- the fake server ---------------------------------------------------- */

static unsigned char fake_rx[2048];

static void
fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init((char *)fake_rx, sizeof fake_rx);
}

/* Appends one answer RR (name: pointer to the question) of type with the
 * given rdlength field and rdata bytes (which may disagree on purpose). */
static size_t
fake_rr(unsigned char *out, size_t at, unsigned type, unsigned rdlength, const void *rdata,
	size_t rdata_len)
{
	const unsigned char hdr[] = {
		0xc0, 0x0c, (unsigned char)(type >> 8), (unsigned char)type, 0x00, 0x01,
		0x00, 0x00, 0x01, 0x2c, (unsigned char)(rdlength >> 8), (unsigned char)rdlength,
	};

	memcpy(out + at, hdr, sizeof hdr);
	memcpy(out + at + sizeof hdr, rdata, rdata_len);
	return at + sizeof hdr + rdata_len;
}

/* Answers by the first label of the question:
 *   zero     TXT RR with rdlength 0 (no character-string at all)
 *   zeromix  that, then a normal TXT RR
 *   short    rdlength 20 with 5 bytes of rdata, end of message
 *   overrun  a character-string longer than its RR
 *   shorta   an A RR with 3 bytes
 *   badtlsa  a TLSA RR with 2 bytes (no room for usage, selector, type)
 *   cuttlsa  a TLSA RR whose rdlength runs past the end of the message
 *   badmx    an MX RR with 1 byte
 *   loop     a CNAME from the question's name to itself, then a TXT RR
 *   badcname a CNAME whose target is a pointer past the end, then a TXT RR
 *   refused  REFUSED
 *   other    SERVFAIL */
static void
fake_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
	  unsigned flags)
{
	unsigned char out[1024];
	const unsigned char *q = (const unsigned char *)buf->base;
	size_t qlen = nread > 0 ? (size_t)nread : 0, off = 12, at;
	char label[64] = "";
	unsigned rcode = 2, ancount = 0;
	uv_buf_t ob;

	(void)flags;
	if (!from || qlen < 17)
		return;
	while (off < qlen && q[off] != 0 && q[off] < 64 && off + 1 + q[off] <= qlen)
		off += 1 + q[off];
	if (off + 5 > qlen || q[off] != 0)
		return;
	off += 5; /* root label, qtype, qclass */
	if (q[12] > 0 && q[12] < sizeof label) {
		memcpy(label, q + 13, q[12]);
		label[q[12]] = '\0';
	}
	memcpy(out, q, off);
	at = off;
	if (strcmp(label, "zero") == 0) {
		rcode = 0;
		ancount = 1;
		at = fake_rr(out, at, 16, 0, "", 0);
	} else if (strcmp(label, "zeromix") == 0) {
		rcode = 0;
		ancount = 2;
		at = fake_rr(out, at, 16, 0, "", 0);
		at = fake_rr(out, at, 16, 14, "\x0dv=STSv1; id=1", 14);
	} else if (strcmp(label, "short") == 0) {
		rcode = 0;
		ancount = 1;
		at = fake_rr(out, at, 16, 20, "\x04v=ST", 5);
	} else if (strcmp(label, "overrun") == 0) {
		rcode = 0;
		ancount = 1;
		at = fake_rr(out, at, 16, 5, "\x32v=ST", 5);
	} else if (strcmp(label, "shorta") == 0) {
		rcode = 0;
		ancount = 1;
		at = fake_rr(out, at, 1, 3, "\xc0\x00\x02", 3);
	} else if (strcmp(label, "badtlsa") == 0) {
		rcode = 0;
		ancount = 1;
		at = fake_rr(out, at, 52, 2, "\x03\x01", 2);
	} else if (strcmp(label, "cuttlsa") == 0) {
		rcode = 0;
		ancount = 1;
		at = fake_rr(out, at, 52, 35, "\x03\x01\x01\xab\xcd", 5);
	} else if (strcmp(label, "badmx") == 0) {
		rcode = 0;
		ancount = 1;
		at = fake_rr(out, at, 15, 1, "\x00", 1);
	} else if (strcmp(label, "loop") == 0) {
		/* The question's name is a CNAME to itself, then a TXT. */
		rcode = 0;
		ancount = 2;
		at = fake_rr(out, at, 5, 2, "\xc0\x0c", 2);
		at = fake_rr(out, at, 16, 14, "\x0dv=STSv1; id=1", 14);
	} else if (strcmp(label, "badcname") == 0) {
		/* A CNAME whose target points past the end, then a TXT. */
		rcode = 0;
		ancount = 2;
		at = fake_rr(out, at, 5, 2, "\xc3\xff", 2);
		at = fake_rr(out, at, 16, 14, "\x0dv=STSv1; id=1", 14);
	} else if (strcmp(label, "refused") == 0) {
		rcode = 5;
	}
	out[2] = 0x84; /* QR, AA */
	out[3] = (unsigned char)rcode;
	out[6] = 0;
	out[7] = (unsigned char)ancount;
	memset(out + 8, 0, 4);
	ob = uv_buf_init((char *)out, (unsigned)at);
	uv_udp_try_send(h, &ob, 1, from);
}

static void
start_fake(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };

	inet_pton(AF_INET, fake_ip, &sa.sin_addr);
	if (uv_udp_init(&loop, &fake_udp) != 0 ||
	    uv_udp_bind(&fake_udp, (const struct sockaddr *)&sa, 0) != 0 ||
	    uv_udp_recv_start(&fake_udp, fake_alloc, fake_recv) != 0)
		bail("cannot start the fake server on %s:%d", fake_ip, PORT);
	/* Lookups end uv_run, not this handle. */
	uv_unref((uv_handle_t *)&fake_udp);
}

/* ---- running lookups ---------------------------------------------------- */

struct result {
	int called;
	enum sts_dns_rcode rcode;
	char detail[512];
	size_t n_rrs;
	size_t n_strings[64];
	size_t len0;              /* length of the first string of the first RR */
	char text[4096];          /* RRs as "s1|s2|s3", RRs joined by " / " */
	size_t n_addrs;
	char addrs[1024];         /* joined by "," */
	size_t n_mx;
	char mx[1024];            /* "PREF HOST", joined by "," */
	size_t n_tlsa;
	char tlsa[1024];          /* "U S M HEX", joined by "," */
	size_t n_cnames;
	char cnames[1024];        /* joined by "," */
	uint64_t ms;              /* uv_now when called */
	/* Optional action in the callback. */
	struct sts_dns **free_me;
	struct sts_dns *chain_dns;
	struct result *chain_res;
};

static void
append_s(char *buf, size_t size, const char *s, size_t len)
{
	size_t at = strlen(buf);

	if (at + len >= size)
		len = size - at - 1;
	memcpy(buf + at, s, len);
	buf[at + len] = '\0';
}

static void record_cb(void *arg, const struct sts_dns_answer *ans);

static void
record_cb(void *arg, const struct sts_dns_answer *ans)
{
	struct result *r = arg;

	r->called++;
	r->rcode = ans->rcode;
	snprintf(r->detail, sizeof r->detail, "%s", ans->detail ? ans->detail : "(null)");
	r->n_rrs = ans->n_rrs;
	r->text[0] = '\0';
	for (size_t i = 0; i < ans->n_rrs; i++) {
		const struct sts_txt_rr *rr = &ans->rrs[i];

		if (i < 64)
			r->n_strings[i] = rr->n_strings;
		if (i > 0)
			append_s(r->text, sizeof r->text, " / ", 3);
		for (size_t j = 0; j < rr->n_strings; j++) {
			if (j > 0)
				append_s(r->text, sizeof r->text, "|", 1);
			if (i == 0 && j == 0)
				r->len0 = rr->strings[j].len;
			append_s(r->text, sizeof r->text, rr->strings[j].ptr, rr->strings[j].len);
		}
	}
	r->n_addrs = ans->n_addrs;
	r->addrs[0] = '\0';
	for (size_t i = 0; i < ans->n_addrs; i++) {
		if (i > 0)
			append_s(r->addrs, sizeof r->addrs, ",", 1);
		append_s(r->addrs, sizeof r->addrs, ans->addrs[i], strlen(ans->addrs[i]));
	}
	r->n_mx = ans->n_mx;
	r->mx[0] = '\0';
	for (size_t i = 0; i < ans->n_mx; i++) {
		char one[300];

		snprintf(one, sizeof one, "%s%u %s", i ? "," : "", ans->mx[i].preference,
			 ans->mx[i].host);
		append_s(r->mx, sizeof r->mx, one, strlen(one));
	}
	r->n_tlsa = ans->n_tlsa;
	r->tlsa[0] = '\0';
	for (size_t i = 0; i < ans->n_tlsa; i++) {
		char one[300];

		snprintf(one, sizeof one, "%s%u %u %u %s", i ? "," : "", ans->tlsa[i].usage,
			 ans->tlsa[i].selector, ans->tlsa[i].mtype, ans->tlsa[i].data_hex);
		append_s(r->tlsa, sizeof r->tlsa, one, strlen(one));
	}
	r->n_cnames = ans->n_cnames;
	r->cnames[0] = '\0';
	for (size_t i = 0; i < ans->n_cnames; i++) {
		if (i > 0)
			append_s(r->cnames, sizeof r->cnames, ",", 1);
		append_s(r->cnames, sizeof r->cnames, ans->cnames[i], strlen(ans->cnames[i]));
	}
	uv_update_time(&loop);
	r->ms = uv_now(&loop);
	if (r->chain_dns) {
		struct sts_dns *d = r->chain_dns;

		r->chain_dns = NULL;
		sts_dns_txt(d, "multi.example.test", record_cb, r->chain_res);
	}
	if (r->free_me)
		sts_dns_free(r->free_me);
}

static const char *
rcode_name(enum sts_dns_rcode rc)
{
	switch (rc) {
	case STS_DNS_OK:       return "OK";
	case STS_DNS_NXDOMAIN: return "NXDOMAIN";
	case STS_DNS_NODATA:   return "NODATA";
	case STS_DNS_TEMPFAIL: return "TEMPFAIL";
	}
	return "?";
}

static struct sts_dns *
new_dns(const char *servers, unsigned timeout_ms, unsigned tries)
{
	struct sts_dns_opts o = { .servers = servers, .try_timeout_ms = timeout_ms, .tries = tries };
	struct sts_dns *dns = NULL;
	char err[256];

	if (sts_dns_new(&loop, &o, &dns, err, sizeof err) != 0)
		bail("sts_dns_new(%s): %s", servers, err);
	return dns;
}

static void
close_dns(struct sts_dns **dns)
{
	sts_dns_free(dns);
	uv_run(&loop, UV_RUN_DEFAULT);
}

static char servers_live[64];

enum qkind { Q_TXT, Q_ADDRS, Q_MX, Q_TLSA };

static const char *const qkind_name[] = { "TXT", "A/AAAA", "MX", "TLSA" };

/* One lookup of kind on a fresh resolver; returns elapsed ms. */
static uint64_t
lookup_kind(const char *servers, unsigned timeout_ms, unsigned tries, enum qkind kind,
	    const char *name, struct result *r)
{
	struct sts_dns *dns = new_dns(servers, timeout_ms, tries);
	uint64_t t0;

	memset(r, 0, sizeof *r);
	uv_update_time(&loop);
	t0 = uv_now(&loop);
	switch (kind) {
	case Q_TXT:   sts_dns_txt(dns, name, record_cb, r); break;
	case Q_ADDRS: sts_dns_addrs(dns, name, record_cb, r); break;
	case Q_MX:    sts_dns_mx(dns, name, record_cb, r); break;
	case Q_TLSA:  sts_dns_tlsa(dns, name, record_cb, r); break;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	close_dns(&dns);
	if (r->called != 1)
		diag("%s: callback called %d times", name, r->called);
	else
		diag("%s %s: %s (%s) [%s%s%s%s]%s%s %llu ms", name, qkind_name[kind],
		     rcode_name(r->rcode), r->detail, r->text, r->addrs, r->mx, r->tlsa,
		     r->n_cnames ? " via " : "", r->cnames, (unsigned long long)(r->ms - t0));
	return r->called ? r->ms - t0 : UINT64_MAX;
}

/* One TXT (addrs false) or address lookup on a fresh resolver. */
static uint64_t
lookup(const char *servers, unsigned timeout_ms, unsigned tries, bool addrs, const char *name,
       struct result *r)
{
	return lookup_kind(servers, timeout_ms, tries, addrs ? Q_ADDRS : Q_TXT, name, r);
}

static bool
txt_is(const char *name, enum sts_dns_rcode rc, const char *text)
{
	struct result r;

	lookup(servers_live, 0, 0, false, name, &r);
	return r.called == 1 && r.rcode == rc && (!text || strcmp(r.text, text) == 0);
}

static bool
addrs_are(const char *name, enum sts_dns_rcode rc, const char *addrs)
{
	struct result r;

	lookup(servers_live, 0, 0, true, name, &r);
	return r.called == 1 && r.rcode == rc && (!addrs || strcmp(r.addrs, addrs) == 0);
}

/* ---- the cases ---------------------------------------------------------- */

static void
test_txt(void)
{
	struct result r;

	ok(txt_is("_mta-sts.example.test", STS_DNS_OK, "v=STSv1; id=20240101T000000"),
	   "TXT: one RR with one string");

	lookup(servers_live, 0, 0, false, "multi.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_rrs == 1 && r.n_strings[0] == 3 &&
	   strcmp(r.text, "v=STSv1; |id=abc|123") == 0,
	   "TXT: one RR, its three character-strings kept apart");

	lookup(servers_live, 0, 0, false, "two.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_rrs == 2 &&
	   r.n_strings[0] == 1 && r.n_strings[1] == 1 &&
	   (strcmp(r.text, "v=STSv1; id=one / v=STSv1; id=two") == 0 ||
	    strcmp(r.text, "v=STSv1; id=two / v=STSv1; id=one") == 0),
	   "TXT: two RRs kept apart");

	lookup(servers_live, 0, 0, false, "emptystr.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_rrs == 1 && r.n_strings[0] == 1 &&
	   r.len0 == 0, "TXT: an RR holding one empty string");

	lookup(servers_live, 0, 0, false, "emptymix.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_rrs == 1 && r.n_strings[0] == 3 &&
	   strcmp(r.text, "|v=STSv1; id=mix|") == 0, "TXT: empty strings around a value");

	lookup(servers_live, 0, 0, false, "big.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_rrs == 1 && r.n_strings[0] == 4 &&
	   strlen(r.text) == 4 * 255 + 3 && r.len0 == 255,
	   "TXT: 1 KB answer (truncated over UDP, retried over TCP)");

	lookup(servers_live, 0, 0, false, "many.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_rrs == 40, "TXT: 40 RRs");

	ok(txt_is("nonexistent.example.test", STS_DNS_NXDOMAIN, ""), "TXT: NXDOMAIN");
	lookup(servers_live, 0, 0, false, "nonexistent.example.test", &r);
	ok(strstr(r.detail, "nonexistent.example.test") && strstr(r.detail, "TXT"),
	   "TXT: the detail names the query: %s", r.detail);
	ok(txt_is("aonly.example.test", STS_DNS_NODATA, ""), "TXT: NODATA (name with only an A)");
	ok(txt_is("alias.example.test", STS_DNS_OK, "v=STSv1; id=20240101T000000"),
	   "TXT: CNAME to a TXT in the zone");
	ok(txt_is("alias2.example.test", STS_DNS_OK, "v=STSv1; id=20240101T000000"),
	   "TXT: chain of two CNAMEs");
	ok(txt_is("alias-a.example.test", STS_DNS_NODATA, ""),
	   "TXT: CNAME to a name without TXT is NODATA");
	ok(txt_is("dangling.example.test", STS_DNS_NXDOMAIN, ""),
	   "TXT: CNAME to a missing name is NXDOMAIN");

	lookup(servers_live, 0, 0, false, "_mta-sts.example.org", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "REFUSED") &&
	   strstr(r.detail, "_mta-sts.example.org"),
	   "TXT: REFUSED (name outside the zone) is TEMPFAIL: %s", r.detail);
}

static void
test_addrs(void)
{
	struct result r;

	ok(addrs_are("aonly.example.test", STS_DNS_OK, "192.0.2.1"), "addrs: A only");
	ok(addrs_are("aaaaonly.example.test", STS_DNS_OK, "2001:db8::1"), "addrs: AAAA only");
	ok(addrs_are("both.example.test", STS_DNS_OK, "192.0.2.10,2001:db8::10"),
	   "addrs: A and AAAA, IPv4 first");
	ok(addrs_are("alias-a.example.test", STS_DNS_OK, "192.0.2.1"), "addrs: through a CNAME");
	ok(addrs_are("nonexistent.example.test", STS_DNS_NXDOMAIN, ""), "addrs: NXDOMAIN");
	ok(addrs_are("_mta-sts.example.test", STS_DNS_NODATA, ""),
	   "addrs: NODATA (name with only a TXT)");
	lookup(servers_live, 0, 0, true, "mx.example.org", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "REFUSED"),
	   "addrs: REFUSED is TEMPFAIL: %s", r.detail);
}

static void
test_cnames(void)
{
	struct result r;

	lookup(servers_live, 0, 0, false, "_mta-sts.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_cnames == 0 && r.cnames[0] == '\0',
	   "CNAME: none for a direct answer");
	lookup(servers_live, 0, 0, false, "alias.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_cnames == 1 &&
	   strcmp(r.cnames, "_mta-sts.example.test") == 0, "CNAME: one link: %s", r.cnames);
	lookup(servers_live, 0, 0, false, "alias2.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_cnames == 2 &&
	   strcmp(r.cnames, "alias.example.test,_mta-sts.example.test") == 0 &&
	   strcmp(r.text, "v=STSv1; id=20240101T000000") == 0,
	   "CNAME: TXT through a chain of two, listed in order: %s", r.cnames);
	lookup(servers_live, 0, 0, false, "alias-a.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_NODATA && r.n_cnames == 1 &&
	   strcmp(r.cnames, "aonly.example.test") == 0,
	   "CNAME: a NODATA answer still names its chain: %s", r.cnames);
	lookup(servers_live, 0, 0, false, "dangling.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_NXDOMAIN && r.n_cnames == 1 &&
	   strcmp(r.cnames, "nowhere.example.test") == 0,
	   "CNAME: an NXDOMAIN answer names the missing target: %s", r.cnames);
	lookup(servers_live, 0, 0, true, "alias-a.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && strcmp(r.addrs, "192.0.2.1") == 0 &&
	   r.n_cnames == 1 && strcmp(r.cnames, "aonly.example.test") == 0,
	   "CNAME: addresses through a CNAME (A only at the target): %s", r.cnames);
	lookup(servers_live, 0, 0, true, "mxalias.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK &&
	   strcmp(r.addrs, "192.0.2.25,2001:db8::25") == 0 && r.n_cnames == 1 &&
	   strcmp(r.cnames, "mail.example.test") == 0,
	   "CNAME: addresses of an MX host that is a CNAME: %s", r.cnames);
}

static void
test_mx(void)
{
	struct result r;

	lookup_kind(servers_live, 0, 0, Q_MX, "mx2.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_mx == 3 &&
	   strcmp(r.mx, "10 mail.example.test,20 backup.example.test,20 mail2.example.test") == 0 &&
	   r.n_cnames == 0 && strstr(r.detail, "MX: 3 records"),
	   "MX: sorted by preference, then host, no trailing dot: %s", r.mx);
	lookup_kind(servers_live, 0, 0, Q_MX, "nullmx.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_mx == 1 && strcmp(r.mx, "0 ") == 0,
	   "MX: a null MX (0 .) has host \"\": '%s'", r.mx);
	lookup_kind(servers_live, 0, 0, Q_MX, "cnmx.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_mx == 1 &&
	   strcmp(r.mx, "10 mxalias.example.test") == 0 && r.n_cnames == 0,
	   "MX: a host that is a CNAME is given as named: %s", r.mx);
	lookup_kind(servers_live, 0, 0, Q_MX, "mxvia.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_mx == 3 &&
	   strcmp(r.cnames, "mx2.example.test") == 0 &&
	   strncmp(r.mx, "10 mail.example.test,", 21) == 0,
	   "MX: through a CNAME, which is listed: %s", r.cnames);
	lookup_kind(servers_live, 0, 0, Q_MX, "aonly.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_NODATA && r.n_mx == 0, "MX: NODATA");
	lookup_kind(servers_live, 0, 0, Q_MX, "alias-a.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_NODATA && r.n_mx == 0 &&
	   strcmp(r.cnames, "aonly.example.test") == 0,
	   "MX: only a CNAME in the answer is NODATA: %s", r.detail);
	lookup_kind(servers_live, 0, 0, Q_MX, "nonexistent.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_NXDOMAIN && strstr(r.detail, " MX: NXDOMAIN"),
	   "MX: NXDOMAIN: %s", r.detail);
	lookup_kind(servers_live, 0, 0, Q_MX, "example.org", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "REFUSED"),
	   "MX: REFUSED is TEMPFAIL: %s", r.detail);
}

static void
test_tlsa(void)
{
	struct result r;

	lookup_kind(servers_live, 0, 0, Q_TLSA, "_25._tcp.mail.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_tlsa == 1 &&
	   strcmp(r.tlsa, "3 1 1 " TLSA_HEX) == 0 && r.n_cnames == 0 &&
	   strstr(r.detail, "TLSA: 1 record"), "TLSA: 3 1 1 <sha-256>: %s", r.tlsa);
	lookup_kind(servers_live, 0, 0, Q_TLSA, "tlsalias.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_tlsa == 1 &&
	   strcmp(r.tlsa, "3 1 1 " TLSA_HEX) == 0 &&
	   strcmp(r.cnames, "_25._tcp.mail.example.test") == 0,
	   "TLSA: through a CNAME, which is listed: %s", r.cnames);
	lookup_kind(servers_live, 0, 0, Q_TLSA, "_25._tcp.nomail.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_NXDOMAIN && r.n_tlsa == 0 &&
	   strstr(r.detail, " TLSA: NXDOMAIN"), "TLSA: NXDOMAIN: %s", r.detail);
	lookup_kind(servers_live, 0, 0, Q_TLSA, "mail.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_NODATA && r.n_tlsa == 0,
	   "TLSA: NODATA (a name with addresses only)");
	lookup_kind(servers_live, 0, 0, Q_TLSA, "alias-a.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_NODATA && r.n_tlsa == 0 &&
	   strcmp(r.cnames, "aonly.example.test") == 0,
	   "TLSA: only a CNAME in the answer is NODATA: %s", r.detail);
	lookup_kind(servers_live, 0, 0, Q_TLSA, "_25._tcp.mx.example.org", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "REFUSED"),
	   "TLSA: REFUSED is TEMPFAIL: %s", r.detail);
}

static void
test_failover(void)
{
	char servers[160];
	struct result r;
	uint64_t ms;

	snprintf(servers, sizeof servers, "%s:%d,%s:%d", dead_ip, PORT, live_ip, PORT);
	ms = lookup(servers, 300, 3, false, "_mta-sts.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && ms < 2000,
	   "dead first server (nothing listening), then the live one: OK in %llu ms",
	   (unsigned long long)ms);

	snprintf(servers, sizeof servers, "%s:%d,%s:%d", hole_ip, PORT, live_ip, PORT);
	ms = lookup(servers, 300, 3, false, "_mta-sts.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && ms >= 250 && ms < 2000,
	   "silent first server, then the live one: OK after one 300 ms try (%llu ms)",
	   (unsigned long long)ms);

	ms = lookup(servers, 300, 3, true, "both.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && ms < 2000,
	   "silent first server: addresses too (%llu ms)", (unsigned long long)ms);

	snprintf(servers, sizeof servers, "%s:%d", dead_ip, PORT);
	ms = lookup(servers, 300, 3, false, "_mta-sts.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "refused") &&
	   ms < 3000, "only a dead server: TEMPFAIL in %llu ms: %s", (unsigned long long)ms,
	   r.detail);

	/* c-ares doubles the timeout each round: 200 + 400 ms. */
	snprintf(servers, sizeof servers, "%s:%d", hole_ip, PORT);
	ms = lookup(servers, 200, 2, false, "_mta-sts.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "timeout") &&
	   ms >= 500 && ms < 3000, "only a silent server: TEMPFAIL timeout in %llu ms: %s",
	   (unsigned long long)ms, r.detail);

	ms = lookup(servers, 200, 2, true, "both.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "timeout") &&
	   ms < 3000, "only a silent server: addresses TEMPFAIL in %llu ms",
	   (unsigned long long)ms);
}

static void
test_fake(void)
{
	char servers[160], fake[64];
	struct result r;
	uint64_t ms;

	snprintf(fake, sizeof fake, "%s:%d", fake_ip, PORT);
	snprintf(servers, sizeof servers, "%s,%s:%d", fake, live_ip, PORT);
	ms = lookup(servers, 300, 3, false, "_mta-sts.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && ms < 1000,
	   "SERVFAIL from the first server: the next one answers (%llu ms)",
	   (unsigned long long)ms);

	lookup(fake, 300, 3, false, "_mta-sts.example.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "SERVFAIL"),
	   "only SERVFAIL: TEMPFAIL naming it: %s", r.detail);
	lookup(fake, 300, 3, true, "refused.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "REFUSED"),
	   "only REFUSED (addresses): TEMPFAIL naming it: %s", r.detail);

	lookup(fake, 300, 3, false, "zero.fake.test", &r);
	ok(r.called == 1 && r.rcode != STS_DNS_OK && r.rcode != STS_DNS_TEMPFAIL,
	   "TXT RR without any character-string: no record (%s)", rcode_name(r.rcode));
	lookup(fake, 300, 3, false, "zeromix.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_rrs == 1 &&
	   strcmp(r.text, "v=STSv1; id=1") == 0,
	   "an empty TXT RR next to a real one: the real one (%zu RR)", r.n_rrs);
	lookup(fake, 300, 3, false, "short.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL,
	   "TXT rdlength past the end of the message: TEMPFAIL: %s", r.detail);
	lookup(fake, 300, 3, false, "overrun.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL,
	   "TXT string longer than its RR: TEMPFAIL: %s", r.detail);
	lookup(fake, 300, 3, true, "shorta.fake.test", &r);
	ok(r.called == 1 && r.rcode != STS_DNS_OK, "A RR of 3 bytes: no address (%s): %s",
	   rcode_name(r.rcode), r.detail);

	lookup_kind(fake, 300, 3, Q_MX, "servfail.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "SERVFAIL") &&
	   strstr(r.detail, " MX: "), "only SERVFAIL (MX): TEMPFAIL naming it: %s", r.detail);
	lookup_kind(fake, 300, 3, Q_TLSA, "_25._tcp.refused.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "SERVFAIL") &&
	   strstr(r.detail, " TLSA: "), "only SERVFAIL (TLSA): TEMPFAIL naming it: %s", r.detail);
	lookup_kind(fake, 300, 3, Q_TLSA, "badtlsa.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "bad response") &&
	   r.n_tlsa == 0, "TLSA RR of 2 bytes: TEMPFAIL: %s", r.detail);
	lookup_kind(fake, 300, 3, Q_TLSA, "cuttlsa.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "bad response"),
	   "TLSA rdlength past the end of the message: TEMPFAIL: %s", r.detail);
	lookup_kind(fake, 300, 3, Q_MX, "badmx.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "bad response"),
	   "MX RR of 1 byte: TEMPFAIL: %s", r.detail);
	lookup(fake, 300, 3, false, "loop.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_OK && r.n_cnames == 1 &&
	   strcmp(r.cnames, "loop.fake.test") == 0,
	   "CNAME loop: the chain ends with the link that closes it: %s", r.cnames);
	lookup(fake, 300, 3, false, "badcname.fake.test", &r);
	ok(r.called == 1 && r.rcode == STS_DNS_TEMPFAIL && strstr(r.detail, "bad response") &&
	   r.n_cnames == 0, "CNAME in the chain pointing past the end: TEMPFAIL: %s", r.detail);
}

static bool
rejects(const char *servers, const char *named)
{
	struct sts_dns_opts o = { .servers = servers };
	struct sts_dns *dns = (struct sts_dns *)&o; /* must be reset to NULL */
	char err[256] = "";
	int rc = sts_dns_new(&loop, &o, &dns, err, sizeof err);

	diag("servers '%s': %d %s", servers, rc, err);
	if (rc == 0)
		close_dns(&dns);
	return rc == -1 && dns == NULL && strstr(err, named) != NULL;
}

static bool
accepts(const char *servers)
{
	struct sts_dns_opts o = { .servers = servers };
	struct sts_dns *dns = NULL;
	char err[256] = "";
	int rc = sts_dns_new(&loop, &o, &dns, err, sizeof err);

	if (rc != 0)
		diag("servers '%s': %s", servers ? servers : "(null)", err);
	if (dns)
		close_dns(&dns);
	return rc == 0;
}

static void
test_options(void)
{
	ok(rejects("1.2.3", "'1.2.3' is not an IP address"), "servers: '1.2.3' rejected by name");
	ok(rejects("127.0.0.1,resolver.example", "'resolver.example'"),
	   "servers: a host name rejected");
	ok(rejects("127.0.0.1:99999", "'127.0.0.1:99999'"), "servers: port out of range");
	ok(rejects("127.0.0.1:", "'127.0.0.1:'"), "servers: empty port");
	ok(rejects("127.0.0.1,,127.0.0.2", "empty entry"), "servers: empty entry");
	ok(rejects("[::1", "'[::1'"), "servers: unclosed bracket");
	ok(rejects("[127.0.0.1]:53", "'[127.0.0.1]:53'"), "servers: IPv4 in brackets");
	ok(accepts("127.0.0.1, 127.0.0.2:5300 ,[::1]:5300,::1,2001:db8::53,[2001:db8::1]"),
	   "servers: IPv4, IPv4:PORT, [IPv6]:PORT, bare IPv6, spaces around entries");
	ok(accepts(NULL) && accepts(""), "servers: NULL and \"\" take /etc/resolv.conf");
	{
		struct sts_dns *dns = NULL;
		char err[64];

		ok(sts_dns_new(&loop, NULL, &dns, err, sizeof err) == 0 && dns,
		   "options: NULL opts means defaults");
		close_dns(&dns);
	}
}

static void
test_lifecycle(void)
{
	struct result a, b, c;
	struct sts_dns *dns;
	char servers[160];
	uint64_t t0;

	/* Free with queries in flight (to a silent server): each callback
	 * once, TEMPFAIL "cancelled"; the loop then closes every handle. */
	snprintf(servers, sizeof servers, "%s:%d", hole_ip, PORT);
	dns = new_dns(servers, 1000, 3);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	sts_dns_txt(dns, "_mta-sts.example.test", record_cb, &a);
	sts_dns_addrs(dns, "both.example.test", record_cb, &b);
	ok(sts_dns_queries(dns) == 3, "queries: a TXT counts 1, an address lookup 2");
	uv_run(&loop, UV_RUN_NOWAIT);
	ok(a.called == 0 && b.called == 0, "free: queries are pending before the free");
	uv_update_time(&loop);
	t0 = uv_now(&loop);
	sts_dns_free(&dns);
	ok(dns == NULL, "free: the pointer becomes NULL");
	ok(a.called == 1 && a.rcode == STS_DNS_TEMPFAIL && strstr(a.detail, "cancelled"),
	   "free: pending TXT answered once, TEMPFAIL: %s", a.detail);
	ok(b.called == 1 && b.rcode == STS_DNS_TEMPFAIL && strstr(b.detail, "cancelled"),
	   "free: pending address lookup answered once, TEMPFAIL: %s", b.detail);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_update_time(&loop);
	ok(a.called == 1 && b.called == 1 && uv_now(&loop) - t0 < 500 && !uv_loop_alive(&loop),
	   "free: the loop runs on without callbacks and ends (handles closed)");

	/* An unusable name: answered from the loop, never inside the call. */
	dns = new_dns(servers_live, 0, 0);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	{
		char longname[400];

		memset(longname, 'x', sizeof longname - 1);
		longname[sizeof longname - 1] = '\0';
		sts_dns_txt(dns, longname, record_cb, &a);
		sts_dns_addrs(dns, "", record_cb, &b);
	}
	ok(a.called == 0 && b.called == 0, "bad names: no callback inside the call");
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(a.called == 1 && a.rcode == STS_DNS_TEMPFAIL && b.called == 1 &&
	   b.rcode == STS_DNS_TEMPFAIL, "bad names: TEMPFAIL from the loop: %s", a.detail);

	/* A query started from a callback. */
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.chain_dns = dns;
	a.chain_res = &b;
	sts_dns_txt(dns, "_mta-sts.example.test", record_cb, &a);
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(a.called == 1 && a.rcode == STS_DNS_OK && b.called == 1 && b.rcode == STS_DNS_OK &&
	   strcmp(b.text, "v=STSv1; |id=abc|123") == 0, "a query started from a callback");
	close_dns(&dns);

	/* sts_dns_free from inside a callback run by c-ares, with another
	 * lookup still going (TCP for "big"): no use after free. */
	dns = new_dns(servers_live, 0, 0);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	memset(&c, 0, sizeof c);
	a.free_me = &dns;
	sts_dns_txt(dns, "_mta-sts.example.test", record_cb, &a);
	sts_dns_txt(dns, "big.example.test", record_cb, &b);
	sts_dns_addrs(dns, "both.example.test", record_cb, &c);
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(dns == NULL && a.called == 1 && b.called == 1 && c.called == 1 &&
	   !uv_loop_alive(&loop),
	   "free from a callback: every callback once (%s, %s), handles closed",
	   rcode_name(b.rcode), rcode_name(c.rcode));

	/* sts_dns_free from a deferred answer, with a query in flight. */
	snprintf(servers, sizeof servers, "%s:%d", hole_ip, PORT);
	dns = new_dns(servers, 1000, 3);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.free_me = &dns;
	sts_dns_txt(dns, "_mta-sts.example.test", record_cb, &b);
	sts_dns_txt(dns, "", record_cb, &a);
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(dns == NULL && a.called == 1 && b.called == 1 && b.rcode == STS_DNS_TEMPFAIL &&
	   strstr(b.detail, "cancelled") && !uv_loop_alive(&loop),
	   "free from a deferred answer cancels the rest: %s", b.detail);

	/* MX and TLSA lookups: counted, cancelled and refused like the rest. */
	dns = new_dns(servers, 1000, 3);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	memset(&c, 0, sizeof c);
	sts_dns_mx(dns, "mx2.example.test", record_cb, &a);
	sts_dns_tlsa(dns, "_25._tcp.mail.example.test", record_cb, &b);
	sts_dns_mx(dns, "", record_cb, &c);
	ok(sts_dns_queries(dns) == 3 && a.called == 0 && b.called == 0 && c.called == 0,
	   "MX/TLSA: a lookup counts 1, no callback inside the call");
	uv_run(&loop, UV_RUN_NOWAIT);
	ok(c.called == 1 && c.rcode == STS_DNS_TEMPFAIL && strstr(c.detail, "MX: bad name"),
	   "MX: an empty name is TEMPFAIL from the loop: %s", c.detail);
	sts_dns_free(&dns);
	ok(a.called == 1 && a.rcode == STS_DNS_TEMPFAIL && strstr(a.detail, "MX: cancelled") &&
	   b.called == 1 && b.rcode == STS_DNS_TEMPFAIL && strstr(b.detail, "TLSA: cancelled"),
	   "MX/TLSA: pending lookups cancelled by the free: %s; %s", a.detail, b.detail);
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(!uv_loop_alive(&loop), "MX/TLSA: handles closed after the free");
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	atexit(stop_knot);
	if (uv_loop_init(&loop) != 0)
		bail("uv_loop_init failed");

	start_knot();
	start_fake();
	snprintf(servers_live, sizeof servers_live, "%s:%d", live_ip, PORT);

	test_txt();
	test_addrs();
	test_cnames();
	test_mx();
	test_tlsa();
	test_failover();
	test_fake();
	test_options();
	test_lifecycle();

	uv_close((uv_handle_t *)&fake_udp, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(uv_loop_close(&loop) == 0, "the loop closes: no handle left behind");
	printf("1..%u\n", n_tests);
	if (n_failed)
		diag("%u of %u failed", n_failed, n_tests);
	return n_failed ? 1 : 0;
}
