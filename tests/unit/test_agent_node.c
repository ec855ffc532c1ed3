/* test_agent_node.c - the agent's decisions against the simulated runtime (agent_simrt.h), with the
 * Kubernetes side replaced by an in-memory NodeImageCache (the agent_api seam; no API server):
 *   - the delete guard: exactly the reference asked for, never by image id; kept when a Pull entry wants
 *     the same image (however it is spelled), when a container uses it, when the runtime pins it;
 *   - self-healing: an image removed behind the agent's back is pulled again at the next poll;
 *   - status coalescing: a run of 40 pulls makes a bounded number of writes, a settled node none, a warm
 *     refresh no pull and no write;
 *   - restart safety: a new agent resumes from the status (no pull of what is present, no retry of what
 *     failed for good), pullGeneration asks for a fresh pull;
 *   - transient errors retried with backoff until the deadline, permanent ones failed at once;
 *   - the disk threshold refuses a pull, and lets it go once there is room;
 *   - credentials of the pull Secrets tried in order, the first refused one skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "util/intern.h"
#include "agent/agent_node.h"
#include "agent/agent_simrt.h"
#include "cri/cri.h"
#include "util/util.h"

#define REG "10.240.4.1:5000"

/* ---- an in-memory NodeImageCache ---- */

struct mem {
	pthread_mutex_t mu;
	json_t *nic;     /* metadata + spec */
	json_t *status;  /* the last status written */
	int writes;
	int64_t write_ms[64]; /* when the first 64 writes were made */
	int fresh_gets;
	const char *secret; /* docker config text of every Secret, or NULL (not found) */
	int secret_reads;
};

static json_t *mem_get(void *ud, const char *node, int fresh, int *ok)
{
	(void)node;
	struct mem *m = ud;
	*ok = 1;
	pthread_mutex_lock(&m->mu);
	json_t *o = m->nic ? json_deep_copy(m->nic) : NULL;
	m->fresh_gets += fresh;
	if (o && fresh && m->status)
		json_object_set(o, "status", m->status);
	pthread_mutex_unlock(&m->mu);
	return o;
}

static int mem_patch(void *ud, const char *node, json_t *status, struct strbuf *err)
{
	(void)node;
	(void)err;
	struct mem *m = ud;
	pthread_mutex_lock(&m->mu);
	json_decref(m->status);
	m->status = json_deep_copy(status);
	if (m->writes < 64)
		m->write_ms[m->writes] = kf_now_ms();
	m->writes++;
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int mem_secret(void *ud, const char *ns, const char *name, char **text, size_t *len, int *legacy,
		      struct strbuf *err)
{
	struct mem *m = ud;
	pthread_mutex_lock(&m->mu);
	m->secret_reads++;
	const char *s = m->secret;
	pthread_mutex_unlock(&m->mu);
	*legacy = 0;
	if (!s) {
		sb_addf(err, "secrets \"%s\" not found in %s", name, ns);
		return -1;
	}
	*text = xstrdup(s);
	*len = strlen(s);
	return 0;
}

/* images: "ref" (Pull) or "-ref" (Delete); gen applies to every Pull entry. */
static void mem_set_spec(struct mem *m, const char *const *images, int64_t gen, int64_t generation,
			 const char *secret_ns)
{
	json_t *arr = json_array();
	for (size_t i = 0; images[i]; i++) {
		int del = images[i][0] == '-';
		json_t *e = json_pack("{s:s, s:s, s:I, s:[{s:s, s:s}]}", "image", images[i] + del, "action",
				      del ? "Delete" : "Pull", "pullGeneration", (json_int_t)gen, "owners", "namespace",
				      "ns", "name", "cache");
		if (secret_ns)
			json_object_set_new(e, "pullSecrets",
					    json_pack("[{s:s, s:s}, {s:s, s:s}]", "namespace", secret_ns, "name", "first",
						      "namespace", secret_ns, "name", "second"));
		json_array_append_new(arr, e);
	}
	pthread_mutex_lock(&m->mu);
	json_decref(m->nic);
	m->nic = json_pack("{s:{s:s, s:I}, s:{s:s, s:o}}", "metadata", "name", "n1", "generation", (json_int_t)generation,
			   "spec", "nodeName", "n1", "images", arr);
	pthread_mutex_unlock(&m->mu);
}

static void mem_init(struct mem *m)
{
	memset(m, 0, sizeof *m);
	pthread_mutex_init(&m->mu, NULL);
}

static void mem_clear(struct mem *m)
{
	json_decref(m->nic);
	json_decref(m->status);
	pthread_mutex_destroy(&m->mu);
}

static int locked_int(struct mem *m, const int *field)
{
	pthread_mutex_lock(&m->mu);
	int v = *field;
	pthread_mutex_unlock(&m->mu);
	return v;
}

static int writes(struct mem *m) { return locked_int(m, &m->writes); }
static int fresh_gets(struct mem *m) { return locked_int(m, &m->fresh_gets); }

/* The status entry of image (borrowed from m->status; call locked or when the agent is idle). */
static json_t *entry(struct mem *m, const char *image)
{
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(m->status, "images"), i, o)
		if (!strcmp(json_string_value(json_object_get(o, "image")), image))
			return o;
	return NULL;
}

