/* intern.c - reference-counted shared strings (see intern.h). */
#include "intern.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/map.h"
#include "util/util.h"

struct shared {
	char *s;
	unsigned long refs;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct map strings = MAP_INIT; /* text -> struct shared * */

const char *kf_intern_get(const char *s)
{
	if (!s || !*s)
		return NULL;
	pthread_mutex_lock(&mu);
	struct shared *sh = map_get(&strings, s);
	if (!sh) {
		sh = xcalloc(1, sizeof *sh);
		sh->s = xstrdup(s);
		map_put(&strings, s, sh);
	}
	sh->refs++;
	pthread_mutex_unlock(&mu);
	return sh->s;
}

void kf_intern_put(const char *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&mu);
	struct shared *sh = map_get(&strings, s);
	if (sh && !--sh->refs) {
		map_del(&strings, s);
		free(sh->s);
		free(sh);
		if (!strings.len) /* the last one: give the table back too (and valgrind a clean exit) */
			map_free(&strings, NULL);
	}
	pthread_mutex_unlock(&mu);
}

int kf_intern_set(const char **dst, const char *src)
{
	if (src && !*src)
		src = NULL;
	if ((!*dst && !src) || (*dst && src && !strcmp(*dst, src)))
		return 0;
	const char *n = kf_intern_get(src);
	kf_intern_put(*dst);
	*dst = n;
	return 1;
}

unsigned long kf_intern_count(void)
{
	pthread_mutex_lock(&mu);
	unsigned long n = strings.len;
	pthread_mutex_unlock(&mu);
	return n;
}
