/* agent_status.c - the ownership-safe delete of one reference, and the NodeImageCache status object
 * (see agent_node.h and docs/agent.md, "Status"). */
#include <stdlib.h>
#include <string.h>

#include "util/intern.h"
#include "agent_node_int.h"
#include "util/imageref.h"
#include "util/log.h"
#include "util/util.h"
#include "util/version.h"

/* ---- delete ---- */

/* What the delete found, applied under the lock. */
struct delete_outcome {
	enum agent_state state;
	const char *reason;
	char *message;
	int present;
	const char *what; /* removed, kept, failed */
};

void agent_node_delete(struct agent_node *n, const struct agent_node_config *cfg, const char *key,
		       const char **outcome)
{
	struct agent_runtime *rt = n->rt;
	struct strbuf err = STRBUF_INIT, msg = STRBUF_INIT;
	struct delete_outcome o = { AGENT_FAILED, AGENT_REASON_DELETE_ERROR, NULL, 1, "failed" };
	struct cri_image img;
	struct cri_container_list cl = { 0 };
	int present = 0, rc;
	memset(&img, 0, sizeof img);

	pthread_mutex_lock(&n->mu);
	struct agent_entry *e = agent_node_get(n, key);
	int still = e && e->in_spec && e->action == AGENT_DELETE;
	char *image = e ? xstrdup(agent_entry_image(e)) : NULL;
	if (e && !still)
		e->busy = 0;
	pthread_mutex_unlock(&n->mu);
	if (!still) {
		*outcome = "skipped";
		free(image);
		return;
	}

	rc = rt->ops->status(rt->ctx, key, &img, &present, &err);
	if (rc) {
		o.message = xasprintf("rmi %s: %s", image, err.buf);
		goto apply;
	}
	if (!present) {
		o.state = AGENT_ABSENT;
		o.reason = NULL;
		o.present = 0;
		o.what = "removed";
		goto apply;
	}
	/* Our own pin label goes first: only a pin the runtime keeps for another reason (its sandbox image,
	 * CRI-O's pinned_images, another name's label) keeps the image. */
	if (rt->pinning == AGENT_PIN_LABEL && rt->ops->pin && img.pinned) {
		sb_reset(&err);
		if (rt->ops->pin(rt->ctx, key, 0, &err) == 0) {
			cri_image_clear(&img);
			sb_reset(&err);
			rc = rt->ops->status(rt->ctx, key, &img, &present, &err);
			if (rc || !present) {
				o.state = rc ? AGENT_FAILED : AGENT_ABSENT;
				o.reason = rc ? AGENT_REASON_DELETE_ERROR : NULL;
				o.message = rc ? xasprintf("rmi %s: %s", image, err.buf) : NULL;
				o.present = rc ? 1 : 0;
				o.what = rc ? "failed" : "removed";
				goto apply;
			}
		}
	}
	if (img.pinned) {
		o.state = AGENT_PRESENT;
		o.reason = AGENT_REASON_PINNED;
		o.message = xasprintf("kept %s: the runtime pins it", image);
		o.what = "kept";
		goto apply;
	}
	sb_reset(&err);
	rc = rt->ops->list_containers(rt->ctx, &cl, &err);
	if (rc) {
		o.message = xasprintf("rmi %s: cannot list the node's containers to see whether the image is in "
				      "use: %s", image, err.buf);
		goto apply;
	}
	if (cri_image_users(&cl, &img, key, &msg)) {
		o.state = AGENT_PRESENT;
		o.reason = AGENT_REASON_IN_USE;
		o.message = xasprintf("kept %s: used by %s", image, msg.buf);
		o.what = "kept";
		goto apply;
	}
	/* a runtime that refuses to remove an image a stopped container uses (dockerd): the spent pull containers
	 * of job mode's Jobs go first (a node switched from job mode to the agent has them for a minute) */
	if (rt->ops->remove_spent_pullers)
		rt->ops->remove_spent_pullers(rt->ctx, &cl, &img, key);
	sb_reset(&err);
	sb_reset(&msg);
	rc = rt->ops->remove(rt->ctx, key, &msg, &err);
	if (rc) {
		o.message = xasprintf("rmi %s: %s", image, err.buf);
		goto apply;
	}
	LOG_INFO("node %s: %s", n->name, msg.buf);
	o.state = AGENT_ABSENT;
	o.reason = NULL;
	o.present = 0;
	o.what = "removed";
apply:
	pthread_mutex_lock(&n->mu);
	e = agent_node_get(n, key);
	if (e) {
		n->seq++;
		e->epoch = ++n->epoch;
		e->busy = 0;
		e->present = o.present;
		if (!o.present) {
			kf_intern_set(&e->image_id, NULL);
			kf_intern_set(&e->digest, NULL);
			e->size = 0;
			e->pinned = 0;
		} else if (present) {
			kf_intern_set(&e->image_id, img.id);
			kf_intern_set(&e->digest, agent_repo_digest(key, &img));
			e->size = img.size;
			e->pinned = img.pinned;
		}
		agent_entry_set_state(e, o.state, o.reason, NULL, o.message);
		e->failed_sig = e->spec_sig;
		e->retry_at_ms = o.state == AGENT_ABSENT ? 0 : kf_now_ms() + cfg->poll_ms; /* looked at again */
	}
	pthread_mutex_unlock(&n->mu);
	if (o.state == AGENT_FAILED)
		LOG_WARN("node %s: %s", n->name, o.message);
	else if (o.state == AGENT_PRESENT)
		LOG_V(1, "node %s: %s", n->name, o.message);
	*outcome = o.what;
	free(o.message);
	free(image);
	cri_image_clear(&img);
	cri_container_list_free(&cl);
	sb_release(&err);
	sb_release(&msg);
}