static const char *entry_str(struct mem *m, const char *image, const char *field)
{
	json_t *e = entry(m, image);
	return e ? json_string_value(json_object_get(e, field)) : NULL;
}

static int entry_state_is(struct mem *m, const char *image, const char *state)
{
	pthread_mutex_lock(&m->mu);
	const char *s = entry_str(m, image, "state");
	int ok = s && !strcmp(s, state);
	pthread_mutex_unlock(&m->mu);
	return ok;
}

/* ---- a recording runtime around the simulated one ---- */

struct rec {
	struct agent_runtime *inner;
	pthread_mutex_t mu;
	char removed[16][200];
	int n_removed;
	char users[16][64]; /* usernames of pull attempts */
	int n_users;
	int auth_check;     /* pulls fail with containerd's 401 unless the user is "good" */
};

static int rec_list(void *ctx, struct cri_image_list *out, struct strbuf *err)
{
	struct rec *r = ctx;
	return r->inner->ops->list(r->inner->ctx, out, err);
}

static int rec_status(void *ctx, const char *ref, struct cri_image *out, int *present, struct strbuf *err)
{
	struct rec *r = ctx;
	return r->inner->ops->status(r->inner->ctx, ref, out, present, err);
}

static int rec_pull(void *ctx, const char *ref, const struct cri_auth *auth, int64_t t, char **id, struct strbuf *err)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	if (r->n_users < 16)
		snprintf(r->users[r->n_users++], 64, "%s", auth && auth->username ? auth->username : "-");
	int check = r->auth_check;
	pthread_mutex_unlock(&r->mu);
	if (check && !(auth && auth->username && !strcmp(auth->username, "good"))) {
		sb_addf(err, "rpc error: code = Unknown desc = failed to pull and unpack image \"%s\": failed to resolve "
			     "reference \"%s\": pulling from host " REG " failed with status code [manifests 1]: 401 "
			     "Unauthorized", ref, ref);
		return CRI_UNKNOWN;
	}
	return r->inner->ops->pull(r->inner->ctx, ref, auth, t, id, err);
}

static int rec_remove(void *ctx, const char *ref, struct strbuf *msg, struct strbuf *err)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	if (r->n_removed < 16)
		snprintf(r->removed[r->n_removed++], 200, "%s", ref);
	pthread_mutex_unlock(&r->mu);
	return r->inner->ops->remove(r->inner->ctx, ref, msg, err);
}

static int rec_fs(void *ctx, struct agent_fs_info *out, struct strbuf *err)
{
	struct rec *r = ctx;
	return r->inner->ops->fs_info(r->inner->ctx, out, err);
}

static int rec_containers(void *ctx, struct cri_container_list *out, struct strbuf *err)
{
	struct rec *r = ctx;
	return r->inner->ops->list_containers(r->inner->ctx, out, err);
}

static void rec_free(void *ctx)
{
	struct rec *r = ctx;
	(void)r; /* the test frees the inner runtime */
}

