/* plugin_cluster.h - `kubectl fledged` and the cluster: the connection (kubeconfig as kubectl reads it:
 * --kubeconfig, $KUBECONFIG, ~/.kube/config, --context, -n), the checks that turn a cluster that cannot be
 * reached or lacks the ImageCache CRD into one clear sentence, the mode the controller runs in, and the
 * few requests the commands make (list, get, annotate).
 *
 * Mode detection (plugin_mode_guess): from the NodeImageCaches and the ImageCaches; --mode overrides it. */
#ifndef PLUGIN_CLUSTER_H
#define PLUGIN_CLUSTER_H

#include <jansson.h>

#include "kube/kube_client.h"
#include "kube/kube_config.h"
#include "plugin_view.h"
#include "util/strbuf.h"

extern const struct kube_resource PLUGIN_NIC_RESOURCE; /* nodeimagecaches.kubefledged.io/v1alpha1 */

struct plugin_conn_opts {
	const char *kubeconfig; /* "" or NULL: $KUBECONFIG, else ~/.kube/config (in a pod: its service account) */
	const char *context;    /* "" or NULL: current-context */
	const char *ns;         /* "" or NULL: the context's namespace, else "default" */
	const char *mode;       /* "auto" (NULL), "jobs" or "agent" */
};

struct plugin_session {
	struct kube_config *cfg;
	struct kube_client *c;
	char *ns;
	enum plugin_mode mode; /* known after plugin_load_nodes */
	int mode_fixed;        /* --mode jobs|agent */
	int nic_crd;           /* the NodeImageCache CRD is installed */
};

/* Loads the config, connects, and checks that the API server answers and serves ImageCaches. 0, or -1 with
 * err saying what is wrong and what to do ("cannot reach the Kubernetes API server at https://...:
 * Connection refused", "the ImageCache CRD ... is not installed ..."). */
int plugin_connect(const struct plugin_conn_opts *o, struct plugin_session *s, struct strbuf *err);
void plugin_disconnect(struct plugin_session *s);

/* The items of a list (ns NULL: all namespaces or cluster-scoped): a new array, or NULL with err. */
json_t *plugin_list(struct plugin_session *s, const struct kube_resource *r, const char *ns, struct strbuf *err);
/* Every ImageCache of the cluster (a new array); where the user may not list them cluster-wide, those of
 * the session's namespace, with *partial set. NULL with err. */
json_t *plugin_list_caches_all(struct plugin_session *s, int *partial, struct strbuf *err);
/* The Nodes and, when their CRD is installed, the NodeImageCaches (new arrays; *nics NULL otherwise), and
 * the session's mode from them and caches_all (plugin_mode_guess) unless --mode fixed it. 0, or -1 with err. */
int plugin_load_nodes(struct plugin_session *s, json_t *caches_all, int complete, json_t **nodes, json_t **nics,
		      struct strbuf *err);
/* ImageCache ns/name: a new reference, or NULL with err ("ImageCache ns/name not found"); *not_found set. */
json_t *plugin_get_cache(struct plugin_session *s, const char *ns, const char *name, int *not_found,
			 struct strbuf *err);
/* Sets annotation key="" on ImageCache ns/name (a merge patch). 0, or -1 with err. */
int plugin_annotate(struct plugin_session *s, const char *ns, const char *name, const char *key, struct strbuf *err);

/* One sentence for a failed request (used by the commands for their own requests). */
void plugin_explain(struct plugin_session *s, const char *what, const struct kube_err *e, struct strbuf *err);

#endif
