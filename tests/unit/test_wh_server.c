/* test_wh_server.c - the webhook server's defences against slow or hostile clients (wh_server.h,
 * wh_guard.h), each against a real server on loopback with real TLS clients (OpenSSL):
 *   - the per-address connection limit: one address cannot take every connection, another still gets in;
 *   - the deadline for the TLS handshake and the headers: a silent connection and a trickling one are cut
 *     (libmicrohttpd's inactivity timeout alone never cuts the trickling one);
 *   - the budget of request bytes in flight: a body that does not fit is answered 503 at once, a chunked
 *     one that outgrows it 503 at its end, and the bytes come back when requests finish;
 *   - AEAD-only TLS: CBC suites are refused, GCM and TLS 1.3 accepted.
 * The scale targets (1,100 idle connections, 1,000 slow bodies in 128 MiB) are in the e2e case
 * 31-webhook-abuse, which runs tests/integration/wh_abuse against the real binary. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util.h"
#include "test_slow.h"
#include "webhook/wh_certs.h"
#include "webhook/wh_guard.h"
#include "webhook/wh_server.h"
#include "webhook/wh_tls.h"

static char *g_ca, *g_cak, *g_crt, *g_key;
static struct wh_tls *g_tls;

static int setup(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT;
	const char *names[] = { "localhost", "127.0.0.1" };
	if (wh_cert_new_ca("test-ca", 86400, 0, &g_ca, &g_cak, &err) < 0 ||
	    wh_cert_new_serving(g_ca, g_cak, names, 2, 86400, 0, &g_crt, &g_key, &err) < 0)
		return -1;
	g_tls = wh_tls_new();
	int rc = wh_tls_set(g_tls, g_crt, g_key, &err);
	sb_release(&err);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	wh_tls_free(g_tls);
	free(g_ca), free(g_cak), free(g_crt), free(g_key);
	return 0;
}

static struct wh_server *start(struct wh_server_opts o)
{
	struct strbuf err = STRBUF_INIT;
	o.bind_address = "127.0.0.1";
	o.tls = g_tls;
	if (!o.threads)
		o.threads = 2;
	if (!o.max_connections)
		o.max_connections = 64;
	if (!o.idle_timeout_s)
		o.idle_timeout_s = (unsigned)(5 * test_slowdown());
	if (!o.request_timeout_ms)
		o.request_timeout_ms = 5000 * test_slowdown();
	if (!o.max_body)
		o.max_body = 64 * 1024;
	struct wh_server *s = wh_server_start(&o, &err);
	if (!s)
		fail_msg("wh_server_start: %s", err.buf);
	sb_release(&err);
	return s;
}

/* A TCP connection to port from the loopback address src ("127.0.0.2": a second client). */
static int tcp(const char *src, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, src, &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* Milliseconds until the server closes fd (reads return 0 or an error), or -1 after limit_ms. */
static int64_t ms_until_closed(int fd, int64_t limit_ms)
{
	int64_t t0 = kf_now_ms();
	char buf[4096];
	for (;;) {
		int64_t left = limit_ms - (kf_now_ms() - t0);
		if (left <= 0)
			return -1;
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			return kf_now_ms() - t0;
	}
}

struct tls_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

/* A TLS client from src; version 0 = any; ciphers NULL = OpenSSL's default. 0, or -1 when the handshake
 * failed. */
static int tls_open(struct tls_conn *t, const char *src, int port, int version, const char *ciphers)
{
	memset(t, 0, sizeof *t);
	t->fd = tcp(src, port);
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (version) {
		SSL_CTX_set_min_proto_version(t->ctx, version);
		SSL_CTX_set_max_proto_version(t->ctx, version);
	}
	if (ciphers)
		assert_int_equal(SSL_CTX_set_cipher_list(t->ctx, ciphers), 1);
	t->ssl = SSL_new(t->ctx);
	SSL_set_fd(t->ssl, t->fd);
	int ok = SSL_connect(t->ssl) == 1;
	ERR_clear_error();
	return ok ? 0 : -1;
}

static void tls_close(struct tls_conn *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	close(t->fd);
}

static void tls_send(struct tls_conn *t, const char *s, size_t n)
{
	assert_int_equal(SSL_write(t->ssl, s, (int)n), (int)n);
}

/* Reads a whole reply (the server closes or it ends with the body of Content-Length); returns its status,
 * body into out if not NULL. */
static int tls_reply(struct tls_conn *t, struct strbuf *out)
{
	struct strbuf r = STRBUF_INIT;
	char buf[4096];
	int status = 0;
	for (;;) {
		int n = SSL_read(t->ssl, buf, sizeof buf);
		if (n <= 0)
			break;
		sb_add(&r, buf, (size_t)n);
		char *end = strstr(r.buf, "\r\n\r\n");
		const char *cl = strcasestr(r.buf, "\r\ncontent-length: ");
		if (end && cl && cl < end && r.len >= (size_t)(end + 4 - r.buf) + strtoul(cl + 18, NULL, 10))
			break;
	}
	ERR_clear_error();
	sscanf(r.buf, "HTTP/1.1 %d", &status);
	if (out)
		sb_add(out, r.buf, r.len);
	sb_release(&r);
	return status;
}

/* POST head with Content-Length (len) or chunked (len = 0). */
static void post_head(struct tls_conn *t, size_t len)
{
	char head[256];
	int n = len ? snprintf(head, sizeof head, "POST /validate-image-cache HTTP/1.1\r\nHost: x\r\nContent-Type: "
						  "application/json\r\nContent-Length: %zu\r\n\r\n", len) :
		      snprintf(head, sizeof head, "POST /validate-image-cache HTTP/1.1\r\nHost: x\r\nContent-Type: "
						  "application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
	tls_send(t, head, (size_t)n);
}

static int healthz(const char *src, int port)
{
	struct tls_conn t;
	if (tls_open(&t, src, port, 0, NULL) < 0) {
		tls_close(&t);
		return -1;
	}
	const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	tls_send(&t, req, strlen(req));
	int st = tls_reply(&t, NULL);
	tls_close(&t);
	return st;
}

static void one_address_cannot_take_every_connection(void **state)
{
	(void)state;
	struct wh_server *s = start((struct wh_server_opts){ .max_conns_per_ip = 4, .header_timeout_ms = 20000 });
	int port = wh_server_port(s), fds[4];
	for (int i = 0; i < 4; i++)
		fds[i] = tcp("127.0.0.2", port);
	kf_sleep_ms(200 * test_slowdown()); /* accepted by now */
	/* a fifth from the same address is closed at once, long before any deadline */
	int fifth = tcp("127.0.0.2", port);
	int64_t ms = ms_until_closed(fifth, 8000);
	if (ms < 0 || ms > 5000)
		fail_msg("the 5th connection from one address was not refused (closed after %lld ms)", (long long)ms);
	close(fifth);
	/* another address is served while the four are held */
	assert_int_equal(healthz("127.0.0.1", port), 200);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	wh_server_stop(s, 1000);
}

static void handshake_and_headers_have_a_deadline(void **state)
{
	(void)state;
	/* idle timeout 20 s: libmicrohttpd alone would keep a silent connection 20 s, a trickling one forever.
	 * The header deadline is 2.5 s: generous for a handshake under valgrind on a loaded machine. */
	struct wh_server *s = start((struct wh_server_opts){ .header_timeout_ms = 2500, .idle_timeout_s = 20 });
	int port = wh_server_port(s);
	/* silent: no TLS handshake at all */
	int fd = tcp("127.0.0.1", port);
	int64_t ms = ms_until_closed(fd, 15000);
	close(fd);
	if (ms < 2000 || ms > 8000)
		fail_msg("a silent connection was closed after %lld ms, want about 2500", (long long)ms);
	/* trickling: the handshake done, then the request line one byte every 100 ms, never the end */
	struct tls_conn t;
	assert_int_equal(tls_open(&t, "127.0.0.1", port, 0, NULL), 0);
	const char *line = "POST /validate-image-cache HTTP/1.1\r\nHost: example.invalid\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa"
			   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	int64_t t0 = kf_now_ms(), cut = -1;
	for (size_t i = 0; i < strlen(line) && cut < 0; i++) {
		if (SSL_write(t.ssl, line + i, 1) != 1)
			cut = kf_now_ms() - t0;
		kf_sleep_ms(100);
		struct pollfd p = { t.fd, POLLIN, 0 };
		if (cut < 0 && poll(&p, 1, 0) > 0 && SSL_read(t.ssl, (char[16]){ 0 }, 16) <= 0)
			cut = kf_now_ms() - t0;
	}
	ERR_clear_error();
	tls_close(&t);
	if (cut < 0 || cut > 8000)
		fail_msg("a client trickling its headers was not cut (%lld ms)", (long long)cut);
	struct wh_server_stats st;
	wh_server_stats(s, &st);
	assert_true(st.expired >= 2);
	/* a prompt client is not affected, and a kept-alive one gets the idle timeout between requests */
	assert_int_equal(tls_open(&t, "127.0.0.1", port, 0, NULL), 0);
	const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	tls_send(&t, req, strlen(req));
	assert_int_equal(tls_reply(&t, NULL), 200);
	kf_sleep_ms(3000); /* past the header deadline of the connection's start */
	tls_send(&t, req, strlen(req));
	assert_int_equal(tls_reply(&t, NULL), 200);
	tls_close(&t);
	wh_server_stop(s, 1000);
}

static void request_bytes_in_flight_have_a_budget(void **state)
{
	(void)state;
	struct wh_server *s = start((struct wh_server_opts){ .max_body = 64 * 1024, .max_inflight_bytes = 100 * 1024 });
	int port = wh_server_port(s);
	/* A announces 60,000 bytes and sends some: they are taken from the budget */
	struct tls_conn a, b, c;
	assert_int_equal(tls_open(&a, "127.0.0.1", port, 0, NULL), 0);
	post_head(&a, 60000);
	char *junk = xmalloc(60000);
	memset(junk, ' ', 60000);
	tls_send(&a, junk, 1000);
	kf_sleep_ms(300);
	/* B's 60,000 from the same address do not fit its share (64 KiB here): 503 at once, before its body
	 * is sent, with Retry-After */
	assert_int_equal(tls_open(&b, "127.0.0.1", port, 0, NULL), 0);
	post_head(&b, 60000);
	struct strbuf r = STRBUF_INIT;
	int64_t t0 = kf_now_ms();
	assert_int_equal(tls_reply(&b, &r), 503);
	assert_true(kf_now_ms() - t0 < 3000);
	assert_non_null(strcasestr(r.buf, "\r\nRetry-After: 1\r\n"));
	assert_non_null(strstr(r.buf, "holds at most 102400 bytes of requests at once"));
	tls_close(&b);
	/* another address gets in (30,000 fit the 100 KiB budget beside A's 60,000), a third does not */
	struct tls_conn d, e;
	assert_int_equal(tls_open(&d, "127.0.0.2", port, 0, NULL), 0);
	post_head(&d, 30000);
	tls_send(&d, junk, 1000);
	kf_sleep_ms(300);
	assert_int_equal(tls_open(&e, "127.0.0.3", port, 0, NULL), 0);
	post_head(&e, 30000);
	assert_int_equal(tls_reply(&e, NULL), 503);
	tls_close(&e);
	tls_send(&d, junk, 29000);
	assert_int_equal(tls_reply(&d, NULL), 400);
	tls_close(&d);
	/* a chunked body that outgrows what is left of its address's share is discarded, 503 at its end */
	assert_int_equal(tls_open(&c, "127.0.0.1", port, 0, NULL), 0);
	post_head(&c, 0);
	for (int i = 0; i < 6; i++) {
		char chunk[16];
		int n = snprintf(chunk, sizeof chunk, "2000\r\n");
		tls_send(&c, chunk, (size_t)n);
		tls_send(&c, junk, 0x2000);
		tls_send(&c, "\r\n", 2);
	}
	tls_send(&c, "0\r\n\r\n", 5);
	sb_reset(&r);
	assert_int_equal(tls_reply(&c, &r), 503);
	tls_close(&c);
	/* A finishes (its junk is a 400), and its bytes come back: B's size fits again */
	tls_send(&a, junk, 59000);
	assert_int_equal(tls_reply(&a, NULL), 400);
	tls_close(&a);
	assert_int_equal(tls_open(&b, "127.0.0.1", port, 0, NULL), 0);
	post_head(&b, 60000);
	tls_send(&b, junk, 60000);
	assert_int_equal(tls_reply(&b, NULL), 400);
	tls_close(&b);
	struct wh_server_stats st;
	wh_server_stats(s, &st);
	assert_int_equal(st.busy, 3);
	assert_true(st.inflight_peak <= 100 * 1024);
	free(junk);
	sb_release(&r);
	wh_server_stop(s, 1000);
}

static void tls_is_aead_only(void **state)
{
	(void)state;
	struct wh_server *s = start((struct wh_server_opts){ 0 });
	int port = wh_server_port(s);
	struct tls_conn t;
	static const char *const refused[] = { "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
					       "ECDHE-ECDSA-AES128-SHA256" };
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		if (tls_open(&t, "127.0.0.1", port, TLS1_2_VERSION, refused[i]) == 0)
			fail_msg("TLS 1.2 with %s (CBC) was accepted", refused[i]);
		tls_close(&t);
	}
	static const char *const accepted[] = { "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
						"ECDHE-ECDSA-CHACHA20-POLY1305" };
	for (size_t i = 0; i < ARRAY_SIZE(accepted); i++) {
		if (tls_open(&t, "127.0.0.1", port, TLS1_2_VERSION, accepted[i]) < 0)
			fail_msg("TLS 1.2 with %s refused", accepted[i]);
		tls_close(&t);
	}
	assert_int_equal(tls_open(&t, "127.0.0.1", port, TLS1_3_VERSION, NULL), 0);
	tls_close(&t);
	assert_int_not_equal(tls_open(&t, "127.0.0.1", port, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0"), 0);
	tls_close(&t);
	wh_server_stop(s, 1000);
}

/* The guard on its own: the budget and the address share are exact, and a deadline shuts the socket down. */
static void guard_budget_and_deadline(void **state)
{
	(void)state;
	struct wh_guard *g = wh_guard_new(1000, 700);
	assert_non_null(g);
	int sv[2], sv2[2], sv3[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv3), 0);
	int64_t t_open = kf_now_ms();
	struct wh_guard_conn *c = wh_guard_open(g, sv[0], "10.0.0.1", t_open + 200);
	struct wh_guard_conn *d = wh_guard_open(g, sv2[0], "10.0.0.1", kf_now_ms() + 100);
	struct wh_guard_conn *e = wh_guard_open(g, sv3[0], "10.0.0.2", 0);
	assert_int_equal(wh_guard_reserve(g, c, 600), 0);
	assert_int_equal(wh_guard_reserve(g, d, 101), -1); /* 10.0.0.1's share is 700 */
	assert_int_equal(wh_guard_reserve(g, d, 100), 0);
	assert_int_equal(wh_guard_reserve(g, e, 301), -1); /* the budget is 1000 */
	assert_int_equal(wh_guard_reserve(g, e, 300), 0);
	assert_int_equal(wh_guard_reserve(g, e, 1), -1);
	assert_int_equal(wh_guard_reserve(g, e, (size_t)-1), -1);
	wh_guard_release(g, c, 600);
	assert_int_equal(wh_guard_reserve(g, e, 400), 0); /* 10.0.0.2 holds 700 now */
	wh_guard_release(g, e, 700);
	wh_guard_release(g, d, 100);
	/* a moved deadline is the one that counts; 0 = none */
	wh_guard_set_deadline(g, d, 0);
	int64_t ms = ms_until_closed(sv[1], 3000);
	/* closed at its deadline, 200 ms after it was opened (not before; however slow the steps between) */
	int64_t since_open = kf_now_ms() - t_open;
	assert_true(ms >= 0 && since_open >= 195 && since_open < 3200);
	assert_int_equal(ms_until_closed(sv2[1], 300), -1);
	struct wh_guard_stats st;
	wh_guard_stats(g, &st);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.open, 3);
	assert_int_equal(st.in_use, 0);
	assert_int_equal(st.peak, 1000);
	wh_guard_close(g, c);
	wh_guard_close(g, d);
	wh_guard_close(g, e);
	wh_guard_stats(g, &st);
	assert_int_equal(st.open, 0);
	close(sv[0]), close(sv[1]), close(sv2[0]), close(sv2[1]), close(sv3[0]), close(sv3[1]);
	wh_guard_free(g);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* a refused connection written to must fail the write, not end the test */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(guard_budget_and_deadline),
		cmocka_unit_test(one_address_cannot_take_every_connection),
		cmocka_unit_test(handshake_and_headers_have_a_deadline),
		cmocka_unit_test(request_bytes_in_flight_have_a_budget),
		cmocka_unit_test(tls_is_aead_only),
	};
	return cmocka_run_group_tests_name("wh_server", tests, setup, teardown);
}
