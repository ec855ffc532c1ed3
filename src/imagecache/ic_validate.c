/* ic_validate.c - the rules an ImageCache spec must satisfy; see ic_validate.h.
 *
 * Order (first failing rule wins, so the message is deterministic):
 *   1. UPDATE with a spec deep-equal to the old one: allow at once (status, label and annotation
 *      writes are never validated; upstream does the same).
 *   2. upstream's rules, in upstream's order and with its exact messages:
 *        per list, in order: empty images; an image repeated within the same list
 *        (the first repeat in list order is named, as upstream's nested loop finds it);
 *        UPDATE: number of lists; per index, nodeSelector (absent differs from {}).
 *   3. ours, each naming the field path and the value:
 *        size limits (IC_MAX_*), image reference grammar, nodeSelector label keys and values,
 *        imagePullSecrets names.
 *
 * Ratcheting (as Kubernetes does for its own validation changes): on UPDATE our rules only judge what
 * the edit introduces. An image or pull-secret name already present in the old spec, a nodeSelector
 * (upstream's rule already forces it to equal the old one) and a count not larger than the old count
 * are not re-checked, so an object created before these rules existed (e.g. under upstream's webhook)
 * can still be edited and repaired instead of being frozen.
 *
 * Deliberately not checked: an empty cacheSpec (upstream allows it; the controller reports
 * NoImagesPulledOrDeleted), whether pull secrets exist, whether a selector matches any node, and
 * develop's "operation under processing" rule (our controller applies edits made while Processing).
 *
 * Cost is linear in the size of the spec (duplicates are found with a hash set), so a hostile 4 MiB
 * review cannot make the webhook spin. */
#include "ic_validate.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "util/imageref.h"
#include "util/util.h"

/* Size limits, for the webhook only (the controller processes whatever is stored). The API server caps an
 * object at about 1.5 MiB in etcd (3 MiB request); users run about 2,000 images per kubelet (upstream #177),
 * so one list holds 5,000. */
#define IC_MAX_LISTS 100            /* spec.cacheSpec entries */
#define IC_MAX_IMAGES_PER_LIST 5000 /* spec.cacheSpec[i].images entries */
#define IC_MAX_IMAGES_TOTAL 10000   /* images in all lists together */
#define IC_MAX_SELECTOR_TERMS 64    /* spec.cacheSpec[i].nodeSelector labels */
#define IC_MAX_PULL_SECRETS 100     /* spec.imagePullSecrets entries */

/* ---- a set of borrowed strings (open addressing, never shrinks; lives for one call) ---- */

struct strset {
	const char **slots;
	size_t cap, len;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void strset_init(struct strset *set, size_t expect)
{
	size_t cap = 16;
	while (cap < expect * 2)
		cap *= 2;
	set->slots = xcalloc(cap, sizeof *set->slots);
	set->cap = cap;
	set->len = 0;
}

static void strset_free(struct strset *set)
{
	free(set->slots);
	memset(set, 0, sizeof *set);
}

static int strset_has(const struct strset *set, const char *s)
{
	if (!set->cap)
		return 0;
	for (size_t i = hash_str(s) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
		if (!set->slots[i])
			return 0;
		if (!strcmp(set->slots[i], s))
			return 1;
	}
}

/* Adds s; returns 1 if it was already there. */
static int strset_add(struct strset *set, const char *s)
{
	if ((set->len + 1) * 2 > set->cap) {
		struct strset bigger;
		strset_init(&bigger, set->cap);
		for (size_t i = 0; i < set->cap; i++)
			if (set->slots[i])
				strset_add(&bigger, set->slots[i]);
		free(set->slots);
		*set = bigger;
	}
	size_t i = hash_str(s) & (set->cap - 1);
	for (; set->slots[i]; i = (i + 1) & (set->cap - 1))
		if (!strcmp(set->slots[i], s))
			return 1;
	set->slots[i] = s;
	set->len++;
	return 0;
}

/* ---- messages ---- */

/* Appends s as a double-quoted string with Go-%q-like escapes, cut after IC_MSG_VALUE_MAX bytes, so a
 * hostile value can neither forge log lines nor make the message huge. */
#define IC_MSG_VALUE_MAX 128
static void add_quoted(struct strbuf *sb, const char *s)
{
	size_t n = strlen(s);
	sb_addc(sb, '"');
	for (size_t i = 0; i < n && i < IC_MSG_VALUE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			sb_addf(sb, "\\%c", c);
		else if (c == '\n')
			sb_adds(sb, "\\n");
		else if (c == '\t')
			sb_adds(sb, "\\t");
		else if (c < 0x20 || c >= 0x7f)
			sb_addf(sb, "\\x%02x", c);
		else
			sb_addc(sb, (char)c);
	}
	sb_addc(sb, '"');
	if (n > IC_MSG_VALUE_MAX)
		sb_addf(sb, " (%zu bytes, cut)", n);
}

/* ---- Kubernetes name syntax (apimachinery validation, same limits and messages in spirit) ---- */

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])? : label names and label values */
static int is_qualified_part(const char *s, size_t n)
{
	if (!n || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return 0;
	}
	return 1;
}

