/* agent_simnodes.c - simulated Node objects and their Leases (see agent_simnodes.h). */
#include "agent_simnodes.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "util/log.h"
#include "util/util.h"
#include "util/version.h"

enum { NODE_NEW = 0, NODE_UP, NODE_REPATCH };

static const struct kube_resource LEASES = { "coordination.k8s.io", "v1", "leases", "Lease", 1 };
#define LEASE_NS "kube-node-lease"

struct agent_simnodes {
	struct kube_client *c;
	struct agent_simnodes_opts o;
	char *prefix;
	json_t *labels;       /* extra labels */
	char **names;
	char **uids;
	_Atomic int *state;      /* per node: NODE_NEW, NODE_UP, NODE_REPATCH (its Ready status to write again) */
	int64_t *next_renew;     /* per node, owned by its thread */
	int *renewals, *attempts;
	_Atomic int up, failed;
	pthread_mutex_t mu;
	char first_error[512];
	pthread_t *threads;
	int n_threads;
	volatile int stopping;
	_Atomic uint64_t get, create, patch, patch_status, list, del, errors;
};

static int valid_label_part(const char *s, size_t n, int key)
{
	if (!n || n > (key ? 253 : 63))
		return !key && n == 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			 ch == '_' || ch == '.' || (key && ch == '/');
		if (!ok)
			return 0;
	}
	return 1;
}

struct agent_simnodes *agent_simnodes_new(struct kube_client *client, const struct agent_simnodes_opts *o,
					  struct strbuf *err)
{
	if (o->count < 1 || o->count > 99999) {
		sb_addf(err, "invalid value %d for flag --nodes: want 1 to 99999", o->count);
		return NULL;
	}
	const char *prefix = o->prefix ? o->prefix : "kf-sim-";
	int bad = !*prefix || strlen(prefix) > 200 || prefix[0] == '-' || prefix[0] == '.';
	for (const char *p = prefix; *p; p++)
		bad |= !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.');
	if (bad) {
		sb_addf(err, "invalid value \"%s\" for flag --node-prefix: node names are DNS subdomains "
			     "(lowercase letters, digits, '-', '.')", prefix);
		return NULL;
	}
	json_t *labels = json_object();
	for (const char *p = o->labels ? o->labels : ""; *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		if (!eq || !valid_label_part(p, (size_t)(eq - p), 1) ||
		    !valid_label_part(eq + 1, n - (size_t)(eq + 1 - p), 0)) {
			sb_addf(err, "invalid value \"%.*s\" in flag --node-labels: want key=value,key=value", (int)n, p);
			json_decref(labels);
			return NULL;
		}
		char *k = xstrndup(p, (size_t)(eq - p)), *v = xstrndup(eq + 1, n - (size_t)(eq + 1 - p));
		json_object_set_new(labels, k, json_string(v));
		free(k);
		free(v);
		p = comma ? comma + 1 : p + n;
	}
	struct agent_simnodes *s = xcalloc(1, sizeof *s);
	s->c = client;
	s->o = *o;
	if (s->o.threads < 1)
		s->o.threads = 4;
	if (s->o.lease_ms <= 0)
		s->o.lease_ms = 10000;
	s->prefix = xstrdup(prefix);
	s->labels = labels;
	s->names = xcalloc((size_t)o->count, sizeof *s->names);
	s->uids = xcalloc((size_t)o->count, sizeof *s->uids);
	s->state = xcalloc((size_t)o->count, sizeof *s->state);
	s->next_renew = xcalloc((size_t)o->count, sizeof *s->next_renew);
	s->renewals = xcalloc((size_t)o->count, sizeof *s->renewals);
	s->attempts = xcalloc((size_t)o->count, sizeof *s->attempts);
	pthread_mutex_init(&s->mu, NULL);
	for (int i = 0; i < o->count; i++)
		s->names[i] = xasprintf("%s%04d", prefix, i + 1);
	return s;
}

