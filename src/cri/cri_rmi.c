/* cri_rmi.c - removing exactly one image reference from a CRI runtime, and checking references given
 * by users.
 *
 * The trap: CRI RemoveImage("reg/a:1") removes the whole image, with every other tag and digest that
 * points at it (seen on containerd 1.6 on the test bed). Upstream kube-fledged's delete Job ran `crictl rmi`, so
 * purging one ImageCache could remove images another cache (or a workload) still wanted. Here:
 *   1. ImageStatus(ref): absent -> done (idempotent);
 *   2. split the image's references into those that belong to ref (the tag itself, and digest entries
 *      of its repository when no other tag of that repository remains) and the others;
 *   3. no others -> RemoveImage(image id); others on containerd -> containerd Images/Delete of just our
 *      names; others elsewhere (CRI-O has no such API) -> refuse, naming the other references.
 * References are compared after normalisation (busybox:1.36 == docker.io/library/busybox:1.36) with
 * util/imageref.c. */
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

/* Appends s for a message, with quotes, control characters and non-ASCII bytes escaped. */
static void add_quoted(struct strbuf *sb, const char *s)
{
	sb_addc(sb, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			sb_addf(sb, "\\%c", *p);
		else if (*p == '\n')
			sb_adds(sb, "\\n");
		else if (*p == '\t')
			sb_adds(sb, "\\t");
		else if (*p < 0x20 || *p >= 0x7f)
			sb_addf(sb, "\\x%02x", *p);
		else
			sb_addc(sb, (char)*p);
	}
	sb_addc(sb, '"');
}

int cri_check_ref(const char *ref, struct strbuf *err)
{
	struct imageref r;
	struct strbuf why = STRBUF_INIT;
	if (ref && cri_is_image_id(ref))
		return 0;
	if (imageref_parse(ref ? ref : "", &r, &why) == 0) {
		sb_release(&why);
		return 0;
	}
	sb_adds(err, "invalid image reference ");
	add_quoted(err, ref ? ref : "");
	sb_addf(err, ": %s", why.buf);
	sb_release(&why);
	return CRI_EINVAL;
}

static int same_repo(const struct imageref *a, const struct imageref *b)
{
	return !strcmp(a->domain, b->domain) && !strcmp(a->path, b->path);
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
	int id = cri_is_image_id(ref);
	int parsed = !id && imageref_parse(ref, &r, &ignored) == 0;
	/* The tag asked for ("latest" when untagged; none for a bare digest reference). */
	const char *rtag = !parsed ? "" : r.tag[0] ? r.tag : r.digest[0] ? "" : "latest";

	/* Does another tag of the same repository keep the repository's digest entries alive? */
	int other_tag_same_repo = 0;
	for (size_t i = 0; parsed && i < img->n_repo_tags; i++) {
		sb_reset(&ignored);
		if (imageref_parse(img->repo_tags[i], &h, &ignored) == 0 && same_repo(&r, &h) && h.tag[0] &&
		    strcmp(h.tag, rtag))
			other_tag_same_repo = 1;
	}

	for (size_t i = 0; i < total; i++) {
		const char *e = i < img->n_repo_tags ? img->repo_tags[i] : img->repo_digests[i - img->n_repo_tags];
		int mine;
		sb_reset(&ignored);
		if (id)
			mine = 1;
		else if (!parsed || imageref_parse(e, &h, &ignored) < 0 || !same_repo(&r, &h))
			mine = 0;
		else if (!rtag[0])          /* repo@digest asked: every reference of that repository */
			mine = 1;
		else if (h.tag[0])          /* a tag of the same repository: only the one asked for */
			mine = !strcmp(h.tag, rtag);
		else                        /* repo@digest entry: ours unless another tag of the repo stays */
			mine = (r.digest[0] && !strcmp(r.digest, h.digest)) || !other_tag_same_repo;
		if (mine)
			(*own)[(*n_own)++] = e;
		else
			(*others)[(*n_others)++] = e;
	}
	sb_release(&ignored);
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
	if (!cri_is_image_id(ref) && n_own == 0) {
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
