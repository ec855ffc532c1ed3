/* kube_events.c - core/v1 Event recorder with client-go's aggregation; see kube_events.h.
 *
 * An event is identified by (involved object's namespace, kind, name, uid; type, reason, message,
 * component), hashed to 64 bits (FNV-1a). A small fixed-size cache (KUBE_EV_CACHE entries, least
 * recently used replaced) remembers, per identity, the Event object created for it and its count. A
 * repeat within 10 minutes PATCHes count and lastTimestamp (merge patch) instead of creating a new Event;
 * if that Event is gone (404: deleted, or expired by the API server's --event-ttl) a new one is created.
 * The cache lock is never held during a request. Failures are logged at most; nothing is returned.
 *
 * Event names are "<object name>.<16 hex digits of the wall clock in ns>", as client-go makes them; the
 * Event lives in the object's namespace, or "default" for cluster-scoped objects (required by the API
 * server's validation of core/v1 Events). */
#include "kube_events.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/util.h"

#define KUBE_EV_CACHE 128
#define KUBE_EV_WINDOW_MS (10 * 60 * 1000)
#define KUBE_EV_MAX_MESSAGE 1024

struct ev_entry {
	uint64_t hash;
	char *ns, *name; /* the Event object; NULL = free slot */
	long count;
	int64_t last_ms; /* monotonic time of the last emission */
	uint64_t used;   /* LRU stamp */
};

struct kube_recorder {
	struct kube_client *c;
	char *component, *host;
	pthread_mutex_t mu;
	struct ev_entry cache[KUBE_EV_CACHE];
	uint64_t clock;
};

struct kube_recorder *kube_recorder_new(struct kube_client *c, const char *component, const char *host)
{
	struct kube_recorder *r = xcalloc(1, sizeof *r);
	r->c = c;
	r->component = xstrdup(component ? component : "kubefledged");
	r->host = host && *host ? xstrdup(host) : NULL;
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

void kube_recorder_free(struct kube_recorder *r)
{
	if (!r)
		return;
	for (int i = 0; i < KUBE_EV_CACHE; i++) {
		free(r->cache[i].ns);
		free(r->cache[i].name);
	}
	pthread_mutex_destroy(&r->mu);
	free(r->component);
	free(r->host);
	free(r);
}

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL; /* field separator */
}

static struct ev_entry *cache_find(struct kube_recorder *r, uint64_t h)
{
	for (int i = 0; i < KUBE_EV_CACHE; i++)
		if (r->cache[i].name && r->cache[i].hash == h)
			return &r->cache[i];
	return NULL;
}

static void cache_put(struct kube_recorder *r, uint64_t h, const char *ns, const char *name, long count)
{
	pthread_mutex_lock(&r->mu);
	struct ev_entry *e = cache_find(r, h);
	if (!e) {
		e = &r->cache[0];
		for (int i = 0; i < KUBE_EV_CACHE; i++) {
			if (!r->cache[i].name) {
				e = &r->cache[i];
				break;
			}
			if (r->cache[i].used < e->used)
				e = &r->cache[i];
		}
	}
	free(e->ns);
	free(e->name);
	e->hash = h;
	e->ns = xstrdup(ns);
	e->name = xstrdup(name);
	e->count = count;
	e->last_ms = kf_now_ms();
	e->used = ++r->clock;
	pthread_mutex_unlock(&r->mu);
}

static void cache_drop(struct kube_recorder *r, uint64_t h)
{
	pthread_mutex_lock(&r->mu);
	struct ev_entry *e = cache_find(r, h);
	if (e) {
		free(e->ns);
		free(e->name);
		e->ns = e->name = NULL;
	}
	pthread_mutex_unlock(&r->mu);
}

/* Cuts s to at most max bytes on a UTF-8 character boundary. */
static void utf8_truncate(char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	s[max] = '\0';
}

static void set_str(json_t *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_set_new(o, k, json_string(v));
}

