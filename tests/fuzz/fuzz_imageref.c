/* fuzz_imageref.c - libFuzzer target: image references as users write them and runtimes report them
 * (util/imageref.c), and cri rmi's choice of what to delete (cri_rmi_partition), with oracles.
 *
 * Input: lines. The first is a reference as a user (an ImageCache, `kubefledged cri rmi`) gives it; the
 * others are the references a runtime reports for one image (with '@': repo_digests, else repo_tags).
 * Oracles:
 *   imageref: a parsed reference's canonical form parses again to the same canonical form, matches itself,
 *     and names the same repository; cri_check_ref agrees with imageref_parse; image IDs never parse.
 *   rmi: own + others is every entry, once; every own entry is of ref's repository; for a digest reference
 *     an own entry carries that digest; for a tag reference an own entry is that tag (untagged = latest),
 *     or a digest entry of the repository while no other tag of it is on the image; the entry spelling ref
 *     itself is always own; cri_image_has_ref is true exactly when such an entry exists. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cri/cri.h"
#include "util/imageref.h"
#include "util/util.h"

#define MAX_ENTRIES 16

static int parse(const char *s, struct imageref *r)
{
	struct strbuf e = STRBUF_INIT;
	int ok = imageref_parse(s, r, &e) == 0;
	if (!ok && !e.len)
		abort(); /* a refusal always says why */
	sb_release(&e);
	return ok;
}

static int same_repo(const struct imageref *a, const struct imageref *b)
{
	return !strcmp(a->domain, b->domain) && !strcmp(a->path, b->path);
}

static void check_reference(const char *s)
{
	struct imageref r, r2;
	struct strbuf c = STRBUF_INIT, c2 = STRBUF_INIT, e = STRBUF_INIT;
	int ok = parse(s, &r);
	if ((cri_check_ref(s, &e) == 0) != ok)
		abort();
	if (cri_is_image_id(s) && ok)
		abort();
	if (ok) {
		imageref_canonical(&r, &c);
		if (!parse(c.buf, &r2))
			abort();
		imageref_canonical(&r2, &c2);
		if (strcmp(c.buf, c2.buf) || !same_repo(&r, &r2) || !imageref_matches(&r, c.buf))
			abort();
		(void)imageref_is_floating(&r);
	}
	sb_release(&c);
	sb_release(&c2);
	sb_release(&e);
}

static void check_partition(const char *ref, const struct cri_image *img)
{
	const char **own, **others;
	size_t n_own, n_others, total = img->n_repo_tags + img->n_repo_digests;
	cri_rmi_partition(ref, img, &own, &n_own, &others, &n_others);
	if (n_own + n_others != total)
		abort();
	struct imageref r, h;
	int parsed = parse(ref, &r);
	const char *rtag = r.tag[0] ? r.tag : "latest";
	/* is there another tag of ref's repository on the image? */
	int other_tag = 0;
	for (size_t i = 0; parsed && i < img->n_repo_tags; i++)
		if (parse(img->repo_tags[i], &h) && same_repo(&r, &h) && h.tag[0] && !h.digest[0] && strcmp(h.tag, rtag))
			other_tag = 1;
	int self_present = 0;
	for (size_t i = 0; i < total; i++) {
		const char *e = i < img->n_repo_tags ? img->repo_tags[i] : img->repo_digests[i - img->n_repo_tags];
		int in_own = 0, in_others = 0;
		for (size_t k = 0; k < n_own; k++)
			in_own += own[k] == e;
		for (size_t k = 0; k < n_others; k++)
			in_others += others[k] == e;
		if (in_own + in_others != 1)
			abort();
		int eh = parse(e, &h);
		/* the entry that names ref itself */
		int self = parsed && eh && same_repo(&r, &h) &&
			   (r.digest[0] ? !strcmp(h.digest, r.digest) && (!h.tag[0] || !strcmp(h.tag, r.tag)) :
					  !h.digest[0] && !strcmp(h.tag, rtag));
		self_present |= self;
		if (self && !in_own)
			abort();
		if (!in_own)
			continue;
		if (!parsed || !eh || !same_repo(&r, &h))
			abort(); /* never another repository, never an unparsable entry */
		if (r.digest[0]) {
			if (strcmp(h.digest, r.digest))
				abort(); /* a digest reference owns its digest only, never the repository's tags */
		} else if (h.digest[0]) {
			if (other_tag)
				abort(); /* the repository's digest stays while another tag of it does */
		} else if (strcmp(h.tag, rtag)) {
			abort(); /* never another tag */
		}
	}
	if (cri_image_has_ref(img, ref) != self_present)
		abort();
	free(own);
	free(others);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = xstrndup((const char *)data, size); /* stops at a NUL: strings cannot hold one */
	char *lines[MAX_ENTRIES + 1];
	size_t n = 0;
	for (char *p = buf, *nl; n < MAX_ENTRIES + 1; p = nl + 1) {
		lines[n++] = p;
		if (!(nl = strchr(p, '\n')))
			break;
		*nl = 0;
	}
	check_reference(lines[0]);
	struct cri_image img = { 0 };
	char *tags[MAX_ENTRIES], *digests[MAX_ENTRIES];
	for (size_t i = 1; i < n; i++) {
		if (strchr(lines[i], '@'))
			digests[img.n_repo_digests++] = lines[i];
		else
			tags[img.n_repo_tags++] = lines[i];
		check_reference(lines[i]);
	}
	img.repo_tags = tags;
	img.repo_digests = digests;
	check_partition(lines[0], &img);
	free(buf);
	return 0;
}
