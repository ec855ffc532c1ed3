/* test_ic_core.c - the controller's pure core: pull decision matrix, runtime detection, Job rendering
 * (golden JSON in data/ic/), operation planning and status aggregation. Set UPDATE_GOLDEN=1 to rewrite
 * the golden files after an intended change (then review the diff). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagecache/ic_jobs.h"
#include "imagecache/ic_nodeplan.h"
#include "imagecache/ic_plan.h"
#include "imagecache/ic_status.h"
#include "imagecache/ic_types.h"
#include "util/util.h"

static json_t *load(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/ic/%s", TEST_DATA_DIR, name);
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);
	if (!j)
		fail_msg("%s: %s (line %d)", path, e.text, e.line);
	return j;
}

static void assert_golden(json_t *got, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/ic/%s", TEST_DATA_DIR, name);
	if (getenv("UPDATE_GOLDEN")) {
		json_dump_file(got, path, JSON_INDENT(2) | JSON_SORT_KEYS);
		FILE *f = fopen(path, "a");
		fputc('\n', f);
		fclose(f);
	}
	json_t *want = load(name);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);
		fail_msg("%s differs from the rendered JSON:\n%s", name, g);
	}
	json_decref(want);
}

static json_t *node_named(json_t *nodes, const char *name)
{
	size_t i;
	json_t *n;
	json_array_foreach(nodes, i, n) if (!strcmp(kf_jstr(n, "metadata", "name", NULL), name)) return n;
	fail_msg("no node %s", name);
	return NULL;
}

static void pull_decision_matrix(void **state)
{
	(void)state;
	json_t *nodes = load("nodes.json");
	json_t *n1 = node_named(nodes, "rk8s-node1");
	static const struct {
		const char *policy, *image;
		int needed;
		const char *container_policy;
	} m[] = {
		/* present on node1 by exact reference: no Job */
		{ "IfNotPresent", "127.0.0.1:5001/kftest/app1:1", 0, "IfNotPresent" },
		{ "IfNotPresent", "127.0.0.1:5001/kftest/app1@sha256:ce0387b8a1f0e5f4fcd12d9f5e69d1f01bde9bd3ddbd3f5d0e72f6e2f6c0b7d1", 0, "IfNotPresent" },
		{ "IfNotPresent", "nginx:1.23", 0, "IfNotPresent" },
		{ "IfNotPresent", "docker.io/library/nginx:1.23", 0, "IfNotPresent" },
		/* upstream's substring search found these "present": */
		{ "IfNotPresent", "127.0.0.1:5001/kftest/app1:10", 1, "IfNotPresent" },
		{ "IfNotPresent", "127.0.0.1:5001/kftest/app:1", 1, "IfNotPresent" },
		{ "IfNotPresent", "nginx:1.2", 1, "IfNotPresent" },
		/* floating: always pulled, container policy Always (a registry port is not a tag) */
		{ "IfNotPresent", "nginx", 1, "Always" },
		{ "IfNotPresent", "nginx:latest", 1, "Always" },
		{ "IfNotPresent", "127.0.0.1:5001/kftest/app1", 1, "Always" },
		/* policy Always: always a Job, container Always */
		{ "Always", "127.0.0.1:5001/kftest/app1:1", 1, "Always" },
		/* unknown policy: a Job, container IfNotPresent (upstream) */
		{ "Never", "127.0.0.1:5001/kftest/app1:1", 1, "IfNotPresent" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(m); i++) {
		if (ic_pull_needed(m[i].policy, m[i].image, n1) != m[i].needed)
			fail_msg("pull_needed(%s, %s) != %d", m[i].policy, m[i].image, m[i].needed);
		if (strcmp(ic_job_pull_policy(m[i].policy, m[i].image), m[i].container_policy))
			fail_msg("container policy(%s, %s) = %s", m[i].policy, m[i].image,
				 ic_job_pull_policy(m[i].policy, m[i].image));
	}
	/* a node without status.images needs every pull */
	assert_true(ic_pull_needed("IfNotPresent", "127.0.0.1:5001/kftest/app1:1", node_named(nodes, "worker-3")));
	json_decref(nodes);
}

