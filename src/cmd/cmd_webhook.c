/* cmd_webhook.c - `kubefledged webhook-server`: the validating admission webhook for ImageCaches.
 *
 * Three ways to run it:
 *   file mode     --cert-file/--key-file: serves that pair, reloaded when the files change; needs no API
 *                 access at all (unless --validating-webhook-config asks for caBundle reconciliation).
 *   Secret mode   no cert files: the CA and serving pair live in the Secret --tls-secret, created if
 *                 missing (shared by every replica), renewed before expiry, served from memory, and the
 *                 caBundle of --validating-webhook-config is kept equal to the Secret's CA.
 *   --init-server upstream's init-container contract (env WEBHOOK_SERVER_SERVICE, KUBEFLEDGED_NAMESPACE,
 *                 CERT_KEY_PATH ending in "/", VALIDATING_WEBHOOK_CONFIG): writes <path>tls.crt and
 *                 <path>tls.key and sets the caBundle, then exits; but the pair comes from the shared
 *                 Secret instead of a CA minted at every start, so restarts and replicas agree.
 *                 Started as upstream's /opt/bin/kubefledged-webhook-server (cmd_upstream_webhook_server)
 *                 and without --tls-secret, it keeps upstream's contract to the letter instead, with the
 *                 rights upstream's ClusterRole grants: see webhook/wh_initserver.h.
 * SIGTERM/SIGINT: /readyz turns 503, requests in flight finish (up to --shutdown-grace), exit 0. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds.h"
#include "util/flags.h"
#include "util/log.h"
#include "util/util.h"
#include "webhook/wh_certs.h"
#include "webhook/wh_server.h"
#include "webhook/wh_tls.h"
#ifdef HAVE_KFKUBE
#include "kube/kube_config.h"
#include "webhook/wh_certmgr.h"
#include "webhook/wh_initserver.h"
#endif

#define DEFAULT_SECRET "kubefledged-webhook-server-cert"
#define DEFAULT_SERVICE "kubefledged-webhook-server"

static char *f_cert, *f_key, *f_bind, *f_secret, *f_ns, *f_service, *f_vwc, *f_kubeconfig, *f_master;
static int f_port, f_init, f_threads, f_max_conns, f_max_body, f_max_conns_ip, f_max_inflight;
static int64_t f_idle_ms, f_req_ms, f_hdr_ms, f_grace_ms, f_cert_validity_ms, f_ca_validity_ms;

static struct flag flag_table[] = {
	{ "cert-file", FLAG_STRING, &f_cert, "",
	  "PEM serving certificate (chain may follow); with --key-file: file mode, reloaded when the files change" },
	{ "key-file", FLAG_STRING, &f_key, "", "PEM private key of --cert-file" },
	{ "port", FLAG_INT, &f_port, "443", "HTTPS port" },
	{ "init-server", FLAG_BOOL, &f_init, "false",
	  "write CERT_KEY_PATH{tls.crt,tls.key} from the certificate Secret, set the caBundle, exit (init container); "
	  "started as kubefledged-webhook-server without --tls-secret: upstream's way, a new CA and pair, no Secret" },
	{ "bind-address", FLAG_STRING, &f_bind, "", "address to listen on; empty = every interface" },
	{ "threads", FLAG_INT, &f_threads, "4", "worker threads serving requests" },
	{ "max-connections", FLAG_INT, &f_max_conns, "1000", "open connections at most; more are refused" },
	{ "max-connections-per-ip", FLAG_INT, &f_max_conns_ip, "100",
	  "open connections from one address at most; more are closed at once (so one client cannot take them all)" },
	{ "header-timeout", FLAG_DURATION, &f_hdr_ms, "10s",
	  "a new connection's TLS handshake and request headers must be complete within this, however slowly "
	  "they trickle in" },
	{ "idle-timeout", FLAG_DURATION, &f_idle_ms, "120s",
	  "close a connection idle this long (above the API server's 90s keep-alive)" },
	{ "request-timeout", FLAG_DURATION, &f_req_ms, "10s",
	  "a request's body and reply must be done within this after its headers, or the connection is cut" },
	{ "max-request-bytes", FLAG_INT, &f_max_body, "4194304",
	  "largest AdmissionReview accepted (413 above; the API server caps objects at 3 MiB)" },
	{ "max-inflight-request-bytes", FLAG_INT, &f_max_inflight, "33554432",
	  "request bytes held in memory at once, all connections together; a request that does not fit is "
	  "answered 503 at once" },
	{ "shutdown-grace", FLAG_DURATION, &f_grace_ms, "5s", "on SIGTERM, time for requests in flight to finish" },
	{ "tls-secret", FLAG_STRING, &f_secret, DEFAULT_SECRET,
	  "Secret holding the CA and serving pair (ca.crt, ca.key, tls.crt, tls.key); created and renewed as "
	  "needed; served from when no --cert-file is given" },
	{ "ca-secret-namespace", FLAG_STRING, &f_ns, "",
	  "namespace of --tls-secret and of the webhook Service; default $KUBEFLEDGED_NAMESPACE, else the "
	  "kubeconfig's or pod's namespace" },
	{ "webhook-service", FLAG_STRING, &f_service, "",
	  "Service name the certificate is issued for; default $WEBHOOK_SERVER_SERVICE, else " DEFAULT_SERVICE },
	{ "validating-webhook-config", FLAG_STRING, &f_vwc, "",
	  "ValidatingWebhookConfiguration whose caBundle is kept equal to the Secret's CA; default "
	  "$VALIDATING_WEBHOOK_CONFIG; empty = leave it alone" },
	{ "cert-validity", FLAG_DURATION, &f_cert_validity_ms, "8760h",
	  "lifetime of issued serving certificates; renewed when a third is left" },
	{ "ca-validity", FLAG_DURATION, &f_ca_validity_ms, "87600h", "lifetime of a generated CA" },
	{ "kubeconfig", FLAG_STRING, &f_kubeconfig, "", "kubeconfig file; default $KUBECONFIG, in-cluster, ~/.kube/config" },
	{ "master", FLAG_STRING, &f_master, "", "API server URL, overrides the kubeconfig's" },
	{ NULL },
};

static const char *env_or(const char *flag_value, const char *env, const char *def)
{
	if (flag_value && *flag_value)
		return flag_value;
	const char *e = getenv(env);
	return e && *e ? e : def;
}

static volatile int g_stop;
static int g_upstream; /* started as upstream's kubefledged-webhook-server */

