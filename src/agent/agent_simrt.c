/* agent_simrt.c - the simulated runtime (see agent_simrt.h). */
#include "agent_simrt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/imageref.h"
#include "util/map.h"
#include "util/util.h"
#include "util/version.h"

#define PINNED ((void *)2)
#define STORED ((void *)1)

struct sim {
	pthread_mutex_t mu;
	struct map store;          /* canonical reference -> STORED or PINNED */
	struct agent_simrt_opts o;
	char *fail;                /* substring that fails pulls */
	int fail_code;
	char *fail_message;        /* NULL = containerd's not-found text */
	char **containers;         /* images used by containers */
	unsigned char *spent;      /* per container: an exited "imagepuller" (a job-mode pull pod's) */
	size_t n_containers;
	uint64_t pulls;
	uint64_t used_fixed;
	int has_used_fixed;
};

/* A 64-hex-digit digest derived from s (FNV-1a, four lanes). */
static void fake_digest(const char *s, unsigned salt, char out[72])
{
	strcpy(out, "sha256:");
	for (unsigned lane = 0; lane < 4; lane++) {
		uint64_t h = 1469598103934665603ull ^ (salt * 4 + lane + 1) * 0x9E3779B97F4A7C15ull;
		for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
			h ^= *p;
			h *= 1099511628211ull;
		}
		snprintf(out + 7 + lane * 16, 17, "%016llx", (unsigned long long)h);
	}
}

/* The canonical form of ref, or NULL (invalid). malloc'd. */
static char *canon(const char *ref)
{
	struct imageref r;
	struct strbuf sb = STRBUF_INIT, e = STRBUF_INIT;
	int bad = imageref_parse(ref, &r, &e);
	sb_release(&e);
	if (bad)
		return NULL;
	imageref_canonical(&r, &sb);
	return sb_detach(&sb);
}

static void fill_image(const char *ref, int pinned, uint64_t size, struct cri_image *img)
{
	char d[72];
	memset(img, 0, sizeof *img);
	fake_digest(ref, 0, d);
	img->id = xstrdup(d);
	const char *at = strchr(ref, '@');
	if (at) {
		img->repo_digests = xcalloc(1, sizeof *img->repo_digests);
		img->repo_digests[0] = xstrdup(ref);
		img->n_repo_digests = 1;
	} else {
		struct imageref r;
		struct strbuf e = STRBUF_INIT, name = STRBUF_INIT;
		imageref_parse(ref, &r, &e);
		imageref_name(&r, &name);
		fake_digest(ref, 1, d);
		img->repo_tags = xcalloc(1, sizeof *img->repo_tags);
		img->repo_tags[0] = xstrdup(ref);
		img->n_repo_tags = 1;
		img->repo_digests = xcalloc(1, sizeof *img->repo_digests);
		img->repo_digests[0] = xasprintf("%s@%s", name.buf, d);
		img->n_repo_digests = 1;
		sb_release(&e);
		sb_release(&name);
	}
	img->size = size;
	img->pinned = pinned;
}

static uint64_t each(struct sim *s)
{
	return s->o.image_bytes_each ? s->o.image_bytes_each : 1024 * 1024;
}

