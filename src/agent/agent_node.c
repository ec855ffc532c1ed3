/* agent_node.c - one node's entries: spec, observation, plan, results (see agent_node.h). The delete
 * guard and the status rendering are in agent_status.c. */
#include "agent_intern.h"
#include "agent_node_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/imageref.h"
#include "util/log.h"
#include "util/map.h"
#include "util/util.h"

const char *agent_state_name(enum agent_state s)
{
	static const char *names[] = { "Absent", "Present", "Pulling", "Failed", "Deleting" };
	return s <= AGENT_DELETING ? names[s] : "Unknown";
}

uint64_t agent_hash(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

char *agent_registry_of(const char *ref)
{
	struct imageref r;
	struct strbuf e = STRBUF_INIT;
	int bad = imageref_parse(ref, &r, &e);
	sb_release(&e);
	return xstrdup(bad ? "" : r.domain);
}

/* ---- entries ---- */

static void secrets_free(struct agent_secret_ref *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].ns);
		free(s[i].name);
	}
	free(s);
}

static struct agent_secret_ref *secrets_dup(const struct agent_secret_ref *s, size_t n)
{
	if (!n)
		return NULL;
	struct agent_secret_ref *r = xcalloc(n, sizeof *r);
	for (size_t i = 0; i < n; i++) {
		r[i].ns = xstrdup(s[i].ns);
		r[i].name = xstrdup(s[i].name);
	}
	return r;
}

int agent_set_str(char **dst, const char *src)
{
	if (src && !*src)
		src = NULL;
	if ((!*dst && !src) || (*dst && src && !strcmp(*dst, src)))
		return 0;
	free(*dst);
	*dst = src ? xstrdup(src) : NULL;
	return 1;
}

static void entry_free(struct agent_entry *e)
{
	if (!e)
		return;
	agent_intern_put(e->key);
	free(e->image);
	secrets_free(e->secrets, e->n_secrets);
	agent_intern_put(e->image_id);
	agent_intern_put(e->digest);
	free(e->reason);
	free(e->cause);
	free(e->message);
	free(e);
}

const char *agent_entry_image(const struct agent_entry *e)
{
	return e->image ? e->image : e->key;
}

