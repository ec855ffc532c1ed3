/* wh_abuse.c - a hostile client for the webhook server, and a well-behaved one beside it: what
 * tests/e2e/cases/31-webhook-abuse.sh runs against a real `kubefledged webhook-server` on loopback to check
 * the targets of issue 10 #15.
 *
 *   wh_abuse --port P --review FILE --mode idle|slow [--conns N] [--sources K] [--seconds S]
 *            [--pid WEBHOOK_PID] [--max-review-ms 2000] [--max-rss-mib 128] [--chunk BYTES] [--every MS]
 *
 * The attacker holds --conns connections from --sources loopback addresses (127.0.1.1, 127.0.1.2, ...;
 * one address is "one client"), and opens a connection again whenever the server closes one (after a
 * second: the server refuses or cuts, the attacker comes back):
 *   idle  plain TCP connections that never send a byte (no TLS handshake, no request);
 *   slow  TLS connections that POST /validate-image-cache announcing a --length body (default 4 MiB, the
 *         largest accepted) and send it --chunk bytes every --every ms (default 16 KiB every 250 ms, 64 KiB/s
 *         each).
 * Meanwhile the reviewer, from 127.0.0.1, POSTs the AdmissionReview FILE every 200 ms on a fresh TLS
 * connection (what a new API server connection costs) and times each answer; and the RSS of --pid is read
 * from /proc every 100 ms.
 * Prints what happened and exits 1 when a target is missed: a review failed or took longer than
 * --max-review-ms (0: reviews are reported, not judged), or the webhook's VmHWM reached --max-rss-mib.
 * 2: usage or set-up error. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { ST_WAIT, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN };

struct conn {
	int fd;
	SSL *ssl;
	enum state st;
	int src;
	int64_t next_ms; /* ST_WAIT: reconnect at; ST_OPEN (slow): next chunk at */
	size_t sent;
	int pending;     /* a chunk SSL_write asked to retry */
};

static int g_port, g_conns = 1100, g_sources = 1, g_seconds = 20, g_pid, g_max_review_ms = 2000, g_max_rss_mib = 128;
static int g_slow, g_chunk = 16384, g_every = 250, g_length = 4194304;
static const char *g_review;
static char *g_body;
static size_t g_body_len;
static atomic_int g_stop;
static SSL_CTX *g_ctx;
static char g_junk[65536];

/* what happened */
static uint64_t n_connects, n_closed_by_server, n_handshakes, n_bytes_sent, n_refused_fast;
static atomic_long rss_peak_kib;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* ---- the attacker ---- */

static int ep;

