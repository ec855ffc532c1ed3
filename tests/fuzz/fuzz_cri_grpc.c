/* fuzz_cri_grpc.c - libFuzzer target: what a container runtime's socket sends back, through the CRI
 * client's own reply path. A fake transport hands the client a reply made of fuzzed header lines (status
 * line, grpc-status, grpc-message, content-type: cri_grpc_parse_header) and a fuzzed body (gRPC framing:
 * cri_grpc_unframe; protobuf: protobuf-c's unpack of each reply type; conversion into struct cri_image
 * and friends), for every call of the client, and for cri_rmi, which reads an ImageStatus reply and acts
 * on it (the following calls get NotFound, so no loop waits).
 *
 * Input: byte 0 selects the call (low 3 bits) and whether the headers come from the input (bit 3; else a
 * well-formed 200 / grpc-status 0 / application/grpc block, so most inputs reach the protobuf decoders);
 * then, with fuzzed headers, header lines up to an empty line; the rest is the body.
 * Invariants beyond "no crash, no leak, no UB": a call returns 0, a gRPC code 1..16 or CRI_ETRANSPORT /
 * CRI_EPROTO / CRI_EREFUSED, with an error message exactly when it fails; a listed image has an id. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cri/cri.h"
#include "cri/cri_grpc.h"
#include "util/util.h"

struct input {
	const uint8_t *hdr, *body;
	size_t hdr_len, body_len;
	int fuzz_headers, calls;
};

static int transport(void *ctx, const char *socket_path, int64_t timeout_ms, const struct cri_grpc_call *call,
		     struct cri_grpc_reply *reply, struct strbuf *err)
{
	struct input *in = ctx;
	(void)socket_path, (void)timeout_ms, (void)call, (void)err;
	if (in->calls++ > 0) { /* cri_rmi's later calls: NotFound ends every path quickly */
		reply->http_status = 200;
		reply->grpc_status = CRI_NOT_FOUND;
		sb_adds(&reply->grpc_message, "not found");
		return 0;
	}
	if (in->fuzz_headers) {
		size_t i = 0;
		while (i < in->hdr_len) {
			size_t j = i;
			while (j < in->hdr_len && in->hdr[j] != '\n')
				j++;
			cri_grpc_parse_header(reply, (const char *)in->hdr + i, j - i + (j < in->hdr_len));
			i = j + 1;
		}
	} else {
		static const char *const ok[] = { "HTTP/2 200\r\n", "content-type: application/grpc\r\n",
						  "grpc-status: 0\r\n", "\r\n" };
		for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
			cri_grpc_parse_header(reply, ok[i], strlen(ok[i]));
	}
	sb_add(&reply->body, in->body, in->body_len);
	return 0;
}

static void check(int rc, const struct strbuf *err)
{
	int known = (rc >= 0 && rc <= 16) || rc == CRI_ETRANSPORT || rc == CRI_EPROTO || rc == CRI_EREFUSED;
	if (!known || (rc != 0) != (err->len != 0)) {
		fprintf(stderr, "rc %d with err \"%s\"\n", rc, err->buf);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct input in = { 0 };
	int sel = data[0] & 7;
	in.fuzz_headers = (data[0] >> 3) & 1;
	data++, size--;
	if (in.fuzz_headers) {
		const uint8_t *end = NULL;
		for (size_t i = 0; i + 1 < size && !end; i++)
			if (data[i] == '\n' && data[i + 1] == '\n')
				end = data + i;
		in.hdr = data;
		in.hdr_len = end ? (size_t)(end - data) : size;
		in.body = end ? end + 2 : data + size;
		in.body_len = end ? size - in.hdr_len - 2 : 0;
	} else {
		in.body = data;
		in.body_len = size;
	}
	/* the framing on its own too */
	const uint8_t *msg;
	size_t msg_len;
	struct strbuf err = STRBUF_INIT, msgb = STRBUF_INIT;
	if (cri_grpc_unframe(in.body, in.body_len, &msg, &msg_len, &err) == 0 &&
	    (msg < in.body || msg + msg_len > in.body + in.body_len))
		abort();
	sb_reset(&err);

	struct cri_client *c = cri_client_new("unix:///fuzz/cri.sock", &err);
	cri_client_set_transport(c, transport, &in);
	cri_client_set_api(c, "v1", &err); /* no v1alpha2 retry: one reply per call */
	int rc = 0;
	switch (sel) {
	case 0: {
		struct cri_version v;
		rc = cri_version(c, &v, &err);
		cri_version_clear(&v);
		break;
	}
	case 1: {
		struct cri_image_list l;
		rc = cri_list_images(c, NULL, &l, &err);
		for (size_t i = 0; i < l.n; i++)
			if (!l.items[i].id)
				abort();
		cri_image_list_free(&l);
		break;
	}
	case 2: {
		struct cri_image img;
		int present = 0;
		rc = cri_image_status(c, "busybox:1.36", &img, &present, &err);
		if (present && (!img.id || !*img.id))
			abort();
		cri_image_clear(&img);
		break;
	}
	case 3: {
		char *id = NULL;
		struct cri_auth a = { "u", "p", NULL, "reg" };
		rc = cri_pull_image(c, "busybox:1.36", &a, &id, &err);
		if (rc == 0 && !id)
			abort();
		free(id);
		break;
	}
	case 4:
		rc = cri_remove_image(c, "busybox:1.36", &err);
		break;
	case 5: {
		struct cri_fs_info fi;
		rc = cri_image_fs_info(c, &fi, &err);
		cri_fs_info_clear(&fi);
		break;
	}
	case 6:
		rc = cri_containerd_delete_image(c, "docker.io/library/busybox:1.36", 0, CRI_CONTAINERD_NAMESPACE, &err);
		break;
	default:
		rc = cri_rmi(c, "reg:5000/a:v1", &msgb, &err);
		break;
	}
	check(rc, &err);
	cri_client_free(c);
	sb_release(&err);
	sb_release(&msgb);
	return 0;
}
