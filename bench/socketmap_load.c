/* bench-socketmap: socketmap (netstring) load generator for mta-stsd and
 * other Postfix socketmap servers. One thread, epoll, N connections, D
 * requests in flight per connection; every reply is parsed and classified
 * (OK / NOTFOUND / other); latency from the send of a request to the end of
 * its reply goes into a log-linear histogram. Stops after --requests sends
 * (and their replies) or after 60 s. Not a test: run by bench/run-daemon.
 *
 * usage: bench-socketmap --connect HOST:PORT [--connections N] [--pipeline D]
 *        [--requests TOTAL] [--key 'postfix enforce.test'] [--json]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SECONDS 60
/* Histogram: 1 us .. ~68 s, 64 sub-buckets per power of two (< 1.6 % error). */
#define SUB 64
#define OCT 27
static uint64_t hist[OCT * SUB];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned bucket_of(uint64_t ns)
{
	uint64_t us = ns / 1000; /* resolution: 1 us */
	if (us < SUB)
		return (unsigned)us;
	unsigned o = 63u - (unsigned)__builtin_clzll(us); /* >= 6 */
	unsigned sh = o - 6;
	unsigned idx = (o - 5) * SUB + (unsigned)((us >> sh) - SUB);
	return idx < OCT * SUB ? idx : OCT * SUB - 1;
}

static double bucket_us(unsigned idx) /* upper-middle value of a bucket, us */
{
	if (idx < SUB)
		return idx + 0.5;
	unsigned o = idx / SUB + 5, sub = idx % SUB;
	double lo = (double)((uint64_t)(SUB + sub) << (o - 6));
	return lo + (double)(1ull << (o - 6)) / 2.0;
}

static double percentile(uint64_t total, double p)
{
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)(p * (double)total + 0.999999);
	if (want == 0)
		want = 1;
	uint64_t acc = 0;
	for (unsigned i = 0; i < OCT * SUB; i++) {
		acc += hist[i];
		if (acc >= want)
			return bucket_us(i);
	}
	return bucket_us(OCT * SUB - 1);
}

struct conn {
	int fd;
	int inflight;
	int dead;
	int want_out;            /* EPOLLOUT registered */
	size_t out_off, out_len; /* pending bytes in out */
	char *out;
	size_t out_cap;
	char in[65536];
	size_t in_len;
	uint64_t *sent_at; /* ring of send times, size depth */
	unsigned head, tail;
};

static const char *req;
static size_t req_len;
static long total, sent, done;
static long n_ok, n_notfound, n_other, n_errors;
static int depth;
static uint64_t deadline;

static void queue_requests(struct conn *c)
{
	while (!c->dead && c->inflight < depth && sent < total) {
		if (c->out_len + req_len > c->out_cap) {
			c->out_cap = (c->out_len + req_len) * 2;
			c->out = realloc(c->out, c->out_cap);
			if (!c->out) {
				perror("realloc");
				exit(2);
			}
		}
		memcpy(c->out + c->out_len, req, req_len);
		c->out_len += req_len;
		c->sent_at[c->tail] = now_ns();
		c->tail = (c->tail + 1) % (unsigned)depth;
		c->inflight++;
		sent++;
	}
}

static void kill_conn(struct conn *c, int ep, const char *why)
{
	if (c->dead)
		return;
	fprintf(stderr, "bench-socketmap: connection %d: %s\n", c->fd, why);
	n_errors += c->inflight ? c->inflight : 1;
	done += c->inflight;
	c->inflight = 0;
	c->dead = 1;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
}

static int flush_out(struct conn *c, int ep)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			kill_conn(c, ep, strerror(errno));
			return -1;
		}
		c->out_off += (size_t)w;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	/* Only a change of interest costs a syscall: one epoll_ctl per request
	 * would make the client, not the daemon, the bottleneck. */
	int want = c->out_len != 0;
	if (want != c->want_out) {
		struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_out = want;
	}
	return 0;
}

