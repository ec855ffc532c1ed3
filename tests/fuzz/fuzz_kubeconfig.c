/* fuzz_kubeconfig.c - libFuzzer target: kubeconfig text through kube_yaml_load_all() and
 * kube_config_parse() (YAML or JSON; anchors, aliases, merge keys, the alias budget).
 *
 * Invariants: no crash, leak or timeout (a "billion laughs" document must be refused within the alias
 * budget, not expanded); every failure has a message and every success none; a parsed config always has
 * a server URL. Relative file references resolve under a directory that does not exist, so the target
 * reads no files unless the input names an absolute path. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_config.h"
#include "kube/kube_yaml.h"
#include "util/log.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct strbuf err = STRBUF_INIT;
	log_stderr_threshold = LOG_LVL_FATAL; /* proxy-url warnings would flood the run */
	json_t *docs = kube_yaml_load_all(p, size, &err);
	if (!docs == !err.len)
		abort();
	json_decref(docs);
	sb_reset(&err);
	struct kube_config *cfg = kube_config_parse(p, size, "/nonexistent/kf-fuzz", "fuzz", NULL, &err);
	if (!cfg == !err.len || (cfg && (!cfg->server || !*cfg->server)))
		abort();
	kube_config_free(cfg);
	sb_release(&err);
	return 0;
}
