/* kube_client_it_leader.c - leader election (two contenders, fast release, clock skew) and Event
 * aggregation against the real API server. Part of kube_client_it (see kube_client_it.c). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kube/kube_client.h"
#include "kube/kube_events.h"
#include "kube/kube_informer.h"
#include "kube/kube_internal.h"
#include "kube/kube_leader.h"
#include "kube_client_it.h"
#include "util/log.h"
#include "util/util.h"

/* ---- leader election ----------------------------------------------------------------------------------- */

struct contender {
	struct kube_leader *l;
	const char *id;
	volatile int stop;
	atomic_int leading;
	atomic_int lost;
	int64_t t_acquired;
	pthread_t th;
};

static void on_lost(void *ud)
{
	struct contender *c = ud;
	atomic_store(&c->lost, 1);
}

static void *contend(void *arg)
{
	struct contender *c = arg;
	if (kube_leader_acquire(c->l, &c->stop) == 0) {
		c->t_acquired = kf_now_ms();
		atomic_store(&c->leading, 1);
	}
	return NULL;
}

void test_leader_election(void)
{
	struct contender cs[2] = { { .id = "kf-it-a" }, { .id = "kf-it-b" } };
	for (int i = 0; i < 2; i++) {
		struct kube_leader_opts o = { .ns = ns, .name = "kf-it-lease", .identity = cs[i].id, .lease_ms = 4000,
					      .renew_deadline_ms = 3000, .retry_ms = 500, .on_lost = on_lost, .ud = &cs[i] };
		cs[i].l = kube_leader_new(kc, &o);
	}
	for (int i = 0; i < 2; i++)
		pthread_create(&cs[i].th, NULL, contend, &cs[i]);
	int64_t t0 = kf_now_ms();
	while (!atomic_load(&cs[0].leading) && !atomic_load(&cs[1].leading) && kf_now_ms() - t0 < 10000)
		kf_sleep_ms(10);
	/* for 6 s (longer than the lease): exactly one leads, continuously */
	int both = 0, none = 0, samples = 0;
	int64_t t1 = kf_now_ms();
	while (kf_now_ms() - t1 < 6000) {
		int a = kube_leader_is_leader(cs[0].l), b = kube_leader_is_leader(cs[1].l);
		both += a && b;
		none += !a && !b;
		samples++;
		kf_sleep_ms(20);
	}
	int w = atomic_load(&cs[0].leading) ? 0 : 1;
	CHECK(both == 0 && none == 0 && !atomic_load(&cs[1 - w].leading),
	      "leader election: %s leads (acquired after %lld ms), the other waits; %d samples over 6 s, never two or none",
	      cs[w].id, (long long)(cs[w].t_acquired - t0), samples);

	struct kube_err e;
	struct strbuf p = STRBUF_INIT;
	kube_path(&p, &KUBE_LEASES, ns, "kf-it-lease", NULL);
	json_t *lease = kube_get(kc, p.buf, &e);
	long tr0 = (long)json_integer_value(kf_jget(lease, "spec", "leaseTransitions", NULL));
	CHECK(lease && !strcmp(kf_jstr(lease, "spec", "holderIdentity", NULL), cs[w].id),
	      "lease holderIdentity %s, renewTime %s", kf_jstr(lease, "spec", "holderIdentity", NULL),
	      kf_jstr(lease, "spec", "renewTime", NULL));
	json_decref(lease);

	int64_t tr = kf_now_ms();
	kube_leader_release(cs[w].l);
	while (!atomic_load(&cs[1 - w].leading) && kf_now_ms() - tr < 10000)
		kf_sleep_ms(5);
	int64_t handover = cs[1 - w].t_acquired - tr;
	CHECK(atomic_load(&cs[1 - w].leading) && handover < 2000 && !kube_leader_is_leader(cs[w].l),
	      "release hands over: %s leads %lld ms after %s released (lease is 4 s)", cs[1 - w].id, (long long)handover, cs[w].id);
	lease = kube_get(kc, p.buf, &e);
	long tr1 = (long)json_integer_value(kf_jget(lease, "spec", "leaseTransitions", NULL));
	CHECK(lease && !strcmp(kf_jstr(lease, "spec", "holderIdentity", NULL), cs[1 - w].id) && tr1 == tr0 + 1,
	      "lease now held by %s, leaseTransitions %ld -> %ld", kf_jstr(lease, "spec", "holderIdentity", NULL), tr0, tr1);
	json_decref(lease);
	kube_leader_release(cs[1 - w].l);
	lease = kube_get(kc, p.buf, &e);
	CHECK(lease && !strcmp(kf_jstr(lease, "spec", "holderIdentity", NULL) ? kf_jstr(lease, "spec", "holderIdentity", NULL) : "", ""),
	      "final release clears holderIdentity");
	json_decref(lease);
	CHECK(!atomic_load(&cs[0].lost) && !atomic_load(&cs[1].lost), "on_lost never called");
	for (int i = 0; i < 2; i++) {
		kube_stop_set(&cs[i].stop);
		pthread_join(cs[i].th, NULL);
		kube_leader_free(cs[i].l);
	}
	kube_delete(kc, p.buf, NULL, &e);
	sb_release(&p);
}