void agent_simnodes_free(struct agent_simnodes *s)
{
	if (!s)
		return;
	agent_simnodes_stop(s);
	for (int i = 0; i < s->o.count; i++) {
		free(s->names[i]);
		free(s->uids[i]);
	}
	free(s->names);
	free(s->uids);
	free((void *)s->state);
	free(s->next_renew);
	free(s->renewals);
	free(s->attempts);
	pthread_mutex_destroy(&s->mu);
	free(s->threads);
	json_decref(s->labels);
	free(s->prefix);
	free(s);
}

const char *agent_simnodes_name(const struct agent_simnodes *s, size_t i)
{
	return s->names[i];
}

/* RFC 3339 with microseconds, as metav1.MicroTime serializes. */
static void micro_time(char out[64])
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
}

static json_t *node_labels(struct agent_simnodes *s, const char *name)
{
	json_t *l = json_pack("{s:s, s:s, s:s, s:s}", AGENT_SIM_LABEL, "true", "kubernetes.io/hostname", name,
			      "kubernetes.io/os", "linux", "kubernetes.io/arch", "amd64");
	json_object_update(l, s->labels);
	return l;
}

static json_t *sim_taint(void)
{
	return json_pack("{s:s, s:s, s:s}", "key", AGENT_SIM_LABEL, "value", "true", "effect", "NoSchedule");
}

static int patch_ready(struct agent_simnodes *s, size_t i, struct strbuf *err)
{
	char now[32];
	kf_rfc3339(time(NULL), now);
	char *rt = xasprintf("simulated://%s", kf_version());
	json_t *res = json_pack("{s:s, s:s, s:s, s:s}", "cpu", "4", "memory", "16Gi", "pods", "110", "ephemeral-storage",
				"100Gi");
	json_t *body = json_pack(
		"{s:{s:[{s:s, s:s, s:s, s:s, s:s, s:s}], s:O, s:o, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
		"s:s}, s:[{s:s, s:s}]}}",
		"status", "conditions", "type", "Ready", "status", "True", "reason", "KubeletReady", "message",
		"simulated by kubefledged agent-sim (no kubelet, no pods)", "lastHeartbeatTime", now,
		"lastTransitionTime", now, "capacity", res, "allocatable", res, "nodeInfo", "machineID", s->names[i],
		"systemUUID", s->names[i], "bootID", "agent-sim", "kernelVersion", "simulated", "osImage",
		"kubefledged agent-sim", "containerRuntimeVersion", rt, "kubeletVersion", "v1.20.2",
		"kubeProxyVersion", "v1.20.2", "operatingSystem", "linux", "architecture", "amd64", "addresses",
		"type", "Hostname", "address", s->names[i]);
	free(rt);
	struct strbuf path = STRBUF_INIT;
	struct kube_err e = { 0 };
	kube_path(&path, &KUBE_NODES, NULL, s->names[i], "status");
	s->patch_status++;
	json_t *r = kube_patch(s->c, path.buf, body, "application/merge-patch+json", &e);
	json_decref(body);
	sb_release(&path);
	if (!r) {
		s->errors++;
		sb_addf(err, "PATCH node %s status: %s", s->names[i], e.msg);
		return -1;
	}
	json_decref(r);
	return 0;
}

/* Renews node i's Lease (a merge patch), creating it when it is missing; create = 1 tries the creation
 * first (a node just set up). */
