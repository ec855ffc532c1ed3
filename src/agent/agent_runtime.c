/* agent_runtime.c - the CRI and Docker backends of the agent's runtime interface (agent_runtime.h). */
#include "agent_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cri/cri_docker.h"
#include "util/imageref.h"
#include "util/util.h"

void agent_fs_info_clear(struct agent_fs_info *fi)
{
	free(fi->mountpoint);
	memset(fi, 0, sizeof *fi);
}

const char *agent_pinning_name(enum agent_pinning p)
{
	switch (p) {
	case AGENT_PIN_LABEL: return "Pinned";
	case AGENT_PIN_RUNTIME_CONFIG: return "RuntimeConfigured";
	case AGENT_PIN_DISABLED: return "Disabled";
	default: return "Unsupported";
	}
}

int agent_containerd_pins(const char *version)
{
	if (!version)
		return 0;
	const char *v = version[0] == 'v' ? version + 1 : version;
	int major = 0, minor = 0;
	if (sscanf(v, "%d.%d", &major, &minor) != 2)
		return 0;
	return major > 1 || (major == 1 && minor >= 7);
}

struct agent_runtime *agent_runtime_new(const struct agent_runtime_ops *ops, void *ctx, const char *name,
					const char *version, const char *api, const char *socket,
					enum agent_pinning pinning)
{
	struct agent_runtime *rt = xcalloc(1, sizeof *rt);
	rt->ops = ops;
	rt->ctx = ctx;
	rt->name = xstrdup(name ? name : "");
	rt->version = xstrdup(version ? version : "");
	rt->api = xstrdup(api ? api : "");
	rt->socket = xstrdup(socket ? socket : "");
	rt->pinning = pinning;
	return rt;
}

void agent_runtime_free(struct agent_runtime *rt)
{
	if (!rt)
		return;
	if (rt->ops && rt->ops->free)
		rt->ops->free(rt->ctx);
	free(rt->name);
	free(rt->version);
	free(rt->api);
	free(rt->socket);
	free(rt);
}

char *agent_runtime_label(const struct agent_runtime *rt)
{
	return xasprintf("%s://%s", rt->name, rt->version);
}

/* ---- CRI ---- */

struct cri_ctx {
	char *socket;
	char *api; /* resolved after the first Version call */
};

static struct cri_client *cri_open(struct cri_ctx *x, int64_t timeout_ms, struct strbuf *err)
{
	struct cri_client *c = cri_client_new(x->socket, err);
	if (!c)
		return NULL;
	cri_client_set_timeout(c, timeout_ms);
	if (cri_client_set_api(c, x->api, err)) {
		cri_client_free(c);
		return NULL;
	}
	return c;
}

#define CRI_CALL(x, timeout, expr)                                  \
	do {                                                        \
		struct cri_client *c = cri_open(x, timeout, err);  \
		if (!c)                                             \
			return CRI_EINVAL;                          \
		int rc_ = (expr);                                   \
		cri_client_free(c);                                 \
		return rc_;                                         \
	} while (0)

static const int64_t CALL_TIMEOUT_MS = 60 * 1000;

static int cri_list(void *ctx, struct cri_image_list *out, struct strbuf *err)
{
	CRI_CALL(ctx, CALL_TIMEOUT_MS, cri_list_images(c, NULL, out, err));
}

static int cri_status(void *ctx, const char *ref, struct cri_image *out, int *present, struct strbuf *err)
{
	CRI_CALL(ctx, CALL_TIMEOUT_MS, cri_image_status(c, ref, out, present, err));
}

static int cri_pull(void *ctx, const char *ref, const struct cri_auth *auth, int64_t timeout_ms, char **image_id,
		    struct strbuf *err)
{
	CRI_CALL(ctx, timeout_ms, cri_pull_image(c, ref, auth, image_id, err));
}

static int cri_remove(void *ctx, const char *ref, struct strbuf *msg, struct strbuf *err)
{
	CRI_CALL(ctx, CALL_TIMEOUT_MS, cri_rmi(c, ref, msg, err));
}