/* ---- status ---- */

static void set_time(json_t *o, const char *k, time_t t)
{
	if (t > 0) {
		char buf[32];
		kf_rfc3339(t, buf);
		json_object_set_new(o, k, json_string(buf));
	}
}

static void set_opt(json_t *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_set_new(o, k, json_string(v));
}

static json_t *entry_json(const struct agent_entry *e)
{
	json_t *o = json_object();
	json_object_set_new(o, "image", json_string(agent_entry_image(e)));
	json_object_set_new(o, "state", json_string(agent_state_name(e->state)));
	if (e->action == AGENT_PULL)
		json_object_set_new(o, "observedPullGeneration", json_integer(e->observed_gen));
	if (e->present) {
		set_opt(o, "digest", e->digest);
		set_opt(o, "imageID", e->image_id);
		json_object_set_new(o, "sizeBytes", json_integer((json_int_t)e->size));
		json_object_set_new(o, "pinned", json_boolean(e->pinned));
	}
	set_time(o, "lastPullTime", e->last_pull);
	set_time(o, "lastTransitionTime", e->last_transition);
	set_opt(o, "reason", e->reason);
	set_opt(o, "cause", e->cause);
	set_opt(o, "message", e->message);
	if (e->attempts && (e->state == AGENT_PULLING || e->state == AGENT_FAILED))
		json_object_set_new(o, "attempts", json_integer(e->attempts));
	return o;
}

json_t *agent_node_status(struct agent_node *n, const struct agent_node_config *cfg, time_t now, uint64_t *hash,
			  uint64_t *seq, int *busy)
{
	json_t *images = json_array();
	size_t d = 0, p = 0, pu = 0, f = 0;
	int b = 0;
	pthread_mutex_lock(&n->mu);
	if (seq)
		*seq = n->seq;
	for (size_t i = 0; i < n->n; i++) {
		const struct agent_entry *e = n->e[i];
		if (!e->in_spec)
			continue;
		if (e->action == AGENT_PULL) {
			d++;
			p += e->state == AGENT_PRESENT;
		}
		pu += e->state == AGENT_PULLING;
		f += e->state == AGENT_FAILED;
		b |= e->busy || e->state == AGENT_PULLING;
		json_array_append_new(images, entry_json(e));
	}
	char *runtime = agent_runtime_label(n->rt);
	json_t *agent = json_pack("{s:s, s:s, s:s, s:s, s:s}", "version", kf_version(), "runtime", runtime, "api",
				  n->rt->api, "socket", n->rt->socket, "pinning", agent_pinning_name(n->rt->pinning));
	free(runtime);
	json_t *st = json_pack("{s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "observedGeneration", (json_int_t)n->generation,
			       "desired", (json_int_t)d, "present", (json_int_t)p, "pulling", (json_int_t)pu, "failed",
			       (json_int_t)f, "agent", agent, "images", images);
	if (n->fs.mountpoint || n->fs.known) {
		json_t *fs = json_object();
		if (n->fs.known) {
			json_object_set_new(fs, "usedBytes", json_integer((json_int_t)n->fs.used));
			json_object_set_new(fs, "capacityBytes", json_integer((json_int_t)n->fs.capacity));
		}
		if (n->fs.image_bytes)
			json_object_set_new(fs, "imageBytes", json_integer((json_int_t)n->fs.image_bytes));
		set_opt(fs, "mountpoint", n->fs.mountpoint);
		json_object_set_new(fs, "thresholdPercent", json_integer(cfg->fs_threshold_percent));
		json_object_set_new(st, "imageFs", fs);
	}
	pthread_mutex_unlock(&n->mu);
	if (busy)
		*busy = b;
	char *text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
	*hash = agent_hash(AGENT_HASH_INIT, text, strlen(text));
	free(text);
	char ts[32];
	kf_rfc3339(now, ts);
	json_object_set_new(agent, "lastHeartbeatTime", json_string(ts));
	return st;
}
