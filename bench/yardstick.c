/* yardstick.c: the fastest socketmap server this machine allows, as a
 * yardstick for bench/run-daemon. One thread, epoll, one read and one write
 * per batch of requests, and a constant reply ("NOTFOUND ") counted per
 * request terminator. No parsing, no lookup, no logging: whatever rate the
 * load client reaches against it is the ceiling of the client, the kernel's
 * loopback TCP and the machine, not of any daemon.
 * usage: bench-yardstick PORT   (binds 127.0.0.1:PORT; stop it with a signal) */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#define REPLY "9:NOTFOUND ,"

int main(int argc, char **argv);

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: bench-yardstick PORT\n");
		return 2;
	}
	int port = atoi(argv[1]);
	int one = 1;
	int lis = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(lis, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (lis < 0 || bind(lis, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lis, 1024) != 0) {
		perror("bench-yardstick: bind");
		return 1;
	}
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lis };
	epoll_ctl(ep, EPOLL_CTL_ADD, lis, &ev);
	static char in[65536], out[65536 / 2 * (sizeof REPLY - 1)];
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lis) {
				int c;
				while ((c = accept4(lis, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
				}
				continue;
			}
			ssize_t r = read(fd, in, sizeof in);
			if (r <= 0) {
				if (r == 0 || errno != EAGAIN)
					close(fd);
				continue;
			}
			/* Every request ends in ',' and holds none (keys are domains). */
			size_t o = 0;
			for (ssize_t j = 0; j < r; j++) {
				if (in[j] == ',') {
					memcpy(out + o, REPLY, sizeof REPLY - 1);
					o += sizeof REPLY - 1;
				}
			}
			if (o > 0 && write(fd, out, o) < 0 && errno != EAGAIN)
				close(fd);
		}
	}
}
