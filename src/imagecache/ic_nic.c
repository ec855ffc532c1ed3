/* ic_nic.c - the compact index of NodeImageCache objects; see ic_nic.h. */
#include "ic_nic.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/intern.h"
#include "util/map.h"
#include "util/util.h"

const struct kube_resource NIC_RESOURCE = { NIC_GROUP, NIC_VERSION, "nodeimagecaches", NIC_KIND, 0 };

/* The strings are shared copies (util/intern.h): a thousand nodes name the same images, digests and
 * owners, so 100,000 entries hold about 100 bytes each rather than 300. */
struct nic_entry {
	const char *image;     /* canonical reference */
	uint8_t in_spec, spec_delete;
	uint8_t state;         /* enum nic_state */
	int64_t spec_gen, observed_gen, delete_since, size;
	time_t last_pull;      /* status lastPullTime, 0 if none */
	const char *digest, *reason, *message; /* NULL when none */
	const char *owners;    /* spec owners as "ns/name\n..." (Pull entries), or NULL */
};

struct nic_node {
	uint64_t version;      /* +1 at every change seen */
	struct nic_entry *e;   /* sorted by image */
	size_t n;
	int has_status;
	int64_t generation, observed_generation;
	char spec_hash[33];
};

struct ic_nic_index {
	pthread_mutex_t mu;
	struct map nodes;      /* name -> struct nic_node * */
	struct map sizes;      /* canonical image -> int64_t * : the last size a node reported */
};

static const char *const state_names[] = { "", "Present", "Pulling", "Failed", "Deleting", "Absent" };

enum nic_state nic_state_parse(const char *s)
{
	for (int i = NIC_PRESENT; i <= NIC_ABSENT; i++)
		if (s && !strcmp(s, state_names[i]))
			return (enum nic_state)i;
	return NIC_NONE;
}

void ic_nic_info_clear(struct ic_nic_info *i)
{
	free(i->digest);
	free(i->reason);
	free(i->message);
	free(i->owners);
	memset(i, 0, sizeof *i);
}

void ic_nic_spec_hash(json_t *spec, char buf[33])
{
	char *text = json_dumps(spec ? spec : json_null(), JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)(text ? text : ""), text ? strlen(text) : 0, md);
	free(text);
	for (int i = 0; i < 16; i++)
		snprintf(buf + 2 * i, 3, "%02x", md[i]);
}

static void node_free(void *p)
{
	struct nic_node *n = p;
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		kf_intern_put(n->e[i].image);
		kf_intern_put(n->e[i].digest);
		kf_intern_put(n->e[i].reason);
		kf_intern_put(n->e[i].message);
		kf_intern_put(n->e[i].owners);
	}
	free(n->e);
	free(n);
}

struct ic_nic_index *ic_nic_index_new(void)
{
	struct ic_nic_index *x = xcalloc(1, sizeof *x);
	pthread_mutex_init(&x->mu, NULL);
	return x;
}

void ic_nic_index_free(struct ic_nic_index *x)
{
	if (!x)
		return;
	map_free(&x->nodes, node_free);
	map_free(&x->sizes, free);
	pthread_mutex_destroy(&x->mu);
	free(x);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct nic_entry *)a)->image, ((const struct nic_entry *)b)->image);
}

static struct nic_entry *find(struct nic_node *n, const char *image)
{
	struct nic_entry key = { .image = image };
	return n && n->n ? bsearch(&key, n->e, n->n, sizeof *n->e, cmp_entry) : NULL;
}

/* Builds the node's entries from the object: spec images first, then status images not in the spec (an
 * agent still reporting what the spec dropped). delete_since carries over from the previous entries. */
