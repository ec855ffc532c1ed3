/* fuzz_cri_docker.c - libFuzzer target: what dockerd sends back, through the Docker Engine client's parsers
 * (cri_docker.h): GET /images/json, GET /images/{name}/json, GET /version, the POST /images/create progress
 * stream, DELETE /images/{name}, and error bodies.
 *
 * Input: byte 0 selects the parser; the rest is the reply body. Invariants beyond "no crash, no leak, no
 * UB": a parser that succeeds fills what its callers rely on (an image has an id; a version has all four
 * strings); one that fails says why; the pull stream returns 0, CRI_UNKNOWN, CRI_NOT_FOUND or CRI_EPROTO. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cri/cri.h"
#include "cri/cri_docker.h"
#include "util/util.h"

static void check_image(const struct cri_image *img)
{
	if (!img->id)
		abort();
	for (size_t i = 0; i < img->n_repo_tags; i++)
		if (!img->repo_tags[i])
			abort();
	for (size_t i = 0; i < img->n_repo_digests; i++)
		if (!img->repo_digests[i])
			abort();
	/* what cri_docker_remove then asks of an image: must not crash on whatever dockerd reported */
	(void)cri_image_has_ref(img, "busybox:1.36");
	(void)cri_image_has_ref(img, "reg:5000/a@sha256:1111111111111111111111111111111111111111111111111111111111111111");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int sel = data[0] % 6;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	struct strbuf err = STRBUF_INIT, msg = STRBUF_INIT;
	int rc = 0;
	switch (sel) {
	case 0: {
		struct cri_image_list l;
		rc = cri_docker_parse_images(body, len, &l, &err);
		if (rc && (l.n || l.items))
			abort();
		for (size_t i = 0; i < l.n; i++)
			check_image(&l.items[i]);
		cri_image_list_free(&l);
		break;
	}
	case 1: {
		struct cri_image img;
		rc = cri_docker_parse_inspect(body, len, &img, &err);
		if (!rc)
			check_image(&img);
		cri_image_clear(&img);
		break;
	}
	case 2: {
		struct cri_version v;
		rc = cri_docker_parse_version(body, len, &v, &err);
		if (!rc && (!v.version || !v.runtime_name || !v.runtime_version || !v.runtime_api_version))
			abort();
		cri_version_clear(&v);
		break;
	}
	case 3:
		rc = cri_docker_parse_pull_stream(body, len, &err);
		if (rc != 0 && rc != CRI_UNKNOWN && rc != CRI_NOT_FOUND && rc != CRI_EPROTO)
			abort();
		break;
	case 4:
		rc = cri_docker_parse_delete(body, len, &msg, &err);
		break;
	default:
		cri_docker_error_text(404, body, len, &err);
		if (!err.len || strncmp(err.buf, "Error response from daemon", 26))
			abort();
		sb_reset(&err);
		break;
	}
	if ((rc != 0) != (err.len != 0))
		abort();
	sb_release(&err);
	sb_release(&msg);
	return 0;
}
