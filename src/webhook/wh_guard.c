/* wh_guard.c - connection deadlines (a reaper thread) and the request byte budget; see wh_guard.h. */
#include "wh_guard.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "util/map.h"
#include "util/util.h"

/* What one client address holds: its connections and its bytes of the budget. */
struct share {
	size_t conns, bytes;
};

struct wh_guard_conn {
	int fd;
	int64_t deadline_ms;
	struct share *share;
	char *addr;
	struct wh_guard_conn *prev, *next;
};

struct wh_guard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t reaper;
	int stop;
	struct wh_guard_conn *conns; /* doubly linked, unordered */
	size_t n_conns;
	struct map shares;           /* address -> struct share */
	uint64_t expired;
	size_t budget, per_addr, in_use, peak;
};

static void *reap(void *arg)
{
	struct wh_guard *g = arg;
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += WH_GUARD_TICK_MS * 1000000L;
		dl.tv_sec += dl.tv_nsec / 1000000000L;
		dl.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&g->cv, &g->mu, &dl);
		int64_t now = kf_now_ms();
		for (struct wh_guard_conn *c = g->conns; c; c = c->next)
			if (c->deadline_ms && now >= c->deadline_ms) {
				/* the server's thread sees EOF and closes it; once is enough */
				shutdown(c->fd, SHUT_RDWR);
				c->deadline_ms = 0;
				g->expired++;
			}
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

struct wh_guard *wh_guard_new(size_t budget_bytes, size_t per_addr_bytes)
{
	struct wh_guard *g = xcalloc(1, sizeof *g);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->budget = budget_bytes;
	g->per_addr = per_addr_bytes;
	if (pthread_create(&g->reaper, NULL, reap, g)) {
		pthread_cond_destroy(&g->cv);
		pthread_mutex_destroy(&g->mu);
		free(g);
		return NULL;
	}
	return g;
}

static void free_conn(struct wh_guard_conn *c)
{
	free(c->addr);
	free(c);
}

void wh_guard_free(struct wh_guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->reaper, NULL);
	while (g->conns) { /* not expected: the server closed them all */
		struct wh_guard_conn *c = g->conns;
		g->conns = c->next;
		free_conn(c);
	}
	map_free(&g->shares, free);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

struct wh_guard_conn *wh_guard_open(struct wh_guard *g, int fd, const char *addr, int64_t deadline_ms)
{
	struct wh_guard_conn *c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->deadline_ms = deadline_ms;
	c->addr = xstrdup(addr ? addr : "");
	pthread_mutex_lock(&g->mu);
	if (!(c->share = map_get(&g->shares, c->addr)))
		map_put(&g->shares, c->addr, c->share = xcalloc(1, sizeof *c->share));
	c->share->conns++;
	c->next = g->conns;
	if (g->conns)
		g->conns->prev = c;
	g->conns = c;
	g->n_conns++;
	pthread_mutex_unlock(&g->mu);
	return c;
}

const char *wh_guard_addr(const struct wh_guard_conn *c)
{
	return c ? c->addr : "";
}

void wh_guard_set_deadline(struct wh_guard *g, struct wh_guard_conn *c, int64_t deadline_ms)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->mu);
	c->deadline_ms = deadline_ms;
	pthread_mutex_unlock(&g->mu);
}

void wh_guard_close(struct wh_guard *g, struct wh_guard_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	g->n_conns--;
	if (--c->share->conns == 0 && c->share->bytes == 0)
		free(map_del(&g->shares, c->addr));
	pthread_mutex_unlock(&g->mu);
	free_conn(c);
}

int wh_guard_reserve(struct wh_guard *g, struct wh_guard_conn *c, size_t n)
{
	int rc = -1;
	pthread_mutex_lock(&g->mu);
	size_t mine = c ? c->share->bytes : 0;
	if (n <= g->budget - g->in_use && (!c || n <= g->per_addr - (mine < g->per_addr ? mine : g->per_addr))) {
		g->in_use += n;
		if (c)
			c->share->bytes += n;
		if (g->in_use > g->peak)
			g->peak = g->in_use;
		rc = 0;
	}
	pthread_mutex_unlock(&g->mu);
	return rc;
}

void wh_guard_release(struct wh_guard *g, struct wh_guard_conn *c, size_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&g->mu);
	g->in_use -= n;
	if (c)
		c->share->bytes -= n;
	pthread_mutex_unlock(&g->mu);
}

void wh_guard_stats(struct wh_guard *g, struct wh_guard_stats *out)
{
	pthread_mutex_lock(&g->mu);
	out->expired = g->expired;
	out->open = g->n_conns;
	out->in_use = g->in_use;
	out->peak = g->peak;
	pthread_mutex_unlock(&g->mu);
}
