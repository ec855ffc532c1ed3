/* ic_state.c - what the controller remembers between syncs: the per-cache state table (the running
 * operation, owed annotation removals, nodes that joined, our last write; callers hold ctl->mu), and the
 * recent-actions table (what a pull or delete did on a node lately; it takes ctl->mu itself). */
#include <stdlib.h>
#include <string.h>

#include "ic_controller_int.h"
#include "util/util.h"

struct ic_cache_state *ic_state_get(struct ic_controller *ctl, const char *key, int create)
{
	struct ic_cache_state *st = map_get(&ctl->states, key);
	if (!st && create) {
		st = xcalloc(1, sizeof *st);
		map_put(&ctl->states, key, st);
	}
	return st;
}

void ic_state_free(void *p)
{
	struct ic_cache_state *st = p;
	if (!st)
		return;
	free(st->uid);
	free(st->written_rv);
	map_free(&st->new_nodes, NULL);
	map_free(&st->gone_nodes, NULL);
	free(st);
}

void ic_state_del(struct ic_controller *ctl, const char *key)
{
	ic_state_free(map_del(&ctl->states, key));
}

/* ---- what we did lately ---- */

void ic_recent_note(struct ic_controller *ctl, const char *node, const char *canonical, int present)
{
	struct strbuf key = STRBUF_INIT;
	sb_addf(&key, "%s\n%s", node, canonical);
	int64_t now = kf_now_ms();
	pthread_mutex_lock(&ctl->mu);
	struct ic_recent *e = map_get(&ctl->recent, key.buf);
	if (!e) {
		/* drop expired entries now and then, so the table stays as small as the recent past */
		if (ctl->recent.len >= 1024 && (ctl->recent.len & 255) == 0) {
			size_t it = 0;
			const char *k;
			void *v;
			struct strbuf old = STRBUF_INIT;
			while (map_next(&ctl->recent, &it, &k, &v))
				if (now - ((struct ic_recent *)v)->ms > IC_RECENT_MS)
					sb_add(&old, k, strlen(k) + 1);
			for (size_t off = 0; off < old.len; off += strlen(old.buf + off) + 1)
				free(map_del(&ctl->recent, old.buf + off));
			sb_release(&old);
		}
		e = xcalloc(1, sizeof *e);
		map_put(&ctl->recent, key.buf, e);
	}
	e->ms = now;
	e->present = present;
	pthread_mutex_unlock(&ctl->mu);
	sb_release(&key);
}

int ic_recent_lookup(void *ud, const char *node, const char *canonical_image)
{
	struct ic_controller *ctl = ud;
	char *key = xasprintf("%s\n%s", node, canonical_image);
	int r = -1;
	pthread_mutex_lock(&ctl->mu);
	struct ic_recent *e = map_get(&ctl->recent, key);
	if (e && kf_now_ms() - e->ms <= IC_RECENT_MS)
		r = e->present;
	pthread_mutex_unlock(&ctl->mu);
	free(key);
	return r;
}