static int renew_lease(struct agent_simnodes *s, size_t i, int create, struct strbuf *err)
{
	char now[64];
	micro_time(now);
	struct strbuf path = STRBUF_INIT;
	struct kube_err e = { 0 };
	json_t *r = NULL, *body;
	kube_path(&path, &LEASES, LEASE_NS, s->names[i], NULL);
	if (!create) {
		body = json_pack("{s:{s:s, s:i, s:s}}", "spec", "holderIdentity", s->names[i], "leaseDurationSeconds", 40,
				 "renewTime", now);
		s->patch++;
		r = kube_patch(s->c, path.buf, body, "application/merge-patch+json", &e);
		json_decref(body);
	}
	if (create || (!r && kube_err_is_not_found(&e))) {
		/* first time: create it, owned by the Node so that it goes with it */
		sb_reset(&path);
		kube_path(&path, &LEASES, LEASE_NS, NULL, NULL);
		body = json_pack("{s:s, s:s, s:{s:s, s:s, s:[{s:s, s:s, s:s, s:s}]}, s:{s:s, s:i, s:s}}", "apiVersion",
				 "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", s->names[i], "namespace",
				 LEASE_NS, "ownerReferences", "apiVersion", "v1", "kind", "Node", "name", s->names[i], "uid",
				 s->uids[i] ? s->uids[i] : "", "spec", "holderIdentity", s->names[i],
				 "leaseDurationSeconds", 40, "renewTime", now);
		memset(&e, 0, sizeof e);
		s->create++;
		r = kube_create(s->c, path.buf, body, &e);
		json_decref(body);
		if (!r && e.code == 409) /* left by an earlier run: renew it */
			return renew_lease(s, i, 0, err);
	}
	sb_release(&path);
	if (!r) {
		s->errors++;
		sb_addf(err, "Lease %s/%s: %s", LEASE_NS, s->names[i], e.msg);
		return -1;
	}
	json_decref(r);
	return 0;
}

/* Creates or adopts node i, writes its Ready status and Lease: POST node (on AlreadyExists: GET and a
 * merge patch of our labels and taint), PATCH status, POST lease (on AlreadyExists: renew). */
static int ensure_node(struct agent_simnodes *s, size_t i, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT;
	struct kube_err e = { 0 };
	int rc = -1;
	kube_path(&path, &KUBE_NODES, NULL, NULL, NULL);
	json_t *body = json_pack("{s:s, s:s, s:{s:s, s:o}, s:{s:[o]}}", "apiVersion", "v1", "kind", "Node", "metadata",
				 "name", s->names[i], "labels", node_labels(s, s->names[i]), "spec", "taints", sim_taint());
	s->create++;
	json_t *node = kube_create(s->c, path.buf, body, &e);
	json_decref(body);
	sb_reset(&path);
	kube_path(&path, &KUBE_NODES, NULL, s->names[i], NULL);
	if (!node && e.code == 409) { /* adopt: our labels, and our taint unless it is there */
		memset(&e, 0, sizeof e);
		s->get++;
		node = kube_get(s->c, path.buf, &e);
		if (node) {
			json_t *spec = kf_jget(node, "spec", NULL);
			json_t *taints = json_deep_copy(spec ? json_object_get(spec, "taints") : NULL);
			if (!json_is_array(taints)) {
				json_decref(taints);
				taints = json_array();
			}
			int has = 0;
			size_t k;
			json_t *t;
			json_array_foreach(taints, k, t) {
				const char *key = json_string_value(json_object_get(t, "key"));
				has |= key && !strcmp(key, AGENT_SIM_LABEL);
			}
			if (!has)
				json_array_append_new(taints, sim_taint());
			body = json_pack("{s:{s:o}, s:{s:o}}", "metadata", "labels", node_labels(s, s->names[i]), "spec",
					 "taints", taints);
			json_decref(node);
			memset(&e, 0, sizeof e);
			s->patch++;
			node = kube_patch(s->c, path.buf, body, "application/merge-patch+json", &e);
			json_decref(body);
		}
	}
	if (!node) {
		s->errors++;
		sb_addf(err, "node %s: %s", s->names[i], e.msg);
		goto out;
	}
	free(s->uids[i]);
	s->uids[i] = xstrdup(kf_jstr(node, "metadata", "uid", NULL) ? kf_jstr(node, "metadata", "uid", NULL) : "");
	json_decref(node);
	if (patch_ready(s, i, err) || renew_lease(s, i, 1, err))
		goto out;
	rc = 0;
out:
	sb_release(&path);
	return rc;
}

/* ---- parallel loops ---- */

struct slice {
	struct agent_simnodes *s;
	int idx, step;
	const volatile int *stop;
	int (*fn)(struct agent_simnodes *s, size_t i, struct strbuf *err);
	struct strbuf err;
	int failed;
};

static void *run_slice(void *arg)
{
	struct slice *sl = arg;
	for (int i = sl->idx; i < sl->s->o.count && !(sl->stop && *sl->stop); i += sl->step) {
		struct strbuf e = STRBUF_INIT;
		if (sl->fn(sl->s, (size_t)i, &e)) {
			if (!sl->failed++)
				sb_add(&sl->err, e.buf, e.len);
		}
		sb_release(&e);
	}
	return NULL;
}