static const struct agent_runtime_ops rec_ops = { rec_list, rec_status, rec_pull, rec_remove, rec_fs, rec_containers,
						  NULL, rec_free };

static struct agent_runtime *rec_new(struct rec *r, struct agent_runtime *inner)
{
	memset(r, 0, sizeof *r);
	r->inner = inner;
	pthread_mutex_init(&r->mu, NULL);
	return agent_runtime_new(&rec_ops, r, "recording", "1", "simulated", "", AGENT_PIN_UNSUPPORTED);
}

/* ---- an agent over the in-memory object ---- */

struct fixture {
	struct mem m;
	struct metrics *reg;
	struct agent *a;
	struct agent_runtime *sim; /* borrowed view of node n1's simulated runtime (when not wrapped) */
};

static struct agent_node_config cfg_fast(void)
{
	struct agent_node_config c = { 0 };
	c.pull_deadline_ms = 60000;
	c.poll_ms = 200;
	c.status_interval_ms = 150;
	c.fs_threshold_percent = 85;
	c.backoff_base_ms = 50;
	c.backoff_max_ms = 200;
	return c;
}

static void fx_start(struct fixture *f, struct agent_runtime *rt, const struct agent_node_config *cfg, int per_node)
{
	f->reg = metrics_new();
	struct agent_opts o = { 0 };
	o.node = *cfg;
	o.max_parallel_pulls = per_node;
	o.max_parallel_pulls_per_registry = per_node;
	o.api.get_nic = mem_get;
	o.api.patch_status = mem_patch;
	o.api.get_secret = mem_secret;
	o.api.ud = &f->m;
	o.metrics = f->reg;
	f->a = agent_new(&o);
	agent_add_node(f->a, "n1", rt);
	assert_int_equal(agent_start(f->a), 0);
}

static void fx_stop(struct fixture *f)
{
	agent_stop(f->a, 0);
	agent_free(f->a);
	metrics_free(f->reg);
	f->a = NULL;
	f->reg = NULL;
}

static int wait_for(struct fixture *f, int (*cond)(struct fixture *f, const void *arg), const void *arg, int ms)
{
	for (int t = 0; t < ms; t += 10) {
		if (cond(f, arg))
			return 1;
		kf_sleep_ms(10);
	}
	if (cond(f, arg))
		return 1;
	pthread_mutex_lock(&f->m.mu);
	char *st = f->m.status ? json_dumps(f->m.status, JSON_INDENT(1)) : NULL;
	pthread_mutex_unlock(&f->m.mu);
	print_message("not reached; idle %d; last status written: %s\n", agent_idle(f->a), st ? st : "none");
	free(st);
	return 0;
}

static int settled(struct fixture *f, const void *arg)
{
	(void)arg;
	return agent_idle(f->a);
}

static int all_present(struct fixture *f, const void *arg)
{
	const char *const *imgs = arg;
	for (size_t i = 0; imgs[i]; i++)
		if (!entry_state_is(&f->m, imgs[i], "Present"))
			return 0;
	return agent_idle(f->a);
}

/* ---- tests ---- */