/* Clock skew: another replica's clock is an hour ahead or behind. Expiry must follow what *we* observe
 * (no change for leaseDurationSeconds), never a comparison of its renewTime with our clock. */
static void put_ghost_lease(const char *name, const char *renew, int create)
{
	struct kube_err e;
	struct strbuf p = STRBUF_INIT;
	json_t *spec = json_pack("{s:s, s:i, s:s, s:s, s:i}", "holderIdentity", "ghost", "leaseDurationSeconds", 2,
				 "acquireTime", renew, "renewTime", renew, "leaseTransitions", 0);
	if (create) {
		kube_path(&p, &KUBE_LEASES, ns, NULL, NULL);
		json_t *l = json_pack("{s:s, s:s, s:{s:s}, s:o}", "apiVersion", "coordination.k8s.io/v1", "kind", "Lease",
				      "metadata", "name", name, "spec", spec);
		json_decref(kube_create(kc, p.buf, l, &e));
		json_decref(l);
	} else {
		kube_path(&p, &KUBE_LEASES, ns, name, NULL);
		json_t *patch = json_pack("{s:o}", "spec", spec);
		json_decref(kube_patch(kc, p.buf, patch, "application/merge-patch+json", &e));
		json_decref(patch);
	}
	sb_release(&p);
}

static void skew_time(int64_t offset_s, int n, char out[40])
{
	time_t t = time(NULL) + offset_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t k = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, 40 - k, ".%06dZ", n % 1000000);
}

