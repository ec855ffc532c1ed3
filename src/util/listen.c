/* listen.c - listening TCP sockets (see listen.h). */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

int kf_listen_tcp(const char *addr, int port, int *port_out, struct strbuf *err)
{
	int fd = -1;
	char pbuf[16];
	snprintf(pbuf, sizeof pbuf, "%d", port);
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	int any = !addr || !*addr;
	if (any) { /* dual stack where IPv6 exists, else IPv4 */
		hints.ai_family = AF_INET6;
		if (getaddrinfo(NULL, pbuf, &hints, &ai) || !ai ||
		    (fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
			if (ai)
				freeaddrinfo(ai);
			ai = NULL;
			hints.ai_family = AF_INET;
		} else {
			int off = 0;
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
		}
	}
	if (!ai) {
		int gr = getaddrinfo(any ? NULL : addr, pbuf, &hints, &ai);
		if (gr) {
			sb_addf(err, "cannot resolve bind address \"%s\": %s", any ? "" : addr, gai_strerror(gr));
			return -1;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			sb_addf(err, "socket: %s", strerror(errno));
			freeaddrinfo(ai);
			return -1;
		}
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		sb_addf(err, "cannot listen on %s:%d: %s", any ? "" : addr, port, strerror(errno));
		close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						    ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

int kf_split_host_port(const char *s, char **host, int *port, struct strbuf *err)
{
	*host = NULL;
	const char *colon = s ? strrchr(s, ':') : NULL;
	if (!colon) {
		sb_addf(err, "\"%s\": want host:port, :port or [ipv6]:port", s ? s : "");
		return -1;
	}
	char *end = NULL;
	long p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 0 || p > 65535) {
		sb_addf(err, "\"%s\": invalid port \"%s\"", s, colon + 1);
		return -1;
	}
	const char *h = s;
	size_t hl = (size_t)(colon - s);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	} else if (memchr(h, ':', hl)) {
		sb_addf(err, "\"%s\": an IPv6 address needs brackets ([::1]:8080)", s);
		return -1;
	}
	*host = xstrndup(h, hl);
	*port = (int)p;
	return 0;
}
