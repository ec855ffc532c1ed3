/* cri_docker.c - Docker Engine API client over dockerd's unix socket (libcurl, HTTP/1.1, jansson).
 * See cri_docker.h for the endpoints and semantics. The JSON parsers are separate functions so the
 * tests can feed them replies recorded from a real dockerd (tests/unit/data/cri/). */
#include "cri_docker.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/imageref.h"
#include "util/log.h"
#include "util/util.h"
#include "util/version.h"

#define DOCKER_MAX_BODY (64u * 1024 * 1024)

struct cri_docker {
	char *socket;
	int64_t timeout_ms;
};

struct cri_docker *cri_docker_new(const char *endpoint, struct strbuf *err)
{
	const char *path = endpoint;
	if (!endpoint || !*endpoint) {
		sb_adds(err, "empty docker endpoint: want unix:///var/run/docker.sock");
		return NULL;
	}
	if (!strncmp(endpoint, "unix://", 7))
		path = endpoint + 7;
	if (path[0] != '/') {
		sb_addf(err, "unsupported docker endpoint \"%s\": want unix:///path or /path", endpoint);
		return NULL;
	}
	struct cri_docker *d = xcalloc(1, sizeof *d);
	d->socket = xstrdup(path);
	d->timeout_ms = 2 * 60 * 1000;
	return d;
}

void cri_docker_free(struct cri_docker *d)
{
	if (!d)
		return;
	free(d->socket);
	free(d);
}

void cri_docker_set_timeout(struct cri_docker *d, int64_t timeout_ms)
{
	d->timeout_ms = timeout_ms;
}

/* ---- JSON helpers ---- */

static json_t *load(const char *json, size_t len, const char *what, struct strbuf *err)
{
	json_error_t je;
	json_t *j = json_loadb(json, len, 0, &je);
	if (!j)
		sb_addf(err, "malformed %s from docker: %s (line %d, column %d)", what, je.text, je.line, je.column);
	return j;
}

static char **strv_from_json(json_t *arr, size_t *n)
{
	*n = 0;
	if (!json_is_array(arr) || !json_array_size(arr))
		return NULL;
	char **v = xcalloc(json_array_size(arr), sizeof *v);
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) {
		const char *s = json_string_value(x);
		/* dangling images show up as "<none>:<none>" / "<none>@<none>" in older daemons */
		if (s && strncmp(s, "<none>", 6))
			v[(*n)++] = xstrdup(s);
	}
	if (!*n) {
		free(v);
		v = NULL;
	}
	return v;
}

static int image_from_json(json_t *o, struct cri_image *out, struct strbuf *err)
{
	memset(out, 0, sizeof *out);
	const char *id = json_string_value(json_object_get(o, "Id"));
	if (!json_is_object(o) || !id) {
		sb_adds(err, "malformed image from docker: no \"Id\"");
		return CRI_EPROTO;
	}
	out->id = xstrdup(id);
	out->repo_tags = strv_from_json(json_object_get(o, "RepoTags"), &out->n_repo_tags);
	out->repo_digests = strv_from_json(json_object_get(o, "RepoDigests"), &out->n_repo_digests);
	json_int_t sz = json_integer_value(json_object_get(o, "Size"));
	out->size = sz > 0 ? (uint64_t)sz : 0;
	return 0;
}

int cri_docker_parse_images(const char *json, size_t len, struct cri_image_list *out, struct strbuf *err)
{
	memset(out, 0, sizeof *out);
	json_t *j = load(json, len, "image list", err);
	if (!j)
		return CRI_EPROTO;
	int rc = 0;
	if (!json_is_array(j)) {
		sb_adds(err, "malformed image list from docker: not a JSON array");
		rc = CRI_EPROTO;
		goto out;
	}
	out->items = xcalloc(json_array_size(j) + 1, sizeof *out->items);
	size_t i;
	json_t *o;
	json_array_foreach(j, i, o) {
		rc = image_from_json(o, &out->items[out->n], err);
		if (rc)
			goto out;
		out->n++;
	}
out:
	if (rc)
		cri_image_list_free(out);
	json_decref(j);
	return rc;
}