static void delete_guard(void **state)
{
	(void)state;
	struct agent_simrt_opts so = { 0 };
	struct agent_runtime *sim = agent_simrt_new(&so);
	struct rec rec;
	struct agent_runtime *rt = rec_new(&rec, sim);
	const char *in_use = REG "/used:1", *pinned = REG "/pinned:1", *gone = REG "/gone:1",
		   *other_tag = REG "/app:2", *absent = REG "/absent:1";
	agent_simrt_put(sim, in_use);
	agent_simrt_put(sim, pinned);
	agent_simrt_set_pinned(sim, pinned, 1);
	agent_simrt_put(sim, gone);
	agent_simrt_put(sim, REG "/app:1");
	agent_simrt_put(sim, other_tag);
	agent_simrt_put(sim, "docker.io/library/busybox:1.36");
	agent_simrt_add_container(sim, in_use);
	/* the exited container a job-mode pull Job left (never restarted) does not keep its image */
	agent_simrt_add_spent_puller(sim, gone);

	struct fixture f = { 0 };
	mem_init(&f.m);
	/* busybox:1.36 is wanted (Pull) and asked to go (Delete, spelled in full): one entry, Pull wins */
	const char *spec[] = { "-" REG "/used:1", "-" REG "/pinned:1", "-" REG "/gone:1", "-" REG "/app:1", REG "/app:2",
			       "-" REG "/absent:1", "busybox:1.36", "-docker.io/library/busybox:1.36", NULL };
	mem_set_spec(&f.m, spec, 0, 1, NULL);
	struct agent_node_config cfg = cfg_fast();
	fx_start(&f, rt, &cfg, 4);
	const char *wait_imgs[] = { REG "/app:2", "busybox:1.36", NULL };
	assert_true(wait_for(&f, all_present, wait_imgs, 5000));

	pthread_mutex_lock(&f.m.mu);
	assert_string_equal(entry_str(&f.m, in_use, "state"), "Present");
	assert_string_equal(entry_str(&f.m, in_use, "reason"), "ImageInUse");
	assert_non_null(strstr(entry_str(&f.m, in_use, "message"), "used by container c0 of pod default/pod-0 (running)"));
	assert_string_equal(entry_str(&f.m, pinned, "state"), "Present");
	assert_string_equal(entry_str(&f.m, pinned, "reason"), "ImagePinned");
	assert_string_equal(entry_str(&f.m, gone, "state"), "Absent");
	assert_string_equal(entry_str(&f.m, REG "/app:1", "state"), "Absent");
	assert_string_equal(entry_str(&f.m, absent, "state"), "Absent");
	assert_null(entry(&f.m, "docker.io/library/busybox:1.36")); /* merged into the Pull entry */
	assert_int_equal(json_integer_value(json_object_get(f.m.status, "desired")), 2);
	assert_int_equal(json_integer_value(json_object_get(f.m.status, "present")), 2);
	pthread_mutex_unlock(&f.m.mu);

	/* exactly the references asked for, by name, never an image id; the other tag stays */
	assert_int_equal(rec.n_removed, 2);
	for (int i = 0; i < rec.n_removed; i++) {
		assert_null(strstr(rec.removed[i], "sha256:"));
		assert_true(!strcmp(rec.removed[i], gone) || !strcmp(rec.removed[i], REG "/app:1"));
	}
	assert_true(agent_simrt_has(sim, other_tag));
	assert_true(agent_simrt_has(sim, in_use));
	assert_true(agent_simrt_has(sim, pinned));
	assert_true(agent_simrt_has(sim, "busybox:1.36"));
	assert_false(agent_simrt_has(sim, gone));
	fx_stop(&f);
	mem_clear(&f.m);
	agent_runtime_free(sim);
}

static void self_heal(void **state)
{
	(void)state;
	struct agent_simrt_opts so = { 0 };
	struct agent_runtime *sim = agent_simrt_new(&so);
	struct fixture f = { 0 };
	mem_init(&f.m);
	const char *imgs[] = { REG "/a:1", REG "/b:1", REG "/c:1", NULL };
	mem_set_spec(&f.m, imgs, 0, 1, NULL);
	struct agent_node_config cfg = cfg_fast();
	fx_start(&f, sim, &cfg, 2);
	assert_true(wait_for(&f, all_present, imgs, 5000));
	assert_int_equal(agent_simrt_pulls(sim), 3);
	agent_simrt_drop(sim, REG "/b:1");
	int64_t t0 = kf_now_ms();
	while (!agent_simrt_has(sim, REG "/b:1") && kf_now_ms() - t0 < 3000)
		kf_sleep_ms(5);
	int64_t took = kf_now_ms() - t0;
	assert_true(agent_simrt_has(sim, REG "/b:1"));
	assert_true(took < cfg.poll_ms + 500); /* within a poll interval, plus the pull */
	assert_true(wait_for(&f, all_present, imgs, 2000));
	assert_int_equal(agent_simrt_pulls(sim), 4);
	struct agent_stats st;
	agent_stats(f.a, &st);
	assert_int_equal(st.self_heals, 1);
	fx_stop(&f);
	mem_clear(&f.m);
}

