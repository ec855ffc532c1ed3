/* test_cri_docker.c - the Docker Engine API client: parsers fed with replies recorded from dockerd 20.10
 * (tests/unit/data/cri/docker_*), and the HTTP client against a small fake dockerd on a unix socket in
 * a temp dir that replays those recordings and keeps the requests it got. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cri.h"
#include "cri_docker.h"
#include "util/util.h"

#define REF "127.0.0.1:45729/test/dock:v1"

static char *read_data(const char *name, size_t *len)
{
	struct strbuf err = STRBUF_INIT;
	char path[512];
	snprintf(path, sizeof path, "%s/cri/%s", TEST_DATA_DIR, name);
	char *d = kf_read_file(path, len, &err);
	if (!d)
		fail_msg("%s", err.buf);
	sb_release(&err);
	return d;
}

static void recorded_replies_parse(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT, msg = STRBUF_INIT;
	size_t len;
	char *d = read_data("docker_images.json", &len);
	struct cri_image_list l;
	assert_int_equal(cri_docker_parse_images(d, len, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].id, "sha256:d074e09a6be124e62b071be8f0840d9f4f5b16cf0c36484799776b0690be4af2");
	assert_int_equal(l.items[0].n_repo_tags, 2);
	assert_string_equal(l.items[0].repo_tags[1], REF);
	assert_int_equal(l.items[0].n_repo_digests, 1);
	assert_int_equal(l.items[0].size, 11);
	cri_image_list_free(&l);
	free(d);

	d = read_data("docker_inspect.json", &len);
	struct cri_image img;
	assert_int_equal(cri_docker_parse_inspect(d, len, &img, &err), 0);
	assert_int_equal(img.n_repo_tags, 2);
	assert_int_equal(strncmp(img.repo_digests[0], "127.0.0.1:45729/test/dock@sha256:", 33), 0);
	cri_image_clear(&img);
	free(d);

	d = read_data("docker_version.json", &len);
	struct cri_version v;
	assert_int_equal(cri_docker_parse_version(d, len, &v, &err), 0);
	assert_string_equal(v.runtime_name, "docker");
	assert_string_equal(v.runtime_version, "20.10.24+dfsg1");
	assert_string_equal(v.runtime_api_version, "1.41");
	cri_version_clear(&v);
	free(d);

	d = read_data("docker_pull_ok.stream", &len);
	assert_int_equal(cri_docker_parse_pull_stream(d, len, &err), 0);
	free(d);
	d = read_data("docker_pull_error.stream", &len);
	assert_int_equal(cri_docker_parse_pull_stream(d, len, &err), CRI_UNKNOWN);
	assert_string_equal(err.buf, "Error response from daemon: unknown blob");
	free(d);

	d = read_data("docker_delete_untag.json", &len);
	assert_int_equal(cri_docker_parse_delete(d, len, &msg, &err), 0);
	assert_string_equal(msg.buf, "untagged " REF ", untagged 127.0.0.1:45729/test/dock@sha256:5c948585daec2591"
				     "ea2dc686ad94ce7dcfe1f514a9ad3a47bb8af86feb4f296b");
	free(d);
	sb_reset(&msg);
	d = read_data("docker_delete_image.json", &len);
	assert_int_equal(cri_docker_parse_delete(d, len, &msg, &err), 0);
	assert_non_null(strstr(msg.buf, ", deleted sha256:d074e09a6be1"));
	free(d);

	d = read_data("docker_error_404.json", &len);
	sb_reset(&err);
	cri_docker_error_text(404, d, len, &err);
	assert_string_equal(err.buf, "Error response from daemon: No such image: " REF);
	free(d);
	sb_reset(&err);
	cri_docker_error_text(502, "Bad Gateway\n", 12, &err);
	assert_string_equal(err.buf, "Error response from daemon (HTTP 502): Bad Gateway");

	/* malformed input is an error, not a crash */
	sb_reset(&err);
	assert_int_equal(cri_docker_parse_images("[{\"Id\":", 7, &l, &err), CRI_EPROTO);
	assert_non_null(strstr(err.buf, "malformed image list from docker"));
	assert_int_equal(cri_docker_parse_images("{}", 2, &l, &err), CRI_EPROTO);
	assert_int_equal(cri_docker_parse_images("[{\"RepoTags\":[]}]", 17, &l, &err), CRI_EPROTO);
	assert_null(l.items);
	assert_int_equal(cri_docker_parse_pull_stream("{\"status\":\"x\"}\nnot json\n", 24, &err), CRI_EPROTO);
	assert_int_equal(cri_docker_parse_version("{\"Version\":1}", 13, &v, &err), CRI_EPROTO);
	/* "<none>" placeholders of dangling images are dropped */
	const char *dangling = "[{\"Id\":\"sha256:1\",\"RepoTags\":[\"<none>:<none>\"],\"RepoDigests\":null,\"Size\":5}]";
	assert_int_equal(cri_docker_parse_images(dangling, strlen(dangling), &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.items[0].n_repo_tags, 0);
	cri_image_list_free(&l);
	sb_release(&err);
	sb_release(&msg);
}

