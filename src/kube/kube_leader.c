/* kube_leader.c - Lease-based leader election; see kube_leader.h.
 *
 * tryAcquireOrRenew, as in client-go's leaderelection:
 *   GET the Lease (404: create it holding it ourselves; 409 on create: someone else was faster).
 *   When its spec differs from what we saw last time, note *our* monotonic time of that observation.
 *   If it is held by someone else and observed_time + leaseDurationSeconds is still ahead: not ours.
 *   Otherwise PUT it (with the GET's resourceVersion, so a concurrent writer makes one of us get 409)
 *   with holderIdentity = us and renewTime = now; acquireTime and leaseTransitions are kept when we
 *   already held it, else acquireTime = now and leaseTransitions + 1.
 * Expiry is judged only by local observation times, never by comparing our clock with the timestamps
 * another replica wrote, so clock skew between replicas does not matter.
 *
 * After kube_leader_acquire() succeeds a renew thread retries tryAcquireOrRenew every retry period; if no
 * attempt succeeds for renew_deadline it gives up leadership, and if a renewal finds the lease held by
 * another replica it gives up at once. Either way it first fences the client (kube_client_fence: every
 * later write fails without being sent, so queued work of the old leader cannot race the new one), then
 * calls on_lost. kube_leader_release()
 * stops that thread and, if we still hold the lease, writes an empty holderIdentity (leaseDurationSeconds
 * 1) so a waiting replica takes over on its next retry instead of after a full lease duration. */
#include "kube_leader.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kube_internal.h"
#include "util/log.h"
#include "util/util.h"

struct kube_leader {
	struct kube_client *c;
	char *ns, *name, *identity;
	int64_t lease_ms, renew_deadline_ms, retry_ms;
	void (*on_lost)(void *ud);
	void *ud;

	pthread_mutex_t mu; /* guards leader, stop_renew, started */
	pthread_cond_t cv;
	int leader, stop_renew, started, released;
	pthread_t th;

	/* touched only by the thread running try_acquire (the acquirer, then the renew thread) */
	char other[256];     /* the other holder, after LEASE_OTHER */
	char *observed;      /* last seen spec, serialized */
	int64_t observed_ms; /* monotonic time it was first seen */
	unsigned seed;
};

static void micro_time(char out[40])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%06ldZ", ts.tv_nsec / 1000);
}

struct kube_leader *kube_leader_new(struct kube_client *c, const struct kube_leader_opts *opts)
{
	struct kube_leader *l = xcalloc(1, sizeof *l);
	pthread_condattr_t ca;
	l->c = c;
	l->ns = xstrdup(opts->ns && *opts->ns ? opts->ns : kube_client_namespace(c));
	l->name = xstrdup(opts->name);
	l->identity = xstrdup(opts->identity);
	l->lease_ms = opts->lease_ms > 0 ? opts->lease_ms : 15000;
	l->renew_deadline_ms = opts->renew_deadline_ms > 0 ? opts->renew_deadline_ms : 10000;
	l->retry_ms = opts->retry_ms > 0 ? opts->retry_ms : 2000;
	l->on_lost = opts->on_lost;
	l->ud = opts->ud;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (getrandom(&l->seed, sizeof l->seed, 0) != (ssize_t)sizeof l->seed)
		l->seed = (unsigned)time(NULL);
	return l;
}

static void observe(struct kube_leader *l, json_t *spec)
{
	char *s = json_dumps(spec ? spec : json_null(), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!l->observed || !s || strcmp(s, l->observed)) {
		free(l->observed);
		l->observed = s;
		l->observed_ms = kf_now_ms();
	} else {
		free(s);
	}
}

static json_t *new_spec(struct kube_leader *l, const char *acquire_time, long transitions)
{
	char now[40];
	micro_time(now);
	return json_pack("{s:s, s:I, s:s, s:s, s:I}", "holderIdentity", l->identity, "leaseDurationSeconds",
			 (json_int_t)((l->lease_ms + 999) / 1000), "acquireTime", acquire_time ? acquire_time : now,
			 "renewTime", now, "leaseTransitions", (json_int_t)transitions);
}

enum { LEASE_ERROR = -1, LEASE_OTHER = 0, LEASE_OURS = 1, LEASE_RACE = 2 };

/* LEASE_OURS = we hold the lease now, LEASE_OTHER = another holder's unexpired lease (its identity in
 * l->other), LEASE_RACE = another writer won a race (409), LEASE_ERROR = error (logged). */