void test_leader_clock_skew(void)
{
	char ts[40];
	/* 1. renewTime an hour in the future, never renewed: free after ~2 s of observed silence */
	skew_time(3600, 0, ts);
	put_ghost_lease("kf-it-skew-ahead", ts, 1);
	struct contender c = { .id = "kf-it-c" };
	struct kube_leader_opts o = { .ns = ns, .name = "kf-it-skew-ahead", .identity = c.id, .lease_ms = 4000,
				      .renew_deadline_ms = 3000, .retry_ms = 300 };
	c.l = kube_leader_new(kc, &o);
	int64_t t0 = kf_now_ms();
	pthread_create(&c.th, NULL, contend, &c);
	while (!atomic_load(&c.leading) && kf_now_ms() - t0 < 15000)
		kf_sleep_ms(20);
	int64_t took = kf_now_ms() - t0;
	CHECK(atomic_load(&c.leading) && took >= 1900 && took < 6000,
	      "clock skew +1 h: an abandoned lease whose renewTime is in the future is taken after %lld ms (duration 2 s)",
	      (long long)took);
	pthread_join(c.th, NULL);
	kube_leader_release(c.l);
	kube_leader_free(c.l);

	/* 2. renewTime an hour in the past but still being renewed: never taken while it changes */
	skew_time(-3600, 0, ts);
	put_ghost_lease("kf-it-skew-behind", ts, 1);
	struct contender d = { .id = "kf-it-d" };
	o.name = "kf-it-skew-behind";
	o.identity = d.id;
	d.l = kube_leader_new(kc, &o);
	pthread_create(&d.th, NULL, contend, &d);
	t0 = kf_now_ms();
	int taken_while_renewed = 0;
	for (int i = 1; kf_now_ms() - t0 < 5000; i++) {
		skew_time(-3600, i, ts);
		put_ghost_lease("kf-it-skew-behind", ts, 0);
		taken_while_renewed |= atomic_load(&d.leading);
		kf_sleep_ms(500);
	}
	int64_t t1 = kf_now_ms();
	while (!atomic_load(&d.leading) && kf_now_ms() - t1 < 15000)
		kf_sleep_ms(20);
	CHECK(!taken_while_renewed && atomic_load(&d.leading),
	      "clock skew -1 h: a lease renewed with past timestamps is left alone for 5 s, then taken %lld ms after the "
	      "renewals stop", (long long)(kf_now_ms() - t1));
	kube_stop_set(&d.stop);
	pthread_join(d.th, NULL);
	kube_leader_release(d.l);
	kube_leader_free(d.l);
}

/* ---- events ----------------------------------------------------------------------------------------- */

void test_events(void)
{
	struct kube_err e;
	char *coll = path_cm(NULL), *p = path_cm("kf-it-ev");
	json_t *cm = json_pack("{s:{s:s}}", "metadata", "name", "kf-it-ev");
	json_t *obj = kube_create(kc, coll, cm, &e);
	CHECK(obj != NULL, "create the involved object");
	if (!obj)
		goto out;
	/* created objects carry kind/apiVersion */
	struct kube_recorder *r = kube_recorder_new(kc, "kf-it", "it-host");
	kube_event(r, obj, "Normal", "Tested", "hello %s", "world");
	kube_event(r, obj, "Normal", "Tested", "hello %s", "world");
	kube_event(r, obj, "Warning", "Tested", "something else");
	char *q = xasprintf("/api/v1/namespaces/%s/events?fieldSelector=involvedObject.name%%3Dkf-it-ev", ns);
	json_t *l = kube_get(kc, q, &e), *ev;
	size_t i;
	int agg = 0, other = 0;
	json_array_foreach(json_object_get(l, "items"), i, ev) {
		const char *msg = kf_jstr(ev, "message", NULL);
		if (!strcmp(msg, "hello world") && json_integer_value(json_object_get(ev, "count")) == 2 &&
		    !strcmp(kf_jstr(ev, "source", "component", NULL), "kf-it") &&
		    !strcmp(kf_jstr(ev, "involvedObject", "uid", NULL), kf_jstr(obj, "metadata", "uid", NULL)) &&
		    !strcmp(kf_jstr(ev, "involvedObject", "kind", NULL), "ConfigMap") &&
		    !strcmp(kf_jstr(ev, "type", NULL), "Normal") && kf_jstr(ev, "lastTimestamp", NULL) &&
		    !strncmp(kf_jstr(ev, "metadata", "name", NULL), "kf-it-ev.", 9) &&
		    strlen(kf_jstr(ev, "metadata", "name", NULL)) == 9 + 16)
			agg++;
		if (!strcmp(msg, "something else") && json_integer_value(json_object_get(ev, "count")) == 1)
			other++;
	}
	CHECK(agg == 1 && other == 1 && json_array_size(json_object_get(l, "items")) == 2,
	      "events: an identical event aggregated into one Event with count 2, a different one separate (%zu Events)",
	      json_array_size(json_object_get(l, "items")));
	json_decref(l);
	free(q);
	kube_recorder_free(r);
	kube_delete(kc, p, NULL, &e);
out:
	json_decref(obj);
	json_decref(cm);
	free(coll);
	free(p);
}