int cri_docker_parse_inspect(const char *json, size_t len, struct cri_image *out, struct strbuf *err)
{
	memset(out, 0, sizeof *out);
	json_t *j = load(json, len, "image", err);
	if (!j)
		return CRI_EPROTO;
	int rc = image_from_json(j, out, err);
	json_decref(j);
	return rc;
}

int cri_docker_parse_version(const char *json, size_t len, struct cri_version *out, struct strbuf *err)
{
	memset(out, 0, sizeof *out);
	json_t *j = load(json, len, "version", err);
	if (!j)
		return CRI_EPROTO;
	const char *v = json_string_value(json_object_get(j, "Version"));
	const char *api = json_string_value(json_object_get(j, "ApiVersion"));
	int rc = 0;
	if (!v || !api) {
		sb_adds(err, "malformed version from docker: no \"Version\" or \"ApiVersion\"");
		rc = CRI_EPROTO;
	} else {
		out->version = xstrdup(api);
		out->runtime_name = xstrdup("docker");
		out->runtime_version = xstrdup(v);
		out->runtime_api_version = xstrdup(api);
	}
	json_decref(j);
	return rc;
}

int cri_docker_parse_containers(const char *json, size_t len, struct cri_container_list *out, struct strbuf *err)
{
	memset(out, 0, sizeof *out);
	json_t *j = load(json, len, "container list", err);
	if (!j)
		return CRI_EPROTO;
	int rc = 0;
	if (!json_is_array(j)) {
		sb_adds(err, "malformed container list from docker: not a JSON array");
		rc = CRI_EPROTO;
		goto out;
	}
	out->items = xcalloc(json_array_size(j) + 1, sizeof *out->items);
	size_t i;
	json_t *o;
	json_array_foreach(j, i, o) {
		const char *id = json_string_value(json_object_get(o, "Id"));
		if (!json_is_object(o) || !id) {
			sb_adds(err, "malformed container from docker: no \"Id\"");
			rc = CRI_EPROTO;
			goto out;
		}
		struct cri_container *k = &out->items[out->n++];
		const char *name = json_string_value(json_array_get(json_object_get(o, "Names"), 0));
		const char *img = json_string_value(json_object_get(o, "Image"));
		const char *iid = json_string_value(json_object_get(o, "ImageID"));
		const char *st = json_string_value(json_object_get(o, "State"));
		const char *pn = kf_jstr(o, "Labels", "io.kubernetes.pod.name", NULL);
		const char *pns = kf_jstr(o, "Labels", "io.kubernetes.pod.namespace", NULL);
		k->id = xstrdup(id);
		/* the kubelet's dockershim names a container k8s_<container>_<pod>_...: its own name is in a label */
		const char *kn = kf_jstr(o, "Labels", "io.kubernetes.container.name", NULL);
		k->name = xstrdup(kn ? kn : name ? (name[0] == '/' ? name + 1 : name) : "");
		k->image = xstrdup(img ? img : "");
		k->image_ref = xstrdup(iid ? iid : "");
		k->pod_name = xstrdup(pn ? pn : "");
		k->pod_namespace = xstrdup(pns ? pns : "");
		k->state = !st ? CRI_CONTAINER_UNKNOWN :
			   !strcmp(st, "running") || !strcmp(st, "paused") || !strcmp(st, "restarting") ?
							     CRI_CONTAINER_RUNNING :
			   !strcmp(st, "created") ? CRI_CONTAINER_CREATED :
			   !strcmp(st, "exited") || !strcmp(st, "dead") ? CRI_CONTAINER_EXITED :
									    CRI_CONTAINER_UNKNOWN;
	}
out:
	if (rc)
		cri_container_list_free(out);
	json_decref(j);
	return rc;
}

static int code_for_message(const char *m)
{
	return strstr(m, "not found") || strstr(m, "manifest unknown") || strstr(m, "No such image") ?
		       CRI_NOT_FOUND : CRI_UNKNOWN;
}

