/* agent_node.c - one node's entries: observation, plan, results (see agent_node.h). The spec and the
 * seeding from a previous run's status are in agent_spec.c, the delete guard and the status rendering in
 * agent_status.c. */
#include "util/intern.h"
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

/* ---- entries (the spec that makes them is in agent_spec.c) ---- */

void agent_secrets_free(struct agent_secret_ref *s, size_t n)
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

void agent_entry_free(struct agent_entry *e)
{
	if (!e)
		return;
	kf_intern_put(e->key);
	free(e->image);
	agent_secrets_free(e->secrets, e->n_secrets);
	kf_intern_put(e->image_id);
	kf_intern_put(e->digest);
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
long agent_node_find(const struct agent_node *n, const char *key)
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
	long i = agent_node_find(n, key);
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
		agent_entry_free(n->e[i]);
	free(n->e);
	free(n->fs.mountpoint);
	agent_sched_node_release(&n->sched);
	agent_runtime_free(n->rt);
	pthread_mutex_destroy(&n->mu);
	free(n->name);
	free(n);
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
	changed |= kf_intern_set(&e->image_id, img->id);
	changed |= kf_intern_set(&e->digest, agent_repo_digest(e->key, img));
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
	agent_secrets_free(j->secrets, j->n_secrets);
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
	long idx = agent_node_find(n, j->key);
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
			agent_entry_free(e);
			memmove(&n->e[idx], &n->e[idx + 1], (n->n - (size_t)idx - 1) * sizeof *n->e);
			n->n--;
		}
		goto out;
	}
	if (r->ok) {
		e->present = 1;
		kf_intern_set(&e->image_id, r->image_id);
		kf_intern_set(&e->digest, r->digest);
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