/* RFC 1123 subdomain: [a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)* , <= 253 */
static const char *dns1123_subdomain_problem(const char *s, size_t n)
{
	if (n == 0)
		return "must not be empty";
	if (n > 253)
		return "must be no more than 253 characters";
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && s[j] != '.')
			j++;
		if (j == i)
			return "must not have an empty label between dots";
		for (size_t k = i; k < j; k++) {
			char c = s[k];
			if (c >= 'A' && c <= 'Z')
				return "must be lowercase";
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
				return "must consist of lower case alphanumeric characters, '-' or '.'";
		}
		if (s[i] == '-' || s[j - 1] == '-')
			return "must start and end with an alphanumeric character";
		if (j == n)
			break;
		i = j + 1;
		if (i == n)
			return "must start and end with an alphanumeric character";
	}
	return NULL;
}

static const char *label_key_problem(const char *k)
{
	size_t n = strlen(k);
	const char *slash = strchr(k, '/');
	const char *name = k;
	if (slash) {
		size_t plen = (size_t)(slash - k);
		if (plen == 0)
			return "prefix part must not be empty";
		const char *p = dns1123_subdomain_problem(k, plen);
		if (p) {
			if (plen > 253)
				return "prefix part must be no more than 253 characters";
			return "prefix part must be a lowercase DNS subdomain (RFC 1123): lower case alphanumeric characters, "
			       "'-' or '.', starting and ending with an alphanumeric character";
		}
		name = slash + 1;
		if (strchr(name, '/'))
			return "must contain at most one '/'";
	}
	size_t nlen = n - (size_t)(name - k);
	if (nlen == 0)
		return "name part must not be empty";
	if (nlen > 63)
		return "name part must be no more than 63 characters";
	if (!is_qualified_part(name, nlen))
		return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
		       "with an alphanumeric character";
	return NULL;
}

static const char *label_value_problem(const char *v)
{
	size_t n = strlen(v);
	if (n == 0)
		return NULL;
	if (n > 63)
		return "must be no more than 63 characters";
	if (!is_qualified_part(v, n))
		return "must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end "
		       "with an alphanumeric character";
	return NULL;
}

/* ---- the rules ---- */

static int upstream_rules(const struct ic_spec *spec, const struct ic_spec *old, struct strbuf *msg)
{
	for (size_t i = 0; i < spec->n_lists; i++) {
		const struct ic_list *l = &spec->lists[i];
		if (l->n_images == 0) {
			sb_adds(msg, "No images specified within image list");
			return -1;
		}
		struct strset seen;
		strset_init(&seen, l->n_images);
		for (size_t j = 0; j < l->n_images; j++) {
			if (strset_add(&seen, l->images[j])) {
				sb_addf(msg, "Duplicate image names within image list: %s", l->images[j]);
				strset_free(&seen);
				return -1;
			}
		}
		strset_free(&seen);
	}
	if (old) {
		if (spec->n_lists != old->n_lists) {
			sb_adds(msg, "Mismatch in no. of image lists");
			return -1;
		}
		for (size_t i = 0; i < spec->n_lists; i++)
			if (!ic_list_selector_equal(&spec->lists[i], &old->lists[i])) {
				sb_adds(msg, "Mismatch in node selector");
				return -1;
			}
	}
	return 0;
}

static size_t total_images(const struct ic_spec *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_lists; i++)
		n += s->lists[i].n_images;
	return n;
}

/* A count over its limit is denied unless it does not grow past the old object's count (ratchet). */
static int over(size_t n, size_t limit, int have_old, size_t old_n)
{
	return n > limit && (!have_old || n > old_n);
}