int cri_docker_parse_pull_stream(const char *body, size_t len, struct strbuf *err)
{
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && body[j] != '\n')
			j++;
		size_t k = i;
		while (k < j && (body[k] == ' ' || body[k] == '\r' || body[k] == '\t'))
			k++;
		if (k < j) {
			json_error_t je;
			json_t *o = json_loadb(body + i, j - i, 0, &je);
			if (!o) {
				sb_addf(err, "malformed pull progress from docker: %s", je.text);
				return CRI_EPROTO;
			}
			const char *m = kf_jstr(o, "errorDetail", "message", NULL);
			if (!m)
				m = json_string_value(json_object_get(o, "error"));
			if (m) {
				int code = code_for_message(m);
				sb_addf(err, "Error response from daemon: %s", m);
				json_decref(o);
				return code;
			}
			json_decref(o);
		}
		i = j + 1;
	}
	return 0;
}

int cri_docker_parse_delete(const char *json, size_t len, struct strbuf *msg, struct strbuf *err)
{
	json_t *j = load(json, len, "delete reply", err);
	if (!j)
		return CRI_EPROTO;
	int rc = 0;
	if (!json_is_array(j)) {
		sb_adds(err, "malformed delete reply from docker: not a JSON array");
		rc = CRI_EPROTO;
		goto out;
	}
	size_t i, n = 0;
	json_t *o;
	json_array_foreach(j, i, o) {
		const char *u = json_string_value(json_object_get(o, "Untagged"));
		const char *d = json_string_value(json_object_get(o, "Deleted"));
		if (u)
			sb_addf(msg, "%suntagged %s", n++ ? ", " : "", u);
		if (d)
			sb_addf(msg, "%sdeleted %s", n++ ? ", " : "", d);
	}
out:
	json_decref(j);
	return rc;
}

void cri_docker_error_text(int http_status, const char *body, size_t len, struct strbuf *err)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
	if (m) {
		sb_addf(err, "Error response from daemon: %s", m);
	} else {
		while (len && (body[len - 1] == '\n' || body[len - 1] == '\r'))
			len--;
		sb_addf(err, "Error response from daemon (HTTP %d): %.*s", http_status, (int)(len > 500 ? 500 : len),
			body);
	}
	json_decref(j);
}

/* RFC 4648 section 5, with padding (Go's base64.URLEncoding, what dockerd decodes). */
static char *base64url(const unsigned char *p, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		*o++ = a[v >> 18 & 63];
		*o++ = a[v >> 12 & 63];
		*o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? a[v & 63] : '=';
	}
	*o = 0;
	return out;
}

char *cri_docker_registry_auth(const struct cri_auth *auth)
{
	json_t *o = json_object();
	if (auth && auth->username)
		json_object_set_new(o, "username", json_string(auth->username));
	if (auth && auth->password)
		json_object_set_new(o, "password", json_string(auth->password));
	if (auth && auth->auth)
		json_object_set_new(o, "auth", json_string(auth->auth));
	if (auth && auth->server_address)
		json_object_set_new(o, "serveraddress", json_string(auth->server_address));
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	char *r = base64url((const unsigned char *)s, strlen(s));
	free(s);
	json_decref(o);
	return r;
}

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *u)
{
	struct strbuf *b = u;
	size_t n = size * nmemb;
	if (b->len + n > DOCKER_MAX_BODY)
		return 0;
	sb_add(b, p, n);
	return n;
}