static void runtime_detection(void **state)
{
	(void)state;
	static const struct {
		const char *version, *annotation, *flag, *runtime, *socket;
	} c[] = {
		{ "containerd://1.6.20", NULL, "", "containerd", "/run/containerd/containerd.sock" },
		{ "containerd://1.6.20", "unix:///srv/n1/containerd.sock", "", "containerd", "/srv/n1/containerd.sock" },
		{ "containerd://1.6.20", "/srv/n1/containerd.sock", "/run/k3s/containerd/containerd.sock", "containerd",
		  "/run/k3s/containerd/containerd.sock" },
		{ "cri-o://1.24.1", NULL, "", "crio", "/var/run/crio/crio.sock" },
		{ "crio://1.24.1", NULL, "", "crio", "/var/run/crio/crio.sock" },
		{ "docker://20.10.24", NULL, "/custom.sock", "docker", "/custom.sock" },
		/* not detected: Docker's default socket, flag ignored (upstream) */
		{ "remote://1.0", NULL, "/custom.sock", "docker", "/var/run/docker.sock" },
		{ NULL, NULL, "", "docker", "/var/run/docker.sock" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		json_t *node = json_pack("{s:{s:{}}, s:{s:{}}}", "metadata", "annotations", "status", "nodeInfo");
		if (c[i].version)
			json_object_set_new(kf_jget(node, "status", "nodeInfo", NULL), "containerRuntimeVersion",
					    json_string(c[i].version));
		if (c[i].annotation)
			json_object_set_new(kf_jget(node, "metadata", "annotations", NULL),
					    IC_NODE_CRI_SOCKET_ANNOTATION, json_string(c[i].annotation));
		const char *rt;
		char *sock;
		ic_runtime_detect(node, c[i].flag, &rt, &sock);
		if (strcmp(rt, c[i].runtime) || strcmp(sock, c[i].socket))
			fail_msg("case %zu: got %s %s, want %s %s", i, rt, sock, c[i].runtime, c[i].socket);
		free(sock);
		json_decref(node);
	}
}

static struct ic_job_opts opts(void)
{
	struct ic_job_opts o = { .busybox_image = "127.0.0.1:5001/kubefledged/kubefledged:test",
				 .cri_client_image = "127.0.0.1:5001/kubefledged/kubefledged:test",
				 .image_pull_policy = "IfNotPresent",
				 .service_account = "",
				 .priority_class = "",
				 .active_deadline_s = 3600 };
	return o;
}

/* A task set of one task, for rendering. */
static struct ic_task *one_task(struct ic_taskset *ts, const char *node, const char *host, const char *image,
				enum ic_action a, const char *runtime, const char *socket)
{
	ic_tasks_init(ts);
	uint32_t n = ic_tasks_add_node(ts, node, host, runtime, socket);
	uint32_t i = ic_tasks_add_image(ts, image);
	ic_tasks_add(ts, n, i, a, IC_TASK_PENDING);
	ic_tasks_seal(ts);
	return &ts->v[0];
}

static void job_rendering_golden(void **state)
{
	(void)state;
	json_t *cache = load("cache.json");
	struct ic_spec spec;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(ic_spec_parse(cache, &spec, &err), 0);
	struct ic_job_opts o = opts();
	struct ic_taskset ts;

	struct ic_task *t = one_task(&ts, "rk8s-node1", "rk8s-node1", "127.0.0.1:5001/kftest/app2:1", IC_ACTION_PULL,
				     NULL, NULL);
	json_t *j = ic_job_render(&o, cache, &spec, &ts, t);
	assert_golden(j, "job-pull.json");
	json_decref(j);
	ic_tasks_release(&ts);

	/* the image reaches the delete helper as one argv element, never through a shell; the delete Job runs
	 * in the controller's namespace (no runtime socket in a tenant's), without the cache's pull secrets and
	 * without an ownerReference (it cannot cross namespaces): annotations name the cache */
	o.delete_namespace = "kf-system";
	t = one_task(&ts, "rk8s-node2", "rk8s-node2", "127.0.0.1:5001/kftest/app3:1", IC_ACTION_DELETE, "containerd",
		     "/srv/rk8s-node2/containerd.sock");
	j = ic_job_render(&o, cache, &spec, &ts, t);
	assert_golden(j, "job-delete-containerd.json");
	json_decref(j);
	ic_tasks_release(&ts);

	o.delete_job_host_network = 1;
	o.service_account = "kf-jobs";
	o.priority_class = "system-node-critical";
	o.image_pull_policy = "Always";
	o.delete_namespace = "";
	json_t *tol = json_loads("[{\"key\":\"dedicated\",\"operator\":\"Equal\",\"value\":\"cache\",\"effect\":\"NoSchedule\"}]",
				 0, NULL);
	json_t *res = json_loads("{\"requests\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"},\"limits\":{\"memory\":\"64Mi\"}}", 0,
				 NULL);
	o.tolerations = tol;
	o.resources = res;
	t = one_task(&ts, "worker-3", "w3.example.com", "busybox:1.36", IC_ACTION_DELETE, "docker", "/var/run/docker.sock");
	j = ic_job_render(&o, cache, &spec, &ts, t);
	assert_golden(j, "job-delete-docker-options.json");
	json_decref(j);
	ic_tasks_release(&ts);
	json_decref(tol);
	json_decref(res);
	ic_spec_free(&spec);
	json_decref(cache);
	sb_release(&err);
}

static void long_cache_names_give_valid_labels(void **state)
{
	(void)state;
	char buf[64];
	ic_cache_label_value("imagecache1", buf, sizeof buf);
	assert_string_equal(buf, "imagecache1");
	const char *longname = "a-very-long-image-cache-name-that-is-longer-than-sixty-three-characters.example";
	ic_cache_label_value(longname, buf, sizeof buf);
	assert_true(strlen(buf) <= 63);
	assert_true(!strncmp(buf, longname, 52));
	char buf2[64];
	ic_cache_label_value("a-very-long-image-cache-name-that-is-longer-than-sixty-three-characters.exampleX", buf2,
			     sizeof buf2);
	assert_string_not_equal(buf, buf2);
}

/* "node image action state" lines, in the set's order (sorted), for compact assertions */
static char *describe(const struct ic_taskset *ts)
{
	static const char *st[] = { "pending", "running", "succeeded", "present", "kept", "failed", "unknown", "cancelled" };
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < ts->n; i++) {
		const struct ic_task *t = &ts->v[i];
		sb_addf(&sb, "%s %s %s %s\n", ts->nodes[t->node].name, ts->images[t->image].image,
			t->action ? "delete" : "pull", st[t->state]);
	}
	return sb_detach(&sb);
}

static void spec_from(const char *json_text, struct ic_spec *spec)
{
	json_t *o = json_loads(json_text, 0, NULL);
	assert_non_null(o);
	struct strbuf err = STRBUF_INIT;
	if (ic_spec_parse(o, spec, &err))
		fail_msg("%s", err.buf);
	json_decref(o);
	sb_release(&err);
}

