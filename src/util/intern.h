/* intern.h - shared copies of strings that repeat across entries and nodes (image references, ids,
 * digests, owners): a thousand nodes hold the same hundred images, and one copy each is enough (the
 * agents' tables, agent-sim's, the controller's index of NodeImageCaches). Reference counted; thread safe
 * (one mutex, taken only when a string is taken or given back). */
#ifndef UTIL_INTERN_H
#define UTIL_INTERN_H

/* A shared copy of s (NULL for NULL or ""): release it with kf_intern_put. */
const char *kf_intern_get(const char *s);
void kf_intern_put(const char *s);
/* Points *dst at a shared copy of src, releasing what it held; 1 when the value changed. */
int kf_intern_set(const char **dst, const char *src);
/* Distinct strings held (tests). */
unsigned long kf_intern_count(void);

#endif
