/* kube_conn.c - per-thread connections to the API server, and the transfer loop every request runs in.
 *
 * libcurl does not support one connection cache shared by concurrent threads (CURL_LOCK_DATA_CONNECT:
 * "not supported to share connections between multiple concurrent threads"; curl issues 4544, 4915), so
 * a client never shares connections between threads. Each thread that uses a client gets its own
 * struct kube_conn the first time: a curl multi handle (which holds that thread's connection cache) and
 * one easy handle reused for every request the thread makes (reset and configured again each time). A
 * thread's requests therefore reuse its keep-alive connection (HTTP/2 over TLS where the server offers
 * it), and no connection is ever touched by two threads. What libcurl does support across threads stays
 * shared, with locks: TLS session ids (so a thread's first handshake is a resumption) and the DNS cache.
 *
 * Lifetime. A thread's conns hang off one pthread key (a list, one entry per client it used); the key's
 * destructor frees them when the thread exits. Each conn is also linked into its client's list, so that
 * kube_client_free() closes the connections of threads that are still alive (a worker pool that outlives
 * a client, the main thread). conns_mu guards both links and the conn's client pointer; a thread finds
 * its own entry by the client's id (never reused), without the lock: the client is alive while the
 * thread uses it, so that entry cannot change under it. Entries of freed clients are dropped when the
 * thread next creates an entry, or when it exits.
 *
 * Reentrancy: a request made while the thread's conn is busy (from inside a watch callback) runs on a
 * temporary conn that is closed afterwards, so the watch's transfer is never disturbed.
 *
 * The transfer loop polls at most KUBE_CONN_POLL_MS, so a stop flag and a watch's idle timeout are
 * checked at least that often even while the server sends nothing. */
#include <stdlib.h>
#include <string.h>

#include "kube_client.h"
#include "kube_internal.h"
#include "util/log.h"
#include "util/util.h"

#define KUBE_CONN_POLL_MS 250

struct kube_conn {
	struct kube_client *c; /* the owner; NULL once it was freed (guarded by conns_mu) */
	uint64_t client_id;    /* immutable: how the thread finds its entry */
	CURLM *m;              /* this thread's connection cache for c */
	CURL *h;               /* reused for every request */
	int busy, temporary;
	struct kube_conn *thread_next;                 /* the thread's list (owner thread only) */
	struct kube_conn *client_prev, *client_next;   /* c's list (conns_mu) */
};

static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t conn_key;
static pthread_once_t conn_key_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t client_ids;

static void handles_close(struct kube_conn *k)
{
	if (k->m && k->h)
		curl_multi_remove_handle(k->m, k->h); /* harmless when it is not added */
	if (k->h)
		curl_easy_cleanup(k->h);
	if (k->m)
		curl_multi_cleanup(k->m);
	k->h = NULL;
	k->m = NULL;
}

static void client_unlink_locked(struct kube_conn *k)
{
	if (k->client_prev)
		k->client_prev->client_next = k->client_next;
	else if (k->c)
		k->c->conns = k->client_next;
	if (k->client_next)
		k->client_next->client_prev = k->client_prev;
	k->client_prev = k->client_next = NULL;
}

/* The pthread key's destructor: the thread is exiting. */
static void thread_conns_free(void *head)
{
	struct kube_conn *k = head, *next;
	for (; k; k = next) {
		next = k->thread_next;
		pthread_mutex_lock(&conns_mu);
		int alive = k->c != NULL;
		if (alive)
			client_unlink_locked(k);
		k->c = NULL;
		pthread_mutex_unlock(&conns_mu);
		if (alive)
			handles_close(k); /* now ours alone */
		free(k);
	}
}

static void conn_key_init(void)
{
	if (pthread_key_create(&conn_key, thread_conns_free))
		abort(); /* only when the process is out of keys at start: nothing sensible to do */
}

/* Unlinks the entries of freed clients from the calling thread's list (head in/out); returns them as a
 * list for the caller to free outside the lock. With conns_mu held. */
static struct kube_conn *prune_locked(struct kube_conn **head)
{
	struct kube_conn **pp = head, *dead = NULL;
	while (*pp) {
		struct kube_conn *e = *pp;
		if (!e->c) {
			*pp = e->thread_next;
			e->thread_next = dead;
			dead = e;
		} else {
			pp = &e->thread_next;
		}
	}
	return dead;
}

static void free_list(struct kube_conn *dead)
{
	while (dead) {
		struct kube_conn *n = dead->thread_next;
		free(dead);
		dead = n;
	}
}