static void plan_is(enum ic_op_type op, const char *spec_json, const char *applied_json, const char *want)
{
	json_t *nodes = load("nodes.json");
	struct ic_spec spec, applied;
	spec_from(spec_json, &spec);
	if (applied_json)
		spec_from(applied_json, &applied);
	struct ic_plan_input in = { .op = op, .spec = &spec, .applied = applied_json ? &applied : NULL, .nodes = nodes,
				    .pull_policy = "IfNotPresent", .cri_socket = "" };
	struct ic_taskset ts;
	ic_tasks_init(&ts);
	ic_plan(&in, &ts);
	char *got = describe(&ts);
	if (strcmp(got, want))
		fail_msg("plan:\n%swant:\n%s", got, want);
	free(got);
	ic_tasks_release(&ts);
	ic_spec_free(&spec);
	if (applied_json)
		ic_spec_free(&applied);
	json_decref(nodes);
}

#define SEED                                                                                  \
	"{\"spec\":{\"cacheSpec\":[{\"images\":[\"127.0.0.1:5001/kftest/app1:1\",\"127.0.0.1:5001/kftest/app2:1\"]}," \
	"{\"images\":[\"127.0.0.1:5001/kftest/app3:1\"],\"nodeSelector\":{\"tier\":\"backend\"}}]}}"

static void plan_create_refresh_purge(void **state)
{
	(void)state;
	plan_is(IC_OP_CREATE, SEED,
		NULL,
		"rk8s-node1 127.0.0.1:5001/kftest/app1:1 pull present\n"
		"rk8s-node1 127.0.0.1:5001/kftest/app2:1 pull pending\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app1:1 pull pending\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app2:1 pull pending\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app3:1 pull present\n"
		"worker-3 127.0.0.1:5001/kftest/app1:1 pull pending\n"
		"worker-3 127.0.0.1:5001/kftest/app2:1 pull pending\n");
	plan_is(IC_OP_PURGE, SEED, NULL,
		"rk8s-node1 127.0.0.1:5001/kftest/app1:1 delete pending\n"
		"rk8s-node1 127.0.0.1:5001/kftest/app2:1 delete pending\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app1:1 delete pending\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app2:1 delete pending\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app3:1 delete pending\n"
		"worker-3 127.0.0.1:5001/kftest/app1:1 delete pending\n"
		"worker-3 127.0.0.1:5001/kftest/app2:1 delete pending\n");
	/* a selector that matches nothing plans nothing (-> NoImagesPulledOrDeleted); duplicates collapse */
	plan_is(IC_OP_REFRESH,
		"{\"spec\":{\"cacheSpec\":[{\"images\":[\"nginx:1.23\",\"docker.io/library/nginx:1.23\"],"
		"\"nodeSelector\":{\"tier\":\"nowhere\"}}]}}",
		NULL, "");
	plan_is(IC_OP_REFRESH,
		"{\"spec\":{\"cacheSpec\":[{\"images\":[\"nginx:1.23\"],\"nodeSelector\":{\"tier\":\"frontend\"}},"
		"{\"images\":[\"docker.io/library/nginx:1.23\"],\"nodeSelector\":{\"tier\":\"frontend\"}}]}}",
		NULL, "worker-3 nginx:1.23 pull pending\n");
}

static void plan_update_diffs_against_applied_spec(void **state)
{
	(void)state;
	/* app2 removed from list 1; app5 added to list 2; app3 moved from list 2 to list 1 (all nodes) */
	plan_is(IC_OP_UPDATE,
		"{\"spec\":{\"cacheSpec\":[{\"images\":[\"127.0.0.1:5001/kftest/app1:1\",\"127.0.0.1:5001/kftest/app3:1\"]},"
		"{\"images\":[\"127.0.0.1:5001/kftest/app5:1\"],\"nodeSelector\":{\"tier\":\"backend\"}}]}}",
		SEED,
		"rk8s-node1 127.0.0.1:5001/kftest/app1:1 pull present\n"
		"rk8s-node1 127.0.0.1:5001/kftest/app2:1 delete pending\n"
		"rk8s-node1 127.0.0.1:5001/kftest/app3:1 pull pending\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app1:1 pull pending\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app2:1 delete pending\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app3:1 pull present\n"
		"rk8s-node2 127.0.0.1:5001/kftest/app5:1 pull pending\n"
		"worker-3 127.0.0.1:5001/kftest/app1:1 pull pending\n"
		"worker-3 127.0.0.1:5001/kftest/app2:1 delete pending\n"
		"worker-3 127.0.0.1:5001/kftest/app3:1 pull pending\n");
	/* floating images are re-pulled by an update only where they are new */
	plan_is(IC_OP_UPDATE,
		"{\"spec\":{\"cacheSpec\":[{\"images\":[\"busybox\",\"alpine:latest\"],\"nodeSelector\":{\"tier\":\"backend\"}}]}}",
		"{\"spec\":{\"cacheSpec\":[{\"images\":[\"busybox:latest\"],\"nodeSelector\":{\"tier\":\"backend\"}}]}}",
		"rk8s-node2 alpine:latest pull pending\n");
	/* a reference that does not parse fails on each node it is listed for, the valid ones are cached; a
	 * purge never deletes it (issue 10, item 6) */
	plan_is(IC_OP_CREATE,
		"{\"spec\":{\"cacheSpec\":[{\"images\":[\"Bad;Image\",\"127.0.0.1:5001/kftest/app5:1\"],"
		"\"nodeSelector\":{\"tier\":\"backend\"}}]}}",
		NULL,
		"rk8s-node2 127.0.0.1:5001/kftest/app5:1 pull pending\n"
		"rk8s-node2 Bad;Image pull failed\n");
	plan_is(IC_OP_PURGE,
		"{\"spec\":{\"cacheSpec\":[{\"images\":[\"Bad;Image\",\"127.0.0.1:5001/kftest/app5:1\"],"
		"\"nodeSelector\":{\"tier\":\"backend\"}}]}}",
		"{\"spec\":{\"cacheSpec\":[{\"images\":[\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"]}]}}",
		"rk8s-node2 127.0.0.1:5001/kftest/app5:1 delete pending\n");
	/* without an applied spec (an object last written by upstream) an update deletes nothing */
	plan_is(IC_OP_UPDATE,
		"{\"spec\":{\"cacheSpec\":[{\"images\":[\"127.0.0.1:5001/kftest/app3:1\"],\"nodeSelector\":{\"tier\":\"backend\"}}]}}",
		NULL, "rk8s-node2 127.0.0.1:5001/kftest/app3:1 pull present\n");
}

