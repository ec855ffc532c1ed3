/* kube_client_it_stress.c - many threads on one client at once, against the real API server: the test that
 * ThreadSanitizer (make unit-tsan) and helgrind (hack/helgrind-it.sh) run to prove that no two threads ever
 * use one libcurl connection at the same time. Part of kube_client_it (see kube_client_it.c).
 *
 * STRESS_THREADS threads each create, read, list, patch, update and delete ConfigMaps of their own, while
 * an informer watches all of them and a watch runs on its own thread, and one more thread keeps creating
 * and freeing short-lived clients (per-thread connections of a client must go with it). Every response is
 * checked against its request (the name, the value just written), so a response handed to the wrong
 * thread, a truncated body or a crossed stream fails the test even where no sanitizer looks. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_client.h"
#include "kube/kube_informer.h"
#include "kube/kube_internal.h"
#include "kube_client_it.h"
#include "util/log.h"
#include "util/util.h"

#define STRESS_THREADS 8 /* KF_IT_STRESS_THREADS lowers it (helgrind runs 100 times slower) */
#define STRESS_ROUNDS 12  /* KF_IT_STRESS_ROUNDS overrides */
static int stress_rounds = STRESS_ROUNDS, stress_threads = STRESS_THREADS;

static const char *S(const char *s, const char *def) { return s ? s : def; }

static atomic_int stress_bad;
static char stress_first_bad[512];
static pthread_mutex_t stress_mu = PTHREAD_MUTEX_INITIALIZER;

/* Records the first mismatch ("what: detail"); the rest are counted. */
static void bad(const char *fmt, const char *a, const char *b)
{
	if (atomic_fetch_add(&stress_bad, 1) == 0) {
		struct strbuf sb = STRBUF_INIT;
		sb_addf(&sb, fmt, a, b);
		pthread_mutex_lock(&stress_mu);
		snprintf(stress_first_bad, sizeof stress_first_bad, "%.500s", sb.buf);
		pthread_mutex_unlock(&stress_mu);
		sb_release(&sb);
	}
}

static void *stress_worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct kube_err e;
	char name[64], val[64];
	char *coll = path_cm(NULL);
	for (int r = 0; r < stress_rounds; r++) {
		snprintf(name, sizeof name, "kf-stress-%d-%d", id, r);
		snprintf(val, sizeof val, "v-%d-%d", id, r);
		char *p = path_cm(name);
		json_t *cm = json_pack("{s:{s:s, s:{s:s}}, s:{s:s}}", "metadata", "name", name, "labels", "kf-stress", "yes",
				       "data", "v", val);
		json_t *c = kube_create(kc, coll, cm, &e);
		if (!c || strcmp(S(kf_jstr(c, "metadata", "name", NULL), ""), name))
			bad("create %s: %s", name, c ? S(kf_jstr(c, "metadata", "name", NULL), "?") : e.msg);
		json_t *g = kube_get(kc, p, &e);
		if (!g || strcmp(S(kf_jstr(g, "data", "v", NULL), ""), val))
			bad("get %s: %s", name, g ? S(kf_jstr(g, "data", "v", NULL), "?") : e.msg);
		char *lp = xasprintf("%s?labelSelector=kf-stress%%3Dyes&limit=5", coll);
		json_t *l = kube_get(kc, lp, &e);
		if (!l || !json_is_array(json_object_get(l, "items")) || strcmp(S(kf_jstr(l, "kind", NULL), ""), "ConfigMapList"))
			bad("list %s: %s", lp, l ? S(kf_jstr(l, "kind", NULL), "?") : e.msg);
		free(lp);
		json_t *patch = json_pack("{s:{s:s}}", "data", "w", name);
		json_t *pt = kube_patch(kc, p, patch, "application/merge-patch+json", &e);
		if (!pt || strcmp(S(kf_jstr(pt, "data", "w", NULL), ""), name))
			bad("patch %s: %s", name, pt ? S(kf_jstr(pt, "data", "w", NULL), "?") : e.msg);
		if (pt) {
			json_object_set_new(json_object_get(pt, "data"), "u", json_string(val));
			json_t *u = kube_update(kc, p, pt, &e);
			if (!u || strcmp(S(kf_jstr(u, "data", "u", NULL), ""), val))
				bad("update %s: %s", name, u ? S(kf_jstr(u, "data", "u", NULL), "?") : e.msg);
			json_decref(u);
		}
		if (kube_delete(kc, p, NULL, &e) < 0)
			bad("delete %s: %s", name, e.msg);
		json_decref(patch);
		json_decref(pt);
		json_decref(l);
		json_decref(g);
		json_decref(c);
		json_decref(cm);
		free(p);
	}
	free(coll);
	return NULL;
}

/* Short-lived clients made and freed while the others run: a client's per-thread connections must be
 * released with it, and freeing one client must not touch another's. */
