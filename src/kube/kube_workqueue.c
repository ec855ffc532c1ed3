/* kube_workqueue.c - client-go's workqueue (Type + delaying + rate-limiting) in one mutex; see
 * kube_workqueue.h.
 *
 * State, all under q->mu:
 *   queue       FIFO ring of keys ready to be handed out (each key at most once), each with the time it
 *               was added (queue latency)
 *   dirty       keys that need processing: queued, or re-added while being processed; value: the add time
 *               (a malloc'd int64_t, so the queue works the same where pointers have 32 bits)
 *   processing  keys handed out by get() and not yet done(); value: when get() handed it out (malloc'd)
 *   waiting     delayed adds: a binary min-heap on the due time, plus a map key -> heap entry so a second
 *               add_after() of the same key keeps the earlier deadline
 *   failures    per-key requeue counts for add_rate_limited(), cleared by forget()
 *
 * No timer thread: delayed keys are promoted to the queue, in deadline order, whenever the queue is
 * touched (add, get, len), and getters with nothing to do sleep on a CLOCK_MONOTONIC condvar until the
 * earliest deadline. Promoting before every add keeps the order a timer thread would have produced. */
#include "kube_workqueue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/map.h"
#include "util/util.h"

struct wq_wait {
	char *key;
	int64_t due_ms;
	size_t idx; /* position in the heap */
};

struct wq_item {
	char *key;
	int64_t added_ms;
};

struct kube_workqueue {
	char *name;
	int64_t base_ms, max_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wq_item *ring;
	size_t head, len, cap;
	struct map dirty, processing, failures; /* failures: value = (void *)(uintptr_t)count */
	struct wq_wait **heap;
	size_t nheap, capheap;
	struct map waiting; /* key -> struct wq_wait* */
	int shutting_down;
	uint64_t adds, retries;
};

static int64_t *stamp(int64_t ms)
{
	int64_t *p = xmalloc(sizeof *p);
	*p = ms;
	return p;
}

struct kube_workqueue *kube_wq_new(const char *name, int64_t base_delay_ms, int64_t max_delay_ms)
{
	struct kube_workqueue *q = xcalloc(1, sizeof *q);
	pthread_condattr_t ca;
	q->name = xstrdup(name ? name : "");
	q->base_ms = base_delay_ms > 0 ? base_delay_ms : 5;
	q->max_ms = max_delay_ms >= q->base_ms ? max_delay_ms : q->base_ms;
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	q->dirty = q->processing = q->failures = q->waiting = (struct map)MAP_INIT;
	return q;
}

/* ---- FIFO ring ---------------------------------------------------------------------------------- */

static void ring_push(struct kube_workqueue *q, char *key, int64_t added_ms)
{
	if (q->len == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 16;
		struct wq_item *n = xmalloc(ncap * sizeof *n);
		for (size_t i = 0; i < q->len; i++)
			n[i] = q->ring[(q->head + i) % q->cap];
		free(q->ring);
		q->ring = n;
		q->cap = ncap;
		q->head = 0;
	}
	q->ring[(q->head + q->len) % q->cap] = (struct wq_item){ key, added_ms };
	q->len++;
}

static struct wq_item ring_pop(struct kube_workqueue *q)
{
	struct wq_item k = q->ring[q->head];
	q->head = (q->head + 1) % q->cap;
	q->len--;
	if (!q->len && q->cap > 1024) { /* give back memory after a burst */
		free(q->ring);
		q->ring = NULL;
		q->cap = q->head = 0;
	}
	return k;
}

/* ---- delay heap ----------------------------------------------------------------------------------- */

static void heap_swap(struct kube_workqueue *q, size_t a, size_t b)
{
	struct wq_wait *t = q->heap[a];
	q->heap[a] = q->heap[b];
	q->heap[b] = t;
	q->heap[a]->idx = a;
	q->heap[b]->idx = b;
}

static void heap_up(struct kube_workqueue *q, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (q->heap[p]->due_ms <= q->heap[i]->due_ms)
			break;
		heap_swap(q, p, i);
		i = p;
	}
}

static void heap_down(struct kube_workqueue *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < q->nheap && q->heap[l]->due_ms < q->heap[m]->due_ms)
			m = l;
		if (r < q->nheap && q->heap[r]->due_ms < q->heap[m]->due_ms)
			m = r;
		if (m == i)
			break;
		heap_swap(q, i, m);
		i = m;
	}
}

static struct wq_wait *heap_pop(struct kube_workqueue *q)
{
	struct wq_wait *top = q->heap[0];
	q->nheap--;
	if (q->nheap) {
		q->heap[0] = q->heap[q->nheap];
		q->heap[0]->idx = 0;
		heap_down(q, 0);
	}
	return top;
}

/* ---- core (q->mu held) ---------------------------------------------------------------------------- */

static void add_locked(struct kube_workqueue *q, const char *key)
{
	if (map_has(&q->dirty, key))
		return;
	int64_t now = kf_now_ms();
	map_put(&q->dirty, key, stamp(now));
	q->adds++;
	if (map_has(&q->processing, key))
		return; /* queued again by done() */
	ring_push(q, xstrdup(key), now);
	pthread_cond_signal(&q->cv);
}

static void promote_due(struct kube_workqueue *q)
{
	int64_t now = kf_now_ms();
	if (q->shutting_down) /* delayed keys are dropped at shutdown, as client-go's delaying queue does */
		return;
	while (q->nheap && q->heap[0]->due_ms <= now) {
		struct wq_wait *w = heap_pop(q);
		map_del(&q->waiting, w->key);
		add_locked(q, w->key);
		free(w->key);
		free(w);
	}
}