static void plan_only_new_nodes(void **state)
{
	(void)state;
	json_t *nodes = load("nodes.json");
	struct ic_spec spec;
	spec_from(SEED, &spec);
	const char *only[] = { "rk8s-node2" };
	struct ic_plan_input in = { .op = IC_OP_REFRESH, .spec = &spec, .nodes = nodes, .only_nodes = only, .n_only = 1,
				    .pull_policy = "IfNotPresent", .cri_socket = "" };
	struct ic_taskset ts;
	ic_tasks_init(&ts);
	ic_plan(&in, &ts);
	char *got = describe(&ts);
	assert_string_equal(got, "rk8s-node2 127.0.0.1:5001/kftest/app1:1 pull pending\n"
				 "rk8s-node2 127.0.0.1:5001/kftest/app2:1 pull pending\n"
				 "rk8s-node2 127.0.0.1:5001/kftest/app3:1 pull present\n");
	free(got);
	ic_tasks_release(&ts);
	/* delete tasks' nodes carry the runtime and the node's socket */
	in.op = IC_OP_PURGE;
	only[0] = "rk8s-node1";
	ic_plan(&in, &ts);
	assert_int_equal(ts.n, 2);
	assert_string_equal(ts.nodes[ts.v[0].node].runtime, "containerd");
	assert_string_equal(ts.nodes[ts.v[0].node].socket, "/srv/rk8s-node1/containerd.sock");
	ic_tasks_release(&ts);
	ic_spec_free(&spec);
	json_decref(nodes);
}

/* what the controller did itself in the last seconds beats the node's lagging status.images */
static int fake_recent(void *ud, const char *node, const char *image)
{
	(void)ud;
	if (!strcmp(node, "rk8s-node1") && !strcmp(image, "127.0.0.1:5001/kftest/app1:1"))
		return 0; /* just purged, though the node still lists it */
	if (!strcmp(node, "rk8s-node1") && !strcmp(image, "127.0.0.1:5001/kftest/app2:1"))
		return 1; /* just pulled, not listed yet */
	return -1;
}

static void plan_expect(struct ic_plan_input *in, const char *want)
{
	struct ic_taskset ts;
	ic_tasks_init(&ts);
	ic_plan(in, &ts);
	char *got = describe(&ts);
	if (strcmp(got, want))
		fail_msg("plan:\n%swant:\n%s", got, want);
	free(got);
	ic_tasks_release(&ts);
}

static int any_label_wants(void *ud, const char *node, const char *canonical)
{
	(void)node;
	return ic_cacheset_owners(ud, NULL, canonical, "self") > 0;
}

static void plan_trusts_own_recent_actions(void **state)
{
	(void)state;
	json_t *nodes = load("nodes.json");
	struct ic_spec spec;
	spec_from(SEED, &spec);
	const char *only[] = { "rk8s-node1" };
	struct ic_plan_input in = { .op = IC_OP_REFRESH, .spec = &spec, .nodes = nodes, .only_nodes = only, .n_only = 1,
				    .pull_policy = "IfNotPresent", .cri_socket = "", .recent = fake_recent };
	plan_expect(&in, "rk8s-node1 127.0.0.1:5001/kftest/app1:1 pull pending\n"
			 "rk8s-node1 127.0.0.1:5001/kftest/app2:1 pull present\n");
	/* asked for by the refresh annotation: our own recent pull proves nothing, a recent delete still counts */
	in.explicit_request = 1;
	plan_expect(&in, "rk8s-node1 127.0.0.1:5001/kftest/app1:1 pull pending\n"
			 "rk8s-node1 127.0.0.1:5001/kftest/app2:1 pull pending\n");
	in.explicit_request = 0;
	/* policy Always ignores it */
	in.pull_policy = "Always";
	plan_expect(&in, "rk8s-node1 127.0.0.1:5001/kftest/app1:1 pull pending\n"
			 "rk8s-node1 127.0.0.1:5001/kftest/app2:1 pull pending\n");
	/* agent mode: presence is the agent's business */
	in.pull_policy = "IfNotPresent";
	in.agent_mode = 1;
	in.recent = NULL;
	plan_expect(&in, "rk8s-node1 127.0.0.1:5001/kftest/app1:1 pull pending\n"
			 "rk8s-node1 127.0.0.1:5001/kftest/app2:1 pull pending\n");
	ic_spec_free(&spec);
	json_decref(nodes);
}