static struct nic_node *build(json_t *obj, struct nic_node *prev)
{
	struct nic_node *n = xcalloc(1, sizeof *n);
	json_t *spec_images = kf_jget(obj, "spec", "images", NULL);
	json_t *status_images = kf_jget(obj, "status", "images", NULL);
	size_t cap = json_array_size(spec_images) + json_array_size(status_images);
	n->e = cap ? xcalloc(cap, sizeof *n->e) : NULL;
	n->generation = json_integer_value(kf_jget(obj, "metadata", "generation", NULL));
	json_t *status = json_object_get(obj, "status");
	n->has_status = json_is_object(status);
	n->observed_generation = json_integer_value(json_object_get(status, "observedGeneration"));
	ic_nic_spec_hash(json_object_get(obj, "spec"), n->spec_hash);
	struct map seen = MAP_INIT;
	size_t i;
	json_t *it;
	json_array_foreach(spec_images, i, it) {
		const char *image = json_string_value(json_object_get(it, "image"));
		if (!image || map_has(&seen, image))
			continue;
		map_put(&seen, image, (void *)(uintptr_t)(n->n + 1));
		struct nic_entry *e = &n->e[n->n++];
		e->image = kf_intern_get(image);
		e->in_spec = 1;
		const char *action = json_string_value(json_object_get(it, "action"));
		e->spec_delete = action && !strcmp(action, "Delete");
		e->spec_gen = json_integer_value(json_object_get(it, "pullGeneration"));
		if (!e->spec_delete) {
			struct strbuf o = STRBUF_INIT;
			size_t k;
			json_t *ow;
			json_array_foreach(json_object_get(it, "owners"), k, ow)
				sb_addf(&o, "%s/%s\n", kf_jstr(ow, "namespace", NULL) ? kf_jstr(ow, "namespace", NULL) : "",
					kf_jstr(ow, "name", NULL) ? kf_jstr(ow, "name", NULL) : "");
			e->owners = o.len ? kf_intern_get(o.buf) : NULL;
			sb_release(&o);
		}
		if (e->spec_delete) {
			struct nic_entry *p = find(prev, image);
			e->delete_since = p && p->spec_delete && p->delete_since ? p->delete_since : n->generation;
		}
	}
	json_array_foreach(status_images, i, it) {
		const char *image = json_string_value(json_object_get(it, "image"));
		if (!image)
			continue;
		uintptr_t ix = (uintptr_t)map_get(&seen, image);
		struct nic_entry *e;
		if (ix) {
			e = &n->e[ix - 1];
		} else {
			map_put(&seen, image, (void *)(uintptr_t)(n->n + 1));
			e = &n->e[n->n++];
			e->image = kf_intern_get(image);
		}
		e->state = (uint8_t)nic_state_parse(json_string_value(json_object_get(it, "state")));
		e->observed_gen = json_integer_value(json_object_get(it, "observedPullGeneration"));
		e->size = json_integer_value(json_object_get(it, "sizeBytes"));
		const char *lp = json_string_value(json_object_get(it, "lastPullTime"));
		e->last_pull = 0;
		if (lp)
			kf_parse_rfc3339(lp, &e->last_pull);
		int keep_text = e->state == NIC_FAILED || e->state == NIC_PULLING || e->state == NIC_PRESENT;
		kf_intern_set(&e->digest, json_string_value(json_object_get(it, "digest")));
		kf_intern_set(&e->reason, keep_text ? json_string_value(json_object_get(it, "reason")) : NULL);
		kf_intern_set(&e->message, keep_text ? json_string_value(json_object_get(it, "message")) : NULL);
	}
	map_free(&seen, NULL);
	if (n->n > 1)
		qsort(n->e, n->n, sizeof *n->e, cmp_entry);
	return n;
}