static int for_all(struct agent_simnodes *s, int (*fn)(struct agent_simnodes *, size_t, struct strbuf *),
		   const volatile int *stop, struct strbuf *err)
{
	int nt = s->o.threads;
	struct slice *sl = xcalloc((size_t)nt, sizeof *sl);
	pthread_t *th = xcalloc((size_t)nt, sizeof *th);
	int failed = 0;
	for (int t = 0; t < nt; t++) {
		sl[t] = (struct slice){ s, t, nt, stop, fn, STRBUF_INIT, 0 };
		pthread_create(&th[t], NULL, run_slice, &sl[t]);
	}
	for (int t = 0; t < nt; t++) {
		pthread_join(th[t], NULL);
		if (sl[t].failed && !failed && err)
			sb_add(err, sl[t].err.buf, sl[t].err.len);
		failed += sl[t].failed;
		sb_release(&sl[t].err);
	}
	free(sl);
	free(th);
	return failed;
}

/* Thread t keeps its nodes (i = t, t + threads, ...) alive: sets up the ones not set up yet (retrying a
 * failure after 2 s, giving up after 5), renews every Lease once per lease period (and writes the Ready
 * status every 10th time, or at once when agent_simnodes_ready saw the node not Ready). Setting up and
 * renewing interleave, so a slow start does not let the first nodes' Leases lapse. */
struct keeper {
	struct agent_simnodes *s;
	int t;
};

static void *keep_alive(void *arg)
{
	struct keeper *k = arg;
	struct agent_simnodes *s = k->s;
	int nt = s->o.threads;
	while (!s->stopping) {
		int did = 0;
		for (int i = k->t; i < s->o.count && !s->stopping; i += nt) {
			int64_t now = kf_now_ms();
			struct strbuf e = STRBUF_INIT;
			int st = s->state[i];
			if (st == NODE_NEW) {
				if (s->attempts[i] >= 5 || now < s->next_renew[i]) {
					sb_release(&e);
					continue;
				}
				did = 1;
				if (ensure_node(s, (size_t)i, &e) == 0) {
					s->state[i] = NODE_UP;
					s->next_renew[i] = now + s->o.lease_ms;
					s->up++;
				} else if (++s->attempts[i] >= 5) {
					pthread_mutex_lock(&s->mu);
					if (!s->failed++)
						snprintf(s->first_error, sizeof s->first_error, "%s", e.buf);
					pthread_mutex_unlock(&s->mu);
				} else {
					LOG_WARN("agent-sim: %s (tried again in 2 s)", e.buf);
					s->next_renew[i] = now + 2000;
				}
			} else if (st == NODE_REPATCH || now >= s->next_renew[i]) {
				did = 1;
				int status = st == NODE_REPATCH || ++s->renewals[i] % 10 == 0;
				if (renew_lease(s, (size_t)i, 0, &e) || (status && patch_ready(s, (size_t)i, &e)))
					LOG_WARN("agent-sim: %s", e.buf);
				else if (st == NODE_REPATCH)
					s->state[i] = NODE_UP;
				s->next_renew[i] = now + s->o.lease_ms;
			}
			sb_release(&e);
		}
		if (!did)
			kf_sleep_ms(50);
	}
	free(k);
	return NULL;
}

int agent_simnodes_start(struct agent_simnodes *s)
{
	if (s->threads)
		return 0;
	s->threads = xcalloc((size_t)s->o.threads, sizeof *s->threads);
	for (int t = 0; t < s->o.threads; t++) {
		struct keeper *k = xcalloc(1, sizeof *k);
		k->s = s;
		k->t = t;
		if (pthread_create(&s->threads[t], NULL, keep_alive, k)) {
			free(k);
			return -1;
		}
		s->n_threads++;
	}
	return 0;
}