struct tspec {
	const char *node, *image;
	enum ic_action a;
	enum ic_task_state s;
	const char *reason, *msg;
};
#define T(...) ((struct tspec){ __VA_ARGS__ })

static void build(struct ic_taskset *ts, const struct tspec *t, size_t n)
{
	ic_tasks_init(ts);
	for (size_t i = 0; i < n; i++) {
		uint32_t ni = ic_tasks_add_node(ts, t[i].node, NULL, NULL, NULL);
		uint32_t ii = ic_tasks_add_image(ts, t[i].image);
		struct ic_task *x = ic_tasks_add(ts, ni, ii, t[i].a, t[i].s);
		if (t[i].reason || t[i].msg)
			ic_task_set_result(x, t[i].s, t[i].reason, t[i].msg);
	}
	ic_tasks_seal(ts);
}

static void status_is(enum ic_op_type op, const struct tspec *t, size_t n, json_t *merge_from, const char *want_json)
{
	struct ic_taskset ts;
	build(&ts, t, n);
	json_t *got = ic_status_final(op, &ts, merge_from, 1795314327, 1795314331);
	json_t *want = json_loads(want_json, 0, NULL);
	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS);
		fail_msg("status %s", g);
	}
	json_decref(got);
	json_decref(want);
	ic_tasks_release(&ts);
}

#define TIMES "\"startTime\":\"2026-11-22T02:25:27Z\",\"completionTime\":\"2026-11-22T02:25:31Z\""

static void status_aggregation(void **state)
{
	(void)state;
	char want[4096];

	struct tspec ok[] = { T("n1", "a:1", IC_ACTION_PULL, IC_TASK_SUCCEEDED), T("n2", "a:1", IC_ACTION_PULL, IC_TASK_PRESENT) };
	snprintf(want, sizeof want, "{\"status\":\"Succeeded\",\"reason\":\"ImageCacheCreate\",\"message\":"
		 "\"All requested images pulled succesfully to respective nodes\"," TIMES "}");
	status_is(IC_OP_CREATE, ok, 2, NULL, want);

	/* kept (another cache wants it) counts as done; a cancelled task (node deleted) counts for nothing */
	struct tspec purged[] = { T("n1", "a:1", IC_ACTION_DELETE, IC_TASK_SUCCEEDED),
				  T("n2", "a:1", IC_ACTION_DELETE, IC_TASK_KEPT, "ImageWantedByOtherImageCache", "kept"),
				  T("n3", "a:1", IC_ACTION_DELETE, IC_TASK_CANCELLED, "NodeDeleted", "gone") };
	snprintf(want, sizeof want, "{\"status\":\"Succeeded\",\"reason\":\"ImageCachePurge\",\"message\":"
		 "\"All cached images succesfully deleted from respective nodes\"," TIMES "}");
	status_is(IC_OP_PURGE, purged, 3, NULL, want);

	snprintf(want, sizeof want, "{\"status\":\"NoImagesPulledOrDeleted\",\"reason\":\"ImageCacheRefresh\","
		 "\"message\":\"No images were pulled or deleted because nodeSelector specified did not match any "
		 "nodes\"," TIMES "}");
	status_is(IC_OP_REFRESH, NULL, 0, NULL, want);
	struct tspec gone[] = { T("n3", "a:1", IC_ACTION_PULL, IC_TASK_CANCELLED, "NodeDeleted", "gone") };
	status_is(IC_OP_REFRESH, gone, 1, NULL, want);

	/* failures: keyed by image, sorted by node; a pull failure wins the message over a delete failure;
	 * a task cut short (still running) is reported as unknown */
	struct tspec mixed[] = {
		T("n2", "b:1", IC_ACTION_DELETE, IC_TASK_FAILED, "Error", "rpc error: code = Unknown"),
		T("n2", "missing:1", IC_ACTION_PULL, IC_TASK_FAILED, "ErrImagePull", "not found"),
		T("n1", "missing:1", IC_ACTION_PULL, IC_TASK_FAILED, "ImagePullBackOff", "Back-off"),
		T("n1", "a:1", IC_ACTION_PULL, IC_TASK_SUCCEEDED),
		T("n3", "c:1", IC_ACTION_PULL, IC_TASK_RUNNING),
	};
	snprintf(want, sizeof want,
		 "{\"status\":\"Failed\",\"reason\":\"ImageCacheUpdate\",\"message\":\"Image pull failed for some "
		 "images. Please see \\\"failures\\\" section\",\"failures\":{"
		 "\"b:1\":[{\"node\":\"n2\",\"reason\":\"Error\",\"message\":\"rpc error: code = Unknown\"}],"
		 "\"c:1\":[{\"node\":\"n3\",\"reason\":\"ImagePullStatusUnknown\",\"message\":\"Unable to get the "
		 "status of Image pull. Retry after some time or contact cluster administrator\"}],"
		 "\"missing:1\":[{\"node\":\"n1\",\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off\"},"
		 "{\"node\":\"n2\",\"reason\":\"ErrImagePull\",\"message\":\"not found\"}]}," TIMES "}");
	status_is(IC_OP_UPDATE, mixed, 5, NULL, want);

	struct tspec delfail[] = { T("n1", "b:1", IC_ACTION_DELETE, IC_TASK_FAILED, "Error", "boom"),
				   T("n1", "a:1", IC_ACTION_PULL, IC_TASK_SUCCEEDED) };
	snprintf(want, sizeof want,
		 "{\"status\":\"Failed\",\"reason\":\"ImageCacheUpdate\",\"message\":\"Image deletion failed for "
		 "some images. Please see \\\"failures\\\" section\",\"failures\":{\"b:1\":[{\"node\":\"n1\","
		 "\"reason\":\"Error\",\"message\":\"boom\"}]}," TIMES "}");
	status_is(IC_OP_UPDATE, delfail, 2, NULL, want);
}