static void registry_auth_is_base64url_json(void **state)
{
	(void)state;
	struct cri_auth a = { .username = "tester", .password = "s3cret?>>", .server_address = "reg:5005" };
	char *h = cri_docker_registry_auth(&a);
	/* base64url: no '+' or '/' */
	assert_null(strpbrk(h, "+/"));
	/* decode by hand */
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct strbuf dec = STRBUF_INIT;
	uint32_t acc = 0;
	int bits = 0;
	for (const char *p = h; *p && *p != '='; p++) {
		acc = acc << 6 | (uint32_t)(strchr(al, *p) - al);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sb_addc(&dec, (char)(acc >> bits & 0xff));
		}
	}
	assert_string_equal(dec.buf, "{\"password\":\"s3cret?>>\",\"serveraddress\":\"reg:5005\",\"username\":\"tester\"}");
	sb_release(&dec);
	free(h);
}

/* ---- a fake dockerd ---- */

struct reply {
	int status;
	const char *file; /* recorded body in data/cri, or NULL */
	const char *body; /* or literal */
};

struct fake_dockerd {
	char dir[40], sock[80];
	int fd;
	const struct reply *replies;
	int nreplies;
	char requests[24][2048];
	int nrequests;
	pthread_t th;
};

static void *serve(void *arg)
{
	struct fake_dockerd *f = arg;
	for (int i = 0; i < f->nreplies; i++) {
		int c = accept(f->fd, NULL, NULL);
		if (c < 0)
			break;
		char *req = f->requests[f->nrequests++];
		size_t n = 0;
		while (n < 2047 && !strstr(req, "\r\n\r\n")) {
			ssize_t k = read(c, req + n, 2047 - n);
			if (k <= 0)
				break;
			n += (size_t)k;
			req[n] = 0;
		}
		size_t blen = 0;
		char *body = NULL;
		if (f->replies[i].file)
			body = read_data(f->replies[i].file, &blen);
		else
			body = xstrdup(f->replies[i].body ? f->replies[i].body : ""), blen = strlen(body);
		char head[256];
		int hl = snprintf(head, sizeof head,
				  "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
				  "Connection: close\r\n\r\n", f->replies[i].status, blen);
		if (write(c, head, (size_t)hl) < 0 || write(c, body, blen) < 0)
			fprintf(stderr, "fake dockerd: write failed\n");
		free(body);
		close(c);
	}
	return NULL;
}

static void start(struct fake_dockerd *f, const struct reply *r, int n)
{
	memset(f, 0, sizeof *f);
	strcpy(f->dir, "/tmp/kf-test-docker-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof f->sock, "%s/docker.sock", f->dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->sock);
	f->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->fd, 8), 0);
	f->replies = r;
	f->nreplies = n;
	assert_int_equal(pthread_create(&f->th, NULL, serve, f), 0);
}

static void stop(struct fake_dockerd *f)
{
	pthread_join(f->th, NULL);
	close(f->fd);
	unlink(f->sock);
	rmdir(f->dir);
}