int agent_simnodes_setup(struct agent_simnodes *s, const volatile int *stop, struct strbuf *err)
{
	if (agent_simnodes_start(s) < 0) {
		sb_adds(err, "cannot start threads");
		return -1;
	}
	while (s->up + s->failed < s->o.count && !(stop && *stop))
		kf_sleep_ms(50);
	if (s->failed) {
		pthread_mutex_lock(&s->mu);
		sb_addf(err, "%d node(s) could not be set up, first: %s", (int)s->failed, s->first_error);
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	return stop && *stop ? -1 : 0;
}

void agent_simnodes_stop(struct agent_simnodes *s)
{
	s->stopping = 1;
	for (int t = 0; t < s->n_threads; t++)
		pthread_join(s->threads[t], NULL);
	s->n_threads = 0;
}

int agent_simnodes_ready(struct agent_simnodes *s, struct strbuf *err)
{
	int ready = 0;
	size_t plen = strlen(s->prefix);
	char *cont = NULL;
	do { /* pages of 100: a list of a thousand Nodes is megabytes of JSON */
		struct strbuf path = STRBUF_INIT;
		struct kube_err e = { 0 };
		kube_path(&path, &KUBE_NODES, NULL, NULL, NULL);
		sb_addf(&path, "?labelSelector=%s%%3Dtrue&limit=100", AGENT_SIM_LABEL);
		if (cont) {
			sb_adds(&path, "&continue=");
			sb_add_urlencoded(&path, cont);
		}
		free(cont);
		cont = NULL;
		s->list++;
		json_t *l = kube_get(s->c, path.buf, &e);
		sb_release(&path);
		if (!l) {
			s->errors++;
			sb_addf(err, "LIST nodes: %s", e.msg);
			return -1;
		}
		const char *c = kf_jstr(l, "metadata", "continue", NULL);
		if (c && *c)
			cont = xstrdup(c);
		size_t i;
		json_t *node;
		json_array_foreach(json_object_get(l, "items"), i, node) {
			const char *name = kf_jstr(node, "metadata", "name", NULL);
			if (!name || strncmp(name, s->prefix, plen))
				continue;
			long idx = strtol(name + plen, NULL, 10);
			if (idx < 1 || idx > s->o.count || strcmp(name, s->names[idx - 1]))
				continue;
			size_t k;
			json_t *cd, *status = kf_jget(node, "status", NULL);
			int is_ready = 0;
			json_array_foreach(status ? json_object_get(status, "conditions") : NULL, k, cd) {
				const char *t = json_string_value(json_object_get(cd, "type"));
				const char *st = json_string_value(json_object_get(cd, "status"));
				is_ready |= t && st && !strcmp(t, "Ready") && !strcmp(st, "True");
			}
			ready += is_ready;
			/* the node lifecycle controller gave up on it (a Lease lapsed): write Ready again */
			int up = NODE_UP;
			if (!is_ready)
				atomic_compare_exchange_strong(&s->state[idx - 1], &up, NODE_REPATCH);
		}
		json_decref(l);
	} while (cont);
	return ready;
}

static int delete_node(struct agent_simnodes *s, size_t i, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT;
	struct kube_err e = { 0 };
	kube_path(&path, &KUBE_NODES, NULL, s->names[i], NULL);
	s->del++;
	int rc = kube_delete(s->c, path.buf, "Background", &e);
	sb_release(&path);
	if (rc && !kube_err_is_not_found(&e)) {
		s->errors++;
		sb_addf(err, "DELETE node %s: %s", s->names[i], e.msg);
		return -1;
	}
	return 0;
}

int agent_simnodes_delete(struct agent_simnodes *s)
{
	struct strbuf err = STRBUF_INIT;
	int failed = for_all(s, delete_node, NULL, &err);
	if (failed)
		LOG_WARN("agent-sim: %d node(s) not deleted, first: %s", failed, err.buf);
	sb_release(&err);
	return failed;
}

void agent_simnodes_counts(struct agent_simnodes *s, struct agent_simnodes_counts *out)
{
	out->get = s->get;
	out->create = s->create;
	out->patch = s->patch;
	out->patch_status = s->patch_status;
	out->list = s->list;
	out->del = s->del;
	out->errors = s->errors;
}
