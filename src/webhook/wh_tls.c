/* wh_tls.c - hot-swappable serving certificate for libmicrohttpd's GnuTLS backend; see wh_tls.h. */
#include "wh_tls.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"
#include "util/util.h"
#include "wh_certs.h"

#define WH_TLS_MAX_CHAIN 8
#define WH_TLS_RETIRE_MS (60LL * 60 * 1000)

struct wh_pair {
	gnutls_pcert_st pcerts[WH_TLS_MAX_CHAIN];
	unsigned int n;
	gnutls_privkey_t key;
	char sha256[65];
	int64_t not_after;
	int64_t retired_ms; /* when it stopped being current */
	struct wh_pair *next;
};

struct wh_tls {
	pthread_mutex_t mu;
	struct wh_pair *cur;
	struct wh_pair *retired; /* newest first */
	uint64_t generation;

	/* file watcher */
	pthread_t thread;
	int watching, stop;
	pthread_cond_t cond;
	char *cert_file, *key_file;
	int64_t interval_ms;
};

static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wh_tls *g_registered;

static void pair_free(struct wh_pair *p)
{
	if (!p)
		return;
	for (unsigned int i = 0; i < p->n; i++)
		gnutls_pcert_deinit(&p->pcerts[i]);
	if (p->key)
		gnutls_privkey_deinit(p->key);
	free(p);
}

struct wh_tls *wh_tls_new(void)
{
	struct wh_tls *t = xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cond, NULL);
	return t;
}