/* A refresh of nodes that just joined keeps the failures of the nodes it did not cover (issue 10, item 8). */
static void node_join_merges_failures(void **state)
{
	(void)state;
	json_t *before = json_loads("{\"status\":\"Failed\",\"message\":\"Image pull failed for some images. Please see "
				    "\\\"failures\\\" section\",\"failures\":{\"x:1\":[{\"node\":\"n1\",\"reason\":"
				    "\"ErrImagePull\",\"message\":\"not found\"},{\"node\":\"n3\",\"reason\":\"ErrImagePull\","
				    "\"message\":\"old\"}]}}", 0, NULL);
	/* n3 joined again (relabelled) and now succeeds: its old failure goes, n1's stays */
	struct tspec t[] = { T("n3", "x:1", IC_ACTION_PULL, IC_TASK_SUCCEEDED) };
	char want[2048];
	snprintf(want, sizeof want,
		 "{\"status\":\"Failed\",\"reason\":\"ImageCacheRefresh\",\"message\":\"Image pull failed for some "
		 "images. Please see \\\"failures\\\" section\",\"failures\":{\"x:1\":[{\"node\":\"n1\",\"reason\":"
		 "\"ErrImagePull\",\"message\":\"not found\"}]}," TIMES "}");
	status_is(IC_OP_REFRESH, t, 1, before, want);
	json_decref(before);
}

/* Sealing sorts by (node name, canonical image, action) whatever the order tasks came in, and of tasks equal
 * in key keeps the image written first in the spec, then the task added first. */
static void sealing_sorts_and_keeps_the_first_of_equal_tasks(void **state)
{
	(void)state;
	struct ic_taskset ts;
	ic_tasks_init(&ts);
	/* "b:1" and "docker.io/library/b:1" are one image: the spelling added first (index 0) wins */
	uint32_t im[3] = { ic_tasks_add_image(&ts, "b:1"), ic_tasks_add_image(&ts, "a:1"),
			   ic_tasks_add_image(&ts, "docker.io/library/b:1") };
	enum { NODES = 997, ADDS = 9000 };
	/* the expected survivor of each (node, one of the two images, action): its image and order of adding */
	static struct { uint32_t image; int64_t seq; } want[NODES][2][2];
	memset(want, 0, sizeof want);
	char name[32];
	unsigned seed = 12345;
	for (int64_t seq = 1; seq <= ADDS; seq++) {
		seed = seed * 1103515245u + 12345u;
		snprintf(name, sizeof name, "node-%u", (seed >> 8) % NODES);
		uint32_t n = ic_tasks_add_node(&ts, name, NULL, NULL, NULL), image = im[(seed >> 20) % 3];
		int action = (seed >> 24) & 1, same = image == im[1];
		struct ic_task *t = ic_tasks_add(&ts, n, image, (enum ic_action)action, 0);
		t->pull_gen = seq; /* marks the order of adding */
		if (!want[n][same][action].seq || image < want[n][same][action].image)
			want[n][same][action].image = image, want[n][same][action].seq = seq;
	}
	ic_tasks_seal(&ts);
	size_t expected = 0;
	for (int n = 0; n < NODES; n++)
		for (int i = 0; i < 4; i++)
			expected += want[n][i / 2][i % 2].seq != 0;
	assert_int_equal(ts.n, expected);
	for (size_t i = 0; i < ts.n; i++) {
		const struct ic_task *t = &ts.v[i];
		if (i) {
			const struct ic_task *p = &ts.v[i - 1];
			int c = strcmp(ts.nodes[p->node].name, ts.nodes[t->node].name);
			if (!c)
				c = strcmp(ts.images[p->image].canonical, ts.images[t->image].canonical);
			if (!c)
				c = (int)p->action - (int)t->action;
			assert_true(c < 0); /* sorted, no two equal */
		}
		int same = t->image == im[1];
		assert_int_equal(t->image, want[t->node][same][t->action].image);
		assert_int_equal(t->pull_gen, want[t->node][same][t->action].seq);
	}
	ic_tasks_release(&ts);
}

/* At any scale the status stays small (issue 9): 1,000 nodes x 60 failing images with long messages. */
static void failures_are_bounded(void **state)
{
	(void)state;
	struct ic_taskset ts;
	ic_tasks_init(&ts);
	char name[64], img[64];
	char *longmsg = xmalloc(5000);
	memset(longmsg, 'm', 4999);
	longmsg[4999] = '\0';
	for (int n = 0; n < 1000; n++) {
		snprintf(name, sizeof name, "node-%04d", n);
		uint32_t ni = ic_tasks_add_node(&ts, name, NULL, NULL, NULL);
		for (int i = 0; i < 60; i++) {
			snprintf(img, sizeof img, "registry.example.com/app-%03d:1", i);
			struct ic_task *t = ic_tasks_add(&ts, ni, ic_tasks_add_image(&ts, img), IC_ACTION_PULL, 0);
			ic_task_set_result(t, IC_TASK_FAILED, "ErrImagePull", longmsg);
		}
	}
	ic_tasks_seal(&ts);
	json_t *st = ic_status_final(IC_OP_CREATE, &ts, NULL, 1795314327, 1795314331);
	char *text = json_dumps(st, JSON_COMPACT);
	assert_true(strlen(text) < 256 * 1024);
	json_t *f = json_object_get(st, "failures");
	json_t *first = json_object_get(f, "registry.example.com/app-000:1");
	assert_int_equal(json_array_size(first), IC_FAILURES_PER_IMAGE + 1);
	assert_string_equal(kf_jstr(json_array_get(first, IC_FAILURES_PER_IMAGE), "node", NULL), "+990 more nodes");
	assert_true(strlen(kf_jstr(json_array_get(first, 0), "message", NULL)) <= IC_FAILURE_MESSAGE_MAX);
	assert_string_equal(kf_jstr(st, "status", NULL), "Failed");
	/* the cut detail goes to Events, one per image */
	json_t *cut = ic_status_cut_failures(&ts);
	assert_int_equal(json_array_size(cut), 60);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(cut, 0), "count")), 1000);
	json_decref(cut);
	free(text);
	free(longmsg);
	json_decref(st);
	ic_tasks_release(&ts);
}