void kube_event(struct kube_recorder *r, json_t *obj, const char *type, const char *reason, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT, p = STRBUF_INIT;
	struct kube_err err;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&msg, fmt, ap);
	va_end(ap);
	utf8_truncate(msg.buf, KUBE_EV_MAX_MESSAGE);

	const char *oname = kf_jstr(obj, "metadata", "name", NULL);
	const char *ons = kf_jstr(obj, "metadata", "namespace", NULL);
	const char *kind = kf_jstr(obj, "kind", NULL), *uid = kf_jstr(obj, "metadata", "uid", NULL);
	const char *ns = ons && *ons ? ons : "default";
	char *ename = NULL;
	long count = 1;
	json_t *res = NULL, *body = NULL;
	char now[32];
	kf_rfc3339(time(NULL), now);
	if (!oname || !*oname) {
		LOG_WARN("event %s/%s dropped: the involved object has no metadata.name", type, reason);
		goto out;
	}

	uint64_t h = 1469598103934665603ULL;
	h = fnv(h, ns);
	h = fnv(h, kind);
	h = fnv(h, oname);
	h = fnv(h, uid);
	h = fnv(h, type);
	h = fnv(h, reason);
	h = fnv(h, msg.buf);
	h = fnv(h, r->component);

	pthread_mutex_lock(&r->mu);
	struct ev_entry *e = cache_find(r, h);
	if (e && kf_now_ms() - e->last_ms < KUBE_EV_WINDOW_MS) {
		count = ++e->count;
		ename = xstrdup(e->name);
		e->last_ms = kf_now_ms();
		e->used = ++r->clock;
	}
	pthread_mutex_unlock(&r->mu);

	if (ename) {
		json_t *patch = json_pack("{s:I, s:s}", "count", (json_int_t)count, "lastTimestamp", now);
		kube_path(&p, &KUBE_EVENTS, ns, ename, NULL);
		res = kube_patch(r->c, p.buf, patch, "application/merge-patch+json", &err);
		json_decref(patch);
		if (res) {
			LOG_V(4, "event %s/%s on %s/%s: count %ld", type, reason, ns, oname, count);
			goto out;
		}
		if (!kube_err_is_not_found(&err)) {
			LOG_WARN("event %s %s on %s/%s: %s", type, reason, ns, oname, err.msg);
			goto out;
		}
		cache_drop(r, h); /* the Event is gone: start a new one */
		free(ename);
		sb_reset(&p);
	}

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	size_t olen = strlen(oname);
	if (olen > 253 - 17)
		olen = 253 - 17;
	ename = xasprintf("%.*s.%016llx", (int)olen, oname,
			  (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec);
	json_t *inv = json_object();
	set_str(inv, "apiVersion", kf_jstr(obj, "apiVersion", NULL));
	set_str(inv, "kind", kind);
	set_str(inv, "name", oname);
	set_str(inv, "namespace", ons);
	set_str(inv, "uid", uid);
	set_str(inv, "resourceVersion", kf_jstr(obj, "metadata", "resourceVersion", NULL));
	json_t *src = json_pack("{s:s}", "component", r->component);
	set_str(src, "host", r->host);
	body = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:s}", "apiVersion", "v1",
			 "kind", "Event", "metadata", "name", ename, "namespace", ns, "involvedObject", inv, "reason",
			 reason, "message", msg.buf, "type", type, "source", src, "firstTimestamp", now,
			 "lastTimestamp", now, "count", 1, "reportingComponent", r->component);
	if (!body) {
		LOG_WARN("event %s %s on %s/%s: cannot encode (invalid UTF-8?)", type, reason, ns, oname);
		goto out;
	}
	set_str(body, "reportingInstance", r->host);
	kube_path(&p, &KUBE_EVENTS, ns, NULL, NULL);
	res = kube_create(r->c, p.buf, body, &err);
	if (!res) {
		LOG_WARN("event %s %s on %s/%s: %s", type, reason, ns, oname, err.msg);
		goto out;
	}
	cache_put(r, h, ns, ename, 1);
	LOG_V(4, "event %s/%s on %s/%s: created %s", type, reason, ns, oname, ename);
out:
	free(ename);
	json_decref(res);
	json_decref(body);
	sb_release(&p);
	sb_release(&msg);
}
