/* kube_informer.c - list + watch into a local store; see kube_informer.h.
 *
 * One thread per informer runs the reflector loop:
 *
 *     list (paginated) ──► replace store, fire the differences ──► watch from the list's RV
 *        ▲                                                           │ events: apply, fire
 *        └──────────── 410 Gone / Expired (at once) ─────────────────┤ normal end: watch again
 *                                                                     │ any other error (transport, 5xx,
 *                            watch again from the last RV ◄── backoff ┘ 429, a dead stream)
 *
 * Only an expired resourceVersion needs a relist (client-go's reflector does the same): after any other
 * watch error the events since the last seen resourceVersion are still in the server's watch cache, so
 * resuming the watch there loses nothing and costs no full list. The backoff is at least the server's
 * Retry-After. Page requests of a list check the stop flag every 250 ms, so kube_informer_stop() returns
 * within about that long even in the middle of a slow paginated list.
 *
 * The store is a struct map from "ns/name" to an immutable json_t, guarded by one mutex; readers get new
 * references (jansson's refcounts are atomic since 2.11), so a reader never copies an object and an
 * object is never changed in place once stored. Handlers run on this thread *outside* the lock, after
 * the store already shows the change, so a handler may read the store (as client-go's do).
 *
 * List items come without kind/apiVersion (the API server omits them inside lists); they are filled in
 * from the resource so that every stored object looks like a watched one (the event recorder needs them).
 * The relist reconciliation (kube_store_replace) and event application (kube_store_apply) are pure
 * functions over a struct map, unit-tested with recorded lists.
 *
 * Resync without a timer thread: the watch's timeoutSeconds is cut to end at the next resync, and the
 * resync (on_update(obj, obj) for every object) runs between two watches, on this thread.
 *
 * A watch refused with 403 while the list was allowed (RBAC granting list but not watch, as upstream
 * kube-fledged's ClusterRole does for Jobs) turns the loop into polling: a list every INF_POLL_MS, which
 * fires the same add/update/delete handlers, and a watch tried again every INF_POLL_RETRY_WATCH_MS in case
 * the rights changed. Said once in the log, not at every turn. */
#include "kube_informer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kube_internal.h"
#include "util/log.h"
#include "util/util.h"

#define INF_PAGE_LIMIT 500
#define INF_BACKOFF_MIN_MS 500
#define INF_BACKOFF_MAX_MS 30000
#define INF_POLL_MS 2000
#define INF_POLL_RETRY_WATCH_MS 60000

struct kube_informer {
	struct kube_client *c;
	struct kube_resource res; /* strings borrowed from the caller's constant */
	char *ns, *label_selector, *field_selector;
	json_t *(*transform)(void *ud, json_t *obj);
	void *transform_ud;
	int64_t resync_ms;
	int page_limit;
	struct kube_informer_handlers h;

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;  /* synced, stop */
	struct map store;
	char *rv;
	int synced, started, joined;
	volatile int stop;
	pthread_t th;
	unsigned seed;
	uint64_t events; /* watch events received (informer thread only) */
};

/* ---- keys and the store (pure) ------------------------------------------------------------------ */

char *kube_object_key(json_t *obj, char *buf, size_t n)
{
	const char *name = kf_jstr(obj, "metadata", "name", NULL), *ns = kf_jstr(obj, "metadata", "namespace", NULL);
	if (!n)
		return buf;
	if (!name)
		buf[0] = '\0';
	else if (ns && *ns)
		snprintf(buf, n, "%s/%s", ns, name);
	else
		snprintf(buf, n, "%s", name);
	return buf;
}

static void deltas_push(struct kube_deltas *d, enum kube_delta_type t, json_t *old_obj, json_t *new_obj)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->v = xrealloc(d->v, d->cap * sizeof *d->v);
	}
	d->v[d->n++] = (struct kube_delta){ t, old_obj, new_obj };
}

void kube_deltas_release(struct kube_deltas *d)
{
	for (size_t i = 0; i < d->n; i++) {
		json_decref(d->v[i].old_obj);
		json_decref(d->v[i].new_obj);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

void kube_deltas_fire(const struct kube_deltas *d, const struct kube_informer_handlers *h)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct kube_delta *x = &d->v[i];
		if (x->type == KUBE_DELTA_ADD && h->on_add)
			h->on_add(h->ud, x->new_obj);
		else if (x->type == KUBE_DELTA_UPDATE && h->on_update)
			h->on_update(h->ud, x->old_obj, x->new_obj);
		else if (x->type == KUBE_DELTA_DELETE && h->on_delete)
			h->on_delete(h->ud, x->old_obj);
	}
}