static void conn_start(struct conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		c->st = ST_WAIT;
		c->next_ms = now_ms() + 1000;
		return;
	}
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(0x7f000100u + 1 + (uint32_t)c->src); /* 127.0.1.<1 + src> */
	int one = 1;
	setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(c->fd, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("wh_abuse: bind");
		exit(2);
	}
	a.sin_port = htons((uint16_t)g_port);
	a.sin_addr.s_addr = htonl(0x7f000001u);
	n_connects++;
	int r = connect(c->fd, (struct sockaddr *)&a, sizeof a);
	c->st = ST_CONNECTING;
	if (r < 0 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		c->st = ST_WAIT;
		c->next_ms = now_ms() + 1000;
		return;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_drop(struct conn *c, int by_server)
{
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->st = ST_WAIT;
	c->next_ms = now_ms() + 1000;
	c->pending = 0;
	c->sent = 0;
	if (by_server)
		n_closed_by_server++;
	ERR_clear_error();
}

static void conn_want(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events | EPOLLRDHUP, .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void slow_send(struct conn *c)
{
	if (!c->pending && c->sent == 0) {
		char head[256];
		int n = snprintf(head, sizeof head,
				 "POST /validate-image-cache HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
				 "Content-Length: %d\r\n\r\n", g_length);
		if (SSL_write(c->ssl, head, n) != n) { /* a fresh connection takes 150 bytes */
			conn_drop(c, 1);
			return;
		}
		c->sent = 1;
	}
	if (c->sent >= (size_t)g_length)
		return;
	int want = (size_t)g_length - c->sent + 1 < (size_t)g_chunk ? (int)((size_t)g_length - c->sent + 1) : g_chunk;
	int n = SSL_write(c->ssl, g_junk, want);
	if (n > 0) {
		c->pending = 0;
		c->sent += (size_t)n;
		n_bytes_sent += (uint64_t)n;
		c->next_ms = now_ms() + g_every;
		return;
	}
	int e = SSL_get_error(c->ssl, n);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
		c->pending = 1;
		c->next_ms = now_ms() + 20;
		return;
	}
	conn_drop(c, 1);
}

static void conn_event(struct conn *c, uint32_t events)
{
	if (c->st == ST_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			conn_drop(c, 1);
			return;
		}
		if (!g_slow) {
			c->st = ST_OPEN;
			conn_want(c, EPOLLIN);
			return;
		}
		c->ssl = SSL_new(g_ctx);
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_mode(c->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
		c->st = ST_HANDSHAKE;
	}
	if (c->st == ST_HANDSHAKE) {
		int r = SSL_connect(c->ssl);
		if (r == 1) {
			n_handshakes++;
			c->st = ST_OPEN;
			c->next_ms = 0;
			conn_want(c, EPOLLIN);
			slow_send(c);
			return;
		}
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			conn_want(c, EPOLLIN);
		else if (e == SSL_ERROR_WANT_WRITE)
			conn_want(c, EPOLLOUT);
		else
			conn_drop(c, 1);
		return;
	}
	if (c->st == ST_OPEN && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		/* the server answered (a 503, a 413) or closed: either way it is done with us */
		char buf[4096];
		int done;
		if (g_slow) {
			int n = SSL_read(c->ssl, buf, sizeof buf), e = n > 0 ? 0 : SSL_get_error(c->ssl, n);
			/* a TLS 1.3 session ticket is read as nothing: not an answer */
			done = n > 0 || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || (events & EPOLLRDHUP);
		} else {
			done = read(c->fd, buf, sizeof buf) <= 0;
		}
		if (done) {
			if (c->sent < 65536)
				n_refused_fast++;
			conn_drop(c, 1);
		}
	}
}

static void *attack(void *arg)
{
	(void)arg;
	struct conn *cs = calloc((size_t)g_conns, sizeof *cs);
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < g_conns; i++) {
		cs[i].fd = -1;
		cs[i].src = i % g_sources;
		conn_start(&cs[i]);
	}
	struct epoll_event evs[256];
	while (!atomic_load(&g_stop)) {
		int n = epoll_wait(ep, evs, 256, 20);
		for (int i = 0; i < n; i++)
			conn_event(evs[i].data.ptr, evs[i].events);
		int64_t t = now_ms();
		for (int i = 0; i < g_conns; i++) {
			struct conn *c = &cs[i];
			if (c->st == ST_WAIT && t >= c->next_ms)
				conn_start(c);
			else if (g_slow && c->st == ST_OPEN && t >= c->next_ms)
				slow_send(c);
		}
	}
	int held = 0;
	for (int i = 0; i < g_conns; i++) {
		held += cs[i].st == ST_OPEN;
		conn_drop(&cs[i], 0);
	}
	printf("attack: mode=%s conns=%d from %d address(es) for %ds: %llu connects, %llu closed by the server "
	       "(%llu before 64 KiB of body), %llu TLS handshakes, %llu body bytes sent, %d open at the end\n",
	       g_slow ? "slow" : "idle", g_conns, g_sources, g_seconds, (unsigned long long)n_connects,
	       (unsigned long long)n_closed_by_server, (unsigned long long)n_refused_fast,
	       (unsigned long long)n_handshakes, (unsigned long long)n_bytes_sent, held);
	free(cs);
	close(ep);
	return NULL;
}

/* ---- the reviewer and the RSS sampler ---- */

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	(void)p, (void)ud;
	return sz * n;
}

