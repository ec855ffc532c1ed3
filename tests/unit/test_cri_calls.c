/* test_cri_calls.c - the runtime calls the node agent added to src/cri: CRI ListContainers (a reply
 * recorded from the test bed's containerd 1.6.20 with one running pod: tests/unit/data/cri/
 * cri_list_containers.frame), containerd's Images/Update setting one label (the request as it goes on the
 * wire), Docker's GET /containers/json?all=1 (recorded from dockerd 20.10.24), and finding the runtime's
 * socket on a node (cri_detect.h) under a host root made of real unix sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cri.h"
#include "cri_api.pb-c.h"
#include "cri_containerd.pb-c.h"
#include "cri_detect.h"
#include "cri_docker.h"
#include "cri_grpc.h"
#include "util/util.h"

#define BUSYBOX_ID "sha256:486bc3c7da08aa26cf38527fa3661a87c20989ec336ea3a1443d0d57e3da3b32"

struct canned {
	const char *body;
	size_t len;
	char path[200];
	char header[200];
	uint8_t *req;
	size_t req_len;
};

static int transport(void *ctx, const char *socket, int64_t timeout_ms, const struct cri_grpc_call *call,
		     struct cri_grpc_reply *reply, struct strbuf *err)
{
	(void)socket;
	(void)timeout_ms;
	(void)err;
	struct canned *c = ctx;
	snprintf(c->path, sizeof c->path, "%s", call->path);
	if (call->headers && call->headers[0])
		snprintf(c->header, sizeof c->header, "%s", call->headers[0]);
	free(c->req);
	c->req = xmalloc(call->msg_len + 1);
	memcpy(c->req, call->msg, call->msg_len);
	c->req_len = call->msg_len;
	reply->http_status = 200;
	reply->content_type_grpc = 1;
	reply->grpc_status = 0;
	sb_add(&reply->body, c->body, c->len);
	return 0;
}

static void list_containers_recorded(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT;
	size_t len;
	char *body = kf_read_file(TEST_DATA_DIR "/cri/cri_list_containers.frame", &len, &err);
	assert_non_null(body);
	struct canned c = { body, len };
	struct cri_client *cl = cri_client_new("/fake/cri.sock", &err);
	cri_client_set_transport(cl, transport, &c);
	struct cri_container_list l;
	assert_int_equal(cri_list_containers(cl, &l, &err), 0);
	assert_string_equal(c.path, "/runtime.v1.RuntimeService/ListContainers");
	assert_int_equal(c.req_len, 0); /* no filter: every container, running or exited */
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].name, "kfa-rec");
	assert_string_equal(l.items[0].pod_name, "kfa-rec");
	assert_string_equal(l.items[0].pod_namespace, "default");
	/* the kubelet creates containers with the image id, not the reference */
	assert_string_equal(l.items[0].image, BUSYBOX_ID);
	assert_string_equal(l.items[0].image_ref, BUSYBOX_ID);
	assert_int_equal(l.items[0].state, CRI_CONTAINER_RUNNING);
	cri_container_list_free(&l);
	assert_int_equal(l.n, 0);
	cri_client_free(cl);
	free(c.req);
	free(body);
	sb_release(&err);
}

static void label_image_request(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT;
	struct canned c = { "\0\0\0\0\0", 5 }; /* UpdateImageResponse, empty */
	struct cri_client *cl = cri_client_new("/fake/cri.sock", &err);
	cri_client_set_transport(cl, transport, &c);
	assert_int_equal(cri_containerd_label_image(cl, "docker.io/library/busybox:1.36", CRI_CONTAINERD_PINNED_LABEL,
						    "pinned", NULL, &err),
			 0);
	assert_string_equal(c.path, "/containerd.services.images.v1.Images/Update");
	assert_string_equal(c.header, "containerd-namespace: k8s.io");
	Containerd__Services__Images__V1__UpdateImageRequest *req =
		containerd__services__images__v1__update_image_request__unpack(NULL, c.req_len, c.req);
	assert_non_null(req);
	assert_string_equal(req->image->name, "docker.io/library/busybox:1.36");
	assert_int_equal(req->image->n_labels, 1);
	assert_string_equal(req->image->labels[0]->key, "io.cri-containerd.pinned");
	assert_string_equal(req->image->labels[0]->value, "pinned");
	/* only that label is touched: the image's target and its other labels stay as they are */
	assert_int_equal(req->update_mask->n_paths, 1);
	assert_string_equal(req->update_mask->paths[0], "labels.io.cri-containerd.pinned");
	containerd__services__images__v1__update_image_request__free_unpacked(req, NULL);
	cri_client_free(cl);
	free(c.req);
	sb_release(&err);
}