static int same_version(json_t *a, json_t *b)
{
	const char *ra = kf_jstr(a, "metadata", "resourceVersion", NULL);
	const char *rb = kf_jstr(b, "metadata", "resourceVersion", NULL);
	if (ra && rb)
		return !strcmp(ra, rb);
	return json_equal(a, b);
}

/* Keys are at most 253 (namespace 63) + 1 + 253 bytes; anything longer is not a Kubernetes object. */
#define KEY_MAX 640

void kube_store_replace(struct map *store, json_t *items, struct kube_deltas *out)
{
	struct map seen = MAP_INIT;
	char key[KEY_MAX];
	size_t i, ndel = 0;
	json_t *it;
	json_array_foreach(items, i, it) {
		if (*kube_object_key(it, key, sizeof key))
			map_put(&seen, key, it);
	}
	const char *k;
	void *v;
	char **gone = NULL;
	for (size_t iter = 0; map_next(store, &iter, &k, &v);) {
		if (!map_has(&seen, k)) {
			gone = xrealloc(gone, (ndel + 1) * sizeof *gone);
			gone[ndel++] = xstrdup(k);
		}
	}
	for (size_t j = 0; j < ndel; j++) {
		deltas_push(out, KUBE_DELTA_DELETE, map_del(store, gone[j]), NULL);
		free(gone[j]);
	}
	free(gone);
	json_array_foreach(items, i, it) {
		if (!*kube_object_key(it, key, sizeof key))
			continue;
		json_t *old = map_get(store, key);
		if (!old) {
			map_put(store, key, json_incref(it));
			deltas_push(out, KUBE_DELTA_ADD, NULL, json_incref(it));
		} else if (old != it && !same_version(old, it)) {
			map_put(store, key, json_incref(it));
			deltas_push(out, KUBE_DELTA_UPDATE, old, json_incref(it));
		}
	}
	map_free(&seen, NULL);
}

void kube_store_apply(struct map *store, const char *type, json_t *obj, struct kube_deltas *out)
{
	char key[KEY_MAX];
	if (!*kube_object_key(obj, key, sizeof key))
		return;
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		json_t *old = map_put(store, key, json_incref(obj));
		deltas_push(out, old ? KUBE_DELTA_UPDATE : KUBE_DELTA_ADD, old, json_incref(obj));
	} else if (!strcmp(type, "DELETED")) {
		/* The event carries the object's final state: hand that to on_delete. */
		json_decref(map_del(store, key));
		deltas_push(out, KUBE_DELTA_DELETE, json_incref(obj), NULL);
	}
}

static void decref_value(void *v)
{
	json_decref(v);
}

void kube_store_clear(struct map *store)
{
	map_free(store, decref_value);
	*store = (struct map)MAP_INIT;
}

json_t *kube_drop_managed_fields(json_t *obj)
{
	json_t *md = json_object_get(obj, "metadata");
	if (json_is_object(md))
		json_object_del(md, "managedFields");
	return obj;
}

static json_t *drop_managed_fields(void *ud, json_t *obj)
{
	(void)ud;
	return kube_drop_managed_fields(obj);
}

/* ---- the informer ------------------------------------------------------------------------------------- */

struct kube_informer *kube_informer_new(struct kube_client *c, const struct kube_informer_opts *opts,
					const struct kube_informer_handlers *h)
{
	struct kube_informer *inf = xcalloc(1, sizeof *inf);
	pthread_condattr_t ca;
	inf->c = c;
	inf->res = *opts->res;
	inf->ns = opts->ns && *opts->ns ? xstrdup(opts->ns) : NULL;
	inf->label_selector = opts->label_selector && *opts->label_selector ? xstrdup(opts->label_selector) : NULL;
	inf->field_selector = opts->field_selector && *opts->field_selector ? xstrdup(opts->field_selector) : NULL;
	inf->transform = opts->transform ? opts->transform : drop_managed_fields;
	inf->transform_ud = opts->transform_ud;
	inf->resync_ms = opts->resync_ms > 0 ? opts->resync_ms : 0;
	inf->page_limit = opts->page_limit > 0 ? opts->page_limit : INF_PAGE_LIMIT;
	if (h)
		inf->h = *h;
	pthread_mutex_init(&inf->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&inf->cv, &ca);
	pthread_condattr_destroy(&ca);
	inf->store = (struct map)MAP_INIT;
	inf->rv = xstrdup("");
	if (getrandom(&inf->seed, sizeof inf->seed, 0) != (ssize_t)sizeof inf->seed)
		inf->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)inf;
	return inf;
}