/* Index of key, or -(insertion point) - 1. */
static long find(const struct agent_node *n, const char *key)
{
	size_t lo = 0, hi = n->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(n->e[mid]->key, key);
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

struct agent_entry *agent_node_get(struct agent_node *n, const char *key)
{
	long i = find(n, key);
	return i >= 0 ? n->e[i] : NULL;
}

int agent_entry_set_state(struct agent_entry *e, enum agent_state s, const char *reason, const char *cause,
			  const char *message)
{
	int changed = 0;
	if (e->state != s) {
		e->state = s;
		e->last_transition = time(NULL);
		changed = 1;
	}
	changed |= agent_set_str(&e->reason, reason);
	changed |= agent_set_str(&e->cause, cause);
	changed |= agent_set_str(&e->message, message);
	return changed;
}

struct agent_node *agent_node_new(const char *name, struct agent_runtime *rt)
{
	struct agent_node *n = xcalloc(1, sizeof *n);
	n->name = xstrdup(name);
	n->rt = rt;
	pthread_mutex_init(&n->mu, NULL);
	return n;
}

void agent_node_free(struct agent_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		entry_free(n->e[i]);
	free(n->e);
	free(n->fs.mountpoint);
	agent_sched_node_release(&n->sched);
	agent_runtime_free(n->rt);
	pthread_mutex_destroy(&n->mu);
	free(n->name);
	free(n);
}

/* ---- spec ---- */

/* A parsed spec entry, before merging into the table. */
struct spec_item {
	char *key;
	const char *image;
	enum agent_action action;
	int64_t gen;
	uint64_t size_hint;
	int owners;
	struct agent_secret_ref *secrets;
	size_t n_secrets;
	int invalid;
};

static int cmp_item(const void *a, const void *b)
{
	const struct spec_item *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return (int)x->action - (int)y->action; /* Pull first */
}

static uint64_t spec_sig(const struct spec_item *it)
{
	uint64_t h = agent_hash(AGENT_HASH_INIT, &it->action, sizeof it->action);
	h = agent_hash(h, &it->gen, sizeof it->gen);
	for (size_t i = 0; i < it->n_secrets; i++) {
		h = agent_hash(h, it->secrets[i].ns, strlen(it->secrets[i].ns) + 1);
		h = agent_hash(h, it->secrets[i].name, strlen(it->secrets[i].name) + 1);
	}
	return h;
}

static void add_secret(struct spec_item *it, const char *ns, const char *name)
{
	for (size_t i = 0; i < it->n_secrets; i++)
		if (!strcmp(it->secrets[i].ns, ns) && !strcmp(it->secrets[i].name, name))
			return;
	it->secrets = xrealloc(it->secrets, (it->n_secrets + 1) * sizeof *it->secrets);
	it->secrets[it->n_secrets].ns = xstrdup(ns);
	it->secrets[it->n_secrets].name = xstrdup(name);
	it->n_secrets++;
}

static void parse_item(json_t *o, struct spec_item *it)
{
	memset(it, 0, sizeof *it);
	const char *image = json_string_value(json_object_get(o, "image"));
	it->image = image ? image : "";
	struct imageref r;
	struct strbuf e = STRBUF_INIT, canon = STRBUF_INIT;
	if (imageref_parse(it->image, &r, &e) == 0) {
		imageref_canonical(&r, &canon);
		it->key = sb_detach(&canon);
	} else {
		it->key = xstrdup(it->image);
		it->invalid = 1;
	}
	sb_release(&e);
	const char *action = json_string_value(json_object_get(o, "action"));
	it->action = action && !strcmp(action, "Delete") ? AGENT_DELETE : AGENT_PULL;
	json_int_t g = json_integer_value(json_object_get(o, "pullGeneration"));
	it->gen = g > 0 ? g : 0;
	json_int_t sz = json_integer_value(json_object_get(o, "sizeHint"));
	it->size_hint = sz > 0 ? (uint64_t)sz : 0;
	it->owners = (int)json_array_size(json_object_get(o, "owners"));
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(o, "pullSecrets"), i, s) {
		const char *ns = json_string_value(json_object_get(s, "namespace"));
		const char *name = json_string_value(json_object_get(s, "name"));
		if (ns && name && *ns && *name)
			add_secret(it, ns, name);
	}
}

/* Seeds entries from a previous run's status (restart safety). Called locked, once. */
static void seed(struct agent_node *n, json_t *status)
{
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(status, "images"), i, o) {
		const char *image = json_string_value(json_object_get(o, "image"));
		const char *state = json_string_value(json_object_get(o, "state"));
		if (!image || !state)
			continue;
		struct imageref r;
		struct strbuf e = STRBUF_INIT, canon = STRBUF_INIT;
		int bad = imageref_parse(image, &r, &e);
		if (!bad)
			imageref_canonical(&r, &canon);
		struct agent_entry *en = agent_node_get(n, bad ? image : canon.buf);
		sb_release(&e);
		sb_release(&canon);
		if (!en || en->invalid)
			continue;
		json_int_t og = json_integer_value(json_object_get(o, "observedPullGeneration"));
		time_t t;
		if (kf_parse_rfc3339(json_string_value(json_object_get(o, "lastPullTime")) ?
					     json_string_value(json_object_get(o, "lastPullTime")) : "",
				     &t) == 0)
			en->last_pull = t;
		if (kf_parse_rfc3339(json_string_value(json_object_get(o, "lastTransitionTime")) ?
					     json_string_value(json_object_get(o, "lastTransitionTime")) : "",
				     &t) == 0)
			en->last_transition = t;
		en->observed_gen = og;
		if (!strcmp(state, "Present") && en->action == AGENT_PULL) {
			en->pulled_gen = og;
			en->state = AGENT_PRESENT;
		} else if (!strcmp(state, "Failed")) {
			/* failed for good at that generation: stays failed until the spec asks again */
			const char *reason = json_string_value(json_object_get(o, "reason"));
			en->state = AGENT_FAILED;
			agent_set_str(&en->reason, reason);
			agent_set_str(&en->cause, json_string_value(json_object_get(o, "cause")));
			agent_set_str(&en->message, json_string_value(json_object_get(o, "message")));
			json_int_t at = json_integer_value(json_object_get(o, "attempts"));
			en->attempts = at > 0 ? (int)at : 0;
			en->failed_sig = en->spec_sig;
		}
	}
}

