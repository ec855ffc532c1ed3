/* wh_certmgr.c - certificate Secret and caBundle reconciliation through the API; see wh_certmgr.h. */
#include "wh_certmgr.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_informer.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/util.h"
#include "wh_cabundle.h"

#define MAX_ATTEMPTS 5
#define DEFAULT_RESYNC_MS (10LL * 60 * 1000)

/* Secret objects hold the CA key and the serving key: every one this file reads or builds is wiped
 * (wh_secret_wipe) before it is freed. */
static void secret_free(json_t *secret)
{
	if (secret && secret->refcount == 1)
		wh_secret_wipe(secret);
	json_decref(secret);
}

static void kube_msg(struct strbuf *err, const char *what, const struct kube_err *ke)
{
	sb_addf(err, "%s: %s (HTTP %ld%s%s)", what, ke->msg[0] ? ke->msg : "no message", ke->code,
		ke->reason[0] ? ", " : "", ke->reason);
}

int wh_certmgr_ensure_secret(const struct wh_certmgr_opts *o, struct wh_pki *pki, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT, coll = STRBUF_INIT, why = STRBUF_INIT, what = STRBUF_INIT;
	struct wh_pki_opts po = { o->service, o->ns, o->ca_validity_s, o->cert_validity_s, 0 };
	int rc = -1;
	memset(pki, 0, sizeof *pki);
	kube_path(&path, &KUBE_SECRETS, o->ns, o->secret, NULL);
	kube_path(&coll, &KUBE_SECRETS, o->ns, NULL, NULL);
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		struct kube_err ke;
		json_t *cur = kube_get(o->client, path.buf, &ke);
		if (!cur && !kube_err_is_not_found(&ke)) {
			sb_reset(&what);
			sb_addf(&what, "cannot read Secret %s/%s", o->ns, o->secret);
			kube_msg(err, what.buf, &ke);
			goto out;
		}
		struct wh_pki have, next;
		int changed = 0;
		wh_pki_from_secret(cur, &have);
		sb_reset(&why);
		if (wh_pki_reconcile(&have, &po, &next, &changed, &why, err) < 0) {
			wh_pki_free(&have);
			secret_free(cur);
			goto out;
		}
		if (!changed) {
			*pki = have;
			secret_free(cur);
			rc = 0;
			goto out;
		}
		wh_pki_free(&have);
		json_t *res;
		int existed = cur != NULL;
		if (!existed) {
			json_t *s = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:s}", "apiVersion", "v1", "kind",
					      "Secret", "metadata", "name", o->secret, "namespace", o->ns, "labels", "app",
					      "kubefledged", "kubefledged", "kubefledged-webhook-server", "type",
					      "kubernetes.io/tls");
			wh_pki_to_secret(&next, s);
			res = kube_create(o->client, coll.buf, s, &ke);
			secret_free(s);
		} else {
			wh_pki_to_secret(&next, cur);
			res = kube_update(o->client, path.buf, cur, &ke);
			secret_free(cur);
		}
		if (!res) {
			wh_pki_free(&next);
			if (kube_err_is_conflict(&ke)) { /* another replica wrote first: read its result */
				LOG_V(1, "Secret %s/%s: written concurrently by another replica, re-reading", o->ns,
				      o->secret);
				continue;
			}
			sb_reset(&what);
			sb_addf(&what, "cannot %s Secret %s/%s", existed ? "update" : "create", o->ns, o->secret);
			kube_msg(err, what.buf, &ke);
			if (!existed && ke.code == 403) /* our manifests grant no create: they ship the Secret */
				sb_addf(err, "; the webhook fills in a Secret it may update but does not create it: apply "
					     "deploy/kubefledged-secret-webhook-server.yaml (the Helm chart creates it), or "
					     "kubectl -n %s create secret generic %s",
					o->ns, o->secret);
			goto out;
		}
		secret_free(res);
		struct wh_cert_info ci;
		char until[32] = "?";
		struct strbuf ignored = STRBUF_INIT;
		if (wh_cert_info(next.tls_crt, &ci, &ignored) == 0)
			kf_rfc3339(ci.not_after, until);
		sb_release(&ignored);
		LOG_INFO("certificate Secret %s/%s %s: %s (serving certificate valid until %s)", o->ns, o->secret,
			 existed ? "updated" : "created", why.buf, until);
		*pki = next;
		rc = 0;
		goto out;
	}
	sb_addf(err, "Secret %s/%s: gave up after %d conflicting writes", o->ns, o->secret, MAX_ATTEMPTS);
