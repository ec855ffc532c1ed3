/* op_render_metrics.c - how Prometheus finds the metrics: metrics-service.yaml (a Service for the
 * controller's port, and in mode agent a headless one for the agents', both annotated for annotation-based
 * discovery) and servicemonitor.yaml (the Prometheus Operator's ServiceMonitor selecting both); see
 * op_render_int.h for the helpers. */
#include "op_render_int.h"

/* One metrics Service: the component's labels plus app.kubernetes.io/component=metrics (what the
 * ServiceMonitor selects), the user's annotations, and prometheus.io/port last (so it wins over a user's
 * key of the same name, as the later duplicate does in the chart's manifest). */
static json_t *metrics_service(struct op_rctx *r, const char *name, const char *component, const char *port_path,
			       int headless)
{
	json_t *meta = h_metadata(r, name, 1, component), *ann = json_object();
	json_object_set_new(json_object_get(meta, "labels"), "app.kubernetes.io/component", json_string("metrics"));
	r_with_merge(r, ann, "metricsService.annotations");
	/* | quote: the text as a string, but nothing at all for nil (sprig's quote drops nil), read back as null */
	const char *port = r_text(r, port_path);
	json_object_set_new(ann, "prometheus.io/port", r_val(r, port_path) ? json_string(port) : json_null());
	json_object_set_new(meta, "annotations", ann);
	json_t *spec = json_pack("{s:o, s:[{s:s, s:o, s:s, s:s}]}", "selector", h_selector(r, component), "ports",
				 "name", "metrics", "port", r_scalar_of(r, port_path), "targetPort", "metrics",
				 "protocol", "TCP");
	if (headless)
		json_object_set_new(spec, "clusterIP", json_string("None")); /* one endpoint per node's agent */
	else
		json_object_set_new(spec, "type", json_string("ClusterIP"));
	return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Service", "metadata", meta, "spec", spec);
}

void t_metrics_service(struct op_rctx *r)
{
	if (!r_true(r, "metricsService.create"))
		return;
	if (r_true(r, "controller.metricsPort"))
		r_emit(r, metrics_service(r, r_fmt(r, "%s-metrics", h_controller_name(r)), "controller",
					  "controller.metricsPort", 0));
	if (r_eq(r, "mode", "agent"))
		r_emit(r, metrics_service(r, r_fmt(r, "%s-metrics", h_agent_name(r)), "agent", "agent.metricsPort", 1));
}

void t_servicemonitor(struct op_rctx *r)
{
	if (!r_true(r, "serviceMonitor.enabled") || !r_true(r, "metricsService.create"))
		return;
	json_t *meta = h_metadata(r, h_fullname(r), 1, "metrics");
	r_with_merge(r, json_object_get(meta, "labels"), "serviceMonitor.labels");
	json_t *spec = json_pack("{s:{s:[o]}, s:{s:{s:o, s:s}}, s:[{s:s, s:s, s:o, s:o}]}",
		"namespaceSelector", "matchNames", r_scalar(r, "the namespace", r->rel->ns),
		"selector", "matchLabels", "app.kubernetes.io/instance", r_scalar(r, "the release name", r->rel->name),
		"app.kubernetes.io/component", "metrics",
		"endpoints", "port", "metrics", "path", "/metrics", "interval", r_scalar_of(r, "serviceMonitor.interval"),
		"scrapeTimeout", r_scalar_of(r, "serviceMonitor.scrapeTimeout"));
	r_emit(r, json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "monitoring.coreos.com/v1", "kind", "ServiceMonitor",
			    "metadata", meta, "spec", spec));
}