static int parse_replies(struct conn *c, int ep, uint64_t t)
{
	size_t pos = 0;
	for (;;) {
		size_t i = pos, n = 0;
		while (i < c->in_len && c->in[i] >= '0' && c->in[i] <= '9' && i - pos < 6)
			n = n * 10 + (size_t)(c->in[i++] - '0');
		if (i == c->in_len)
			break; /* need more */
		if (i == pos || c->in[i] != ':') {
			kill_conn(c, ep, "bad netstring length");
			return -1;
		}
		if (c->in_len < i + 1 + n + 1)
			break;
		if (c->in[i + 1 + n] != ',') {
			kill_conn(c, ep, "netstring without ','");
			return -1;
		}
		const char *p = c->in + i + 1;
		if (c->inflight == 0) {
			kill_conn(c, ep, "unsolicited reply");
			return -1;
		}
		if (n >= 3 && memcmp(p, "OK ", 3) == 0)
			n_ok++;
		else if (n >= 8 && memcmp(p, "NOTFOUND", 8) == 0)
			n_notfound++;
		else
			n_other++;
		hist[bucket_of(t - c->sent_at[c->head])]++;
		c->head = (c->head + 1) % (unsigned)depth;
		c->inflight--;
		done++;
		pos = i + 1 + n + 1;
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
	if (c->in_len == sizeof c->in) {
		kill_conn(c, ep, "reply too long");
		return -1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-socketmap --connect HOST:PORT [--connections N] [--pipeline D]\n"
			"       [--requests TOTAL] [--key 'postfix enforce.test'] [--json]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *target = NULL, *key = "postfix enforce.test";
	long nconn = 1;
	int json = 0;
	depth = 1;
	total = 10000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			json = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--connect"))
			target = v;
		else if (!strcmp(a, "--connections"))
			nconn = strtol(v, NULL, 10);
		else if (!strcmp(a, "--pipeline"))
			depth = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--requests"))
			total = strtol(v, NULL, 10);
		else if (!strcmp(a, "--key"))
			key = v;
		else
			usage();
	}
	if (!target || nconn < 1 || depth < 1 || total < 1)
		usage();
	const char *colon = strrchr(target, ':');
	if (!colon)
		usage();
	char host[256];
	snprintf(host, sizeof host, "%.*s", (int)(colon - target), target);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "bench-socketmap: %s: IPv4 address expected\n", host);
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nconn + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)nconn + 64 ? rl.rlim_max : (rlim_t)nconn + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	static char reqbuf[1100];
	size_t kl = strlen(key);
	if (kl > 1000)
		usage();
	req_len = (size_t)snprintf(reqbuf, sizeof reqbuf, "%zu:%s,", kl, key);
	req = reqbuf;

	int ep = epoll_create1(0);
	struct conn *cs = calloc((size_t)nconn, sizeof *cs);
	if (ep < 0 || !cs) {
		perror("setup");
		return 2;
	}
	/* Connect all first (blocking, so the measured phase holds only
	 * request traffic), then start. */
	for (long i = 0; i < nconn; i++) {
		struct conn *c = &cs[i];
		c->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
			fprintf(stderr, "bench-socketmap: connect %s (#%ld): %s\n", target, i, strerror(errno));
			return 1;
		}
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		c->sent_at = calloc((size_t)depth, sizeof *c->sent_at);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}
	uint64_t t0 = now_ns();
	deadline = t0 + (uint64_t)MAX_SECONDS * 1000000000u;
	for (long i = 0; i < nconn; i++) {
		queue_requests(&cs[i]);
		flush_out(&cs[i], ep);
	}
	int timed_out = 0;
	struct epoll_event evs[256];
	while (done < sent || sent < total) {
		long alive = 0;
		for (long i = 0; i < nconn && !alive; i++)
			alive = !cs[i].dead;
		if (!alive)
			break;
		uint64_t t = now_ns();
		if (t >= deadline) {
			timed_out = 1;
			break;
		}
		int ne = epoll_wait(ep, evs, 256, 1000);
		if (ne < 0) {
			if (errno == EINTR)
				continue;
			perror("epoll_wait");
			return 2;
		}
		t = now_ns();
		for (int k = 0; k < ne; k++) {
			struct conn *c = evs[k].data.ptr;
			if (c->dead)
				continue;
			if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
				ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
				if (r == 0) {
					kill_conn(c, ep, "closed by server");
					continue;
				}
				if (r < 0) {
					if (errno != EAGAIN && errno != EINTR)
						kill_conn(c, ep, strerror(errno));
					if (errno != EAGAIN)
						continue;
				} else {
					c->in_len += (size_t)r;
					if (parse_replies(c, ep, t) < 0)
						continue;
				}
			}
			queue_requests(c);
			flush_out(c, ep);
		}
	}
	uint64_t t1 = now_ns();
	for (long i = 0; i < nconn; i++)
		if (!cs[i].dead)
			close(cs[i].fd);
	if (timed_out)
		n_errors += sent - done;
	long answered = n_ok + n_notfound + n_other;
	double secs = (double)(t1 - t0) / 1e9;
	double rps = secs > 0 ? (double)answered / secs : 0;
	double p50 = percentile((uint64_t)answered, 0.50), p99 = percentile((uint64_t)answered, 0.99);
	double p999 = percentile((uint64_t)answered, 0.999);
	long errors = n_errors + n_other;
	if (json)
		printf("{\"connections\": %ld, \"pipeline\": %d, \"requests\": %ld, \"answered\": %ld, "
		       "\"ok\": %ld, \"notfound\": %ld, \"other\": %ld, \"errors\": %ld, \"timed_out\": %s, "
		       "\"seconds\": %.3f, \"per_second\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
		       "\"p999_us\": %.1f}\n",
		       nconn, depth, total, answered, n_ok, n_notfound, n_other, errors,
		       timed_out ? "true" : "false", secs, rps, p50, p99, p999);
	else
		printf("%ld connections x %d in flight: %ld answered in %.3f s = %.0f req/s; "
		       "p50 %.0f us, p99 %.0f us, p99.9 %.0f us; OK %ld, NOTFOUND %ld, other %ld, errors %ld%s\n",
		       nconn, depth, answered, secs, rps, p50, p99, p999, n_ok, n_notfound, n_other, errors,
		       timed_out ? " (stopped at 60 s)" : "");
	return errors ? 1 : 0;
}
