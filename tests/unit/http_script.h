/* http_script.h - a scripted HTTP/1.1 responder on a loopback port, for the client's unit tests that need
 * a transport: retries after 429 / Retry-After, the write fence, request counters, the informer's
 * relist-or-rewatch decisions and its stop in the middle of a slow list. It replays response bodies
 * recorded from kube-apiserver v1.20.2 (tests/unit/data/kube), one scripted step per request in order,
 * and logs every request line ("METHOD /path?query") for the test to check. It is not an API server:
 * it knows nothing about resources; the end-to-end tests use the real one.
 *
 * Header-only (static functions): include it in one test program. */
#ifndef HTTP_SCRIPT_H
#define HTTP_SCRIPT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct hs_step {
	int status;             /* HTTP status */
	const char *headers;    /* extra header lines, each ending in "\r\n", or NULL */
	const char *body;       /* NULL = empty */
	int delay_ms;           /* wait before answering (the client may give up meanwhile) */
	int stream;             /* chunked, like a watch: body as one chunk, then hold_ms, then the end */
	int hold_ms;            /* stream: keep the connection open this long after the body */
	int cut;                /* stream: close the connection without the final chunk (a dead stream) */
};

#define HS_MAX_LOG 64
#define HS_MAX_CONNS 32

struct hs {
	int lfd, port;
	pthread_t th;
	pthread_t conn_th[HS_MAX_CONNS];
	int conn_fd[HS_MAX_CONNS];
	int nconns;
	pthread_mutex_t mu;
	const struct hs_step *steps;
	size_t nsteps, next;
	char log[HS_MAX_LOG][256];
	int64_t log_ms[HS_MAX_LOG]; /* when each request arrived (CLOCK_MONOTONIC ms) */
	size_t nlog;
	int closed; /* connections the client closed */
	_Atomic int stop;
};

/* Sleeps up to ms, or less when the peer closes or the responder stops. Returns 1 if the peer went. */
static int hs_wait(struct hs *s, int fd, int ms)
{
	for (int waited = 0; waited < ms && !s->stop; waited += 20) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 20) > 0) {
			char b[64];
			if (recv(fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT) <= 0)
				return 1;
			return 0; /* a pipelined request: stop waiting, it is served next */
		}
	}
	return 0;
}

static int hs_send(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads one request (headers and a Content-Length body) into buf; returns its length, 0 on close. */
static size_t hs_read_request(struct hs *s, int fd, char *buf, size_t cap)
{
	size_t len = 0;
	char *end = NULL;
	while (!s->stop && !(end = memmem(buf, len, "\r\n\r\n", 4))) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
		if (r <= 0)
			return 0;
		len += (size_t)r;
		buf[len] = '\0';
	}
	if (!end)
		return 0;
	size_t hdr = (size_t)(end - buf) + 4, want = 0;
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl && cl < end)
		want = strtoul(cl + 17, NULL, 10);
	while (!s->stop && len < hdr + want && len < cap - 1) {
		ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
		if (r <= 0)
			return 0;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return len;
}

static void *hs_conn_main(void *arg)
{
	struct hs *s = ((void **)arg)[0];
	int fd = (int)(intptr_t)((void **)arg)[1];
	free(arg);
	char *buf = malloc(1 << 20);
	for (;;) {
		size_t n = hs_read_request(s, fd, buf, 1 << 20);
		if (!n) {
			pthread_mutex_lock(&s->mu);
			s->closed += !atomic_load(&s->stop);
			pthread_mutex_unlock(&s->mu);
			break;
		}
		char line[256];
		size_t ll = strcspn(buf, "\r");
		snprintf(line, sizeof line, "%.*s", (int)(ll > 9 && !memcmp(buf + ll - 9, " HTTP/1.1", 9) ? ll - 9 : ll), buf);
		pthread_mutex_lock(&s->mu);
		const struct hs_step *st = s->next < s->nsteps ? &s->steps[s->next++] : NULL;
		if (s->nlog < HS_MAX_LOG) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			s->log_ms[s->nlog] = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
			snprintf(s->log[s->nlog++], sizeof s->log[0], "%s", line);
		}
		pthread_mutex_unlock(&s->mu);
		static const struct hs_step none = { 500, NULL, "no more script steps", 0, 0, 0, 0 };
		if (!st)
			st = &none;
		if (st->delay_ms && hs_wait(s, fd, st->delay_ms))
			break;
		const char *body = st->body ? st->body : "";
		char head[1024];
		if (st->stream) {
			snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sTransfer-Encoding: chunked\r\n\r\n",
				 st->status, st->headers ? st->headers : "");
			char ch[32];
			snprintf(ch, sizeof ch, "%zx\r\n", strlen(body));
			if (hs_send(fd, head, strlen(head)) || (*body && (hs_send(fd, ch, strlen(ch)) ||
					hs_send(fd, body, strlen(body)) || hs_send(fd, "\r\n", 2))))
				break;
			if (st->hold_ms && hs_wait(s, fd, st->hold_ms))
				break;
			if (st->cut || hs_send(fd, "0\r\n\r\n", 5))
				break;
		} else {
			snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
				 st->status, st->headers ? st->headers : "", strlen(body));
			if (hs_send(fd, head, strlen(head)) || hs_send(fd, body, strlen(body)))
				break;
		}
	}
	free(buf);
	shutdown(fd, SHUT_RDWR);
	return NULL;
}

static void *hs_main(void *arg)
{
	struct hs *s = arg;
	while (!s->stop) {
		struct pollfd p = { s->lfd, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->mu);
		if (s->nconns == HS_MAX_CONNS) {
			pthread_mutex_unlock(&s->mu);
			close(fd);
			continue;
		}
		void **a = malloc(2 * sizeof *a);
		a[0] = s;
		a[1] = (void *)(intptr_t)fd;
		s->conn_fd[s->nconns] = fd;
		pthread_create(&s->conn_th[s->nconns++], NULL, hs_conn_main, a);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

/* Starts serving steps[0..n) on 127.0.0.1 (a free port in s->port). Returns 0 or -1. */
static int hs_start(struct hs *s, const struct hs_step *steps, size_t n)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	s->steps = steps;
	s->nsteps = n;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) || listen(s->lfd, 16) ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &al))
		return -1;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->th, NULL, hs_main, s) ? -1 : 0;
}

static void hs_stop(struct hs *s)
{
	s->stop = 1;
	pthread_join(s->th, NULL);
	for (int i = 0; i < s->nconns; i++) {
		pthread_join(s->conn_th[i], NULL);
		close(s->conn_fd[i]);
	}
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
}

/* Requests served so far (thread safe). */
static inline size_t hs_requests(struct hs *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->nlog;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Waits up to ms for the client to have closed n connections; returns how many it closed. */
static inline int hs_wait_closed(struct hs *s, int n, int ms)
{
	int c = 0;
	for (int waited = 0; waited <= ms; waited += 10) {
		pthread_mutex_lock(&s->mu);
		c = s->closed;
		pthread_mutex_unlock(&s->mu);
		if (c >= n)
			break;
		usleep(10000);
	}
	return c;
}

/* The server URL for a kube_config. */
static inline void hs_url(const struct hs *s, char *buf, size_t n)
{
	snprintf(buf, n, "http://127.0.0.1:%d", s->port);
}

#endif
