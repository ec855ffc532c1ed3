/* map.c - open-addressing string hash map; see map.h. FNV-1a hashing, capacity a power of two, grown
 * at 70% load (tombstones count), so probes stay short. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct map_entry *find(const struct map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
		struct map_entry *e = &m->slots[i];
		if (!e->key && !e->tomb)
			return NULL;
		if (e->key && !strcmp(e->key, key))
			return e;
	}
}

void *map_get(const struct map *m, const char *key)
{
	struct map_entry *e = find(m, key);
	return e ? e->value : NULL;
}

int map_has(const struct map *m, const char *key)
{
	return find(m, key) != NULL;
}

static void rehash(struct map *m, size_t cap)
{
	struct map_entry *old = m->slots;
	size_t ocap = m->cap;
	m->slots = xcalloc(cap, sizeof *m->slots);
	m->cap = cap;
	m->used = 0;
	for (size_t i = 0; i < ocap; i++) {
		if (!old[i].key)
			continue;
		size_t mask = cap - 1, j = hash(old[i].key) & mask;
		while (m->slots[j].key)
			j = (j + 1) & mask;
		m->slots[j].key = old[i].key;
		m->slots[j].value = old[i].value;
		m->used++;
	}
	free(old);
}

void *map_put(struct map *m, const char *key, void *value)
{
	struct map_entry *e = find(m, key);
	if (e) {
		void *prev = e->value;
		e->value = value;
		return prev;
	}
	if ((m->used + 1) * 10 >= m->cap * 7) {
		size_t cap = m->cap ? m->cap : 8;
		while ((m->len + 1) * 10 >= cap * 5)
			cap *= 2;
		rehash(m, cap);
	}
	size_t mask = m->cap - 1;
	size_t i = hash(key) & mask;
	while (m->slots[i].key)
		i = (i + 1) & mask;
	if (!m->slots[i].tomb)
		m->used++;
	m->slots[i].key = xstrdup(key);
	m->slots[i].value = value;
	m->slots[i].tomb = 0;
	m->len++;
	return NULL;
}

void *map_del(struct map *m, const char *key)
{
	struct map_entry *e = find(m, key);
	if (!e)
		return NULL;
	void *v = e->value;
	free(e->key);
	e->key = NULL;
	e->value = NULL;
	e->tomb = 1;
	m->len--;
	return v;
}

void map_free(struct map *m, void (*free_value)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key) {
			if (free_value)
				free_value(m->slots[i].value);
			free(m->slots[i].key);
		}
	}
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = m->used = 0;
}

int map_next(const struct map *m, size_t *iter, const char **key, void **value)
{
	while (*iter < m->cap) {
		struct map_entry *e = &m->slots[(*iter)++];
		if (e->key) {
			if (key)
				*key = e->key;
			if (value)
				*value = e->value;
			return 1;
		}
	}
	return 0;
}
