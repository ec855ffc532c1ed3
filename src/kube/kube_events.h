/* kube_events.h - records core/v1 Events about objects, like client-go's EventRecorder: an identical event
 * (same object, type, reason, message) emitted again within 10 minutes is aggregated by PATCHing its
 * count and lastTimestamp instead of creating a new object. Events are best effort: failures are logged,
 * never returned, and never block the caller for more than one request. Thread safe. */
#ifndef KUBE_EVENTS_H
#define KUBE_EVENTS_H

#include <jansson.h>

#include "kube_client.h"

struct kube_recorder;

/* component: source.component of the events, e.g. "kubefledged-controller". host may be NULL. */
struct kube_recorder *kube_recorder_new(struct kube_client *c, const char *component, const char *host);
void kube_recorder_free(struct kube_recorder *r);
/* obj: the involved object (borrowed; apiVersion, kind, metadata.namespace/name/uid/resourceVersion are
 * read from it). type: "Normal" or "Warning". */
void kube_event(struct kube_recorder *r, json_t *obj, const char *type, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