uint64_t kube_conn_new_client_id(void)
{
	return atomic_fetch_add(&client_ids, 1) + 1;
}

void kube_conns_close_all(struct kube_client *c)
{
	pthread_mutex_lock(&conns_mu);
	while (c->conns) {
		struct kube_conn *k = c->conns;
		client_unlink_locked(k);
		handles_close(k); /* its thread no longer uses this client (kube_client_free's contract) */
		k->c = NULL;      /* the struct itself stays in its thread's list until that thread prunes it */
	}
	/* the calling thread's own entries go at once (the main thread never runs key destructors) */
	struct kube_conn *dead = NULL, *head = NULL;
	int keyed = pthread_once(&conn_key_once, conn_key_init) == 0;
	if (keyed) {
		head = pthread_getspecific(conn_key);
		dead = prune_locked(&head);
	}
	pthread_mutex_unlock(&conns_mu);
	if (keyed)
		pthread_setspecific(conn_key, head);
	free_list(dead);
}

static struct kube_conn *conn_new(struct kube_client *c)
{
	struct kube_conn *k = xcalloc(1, sizeof *k);
	k->c = c;
	k->client_id = c->id;
	k->m = curl_multi_init();
	k->h = curl_easy_init();
	if (!k->m || !k->h) {
		handles_close(k);
		free(k);
		return NULL;
	}
	/* one transfer at a time per thread: a couple of idle connections is all it can use */
	curl_multi_setopt(k->m, CURLMOPT_MAXCONNECTS, 2L);
	return k;
}

struct kube_conn *kube_conn_acquire(struct kube_client *c)
{
	pthread_once(&conn_key_once, conn_key_init);
	struct kube_conn *head = pthread_getspecific(conn_key), *k;
	for (k = head; k; k = k->thread_next)
		if (k->client_id == c->id)
			break;
	if (k && !k->busy) {
		k->busy = 1;
		return k;
	}
	if (k) { /* reentrant use from a callback: a temporary conn of its own */
		LOG_V(5, "kube client: nested request on a busy thread; using a temporary connection");
		k = conn_new(c);
		if (k) {
			k->temporary = 1;
			k->busy = 1;
		}
		return k;
	}
	k = conn_new(c);
	if (!k)
		return NULL;
	/* drop the entries of clients freed since, then link the new one into both lists */
	pthread_mutex_lock(&conns_mu);
	struct kube_conn *dead = prune_locked(&head);
	k->client_next = c->conns;
	if (c->conns)
		c->conns->client_prev = k;
	c->conns = k;
	pthread_mutex_unlock(&conns_mu);
	k->thread_next = head;
	pthread_setspecific(conn_key, k);
	free_list(dead);
	k->busy = 1;
	return k;
}

void kube_conn_release(struct kube_conn *k)
{
	if (!k)
		return;
	k->busy = 0;
	if (k->temporary) {
		handles_close(k);
		free(k);
	}
}

CURL *kube_conn_easy(struct kube_conn *k)
{
	return k->h;
}

int kube_conn_run(struct kube_conn *k, const volatile int *stop, const int64_t *last_data_ms, long idle_ms,
		  CURLcode *cc)
{
	int running = 1, rc = KUBE_XFER_DONE;
	*cc = CURLE_OK;
	CURLMcode mc = curl_multi_add_handle(k->m, k->h);
	if (mc != CURLM_OK) {
		*cc = CURLE_FAILED_INIT;
		return KUBE_XFER_DONE;
	}
	while (running) {
		mc = curl_multi_perform(k->m, &running);
		if (mc != CURLM_OK) {
			*cc = CURLE_FAILED_INIT;
			break;
		}
		if (!running)
			break;
		if (kube_stop_get(stop)) {
			rc = KUBE_XFER_STOPPED;
			break;
		}
		if (idle_ms > 0 && last_data_ms && kf_now_ms() - *last_data_ms > idle_ms) {
			rc = KUBE_XFER_IDLE;
			break;
		}
		curl_multi_poll(k->m, NULL, 0, KUBE_CONN_POLL_MS, NULL);
	}
	if (rc == KUBE_XFER_DONE && mc == CURLM_OK) {
		int left;
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(k->m, &left)))
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == k->h)
				*cc = msg->data.result;
	}
	/* an unfinished transfer's connection is closed by the removal (curl never reuses it) */
	curl_multi_remove_handle(k->m, k->h);
	return rc;
}
