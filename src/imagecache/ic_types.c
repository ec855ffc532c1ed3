/* ic_types.c - decoding ImageCache specs; see ic_types.h. */
#include "ic_types.h"

#include <string.h>

#include "util/util.h"

const struct kube_resource IC_RESOURCE = { IC_GROUP, IC_VERSION, "imagecaches", IC_KIND, 1 };

static void describe(struct strbuf *err, json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (s && strlen(s) > 60)
		strcpy(s + 57, "...");
	sb_addf(err, "%s %s", kf_json_type_name(v), s ? s : "?");
	free(s);
}

int ic_spec_parse(json_t *obj, struct ic_spec *out, struct strbuf *err)
{
	memset(out, 0, sizeof *out);
	json_t *spec = json_object_get(obj, "spec");
	if (!spec || json_is_null(spec)) {
		sb_adds(err, "spec: required field is missing");
		return -1;
	}
	if (!json_is_object(spec)) {
		sb_adds(err, "spec: must be an object, got ");
		describe(err, spec);
		return -1;
	}
	out->json = json_incref(spec);
	json_t *cs = json_object_get(spec, "cacheSpec");
	if (!cs || json_is_null(cs)) {
		sb_adds(err, "spec.cacheSpec: required field is missing");
		goto fail;
	}
	if (!json_is_array(cs)) {
		sb_adds(err, "spec.cacheSpec: must be an array, got ");
		describe(err, cs);
		goto fail;
	}
	out->n_lists = json_array_size(cs);
	out->lists = xcalloc(out->n_lists, sizeof *out->lists);
	for (size_t i = 0; i < out->n_lists; i++) {
		json_t *e = json_array_get(cs, i);
		struct ic_list *l = &out->lists[i];
		if (!json_is_object(e)) {
			sb_addf(err, "spec.cacheSpec[%zu]: must be an object, got ", i);
			describe(err, e);
			goto fail;
		}
		json_t *imgs = json_object_get(e, "images");
		if (!imgs || json_is_null(imgs)) {
			sb_addf(err, "spec.cacheSpec[%zu].images: required field is missing", i);
			goto fail;
		}
		if (!json_is_array(imgs)) {
			sb_addf(err, "spec.cacheSpec[%zu].images: must be an array, got ", i);
			describe(err, imgs);
			goto fail;
		}
		l->n_images = json_array_size(imgs);
		l->images = xcalloc(l->n_images, sizeof *l->images);
		for (size_t j = 0; j < l->n_images; j++) {
			json_t *s = json_array_get(imgs, j);
			if (!json_is_string(s)) {
				sb_addf(err, "spec.cacheSpec[%zu].images[%zu]: must be a string, got ", i, j);
				describe(err, s);
				goto fail;
			}
			l->images[j] = json_string_value(s);
		}
		json_t *sel = json_object_get(e, "nodeSelector");
		if (sel && !json_is_null(sel)) {
			if (!json_is_object(sel)) {
				sb_addf(err, "spec.cacheSpec[%zu].nodeSelector: must be an object, got ", i);
				describe(err, sel);
				goto fail;
			}
			l->has_selector = 1;
			l->n_selector = json_object_size(sel);
			l->selector = xcalloc(l->n_selector, sizeof *l->selector);
			const char *k;
			json_t *v;
			size_t n = 0;
			json_object_foreach(sel, k, v) {
				if (!json_is_string(v)) {
					sb_addf(err, "spec.cacheSpec[%zu].nodeSelector[\"%s\"]: must be a string, got ", i, k);
					describe(err, v);
					goto fail;
				}
				l->selector[n].key = k;
				l->selector[n].value = json_string_value(v);
				n++;
			}
		}
	}
	json_t *ps = json_object_get(spec, "imagePullSecrets");
	if (ps && !json_is_null(ps)) {
		if (!json_is_array(ps)) {
			sb_adds(err, "spec.imagePullSecrets: must be an array, got ");
			describe(err, ps);
			goto fail;
		}
		out->n_pull_secrets = json_array_size(ps);
		out->pull_secrets = xcalloc(out->n_pull_secrets, sizeof *out->pull_secrets);
		for (size_t i = 0; i < out->n_pull_secrets; i++) {
			json_t *e = json_array_get(ps, i);
			json_t *name = json_object_get(e, "name");
			if (!json_is_object(e) || (name && !json_is_string(name))) {
				sb_addf(err, "spec.imagePullSecrets[%zu]: must be an object {name: string}, got ", i);
				describe(err, e);
				goto fail;
			}
			out->pull_secrets[i] = name ? json_string_value(name) : "";
		}
	}
	return 0;
fail:
	ic_spec_free(out);
	return -1;
}

void ic_spec_free(struct ic_spec *spec)
{
	for (size_t i = 0; i < spec->n_lists; i++) {
		free(spec->lists[i].images);
		free(spec->lists[i].selector);
	}
	free(spec->lists);
	free(spec->pull_secrets);
	json_decref(spec->json);
	memset(spec, 0, sizeof *spec);
}

int ic_list_matches_node(const struct ic_list *l, json_t *node_labels)
{
	for (size_t i = 0; i < l->n_selector; i++) {
		const char *v = json_string_value(json_object_get(node_labels, l->selector[i].key));
		if (!v || strcmp(v, l->selector[i].value))
			return 0;
	}
	return 1;
}

int ic_list_selector_equal(const struct ic_list *a, const struct ic_list *b)
{
	if (a->has_selector != b->has_selector || a->n_selector != b->n_selector)
		return 0;
	for (size_t i = 0; i < a->n_selector; i++) {
		size_t j;
		for (j = 0; j < b->n_selector; j++)
			if (!strcmp(a->selector[i].key, b->selector[j].key))
				break;
		if (j == b->n_selector || strcmp(a->selector[i].value, b->selector[j].value))
			return 0;
	}
	return 1;
}
