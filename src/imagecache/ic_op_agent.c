/* ic_op_agent.c - agent mode: an operation's tasks carried out by the node agents (docs/agent.md).
 *
 * Starting: every task is running at once (there is no Job to create): pulls that must be fresh (a
 * floating reference in a create or refresh, --image-pull-policy=Always, an image the node reports Failed)
 * raise the node's pullGeneration, removals become Delete entries; both are requests in the node syncs'
 * table, and the node syncs of the operation's nodes are woken.
 *
 * Folding: a task is done when the node's NodeImageCache status shows it:
 *   pull    Present with observedPullGeneration >= the one asked -> succeeded;
 *           Failed with it -> failed with the agent's reason and message (the runtime's own words);
 *   delete  the spec lists the image for Pull (another cache wants it) -> kept;
 *           Absent once the agent acted on the spec that asked (status.observedGeneration) -> succeeded;
 *           Present with ImageInUse / ImagePinned -> kept; Failed -> failed.
 * Nodes whose object did not change since the last fold are skipped. A task not done at the pull deadline
 * plus a grace (agents retry transient errors until the deadline themselves) fails with the agent's last
 * error, or AgentUnavailable when no agent reported for the node.
 *
 * One digest per tag: when a refresh has folded, the nodes of the operation that hold a tag at another digest
 * than the one pulled most recently are asked once to pull it again (the registry decides which digest the
 * tag names now); those still apart after that are named in status.staleDigests. */
#include <string.h>

#include "ic_controller_int.h"
#include "util/log.h"

#define REASON_AGENT_UNAVAILABLE "AgentUnavailable"

static int must_pull_fresh(struct ic_controller *ctl, const struct ic_op *op, const struct ic_task *t,
			   const struct ic_nic_info *info)
{
	if (info->state == NIC_FAILED)
		return 1; /* retry it: a failed pull is only retried when asked */
	if (strcmp(ctl->o.job.image_pull_policy, "IfNotPresent"))
		return 1;
	/* floating references are re-pulled by creates and refreshes (an update skips those already applied) */
	return op->ts.images[t->image].floating && op->type != IC_OP_PURGE;
}

void ic_agent_start(struct ic_controller *ctl, struct ic_op *op)
{
	int64_t deadline = kf_now_ms() + ctl->o.pull_deadline_ms + ctl->o.agent_grace_ms;
	char key[512];
	snprintf(key, sizeof key, "%s/%s", op->ns, op->name);
	op->seen_versions = xcalloc(op->ts.n_nodes + 1, sizeof *op->seen_versions);
	for (size_t i = 0; i < op->ts.n; i++) {
		struct ic_task *t = &op->ts.v[i];
		if (t->state != IC_TASK_PENDING)
			continue;
		const char *node = op->ts.nodes[t->node].name, *canon = op->ts.images[t->image].canonical;
		struct ic_nic_info info;
		ic_nic_lookup(ctl->nicx, node, canon, &info);
		if (t->action == IC_ACTION_PULL) {
			if (must_pull_fresh(ctl, op, t, &info)) {
				t->pull_gen = (info.spec_gen > info.observed_gen ? info.spec_gen : info.observed_gen) + 1;
				ic_reqs_add(ctl, node, canon, t->pull_gen, key);
			}
		} else {
			ic_reqs_add(ctl, node, canon, 0, key);
		}
		ic_nic_info_clear(&info);
		t->state = IC_TASK_RUNNING;
		t->deadline_ms = deadline;
	}
	for (size_t n = 0; n < op->ts.n_nodes; n++)
		ic_nodesync_enqueue(ctl, op->ts.nodes[n].name);
}

void ic_agent_release(struct ic_controller *ctl, struct ic_op *op)
{
	char key[512];
	snprintf(key, sizeof key, "%s/%s", op->ns, op->name);
	struct map touched = MAP_INIT;
	ic_reqs_drop_cache(ctl, key, &touched);
	size_t it = 0;
	const char *node;
	while (map_next(&touched, &it, &node, NULL))
		ic_nodesync_enqueue(ctl, node);
	map_free(&touched, NULL);
}