out:
	sb_release(&path);
	sb_release(&coll);
	sb_release(&why);
	sb_release(&what);
	return rc;
}

int wh_certmgr_sync_vwc(const struct wh_certmgr_opts *o, const char *ca_pem, int *patched, long *err_code,
			struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT;
	int rc = -1;
	*patched = 0;
	*err_code = 0;
	kube_path(&path, &KUBE_VALIDATING_WEBHOOK_CONFIGURATIONS, NULL, o->vwc, NULL);
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		struct kube_err ke;
		json_t *vwc = kube_get(o->client, path.buf, &ke);
		if (!vwc) {
			*err_code = ke.code;
			struct strbuf what = STRBUF_INIT;
			sb_addf(&what, "cannot read ValidatingWebhookConfiguration %s", o->vwc);
			kube_msg(err, what.buf, &ke);
			sb_release(&what);
			goto out;
		}
		int n = 0;
		json_t *patch = wh_cabundle_patch(vwc, ca_pem, &n);
		json_decref(vwc);
		if (!patch) {
			rc = 0;
			goto out;
		}
		json_t *res = kube_patch(o->client, path.buf, patch, "application/json-patch+json", &ke);
		json_decref(patch);
		if (res) {
			json_decref(res);
			*patched = n;
			LOG_INFO("ValidatingWebhookConfiguration %s: caBundle set to the CA of Secret %s/%s in %d "
				 "webhook(s)",
				 o->vwc, o->ns, o->secret, n);
			rc = 0;
			goto out;
		}
		/* 409, or a failed "test" (the list changed under us; 422 or 500 depending on the version) */
		if (ke.code == 409 || ke.code == 422 || ke.code == 500) {
			LOG_V(1, "ValidatingWebhookConfiguration %s changed while patching (%ld: %s), retrying", o->vwc,
			      ke.code, ke.msg);
			continue;
		}
		*err_code = ke.code;
		struct strbuf what = STRBUF_INIT;
		sb_addf(&what, "cannot patch the caBundle of ValidatingWebhookConfiguration %s", o->vwc);
		kube_msg(err, what.buf, &ke);
		sb_release(&what);
		goto out;
	}
	sb_addf(err, "ValidatingWebhookConfiguration %s: gave up after %d conflicting patches", o->vwc, MAX_ATTEMPTS);
out:
	sb_release(&path);
	return rc;
}

/* ---- continuous mode ---- */

struct wh_certmgr {
	struct wh_certmgr_opts o;
	char *ns, *secret, *service, *vwc; /* owned copies behind o's pointers */
	struct kube_informer *sec_inf, *vwc_inf;
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int dirty, stop, ready;
	long last_vwc_code;  /* to log a missing VWC once, not every pass */
	int64_t next_check_ms; /* from the last pass: when a certificate of the Secret falls due */
	char *served_crt;    /* tls.crt installed into o.tls */
	struct wh_certmgr_stats stats;
};

/* The Secret informer only wakes the worker (which reads the Secret fresh): its cache keeps no keys. */
static json_t *secret_trim(void *ud, json_t *obj)
{
	(void)ud;
	wh_secret_wipe(obj);
	json_object_del(obj, "data");
	json_object_del(obj, "stringData");
	json_t *md = json_object_get(obj, "metadata");
	json_object_del(md, "managedFields");
	/* last-applied-configuration of an applied Secret may hold its data too */
	json_object_del(json_object_get(md, "annotations"), "kubectl.kubernetes.io/last-applied-configuration");
	return obj;
}