static void add_after_locked(struct kube_workqueue *q, const char *key, int64_t delay_ms)
{
	if (q->shutting_down)
		return;
	promote_due(q);
	if (delay_ms <= 0) {
		add_locked(q, key);
		return;
	}
	int64_t due = kf_now_ms() + delay_ms;
	struct wq_wait *w = map_get(&q->waiting, key);
	if (w) {
		if (due < w->due_ms) {
			w->due_ms = due;
			heap_up(q, w->idx);
			pthread_cond_broadcast(&q->cv); /* a sleeping getter may need to wake earlier */
		}
		return;
	}
	w = xmalloc(sizeof *w);
	w->key = xstrdup(key);
	w->due_ms = due;
	if (q->nheap == q->capheap) {
		q->capheap = q->capheap ? q->capheap * 2 : 16;
		q->heap = xrealloc(q->heap, q->capheap * sizeof *q->heap);
	}
	w->idx = q->nheap;
	q->heap[q->nheap++] = w;
	heap_up(q, w->idx);
	map_put(&q->waiting, key, w);
	if (w->idx == 0)
		pthread_cond_broadcast(&q->cv);
}

/* ---- API ------------------------------------------------------------------------------------------- */

void kube_wq_add(struct kube_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	if (!q->shutting_down) {
		promote_due(q);
		add_locked(q, key);
	}
	pthread_mutex_unlock(&q->mu);
}

void kube_wq_add_after(struct kube_workqueue *q, const char *key, int64_t delay_ms)
{
	pthread_mutex_lock(&q->mu);
	add_after_locked(q, key, delay_ms);
	pthread_mutex_unlock(&q->mu);
}

void kube_wq_add_rate_limited(struct kube_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	if (!q->shutting_down) {
		uintptr_t n = (uintptr_t)map_get(&q->failures, key);
		int64_t d = q->base_ms;
		for (uintptr_t i = 0; i < n && d < q->max_ms; i++)
			d *= 2;
		if (d > q->max_ms)
			d = q->max_ms;
		map_put(&q->failures, key, (void *)(n + 1));
		q->retries++;
		add_after_locked(q, key, d);
	}
	pthread_mutex_unlock(&q->mu);
}

void kube_wq_forget(struct kube_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	map_del(&q->failures, key);
	pthread_mutex_unlock(&q->mu);
}

int kube_wq_num_requeues(struct kube_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	int n = (int)(uintptr_t)map_get(&q->failures, key);
	pthread_mutex_unlock(&q->mu);
	return n;
}

char *kube_wq_get(struct kube_workqueue *q)
{
	return kube_wq_get_timed(q, NULL);
}

char *kube_wq_get_timed(struct kube_workqueue *q, int64_t *queued_ms)
{
	char *key = NULL;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		promote_due(q);
		if (q->len || q->shutting_down)
			break;
		if (q->nheap) {
			int64_t ms = q->heap[0]->due_ms - kf_now_ms();
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += ms / 1000;
			ts.tv_nsec += (ms % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&q->cv, &q->mu, &ts);
		} else {
			pthread_cond_wait(&q->cv, &q->mu);
		}
	}
	if (q->len) { /* as client-go: what is queued is still handed out after shutdown */
		struct wq_item it = ring_pop(q);
		int64_t now = kf_now_ms();
		key = it.key;
		if (queued_ms)
			*queued_ms = now - it.added_ms;
		free(map_put(&q->processing, key, stamp(now)));
		free(map_del(&q->dirty, key));
	}
	pthread_mutex_unlock(&q->mu);
	return key;
}

void kube_wq_done(struct kube_workqueue *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	free(map_del(&q->processing, key));
	int64_t *added = map_get(&q->dirty, key);
	if (added) {
		ring_push(q, xstrdup(key), *added);
		pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
}

size_t kube_wq_len(struct kube_workqueue *q)
{
	pthread_mutex_lock(&q->mu);
	promote_due(q);
	size_t n = q->len;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void kube_wq_stats(struct kube_workqueue *q, struct kube_wq_stats *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&q->mu);
	promote_due(q);
	int64_t now = kf_now_ms();
	out->adds = q->adds;
	out->retries = q->retries;
	out->depth = q->len;
	out->delayed = q->nheap;
	out->processing = q->processing.len;
	size_t it = 0;
	void *v;
	while (map_next(&q->processing, &it, NULL, &v)) {
		int64_t held = now - *(int64_t *)v;
		out->unfinished_ms += held;
		if (held > out->longest_processing_ms)
			out->longest_processing_ms = held;
	}
	pthread_mutex_unlock(&q->mu);
}

void kube_wq_shutdown(struct kube_workqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->shutting_down = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

int kube_wq_shutting_down(struct kube_workqueue *q)
{
	pthread_mutex_lock(&q->mu);
	int s = q->shutting_down;
	pthread_mutex_unlock(&q->mu);
	return s;
}

void kube_wq_free(struct kube_workqueue *q)
{
	if (!q)
		return;
	while (q->len)
		free(ring_pop(q).key);
	free(q->ring);
	for (size_t i = 0; i < q->nheap; i++) {
		free(q->heap[i]->key);
		free(q->heap[i]);
	}
	free(q->heap);
	map_free(&q->dirty, free);
	map_free(&q->processing, free);
	map_free(&q->failures, NULL);
	map_free(&q->waiting, NULL);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->name);
	free(q);
}