static int cri_containers(void *ctx, struct cri_container_list *out, struct strbuf *err)
{
	CRI_CALL(ctx, CALL_TIMEOUT_MS, cri_list_containers(c, out, err));
}

static int cri_fs(void *ctx, struct agent_fs_info *out, struct strbuf *err)
{
	struct cri_fs_info fi;
	memset(out, 0, sizeof *out);
	struct cri_client *c = cri_open(ctx, CALL_TIMEOUT_MS, err);
	if (!c)
		return CRI_EINVAL;
	int rc = cri_image_fs_info(c, &fi, err);
	cri_client_free(c);
	if (rc)
		return rc;
	if (fi.n_image_fs) {
		out->image_bytes = fi.image_fs[0].used_bytes;
		out->has_image_bytes = fi.image_fs[0].has_used_bytes;
		if (fi.image_fs[0].mountpoint && fi.image_fs[0].mountpoint[0] == '/')
			out->mountpoint = xstrdup(fi.image_fs[0].mountpoint);
	}
	cri_fs_info_clear(&fi);
	return 0;
}

/* containerd's image records are named by the normalised reference. */
static int cri_pin(void *ctx, const char *ref, int on, struct strbuf *err)
{
	struct imageref r;
	struct strbuf name = STRBUF_INIT, why = STRBUF_INIT;
	if (imageref_parse(ref, &r, &why)) {
		sb_addf(err, "invalid image reference \"%s\": %s", ref, why.buf);
		sb_release(&why);
		return CRI_EINVAL;
	}
	imageref_canonical(&r, &name);
	struct cri_client *c = cri_open(ctx, CALL_TIMEOUT_MS, err);
	int rc = c ? cri_containerd_label_image(c, name.buf, CRI_CONTAINERD_PINNED_LABEL, on ? "pinned" : "",
						CRI_CONTAINERD_NAMESPACE, err) :
		     CRI_EINVAL;
	cri_client_free(c);
	sb_release(&name);
	sb_release(&why);
	return rc;
}

static void cri_ctx_free(void *ctx)
{
	struct cri_ctx *x = ctx;
	free(x->socket);
	free(x->api);
	free(x);
}

static const struct agent_runtime_ops cri_ops = { cri_list, cri_status, cri_pull, cri_remove, cri_fs,
						  cri_containers, NULL, cri_ctx_free };
static const struct agent_runtime_ops cri_pin_ops = { cri_list, cri_status, cri_pull, cri_remove, cri_fs,
						      cri_containers, cri_pin, cri_ctx_free };

/* ---- Docker ---- */

struct docker_ctx {
	char *socket;
	char *root_dir; /* DockerRootDir, from /info at open */
};

#define DOCKER_CALL(x, timeout, expr)                                         \
	do {                                                                  \
		struct cri_docker *d = cri_docker_new((x)->socket, err);     \
		if (!d)                                                       \
			return CRI_EINVAL;                                    \
		cri_docker_set_timeout(d, timeout);                           \
		int rc_ = (expr);                                             \
		cri_docker_free(d);                                           \
		return rc_;                                                   \
	} while (0)

static int dk_list(void *ctx, struct cri_image_list *out, struct strbuf *err)
{
	struct docker_ctx *x = ctx;
	DOCKER_CALL(x, CALL_TIMEOUT_MS, cri_docker_list_images(d, out, err));
}

static int dk_status(void *ctx, const char *ref, struct cri_image *out, int *present, struct strbuf *err)
{
	struct docker_ctx *x = ctx;
	DOCKER_CALL(x, CALL_TIMEOUT_MS, cri_docker_inspect(d, ref, out, present, err));
}

static int dk_pull(void *ctx, const char *ref, const struct cri_auth *auth, int64_t timeout_ms, char **image_id,
		   struct strbuf *err)
{
	struct docker_ctx *x = ctx;
	DOCKER_CALL(x, timeout_ms, cri_docker_pull(d, ref, auth, image_id, err));
}

