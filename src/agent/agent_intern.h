/* agent_intern.h - shared copies of strings that repeat across entries and nodes (image ids, repo
 * digests, references): agent-sim's thousand nodes hold the same hundred images, and one copy each is
 * enough. Reference counted; thread safe (one mutex, taken only when an entry's image changes). */
#ifndef AGENT_INTERN_H
#define AGENT_INTERN_H

/* A shared copy of s (NULL for NULL or ""): release it with agent_intern_put. */
const char *agent_intern_get(const char *s);
void agent_intern_put(const char *s);
/* Points *dst at a shared copy of src, releasing what it held; 1 when the value changed. */
int agent_intern_set(const char **dst, const char *src);
/* Distinct strings held (tests). */
unsigned long agent_intern_count(void);

#endif