static void abstime_after(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Sleeps ms unless stopped; returns nonzero when stopped. */
static int inf_sleep(struct kube_informer *inf, int64_t ms)
{
	struct timespec ts;
	abstime_after(&ts, ms);
	pthread_mutex_lock(&inf->mu);
	while (!kube_stop_get(&inf->stop) && pthread_cond_timedwait(&inf->cv, &inf->mu, &ts) != ETIMEDOUT)
		;
	int s = kube_stop_get(&inf->stop);
	pthread_mutex_unlock(&inf->mu);
	return s;
}

static void set_rv(struct kube_informer *inf, const char *rv)
{
	if (!rv || !*rv)
		return;
	pthread_mutex_lock(&inf->mu);
	if (strcmp(inf->rv, rv)) {
		free(inf->rv);
		inf->rv = xstrdup(rv);
	}
	pthread_mutex_unlock(&inf->mu);
}

static void add_selectors(struct kube_informer *inf, struct strbuf *p)
{
	if (inf->label_selector) {
		sb_adds(p, "&labelSelector=");
		sb_add_urlencoded(p, inf->label_selector);
	}
	if (inf->field_selector) {
		sb_adds(p, "&fieldSelector=");
		sb_add_urlencoded(p, inf->field_selector);
	}
}

static json_t *prepare(struct kube_informer *inf, json_t *obj)
{
	if (!json_object_get(obj, "kind")) {
		json_object_set_new(obj, "kind", json_string(inf->res.kind));
		json_object_set_new(obj, "apiVersion",
				    *inf->res.group ? json_sprintf("%s/%s", inf->res.group, inf->res.version)
						    : json_string(inf->res.version));
	}
	return inf->transform(inf->transform_ud, obj);
}

/* Lists every page into items (transformed). Returns 0 with the list's resourceVersion in *rv_out
 * (malloc'd), or -1 with err set. A 410 on a continue token (the snapshot was compacted) restarts the
 * list from the beginning. */
static int list_all(struct kube_informer *inf, json_t *items, char **rv_out, struct kube_err *err)
{
	char *cont = NULL;
	int restarts = 0, rc = -1;
	*rv_out = NULL;
	for (;;) {
		struct strbuf p = STRBUF_INIT;
		kube_path(&p, &inf->res, inf->ns, NULL, NULL);
		sb_addf(&p, "?limit=%d", inf->page_limit);
		if (cont) {
			sb_adds(&p, "&continue=");
			sb_add_urlencoded(&p, cont);
		}
		add_selectors(inf, &p);
		json_t *page = kube_get_stoppable(inf->c, p.buf, &inf->stop, err);
		sb_release(&p);
		if (!page) {
			if (kube_err_is_gone(err) && cont && restarts++ < 3) {
				LOG_V(1, "list %s: continue token expired (%s); listing again from the start",
				      inf->res.plural, err->msg);
				free(cont);
				cont = NULL;
				json_array_clear(items);
				continue;
			}
			goto out;
		}
		json_t *arr = json_object_get(page, "items"), *it;
		size_t i;
		json_array_foreach(arr, i, it) {
			json_t *o = prepare(inf, json_incref(it));
			if (o)
				json_array_append_new(items, o);
		}
		free(*rv_out);
		const char *rv = kf_jstr(page, "metadata", "resourceVersion", NULL);
		*rv_out = xstrdup(rv ? rv : "");
		free(cont);
		cont = kf_jstr(page, "metadata", "continue", NULL) ? xstrdup(kf_jstr(page, "metadata", "continue", NULL)) : NULL;
		json_decref(page);
		if (!cont || !*cont)
			break;
		if (kube_stop_get(&inf->stop)) {
			snprintf(err->msg, sizeof err->msg, "stopped");
			goto out;
		}
	}
	rc = 0;
out:
	free(cont);
	if (rc < 0) {
		free(*rv_out);
		*rv_out = NULL;
	}
	return rc;
}

static int on_event(void *ud, const char *type, json_t *obj)
{
	struct kube_informer *inf = ud;
	struct kube_deltas d = KUBE_DELTAS_INIT;
	const char *rv = kf_jstr(obj, "metadata", "resourceVersion", NULL);
	inf->events++;
	if (!strcmp(type, "BOOKMARK")) {
		set_rv(inf, rv);
		return kube_stop_get(&inf->stop);
	}
	char *rvc = rv ? xstrdup(rv) : NULL; /* the transform may drop it */
	json_t *o = prepare(inf, json_incref(obj));
	if (o) {
		pthread_mutex_lock(&inf->mu);
		kube_store_apply(&inf->store, type, o, &d);
		pthread_mutex_unlock(&inf->mu);
		json_decref(o);
	}
	set_rv(inf, rvc);
	free(rvc);
	kube_deltas_fire(&d, &inf->h);
	kube_deltas_release(&d);
	return kube_stop_get(&inf->stop);
}

static void resync(struct kube_informer *inf)
{
	json_t *all = kube_informer_list(inf), *o;
	size_t i;
	if (inf->h.on_update)
		json_array_foreach(all, i, o)
			inf->h.on_update(inf->h.ud, o, o);
	json_decref(all);
}

static int64_t backoff_ms(struct kube_informer *inf, int *failures)
{
	int64_t d = INF_BACKOFF_MIN_MS;
	for (int i = 0; i < *failures && d < INF_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > INF_BACKOFF_MAX_MS)
		d = INF_BACKOFF_MAX_MS;
	if (*failures < 30)
		(*failures)++;
	return d + (int64_t)(rand_r(&inf->seed) % (unsigned)(d / 5 + 1)); /* up to +20% jitter */
}

/* backoff_ms(), but never less than the server's Retry-After. */
static int64_t backoff_for(struct kube_informer *inf, int *failures, const struct kube_err *err)
{
	int64_t b = backoff_ms(inf, failures);
	if (err->retry_after_s > 0 && b < (int64_t)err->retry_after_s * 1000)
		b = (int64_t)err->retry_after_s * 1000;
	return b;
}

static void *informer_main(void *arg)
{
	struct kube_informer *inf = arg;
	struct kube_err err;
	int need_list = 1, failures = 0;
	int64_t next_resync = inf->resync_ms ? kf_now_ms() + inf->resync_ms : 0;
	int64_t polling_since = 0, next_watch_try = 0; /* watch forbidden: polling with lists */

	while (!kube_stop_get(&inf->stop)) {
		if (need_list) {
			json_t *items = json_array();
			char *rv = NULL;
			if (list_all(inf, items, &rv, &err) < 0) {
				json_decref(items);
				if (kube_stop_get(&inf->stop))
					break;
				int64_t b = backoff_for(inf, &failures, &err);
				LOG_WARN("list %s: %s (retrying in %lld ms)", inf->res.plural, err.msg, (long long)b);
				inf_sleep(inf, b);
				continue;
			}
			struct kube_deltas d = KUBE_DELTAS_INIT;
			pthread_mutex_lock(&inf->mu);
			kube_store_replace(&inf->store, items, &d);
			pthread_mutex_unlock(&inf->mu);
			json_decref(items);
			set_rv(inf, rv);
			LOG_V(3, "list %s: %zu objects at resourceVersion %s, %zu changes", inf->res.plural,
			      kube_informer_len(inf), rv, d.n);
			free(rv);
			kube_deltas_fire(&d, &inf->h);
			kube_deltas_release(&d);
			pthread_mutex_lock(&inf->mu);
			if (!inf->synced) {
				inf->synced = 1;
				pthread_cond_broadcast(&inf->cv);
			}
			pthread_mutex_unlock(&inf->mu);
			need_list = 0;
			failures = 0;
			if (polling_since && kf_now_ms() < next_watch_try) {
				need_list = 1;
				if (inf_sleep(inf, INF_POLL_MS))
					break;
				goto resync;
			}
		}

		long timeout_s = 300 + (long)(rand_r(&inf->seed) % 301);
		if (next_resync) {
			int64_t left = next_resync - kf_now_ms(); /* end the watch at (not before) the resync */
			if ((left + 999) / 1000 < timeout_s)
				timeout_s = left > 0 ? (long)((left + 999) / 1000) : 1;
		}
		char rv[128];
		kube_informer_resource_version(inf, rv, sizeof rv);
		struct strbuf p = STRBUF_INIT;
		kube_path(&p, &inf->res, inf->ns, NULL, NULL);
		sb_adds(&p, "?watch=1&allowWatchBookmarks=true&resourceVersion=");
		sb_add_urlencoded(&p, rv);
		sb_addf(&p, "&timeoutSeconds=%ld", timeout_s);
		add_selectors(inf, &p);
		uint64_t ev0 = inf->events;
		int64_t t0 = kf_now_ms();
		int rc = kube_watch(inf->c, p.buf, on_event, inf, &inf->stop, (timeout_s + 60) * 1000, &err);
		sb_release(&p);
		if (kube_stop_get(&inf->stop))
			break;
		if (rc == 0 && inf->events == ev0 && kf_now_ms() - t0 < 1000 && timeout_s > 1) {
			/* ended at once with nothing (a proxy cutting streams?): do not spin */
			int64_t b = backoff_ms(inf, &failures);
			LOG_WARN("watch %s: the server closed the stream at once (retrying in %lld ms)", inf->res.plural,
				 (long long)b);
			if (inf_sleep(inf, b))
				break;
		} else if (rc == 0) {
			failures = 0;
			if (polling_since) {
				LOG_INFO("watch %s: allowed again, polling stops", inf->res.plural);
				polling_since = 0;
			}
		} else if (err.code == 403) {
			if (!polling_since) {
				LOG_WARN("watch %s: %s; listing every %d s instead", inf->res.plural, err.msg,
					 INF_POLL_MS / 1000);
				polling_since = kf_now_ms();
			}
			next_watch_try = kf_now_ms() + INF_POLL_RETRY_WATCH_MS;
			need_list = 1;
			if (inf_sleep(inf, INF_POLL_MS))
				break;
		} else if (kube_err_is_expired(&err)) {
			LOG_V(1, "watch %s: %s; relisting", inf->res.plural, err.msg);
			need_list = 1;
		} else {
			int64_t b = backoff_for(inf, &failures, &err);
			kube_informer_resource_version(inf, rv, sizeof rv);
			LOG_WARN("watch %s: %s (watching again from resourceVersion %s in %lld ms)", inf->res.plural,
				 err.msg, rv, (long long)b);
			if (inf_sleep(inf, b))
				break;
		}
	resync:
		if (next_resync && kf_now_ms() >= next_resync) {
			resync(inf);
			next_resync = kf_now_ms() + inf->resync_ms;
		}
	}
	return NULL;
}

int kube_informer_start(struct kube_informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	if (inf->started) {
		pthread_mutex_unlock(&inf->mu);
		return 0;
	}
	int rc = pthread_create(&inf->th, NULL, informer_main, inf);
	if (rc == 0)
		inf->started = 1;
	else
		LOG_ERROR("informer %s: cannot start thread: %s", inf->res.plural, strerror(rc));
	pthread_mutex_unlock(&inf->mu);
	return rc ? -1 : 0;
}

int kube_informer_wait_synced(struct kube_informer *inf, int64_t timeout_ms)
{
	struct timespec ts;
	abstime_after(&ts, timeout_ms);
	pthread_mutex_lock(&inf->mu);
	while (!inf->synced && !kube_stop_get(&inf->stop) && pthread_cond_timedwait(&inf->cv, &inf->mu, &ts) != ETIMEDOUT)
		;
	int ok = inf->synced;
	pthread_mutex_unlock(&inf->mu);
	return ok ? 0 : -1;
}

int kube_informer_has_synced(struct kube_informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	int s = inf->synced;
	pthread_mutex_unlock(&inf->mu);
	return s;
}

void kube_informer_stop(struct kube_informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	kube_stop_set(&inf->stop);
	pthread_cond_broadcast(&inf->cv);
	int join = inf->started && !inf->joined;
	inf->joined = inf->joined || join;
	pthread_mutex_unlock(&inf->mu);
	if (join && pthread_equal(pthread_self(), inf->th))
		pthread_detach(inf->th); /* called from a handler: the thread ends when the handler returns */
	else if (join)
		pthread_join(inf->th, NULL);
}

void kube_informer_free(struct kube_informer *inf)
{
	if (!inf)
		return;
	kube_informer_stop(inf);
	kube_store_clear(&inf->store);
	pthread_mutex_destroy(&inf->mu);
	pthread_cond_destroy(&inf->cv);
	free(inf->ns);
	free(inf->label_selector);
	free(inf->field_selector);
	free(inf->rv);
	free(inf);
}

json_t *kube_informer_get(struct kube_informer *inf, const char *key)
{
	pthread_mutex_lock(&inf->mu);
	json_t *o = json_incref(map_get(&inf->store, key));
	pthread_mutex_unlock(&inf->mu);
	return o;
}

json_t *kube_informer_list(struct kube_informer *inf)
{
	json_t *arr = json_array();
	const char *k;
	void *v;
	pthread_mutex_lock(&inf->mu);
	for (size_t it = 0; map_next(&inf->store, &it, &k, &v);)
		json_array_append(arr, v);
	pthread_mutex_unlock(&inf->mu);
	return arr;
}

size_t kube_informer_len(struct kube_informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	size_t n = inf->store.len;
	pthread_mutex_unlock(&inf->mu);
	return n;
}

void kube_informer_resource_version(struct kube_informer *inf, char *buf, size_t n)
{
	pthread_mutex_lock(&inf->mu);
	snprintf(buf, n, "%s", inf->rv);
	pthread_mutex_unlock(&inf->mu);
}