int agent_node_set_spec(struct agent_node *n, json_t *nic, int with_status)
{
	json_t *images = nic ? kf_jget(nic, "spec", NULL) : NULL;
	images = images ? json_object_get(images, "images") : NULL;
	size_t ni = json_array_size(images);
	struct spec_item *items = xcalloc(ni + 1, sizeof *items);
	size_t i;
	json_t *o;
	json_array_foreach(images, i, o)
		parse_item(o, &items[i]);
	qsort(items, ni, sizeof *items, cmp_item);

	pthread_mutex_lock(&n->mu);
	int changed = 0;
	json_int_t gen = nic ? json_integer_value(kf_jget(nic, "metadata", "generation", NULL)) : 0;
	if (!!nic != n->have_nic || gen != n->generation)
		changed = 1;
	n->have_nic = !!nic;
	n->generation = gen;
	/* Mark all out of spec; entries named again come back in. */
	for (size_t k = 0; k < n->n; k++)
		n->e[k]->in_spec = 0;
	for (size_t k = 0; k < ni; k++) {
		struct spec_item *it = &items[k];
		if (k > 0 && !strcmp(items[k - 1].key, it->key)) {
			/* Same image written twice: one entry (Pull sorted first and wins); owners and secrets
			 * merge. */
			struct agent_entry *prev = agent_node_get(n, it->key);
			if (prev && it->action == prev->action) {
				prev->owners += it->owners;
				for (size_t s = 0; s < it->n_secrets; s++) {
					int dup = 0;
					for (size_t t = 0; t < prev->n_secrets; t++)
						dup |= !strcmp(prev->secrets[t].ns, it->secrets[s].ns) &&
						       !strcmp(prev->secrets[t].name, it->secrets[s].name);
					if (!dup) {
						prev->secrets = xrealloc(prev->secrets,
									 (prev->n_secrets + 1) * sizeof *prev->secrets);
						prev->secrets[prev->n_secrets].ns = xstrdup(it->secrets[s].ns);
						prev->secrets[prev->n_secrets].name = xstrdup(it->secrets[s].name);
						prev->n_secrets++;
					}
				}
			}
			continue;
		}
		long idx = find(n, it->key);
		struct agent_entry *e;
		if (idx >= 0) {
			e = n->e[idx];
		} else {
			size_t at = (size_t)(-idx - 1);
			if (n->n == n->cap) {
				n->cap = n->cap ? n->cap * 2 : 16;
				n->e = xrealloc(n->e, n->cap * sizeof *n->e);
			}
			memmove(&n->e[at + 1], &n->e[at], (n->n - at) * sizeof *n->e);
			e = xcalloc(1, sizeof *e);
			e->key = agent_intern_get(it->key);
			e->state = AGENT_ABSENT;
			n->e[at] = e;
			n->n++;
			changed = 1;
		}
		e->in_spec = 1;
		if (strcmp(it->image, it->key))
			agent_set_str(&e->image, it->image);
		else {
			free(e->image);
			e->image = NULL;
		}
		uint64_t sig = spec_sig(it);
		if (sig != e->spec_sig || e->action != it->action) {
			changed = 1;
			e->retry_at_ms = 0; /* asked again: no waiting on an earlier failure's backoff */
		}
		e->action = it->action;
		e->pull_gen = it->gen;
		e->size_hint = it->size_hint;
		e->owners = it->owners;
		secrets_free(e->secrets, e->n_secrets);
		e->secrets = it->secrets;
		e->n_secrets = it->n_secrets;
		it->secrets = NULL;
		it->n_secrets = 0;
		e->spec_sig = sig;
		e->invalid = it->invalid;
	}
	/* Drop what left the spec, unless a job still refers to it (dropped when it finishes). */
	size_t w = 0;
	for (size_t k = 0; k < n->n; k++) {
		if (!n->e[k]->in_spec && !n->e[k]->busy) {
			entry_free(n->e[k]);
			changed = 1;
		} else {
			n->e[w++] = n->e[k];
		}
	}
	n->n = w;
	if (with_status && !n->seeded) {
		json_t *st = nic ? json_object_get(nic, "status") : NULL;
		if (st)
			seed(n, st);
		n->seeded = 1;
	}
	if (changed) {
		n->spec_changed = 1;
		n->seq++;
	}
	pthread_mutex_unlock(&n->mu);
	for (size_t k = 0; k < ni; k++) {
		free(items[k].key);
		secrets_free(items[k].secrets, items[k].n_secrets);
	}
	free(items);
	return changed;
}