/* Takeover: another identity writes itself into our Lease. The elector must notice at its next renewal,
 * fence its client before on_lost runs, and from then on no write of that client reaches the server. */
struct takeover {
	struct kube_client *c;
	atomic_int lost, fenced_in_on_lost;
	atomic_llong t_lost;
};

static void takeover_lost(void *ud)
{
	struct takeover *t = ud;
	atomic_store(&t->fenced_in_on_lost, kube_client_fenced(t->c));
	atomic_store(&t->t_lost, kf_now_ms());
	atomic_store(&t->lost, 1);
}

void test_leader_takeover_fences(void)
{
	struct strbuf err = STRBUF_INIT;
	struct takeover t = { .c = kube_client_new(main_cfg, NULL, &err) };
	struct kube_leader_opts o = { .ns = ns, .name = "kf-it-takeover", .identity = "kf-it-old", .lease_ms = 15000,
				      .renew_deadline_ms = 10000, .retry_ms = 500, .on_lost = takeover_lost, .ud = &t };
	struct kube_leader *l = kube_leader_new(t.c, &o);
	int stop = 0;
	CHECK(kube_leader_acquire(l, &stop) == 0 && !kube_client_fenced(t.c), "kf-it-old leads, its client not fenced");
	char now[40];
	skew_time(0, 0, now);
	struct strbuf p = STRBUF_INIT;
	struct kube_err e;
	kube_path(&p, &KUBE_LEASES, ns, "kf-it-takeover", NULL);
	json_t *patch = json_pack("{s:{s:s, s:i, s:s}}", "spec", "holderIdentity", "kf-it-usurper", "leaseDurationSeconds",
				  600, "renewTime", now);
	int64_t t0 = kf_now_ms();
	json_t *r = kube_patch(kc, p.buf, patch, "application/merge-patch+json", &e);
	while (!atomic_load(&t.lost) && kf_now_ms() - t0 < 5000)
		kf_sleep_ms(10);
	CHECK(r && atomic_load(&t.lost) && atomic_load(&t.fenced_in_on_lost),
	      "takeover noticed at the next renewal: on_lost %lld ms after it (renew period 0.5 s, deadline 10 s), the "
	      "client already fenced", (long long)(atomic_load(&t.t_lost) - t0));
	char *cp = path_cm(NULL), *one = path_cm("kf-it-after-fence");
	json_t *cm = json_pack("{s:{s:s}}", "metadata", "name", "kf-it-after-fence");
	struct kube_client_stats s0, s1;
	kube_client_stats(t.c, &s0);
	json_t *made = kube_create(t.c, cp, cm, &e);
	kube_client_stats(t.c, &s1);
	CHECK(!made && kube_err_is_fenced(&e) && s1.requests == s0.requests && s1.fenced == s0.fenced + 1,
	      "a write of the fenced client is refused unsent: %s", e.msg);
	json_t *g = kube_get(kc, one, &e);
	CHECK(!g && kube_err_is_not_found(&e), "the API server never saw it (GET: %ld)", e.code);
	json_t *lease = kube_get(kc, p.buf, &e);
	kube_leader_release(l); /* not the holder any more: must not clear the usurper's lease */
	json_t *lease2 = kube_get(kc, p.buf, &e);
	CHECK(!strcmp(kf_jstr(lease2, "spec", "holderIdentity", NULL) ? kf_jstr(lease2, "spec", "holderIdentity", NULL) : "",
		      "kf-it-usurper") &&
		      !strcmp(kf_jstr(lease, "metadata", "resourceVersion", NULL), kf_jstr(lease2, "metadata", "resourceVersion", NULL)),
	      "release after the loss leaves the usurper's lease alone");
	json_decref(lease);
	json_decref(lease2);
	json_decref(g);
	json_decref(cm);
	free(cp);
	free(one);
	json_decref(r);
	json_decref(patch);
	sb_release(&p);
	kube_leader_free(l);
	kube_client_free(t.c);
	sb_release(&err);
}