static void status_writes_are_coalesced(void **state)
{
	(void)state;
	struct agent_simrt_opts so = { 0 };
	so.pull_latency_ms = 50;
	struct agent_runtime *sim = agent_simrt_new(&so);
	struct fixture f = { 0 };
	mem_init(&f.m);
	char names[40][64];
	const char *imgs[41];
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof names[i], REG "/img-%03d:1", i);
		imgs[i] = names[i];
	}
	imgs[40] = NULL;
	mem_set_spec(&f.m, imgs, 0, 1, NULL);
	struct agent_node_config cfg = cfg_fast();
	cfg.poll_ms = 300;
	int64_t t0 = kf_now_ms();
	fx_start(&f, sim, &cfg, 4);
	assert_true(wait_for(&f, all_present, imgs, 10000));
	int64_t run_ms = f.m.write_ms[writes(&f.m) - 1] - t0;
	int w = writes(&f.m);
	/* 40 pulls of 50 ms, 4 at once: about 500 ms. While pulls run, writes are at least a status interval
	 * apart; the last one, when the node settles, comes at once (an uncoalesced agent would write at
	 * least 40 times). */
	int bound = (int)(run_ms / cfg.status_interval_ms) + 2;
	if (w < 2 || w > bound) {
		for (int i = 0; i < w && i < 64; i++)
			print_message("write %d at %lld ms\n", i, (long long)(f.m.write_ms[i] - t0));
		fail_msg("%d status writes over %lld ms of pulls (want 2..%d)", w, (long long)run_ms, bound);
	}
	for (int i = 1; i < w - 1 && i < 64; i++)
		if (f.m.write_ms[i] - f.m.write_ms[i - 1] < cfg.status_interval_ms - 5)
			fail_msg("writes %d and %d only %lld ms apart while pulling", i - 1, i,
				 (long long)(f.m.write_ms[i] - f.m.write_ms[i - 1]));
	assert_int_equal(agent_simrt_pulls(sim), 40);
	/* settled: polls (every 300 ms) find everything present and write nothing */
	kf_sleep_ms(1000);
	assert_int_equal(writes(&f.m), w);
	/* a warm refresh (the spec object rewritten, same content): no pull, no write */
	mem_set_spec(&f.m, imgs, 0, 1, NULL);
	agent_notify(f.a, "n1");
	kf_sleep_ms(500);
	assert_true(wait_for(&f, settled, NULL, 2000));
	assert_int_equal(writes(&f.m), w);
	assert_int_equal(agent_simrt_pulls(sim), 40);
	fx_stop(&f);
	mem_clear(&f.m);
}

/* Pulls that all finish within a moment of the first (here 8 of 5 ms, 4 at once) are reported in one write,
 * Pulling and Present together: at 1,000 nodes that halves the status writes of a create. */
static void quick_pulls_cost_one_status_write(void **state)
{
	(void)state;
	struct agent_simrt_opts so = { 0 };
	so.pull_latency_ms = 5;
	struct agent_runtime *sim = agent_simrt_new(&so);
	struct fixture f = { 0 };
	mem_init(&f.m);
	const char *imgs[] = { REG "/q-1:1", REG "/q-2:1", REG "/q-3:1", REG "/q-4:1",
			       REG "/q-5:1", REG "/q-6:1", REG "/q-7:1", REG "/q-8:1", NULL };
	mem_set_spec(&f.m, imgs, 0, 1, NULL);
	struct agent_node_config cfg = cfg_fast();
	cfg.status_interval_ms = 5000; /* the flag's default */
	fx_start(&f, sim, &cfg, 4);
	assert_true(wait_for(&f, all_present, imgs, 5000));
	kf_sleep_ms(300);
	assert_int_equal(writes(&f.m), 1);
	fx_stop(&f);
	mem_clear(&f.m);
}

