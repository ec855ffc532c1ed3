/* cri.c - the CRI image client: one function per RPC, messages from cri_api.proto (protobuf-c), calls
 * through cri_grpc.c. Here a reply becomes a result: gRPC status -> "rpc error: code = X desc = Y",
 * malformed replies -> CRI_EPROTO, and runtime.v1 -> runtime.v1alpha2 fallback on UNIMPLEMENTED.
 * Removing one reference (cri_rmi) is in cri_rmi.c. */
#include "cri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cri_api.pb-c.h"
#include "cri_containerd.pb-c.h"
#include "cri_grpc.h"
#include "util/log.h"
#include "util/util.h"

enum { API_UNKNOWN, API_V1, API_V1ALPHA2 };
static const char *api_names[] = { NULL, "runtime.v1", "runtime.v1alpha2" };

struct cri_client {
	char *socket;
	int64_t timeout_ms;
	int api;
	cri_transport_fn transport;
	void *transport_ctx;
};

/* ---- small owned types ---- */

static char **dup_strv(char **v, size_t n)
{
	if (!n)
		return NULL;
	char **r = xcalloc(n, sizeof *r);
	for (size_t i = 0; i < n; i++)
		r[i] = xstrdup(v[i] ? v[i] : "");
	return r;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void cri_image_clear(struct cri_image *img)
{
	free(img->id);
	free_strv(img->repo_tags, img->n_repo_tags);
	free_strv(img->repo_digests, img->n_repo_digests);
	memset(img, 0, sizeof *img);
}

void cri_image_list_free(struct cri_image_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		cri_image_clear(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void cri_version_clear(struct cri_version *v)
{
	free(v->version);
	free(v->runtime_name);
	free(v->runtime_version);
	free(v->runtime_api_version);
	memset(v, 0, sizeof *v);
}

void cri_fs_info_clear(struct cri_fs_info *fi)
{
	for (size_t i = 0; i < fi->n_image_fs; i++)
		free(fi->image_fs[i].mountpoint);
	for (size_t i = 0; i < fi->n_container_fs; i++)
		free(fi->container_fs[i].mountpoint);
	free(fi->image_fs);
	free(fi->container_fs);
	memset(fi, 0, sizeof *fi);
}

static void image_from_pb(struct cri_image *out, const Runtime__V1__Image *in)
{
	memset(out, 0, sizeof *out);
	out->id = xstrdup(in->id ? in->id : "");
	out->repo_tags = dup_strv(in->repo_tags, in->n_repo_tags);
	out->n_repo_tags = in->n_repo_tags;
	out->repo_digests = dup_strv(in->repo_digests, in->n_repo_digests);
	out->n_repo_digests = in->n_repo_digests;
	out->size = in->size;
	out->pinned = in->pinned;
}

/* ---- client ---- */

struct cri_client *cri_client_new(const char *endpoint, struct strbuf *err)
{
	const char *path = endpoint;
	if (!endpoint || !*endpoint) {
		sb_adds(err, "empty runtime endpoint: want unix:///path/to/runtime.sock");
		return NULL;
	}
	if (!strncmp(endpoint, "unix://", 7))
		path = endpoint + 7;
	else if (strstr(endpoint, "://")) {
		sb_addf(err, "unsupported runtime endpoint \"%s\": only unix sockets (unix:///path or /path) are "
			     "supported", endpoint);
		return NULL;
	}
	if (path[0] != '/') {
		sb_addf(err, "runtime endpoint \"%s\" is not an absolute socket path (want unix:///path or /path)",
			endpoint);
		return NULL;
	}
	struct cri_client *c = xcalloc(1, sizeof *c);
	c->socket = xstrdup(path);
	c->timeout_ms = 2 * 60 * 1000;
	c->transport = cri_grpc_curl_transport;
	return c;
}

void cri_client_free(struct cri_client *c)
{
	if (!c)
		return;
	free(c->socket);
	free(c);
}

void cri_client_set_timeout(struct cri_client *c, int64_t timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

const char *cri_client_socket(const struct cri_client *c)
{
	return c->socket;
}

const char *cri_client_api(const struct cri_client *c)
{
	return api_names[c->api];
}

int cri_client_set_api(struct cri_client *c, const char *api, struct strbuf *err)
{
	if (!api || !*api || !strcmp(api, "auto"))
		c->api = API_UNKNOWN;
	else if (!strcmp(api, "v1") || !strcmp(api, "runtime.v1"))
		c->api = API_V1;
	else if (!strcmp(api, "v1alpha2") || !strcmp(api, "runtime.v1alpha2"))
		c->api = API_V1ALPHA2;
	else {
		sb_addf(err, "unknown CRI API version \"%s\": want v1, v1alpha2 or auto", api);
		return CRI_EINVAL;
	}
	return 0;
}

void cri_client_set_transport(struct cri_client *c, cri_transport_fn fn, void *ctx)
{
	c->transport = fn ? fn : cri_grpc_curl_transport;
	c->transport_ctx = ctx;
}

int cri_grpc_unary(struct cri_client *c, const struct cri_grpc_call *call, struct cri_grpc_reply *reply,
		   const uint8_t **msg, size_t *msg_len, struct strbuf *err)
{
	struct strbuf why = STRBUF_INIT;
	int rc = c->transport(c->transport_ctx, c->socket, c->timeout_ms, call, reply, err);
	if (rc)
		goto out;
	if (reply->grpc_status < 0 && reply->http_status != 200) {
		rc = cri_grpc_code_from_http(reply->http_status);
		sb_addf(err, "rpc error: code = %s desc = unexpected HTTP status %d from unix socket %s for %s "
			     "(is this a CRI runtime socket?)", cri_grpc_code_name(rc), reply->http_status, c->socket,
			call->path);
		goto out;
	}
	if (reply->grpc_status < 0) {
		rc = CRI_EPROTO;
		sb_addf(err, "reply from unix socket %s for %s carries no grpc-status", c->socket, call->path);
		goto out;
	}
	if (reply->grpc_status != 0) {
		rc = reply->grpc_status;
		sb_addf(err, "rpc error: code = %s desc = %s", cri_grpc_code_name(rc), reply->grpc_message.buf);
		goto out;
	}
	if (!reply->content_type_grpc) {
		rc = CRI_EPROTO;
		sb_addf(err, "reply from unix socket %s for %s is not application/grpc", c->socket, call->path);
		goto out;
	}
	if (cri_grpc_unframe((const uint8_t *)reply->body.buf, reply->body.len, msg, msg_len, &why) < 0) {
		rc = CRI_EPROTO;
		sb_addf(err, "malformed reply from unix socket %s for %s: %s", c->socket, call->path, why.buf);
		goto out;
	}
out:
	sb_release(&why);
	return rc;
}

/* Packs req, calls SERVICE/METHOD on the API version in use (trying v1 then v1alpha2 while unknown). */
static int call_cri(struct cri_client *c, const char *service, const char *method, const ProtobufCMessage *req,
		    struct cri_grpc_reply *reply, const uint8_t **msg, size_t *msg_len, struct strbuf *err)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = xmalloc(len ? len : 1);
	protobuf_c_message_pack(req, buf);
	struct strbuf path = STRBUF_INIT, err1 = STRBUF_INIT;
	int rc = 0;
	int first = c->api == API_UNKNOWN ? API_V1 : c->api;
	for (int api = first; api <= API_V1ALPHA2; api++) {
		sb_reset(&path);
		sb_addf(&path, "/%s.%s/%s", api_names[api], service, method);
		struct cri_grpc_call call = { path.buf, NULL, buf, len };
		cri_grpc_reply_release(reply);
		sb_reset(&err1);
		rc = cri_grpc_unary(c, &call, reply, msg, msg_len, &err1);
		if (rc == 0)
			c->api = api;
		if (rc != CRI_UNIMPLEMENTED || c->api != API_UNKNOWN)
			break;
		if (api == API_V1)
			LOG_V(2, "%s: %s answers Unimplemented on runtime.v1, trying runtime.v1alpha2", c->socket,
			      method);
		else
			sb_adds(&err1, " (tried runtime.v1 and runtime.v1alpha2)");
	}
	if (rc)
		sb_add(err, err1.buf, err1.len);
	free(buf);
	sb_release(&path);
	sb_release(&err1);
	return rc;
}

#define UNPACK_OR_FAIL(var, fn, name)                                                                    \
	do {                                                                                              \
		var = fn(NULL, msg_len, msg ? msg : (const uint8_t *)"");                                 \
		if (!var) {                                                                               \
			sb_addf(err, "malformed %s from unix socket %s: protobuf decoding failed", name,  \
				c->socket);                                                               \
			rc = CRI_EPROTO;                                                                  \
			goto out;                                                                         \
		}                                                                                         \
	} while (0)

int cri_version(struct cri_client *c, struct cri_version *out, struct strbuf *err)
{
	Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
	Runtime__V1__VersionResponse *resp = NULL;
	struct cri_grpc_reply reply;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	memset(out, 0, sizeof *out);
	cri_grpc_reply_init(&reply);
	req.version = "v1";
	int rc = call_cri(c, "RuntimeService", "Version", &req.base, &reply, &msg, &msg_len, err);
	if (rc)
		goto out;
	UNPACK_OR_FAIL(resp, runtime__v1__version_response__unpack, "VersionResponse");
	out->version = xstrdup(resp->version);
	out->runtime_name = xstrdup(resp->runtime_name);
	out->runtime_version = xstrdup(resp->runtime_version);
	out->runtime_api_version = xstrdup(resp->runtime_api_version);
out:
	if (resp)
		runtime__v1__version_response__free_unpacked(resp, NULL);
	cri_grpc_reply_release(&reply);
	return rc;
}

int cri_list_images(struct cri_client *c, const char *filter, struct cri_image_list *out, struct strbuf *err)
{
	Runtime__V1__ListImagesRequest req = RUNTIME__V1__LIST_IMAGES_REQUEST__INIT;
	Runtime__V1__ImageFilter f = RUNTIME__V1__IMAGE_FILTER__INIT;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	Runtime__V1__ListImagesResponse *resp = NULL;
	struct cri_grpc_reply reply;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	memset(out, 0, sizeof *out);
	cri_grpc_reply_init(&reply);
	if (filter && *filter) {
		spec.image = (char *)filter;
		f.image = &spec;
		req.filter = &f;
	}
	int rc = call_cri(c, "ImageService", "ListImages", &req.base, &reply, &msg, &msg_len, err);
	if (rc)
		goto out;
	UNPACK_OR_FAIL(resp, runtime__v1__list_images_response__unpack, "ListImagesResponse");
	if (resp->n_images) {
		out->items = xcalloc(resp->n_images, sizeof *out->items);
		for (size_t i = 0; i < resp->n_images; i++)
			image_from_pb(&out->items[i], resp->images[i]);
		out->n = resp->n_images;
	}
out:
	if (resp)
		runtime__v1__list_images_response__free_unpacked(resp, NULL);
	cri_grpc_reply_release(&reply);
	return rc;
}

int cri_image_status(struct cri_client *c, const char *image, struct cri_image *out, int *present,
		     struct strbuf *err)
{
	Runtime__V1__ImageStatusRequest req = RUNTIME__V1__IMAGE_STATUS_REQUEST__INIT;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	Runtime__V1__ImageStatusResponse *resp = NULL;
	struct cri_grpc_reply reply;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	memset(out, 0, sizeof *out);
	*present = 0;
	cri_grpc_reply_init(&reply);
	spec.image = (char *)image;
	req.image = &spec;
	int rc = call_cri(c, "ImageService", "ImageStatus", &req.base, &reply, &msg, &msg_len, err);
	if (rc)
		goto out;
	UNPACK_OR_FAIL(resp, runtime__v1__image_status_response__unpack, "ImageStatusResponse");
	/* An absent image is a successful reply without an image (containerd, CRI-O). */
	if (resp->image && resp->image->id && resp->image->id[0]) {
		image_from_pb(out, resp->image);
		*present = 1;
	}
out:
	if (resp)
		runtime__v1__image_status_response__free_unpacked(resp, NULL);
	cri_grpc_reply_release(&reply);
	return rc;
}

int cri_pull_image(struct cri_client *c, const char *image, const struct cri_auth *auth, char **image_ref,
		   struct strbuf *err)
{
	Runtime__V1__PullImageRequest req = RUNTIME__V1__PULL_IMAGE_REQUEST__INIT;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	Runtime__V1__AuthConfig ac = RUNTIME__V1__AUTH_CONFIG__INIT;
	Runtime__V1__PullImageResponse *resp = NULL;
	struct cri_grpc_reply reply;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	if (image_ref)
		*image_ref = NULL;
	cri_grpc_reply_init(&reply);
	spec.image = (char *)image;
	req.image = &spec;
	if (auth && (auth->username || auth->password || auth->auth || auth->server_address)) {
		if (auth->username)
			ac.username = (char *)auth->username;
		if (auth->password)
			ac.password = (char *)auth->password;
		if (auth->auth)
			ac.auth = (char *)auth->auth;
		if (auth->server_address)
			ac.server_address = (char *)auth->server_address;
		req.auth = &ac;
	}
	int rc = call_cri(c, "ImageService", "PullImage", &req.base, &reply, &msg, &msg_len, err);
	if (rc)
		goto out;
	UNPACK_OR_FAIL(resp, runtime__v1__pull_image_response__unpack, "PullImageResponse");
	if (image_ref)
		*image_ref = xstrdup(resp->image_ref);
out:
	if (resp)
		runtime__v1__pull_image_response__free_unpacked(resp, NULL);
	cri_grpc_reply_release(&reply);
	return rc;
}

int cri_remove_image(struct cri_client *c, const char *image, struct strbuf *err)
{
	Runtime__V1__RemoveImageRequest req = RUNTIME__V1__REMOVE_IMAGE_REQUEST__INIT;
	Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
	struct cri_grpc_reply reply;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	cri_grpc_reply_init(&reply);
	spec.image = (char *)image;
	req.image = &spec;
	int rc = call_cri(c, "ImageService", "RemoveImage", &req.base, &reply, &msg, &msg_len, err);
	cri_grpc_reply_release(&reply);
	return rc;
}

static void fs_usage_from_pb(struct cri_fs_usage *out, const Runtime__V1__FilesystemUsage *in)
{
	out->mountpoint = xstrdup(in->fs_id && in->fs_id->mountpoint ? in->fs_id->mountpoint : "");
	out->timestamp_ns = in->timestamp;
	if (in->used_bytes) {
		out->used_bytes = in->used_bytes->value;
		out->has_used_bytes = 1;
	}
	if (in->inodes_used) {
		out->inodes_used = in->inodes_used->value;
		out->has_inodes_used = 1;
	}
}

int cri_image_fs_info(struct cri_client *c, struct cri_fs_info *out, struct strbuf *err)
{
	Runtime__V1__ImageFsInfoRequest req = RUNTIME__V1__IMAGE_FS_INFO_REQUEST__INIT;
	Runtime__V1__ImageFsInfoResponse *resp = NULL;
	struct cri_grpc_reply reply;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	memset(out, 0, sizeof *out);
	cri_grpc_reply_init(&reply);
	int rc = call_cri(c, "ImageService", "ImageFsInfo", &req.base, &reply, &msg, &msg_len, err);
	if (rc)
		goto out;
	UNPACK_OR_FAIL(resp, runtime__v1__image_fs_info_response__unpack, "ImageFsInfoResponse");
	if (resp->n_image_filesystems) {
		out->image_fs = xcalloc(resp->n_image_filesystems, sizeof *out->image_fs);
		for (size_t i = 0; i < resp->n_image_filesystems; i++)
			fs_usage_from_pb(&out->image_fs[i], resp->image_filesystems[i]);
		out->n_image_fs = resp->n_image_filesystems;
	}
	if (resp->n_container_filesystems) {
		out->container_fs = xcalloc(resp->n_container_filesystems, sizeof *out->container_fs);
		for (size_t i = 0; i < resp->n_container_filesystems; i++)
			fs_usage_from_pb(&out->container_fs[i], resp->container_filesystems[i]);
		out->n_container_fs = resp->n_container_filesystems;
	}
out:
	if (resp)
		runtime__v1__image_fs_info_response__free_unpacked(resp, NULL);
	cri_grpc_reply_release(&reply);
	return rc;
}

/* One unary call of containerd's own API: the namespace travels as gRPC metadata. */
static int call_containerd(struct cri_client *c, const char *path, const ProtobufCMessage *req, const char *ns,
			   struct strbuf *err)
{
	struct cri_grpc_reply reply;
	struct strbuf nsh = STRBUF_INIT;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	cri_grpc_reply_init(&reply);
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = xmalloc(len ? len : 1);
	protobuf_c_message_pack(req, buf);
	sb_addf(&nsh, "containerd-namespace: %s", ns && *ns ? ns : CRI_CONTAINERD_NAMESPACE);
	const char *headers[] = { nsh.buf, NULL };
	struct cri_grpc_call call = { path, headers, buf, len };
	int rc = cri_grpc_unary(c, &call, &reply, &msg, &msg_len, err);
	free(buf);
	sb_release(&nsh);
	cri_grpc_reply_release(&reply);
	return rc;
}

int cri_containerd_delete_image(struct cri_client *c, const char *name, int sync, const char *ns,
				struct strbuf *err)
{
	Containerd__Services__Images__V1__DeleteImageRequest req =
		CONTAINERD__SERVICES__IMAGES__V1__DELETE_IMAGE_REQUEST__INIT;
	req.name = (char *)name;
	req.sync = sync ? 1 : 0;
	return call_containerd(c, "/containerd.services.images.v1.Images/Delete", &req.base, ns, err);
}

int cri_containerd_label_image(struct cri_client *c, const char *name, const char *key, const char *value,
			       const char *ns, struct strbuf *err)
{
	Containerd__Services__Images__V1__UpdateImageRequest req =
		CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
	Containerd__Services__Images__V1__Image img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
	Containerd__Services__Images__V1__Image__LabelsEntry label =
		CONTAINERD__SERVICES__IMAGES__V1__IMAGE__LABELS_ENTRY__INIT;
	Containerd__Services__Images__V1__FieldMask mask = CONTAINERD__SERVICES__IMAGES__V1__FIELD_MASK__INIT;
	Containerd__Services__Images__V1__Image__LabelsEntry *labels[1] = { &label };
	char *path = xasprintf("labels.%s", key);
	char *paths[1] = { path };
	img.name = (char *)name;
	label.key = (char *)key;
	label.value = (char *)(value ? value : "");
	img.labels = labels;
	img.n_labels = 1;
	mask.paths = paths;
	mask.n_paths = 1;
	req.image = &img;
	req.update_mask = &mask;
	int rc = call_containerd(c, "/containerd.services.images.v1.Images/Update", &req.base, ns, err);
	free(path);
	return rc;
}

void cri_container_list_free(struct cri_container_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct cri_container *k = &l->items[i];
		free(k->id);
		free(k->name);
		free(k->image);
		free(k->image_ref);
		free(k->pod_name);
		free(k->pod_namespace);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static const char *pb_label(Runtime__V1__Container *in, const char *key)
{
	for (size_t i = 0; i < in->n_labels; i++)
		if (in->labels[i]->key && !strcmp(in->labels[i]->key, key))
			return in->labels[i]->value ? in->labels[i]->value : "";
	return "";
}

int cri_list_containers(struct cri_client *c, struct cri_container_list *out, struct strbuf *err)
{
	Runtime__V1__ListContainersRequest req = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
	Runtime__V1__ListContainersResponse *resp = NULL;
	struct cri_grpc_reply reply;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	memset(out, 0, sizeof *out);
	cri_grpc_reply_init(&reply);
	int rc = call_cri(c, "RuntimeService", "ListContainers", &req.base, &reply, &msg, &msg_len, err);
	if (rc)
		goto out;
	UNPACK_OR_FAIL(resp, runtime__v1__list_containers_response__unpack, "ListContainersResponse");
	if (resp->n_containers) {
		out->items = xcalloc(resp->n_containers, sizeof *out->items);
		for (size_t i = 0; i < resp->n_containers; i++) {
			Runtime__V1__Container *in = resp->containers[i];
			struct cri_container *k = &out->items[i];
			k->id = xstrdup(in->id ? in->id : "");
			k->name = xstrdup(in->metadata && in->metadata->name ? in->metadata->name : "");
			k->image = xstrdup(in->image && in->image->image ? in->image->image : "");
			k->image_ref = xstrdup(in->image_ref ? in->image_ref : "");
			k->pod_name = xstrdup(pb_label(in, "io.kubernetes.pod.name"));
			k->pod_namespace = xstrdup(pb_label(in, "io.kubernetes.pod.namespace"));
			k->state = in->state >= 0 && in->state <= 3 ? in->state : CRI_CONTAINER_UNKNOWN;
		}
		out->n = resp->n_containers;
	}
out:
	if (resp)
		runtime__v1__list_containers_response__free_unpacked(resp, NULL);
	cri_grpc_reply_release(&reply);
	return rc;
}