static int dk_remove(void *ctx, const char *ref, struct strbuf *msg, struct strbuf *err)
{
	struct docker_ctx *x = ctx;
	DOCKER_CALL(x, CALL_TIMEOUT_MS, cri_docker_remove(d, ref, msg, err));
}

static int dk_containers(void *ctx, struct cri_container_list *out, struct strbuf *err)
{
	struct docker_ctx *x = ctx;
	DOCKER_CALL(x, CALL_TIMEOUT_MS, cri_docker_list_containers(d, out, err));
}

static void dk_remove_spent_pullers(void *ctx, const struct cri_container_list *cl, const struct cri_image *img,
				    const char *canonical_ref)
{
	struct docker_ctx *x = ctx;
	struct strbuf e = STRBUF_INIT;
	struct cri_docker *d = cri_docker_new(x->socket, &e);
	if (d) {
		cri_docker_set_timeout(d, CALL_TIMEOUT_MS);
		cri_docker_remove_spent_pullers(d, cl, img, canonical_ref);
		cri_docker_free(d);
	}
	sb_release(&e);
}

static int dk_fs(void *ctx, struct agent_fs_info *out, struct strbuf *err)
{
	(void)err;
	struct docker_ctx *x = ctx;
	memset(out, 0, sizeof *out);
	if (x->root_dir)
		out->mountpoint = xstrdup(x->root_dir);
	return 0;
}

static void dk_ctx_free(void *ctx)
{
	struct docker_ctx *x = ctx;
	free(x->socket);
	free(x->root_dir);
	free(x);
}

static const struct agent_runtime_ops docker_ops = { dk_list, dk_status, dk_pull, dk_remove, dk_fs, dk_containers,
						     NULL, dk_ctx_free, dk_remove_spent_pullers };

struct agent_runtime *agent_runtime_open(const char *socket, int docker, const char *api, int pin,
					 struct strbuf *err)
{
	struct cri_version v = { 0 };
	struct agent_runtime *rt = NULL;
	if (docker) {
		struct cri_docker *d = cri_docker_new(socket, err);
		if (!d)
			return NULL;
		cri_docker_set_timeout(d, CALL_TIMEOUT_MS);
		char *root = NULL;
		struct strbuf e2 = STRBUF_INIT;
		int rc = cri_docker_version(d, &v, err);
		if (!rc && cri_docker_root_dir(d, &root, &e2))
			root = NULL; /* capacity then unknown; said once by the disk check */
		sb_release(&e2);
		cri_docker_free(d);
		if (rc)
			return NULL;
		struct docker_ctx *x = xcalloc(1, sizeof *x);
		x->socket = xstrdup(socket);
		x->root_dir = root;
		rt = agent_runtime_new(&docker_ops, x, "docker", v.runtime_version, "docker", socket,
				       AGENT_PIN_UNSUPPORTED);
		cri_version_clear(&v);
		return rt;
	}
	struct cri_client *c = cri_client_new(socket, err);
	if (!c)
		return NULL;
	cri_client_set_timeout(c, CALL_TIMEOUT_MS);
	if (cri_client_set_api(c, api, err) || cri_version(c, &v, err)) {
		cri_client_free(c);
		return NULL;
	}
	struct cri_ctx *x = xcalloc(1, sizeof *x);
	x->socket = xstrdup(socket);
	x->api = xstrdup(cri_client_api(c) ? cri_client_api(c) : "auto");
	enum agent_pinning p = AGENT_PIN_UNSUPPORTED;
	const char *name = v.runtime_name ? v.runtime_name : "";
	if (!strcmp(name, "containerd") && agent_containerd_pins(v.runtime_version))
		p = pin ? AGENT_PIN_LABEL : AGENT_PIN_DISABLED;
	else if (!strcmp(name, "cri-o"))
		p = AGENT_PIN_RUNTIME_CONFIG;
	rt = agent_runtime_new(p == AGENT_PIN_LABEL ? &cri_pin_ops : &cri_ops, x, name, v.runtime_version, x->api,
			       socket, p);
	cri_client_free(c);
	cri_version_clear(&v);
	return rt;
}