static int sim_list(void *ctx, struct cri_image_list *out, struct strbuf *err)
{
	(void)err;
	struct sim *s = ctx;
	pthread_mutex_lock(&s->mu);
	out->items = xcalloc(s->store.len + 1, sizeof *out->items);
	out->n = 0;
	const char *k;
	void *v;
	for (size_t it = 0; map_next(&s->store, &it, &k, &v);)
		fill_image(k, v == PINNED, each(s), &out->items[out->n++]);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int sim_status(void *ctx, const char *ref, struct cri_image *out, int *present, struct strbuf *err)
{
	struct sim *s = ctx;
	memset(out, 0, sizeof *out);
	*present = 0;
	char *c = canon(ref);
	if (!c) {
		sb_addf(err, "rpc error: code = InvalidArgument desc = invalid reference \"%s\"", ref);
		return CRI_INVALID_ARGUMENT;
	}
	pthread_mutex_lock(&s->mu);
	void *v = map_get(&s->store, c);
	if (v) {
		fill_image(c, v == PINNED, each(s), out);
		*present = 1;
	}
	pthread_mutex_unlock(&s->mu);
	free(c);
	return 0;
}

static int sim_pull(void *ctx, const char *ref, const struct cri_auth *auth, int64_t timeout_ms, char **image_id,
		    struct strbuf *err)
{
	(void)auth;
	(void)timeout_ms;
	struct sim *s = ctx;
	if (image_id)
		*image_id = NULL;
	if (s->o.pull_latency_ms > 0)
		kf_sleep_ms(s->o.pull_latency_ms);
	char *c = canon(ref);
	if (!c) {
		sb_addf(err, "rpc error: code = InvalidArgument desc = invalid reference \"%s\"", ref);
		return CRI_INVALID_ARGUMENT;
	}
	pthread_mutex_lock(&s->mu);
	s->pulls++;
	if (s->fail && *s->fail && strstr(c, s->fail)) {
		int code = s->fail_code ? s->fail_code : CRI_NOT_FOUND;
		if (s->fail_message)
			sb_adds(err, s->fail_message);
		else
			sb_addf(err, "rpc error: code = NotFound desc = failed to pull and unpack image \"%s\": failed "
				     "to resolve reference \"%s\": %s: not found", c, c, c);
		pthread_mutex_unlock(&s->mu);
		free(c);
		return code;
	}
	if (!map_get(&s->store, c))
		map_put(&s->store, c, STORED);
	if (image_id) {
		char d[72];
		fake_digest(c, 0, d);
		*image_id = xstrdup(d);
	}
	pthread_mutex_unlock(&s->mu);
	free(c);
	return 0;
}

static int sim_remove(void *ctx, const char *ref, struct strbuf *msg, struct strbuf *err)
{
	struct sim *s = ctx;
	char *c = canon(ref);
	if (!c) {
		sb_addf(err, "invalid image reference \"%s\"", ref);
		return CRI_EINVAL;
	}
	pthread_mutex_lock(&s->mu);
	if (map_del(&s->store, c))
		sb_addf(msg, "deleted %s", c);
	else
		sb_addf(msg, "image %s not present", c);
	pthread_mutex_unlock(&s->mu);
	free(c);
	return 0;
}

static int sim_fs(void *ctx, struct agent_fs_info *out, struct strbuf *err)
{
	(void)err;
	struct sim *s = ctx;
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&s->mu);
	out->image_bytes = s->store.len * each(s);
	out->has_image_bytes = 1;
	out->capacity_bytes = s->o.capacity_bytes ? s->o.capacity_bytes : 100ull << 30;
	out->used_bytes = s->has_used_fixed ? s->used_fixed : out->image_bytes;
	out->has_capacity = 1;
	pthread_mutex_unlock(&s->mu);
	out->mountpoint = xstrdup("/var/lib/simulated");
	return 0;
}