static void restart_resumes_from_status(void **state)
{
	(void)state;
	struct agent_simrt_opts so = { 0 };
	struct agent_runtime *sim = agent_simrt_new(&so);
	struct rec rec;
	struct fixture f = { 0 };
	mem_init(&f.m);
	agent_simrt_set_fail(sim, "missing", 0, NULL);
	const char *imgs[] = { REG "/a:1", REG "/b:latest", REG "/missing:1", NULL };
	mem_set_spec(&f.m, imgs, 3, 1, NULL);
	struct agent_node_config cfg = cfg_fast();
	fx_start(&f, rec_new(&rec, sim), &cfg, 2);
	const char *ok[] = { REG "/a:1", REG "/b:latest", NULL };
	assert_true(wait_for(&f, all_present, ok, 5000));
	assert_true(entry_state_is(&f.m, REG "/missing:1", "Failed"));
	uint64_t pulls = agent_simrt_pulls(sim);
	assert_int_equal(pulls, 3);
	fx_stop(&f); /* "killed": the next agent knows only the object and the runtime */

	struct rec rec2;
	fx_start(&f, rec_new(&rec2, sim), &cfg, 2);
	assert_true(wait_for(&f, settled, NULL, 3000));
	kf_sleep_ms(500);
	assert_int_equal(agent_simrt_pulls(sim), pulls); /* nothing pulled again, the failure not retried */
	assert_true(entry_state_is(&f.m, REG "/missing:1", "Failed"));
	assert_int_equal(fresh_gets(&f.m), 2);
	/* a refresh of the floating tag: pullGeneration 4 for every entry; each is pulled once more (the
	 * missing one fails again) */
	mem_set_spec(&f.m, imgs, 4, 2, NULL);
	agent_notify(f.a, "n1");
	assert_true(wait_for(&f, all_present, ok, 5000));
	kf_sleep_ms(300);
	assert_int_equal(agent_simrt_pulls(sim), pulls + 3);
	pthread_mutex_lock(&f.m.mu);
	assert_int_equal(json_integer_value(json_object_get(entry(&f.m, REG "/b:latest"), "observedPullGeneration")), 4);
	assert_int_equal(json_integer_value(json_object_get(entry(&f.m, REG "/missing:1"), "observedPullGeneration")), 4);
	assert_int_equal(json_integer_value(json_object_get(f.m.status, "observedGeneration")), 2);
	pthread_mutex_unlock(&f.m.mu);
	fx_stop(&f);
	mem_clear(&f.m);
	agent_runtime_free(sim);
}

static void transient_errors_retry_until_the_deadline(void **state)
{
	(void)state;
	struct agent_simrt_opts so = { 0 };
	struct agent_runtime *sim = agent_simrt_new(&so);
	agent_simrt_set_fail(sim, "flaky", CRI_UNKNOWN,
			     "rpc error: code = Unknown desc = failed to pull and unpack image \"x\": failed to resolve "
			     "reference \"x\": pulling from host " REG " failed with status code [manifests 1]: 503 "
			     "Service Unavailable");
	struct fixture f = { 0 };
	mem_init(&f.m);
	const char *imgs[] = { REG "/flaky:1", NULL };
	mem_set_spec(&f.m, imgs, 0, 1, NULL);
	struct agent_node_config cfg = cfg_fast();
	cfg.pull_deadline_ms = 1500;
	fx_start(&f, sim, &cfg, 1);
	kf_sleep_ms(600);
	pthread_mutex_lock(&f.m.mu);
	assert_string_equal(entry_str(&f.m, REG "/flaky:1", "state"), "Pulling");
	assert_string_equal(entry_str(&f.m, REG "/flaky:1", "cause"), "RegistryUnavailable");
	assert_non_null(strstr(entry_str(&f.m, REG "/flaky:1", "message"), "503 Service Unavailable"));
	assert_true(json_integer_value(json_object_get(entry(&f.m, REG "/flaky:1"), "attempts")) >= 2);
	pthread_mutex_unlock(&f.m.mu);
	for (int t = 0; t < 300 && !entry_state_is(&f.m, REG "/flaky:1", "Failed"); t++)
		kf_sleep_ms(10);
	assert_true(entry_state_is(&f.m, REG "/flaky:1", "Failed"));
	uint64_t attempts = agent_simrt_pulls(sim);
	assert_true(attempts >= 4); /* 50, 100, 200, 200 ms ... within 1.5 s */
	assert_true(attempts <= 15);
	kf_sleep_ms(500);
	assert_int_equal(agent_simrt_pulls(sim), attempts); /* failed for good: no more attempts */
	fx_stop(&f);

	/* a permanent error: one attempt, failed at once */
	const char *imgs2[] = { REG "/gone:1", NULL };
	mem_set_spec(&f.m, imgs2, 0, 2, NULL);
	json_decref(f.m.status);
	f.m.status = NULL;
	sim = agent_simrt_new(&so);
	agent_simrt_set_fail(sim, "gone", 0, NULL);
	int64_t t0 = kf_now_ms();
	fx_start(&f, sim, &cfg, 1);
	for (int t = 0; t < 300 && !entry_state_is(&f.m, REG "/gone:1", "Failed"); t++)
		kf_sleep_ms(10);
	assert_true(entry_state_is(&f.m, REG "/gone:1", "Failed"));
	assert_true(kf_now_ms() - t0 < 1000);
	assert_int_equal(agent_simrt_pulls(sim), 1);
	pthread_mutex_lock(&f.m.mu);
	assert_string_equal(entry_str(&f.m, REG "/gone:1", "reason"), "ErrImagePull");
	assert_string_equal(entry_str(&f.m, REG "/gone:1", "cause"), "ImageNotFound");
	pthread_mutex_unlock(&f.m.mu);
	fx_stop(&f);
	mem_clear(&f.m);
}