/* appliedSpec is what the nodes hold: an image whose delete failed stays in it, with its old selector
 * (issue 10, item 9). */
static void applied_outcome_keeps_failed_deletes(void **state)
{
	(void)state;
	json_t *spec = json_loads("[{\"images\":[\"a:1\"]}]", 0, NULL);
	json_t *before = json_loads("[{\"images\":[\"a:1\"]},{\"images\":[\"b:1\",\"c:1\"],\"nodeSelector\":{\"t\":\"x\"}}]",
				    0, NULL);
	struct tspec t[] = { T("n1", "b:1", IC_ACTION_DELETE, IC_TASK_FAILED, "Forbidden", "denied"),
			     T("n1", "c:1", IC_ACTION_DELETE, IC_TASK_SUCCEEDED),
			     T("n1", "a:1", IC_ACTION_PULL, IC_TASK_PRESENT) };
	struct ic_taskset ts;
	build(&ts, t, 3);
	json_t *got = ic_applied_outcome(IC_OP_UPDATE, spec, before, &ts);
	json_t *want = json_loads("{\"cacheSpec\":[{\"images\":[\"a:1\"]},{\"images\":[\"b:1\"],\"nodeSelector\":{\"t\":\"x\"}}]}",
				  0, NULL);
	assert_true(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	/* a purge leaves only what it could not delete */
	got = ic_applied_outcome(IC_OP_PURGE, spec, before, &ts);
	want = json_loads("{\"cacheSpec\":[{\"images\":[\"b:1\"],\"nodeSelector\":{\"t\":\"x\"}}]}", 0, NULL);
	assert_true(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	ic_tasks_release(&ts);
	json_decref(spec);
	json_decref(before);
}

static void conditions_and_applied_spec(void **state)
{
	(void)state;
	json_t *applied = json_pack("{s:[{s:[s]}]}", "cacheSpec", "images", "a:1");
	json_t *processing = ic_status_processing(IC_OP_CREATE, 1795314327);
	ic_status_decorate(processing, NULL, 1, NULL, 1795314327);
	assert_null(json_object_get(processing, "appliedSpec"));
	assert_int_equal(ic_status_observed_generation(processing), 1);

	struct tspec t[] = { T("n1", "a:1", IC_ACTION_PULL, IC_TASK_SUCCEEDED) };
	struct ic_taskset ts;
	build(&ts, t, 1);
	json_t *final = ic_status_final(IC_OP_CREATE, &ts, NULL, 1795314327, 1795314400);
	ic_status_decorate(final, processing, 1, applied, 1795314400);
	char *s = json_dumps(json_object_get(final, "conditions"), JSON_SORT_KEYS);
	assert_string_equal(s, "[{\"lastTransitionTime\": \"2026-11-22T02:26:40Z\", \"message\": \"All requested "
			       "images pulled succesfully to respective nodes\", \"observedGeneration\": 1, "
			       "\"reason\": \"Succeeded\", \"status\": \"True\", \"type\": \"Ready\"}, "
			       "{\"lastTransitionTime\": \"2026-11-22T02:26:40Z\", \"message\": \"All requested images "
			       "pulled succesfully to respective nodes\", \"observedGeneration\": 1, \"reason\": "
			       "\"ImageCacheCreate\", \"status\": \"False\", \"type\": \"Progressing\"}]");
	free(s);
	assert_true(json_equal(json_object_get(final, "appliedSpec"), applied));

	/* the next Processing write carries appliedSpec over; Ready keeps its transition time while it stays
	 * Unknown -> no: Ready goes True -> Unknown, so it transitions */
	json_t *next = ic_status_processing(IC_OP_REFRESH, 1795315000);
	ic_status_decorate(next, final, 1, NULL, 1795315000);
	assert_true(json_equal(json_object_get(next, "appliedSpec"), applied));
	/* an object written by upstream has no conditions: generation unknown */
	json_t *upstream = json_pack("{s:s, s:s}", "status", "Succeeded", "reason", "ImageCacheCreate");
	assert_int_equal(ic_status_observed_generation(upstream), -1);
	json_decref(upstream);
	json_decref(next);
	json_decref(final);
	json_decref(processing);
	json_decref(applied);
	ic_tasks_release(&ts);
	assert_int_equal(ic_op_from_reason("ImageCachePurge"), IC_OP_PURGE);
	assert_int_equal(ic_op_from_reason("ImagePullAborted"), IC_OP_NONE);
}

/* Another ImageCache that still lists an image for a node keeps it there (issue 10, item 12). */
static void want_index_counts_other_caches(void **state)
{
	(void)state;
	json_t *caches = json_loads(
		"[{\"metadata\":{\"uid\":\"self\"},\"spec\":{\"cacheSpec\":[{\"images\":[\"a:1\"]}]}},"
		" {\"metadata\":{\"uid\":\"u2\"},\"spec\":{\"cacheSpec\":[{\"images\":[\"docker.io/library/a:1\"],"
		"  \"nodeSelector\":{\"tier\":\"backend\"}},{\"images\":[\"b:1\", \"a:1\"]}]}},"
		" {\"metadata\":{\"uid\":\"u3\"},\"spec\":{\"cacheSpec\":[{\"images\":[\"c:1\"]}]},"
		"  \"status\":{\"reason\":\"ImageCachePurge\"}},"
		" {\"metadata\":{\"uid\":\"u4\",\"annotations\":{\"kubefledged.io/purge-imagecache\":\"\"}},"
		"  \"spec\":{\"cacheSpec\":[{\"images\":[\"d:1\"]}]}},"
		" {\"metadata\":{\"uid\":\"u5\"},\"spec\":{\"cacheSpec\":[{\"images\":[\"a:1\"],"
		"  \"nodeSelector\":{\"tier\":\"backend\"}}]}}]", 0, NULL);
	assert_non_null(caches);
	json_t *backend = json_pack("{s:s}", "tier", "backend"), *other = json_pack("{s:s}", "tier", "front");
	struct ic_cacheset *w = ic_cacheset_new(caches);
	/* u2 wants a:1 everywhere (twice, counted once); u5 only on backend nodes; self is left out */
	assert_int_equal(ic_cacheset_owners(w, backend, "docker.io/library/a:1", "self"), 2);
	assert_int_equal(ic_cacheset_owners(w, other, "docker.io/library/a:1", "self"), 1);
	assert_int_equal(ic_cacheset_owners(w, other, "docker.io/library/a:1", NULL), 2);
	assert_true(ic_cacheset_owners(w, NULL, "docker.io/library/b:1", "self"));
	/* purged and being purged caches want nothing */
	assert_false(ic_cacheset_owners(w, backend, "docker.io/library/c:1", NULL));
	assert_false(ic_cacheset_owners(w, backend, "docker.io/library/d:1", NULL));
	ic_cacheset_free(w);
	/* the guard makes a delete a KEPT task */
	json_t *nodes = load("nodes.json");
	struct ic_spec spec;
	spec_from("{\"spec\":{\"cacheSpec\":[{\"images\":[\"b:1\",\"zz:1\"]}]}}", &spec);
	w = ic_cacheset_new(caches);
	const char *only[] = { "rk8s-node1" };
	struct ic_plan_input in = { .op = IC_OP_PURGE, .spec = &spec, .nodes = nodes, .only_nodes = only, .n_only = 1,
				    .pull_policy = "IfNotPresent", .cri_socket = "", .wanted_elsewhere = any_label_wants,
				    .wanted_ud = w };
	plan_expect(&in, "rk8s-node1 b:1 delete kept\n"
			 "rk8s-node1 zz:1 delete pending\n");
	ic_cacheset_free(w);
	ic_spec_free(&spec);
	json_decref(nodes);
	json_decref(backend);
	json_decref(other);
	json_decref(caches);
}

static void spec_shape_errors_name_the_field(void **state)
{
	(void)state;
	static const struct { const char *json, *err; } c[] = {
		{ "{}", "spec: required field is missing" },
		{ "{\"spec\":{}}", "spec.cacheSpec: required field is missing" },
		{ "{\"spec\":{\"cacheSpec\":{}}}", "spec.cacheSpec: must be an array, got object {}" },
		{ "{\"spec\":{\"cacheSpec\":[{\"images\":[\"a\",3]}]}}",
		  "spec.cacheSpec[0].images[1]: must be a string, got number 3" },
		{ "{\"spec\":{\"cacheSpec\":[{\"images\":[],\"nodeSelector\":{\"tier\":1}}]}}",
		  "spec.cacheSpec[0].nodeSelector[\"tier\"]: must be a string, got number 1" },
		{ "{\"spec\":{\"cacheSpec\":[],\"imagePullSecrets\":[\"s\"]}}",
		  "spec.imagePullSecrets[0]: must be an object {name: string}, got string \"s\"" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		json_t *o = json_loads(c[i].json, 0, NULL);
		struct ic_spec spec;
		struct strbuf err = STRBUF_INIT;
		assert_int_equal(ic_spec_parse(o, &spec, &err), -1);
		assert_string_equal(err.buf, c[i].err);
		sb_release(&err);
		json_decref(o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pull_decision_matrix),
		cmocka_unit_test(runtime_detection),
		cmocka_unit_test(job_rendering_golden),
		cmocka_unit_test(long_cache_names_give_valid_labels),
		cmocka_unit_test(plan_create_refresh_purge),
		cmocka_unit_test(plan_update_diffs_against_applied_spec),
		cmocka_unit_test(plan_only_new_nodes),
		cmocka_unit_test(plan_trusts_own_recent_actions),
		cmocka_unit_test(status_aggregation),
		cmocka_unit_test(node_join_merges_failures),
		cmocka_unit_test(sealing_sorts_and_keeps_the_first_of_equal_tasks),
		cmocka_unit_test(failures_are_bounded),
		cmocka_unit_test(applied_outcome_keeps_failed_deletes),
		cmocka_unit_test(conditions_and_applied_spec),
		cmocka_unit_test(want_index_counts_other_caches),
		cmocka_unit_test(spec_shape_errors_name_the_field),
	};
	return cmocka_run_group_tests_name("ic_core", tests, NULL, NULL);
}