static int sim_containers(void *ctx, struct cri_container_list *out, struct strbuf *err)
{
	(void)err;
	struct sim *s = ctx;
	pthread_mutex_lock(&s->mu);
	out->items = xcalloc(s->n_containers + 1, sizeof *out->items);
	out->n = s->n_containers;
	for (size_t i = 0; i < s->n_containers; i++) {
		struct cri_container *k = &out->items[i];
		k->id = xasprintf("sim-%zu", i);
		k->name = s->spent[i] ? xstrdup("imagepuller") : xasprintf("c%zu", i);
		k->image = xstrdup(s->containers[i]);
		char d[72];
		char *c = canon(s->containers[i]);
		fake_digest(c ? c : s->containers[i], 0, d);
		free(c);
		k->image_ref = xstrdup(d);
		k->pod_name = xasprintf("pod-%zu", i);
		k->pod_namespace = xstrdup("default");
		k->state = s->spent[i] ? CRI_CONTAINER_EXITED : CRI_CONTAINER_RUNNING;
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int sim_pin(void *ctx, const char *ref, int on, struct strbuf *err)
{
	struct sim *s = ctx;
	char *c = canon(ref);
	if (!c) {
		sb_addf(err, "invalid image reference \"%s\"", ref);
		return CRI_EINVAL;
	}
	pthread_mutex_lock(&s->mu);
	int rc = 0;
	if (map_get(&s->store, c))
		map_put(&s->store, c, on ? PINNED : STORED);
	else {
		sb_addf(err, "rpc error: code = NotFound desc = image \"%s\": not found", c);
		rc = CRI_NOT_FOUND;
	}
	pthread_mutex_unlock(&s->mu);
	free(c);
	return rc;
}

static void sim_free(void *ctx)
{
	struct sim *s = ctx;
	map_free(&s->store, NULL);
	for (size_t i = 0; i < s->n_containers; i++)
		free(s->containers[i]);
	free(s->containers);
	free(s->spent);
	free(s->fail);
	free(s->fail_message);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static const struct agent_runtime_ops sim_ops = { sim_list, sim_status, sim_pull, sim_remove, sim_fs,
						  sim_containers, NULL, sim_free };
static const struct agent_runtime_ops sim_pin_ops = { sim_list, sim_status, sim_pull, sim_remove, sim_fs,
						      sim_containers, sim_pin, sim_free };

struct agent_runtime *agent_simrt_new(const struct agent_simrt_opts *o)
{
	struct sim *s = xcalloc(1, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	s->o = *o;
	s->o.fail_substring = NULL;
	s->fail = o->fail_substring && *o->fail_substring ? xstrdup(o->fail_substring) : NULL;
	return agent_runtime_new(o->pinning ? &sim_pin_ops : &sim_ops, s, "simulated", kf_version(),
				 "simulated", "", o->pinning ? AGENT_PIN_LABEL : AGENT_PIN_UNSUPPORTED);
}

static struct sim *sim_of(struct agent_runtime *rt)
{
	return rt->ctx;
}

void agent_simrt_drop(struct agent_runtime *rt, const char *ref)
{
	struct strbuf m = STRBUF_INIT, e = STRBUF_INIT;
	sim_remove(sim_of(rt), ref, &m, &e);
	sb_release(&m);
	sb_release(&e);
}

void agent_simrt_put(struct agent_runtime *rt, const char *ref)
{
	struct sim *s = sim_of(rt);
	char *c = canon(ref);
	if (!c)
		return;
	pthread_mutex_lock(&s->mu);
	map_put(&s->store, c, STORED);
	pthread_mutex_unlock(&s->mu);
	free(c);
}

int agent_simrt_has(struct agent_runtime *rt, const char *ref)
{
	struct sim *s = sim_of(rt);
	char *c = canon(ref);
	pthread_mutex_lock(&s->mu);
	int r = c && map_get(&s->store, c) != NULL;
	pthread_mutex_unlock(&s->mu);
	free(c);
	return r;
}

uint64_t agent_simrt_pulls(struct agent_runtime *rt)
{
	struct sim *s = sim_of(rt);
	pthread_mutex_lock(&s->mu);
	uint64_t n = s->pulls;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void add_container(struct agent_runtime *rt, const char *image, int spent)
{
	struct sim *s = sim_of(rt);
	pthread_mutex_lock(&s->mu);
	s->containers = xrealloc(s->containers, (s->n_containers + 1) * sizeof *s->containers);
	s->spent = xrealloc(s->spent, s->n_containers + 1);
	s->spent[s->n_containers] = (unsigned char)spent;
	s->containers[s->n_containers++] = xstrdup(image);
	pthread_mutex_unlock(&s->mu);
}

void agent_simrt_add_container(struct agent_runtime *rt, const char *image)
{
	add_container(rt, image, 0);
}

void agent_simrt_add_spent_puller(struct agent_runtime *rt, const char *image)
{
	add_container(rt, image, 1);
}

void agent_simrt_set_pinned(struct agent_runtime *rt, const char *ref, int pinned)
{
	struct sim *s = sim_of(rt);
	char *c = canon(ref);
	if (!c)
		return;
	pthread_mutex_lock(&s->mu);
	if (map_get(&s->store, c))
		map_put(&s->store, c, pinned ? PINNED : STORED);
	pthread_mutex_unlock(&s->mu);
	free(c);
}

void agent_simrt_set_fail(struct agent_runtime *rt, const char *substring, int code, const char *message)
{
	struct sim *s = sim_of(rt);
	pthread_mutex_lock(&s->mu);
	free(s->fail);
	free(s->fail_message);
	s->fail = substring && *substring ? xstrdup(substring) : NULL;
	s->fail_code = code;
	s->fail_message = message ? xstrdup(message) : NULL;
	pthread_mutex_unlock(&s->mu);
}

void agent_simrt_set_used(struct agent_runtime *rt, uint64_t used_bytes)
{
	struct sim *s = sim_of(rt);
	pthread_mutex_lock(&s->mu);
	s->used_fixed = used_bytes;
	s->has_used_fixed = 1;
	pthread_mutex_unlock(&s->mu);
}