/* ---- observation ---- */

const char *agent_repo_digest(const char *key, const struct cri_image *img)
{
	struct imageref want, have;
	struct strbuf e = STRBUF_INIT;
	const char *found = NULL;
	if (imageref_parse(key, &want, &e) == 0) {
		if (want.digest[0]) {
			sb_release(&e);
			return strchr(key, '@') + 1;
		}
		for (size_t i = 0; i < img->n_repo_digests && !found; i++) {
			sb_reset(&e);
			if (imageref_parse(img->repo_digests[i], &have, &e) == 0 && !strcmp(have.domain, want.domain) &&
			    !strcmp(have.path, want.path) && have.digest[0])
				found = strchr(img->repo_digests[i], '@') + 1;
		}
	}
	sb_release(&e);
	return found;
}

/* Records what the runtime says about e (img NULL = absent). Called locked. Returns 1 on a change. */
static int observe_entry(struct agent_entry *e, const struct cri_image *img, struct agent_observe_events *ev)
{
	if (!img) {
		if (e->present && e->state == AGENT_PRESENT && e->action == AGENT_PULL && !e->busy) {
			e->self_heal = 1;
			if (ev)
				ev->self_heals++;
		}
		int was = e->present;
		e->present = 0;
		return was;
	}
	int changed = !e->present || e->size != img->size || e->pinned != img->pinned;
	e->present = 1;
	changed |= agent_intern_set(&e->image_id, img->id);
	changed |= agent_intern_set(&e->digest, agent_repo_digest(e->key, img));
	e->size = img->size;
	e->pinned = img->pinned;
	return changed;
}