static void disk_threshold_refuses_then_allows(void **state)
{
	(void)state;
	struct agent_simrt_opts so = { 0 };
	so.capacity_bytes = 100ull << 30;
	struct agent_runtime *sim = agent_simrt_new(&so);
	agent_simrt_set_used(sim, 90ull << 30);
	struct fixture f = { 0 };
	mem_init(&f.m);
	const char *imgs[] = { REG "/big:1", NULL };
	mem_set_spec(&f.m, imgs, 0, 1, NULL);
	struct agent_node_config cfg = cfg_fast();
	fx_start(&f, sim, &cfg, 1);
	for (int t = 0; t < 300 && !entry_state_is(&f.m, REG "/big:1", "Failed"); t++)
		kf_sleep_ms(10);
	assert_true(entry_state_is(&f.m, REG "/big:1", "Failed"));
	pthread_mutex_lock(&f.m.mu);
	assert_string_equal(entry_str(&f.m, REG "/big:1", "reason"), "ImageFsThresholdExceeded");
	assert_non_null(strstr(entry_str(&f.m, REG "/big:1", "message"), "90% full"));
	assert_non_null(strstr(entry_str(&f.m, REG "/big:1", "message"), "threshold of 85%"));
	json_t *fs = json_object_get(f.m.status, "imageFs");
	assert_int_equal(json_integer_value(json_object_get(fs, "usedBytes")), (json_int_t)(90ull << 30));
	assert_int_equal(json_integer_value(json_object_get(fs, "thresholdPercent")), 85);
	pthread_mutex_unlock(&f.m.mu);
	assert_int_equal(agent_simrt_pulls(sim), 0);
	/* refusals repeat every poll without a status write each time */
	int w = writes(&f.m);
	kf_sleep_ms(700);
	assert_int_equal(writes(&f.m), w);
	struct agent_stats st;
	agent_stats(f.a, &st);
	assert_true(st.disk_refusals >= 2);
	/* room again: the next poll pulls it */
	agent_simrt_set_used(sim, 10ull << 30);
	const char *ok[] = { REG "/big:1", NULL };
	assert_true(wait_for(&f, all_present, ok, 3000));
	assert_int_equal(agent_simrt_pulls(sim), 1);
	fx_stop(&f);
	mem_clear(&f.m);
}