static int is_kept_reason(const char *r)
{
	return r && (!strcmp(r, "ImageInUse") || !strcmp(r, "ImagePinned"));
}

/* 1 when owners ("ns/name\n" each) names a cache other than self ("ns/name"). */
static int other_owner(const char *owners, const char *self)
{
	size_t n = strlen(self);
	for (const char *p = owners; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len != n || strncmp(p, self, n))
			return 1;
		p = nl ? nl + 1 : p + len;
	}
	return 0;
}

enum ic_task_state ic_agent_fold(struct ic_task *t, const struct ic_nic_info *info, const char *self)
{
	if (t->action == IC_ACTION_PULL) {
		if (info->state == NIC_PRESENT && info->observed_gen >= t->pull_gen)
			return IC_TASK_SUCCEEDED;
		if (info->state == NIC_FAILED && info->observed_gen >= t->pull_gen) {
			ic_task_set_result(t, IC_TASK_FAILED, info->reason ? info->reason : "ErrImagePull",
					   info->message ? info->message : "the image pull failed");
			return IC_TASK_FAILED;
		}
		return IC_TASK_RUNNING;
	}
	if (info->in_spec && !info->spec_delete && other_owner(info->owners, self)) {
		ic_task_set_result(t, IC_TASK_KEPT, "ImageWantedByOtherImageCache",
				   "kept: another ImageCache lists this image for this node");
		return IC_TASK_KEPT;
	}
	if (!info->spec_delete || !info->has_status || info->observed_generation < info->delete_since)
		return IC_TASK_RUNNING; /* not asked yet, or the agent has not acted on the asking spec */
	switch (info->state) {
	case NIC_ABSENT:
	case NIC_NONE:
		return IC_TASK_SUCCEEDED;
	case NIC_PRESENT:
		if (is_kept_reason(info->reason)) {
			ic_task_set_result(t, IC_TASK_KEPT, info->reason, info->message);
			return IC_TASK_KEPT;
		}
		return IC_TASK_RUNNING;
	case NIC_FAILED:
		ic_task_set_result(t, IC_TASK_FAILED, info->reason ? info->reason : "ImageDeleteFailed",
				   info->message ? info->message : "the image could not be removed");
		return IC_TASK_FAILED;
	default:
		return IC_TASK_RUNNING;
	}
}

static void expire(struct ic_task *t, const struct ic_nic_info *info, const char *node)
{
	if (info->reason && info->message) {
		ic_task_set_result(t, IC_TASK_FAILED, info->reason, info->message);
		return;
	}
	char *m = !info->exists || !info->has_status
			  ? xasprintf("no kube-fledged agent reported on node %s (is the agent DaemonSet running there?)", node)
			  : xasprintf("the kube-fledged agent on node %s did not finish in time", node);
	ic_task_set_result(t, IC_TASK_FAILED, REASON_AGENT_UNAVAILABLE, m);
	free(m);
}

int ic_agent_continue(struct ic_controller *ctl, struct ic_cache_state *st, json_t *obj, int64_t *requeue_ms)
{
	(void)obj;
	struct ic_op *op = st->op;
	char key[512];
	snprintf(key, sizeof key, "%s/%s", op->ns, op->name);
	int64_t now = kf_now_ms(), next = INT64_MAX;
	for (size_t n = 0; n < op->ts.n_nodes; n++) {
		const char *node = op->ts.nodes[n].name;
		size_t from, to;
		ic_tasks_node_range(&op->ts, (uint32_t)n, &from, &to);
		uint64_t v = ic_nic_version(ctl->nicx, node);
		int changed = v != op->seen_versions[n];
		op->seen_versions[n] = v;
		for (size_t i = from; i < to; i++) {
			struct ic_task *t = &op->ts.v[i];
			if (t->state != IC_TASK_RUNNING)
				continue;
			int expired = now >= t->deadline_ms;
			if (!changed && !expired) {
				if (t->deadline_ms < next)
					next = t->deadline_ms;
				continue;
			}
			struct ic_nic_info info;
			ic_nic_lookup(ctl->nicx, node, op->ts.images[t->image].canonical, &info);
			enum ic_task_state s = ic_agent_fold(t, &info, key);
			if (s == IC_TASK_SUCCEEDED)
				t->state = IC_TASK_SUCCEEDED;
			else if (s == IC_TASK_RUNNING && expired)
				expire(t, &info, node);
			else if (s == IC_TASK_RUNNING && t->deadline_ms < next)
				next = t->deadline_ms;
			ic_nic_info_clear(&info);
		}
	}
	if (next != INT64_MAX)
		*requeue_ms = next - now > 1 ? next - now : 1;
	return 0;
}