static int cmp_ms(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static long read_status_kib(const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", g_pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, strlen(key)))
			v = strtol(line + strlen(key), NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static void *sample_rss(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_stop)) {
		long v = read_status_kib("VmRSS:");
		if (v > atomic_load(&rss_peak_kib))
			atomic_store(&rss_peak_kib, v);
		sleep_ms(100);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--port"))
			g_port = atoi(v);
		else if (!strcmp(k, "--review"))
			g_review = v;
		else if (!strcmp(k, "--mode"))
			g_slow = !strcmp(v, "slow");
		else if (!strcmp(k, "--conns"))
			g_conns = atoi(v);
		else if (!strcmp(k, "--sources"))
			g_sources = atoi(v);
		else if (!strcmp(k, "--seconds"))
			g_seconds = atoi(v);
		else if (!strcmp(k, "--pid"))
			g_pid = atoi(v);
		else if (!strcmp(k, "--max-review-ms"))
			g_max_review_ms = atoi(v);
		else if (!strcmp(k, "--max-rss-mib"))
			g_max_rss_mib = atoi(v);
		else if (!strcmp(k, "--chunk"))
			g_chunk = atoi(v);
		else if (!strcmp(k, "--every"))
			g_every = atoi(v);
		else if (!strcmp(k, "--length"))
			g_length = atoi(v);
		else {
			fprintf(stderr, "wh_abuse: unknown option %s\n", k);
			return 2;
		}
	}
	if (!g_port || !g_review || g_conns < 1 || g_sources < 1 || g_sources > 250 || g_chunk < 1 ||
	    g_chunk > (int)sizeof g_junk) {
		fprintf(stderr, "usage: wh_abuse --port P --review FILE --mode idle|slow [--conns N] [--sources K] "
				"[--seconds S] [--pid PID] [--max-review-ms MS] [--max-rss-mib MIB] [--chunk B] "
				"[--every MS] [--length B]\n");
		return 2;
	}
	FILE *f = fopen(g_review, "rb");
	if (!f) {
		perror(g_review);
		return 2;
	}
	g_body = malloc(1 << 20);
	g_body_len = fread(g_body, 1, 1 << 20, f);
	fclose(f);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)g_conns + 64) {
		fprintf(stderr, "wh_abuse: %d connections need more open files than %llu\n", g_conns,
			(unsigned long long)rl.rlim_cur);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* the server closes on us all the time: that is the point */
	memset(g_junk, ' ', sizeof g_junk);
	g_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	long rss0 = g_pid ? read_status_kib("VmRSS:") : -1;

	pthread_t at, st;
	pthread_create(&at, NULL, attack, NULL);
	if (g_pid)
		pthread_create(&st, NULL, sample_rss, NULL);
	sleep_ms(2000); /* the attack in place before the first review */

	char url[64];
	snprintf(url, sizeof url, "https://127.0.0.1:%d/validate-image-cache", g_port);
	int64_t *lat = calloc(100000, sizeof *lat);
	int n = 0, failed = 0;
	char first_error[256] = "";
	int64_t end = now_ms() + (int64_t)g_seconds * 1000;
	while (now_ms() < end && n < 100000) {
		CURL *h = curl_easy_init();
		struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
		hd = curl_slist_append(hd, "Expect:");
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, g_body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)g_body_len);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L); /* the API server's is 5 s at most (timeoutSeconds) */
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		int64_t t0 = now_ms();
		CURLcode rc = curl_easy_perform(h);
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		lat[n++] = now_ms() - t0;
		if (rc != CURLE_OK || status != 200) {
			if (!failed++)
				snprintf(first_error, sizeof first_error, "%s, HTTP %ld", curl_easy_strerror(rc), status);
		}
		curl_slist_free_all(hd);
		curl_easy_cleanup(h);
		int64_t left = t0 + 200 - now_ms();
		if (left > 0)
			sleep_ms(left);
	}
	atomic_store(&g_stop, 1);
	pthread_join(at, NULL);
	if (g_pid)
		pthread_join(st, NULL);
	long hwm = g_pid ? read_status_kib("VmHWM:") : -1;
	qsort(lat, (size_t)n, sizeof *lat, cmp_ms);
	int64_t p50 = n ? lat[n / 2] : 0, p99 = n ? lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] : 0,
		max = n ? lat[n - 1] : 0;
	printf("reviews: %d sent (fresh TLS connection each), %d failed%s%s%s, latency p50 %lld ms, p99 %lld ms, "
	       "max %lld ms (target: %s%d ms)\n",
	       n, failed, failed ? " (first: " : "", first_error, failed ? ")" : "", (long long)p50, (long long)p99,
	       (long long)max, g_max_review_ms > 0 ? "<= " : "none, was ", g_max_review_ms > 0 ? g_max_review_ms : 0);
	int bad = g_max_review_ms > 0 && (n == 0 || failed > 0 || max > g_max_review_ms);
	if (g_pid) {
		long peak = atomic_load(&rss_peak_kib);
		printf("webhook RSS: %.1f MiB before, peak %.1f MiB sampled every 100 ms, VmHWM %.1f MiB (target < %d MiB)\n",
		       rss0 / 1024.0, peak / 1024.0, hwm / 1024.0, g_max_rss_mib);
		if (hwm < 0 || hwm >= (long)g_max_rss_mib * 1024)
			bad = 1;
	}
	printf("result: %s\n", bad ? "TARGET MISSED" : "ok");
	free(lat);
	free(g_body);
	SSL_CTX_free(g_ctx);
	curl_global_cleanup();
	return bad;
}