/* One request; 0 when an HTTP reply arrived (any status, in *status), else a transport code. */
static int http(struct cri_docker *d, const char *method, const char *path, const char *header,
		struct strbuf *body, long *status, struct strbuf *err)
{
	struct stat st;
	if (stat(d->socket, &st) < 0) {
		sb_addf(err, "connect to unix socket %s: %s (is dockerd running, and is its socket mounted here?)",
			d->socket, strerror(errno));
		return CRI_ETRANSPORT;
	}
	CURL *h = curl_easy_init();
	if (!h) {
		sb_adds(err, "curl_easy_init failed");
		return CRI_ETRANSPORT;
	}
	int rc = 0;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct strbuf url = STRBUF_INIT;
	struct curl_slist *hd = NULL;
	sb_addf(&url, "http://localhost%s", path);
	hd = curl_slist_append(hd, "expect:");
	if (header)
		hd = curl_slist_append(hd, header);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, d->socket);
	curl_easy_setopt(h, CURLOPT_URL, url.buf);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_USERAGENT, kf_user_agent());
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	if (d->timeout_ms > 0) {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)d->timeout_ms);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(d->timeout_ms < 10000 ? d->timeout_ms : 10000));
	}
	CURLcode cc = curl_easy_perform(h);
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		char t[32];
		kf_format_duration(d->timeout_ms, t, sizeof t);
		sb_addf(err, "no reply from dockerd on unix socket %s within %s (%s %s)", d->socket, t, method, path);
		rc = CRI_DEADLINE_EXCEEDED;
	} else if (cc != CURLE_OK) {
		long oserr = 0;
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
		/* errno only explains a failed connect; later on it may be stale */
		if (cc == CURLE_COULDNT_CONNECT && oserr)
			sb_addf(err, "connect to unix socket %s: %s", d->socket, strerror((int)oserr));
		else
			sb_addf(err, "talk to unix socket %s: %s (is this a docker socket?)", d->socket,
				errbuf[0] ? errbuf : curl_easy_strerror(cc));
		rc = cc == CURLE_WRITE_ERROR ? CRI_EPROTO : CRI_ETRANSPORT;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	}
	curl_easy_cleanup(h);
	curl_slist_free_all(hd);
	sb_release(&url);
	return rc;
}

static int code_from_http(long s)
{
	switch (s) {
	case 400: return CRI_INVALID_ARGUMENT;
	case 401: return CRI_UNAUTHENTICATED;
	case 403: return CRI_PERMISSION_DENIED;
	case 404: return CRI_NOT_FOUND;
	case 409: return CRI_FAILED_PRECONDITION;
	default: return CRI_UNKNOWN;
	}
}

/* A request whose reply must be 2xx; otherwise the docker error text and a mapped code. */
static int request(struct cri_docker *d, const char *method, const char *path, const char *header,
		   struct strbuf *body, long *status, struct strbuf *err)
{
	int rc = http(d, method, path, header, body, status, err);
	if (rc)
		return rc;
	if (*status / 100 != 2) {
		cri_docker_error_text((int)*status, body->buf, body->len, err);
		return code_from_http(*status);
	}
	return 0;
}

int cri_docker_version(struct cri_docker *d, struct cri_version *out, struct strbuf *err)
{
	struct strbuf body = STRBUF_INIT;
	long st = 0;
	memset(out, 0, sizeof *out);
	int rc = request(d, "GET", "/version", NULL, &body, &st, err);
	if (!rc)
		rc = cri_docker_parse_version(body.buf, body.len, out, err);
	sb_release(&body);
	return rc;
}

int cri_docker_list_images(struct cri_docker *d, struct cri_image_list *out, struct strbuf *err)
{
	struct strbuf body = STRBUF_INIT;
	long st = 0;
	memset(out, 0, sizeof *out);
	int rc = request(d, "GET", "/images/json", NULL, &body, &st, err);
	if (!rc)
		rc = cri_docker_parse_images(body.buf, body.len, out, err);
	sb_release(&body);
	return rc;
}

int cri_docker_list_containers(struct cri_docker *d, struct cri_container_list *out, struct strbuf *err)
{
	struct strbuf body = STRBUF_INIT;
	long st = 0;
	memset(out, 0, sizeof *out);
	int rc = request(d, "GET", "/containers/json?all=1", NULL, &body, &st, err);
	if (!rc)
		rc = cri_docker_parse_containers(body.buf, body.len, out, err);
	sb_release(&body);
	return rc;
}

int cri_docker_root_dir(struct cri_docker *d, char **root_dir, struct strbuf *err)
{
	struct strbuf body = STRBUF_INIT;
	long st = 0;
	*root_dir = NULL;
	int rc = request(d, "GET", "/info", NULL, &body, &st, err);
	if (rc)
		goto out;
	json_t *j = load(body.buf, body.len, "info", err);
	const char *root = j ? json_string_value(json_object_get(j, "DockerRootDir")) : NULL;
	if (root && root[0] == '/')
		*root_dir = xstrdup(root);
	else if (j) {
		sb_adds(err, "malformed info from docker: no \"DockerRootDir\"");
		rc = CRI_EPROTO;
	} else
		rc = CRI_EPROTO;
	json_decref(j);
out:
	sb_release(&body);
	return rc;
}