/* The nodes that hold the image at another digest than the one pulled most recently (a new array), or NULL
 * when all agree. */
static json_t *apart_nodes(struct ic_controller *ctl, const char *canonical)
{
	json_t *d = ic_nic_digests(ctl->nicx, canonical);
	if (json_object_size(d) < 2) {
		json_decref(d);
		return NULL;
	}
	const char *newest = NULL, *k;
	json_int_t best = -1;
	json_t *v;
	json_object_foreach(d, k, v) {
		json_int_t lp = json_integer_value(json_object_get(v, "lastPull"));
		if (lp > best) {
			best = lp;
			newest = k;
		}
	}
	json_t *apart = json_array();
	json_object_foreach(d, k, v) {
		if (!strcmp(k, newest))
			continue;
		size_t i;
		json_t *n;
		json_array_foreach(json_object_get(v, "nodes"), i, n) json_array_append(apart, n);
	}
	json_decref(d);
	return apart;
}

int ic_agent_check_digests(struct ic_controller *ctl, struct ic_op *op)
{
	if (op->type != IC_OP_REFRESH || op->digest_round > 1)
		return 0;
	char key[512];
	snprintf(key, sizeof key, "%s/%s", op->ns, op->name);
	int64_t deadline = kf_now_ms() + ctl->o.pull_deadline_ms + ctl->o.agent_grace_ms;
	size_t asked = 0;
	json_t *stale = json_object();
	for (size_t im = 0; im < op->ts.n_images; im++) {
		const struct ic_task_image *img = &op->ts.images[im];
		if (img->invalid)
			continue;
		json_t *apart = apart_nodes(ctl, img->canonical);
		size_t i;
		json_t *n;
		json_array_foreach(apart, i, n) {
			long ni = ic_tasks_node_index(&op->ts, json_string_value(n));
			struct ic_task *t = ni < 0 ? NULL : ic_tasks_find(&op->ts, (uint32_t)ni, img->canonical, IC_ACTION_PULL);
			if (!t || !ic_task_ok(t->state))
				continue;
			if (op->digest_round == 0) {
				struct ic_nic_info info;
				ic_nic_lookup(ctl->nicx, json_string_value(n), img->canonical, &info);
				t->pull_gen = (info.spec_gen > info.observed_gen ? info.spec_gen : info.observed_gen) + 1;
				ic_nic_info_clear(&info);
				ic_reqs_add(ctl, json_string_value(n), img->canonical, t->pull_gen, key);
				t->state = IC_TASK_RUNNING;
				t->deadline_ms = deadline;
				ic_nodesync_enqueue(ctl, json_string_value(n));
				asked++;
			} else {
				json_t *arr = json_object_get(stale, img->image);
				if (!arr) {
					arr = json_array();
					json_object_set_new(stale, img->image, arr);
				}
				json_array_append(arr, n);
			}
		}
		json_decref(apart);
	}
	if (op->digest_round == 0 && asked)
		LOG_INFO("ImageCache %s: %zu node-image pairs hold an older digest of their tag: pulling again", key, asked);
	if (op->digest_round > 0 && json_object_size(stale)) {
		json_decref(op->stale_digests);
		op->stale_digests = json_incref(stale);
	}
	json_decref(stale);
	op->digest_round++;
	if (op->digest_round == 1 && !asked)
		op->digest_round = 2; /* nothing apart: no second look needed */
	return asked > 0;
}