static void docker_containers_recorded(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT;
	size_t len;
	char *body = kf_read_file(TEST_DATA_DIR "/cri/docker_containers.json", &len, &err);
	assert_non_null(body);
	struct cri_container_list l;
	assert_int_equal(cri_docker_parse_containers(body, len, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].name, "k8s_c1_p1");
	assert_string_equal(l.items[0].image, "10.240.4.1:5000/busybox:1");
	assert_string_equal(l.items[0].image_ref, BUSYBOX_ID);
	assert_string_equal(l.items[0].pod_name, "p1");
	assert_string_equal(l.items[0].pod_namespace, "ns1");
	assert_int_equal(l.items[0].state, CRI_CONTAINER_CREATED);
	cri_container_list_free(&l);
	/* a container the kubelet's dockershim made: its Kubernetes name from the label, not k8s_..._... */
	static const char shim[] = "[{\"Id\": \"c2\", \"Names\": [\"/k8s_imagepuller_ic1-x_ns1_uid_0\"], "
				   "\"Image\": \"r/a:1\", \"ImageID\": \"sha256:1\", \"State\": \"exited\", "
				   "\"Labels\": {\"io.kubernetes.container.name\": \"imagepuller\"}}]";
	assert_int_equal(cri_docker_parse_containers(shim, strlen(shim), &l, &err), 0);
	assert_string_equal(l.items[0].name, "imagepuller");
	assert_int_equal(l.items[0].state, CRI_CONTAINER_EXITED);
	cri_container_list_free(&l);
	assert_int_equal(cri_docker_parse_containers("{}", 2, &l, &err), CRI_EPROTO);
	assert_non_null(strstr(err.buf, "not a JSON array"));
	free(body);
	sb_release(&err);
}

/* ---- sockets on a node ---- */

static void mksock(const char *root, const char *path)
{
	char full[512], dir[512];
	snprintf(full, sizeof full, "%s%s", root, path);
	snprintf(dir, sizeof dir, "%s", full);
	for (char *p = dir + strlen(root) + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(dir, 0755);
			*p = '/';
		}
	}
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(full) < sizeof sa.sun_path);
	memcpy(sa.sun_path, full, strlen(full) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
}

static void find(const char *root, const char *flag, const char *ann, const char *want, int want_docker)
{
	struct strbuf err = STRBUF_INIT;
	char *sock = NULL;
	int docker = -1;
	int rc = cri_socket_find(root, flag, ann, &sock, &docker, &err);
	if (!want) {
		assert_int_equal(rc, -1);
		assert_null(sock);
		assert_non_null(strstr(err.buf, "no container runtime socket found"));
	} else {
		if (rc)
			fail_msg("%s", err.buf);
		char full[512];
		snprintf(full, sizeof full, "%s%s", root, want);
		assert_string_equal(sock, full);
		assert_int_equal(docker, want_docker);
	}
	free(sock);
	sb_release(&err);
}

static void sockets_are_found_under_the_host_root(void **state)
{
	(void)state;
	char root[] = "/tmp/kf-test-detect.XXXXXX";
	assert_non_null(mkdtemp(root));
	/* nothing there: every path tried is named */
	struct strbuf err = STRBUF_INIT;
	char *sock = NULL;
	int docker;
	assert_int_equal(cri_socket_find(root, NULL, NULL, &sock, &docker, &err), -1);
	assert_non_null(strstr(err.buf, "/var/run/crio/crio.sock"));
	sb_release(&err);
	mksock(root, "/var/run/docker.sock");
	find(root, NULL, NULL, "/var/run/docker.sock", 1);
	/* the kubelet's dockershim socket stands for Docker's */
	find(root, NULL, "unix:///var/run/dockershim.sock", "/var/run/docker.sock", 1);
	mksock(root, "/run/containerd/containerd.sock");
	find(root, NULL, NULL, "/run/containerd/containerd.sock", 0);
	mksock(root, "/srv/k8s/cri.sock");
	find(root, NULL, "unix:///srv/k8s/cri.sock", "/srv/k8s/cri.sock", 0);
	/* the flag is the only candidate when given */
	find(root, "/srv/k8s/cri.sock", "/run/containerd/containerd.sock", "/srv/k8s/cri.sock", 0);
	find(root, "/srv/k8s/missing.sock", NULL, NULL, 0);
	/* a relative annotation is skipped, the usual paths still work */
	find(root, NULL, "relative.sock", "/run/containerd/containerd.sock", 0);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

static void runtime_detect_as_upstream(void **state)
{
	(void)state;
	const char *rt;
	char *sock;
	cri_runtime_detect("containerd://1.6.20", "unix:///custom/containerd.sock", NULL, &rt, &sock);
	assert_string_equal(rt, "containerd");
	assert_string_equal(sock, "/custom/containerd.sock");
	free(sock);
	cri_runtime_detect("cri-o://1.25.0", NULL, "/flag.sock", &rt, &sock);
	assert_string_equal(rt, "crio");
	assert_string_equal(sock, "/flag.sock");
	free(sock);
	/* undetected: Docker, and the flag is not used (upstream) */
	cri_runtime_detect(NULL, "/x.sock", "/flag.sock", &rt, &sock);
	assert_string_equal(rt, "docker");
	assert_string_equal(sock, "/var/run/docker.sock");
	free(sock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(list_containers_recorded),
		cmocka_unit_test(label_image_request),
		cmocka_unit_test(docker_containers_recorded),
		cmocka_unit_test(sockets_are_found_under_the_host_root),
		cmocka_unit_test(runtime_detect_as_upstream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
