/* cri_rmi.c - removing exactly one image reference from a CRI runtime, and checking references given
 * by users.
 *
 * The trap: CRI RemoveImage("reg/a:1") removes the whole image, with every other tag and digest that
 * points at it (seen on containerd 1.6 on the test bed). Upstream kube-fledged's delete Job ran `crictl rmi`, so
 * purging one ImageCache could remove images another cache (or a workload) still wanted. Here:
 *   1. ImageStatus(ref): absent -> done (idempotent);
 *   2. split the image's references into those that belong to ref (the tag itself, and digest entries
 *      of its repository when no other tag of that repository remains; for a digest reference that
 *      digest entry only, never the repository's tags) and the others;
 *   3. no others -> RemoveImage(image id); others on containerd -> containerd Images/Delete of just our
 *      names; others elsewhere (CRI-O has no such API) -> refuse, naming the other references.
 * References are compared after normalisation (busybox:1.36 == docker.io/library/busybox:1.36) with
 * util/imageref.c. Image IDs ("sha256:<hex>", 64 hex) are refused before anything is asked: removing by ID
 * removes the image with every tag, which is never what one reference asks for. A reference that the
 * runtime resolves to an image not carrying it (containerd falls back to an ID-prefix lookup when a name
 * is unknown) owns nothing there, so it is refused too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cri.h"
#include "util/imageref.h"
#include "util/log.h"
#include "util/util.h"

int cri_is_image_id(const char *s)
{
	if (strncmp(s, "sha256:", 7))
		return 0;
	s += 7;
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return 0;
	return n == 64;
}

int cri_check_ref(const char *ref, struct strbuf *err)
{
	struct imageref r;
	struct strbuf why = STRBUF_INIT;
	if (imageref_parse(ref ? ref : "", &r, &why) == 0) {
		sb_release(&why);
		return 0;
	}
	sb_adds(err, "invalid image reference ");
	sb_add_quoted(err, ref ? ref : "");
	sb_addf(err, ": %s", why.buf);
	sb_release(&why);
	return CRI_EINVAL;
}

static int same_repo(const struct imageref *a, const struct imageref *b)
{
	return !strcmp(a->domain, b->domain) && !strcmp(a->path, b->path);
}

/* Is entry (one of an image's references) removed with r? other_tag_same_repo: the image also carries
 * another tag of r's repository (which keeps the repository's digest entries). */
static int ref_owns(const struct imageref *r, const char *entry, int other_tag_same_repo)
{
	struct imageref h;
	struct strbuf ignored = STRBUF_INIT;
	int ok = imageref_parse(entry, &h, &ignored) == 0;
	sb_release(&ignored);
	if (!ok || !same_repo(r, &h))
		return 0;
	if (r->digest[0]) /* repo@digest (a tag beside it is dropped by runtimes): that digest entry only */
		return !strcmp(h.digest, r->digest) && (!h.tag[0] || !strcmp(h.tag, r->tag));
	const char *rtag = r->tag[0] ? r->tag : "latest";
	if (h.digest[0]) /* the repository's digest entry: goes with its last tag */
		return !other_tag_same_repo && (!h.tag[0] || !strcmp(h.tag, rtag));
	return !strcmp(h.tag, rtag);
}

void cri_rmi_partition(const char *ref, const struct cri_image *img, const char ***own, size_t *n_own,
		       const char ***others, size_t *n_others)
{
	size_t total = img->n_repo_tags + img->n_repo_digests;
	*own = xcalloc(total + 1, sizeof **own);
	*others = xcalloc(total + 1, sizeof **others);
	*n_own = *n_others = 0;

	struct imageref r, h;
	struct strbuf ignored = STRBUF_INIT;
	int parsed = imageref_parse(ref, &r, &ignored) == 0;
	const char *rtag = !parsed ? "" : r.tag[0] ? r.tag : "latest";

	/* Does another tag of the same repository keep the repository's digest entries alive? */
	int other_tag_same_repo = 0;
	for (size_t i = 0; parsed && !r.digest[0] && i < img->n_repo_tags; i++) {
		sb_reset(&ignored);
		if (imageref_parse(img->repo_tags[i], &h, &ignored) == 0 && same_repo(&r, &h) && h.tag[0] &&
		    !h.digest[0] && strcmp(h.tag, rtag))
			other_tag_same_repo = 1;
	}
	sb_release(&ignored);

	for (size_t i = 0; i < total; i++) {
		const char *e = i < img->n_repo_tags ? img->repo_tags[i] : img->repo_digests[i - img->n_repo_tags];
		if (parsed && ref_owns(&r, e, other_tag_same_repo))
			(*own)[(*n_own)++] = e;
		else
			(*others)[(*n_others)++] = e;
	}
}

int cri_image_has_ref(const struct cri_image *img, const char *ref)
{
	struct imageref r;
	struct strbuf ignored = STRBUF_INIT;
	int ok = imageref_parse(ref, &r, &ignored) == 0;
	sb_release(&ignored);
	for (size_t i = 0; ok && i < img->n_repo_tags + img->n_repo_digests; i++) {
		const char *e = i < img->n_repo_tags ? img->repo_tags[i] : img->repo_digests[i - img->n_repo_tags];
		if (ref_owns(&r, e, 1)) /* 1: a digest entry does not stand for a tag */
			return 1;
	}
	return 0;
}

static void add_list(struct strbuf *sb, const char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_addf(sb, "%s%s", i ? ", " : "", v[i]);
}