static int try_acquire_or_renew(struct kube_leader *l)
{
	struct strbuf p = STRBUF_INIT;
	struct kube_err err;
	json_t *lease = NULL, *r = NULL;
	char *prev = NULL;
	int rc = -1;
	kube_path(&p, &KUBE_LEASES, l->ns, l->name, NULL);
	lease = kube_get(l->c, p.buf, &err);
	if (!lease) {
		if (!kube_err_is_not_found(&err)) {
			LOG_WARN("leader election: get lease %s/%s: %s", l->ns, l->name, err.msg);
			goto out;
		}
		json_t *body = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", "coordination.k8s.io/v1", "kind",
					 "Lease", "metadata", "name", l->name, "namespace", l->ns, "spec",
					 new_spec(l, NULL, 0));
		sb_reset(&p);
		kube_path(&p, &KUBE_LEASES, l->ns, NULL, NULL);
		r = kube_create(l->c, p.buf, body, &err);
		json_decref(body);
		if (r) {
			observe(l, json_object_get(r, "spec"));
			rc = LEASE_OURS;
		} else if (kube_err_is_conflict(&err)) {
			rc = LEASE_RACE;
		} else {
			LOG_WARN("leader election: create lease %s/%s: %s", l->ns, l->name, err.msg);
		}
		goto out;
	}
	json_t *spec = json_object_get(lease, "spec");
	observe(l, spec);
	const char *holder = kf_jstr(spec, "holderIdentity", NULL);
	json_t *jd = json_object_get(spec, "leaseDurationSeconds");
	int64_t dur_ms = json_is_integer(jd) ? json_integer_value(jd) * 1000 : l->lease_ms;
	int ours = holder && !strcmp(holder, l->identity);
	if (holder && *holder && !ours && l->observed_ms + dur_ms > kf_now_ms()) {
		snprintf(l->other, sizeof l->other, "%s", holder);
		rc = LEASE_OTHER;
		goto out;
	}
	json_t *jt = json_object_get(spec, "leaseTransitions");
	long transitions = json_is_integer(jt) ? (long)json_integer_value(jt) : 0;
	json_t *ns = ours ? new_spec(l, kf_jstr(spec, "acquireTime", NULL), transitions)
			  : new_spec(l, NULL, transitions + 1);
	prev = xstrdup(holder ? holder : ""); /* spec, and holder with it, is freed by the next line */
	json_object_set_new(lease, "spec", ns);
	r = kube_update(l->c, p.buf, lease, &err);
	if (r) {
		observe(l, json_object_get(r, "spec"));
		if (!ours)
			LOG_INFO("leader election: %s acquired lease %s/%s (previous holder \"%s\")", l->identity, l->ns,
				 l->name, prev);
		rc = LEASE_OURS;
	} else if (kube_err_is_conflict(&err)) {
		rc = LEASE_RACE;
	} else {
		LOG_WARN("leader election: update lease %s/%s: %s", l->ns, l->name, err.msg);
	}
out:
	free(prev);
	json_decref(lease);
	json_decref(r);
	sb_release(&p);
	return rc;
}

/* Waits up to ms for release(); returns nonzero when asked to stop. */
static int renew_wait(struct kube_leader *l, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&l->mu);
	while (!l->stop_renew && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
		;
	int s = l->stop_renew;
	pthread_mutex_unlock(&l->mu);
	return s;
}

static void *renew_main(void *arg)
{
	struct kube_leader *l = arg;
	char why[512];
	for (;;) {
		if (renew_wait(l, l->retry_ms))
			return NULL;
		int64_t deadline = kf_now_ms() + l->renew_deadline_ms;
		int rc = LEASE_ERROR;
		for (;;) {
			rc = try_acquire_or_renew(l);
			if (rc == LEASE_OURS || rc == LEASE_OTHER)
				break;
			if (kf_now_ms() >= deadline)
				break;
			if (rc == LEASE_RACE) { /* someone wrote the lease meanwhile: read it again soon */
				if (renew_wait(l, 100))
					return NULL;
				continue;
			}
			int64_t w = l->retry_ms < deadline - kf_now_ms() ? l->retry_ms : deadline - kf_now_ms();
			if (w > 0 && renew_wait(l, w))
				return NULL;
		}
		if (rc == LEASE_OURS)
			continue;
		if (rc == LEASE_OTHER)
			snprintf(why, sizeof why, "leader election lost: lease %s/%s is held by %s", l->ns, l->name,
				 l->other);
		else
			snprintf(why, sizeof why, "leader election lost: lease %s/%s not renewed for %lld ms", l->ns,
				 l->name, (long long)l->renew_deadline_ms);
		pthread_mutex_lock(&l->mu);
		int stopping = l->stop_renew;
		l->leader = 0;
		pthread_mutex_unlock(&l->mu);
		if (stopping)
			return NULL;
		kube_client_fence(l->c, why); /* before anyone hears of it: no write of ours goes out after this */
		LOG_ERROR("%s (identity %s)", why, l->identity);
		if (l->on_lost)
			l->on_lost(l->ud);
		return NULL;
	}
}