int agent_node_observe(struct agent_node *n, const struct agent_node_config *cfg, int64_t now_ms,
		       struct agent_observe_events *ev, struct strbuf *err)
{
	pthread_mutex_lock(&n->mu);
	int due = n->spec_changed || !n->next_poll_ms || now_ms >= n->next_poll_ms;
	uint64_t epoch = n->epoch;
	pthread_mutex_unlock(&n->mu);
	if (!due)
		return 0;
	struct cri_image_list l = { 0 };
	int rc = n->rt->ops->list(n->rt->ctx, &l, err);
	if (rc)
		return -1;
	/* reference -> image, every tag and digest normalised */
	struct map refs = MAP_INIT;
	struct strbuf canon = STRBUF_INIT, e = STRBUF_INIT;
	for (size_t i = 0; i < l.n; i++) {
		for (int pass = 0; pass < 2; pass++) {
			char **v = pass ? l.items[i].repo_digests : l.items[i].repo_tags;
			size_t nv = pass ? l.items[i].n_repo_digests : l.items[i].n_repo_tags;
			for (size_t k = 0; k < nv; k++) {
				struct imageref r;
				sb_reset(&e);
				sb_reset(&canon);
				if (imageref_parse(v[k], &r, &e))
					continue;
				imageref_canonical(&r, &canon);
				map_put(&refs, canon.buf, &l.items[i]);
			}
		}
	}
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->n; i++)
		if (n->e[i]->epoch <= epoch) /* a pull or delete that ended during the listing knows better */
			n->seq += observe_entry(n->e[i], map_get(&refs, n->e[i]->key), ev);
	n->spec_changed = 0;
	n->next_poll_ms = now_ms + cfg->poll_ms;
	pthread_mutex_unlock(&n->mu);
	map_free(&refs, NULL);
	sb_release(&canon);
	sb_release(&e);
	cri_image_list_free(&l);
	return 1;
}

/* ---- plan ---- */

void agent_pull_job_free(struct agent_pull_job *j)
{
	if (!j)
		return;
	free(j->base.registry);
	free(j->key);
	free(j->image);
	secrets_free(j->secrets, j->n_secrets);
	free(j);
}

void agent_plan_clear(struct agent_plan *p)
{
	for (size_t i = 0; i < p->n_pulls; i++)
		agent_pull_job_free(p->pulls[i]);
	free(p->pulls);
	for (size_t i = 0; i < p->n_deletes; i++)
		free(p->deletes[i]);
	free(p->deletes);
	memset(p, 0, sizeof *p);
}

static void wake_at(struct agent_plan *p, int64_t t)
{
	if (t > 0 && (!p->wake_ms || t < p->wake_ms))
		p->wake_ms = t;
}

static void plan_pull(struct agent_node *n, struct agent_entry *e, const struct agent_node_config *cfg, int64_t now,
		      struct agent_plan *out)
{
	if (e->invalid) {
		struct strbuf m = STRBUF_INIT, why = STRBUF_INIT;
		struct imageref r;
		imageref_parse(agent_entry_image(e), &r, &why);
		sb_addf(&m, "invalid image reference \"%s\": %s", agent_entry_image(e), why.buf);
		n->seq += agent_entry_set_state(e, AGENT_FAILED, AGENT_REASON_INVALID_IMAGE, "InvalidImageName", m.buf);
		e->observed_gen = e->pull_gen;
		sb_release(&m);
		sb_release(&why);
		return;
	}
	if (e->present && e->pulled_gen >= e->pull_gen) {
		if (e->state != AGENT_PRESENT)
			e->attempts = 0;
		n->seq += agent_entry_set_state(e, AGENT_PRESENT, NULL, NULL, NULL);
		if (e->observed_gen < e->pulled_gen)
			e->observed_gen = e->pulled_gen;
		e->first_try_ms = e->retry_at_ms = 0;
		e->self_heal = 0;
		return;
	}
	int disk_retry = 0;
	if (e->state == AGENT_FAILED && e->failed_sig == e->spec_sig) {
		/* Failed for good at this spec. A full disk is looked at again every poll interval; anything
		 * else waits for the controller to raise pullGeneration or change the secrets. */
		if (!e->reason || strcmp(e->reason, AGENT_REASON_DISK))
			return;
		if (e->retry_at_ms > now) {
			wake_at(out, e->retry_at_ms);
			return;
		}
		disk_retry = 1;
	} else if (e->retry_at_ms > now) { /* a transient error: the next attempt is not due yet */
		wake_at(out, e->retry_at_ms);
		return;
	}
	if (e->state != AGENT_PULLING) { /* a new round of attempts: the deadline counts from now */
		e->first_try_ms = now;
		e->attempts = 0;
		if (!disk_retry)
			n->seq += agent_entry_set_state(e, AGENT_PULLING, NULL, NULL, NULL);
	}
	struct agent_pull_job *j = xcalloc(1, sizeof *j);
	j->base.sn = &n->sched;
	j->base.registry = agent_registry_of(e->key);
	j->node = n;
	j->key = xstrdup(e->key);
	j->image = xstrdup(e->key);
	j->gen = e->pull_gen;
	j->size_hint = e->size_hint;
	j->secrets = secrets_dup(e->secrets, e->n_secrets);
	j->n_secrets = e->n_secrets;
	j->self_heal = e->self_heal;
	j->deadline_ms = e->first_try_ms + cfg->pull_deadline_ms;
	e->busy = 1;
	n->seq++;
	out->pulls = xrealloc(out->pulls, (out->n_pulls + 1) * sizeof *out->pulls);
	out->pulls[out->n_pulls++] = j;
}

