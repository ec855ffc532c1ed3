/* agent_auth.h - registry credentials from kubernetes.io/dockerconfigjson (and legacy
 * kubernetes.io/dockercfg) Secrets, matched against an image the way the kubelet's keyring does
 * (pkg/credentialprovider):
 *
 *   - a key is "host[:port][/path]", with or without a scheme ("https://index.docker.io/v1/"); a path of
 *     /v1/ or /v2/ counts as none;
 *   - it matches an image when the hosts match (each dot-separated part may be a glob: "*.example.com"),
 *     the ports are equal (none = none), and the key's path is a prefix of the repository path;
 *   - Docker Hub has aliases: docker.io, index.docker.io and registry-1.docker.io are one host;
 *   - every matching credential of every Secret is tried, most specific key first (reverse order of the
 *     keys, as the kubelet sorts them); the first that works wins.
 * A pull sends the user name and password (or tokens) without a server address: the match is done here,
 * and containerd drops credentials whose server address differs from the host it contacts (Docker Hub's
 * is registry-1.docker.io, whatever the key says).
 *
 * Credentials are secrets: they are never logged, never put into an error message or another object,
 * and every copy this module makes is wiped (explicit_bzero) before it is freed. */
#ifndef AGENT_AUTH_H
#define AGENT_AUTH_H

#include <jansson.h>
#include <stddef.h>

#include "util/imageref.h"
#include "util/strbuf.h"

/* One credential. All strings owned (may be NULL) and wiped by agent_creds_free. */
struct agent_cred {
	char *key;       /* the config key as written ("https://index.docker.io/v1/", "reg:5000/team") */
	char *username;  /* from "username" or decoded from "auth" (base64 user:password) */
	char *password;
	char *identity_token;
	char *registry_token;
};

struct agent_creds {
	struct agent_cred *items;
	size_t n;
};

/* Parses a docker config: {"auths": {KEY: {...}}} (.dockerconfigjson), or with legacy = 1 the bare
 * {KEY: {...}} of .dockercfg, and appends its entries to out. Returns 0, or -1 with err saying what is
 * wrong (never quoting a value). The text itself is not modified; the caller wipes it. */
int agent_dockercfg_parse(const char *text, size_t len, int legacy, struct agent_creds *out, struct strbuf *err);

/* 1 when a config key applies to the image (ref parsed by imageref_parse). */
int agent_auth_key_matches(const char *key, const struct imageref *ref);

/* The indices into creds of the credentials for ref, most specific key first (stable for equal keys),
 * each distinct credential once, at most max of them; returns how many. */
size_t agent_auth_select(const struct agent_creds *creds, const struct imageref *ref, size_t *idx, size_t max);

/* Wipes and frees every entry; creds is empty afterwards. */
void agent_creds_free(struct agent_creds *creds);

/* Zeroes every string value of a JSON tree in place (before it is freed), for replies that held
 * Secret data. */
void agent_json_wipe(json_t *j);

#endif