json_t *ic_nic_transform(void *ud, json_t *obj)
{
	struct ic_nic_index *x = ud;
	const char *name = kf_jstr(obj, "metadata", "name", NULL);
	if (name) {
		pthread_mutex_lock(&x->mu);
		struct nic_node *prev = map_get(&x->nodes, name);
		struct nic_node *n = build(obj, prev);
		n->version = prev ? prev->version + 1 : 1;
		for (size_t i = 0; i < n->n; i++) {
			if (n->e[i].size <= 0)
				continue;
			int64_t *sz = map_get(&x->sizes, n->e[i].image);
			if (!sz) {
				sz = xmalloc(sizeof *sz);
				map_put(&x->sizes, n->e[i].image, sz);
			}
			*sz = n->e[i].size;
		}
		node_free(map_put(&x->nodes, name, n));
		pthread_mutex_unlock(&x->mu);
	}
	json_t *m = json_object_get(obj, "metadata");
	json_t *stub = json_pack("{s:s, s:s, s:{s:O*, s:O*, s:O*, s:O*}}", "apiVersion", NIC_API_VERSION, "kind",
				 NIC_KIND, "metadata", "name", json_object_get(m, "name"), "uid",
				 json_object_get(m, "uid"), "resourceVersion", json_object_get(m, "resourceVersion"),
				 "generation", json_object_get(m, "generation"));
	json_decref(obj);
	return stub;
}

void ic_nic_forget(struct ic_nic_index *x, const char *node)
{
	pthread_mutex_lock(&x->mu);
	node_free(map_del(&x->nodes, node));
	pthread_mutex_unlock(&x->mu);
}

void ic_nic_lookup(struct ic_nic_index *x, const char *node, const char *canonical, struct ic_nic_info *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&x->mu);
	struct nic_node *n = map_get(&x->nodes, node);
	if (n) {
		out->exists = 1;
		out->has_status = n->has_status;
	out->generation = n->generation;
		out->observed_generation = n->observed_generation;
		struct nic_entry *e = find(n, canonical);
		if (e) {
			out->in_spec = e->in_spec;
			out->spec_delete = e->spec_delete;
			out->spec_gen = e->spec_gen;
			out->delete_since = e->delete_since;
			out->state = (enum nic_state)e->state;
			out->observed_gen = e->observed_gen;
			out->size = e->size;
			out->digest = e->digest ? xstrdup(e->digest) : NULL;
			out->reason = e->reason ? xstrdup(e->reason) : NULL;
			out->message = e->message ? xstrdup(e->message) : NULL;
			out->owners = e->owners ? xstrdup(e->owners) : NULL;
		}
	}
	pthread_mutex_unlock(&x->mu);
}

void ic_nic_spec_hash_of(struct ic_nic_index *x, const char *node, char *buf, size_t len)
{
	pthread_mutex_lock(&x->mu);
	struct nic_node *n = map_get(&x->nodes, node);
	snprintf(buf, len, "%s", n ? n->spec_hash : "");
	pthread_mutex_unlock(&x->mu);
}

int64_t ic_nic_size_hint(struct ic_nic_index *x, const char *canonical)
{
	pthread_mutex_lock(&x->mu);
	int64_t *sz = map_get(&x->sizes, canonical);
	int64_t v = sz ? *sz : 0;
	pthread_mutex_unlock(&x->mu);
	return v;
}

uint64_t ic_nic_version(struct ic_nic_index *x, const char *node)
{
	pthread_mutex_lock(&x->mu);
	struct nic_node *n = map_get(&x->nodes, node);
	uint64_t v = n ? n->version : 0;
	pthread_mutex_unlock(&x->mu);
	return v;
}

json_t *ic_nic_digests(struct ic_nic_index *x, const char *canonical)
{
	json_t *out = json_object();
	pthread_mutex_lock(&x->mu);
	size_t it = 0;
	const char *name;
	void *v;
	while (map_next(&x->nodes, &it, &name, &v)) {
		struct nic_entry *e = find(v, canonical);
		if (!e || !e->digest || e->state != NIC_PRESENT)
			continue;
		json_t *d = json_object_get(out, e->digest);
		if (!d) {
			d = json_pack("{s:[], s:I}", "nodes", "lastPull", (json_int_t)0);
			json_object_set_new(out, e->digest, d);
		}
		json_array_append_new(json_object_get(d, "nodes"), json_string(name));
		if ((json_int_t)e->last_pull > json_integer_value(json_object_get(d, "lastPull")))
			json_object_set_new(d, "lastPull", json_integer((json_int_t)e->last_pull));
	}
	pthread_mutex_unlock(&x->mu);
	return out;
}