void wh_tls_free(struct wh_tls *t)
{
	if (!t)
		return;
	if (t->watching) {
		pthread_mutex_lock(&t->mu);
		t->stop = 1;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&t->mu);
		pthread_join(t->thread, NULL);
	}
	pthread_mutex_lock(&g_reg_mu);
	if (g_registered == t)
		g_registered = NULL;
	pthread_mutex_unlock(&g_reg_mu);
	pair_free(t->cur);
	for (struct wh_pair *p = t->retired, *nx; p; p = nx) {
		nx = p->next;
		pair_free(p);
	}
	free(t->cert_file);
	free(t->key_file);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int pair_load(const char *cert_pem, const char *key_pem, struct wh_pair **out, struct strbuf *err)
{
	struct wh_pair *p = xcalloc(1, sizeof *p);
	gnutls_pubkey_t pub = NULL;
	int r;
	if (!cert_pem || !key_pem) {
		sb_adds(err, "certificate or key missing");
		goto fail;
	}
	gnutls_datum_t cd = { (unsigned char *)cert_pem, (unsigned int)strlen(cert_pem) };
	gnutls_datum_t kd = { (unsigned char *)key_pem, (unsigned int)strlen(key_pem) };
	p->n = WH_TLS_MAX_CHAIN;
	r = gnutls_pcert_list_import_x509_raw(p->pcerts, &p->n, &cd, GNUTLS_X509_FMT_PEM, 0);
	if (r < 0) {
		p->n = 0;
		sb_addf(err, "cannot load certificate: %s", gnutls_strerror(r));
		goto fail;
	}
	if ((r = gnutls_privkey_init(&p->key)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(p->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		sb_addf(err, "cannot load private key: %s", gnutls_strerror(r));
		goto fail;
	}
	/* the key must be the certificate's: compare key ids */
	unsigned char a[64], b[64];
	size_t an = sizeof a, bn = sizeof b;
	if ((r = gnutls_pubkey_init(&pub)) < 0 || (r = gnutls_pubkey_import_privkey(pub, p->key, 0, 0)) < 0 ||
	    (r = gnutls_pubkey_get_key_id(pub, 0, a, &an)) < 0 ||
	    (r = gnutls_pubkey_get_key_id(p->pcerts[0].pubkey, 0, b, &bn)) < 0) {
		sb_addf(err, "cannot compare key and certificate: %s", gnutls_strerror(r));
		goto fail;
	}
	if (an != bn || memcmp(a, b, an)) {
		sb_adds(err, "the private key does not belong to the certificate");
		goto fail;
	}
	gnutls_pubkey_deinit(pub);
	struct wh_cert_info ci;
	struct strbuf ignored = STRBUF_INIT;
	if (wh_cert_info(cert_pem, &ci, &ignored) == 0) {
		memcpy(p->sha256, ci.sha256, sizeof p->sha256);
		p->not_after = ci.not_after;
	}
	sb_release(&ignored);
	*out = p;
	return 0;
fail:
	if (pub)
		gnutls_pubkey_deinit(pub);
	pair_free(p);
	return -1;
}

int wh_tls_set(struct wh_tls *t, const char *cert_pem, const char *key_pem, struct strbuf *err)
{
	struct wh_pair *p;
	if (pair_load(cert_pem, key_pem, &p, err) < 0)
		return -1;
	int64_t now = kf_now_ms();
	pthread_mutex_lock(&t->mu);
	if (t->cur) {
		t->cur->retired_ms = now;
		t->cur->next = t->retired;
		t->retired = t->cur;
	}
	t->cur = p;
	t->generation++;
	/* free pairs retired long enough ago that no handshake can still hold them */
	struct wh_pair **pp = &t->retired;
	while (*pp) {
		if (now - (*pp)->retired_ms > WH_TLS_RETIRE_MS) {
			struct wh_pair *dead = *pp;
			*pp = dead->next;
			pair_free(dead);
		} else {
			pp = &(*pp)->next;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return 0;
}

int wh_tls_ready(struct wh_tls *t)
{
	pthread_mutex_lock(&t->mu);
	int r = t->cur != NULL;
	pthread_mutex_unlock(&t->mu);
	return r;
}

uint64_t wh_tls_generation(struct wh_tls *t)
{
	pthread_mutex_lock(&t->mu);
	uint64_t g = t->generation;
	pthread_mutex_unlock(&t->mu);
	return g;
}

void wh_tls_current(struct wh_tls *t, char fp[65], int64_t *not_after)
{
	pthread_mutex_lock(&t->mu);
	memcpy(fp, t->cur ? t->cur->sha256 : "", t->cur ? 65 : 1);
	*not_after = t->cur ? t->cur->not_after : 0;
	pthread_mutex_unlock(&t->mu);
}

/* ---- files ---- */

struct file_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	int ok;
};

static void sig_of(const char *path, struct file_sig *s)
{
	struct stat st;
	memset(s, 0, sizeof *s);
	if (stat(path, &st) < 0)
		return;
	s->ok = 1;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime = st.st_mtim;
	s->ctime = st.st_ctim;
}

static int sig_eq(const struct file_sig *a, const struct file_sig *b)
{
	return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static int load_files(struct wh_tls *t, struct strbuf *err)
{
	char *cert = kf_read_file(t->cert_file, NULL, err), *key = NULL;
	int rc = -1;
	if (!cert)
		goto out;
	if (!(key = kf_read_file(t->key_file, NULL, err)))
		goto out;
	struct strbuf e = STRBUF_INIT;
	if (wh_tls_set(t, cert, key, &e) < 0) {
		sb_addf(err, "%s / %s: %s", t->cert_file, t->key_file, e.buf);
		sb_release(&e);
		goto out;
	}
	sb_release(&e);
	rc = 0;
out:
	free(cert);
	kf_free_secret(key);
	return rc;
}

static void *watch_main(void *arg)
{
	struct wh_tls *t = arg;
	struct file_sig seen_c, seen_k, failed_c = { 0 }, failed_k = { 0 };
	sig_of(t->cert_file, &seen_c);
	sig_of(t->key_file, &seen_k);
	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += t->interval_ms / 1000;
		dl.tv_nsec += (t->interval_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L)
			dl.tv_sec++, dl.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&t->cond, &t->mu, &dl);
		if (t->stop)
			break;
		pthread_mutex_unlock(&t->mu);
		struct file_sig c, k;
		sig_of(t->cert_file, &c);
		sig_of(t->key_file, &k);
		if (!sig_eq(&c, &seen_c) || !sig_eq(&k, &seen_k)) {
			struct strbuf err = STRBUF_INIT;
			if (load_files(t, &err) == 0) {
				char fp[65], when[32];
				int64_t na;
				wh_tls_current(t, fp, &na);
				kf_rfc3339(na, when);
				LOG_INFO("serving certificate reloaded from %s (sha256 %.16s..., valid until %s)",
					 t->cert_file, fp, when);
				seen_c = c;
				seen_k = k;
			} else if (!sig_eq(&c, &failed_c) || !sig_eq(&k, &failed_k)) {
				/* A writer may replace the certificate before the key: keep serving the old pair
				 * and try again every tick (logging once per state of the files). */
				LOG_WARN("serving certificate not reloaded, keeping the current one: %s", err.buf);
				failed_c = c;
				failed_k = k;
			}
			sb_release(&err);
		}
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int wh_tls_watch_files(struct wh_tls *t, const char *cert_file, const char *key_file, int64_t interval_ms,
		       struct strbuf *err)
{
	if (t->watching) {
		sb_adds(err, "already watching files");
		return -1;
	}
	t->cert_file = xstrdup(cert_file);
	t->key_file = xstrdup(key_file);
	t->interval_ms = interval_ms > 0 ? interval_ms : 1000;
	if (load_files(t, err) < 0)
		return -1;
	if (pthread_create(&t->thread, NULL, watch_main, t)) {
		sb_adds(err, "cannot start the certificate file watcher");
		return -1;
	}
	t->watching = 1;
	return 0;
}

/* ---- the GnuTLS callback ---- */

int wh_tls_register(struct wh_tls *t)
{
	int rc = 0;
	pthread_mutex_lock(&g_reg_mu);
	if (t && g_registered && g_registered != t)
		rc = -1;
	else
		g_registered = t;
	pthread_mutex_unlock(&g_reg_mu);
	return rc;
}

static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
		    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
		    unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	(void)session, (void)req_ca_rdn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
	int rc = -1;
	pthread_mutex_lock(&g_reg_mu);
	struct wh_tls *t = g_registered;
	if (t) {
		pthread_mutex_lock(&t->mu);
		if (t->cur) {
			*pcert = t->cur->pcerts;
			*pcert_length = t->cur->n;
			*pkey = t->cur->key;
			rc = 0;
		}
		pthread_mutex_unlock(&t->mu);
	}
	pthread_mutex_unlock(&g_reg_mu);
	return rc;
}

wh_fnptr wh_tls_cert_callback(void)
{
	return (wh_fnptr)retrieve;
}
