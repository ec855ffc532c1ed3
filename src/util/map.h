/* map.h - a string-keyed hash map (open addressing, linear probing). Not thread safe: callers lock.
 * Keys are copied and owned by the map; values are opaque pointers owned by the caller (map_free and
 * map_del hand them back through the optional free_value callback). Iteration order is unspecified. */
#ifndef KF_MAP_H
#define KF_MAP_H

#include <stddef.h>

struct map_entry {
	char *key;   /* NULL = empty slot */
	void *value;
	int tomb;    /* deleted slot */
};

struct map {
	struct map_entry *slots;
	size_t cap, len, used; /* used = live + tombstones */
};

#define MAP_INIT { NULL, 0, 0, 0 }

void *map_get(const struct map *m, const char *key);
int map_has(const struct map *m, const char *key);
/* Inserts or replaces; returns the previous value (or NULL). */
void *map_put(struct map *m, const char *key, void *value);
/* Removes; returns the value (or NULL if absent). */
void *map_del(struct map *m, const char *key);
void map_free(struct map *m, void (*free_value)(void *));
/* Iteration: for (size_t i = 0; map_next(m, &i, &k, &v); ) ... ; do not modify the map meanwhile. */
int map_next(const struct map *m, size_t *iter, const char **key, void **value);

#endif