int cri_docker_inspect(struct cri_docker *d, const char *ref, struct cri_image *out, int *present,
		       struct strbuf *err)
{
	struct strbuf body = STRBUF_INIT, path = STRBUF_INIT, e = STRBUF_INIT;
	long st = 0;
	memset(out, 0, sizeof *out);
	*present = 0;
	int rc = cri_check_ref(ref, err);
	if (rc)
		goto out;
	sb_addf(&path, "/images/%s/json", ref);
	rc = request(d, "GET", path.buf, NULL, &body, &st, &e);
	if (rc == CRI_NOT_FOUND && st == 404) {
		rc = 0;
		goto out;
	}
	if (rc) {
		sb_add(err, e.buf, e.len);
		goto out;
	}
	rc = cri_docker_parse_inspect(body.buf, body.len, out, err);
	*present = rc == 0;
out:
	sb_release(&body);
	sb_release(&path);
	sb_release(&e);
	return rc;
}

int cri_docker_pull(struct cri_docker *d, const char *ref, const struct cri_auth *auth, char **image_ref,
		    struct strbuf *err)
{
	struct strbuf body = STRBUF_INIT, path = STRBUF_INIT, hdr = STRBUF_INIT;
	char *repo = NULL, *a = NULL;
	long st = 0;
	if (image_ref)
		*image_ref = NULL;
	int rc = cri_check_ref(ref, err);
	if (rc)
		goto out;
	/* fromImage=REPO&tag=TAG|DIGEST: an empty tag would pull every tag of the repository. */
	const char *at = strchr(ref, '@');
	size_t name_len = at ? (size_t)(at - ref) : strlen(ref);
	const char *slash = NULL, *colon = NULL;
	for (const char *p = ref; p < ref + name_len; p++)
		if (*p == '/')
			slash = p;
	for (const char *p = slash ? slash : ref; p < ref + name_len; p++)
		if (*p == ':')
			colon = p;
	repo = xstrndup(ref, colon ? (size_t)(colon - ref) : name_len);
	const char *tag = at ? at + 1 : colon ? colon + 1 : "latest";
	size_t tag_len = at ? strlen(at + 1) : colon ? name_len - (size_t)(colon + 1 - ref) : 6;
	char *tagz = xstrndup(tag, tag_len);
	sb_adds(&path, "/images/create?fromImage=");
	sb_add_urlencoded(&path, repo);
	sb_adds(&path, "&tag=");
	sb_add_urlencoded(&path, tagz);
	free(tagz);
	if (auth && (auth->username || auth->password || auth->auth || auth->server_address)) {
		a = cri_docker_registry_auth(auth);
		sb_addf(&hdr, "X-Registry-Auth: %s", a);
	}
	rc = request(d, "POST", path.buf, hdr.len ? hdr.buf : NULL, &body, &st, err);
	if (rc) {
		if (rc == CRI_UNKNOWN && (strstr(err->buf, "not found") || strstr(err->buf, "manifest unknown")))
			rc = CRI_NOT_FOUND;
		goto out;
	}
	rc = cri_docker_parse_pull_stream(body.buf, body.len, err);
	if (rc || !image_ref)
		goto out;
	struct cri_image img;
	int present = 0;
	rc = cri_docker_inspect(d, ref, &img, &present, err);
	if (!rc && present)
		*image_ref = xstrdup(img.id);
	cri_image_clear(&img);
out:
	free(repo);
	free(a);
	sb_release(&body);
	sb_release(&path);
	sb_release(&hdr);
	return rc;
}

/* The fully qualified name dockerd should act on: domain/path:tag (untagged: latest), or domain/path@digest
 * for a digest reference (a tag beside a digest is dropped, as dockerd stored it). It always holds a '/',
 * so dockerd can never read it as an image-ID prefix, which it tries for names it does not know. */
