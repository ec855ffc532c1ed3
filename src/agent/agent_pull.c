/* agent_pull.c - one pull attempt: disk check, credentials, pull, image status, pin (see agent_pull.h). */
#include "agent_pull.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "agent_auth.h"
#include "util/imageref.h"
#include "util/log.h"
#include "util/util.h"

int agent_fs_usage(const char *host_root, const char *path, uint64_t *used, uint64_t *capacity, struct strbuf *err)
{
	char *full = xasprintf("%s%s", host_root ? host_root : "", path);
	struct statvfs sv;
	int rc = statvfs(full, &sv);
	if (rc < 0) {
		sb_addf(err, "statvfs %s: %s", full, strerror(errno));
		free(full);
		return -1;
	}
	free(full);
	*capacity = (uint64_t)sv.f_blocks * sv.f_frsize;
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	*used = *capacity > avail ? *capacity - avail : 0;
	return 0;
}

static void human(uint64_t n, char *buf, size_t len)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t i = 0;
	while (v >= 1024 && i + 1 < ARRAY_SIZE(u)) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

/* 0 = go ahead, 1 = refused (r->message set). */
static int disk_check(const struct agent_pull_env *env, const struct agent_pull_job *j, struct agent_pull_result *r)
{
	struct agent_runtime *rt = j->node->rt;
	int threshold = env->cfg->fs_threshold_percent;
	if (threshold <= 0)
		return 0;
	struct agent_fs_info fi;
	struct strbuf err = STRBUF_INIT;
	r->fs_checked = 1;
	if (rt->ops->fs_info(rt->ctx, &fi, &err)) {
		LOG_V(1, "node %s: image filesystem info: %s", j->node->name, err.buf);
		memset(&fi, 0, sizeof fi);
	}
	r->fs_image_bytes = fi.has_image_bytes ? fi.image_bytes : 0;
	if (fi.mountpoint)
		r->fs_mountpoint = xstrdup(fi.mountpoint);
	if (fi.has_capacity) {
		r->fs_known = 1;
		r->fs_used = fi.used_bytes;
		r->fs_capacity = fi.capacity_bytes;
	} else if (fi.mountpoint) {
		sb_reset(&err);
		r->fs_known = agent_fs_usage(env->host_root, fi.mountpoint, &r->fs_used, &r->fs_capacity, &err) == 0 &&
			      r->fs_capacity > 0;
	} else {
		sb_reset(&err);
		sb_adds(&err, "the runtime reports no image filesystem");
	}
	if (!r->fs_known) {
		int say;
		pthread_mutex_lock(&j->node->mu);
		say = !j->node->fs.warned;
		j->node->fs.warned = 1;
		pthread_mutex_unlock(&j->node->mu);
		if (say)
			LOG_WARN("node %s: cannot read the image filesystem's capacity (%s): pulling without the disk "
				 "check (--image-fs-threshold=%d)", j->node->name, err.buf, threshold);
		agent_fs_info_clear(&fi);
		sb_release(&err);
		return 0;
	}
	agent_fs_info_clear(&fi);
	sb_release(&err);
	uint64_t after = r->fs_used + j->size_hint;
	if ((long double)after * 100 <= (long double)threshold * r->fs_capacity)
		return 0;
	char used[32], cap[32], hint[32];
	human(r->fs_used, used, sizeof used);
	human(r->fs_capacity, cap, sizeof cap);
	human(j->size_hint, hint, sizeof hint);
	r->message = xasprintf("not pulled: the image filesystem %s is %.0f%% full (%s of %s) and the image needs %s%s: "
			       "over the threshold of %d%% (--image-fs-threshold), where the kubelet's image garbage "
			       "collection would start removing other images",
			       r->fs_mountpoint ? r->fs_mountpoint : "", (double)r->fs_used * 100 / (double)r->fs_capacity,
			       used, cap, j->size_hint ? hint : "an unknown amount",
			       j->size_hint ? "" : " (no size hint)", threshold);
	r->disk_refused = 1;
	return 1;
}