static void client_talks_http_to_dockerd(void **state)
{
	(void)state;
	static const struct reply script[] = {
		{ 200, "docker_version.json", NULL },
		{ 200, "docker_images.json", NULL },
		{ 200, "docker_inspect.json", NULL },
		{ 404, "docker_error_404.json", NULL },
		{ 200, "docker_pull_ok.stream", NULL },   /* pull ... */
		{ 200, "docker_inspect.json", NULL },     /* ... then inspect for the id */
		{ 404, "docker_pull_404.json", NULL },
		{ 200, "docker_pull_error.stream", NULL },
		{ 200, "docker_inspect.json", NULL },     /* remove: inspect, the image carries REF ... */
		{ 200, "docker_delete_untag.json", NULL }, /* ... so untag it */
		{ 404, "docker_error_404.json", NULL },   /* remove: absent */
		{ 200, "docker_inspect.json", NULL },     /* remove: a container uses it */
		{ 409, NULL, "{\"message\":\"conflict: unable to remove repository reference\"}" },
		{ 200, "docker_inspect.json", NULL },     /* remove of a name the image does not carry: refused */
		{ 200, NULL, "{\"Id\":\"sha256:1b\",\"RepoTags\":[\"busybox:1.36\"],\"RepoDigests\":"
			     "[\"busybox@sha256:5c948585daec2591ea2dc686ad94ce7dcfe1f514a9ad3a47bb8af86feb4f296b\"]}" },
		{ 200, NULL, "[{\"Untagged\":\"busybox:1.36\"}]" },
		{ 200, "docker_inspect.json", NULL },     /* removed by someone else meanwhile */
		{ 404, "docker_error_404.json", NULL },
	};
	struct fake_dockerd f;
	start(&f, script, (int)ARRAY_SIZE(script));
	struct strbuf err = STRBUF_INIT, msg = STRBUF_INIT, ep = STRBUF_INIT;
	sb_addf(&ep, "unix://%s", f.sock);
	struct cri_docker *d = cri_docker_new(ep.buf, &err);
	assert_non_null(d);
	cri_docker_set_timeout(d, 10000);

	struct cri_version v;
	assert_int_equal(cri_docker_version(d, &v, &err), 0);
	assert_string_equal(v.runtime_version, "20.10.24+dfsg1");
	cri_version_clear(&v);
	struct cri_image_list l;
	assert_int_equal(cri_docker_list_images(d, &l, &err), 0);
	assert_int_equal(l.n, 1);
	cri_image_list_free(&l);
	struct cri_image img;
	int present = 0;
	assert_int_equal(cri_docker_inspect(d, REF, &img, &present, &err), 0);
	assert_true(present);
	cri_image_clear(&img);
	assert_int_equal(cri_docker_inspect(d, REF, &img, &present, &err), 0);
	assert_false(present);

	struct cri_auth auth = { .username = "u", .password = "p" };
	char *id = NULL;
	assert_int_equal(cri_docker_pull(d, REF, &auth, &id, &err), 0);
	assert_string_equal(id, "sha256:d074e09a6be124e62b071be8f0840d9f4f5b16cf0c36484799776b0690be4af2");
	free(id);
	assert_int_equal(cri_docker_pull(d, "127.0.0.1:45729/test/dock:nosuch", NULL, NULL, &err), CRI_NOT_FOUND);
	assert_string_equal(err.buf, "Error response from daemon: manifest for 127.0.0.1:45729/test/dock:nosuch not "
				     "found: manifest unknown: manifest unknown");
	sb_reset(&err);
	assert_int_equal(cri_docker_pull(d, "127.0.0.1:45729/test/broken@sha256:93b0e34e42e55d2eb176e8188d366c456bd3b"
					 "79743b8d6634cbca76c93286e66", NULL, NULL, &err), CRI_UNKNOWN);
	assert_string_equal(err.buf, "Error response from daemon: unknown blob");

	assert_int_equal(cri_docker_remove(d, REF, &msg, &err), 0);
	assert_true(!strncmp(msg.buf, "untagged " REF, strlen("untagged " REF)));
	sb_reset(&msg);
	assert_int_equal(cri_docker_remove(d, REF, &msg, &err), 0);
	assert_string_equal(msg.buf, "image " REF " not present");
	sb_reset(&err);
	assert_int_equal(cri_docker_remove(d, REF, &msg, &err), CRI_FAILED_PRECONDITION);
	assert_string_equal(err.buf, "Error response from daemon: conflict: unable to remove repository reference");
	/* the image found does not carry the name asked for (dockerd falls back to an ID prefix): refused */
	sb_reset(&err);
	assert_int_equal(cri_docker_remove(d, "127.0.0.1:45729/test/dock:v2", &msg, &err), CRI_EREFUSED);
	assert_string_equal(err.buf, "image 127.0.0.1:45729/test/dock:v2 resolves to sha256:d074e09a6be124e62b071be8f0840d9f4f5b"
				     "16cf0c36484799776b0690be4af2, whose references (127.0.0.1:45729/test/dock2:v9, " REF
				     ", 127.0.0.1:45729/test/dock@sha256:5c948585daec2591ea2dc686ad94ce7dcfe1f514a9ad3a47bb8af86"
				     "feb4f296b) do not include it; nothing removed");
	/* short names go fully qualified (never read as an ID), compared with docker's short spelling */
	sb_reset(&msg);
	assert_int_equal(cri_docker_remove(d, "busybox:1.36", &msg, &err), 0);
	assert_string_equal(msg.buf, "untagged busybox:1.36");
	sb_reset(&msg);
	assert_int_equal(cri_docker_remove(d, REF, &msg, &err), 0);
	assert_string_equal(msg.buf, "image " REF " not present");
	/* refused before any request: bad references and image IDs */
	sb_reset(&err);
	assert_int_equal(cri_docker_remove(d, "$(reboot)", &msg, &err), CRI_EINVAL);
	sb_reset(&err);
	assert_int_equal(cri_docker_remove(d, "sha256:d074e09a6be124e62b071be8f0840d9f4f5b16cf0c36484799776b0690be4af2",
					   &msg, &err), CRI_EINVAL);
	assert_non_null(strstr(err.buf, "an image ID is not an image reference"));
	assert_int_equal(cri_docker_pull(d, "a;b", NULL, NULL, &err), CRI_EINVAL);
	stop(&f);

	/* what dockerd was asked */
	assert_int_equal(f.nrequests, (int)ARRAY_SIZE(script));
	assert_int_equal(strncmp(f.requests[0], "GET /version HTTP/1.1\r\n", 23), 0);
	assert_int_equal(strncmp(f.requests[1], "GET /images/json HTTP/1.1\r\n", 27), 0);
	assert_int_equal(strncmp(f.requests[2], "GET /images/" REF "/json HTTP/1.1\r\n", 12 + strlen(REF) + 16), 0);
	const char *pull = "POST /images/create?fromImage=127.0.0.1%3A45729%2Ftest%2Fdock&tag=v1 HTTP/1.1\r\n";
	assert_int_equal(strncmp(f.requests[4], pull, strlen(pull)), 0);
	assert_non_null(strstr(f.requests[4], "\r\nX-Registry-Auth: eyJwYXNzd29yZCI6InAiLCJ1c2VybmFtZSI6InUifQ==\r\n"));
	assert_null(strstr(f.requests[6], "X-Registry-Auth"));
	/* a digest reference pulls with tag=<digest>, never an empty tag (that would pull every tag) */
	assert_non_null(strstr(f.requests[7], "fromImage=127.0.0.1%3A45729%2Ftest%2Fbroken&tag=sha256%3A93b0e34e"));
	/* remove: inspect, then DELETE of that exact name, never force */
	const char *insp = "GET /images/" REF "/json HTTP/1.1\r\n";
	assert_int_equal(strncmp(f.requests[8], insp, strlen(insp)), 0);
	const char *del = "DELETE /images/" REF " HTTP/1.1\r\n";
	assert_int_equal(strncmp(f.requests[9], del, strlen(del)), 0);
	for (int i = 0; i < f.nrequests; i++)
		assert_null(strstr(f.requests[i], "force"));
	assert_int_equal(strncmp(f.requests[13], "GET /images/127.0.0.1:45729/test/dock:v2/json ", 46), 0);
	const char *bb = "GET /images/docker.io/library/busybox:1.36/json ";
	assert_int_equal(strncmp(f.requests[14], bb, strlen(bb)), 0);
	bb = "DELETE /images/docker.io/library/busybox:1.36 ";
	assert_int_equal(strncmp(f.requests[15], bb, strlen(bb)), 0);

	/* no daemon: the error names the socket */
	sb_reset(&err);
	assert_int_equal(cri_docker_version(d, &v, &err), CRI_ETRANSPORT);
	assert_non_null(strstr(err.buf, f.sock));
	assert_non_null(strstr(err.buf, "No such file or directory"));
	cri_docker_free(d);
	sb_release(&err);
	sb_release(&msg);
	sb_release(&ep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(recorded_replies_parse),
		cmocka_unit_test(registry_auth_is_base64url_json),
		cmocka_unit_test(client_talks_http_to_dockerd),
	};
	return cmocka_run_group_tests_name("cri_docker", tests, NULL, NULL);
}
