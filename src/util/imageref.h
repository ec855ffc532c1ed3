/* imageref.h - container image references, parsed by the grammar of the distribution project
 * (github.com/distribution/reference) and normalised the way containerd, CRI and the kubelet do:
 *
 *   busybox               -> docker.io/library/busybox            (no tag: implicitly :latest)
 *   busybox:1.36          -> docker.io/library/busybox:1.36
 *   org/app@sha256:<64h>  -> docker.io/org/app@sha256:<64h>
 *   127.0.0.1:5001/a/b:1  -> 127.0.0.1:5001/a/b:1                 (a first component with '.' or ':',
 *                                                                  or "localhost", is a registry host)
 *
 * Upstream kube-fledged never parsed references: it treated "host:5000/app" as tagged and found images on a
 * node by substring search (nginx:1.2 "matched" nginx:1.23). We parse, so the webhook can reject bad
 * references naming the problem, and the controller can tell exactly whether a node has an image. */
#ifndef KF_IMAGEREF_H
#define KF_IMAGEREF_H

#include <stddef.h>

#include "strbuf.h"

#define IMAGEREF_MAX 4096 /* longest reference accepted (name <= 255, tag <= 128, digest <= ~200) */

struct imageref {
	char domain[256]; /* "docker.io", "127.0.0.1:5001", "[::1]:5000" */
	char path[256];   /* "library/busybox" */
	char tag[129];    /* "1.36", or "" when absent */
	char digest[200]; /* "sha256:<hex>", or "" when absent */
};

/* Parses s. Returns 0, or -1 with a reason appended to err (without the image itself, so callers can say
 * `image "X": <reason>`), e.g. "repository name must be lowercase", "invalid tag \"v1!\"",
 * "invalid digest: sha256 needs 64 hex characters".
 * Image IDs are refused ("an image ID is not an image reference: ..."): 64 hex characters alone, and
 * "sha256:<hex>" / "sha384:<hex>" / "sha512:<hex>" without a registry or path, which the grammar would read
 * as docker.io/library/sha256 but runtimes resolve as an image ID (or, for short hex, an ID prefix). */
int imageref_parse(const char *s, struct imageref *out, struct strbuf *err);

/* "domain/path[:tag][@digest]" with nothing implied: busybox -> docker.io/library/busybox. */
void imageref_name(const struct imageref *r, struct strbuf *out);
/* The fully qualified form a runtime reports: the name plus ":tag" if tagged, "@digest" if it has a digest;
 * ":latest" when it has neither (what a pull of an untagged name fetches). */
void imageref_canonical(const struct imageref *r, struct strbuf *out);
/* 1 when the reference floats: no digest and the tag is absent or "latest" (upstream re-pulls these). */
int imageref_is_floating(const struct imageref *r);

/* 1 when `have` (a name a runtime or node.status.images reports, e.g. "docker.io/library/nginx:1.23" or
 * "docker.io/library/nginx@sha256:...") is the image `want` asks for: same domain and path, and the same
 * digest (if want has one) or the same tag (want's tag, or "latest" when untagged). Unparseable `have`
 * never matches. */
int imageref_matches(const struct imageref *want, const char *have);

#endif