/* After Images/Delete, containerd's CRI plugin updates its image cache from an event, asynchronously.
 * Wait (briefly) until ImageStatus no longer finds ref, so a caller that checks right away agrees. */
static void wait_until_gone(struct cri_client *c, const char *ref)
{
	for (int i = 0; i < 100; i++) {
		struct cri_image img;
		struct strbuf ignored = STRBUF_INIT;
		int present = 1;
		int rc = cri_image_status(c, ref, &img, &present, &ignored);
		cri_image_clear(&img);
		sb_release(&ignored);
		if (rc || !present)
			return;
		kf_sleep_ms(20);
	}
	LOG_WARN("%s: %s still visible through CRI 2s after containerd deleted it", cri_client_socket(c), ref);
}

int cri_rmi(struct cri_client *c, const char *ref, struct strbuf *msg, struct strbuf *err)
{
	struct cri_image img = { 0 };
	struct cri_version v = { 0 };
	const char **own = NULL, **others = NULL;
	size_t n_own = 0, n_others = 0;
	int present = 0;
	int rc = cri_check_ref(ref, err);
	if (rc)
		return rc;
	rc = cri_image_status(c, ref, &img, &present, err);
	if (rc)
		goto out;
	if (!present) {
		sb_addf(msg, "image %s not present", ref);
		goto out;
	}
	cri_rmi_partition(ref, &img, &own, &n_own, &others, &n_others);
	if (n_own == 0) {
		rc = CRI_EREFUSED;
		sb_addf(err, "image %s resolves to %s, whose references (", ref, img.id);
		add_list(err, others, n_others);
		sb_adds(err, ") do not include it; nothing removed");
		goto out;
	}
	if (n_others == 0) {
		rc = cri_remove_image(c, img.id, err);
		if (rc == CRI_NOT_FOUND) { /* removed meanwhile: the result is what was asked */
			sb_reset(err);
			rc = 0;
		}
		if (!rc)
			sb_addf(msg, "removed image %s (%s)", ref, img.id);
		goto out;
	}

	/* Other references share the image: delete only our names, if the runtime can. */
	struct strbuf verr = STRBUF_INIT;
	int vrc = cri_version(c, &v, &verr);
	sb_release(&verr);
	if (vrc || !v.runtime_name || strcmp(v.runtime_name, "containerd")) {
		rc = CRI_EREFUSED;
		sb_addf(err, "not removing image %s: its image %s is also referenced as ", ref, img.id);
		add_list(err, others, n_others);
		sb_addf(err, ", and CRI RemoveImage would remove those too; %s has no API to remove a single "
			     "reference (remove the other references first, or the whole image by its id)",
			vrc ? "this runtime" : v.runtime_name);
		goto out;
	}
	for (size_t i = 0; i < n_own; i++) {
		rc = cri_containerd_delete_image(c, own[i], 0, CRI_CONTAINERD_NAMESPACE, err);
		if (rc == CRI_NOT_FOUND) {
			sb_reset(err);
			rc = 0;
		}
		if (rc) {
			struct strbuf e2 = STRBUF_INIT;
			sb_addf(&e2, "containerd Images/Delete %s: %s", own[i], err->buf);
			sb_reset(err);
			sb_add(err, e2.buf, e2.len);
			sb_release(&e2);
			goto out;
		}
	}
	wait_until_gone(c, ref);
	sb_addf(msg, "untagged %s (removed ", ref);
	add_list(msg, own, n_own);
	sb_addf(msg, "); image %s kept for ", img.id);
	add_list(msg, others, n_others);
out:
	free(own);
	free(others);
	cri_image_clear(&img);
	cri_version_clear(&v);
	return rc;
}

int cri_container_uses(const struct cri_container *k, const struct cri_image *img, const char *canonical_ref)
{
	if (img->id && *img->id && ((k->image_ref && !strcmp(k->image_ref, img->id)) ||
				    (k->image && !strcmp(k->image, img->id))))
		return 1;
	struct imageref r;
	struct strbuf e = STRBUF_INIT, canon = STRBUF_INIT;
	int same = 0;
	if (k->image && canonical_ref && imageref_parse(k->image, &r, &e) == 0) {
		imageref_canonical(&r, &canon);
		same = !strcmp(canon.buf, canonical_ref);
	}
	sb_release(&e);
	sb_release(&canon);
	return same;
}

int cri_container_spent_puller(const struct cri_container *k)
{
	return k->state == CRI_CONTAINER_EXITED && k->name && !strcmp(k->name, "imagepuller");
}

static const char *container_state(int s)
{
	return s == CRI_CONTAINER_RUNNING ? "running" : s == CRI_CONTAINER_EXITED ? "exited" :
	       s == CRI_CONTAINER_CREATED ? "created" : "unknown";
}

size_t cri_image_users(const struct cri_container_list *cl, const struct cri_image *img, const char *canonical_ref,
		       struct strbuf *who)
{
	size_t users = 0;
	for (size_t i = 0; i < cl->n; i++) {
		const struct cri_container *k = &cl->items[i];
		if (cri_container_spent_puller(k) || !cri_container_uses(k, img, canonical_ref))
			continue;
		if (users++ < 3)
			sb_addf(who, "%scontainer %s of pod %s/%s (%s)", users > 1 ? ", " : "", k->name ? k->name : "",
				k->pod_namespace ? k->pod_namespace : "", k->pod_name ? k->pod_name : "",
				container_state(k->state));
	}
	if (users > 3)
		sb_addf(who, " and %zu more", users - 3);
	return users;
}