#ifdef HAVE_KFKUBE
static struct kube_client *make_client(struct strbuf *err)
{
	struct kube_config *cfg = kube_config_load(*f_kubeconfig ? f_kubeconfig : NULL, NULL,
						   *f_master ? f_master : NULL, err);
	if (!cfg)
		return NULL;
	struct kube_client_opts co = { 5, 10, 10000, NULL };
	struct kube_client *c = kube_client_new(cfg, &co, err);
	kube_config_free(cfg);
	return c;
}

static void fill_certmgr_opts(struct wh_certmgr_opts *o, struct kube_client *c)
{
	memset(o, 0, sizeof *o);
	o->client = c;
	o->ns = env_or(f_ns, "KUBEFLEDGED_NAMESPACE", kube_client_namespace(c));
	o->secret = f_secret;
	o->service = env_or(f_service, "WEBHOOK_SERVER_SERVICE", DEFAULT_SERVICE);
	o->vwc = env_or(f_vwc, "VALIDATING_WEBHOOK_CONFIG", "");
	o->ca_validity_s = f_ca_validity_ms / 1000;
	o->cert_validity_s = f_cert_validity_ms / 1000;
}

/* --init-server as upstream's entry point: a fresh pair into CERT_KEY_PATH, the caBundle by GET + UPDATE. */
static int run_init_upstream(void)
{
	struct strbuf err = STRBUF_INIT;
	struct kube_client *c = make_client(&err);
	int rc = 1;
	if (!c) {
		LOG_ERROR("--init-server: %s", err.buf);
		goto out;
	}
	struct wh_initserver_opts o = {
		c,
		getenv("CERT_KEY_PATH"),
		env_or(f_service, "WEBHOOK_SERVER_SERVICE", DEFAULT_SERVICE),
		env_or(f_ns, "KUBEFLEDGED_NAMESPACE", kube_client_namespace(c)),
		env_or(f_vwc, "VALIDATING_WEBHOOK_CONFIG", ""),
		f_ca_validity_ms / 1000,
		f_cert_validity_ms / 1000,
	};
	if (wh_initserver_run(&o, &err) < 0) {
		LOG_ERROR("--init-server: %s", err.buf);
		goto out;
	}
	rc = 0;
out:
	kube_client_free(c);
	sb_release(&err);
	return rc;
}