static void mark_dirty(struct wh_certmgr *m)
{
	pthread_mutex_lock(&m->mu);
	m->dirty = 1;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

static void on_add(void *ud, json_t *obj)
{
	(void)obj;
	mark_dirty(ud);
}

static void on_update(void *ud, json_t *old_obj, json_t *new_obj)
{
	(void)old_obj, (void)new_obj;
	mark_dirty(ud);
}

/* Milliseconds until the certificate in pem falls due (a third of its life left) or, once due but not
 * renewed yet (waiting for a new CA to settle), until a minute from now or its expiry, whichever is first. */
static int64_t ms_until_due(const char *pem)
{
	struct wh_cert_info ci;
	struct strbuf ignored = STRBUF_INIT;
	int ok = wh_cert_info(pem, &ci, &ignored) == 0;
	sb_release(&ignored);
	if (!ok)
		return 60000;
	int64_t now = time(NULL), due = ci.not_after - (ci.not_after - ci.not_before) / 3;
	if (now < due)
		return (int64_t)(due - now) * 1000 + 1000;
	if (now < ci.not_after && ci.not_after - now < 60)
		return (int64_t)(ci.not_after - now) * 1000 + 1000;
	return 60000;
}

static int reconcile_once(struct wh_certmgr *m, struct strbuf *err)
{
	struct wh_pki pki;
	if (wh_certmgr_ensure_secret(&m->o, &pki, err) < 0)
		return -1;
	int rc = -1;
	int64_t a = ms_until_due(pki.ca_crt), b = ms_until_due(pki.tls_crt);
	m->next_check_ms = a < b ? a : b;
	if (m->o.tls && (!m->served_crt || strcmp(m->served_crt, pki.tls_crt))) {
		struct strbuf e = STRBUF_INIT;
		if (wh_tls_set(m->o.tls, pki.tls_crt, pki.tls_key, &e) < 0) {
			sb_addf(err, "Secret %s/%s: serving pair unusable: %s", m->ns, m->secret, e.buf);
			sb_release(&e);
			goto out;
		}
		sb_release(&e);
		free(m->served_crt);
		m->served_crt = xstrdup(pki.tls_crt);
		char fp[65], until[32];
		int64_t na;
		wh_tls_current(m->o.tls, fp, &na);
		kf_rfc3339(na, until);
		LOG_INFO("serving the certificate of Secret %s/%s (sha256 %.16s..., valid until %s)", m->ns, m->secret,
			 fp, until);
	}
	if (m->vwc && *m->vwc) {
		int n = 0;
		long code = 0;
		struct strbuf e = STRBUF_INIT;
		int r = wh_certmgr_sync_vwc(&m->o, pki.ca_crt, &n, &code, &e);
		if (r < 0 && code == 404) {
			/* not created yet (manifests applied in any order): its informer wakes us when it is */
			if (m->last_vwc_code != 404)
				LOG_WARN("ValidatingWebhookConfiguration %s does not exist yet; its caBundle will be set "
					 "when it is created",
					 m->vwc);
			m->last_vwc_code = 404;
		} else if (r < 0) {
			sb_adds(err, e.buf);
			sb_release(&e);
			goto out;
		} else {
			m->last_vwc_code = 200;
			if (n) {
				pthread_mutex_lock(&m->mu);
				m->stats.vwc_patches++;
				pthread_mutex_unlock(&m->mu);
			}
		}
		sb_release(&e);
	}
	rc = 0;
out:
	wh_pki_free(&pki);
	return rc;
}

static void *worker(void *arg)
{
	struct wh_certmgr *m = arg;
	int64_t resync = m->o.resync_ms > 0 ? m->o.resync_ms : DEFAULT_RESYNC_MS;
	int64_t backoff = 0, due = 0; /* due: next pass even without events (0 = now) */
	pthread_mutex_lock(&m->mu);
	while (!m->stop) {
		/* sleep until due; an event cuts the sleep short, except during an error backoff */
		while (!m->stop && kf_now_ms() < due && !(m->dirty && !backoff)) {
			int64_t left = due - kf_now_ms();
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			if (left > 500)
				left = 500;
			dl.tv_nsec += (long)(left * 1000000);
			dl.tv_sec += dl.tv_nsec / 1000000000L;
			dl.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&m->cv, &m->mu, &dl);
		}
		if (m->stop)
			break;
		m->dirty = 0;
		pthread_mutex_unlock(&m->mu);
		struct strbuf err = STRBUF_INIT;
		int rc = reconcile_once(m, &err);
		pthread_mutex_lock(&m->mu);
		m->stats.reconciles++;
		if (rc < 0) {
			m->stats.errors++;
			backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 1000;
			LOG_ERROR("webhook certificates: %s (retrying in %llds)", err.buf, (long long)backoff / 1000);
			due = kf_now_ms() + backoff;
		} else {
			backoff = 0;
			due = kf_now_ms() + (m->next_check_ms > 0 && m->next_check_ms < resync ? m->next_check_ms : resync);
			if (!m->ready) {
				m->ready = 1;
				pthread_cond_broadcast(&m->cv);
			}
		}
		sb_release(&err);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

struct wh_certmgr *wh_certmgr_start(const struct wh_certmgr_opts *o, struct strbuf *err)
{
	struct wh_certmgr *m = xcalloc(1, sizeof *m);
	m->o = *o;
	m->o.ns = m->ns = xstrdup(o->ns);
	m->o.secret = m->secret = xstrdup(o->secret);
	m->o.service = m->service = xstrdup(o->service);
	m->o.vwc = m->vwc = xstrdup(o->vwc ? o->vwc : "");
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	m->dirty = 1;

	struct kube_informer_handlers h = { on_add, on_update, on_add, m };
	char *fs = xasprintf("metadata.name=%s", m->secret);
	struct kube_informer_opts so = { .res = &KUBE_SECRETS, .ns = m->ns, .field_selector = fs,
					 .transform = secret_trim };
	m->sec_inf = kube_informer_new(o->client, &so, &h);
	free(fs);
	if (*m->vwc) {
		fs = xasprintf("metadata.name=%s", m->vwc);
		struct kube_informer_opts vo = { &KUBE_VALIDATING_WEBHOOK_CONFIGURATIONS, NULL, NULL, fs, NULL, 0 };
		m->vwc_inf = kube_informer_new(o->client, &vo, &h);
		free(fs);
	}
	if (!m->sec_inf || (*m->vwc && !m->vwc_inf) || kube_informer_start(m->sec_inf) < 0 ||
	    (m->vwc_inf && kube_informer_start(m->vwc_inf) < 0)) {
		sb_adds(err, "cannot start the Secret/ValidatingWebhookConfiguration informers");
		goto fail;
	}
	if (pthread_create(&m->thread, NULL, worker, m)) {
		sb_adds(err, "cannot start the certificate worker thread");
		goto fail;
	}
	m->started = 1;
	return m;
fail:
	wh_certmgr_stop(m);
	return NULL;
}

int wh_certmgr_wait_ready(struct wh_certmgr *m, int64_t timeout_ms, const volatile int *stop)
{
	int64_t end = kf_now_ms() + timeout_ms;
	pthread_mutex_lock(&m->mu);
	while (!m->ready && kf_now_ms() < end && !(stop && *stop)) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += 200 * 1000000L;
		dl.tv_sec += dl.tv_nsec / 1000000000L;
		dl.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&m->cv, &m->mu, &dl);
	}
	int r = m->ready ? 0 : -1;
	pthread_mutex_unlock(&m->mu);
	return r;
}

void wh_certmgr_stats(struct wh_certmgr *m, struct wh_certmgr_stats *out)
{
	pthread_mutex_lock(&m->mu);
	*out = m->stats;
	pthread_mutex_unlock(&m->mu);
}

void wh_certmgr_stop(struct wh_certmgr *m)
{
	if (!m)
		return;
	kube_informer_free(m->sec_inf); /* stops first; no handler runs after this */
	kube_informer_free(m->vwc_inf);
	if (m->started) {
		pthread_mutex_lock(&m->mu);
		m->stop = 1;
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
		pthread_join(m->thread, NULL);
	}
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m->served_crt);
	free(m->ns);
	free(m->secret);
	free(m->service);
	free(m->vwc);
	free(m);
}
