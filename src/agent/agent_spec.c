/* agent_spec.c - a node's entries from its NodeImageCache spec (one per normalised reference, Pull winning
 * over Delete, owners and secrets merged), and, once, from a previous run's status: what was pulled at
 * which generation, what failed for good (restart safety). See agent_node.h. */
#include <stdlib.h>
#include <string.h>

#include "util/intern.h"
#include "agent_node_int.h"
#include "util/imageref.h"
#include "util/util.h"

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
		long idx = agent_node_find(n, it->key);
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
			e->key = kf_intern_get(it->key);
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
		agent_secrets_free(e->secrets, e->n_secrets);
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
			agent_entry_free(n->e[k]);
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
		agent_secrets_free(items[k].secrets, items[k].n_secrets);
	}
	free(items);
	return changed;
}