static void pull_secrets_are_tried_in_order(void **state)
{
	(void)state;
	struct agent_simrt_opts so = { 0 };
	struct agent_runtime *sim = agent_simrt_new(&so);
	struct rec rec;
	struct agent_runtime *rt = rec_new(&rec, sim);
	rec.auth_check = 1;
	struct fixture f = { 0 };
	mem_init(&f.m);
	/* two keys match; the more specific one (with the path) is tried first and refused */
	f.m.secret = "{\"auths\": {\"" REG "\": {\"username\": \"good\", \"password\": \"pw1\"}, \"" REG
		     "/private\": {\"username\": \"bad\", \"password\": \"pw2\"}}}";
	const char *imgs[] = { REG "/private/app:1", NULL };
	mem_set_spec(&f.m, imgs, 0, 1, "tenant");
	struct agent_node_config cfg = cfg_fast();
	fx_start(&f, rt, &cfg, 1);
	assert_true(wait_for(&f, all_present, imgs, 3000));
	pthread_mutex_lock(&rec.mu);
	/* both Secrets hold both credentials: each is tried once, most specific key first */
	assert_int_equal(rec.n_users, 2);
	assert_string_equal(rec.users[0], "bad");
	assert_string_equal(rec.users[1], "good");
	pthread_mutex_unlock(&rec.mu);
	assert_int_equal(f.m.secret_reads, 2);
	fx_stop(&f);

	/* no Secret readable: an anonymous pull, refused; the message says why */
	struct rec rec2;
	struct agent_runtime *sim2 = agent_simrt_new(&so);
	rt = rec_new(&rec2, sim2);
	rec2.auth_check = 1;
	f.m.secret = NULL;
	json_decref(f.m.status);
	f.m.status = NULL;
	fx_start(&f, rt, &cfg, 1);
	for (int t = 0; t < 300 && !entry_state_is(&f.m, REG "/private/app:1", "Failed"); t++)
		kf_sleep_ms(10);
	pthread_mutex_lock(&f.m.mu);
	assert_string_equal(entry_str(&f.m, REG "/private/app:1", "cause"), "Unauthorized");
	assert_non_null(strstr(entry_str(&f.m, REG "/private/app:1", "message"), "401 Unauthorized"));
	assert_non_null(strstr(entry_str(&f.m, REG "/private/app:1", "message"),
			       "pull secret tenant/first: secrets \"first\" not found"));
	pthread_mutex_unlock(&f.m.mu);
	assert_string_equal(rec2.users[0], "-");
	fx_stop(&f);
	mem_clear(&f.m);
	agent_runtime_free(sim);
	agent_runtime_free(sim2);
}

static void a_node_without_object_reads_it_once(void **state)
{
	(void)state;
	struct agent_simrt_opts so = { 0 };
	struct agent_runtime *sim = agent_simrt_new(&so);
	struct fixture f = { 0 };
	mem_init(&f.m);
	struct agent_node_config cfg = cfg_fast();
	cfg.poll_ms = 100;
	fx_start(&f, sim, &cfg, 1);
	kf_sleep_ms(600); /* about 6 polls */
	assert_int_equal(fresh_gets(&f.m), 1);
	assert_int_equal(writes(&f.m), 0); /* no object: nothing to write to */
	/* the controller creates it: cached reads from then on */
	const char *imgs[] = { REG "/late:1", NULL };
	mem_set_spec(&f.m, imgs, 0, 1, NULL);
	agent_notify(f.a, "n1");
	assert_true(wait_for(&f, all_present, imgs, 3000));
	assert_int_equal(fresh_gets(&f.m), 1);
	assert_true(kf_intern_count() > 0);
	fx_stop(&f);
	mem_clear(&f.m);
	assert_int_equal(kf_intern_count(), 0); /* every shared string given back */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(delete_guard),
		cmocka_unit_test(self_heal),
		cmocka_unit_test(status_writes_are_coalesced),
		cmocka_unit_test(quick_pulls_cost_one_status_write),
		cmocka_unit_test(restart_resumes_from_status),
		cmocka_unit_test(transient_errors_retry_until_the_deadline),
		cmocka_unit_test(disk_threshold_refuses_then_allows),
		cmocka_unit_test(pull_secrets_are_tried_in_order),
		cmocka_unit_test(a_node_without_object_reads_it_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
