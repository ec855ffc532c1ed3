/* ic_state.c - the per-cache state table of the controller: what it remembers about each ImageCache
 * between syncs (the running operation, owed annotation removals, nodes that joined, our last write).
 * Callers hold ctl->mu. */
#include <stdlib.h>

#include "ic_controller_int.h"

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