static void *stress_client_churn(void *arg)
{
	(void)arg;
	for (int i = 0; i < 6; i++) {
		struct strbuf err = STRBUF_INIT;
		struct kube_client *c = kube_client_new(main_cfg, main_opts, &err);
		struct kube_err e;
		json_t *v = c ? kube_get(c, "/version", &e) : NULL;
		if (!v || !kf_jstr(v, "gitVersion", NULL))
			bad("churn client GET /version: %s%s", c ? e.msg : err.buf, "");
		json_decref(v);
		kube_client_free(c);
		sb_release(&err);
	}
	return NULL;
}

struct wcount {
	atomic_int added, deleted;
};

static int stress_watch_cb(void *ud, const char *type, json_t *obj)
{
	struct wcount *w = ud;
	if (strncmp(S(kf_jstr(obj, "metadata", "name", NULL), ""), "kf-stress-", 10))
		bad("watch event %s for %s", type, S(kf_jstr(obj, "metadata", "name", NULL), "?"));
	if (!strcmp(type, "ADDED"))
		atomic_fetch_add(&w->added, 1);
	else if (!strcmp(type, "DELETED"))
		atomic_fetch_add(&w->deleted, 1);
	return 0;
}

struct watcher {
	pthread_t th;
	volatile int stop;
	struct wcount n;
	char rv[64];
	int rc;
};

static void *stress_watch(void *arg)
{
	struct watcher *w = arg;
	struct kube_err e;
	char *coll = path_cm(NULL);
	char *p = xasprintf("%s?labelSelector=kf-stress%%3Dyes&resourceVersion=%s&timeoutSeconds=120", coll, w->rv);
	w->rc = kube_watch(kc, p, stress_watch_cb, &w->n, &w->stop, 60000, &e);
	if (w->rc < 0)
		bad("watch: %s%s", e.msg, "");
	free(p);
	free(coll);
	return NULL;
}

void test_threads_stress(void)
{
	struct kube_err e;
	const char *env = getenv("KF_IT_STRESS_ROUNDS");
	if (env && atoi(env) > 0)
		stress_rounds = atoi(env);
	env = getenv("KF_IT_STRESS_THREADS");
	if (env && atoi(env) > 0 && atoi(env) < STRESS_THREADS)
		stress_threads = atoi(env);
	char *coll = path_cm(NULL);
	char *lp = xasprintf("%s?labelSelector=kf-stress%%3Dyes", coll);
	json_t *l = kube_get(kc, lp, &e);
	struct watcher w = { .rc = 0 };
	snprintf(w.rv, sizeof w.rv, "%s", S(kf_jstr(l, "metadata", "resourceVersion", NULL), "0"));
	json_decref(l);
	free(lp);
	struct kube_informer_opts io = { .res = &KUBE_CONFIGMAPS, .ns = ns, .label_selector = "kf-stress=yes" };
	struct kube_informer *inf = kube_informer_new(kc, &io, NULL);
	kube_informer_start(inf);
	pthread_create(&w.th, NULL, stress_watch, &w);

	struct kube_client_stats s0, s1;
	kube_client_stats(kc, &s0);
	int64_t t0 = kf_now_ms();
	pthread_t th[STRESS_THREADS], churn;
	for (int i = 0; i < stress_threads; i++)
		pthread_create(&th[i], NULL, stress_worker, (void *)(intptr_t)i);
	pthread_create(&churn, NULL, stress_client_churn, NULL);
	for (int i = 0; i < stress_threads; i++)
		pthread_join(th[i], NULL);
	pthread_join(churn, NULL);
	int64_t ms = kf_now_ms() - t0;
	kube_client_stats(kc, &s1);
	int want = stress_threads * stress_rounds;
	for (int i = 0; i < 200 && atomic_load(&w.n.deleted) < want; i++)
		kf_sleep_ms(50);
	kube_stop_set(&w.stop);
	pthread_join(w.th, NULL);
	kube_informer_free(inf);
	uint64_t sent = s1.requests - s0.requests;
	CHECK(atomic_load(&stress_bad) == 0, "%d threads x %d rounds of create/get/list/patch/update/delete on one client "
	      "with an informer, a watch and client churn beside them: %llu requests in %lld ms, every response "
	      "matched its request%s%s", stress_threads, stress_rounds, (unsigned long long)sent, (long long)ms,
	      atomic_load(&stress_bad) ? "; FIRST MISMATCH: " : "", stress_first_bad);
	CHECK(atomic_load(&w.n.added) == want && atomic_load(&w.n.deleted) == want,
	      "the concurrent watch saw all %d adds (%d) and deletes (%d)", want, atomic_load(&w.n.added),
	      atomic_load(&w.n.deleted));
	free(coll);
}