static int size_rules(const struct ic_spec *spec, const struct ic_spec *old, struct strbuf *msg)
{
	if (over(spec->n_lists, IC_MAX_LISTS, old != NULL, old ? old->n_lists : 0)) {
		sb_addf(msg, "spec.cacheSpec: %zu image lists, the limit is %d", spec->n_lists, IC_MAX_LISTS);
		return -1;
	}
	for (size_t i = 0; i < spec->n_lists; i++) {
		const struct ic_list *l = &spec->lists[i];
		size_t old_n = old && i < old->n_lists ? old->lists[i].n_images : 0;
		if (over(l->n_images, IC_MAX_IMAGES_PER_LIST, old != NULL, old_n)) {
			sb_addf(msg, "spec.cacheSpec[%zu].images: %zu images, the limit is %d per list", i, l->n_images,
				IC_MAX_IMAGES_PER_LIST);
			return -1;
		}
		size_t old_sel = old && i < old->n_lists ? old->lists[i].n_selector : 0;
		if (over(l->n_selector, IC_MAX_SELECTOR_TERMS, old != NULL, old_sel)) {
			sb_addf(msg, "spec.cacheSpec[%zu].nodeSelector: %zu labels, the limit is %d", i, l->n_selector,
				IC_MAX_SELECTOR_TERMS);
			return -1;
		}
	}
	size_t total = total_images(spec);
	if (over(total, IC_MAX_IMAGES_TOTAL, old != NULL, old ? total_images(old) : 0)) {
		sb_addf(msg, "spec.cacheSpec: %zu images in all lists, the limit is %d", total, IC_MAX_IMAGES_TOTAL);
		return -1;
	}
	if (over(spec->n_pull_secrets, IC_MAX_PULL_SECRETS, old != NULL, old ? old->n_pull_secrets : 0)) {
		sb_addf(msg, "spec.imagePullSecrets: %zu entries, the limit is %d", spec->n_pull_secrets,
			IC_MAX_PULL_SECRETS);
		return -1;
	}
	return 0;
}

static int image_rules(const struct ic_spec *spec, const struct ic_spec *old, struct strbuf *msg)
{
	struct strset known = { 0 };
	int rc = 0;
	if (old) {
		strset_init(&known, total_images(old));
		for (size_t i = 0; i < old->n_lists; i++)
			for (size_t j = 0; j < old->lists[i].n_images; j++)
				strset_add(&known, old->lists[i].images[j]);
	}
	struct strbuf why = STRBUF_INIT;
	for (size_t i = 0; i < spec->n_lists && !rc; i++) {
		const struct ic_list *l = &spec->lists[i];
		for (size_t j = 0; j < l->n_images; j++) {
			struct imageref ref;
			if (strset_has(&known, l->images[j]))
				continue;
			sb_reset(&why);
			if (imageref_parse(l->images[j], &ref, &why) < 0) {
				sb_addf(msg, "spec.cacheSpec[%zu].images[%zu]: invalid image reference ", i, j);
				add_quoted(msg, l->images[j]);
				sb_addf(msg, ": %s", why.buf);
				rc = -1;
				break;
			}
		}
	}
	sb_release(&why);
	strset_free(&known);
	return rc;
}

static int selector_rules(const struct ic_spec *spec, struct strbuf *msg)
{
	for (size_t i = 0; i < spec->n_lists; i++) {
		const struct ic_list *l = &spec->lists[i];
		for (size_t t = 0; t < l->n_selector; t++) {
			const char *k = l->selector[t].key, *v = l->selector[t].value;
			const char *p = label_key_problem(k);
			if (p) {
				sb_addf(msg, "spec.cacheSpec[%zu].nodeSelector: invalid label key ", i);
				add_quoted(msg, k);
				sb_addf(msg, ": %s", p);
				return -1;
			}
			p = label_value_problem(v);
			if (p) {
				sb_addf(msg, "spec.cacheSpec[%zu].nodeSelector[", i);
				add_quoted(msg, k);
				sb_adds(msg, "]: invalid label value ");
				add_quoted(msg, v);
				sb_addf(msg, ": %s", p);
				return -1;
			}
		}
	}
	return 0;
}

static int pull_secret_rules(const struct ic_spec *spec, const struct ic_spec *old, struct strbuf *msg)
{
	for (size_t i = 0; i < spec->n_pull_secrets; i++) {
		const char *name = spec->pull_secrets[i];
		int known = 0;
		for (size_t j = 0; old && j < old->n_pull_secrets && !known; j++)
			known = !strcmp(old->pull_secrets[j], name);
		if (known)
			continue;
		const char *p = dns1123_subdomain_problem(name, strlen(name));
		if (p) {
			sb_addf(msg, "spec.imagePullSecrets[%zu].name: invalid Secret name ", i);
			add_quoted(msg, name);
			sb_addf(msg, ": %s", p);
			return -1;
		}
	}
	return 0;
}

int ic_validate(const struct ic_spec *spec, const struct ic_spec *old, struct strbuf *msg)
{
	if (old && spec->json && old->json && json_equal(spec->json, old->json))
		return 0;
	if (upstream_rules(spec, old, msg) < 0)
		return -1;
	if (size_rules(spec, old, msg) < 0)
		return -1;
	if (image_rules(spec, old, msg) < 0)
		return -1;
	/* On UPDATE the selectors equal the old ones (upstream's rule above), so they are not re-judged. */
	if (!old && selector_rules(spec, msg) < 0)
		return -1;
	if (pull_secret_rules(spec, old, msg) < 0)
		return -1;
	return 0;
}