int kube_leader_acquire(struct kube_leader *l, const volatile int *stop)
{
	LOG_INFO("leader election: %s trying to acquire lease %s/%s", l->identity, l->ns, l->name);
	for (;;) {
		if (kube_stop_get(stop))
			return -1;
		if (try_acquire_or_renew(l) == LEASE_OURS)
			break;
		/* retry period with up to +20% jitter (client-go's JitterFactor 1.2), in slices for *stop */
		int64_t until = kf_now_ms() + l->retry_ms + (int64_t)(rand_r(&l->seed) % (unsigned)(l->retry_ms / 5 + 1));
		while (kf_now_ms() < until) {
			if (kube_stop_get(stop))
				return -1;
			int64_t left = until - kf_now_ms();
			kf_sleep_ms(left < 50 ? (left > 0 ? left : 1) : 50);
		}
	}
	pthread_mutex_lock(&l->mu);
	l->leader = 1;
	l->stop_renew = 0;
	l->released = 0;
	if (!l->started && pthread_create(&l->th, NULL, renew_main, l) == 0)
		l->started = 1;
	int started = l->started;
	pthread_mutex_unlock(&l->mu);
	if (!started)
		LOG_ERROR("leader election: cannot start the renew thread; leadership will lapse");
	LOG_INFO("leader election: %s is the leader (lease %s/%s)", l->identity, l->ns, l->name);
	return 0;
}

int kube_leader_is_leader(struct kube_leader *l)
{
	pthread_mutex_lock(&l->mu);
	int v = l->leader;
	pthread_mutex_unlock(&l->mu);
	return v;
}

void kube_leader_release(struct kube_leader *l)
{
	pthread_mutex_lock(&l->mu);
	l->stop_renew = 1;
	pthread_cond_broadcast(&l->cv);
	int join = l->started;
	l->started = 0;
	int was_leader = l->leader;
	l->leader = 0;
	int released = l->released;
	l->released = 1;
	pthread_mutex_unlock(&l->mu);
	if (join && pthread_equal(pthread_self(), l->th))
		pthread_detach(l->th); /* called from on_lost: the renew thread ends when on_lost returns */
	else if (join)
		pthread_join(l->th, NULL);
	if (!was_leader || released)
		return;
	struct strbuf p = STRBUF_INIT;
	struct kube_err err;
	kube_path(&p, &KUBE_LEASES, l->ns, l->name, NULL);
	json_t *lease = kube_get(l->c, p.buf, &err), *r = NULL;
	json_t *spec = json_object_get(lease, "spec");
	const char *holder = kf_jstr(spec, "holderIdentity", NULL);
	int mine = holder && !strcmp(holder, l->identity); /* holder dies with the old spec below */
	if (mine) {
		char now[40];
		micro_time(now);
		json_t *jt = json_object_get(spec, "leaseTransitions");
		json_object_set_new(lease, "spec",
				    json_pack("{s:s, s:I, s:s, s:s, s:I}", "holderIdentity", "", "leaseDurationSeconds",
					      (json_int_t)1, "acquireTime", now, "renewTime", now, "leaseTransitions",
					      (json_int_t)(json_is_integer(jt) ? json_integer_value(jt) : 0)));
		r = kube_update(l->c, p.buf, lease, &err);
		if (r)
			LOG_INFO("leader election: %s released lease %s/%s", l->identity, l->ns, l->name);
	}
	if (!lease || (mine && !r))
		LOG_WARN("leader election: release of lease %s/%s failed: %s", l->ns, l->name, err.msg);
	json_decref(r);
	json_decref(lease);
	sb_release(&p);
}

void kube_leader_free(struct kube_leader *l)
{
	if (!l)
		return;
	kube_leader_release(l); /* no-op unless still running */
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l->ns);
	free(l->name);
	free(l->identity);
	free(l->observed);
	free(l);
}
