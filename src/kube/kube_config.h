/* kube_config.h - where the API server is and how to authenticate to it.
 *
 * Sources, in the order kubectl and client-go use them:
 *   1. an explicit kubeconfig path (--kubeconfig), else $KUBECONFIG (first file of a ':' list),
 *      else in-cluster config when KUBERNETES_SERVICE_HOST is set, else ~/.kube/config;
 *   2. in-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the service-account
 *      token file (re-read when it changes: bound tokens rotate), CA and namespace files under
 *      /var/run/secrets/kubernetes.io/serviceaccount (overridable for tests with KUBE_SA_DIR).
 * A kubeconfig gives the current context (or --context): cluster server, certificate-authority (file,
 * relative to the kubeconfig's directory) or certificate-authority-data, insecure-skip-tls-verify,
 * tls-server-name; user client-certificate(-data), client-key(-data), token, tokenFile; namespace.
 * --master overrides the server URL.
 *
 * Errors name the file, the context and the field ("kubeconfig /x/y: context \"dev\": user \"bob\":
 * client-key \"k.pem\": cannot open ..."). */
#ifndef KUBE_CONFIG_H
#define KUBE_CONFIG_H

#include "util/strbuf.h"

struct kube_config {
	char *server;          /* "https://10.96.0.1:443"; no trailing slash */
	char *ca_pem;          /* PEM of the CA bundle (from file or -data), or NULL = system trust store */
	char *cert_pem;        /* client certificate PEM, or NULL */
	char *key_pem;         /* client key PEM, or NULL */
	char *token;           /* bearer token, or NULL */
	char *token_file;      /* re-read on every 401 and every minute (bound SA tokens rotate), or NULL */
	char *tls_server_name; /* SNI / verification name override, or NULL */
	int insecure;          /* insecure-skip-tls-verify */
	char *namespace;       /* context namespace, in-cluster namespace, or "default" */
	char *context;         /* context name used ("in-cluster" for in-cluster config) */
};

/* kubeconfig: path or NULL (see search order above). context, master: NULL for defaults.
 * Returns a config the caller frees with kube_config_free(), or NULL with err set. */
struct kube_config *kube_config_load(const char *kubeconfig, const char *context, const char *master,
				     struct strbuf *err);
/* Parses kubeconfig text (YAML or JSON). base_dir resolves relative file paths; origin is used in
 * messages (usually the file name). */
struct kube_config *kube_config_parse(const char *text, size_t len, const char *base_dir, const char *origin,
				      const char *context, struct strbuf *err);
struct kube_config *kube_config_in_cluster(struct strbuf *err);
void kube_config_free(struct kube_config *cfg);

#endif