void agent_node_plan(struct agent_node *n, const struct agent_node_config *cfg, int64_t now_ms,
		     struct agent_plan *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->n; i++) {
		struct agent_entry *e = n->e[i];
		if (!e->in_spec || e->busy)
			continue;
		if (e->action == AGENT_PULL) {
			plan_pull(n, e, cfg, now_ms, out);
			continue;
		}
		/* Delete */
		e->self_heal = 0;
		e->first_try_ms = 0;
		if (!e->present) {
			if (e->state != AGENT_ABSENT)
				n->seq += agent_entry_set_state(e, AGENT_ABSENT, NULL, NULL, NULL);
			continue;
		}
		/* kept (in use, pinned) or failed: looked at again every poll interval, or at once when the
		 * spec changed */
		if (((e->state == AGENT_PRESENT && e->reason) || e->state == AGENT_FAILED) &&
		    e->failed_sig == e->spec_sig && e->retry_at_ms > now_ms) {
			wake_at(out, e->retry_at_ms);
			continue;
		}
		if (!(e->state == AGENT_PRESENT && e->reason) && e->state != AGENT_FAILED)
			n->seq += agent_entry_set_state(e, AGENT_DELETING, NULL, NULL, NULL);
		e->busy = 1;
		out->deletes = xrealloc(out->deletes, (out->n_deletes + 1) * sizeof *out->deletes);
		out->deletes[out->n_deletes++] = xstrdup(e->key);
	}
	wake_at(out, n->next_poll_ms);
	pthread_mutex_unlock(&n->mu);
}

/* ---- results ---- */

void agent_pull_result_clear(struct agent_pull_result *r)
{
	free(r->fs_mountpoint);
	free(r->image_id);
	free(r->digest);
	free(r->message);
	memset(r, 0, sizeof *r);
}