static void docker_name(const char *ref, struct strbuf *out)
{
	struct imageref r;
	struct strbuf ignored = STRBUF_INIT;
	if (imageref_parse(ref, &r, &ignored) == 0) {
		imageref_name(&r, out);
		if (r.digest[0])
			sb_addf(out, "@%s", r.digest);
		else
			sb_addf(out, ":%s", r.tag[0] ? r.tag : "latest");
	} else {
		sb_adds(out, ref);
	}
	sb_release(&ignored);
}

int cri_docker_remove_container(struct cri_docker *d, const char *id, struct strbuf *err)
{
	struct strbuf body = STRBUF_INIT, path = STRBUF_INIT;
	long st = 0;
	int rc = CRI_EREFUSED;
	if (!id || !*id || strspn(id, "0123456789abcdef") != strlen(id)) {
		sb_addf(err, "not a container id: \"%s\"", id ? id : "");
		goto out;
	}
	sb_addf(&path, "/containers/%s", id); /* no force: a running container stays */
	rc = request(d, "DELETE", path.buf, NULL, &body, &st, err);
	if (rc == CRI_NOT_FOUND && st == 404) {
		sb_reset(err);
		rc = 0;
	}
out:
	sb_release(&body);
	sb_release(&path);
	return rc;
}

void cri_docker_remove_spent_pullers(struct cri_docker *d, const struct cri_container_list *cl,
				     const struct cri_image *img, const char *canonical_ref)
{
	for (size_t i = 0; i < cl->n; i++) {
		const struct cri_container *k = &cl->items[i];
		if (!cri_container_spent_puller(k) || !cri_container_uses(k, img, canonical_ref))
			continue;
		struct strbuf e = STRBUF_INIT;
		if (cri_docker_remove_container(d, k->id, &e))
			LOG_WARN("removing exited container %s of pod %s/%s: %s", k->id,
				 k->pod_namespace ? k->pod_namespace : "", k->pod_name ? k->pod_name : "", e.buf);
		sb_release(&e);
	}
}

int cri_docker_remove(struct cri_docker *d, const char *ref, struct strbuf *msg, struct strbuf *err)
{
	struct strbuf body = STRBUF_INIT, path = STRBUF_INIT, e = STRBUF_INIT, name = STRBUF_INIT;
	struct cri_image img = { 0 };
	int present = 0;
	long st = 0;
	int rc = cri_check_ref(ref, err);
	if (rc)
		goto out;
	docker_name(ref, &name);
	rc = cri_docker_inspect(d, name.buf, &img, &present, err);
	if (rc)
		goto out;
	if (!present) {
		sb_addf(msg, "image %s not present", ref);
		goto out;
	}
	/* Only a reference the image carries is removed (dockerd would resolve an unknown name by ID). */
	if (!cri_image_has_ref(&img, ref)) {
		rc = CRI_EREFUSED;
		sb_addf(err, "image %s resolves to %s, whose references (", ref, img.id);
		for (size_t i = 0; i < img.n_repo_tags + img.n_repo_digests; i++)
			sb_addf(err, "%s%s", i ? ", " : "",
				i < img.n_repo_tags ? img.repo_tags[i] : img.repo_digests[i - img.n_repo_tags]);
		sb_adds(err, ") do not include it; nothing removed");
		goto out;
	}
	/* No force: dockerd then untags just this name, and refuses (409) to drop the last reference of an
	 * image a container (even a stopped one) uses, instead of deleting it from under the container. */
	sb_addf(&path, "/images/%s", name.buf);
	rc = request(d, "DELETE", path.buf, NULL, &body, &st, &e);
	if (rc == CRI_NOT_FOUND && st == 404) { /* removed meanwhile: the result is what was asked */
		sb_addf(msg, "image %s not present", ref);
		rc = 0;
		goto out;
	}
	if (rc) {
		sb_add(err, e.buf, e.len);
		goto out;
	}
	rc = cri_docker_parse_delete(body.buf, body.len, msg, err);
out:
	cri_image_clear(&img);
	sb_release(&body);
	sb_release(&path);
	sb_release(&e);
	sb_release(&name);
	return rc;
}