/* Reads every referenced Secret into creds; notes what could not be read. */
static void load_creds(const struct agent_pull_env *env, const struct agent_pull_job *j, struct agent_creds *creds,
		       struct strbuf *notes)
{
	for (size_t i = 0; i < j->n_secrets; i++) {
		const struct agent_secret_ref *s = &j->secrets[i];
		struct strbuf err = STRBUF_INIT;
		char *text = NULL;
		size_t len = 0;
		int legacy = 0;
		if (!env->get_secret) {
			sb_adds(&err, "no access to Secrets");
		} else if (env->get_secret(env->ud, s->ns, s->name, &text, &len, &legacy, &err) == 0) {
			sb_reset(&err);
			if (agent_dockercfg_parse(text, len, legacy, creds, &err) == 0)
				sb_reset(&err);
		}
		if (text) {
			explicit_bzero(text, len);
			free(text);
		}
		if (err.len)
			sb_addf(notes, "%spull secret %s/%s: %s", notes->len ? "; " : "", s->ns, s->name, err.buf);
		sb_release(&err);
	}
}

void agent_pull_run(const struct agent_pull_env *env, const struct agent_pull_job *j, struct agent_pull_result *r)
{
	struct agent_runtime *rt = j->node->rt;
	struct strbuf err = STRBUF_INIT, notes = STRBUF_INIT;
	struct agent_creds creds = { 0 };
	size_t *idx = NULL;
	int64_t t0 = kf_now_ms();
	memset(r, 0, sizeof *r);
	if (disk_check(env, j, r))
		goto out;
	load_creds(env, j, &creds, &notes);
	struct imageref ref;
	struct strbuf why = STRBUF_INIT;
	size_t n = 0;
	if (imageref_parse(j->image, &ref, &why) == 0 && creds.n) {
		idx = xcalloc(creds.n, sizeof *idx);
		n = agent_auth_select(&creds, &ref, idx, creds.n);
	}
	sb_release(&why);
	int64_t left = j->deadline_ms - kf_now_ms();
	if (left < 1000)
		left = 1000;
	int rc = 0;
	for (size_t k = 0; k == 0 || k < n; k++) {
		struct cri_auth auth = { 0 };
		if (n) {
			const struct agent_cred *c = &creds.items[idx[k]];
			auth.username = c->username;
			auth.password = c->password;
		}
		sb_reset(&err);
		free(r->image_id);
		r->image_id = NULL;
		rc = rt->ops->pull(rt->ctx, j->image, n ? &auth : NULL, left, &r->image_id, &err);
		if (!rc)
			break;
		struct agent_pull_error cls;
		agent_classify_pull_error(rc, err.buf, &cls);
		if (!cls.cause || strcmp(cls.cause, "Unauthorized"))
			break; /* another credential would not help */
	}
	if (rc) {
		r->code = rc;
		if (notes.len)
			sb_addf(&err, " (%s)", notes.buf);
		r->message = sb_detach(&err);
		goto out;
	}
	if (notes.len)
		LOG_WARN("node %s: pulled %s, but %s", j->node->name, j->image, notes.buf);
	/* What was pulled: id, repo digest, size; then the pin. */
	struct cri_image img;
	int present = 0;
	sb_reset(&err);
	if (rt->ops->status(rt->ctx, j->image, &img, &present, &err) == 0 && present) {
		free(r->image_id);
		r->image_id = xstrdup(img.id);
		const char *d = agent_repo_digest(j->key, &img);
		r->digest = d ? xstrdup(d) : NULL;
		r->size = img.size;
		r->pinned = img.pinned;
		cri_image_clear(&img);
	}
	if (rt->pinning == AGENT_PIN_LABEL && rt->ops->pin && !r->pinned) {
		sb_reset(&err);
		if (rt->ops->pin(rt->ctx, j->image, 1, &err) == 0)
			r->pinned = 1;
		else
			LOG_WARN("node %s: cannot pin %s: %s", j->node->name, j->image, err.buf);
	}
	r->ok = 1;
out:
	r->duration_ms = kf_now_ms() - t0;
	free(idx);
	agent_creds_free(&creds);
	sb_release(&err);
	sb_release(&notes);
}