static int64_t backoff(const struct agent_node_config *cfg, int attempts)
{
	int64_t d = cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : 1000;
	int64_t max = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 60000;
	for (int i = 1; i < attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	/* +-20 % jitter, so nodes that failed together do not retry together */
	int64_t j = d / 5;
	if (j > 0)
		d += (int64_t)(random() % (2 * j + 1)) - j;
	return d;
}

void agent_node_pull_done(struct agent_node *n, const struct agent_node_config *cfg, const struct agent_pull_job *j,
			  const struct agent_pull_result *r, int64_t now_ms, struct agent_pull_error *cls, int *final)
{
	*final = 1;
	memset(cls, 0, sizeof *cls);
	pthread_mutex_lock(&n->mu);
	long idx = find(n, j->key);
	struct agent_entry *e = idx >= 0 ? n->e[idx] : NULL;
	if (!e)
		goto out;
	e->busy = 0;
	n->seq++;
	e->epoch = ++n->epoch;
	n->pulls += !r->disk_refused;
	if (r->fs_checked && !(r->disk_refused && e->state == AGENT_FAILED && e->reason &&
			       !strcmp(e->reason, AGENT_REASON_DISK))) {
		n->fs.known = r->fs_known;
		n->fs.used = r->fs_used;
		n->fs.capacity = r->fs_capacity;
		n->fs.image_bytes = r->fs_image_bytes;
		agent_set_str(&n->fs.mountpoint, r->fs_mountpoint);
	}
	if (!e->in_spec || e->action != AGENT_PULL) {
		if (!e->in_spec) { /* left the spec while pulling */
			entry_free(e);
			memmove(&n->e[idx], &n->e[idx + 1], (n->n - (size_t)idx - 1) * sizeof *n->e);
			n->n--;
		}
		goto out;
	}
	if (r->ok) {
		e->present = 1;
		agent_intern_set(&e->image_id, r->image_id);
		agent_intern_set(&e->digest, r->digest);
		e->size = r->size;
		e->pinned = r->pinned;
		e->pulled_gen = j->gen > e->pulled_gen ? j->gen : e->pulled_gen;
		e->observed_gen = e->pulled_gen;
		e->last_pull = time(NULL);
		e->attempts = 0;
		e->first_try_ms = e->retry_at_ms = 0;
		e->self_heal = 0;
		agent_entry_set_state(e, AGENT_PRESENT, NULL, NULL, NULL);
		goto out;
	}
	if (r->disk_refused) {
		int again = e->state == AGENT_FAILED && e->reason && !strcmp(e->reason, AGENT_REASON_DISK);
		n->disk_refusals++;
		e->observed_gen = j->gen;
		e->failed_sig = e->spec_sig;
		e->retry_at_ms = now_ms + cfg->poll_ms;
		cls->permanent = 1;
		cls->reason = AGENT_REASON_DISK;
		cls->cause = AGENT_REASON_DISK;
		/* Looked at again every poll: the first words stay, so a status write is not made for every
		 * percent the disk moves. */
		if (!again)
			agent_entry_set_state(e, AGENT_FAILED, AGENT_REASON_DISK, AGENT_REASON_DISK, r->message);
		goto out;
	}
	e->attempts++;
	agent_classify_pull_error(r->code, r->message, cls);
	if (!cls->permanent) {
		int64_t next = now_ms + backoff(cfg, e->attempts);
		if (next < e->first_try_ms + cfg->pull_deadline_ms) {
			*final = 0;
			e->retry_at_ms = next;
			agent_entry_set_state(e, AGENT_PULLING, cls->reason, cls->cause, r->message);
			goto out;
		}
	}
	e->observed_gen = j->gen;
	e->failed_sig = e->spec_sig;
	e->retry_at_ms = 0;
	e->first_try_ms = 0;
	agent_entry_set_state(e, AGENT_FAILED, cls->reason, cls->cause, r->message);
out:
	pthread_mutex_unlock(&n->mu);
}

void agent_node_counts(struct agent_node *n, size_t *desired, size_t *present, size_t *pulling, size_t *failed)
{
	size_t d = 0, p = 0, pu = 0, f = 0;
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->n; i++) {
		const struct agent_entry *e = n->e[i];
		if (!e->in_spec)
			continue;
		if (e->action == AGENT_PULL) {
			d++;
			p += e->state == AGENT_PRESENT;
		}
		pu += e->state == AGENT_PULLING;
		f += e->state == AGENT_FAILED;
	}
	pthread_mutex_unlock(&n->mu);
	*desired = d;
	*present = p;
	*pulling = pu;
	*failed = f;
}

int agent_node_busy(struct agent_node *n)
{
	int busy = 0;
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < n->n && !busy; i++)
		busy = n->e[i]->in_spec && (n->e[i]->busy || n->e[i]->state == AGENT_PULLING);
	pthread_mutex_unlock(&n->mu);
	return busy;
}