/* --init-server: the files and the caBundle from the shared Secret, then exit. */
static int run_init(void)
{
	struct strbuf err = STRBUF_INIT;
	struct kube_client *c = NULL;
	struct wh_pki pki = { 0 };
	char *crt_path = NULL, *key_path = NULL;
	int rc = 1;
	const char *dir = getenv("CERT_KEY_PATH");
	if (!dir || !*dir || dir[strlen(dir) - 1] != '/') {
		LOG_ERROR("--init-server: environment variable CERT_KEY_PATH must name a directory and end with \"/\" "
			  "(got \"%s\")", dir ? dir : "");
		goto out;
	}
	if (!*f_secret) {
		LOG_ERROR("--init-server needs --tls-secret");
		goto out;
	}
	if (!(c = make_client(&err))) {
		LOG_ERROR("--init-server: %s", err.buf);
		goto out;
	}
	struct wh_certmgr_opts o;
	fill_certmgr_opts(&o, c);
	if (wh_certmgr_ensure_secret(&o, &pki, &err) < 0) {
		LOG_ERROR("--init-server: %s", err.buf);
		goto out;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		LOG_ERROR("--init-server: cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	crt_path = xasprintf("%stls.crt", dir);
	key_path = xasprintf("%stls.key", dir);
	if (kf_write_file_atomic(crt_path, pki.tls_crt, strlen(pki.tls_crt), 0644, &err) < 0 ||
	    kf_write_file_atomic(key_path, pki.tls_key, strlen(pki.tls_key), 0600, &err) < 0) {
		LOG_ERROR("--init-server: %s", err.buf);
		goto out;
	}
	LOG_INFO("wrote %s and %s from Secret %s/%s", crt_path, key_path, o.ns, o.secret);
	if (!*o.vwc) {
		LOG_WARN("VALIDATING_WEBHOOK_CONFIG is not set: caBundle left alone");
	} else {
		int n = 0;
		long code = 0;
		if (wh_certmgr_sync_vwc(&o, pki.ca_crt, &n, &code, &err) < 0) {
			/* as upstream: fail, and the kubelet retries the init container (the VWC may not exist yet) */
			LOG_ERROR("--init-server: %s", err.buf);
			goto out;
		}
		if (!n)
			LOG_INFO("ValidatingWebhookConfiguration %s already trusts the CA", o.vwc);
	}
	rc = 0;
out:
	free(crt_path);
	free(key_path);
	wh_pki_free(&pki);
	kube_client_free(c);
	sb_release(&err);
	return rc;
}
#endif

/* Waits for SIGTERM/SIGINT (blocked in every thread, so only this sigwait sees them). */
static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;
	sigwait(set, &sig);
	LOG_INFO("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	g_stop = 1;
	return NULL;
}

int cmd_webhook_server(int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct wh_tls *tls = NULL;
	struct wh_server *srv = NULL;
	int rc = 1;
#ifdef HAVE_KFKUBE
	struct kube_client *client = NULL;
	struct wh_certmgr *mgr = NULL;
#endif
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help") || !strcmp(argv[i], "-help")) {
			flags_usage(stdout, "webhook-server", "the ImageCache validating admission webhook", flag_table);
			return 0;
		}
	int npos = flags_parse(flag_table, argc, argv, &err);
	if (npos < 0 || npos > 0) {
		fprintf(stderr, "kubefledged webhook-server: %s\n", npos < 0 ? err.buf : "unexpected argument");
		flags_free(flag_table);
		sb_release(&err);
		return 2;
	}
	if (f_init) {
#ifdef HAVE_KFKUBE
		rc = g_upstream && !flags_find(flag_table, "tls-secret")->set ? run_init_upstream() : run_init();
#else
		LOG_ERROR("--init-server needs the Kubernetes client, which this build lacks");
#endif
		goto out;
	}
	if (f_port < 0 || f_port > 65535 || f_threads < 1 || f_max_conns < 1 || f_max_body < 1 || f_idle_ms < 1000 ||
	    f_max_conns_ip < 1 || f_hdr_ms < 1 || f_max_inflight < f_max_body) {
		LOG_ERROR("invalid limits: --port 0..65535, --threads, --max-connections, --max-connections-per-ip, "
			  "--max-request-bytes >= 1, --idle-timeout >= 1s, --header-timeout > 0, "
			  "--max-inflight-request-bytes >= --max-request-bytes (got %d < %d)", f_max_inflight, f_max_body);
		goto out;
	}
	if (!*f_cert != !*f_key) {
		LOG_ERROR("--cert-file and --key-file go together");
		goto out;
	}

	/* signals: blocked before any thread starts, handled by one thread */
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_t sig_th;
	pthread_create(&sig_th, NULL, signal_thread, &set);
	pthread_detach(sig_th);

	tls = wh_tls_new();
	int file_mode = *f_cert != 0;
	const char *vwc = env_or(f_vwc, "VALIDATING_WEBHOOK_CONFIG", "");
	if (file_mode && wh_tls_watch_files(tls, f_cert, f_key, 1000, &err) < 0) {
		LOG_ERROR("%s", err.buf);
		goto out;
	}
	if (!file_mode || *vwc) {
#ifdef HAVE_KFKUBE
		if (!*f_secret) {
			LOG_ERROR("no certificate: give --cert-file and --key-file, or --tls-secret");
			goto out;
		}
		if (!(client = make_client(&err))) {
			LOG_ERROR("%s", err.buf);
			goto out;
		}
		struct wh_certmgr_opts o;
		fill_certmgr_opts(&o, client);
		o.tls = file_mode ? NULL : tls;
		LOG_INFO("certificates: Secret %s/%s for Service %s%s%s", o.ns, o.secret, o.service,
			 *o.vwc ? ", caBundle of ValidatingWebhookConfiguration " : "", o.vwc);
		if (!(mgr = wh_certmgr_start(&o, &err))) {
			LOG_ERROR("%s", err.buf);
			goto out;
		}
		/* serve only once a certificate is loaded; errors are logged by the manager as it retries */
		while (!g_stop && wh_certmgr_wait_ready(mgr, 5000, &g_stop) < 0)
			LOG_INFO("waiting for the certificate Secret %s/%s", o.ns, o.secret);
		if (g_stop) {
			rc = 0;
			goto out;
		}
#else
		LOG_ERROR("no --cert-file/--key-file, and this build has no Kubernetes client for --tls-secret");
		goto out;
#endif
	}

	struct wh_server_opts so = { .bind_address = f_bind, .port = f_port, .threads = f_threads,
				     .max_connections = f_max_conns, .idle_timeout_s = (int)(f_idle_ms / 1000),
				     .request_timeout_ms = f_req_ms, .max_body = (size_t)f_max_body, .tls = tls,
				     .max_conns_per_ip = f_max_conns_ip, .header_timeout_ms = f_hdr_ms,
				     .max_inflight_bytes = (size_t)f_max_inflight };
	if (!(srv = wh_server_start(&so, &err))) {
		LOG_ERROR("%s", err.buf);
		goto out;
	}
	LOG_INFO("Wehook server listening on %s:%d", f_bind, wh_server_port(srv)); /* sic, upstream's line */
	while (!g_stop)
		kf_sleep_ms(100);
	struct wh_server_stats st;
	wh_server_stats(srv, &st);
	wh_server_stop(srv, f_grace_ms);
	srv = NULL;
	LOG_INFO("stopped after %llu requests (%llu allowed, %llu denied, %llu errors, %llu answered 503 for the "
		 "byte budget); %llu connections cut at a deadline, %llu for a slow body; at most %zu request bytes "
		 "held at once",
		 (unsigned long long)st.requests, (unsigned long long)st.allowed, (unsigned long long)st.denied,
		 (unsigned long long)st.errors, (unsigned long long)st.busy, (unsigned long long)st.expired,
		 (unsigned long long)st.dropped, st.inflight_peak);
	rc = 0;
out:
	wh_server_stop(srv, 0);
#ifdef HAVE_KFKUBE
	wh_certmgr_stop(mgr);
	kube_client_free(client);
#endif
	wh_tls_free(tls);
	flags_free(flag_table);
	sb_release(&err);
	return rc;
}

int cmd_upstream_webhook_server(int argc, char **argv)
{
	g_upstream = 1;
	return cmd_webhook_server(argc, argv);
}
