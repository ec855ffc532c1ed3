/* plugin_registry.h - how many bytes a node would download to pull an image: asked of the image's
 * registry (Docker Registry HTTP API v2 / OCI distribution) with libcurl, for `kubectl fledged plan`.
 *
 *   GET /v2/<repository>/manifests/<tag or digest>, accepting OCI and Docker manifests and indexes; an index
 *   (a multi-platform image) is resolved to the node's platform (os/architecture[/variant]; for arm without
 *   a variant, v7 first) and that manifest fetched by digest; the size is the config's plus the compressed
 *   layers' (what a pull downloads), and the layers are listed so that layers shared by several images
 *   pulled onto one node are counted once.
 *
 * Authentication is the registry's: on a 401 with `WWW-Authenticate: Basic` the credentials are sent, with
 * `Bearer realm=...,service=...` a pull token is fetched from the realm (with the credentials, or
 * anonymously). Credentials come from a docker config file (the `auths` entries `docker login` writes,
 * matched to the image as the kubelet matches them: agent_auth.h); credential helpers (`credsStore`,
 * `credHelpers`) are not run. Docker Hub (docker.io) is asked at registry-1.docker.io.
 *
 * HTTPS, with the system's CAs, except for the hosts given as plain-HTTP registries (and loopback ones,
 * which are tried over HTTPS first, then HTTP). Never fatal: every failure is a reason ("registry
 * unreachable: ...", "unauthorized", "not found") and the size is unknown. Results are remembered per
 * (image, platform), and a registry that could not be reached is not asked again in the same run. */
#ifndef PLUGIN_REGISTRY_H
#define PLUGIN_REGISTRY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

struct plugin_registry_opts {
	const char *docker_config;      /* config.json path; NULL: $DOCKER_CONFIG/config.json, else ~/.docker/config.json */
	const char *plain_http;         /* comma-separated hosts ("host:port") spoken to over plain HTTP; may be NULL */
	long timeout_ms;                /* per request; 0 = 10 s */
};

struct plugin_registry;

/* Never fails: a docker config that cannot be read is reported in warn (naming the file, never its
 * content) and ignored. */
struct plugin_registry *plugin_registry_new(const struct plugin_registry_opts *o, struct strbuf *warn);
void plugin_registry_free(struct plugin_registry *r); /* wipes the credentials */

/* A plugin_size_fn (plugin_plan.h): ud is the struct plugin_registry *. */
int plugin_registry_size(void *ud, const char *image, const char *platform, int64_t *bytes, json_t **layers,
			 struct strbuf *why);

/* Picks the manifest of platform ("linux/arm64", "linux/arm/v7") from an image index (borrowed): its
 * descriptor, or NULL. Exposed for the unit tests. */
json_t *plugin_index_pick(json_t *index, const char *platform);
/* The size of an image manifest (config + layers) and its layers as a new array of {digest, size}: 0, or -1
 * with why (a schema 1 manifest, missing sizes). Exposed for the unit tests. */
int plugin_manifest_size(json_t *manifest, int64_t *bytes, json_t **layers, struct strbuf *why);

#endif
