/* kube_yaml.c - YAML to jansson on libyaml's event parser, typed the way Kubernetes (sigs.k8s.io/yaml on
 * go-yaml v2, YAML 1.1) types untyped documents.
 *
 * A recursive descent over the event stream builds each node. Scalars: quoted and block (| >) scalars and
 * !!str/!!binary are strings; plain ones resolve to null (~ null Null NULL, empty), bool (the YAML 1.1
 * words: y Y yes Yes YES on On ON true True TRUE and their negatives), integers (decimal, 0x hex, 0 octal,
 * 0b binary, '_' separators; out of int64 range → real), reals ([-+]digits.digits, exponents) and
 * otherwise strings (.inf/.nan and timestamps stay strings: JSON has no such values, and go-yaml hands
 * timestamps to untyped targets as strings). Mapping keys become strings (non-string scalar keys are
 * printed: `1: a` → "1", `yes: a` → "true"), as sigs.k8s.io/yaml does; complex keys are errors.
 *
 * Anchors are per document; an alias is a deep copy (so callers may modify the tree), with a budget
 * against "billion laughs" documents: at most YAML_ALIAS_NODES nodes and YAML_ALIAS_BYTES bytes of
 * strings copied through aliases per document (a kubeconfig needs a few hundred). The cost of an alias
 * is checked before it is copied, and the size of an anchor is measured once (cached), so a refused
 * document costs no more than the budget itself. Merge keys (<<: *base, or a list of aliases) fill keys that the
 * mapping does not set itself. Errors carry libyaml's line and column (1-based). */
#include "kube_yaml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util/map.h"
#include "util/util.h"

#define YAML_MAX_DEPTH 512
#define YAML_ALIAS_NODES 10000       /* nodes copied through aliases, per document */
#define YAML_ALIAS_BYTES (1u << 20)  /* string bytes copied through aliases, per document */

struct anchor {
	json_t *v;           /* owned */
	size_t nodes, bytes; /* its size, measured on first use */
	int measured;
};

struct yctx {
	yaml_parser_t parser;
	struct map anchors; /* name -> struct anchor* (owned) */
	size_t alias_nodes, alias_bytes;
	struct strbuf *err;
};

static void yerr_at(struct yctx *x, const yaml_mark_t *m, const char *msg)
{
	sb_addf(x->err, "line %zu column %zu: %s", m->line + 1, m->column + 1, msg);
}

static void yerr_parser(struct yctx *x)
{
	yaml_parser_t *p = &x->parser;
	const char *problem = p->problem ? p->problem : "invalid YAML";
	if (p->error == YAML_MEMORY_ERROR) {
		sb_adds(x->err, "out of memory while parsing YAML");
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		sb_addf(x->err, "byte %zu: %s", p->problem_offset, problem);
		return;
	}
	sb_addf(x->err, "line %zu column %zu: %s", p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
	if (p->context)
		sb_addf(x->err, " (%s at line %zu column %zu)", p->context, p->context_mark.line + 1,
			p->context_mark.column + 1);
}

static int next_event(struct yctx *x, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&x->parser, ev)) {
		yerr_parser(x);
		return -1;
	}
	return 0;
}

static void anchor_free(void *v)
{
	struct anchor *a = v;
	json_decref(a->v);
	free(a);
}

static json_t *anchor_get(struct yctx *x, const yaml_char_t *name)
{
	struct anchor *a = map_get(&x->anchors, (const char *)name);
	return a ? a->v : NULL;
}

/* ---- scalar resolution ------------------------------------------------------------------------- */

static int is_one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (!strcmp(s, *words))
			return 1;
	return 0;
}

/* Parses an integer as go-yaml v2 does: strconv.ParseInt(s without '_', 0). Returns 0 or -1; *overflow
 * is set when the syntax is valid but the value does not fit. */
static int parse_int(const char *s, long long *out, int *overflow)
{
	char buf[128];
	size_t n = 0;
	*overflow = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '_')
			continue;
		if (n + 1 >= sizeof buf)
			return -1;
		buf[n++] = *p;
	}
	buf[n] = '\0';
	const char *p = buf;
	int neg = 0;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	int base = 10;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	} else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
		base = 2;
		p += 2;
	} else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
		base = 8;
		p += 2;
	} else if (p[0] == '0' && p[1]) {
		base = 8;
		p += 1;
	}
	if (!*p)
		return -1;
	for (const char *q = p; *q; q++) {
		int d = (*q >= '0' && *q <= '9') ? *q - '0'
		      : (*q >= 'a' && *q <= 'f') ? *q - 'a' + 10
		      : (*q >= 'A' && *q <= 'F') ? *q - 'A' + 10 : 99;
		if (d >= base)
			return -1;
	}
	errno = 0;
	unsigned long long u = strtoull(p, NULL, base);
	if (errno == ERANGE || u > (unsigned long long)LLONG_MAX + (neg ? 1u : 0u)) {
		*overflow = 1;
		return -1;
	}
	*out = neg ? (long long)(0 - u) : (long long)u;
	return 0;
}

/* go-yaml v2's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static int looks_float(const char *s)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	} else {
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++)
				;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

static json_t *resolve_plain(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE", NULL };
	if (is_one_of(s, nulls))
		return json_null();
	if (is_one_of(s, trues))
		return json_true();
	if (is_one_of(s, falses))
		return json_false();
	char c = s[0];
	if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
		long long v;
		int overflow;
		if (parse_int(s, &v, &overflow) == 0)
			return json_integer(v);
		if (looks_float(s)) {
			double d = strtod(s, NULL);
			if (isfinite(d))
				return json_real(d);
		}
	}
	return json_string(s);
}

static int tag_is(const yaml_char_t *tag, const char *name)
{
	static const char prefix[] = "tag:yaml.org,2002:";
	return tag && !strncmp((const char *)tag, prefix, sizeof prefix - 1) &&
	       !strcmp((const char *)tag + sizeof prefix - 1, name);
}

static json_t *scalar_value(struct yctx *x, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const yaml_char_t *tag = ev->data.scalar.tag;
	json_t *v;
	if (tag_is(tag, "str") || tag_is(tag, "binary") || (tag && !strcmp((const char *)tag, "!")) ||
	    (!tag && ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.style != YAML_ANY_SCALAR_STYLE))
		v = json_stringn(s, len);
	else if (strlen(s) != len) /* embedded NUL: can only be a string */
		v = json_stringn(s, len);
	else
		v = resolve_plain(s);
	if (!v) /* invalid UTF-8 cannot come from libyaml, but be safe */
		yerr_at(x, &ev->start_mark, "scalar is not valid UTF-8");
	return v;
}

/* A mapping key as a JSON object key, the way sigs.k8s.io/yaml prints non-string keys. */
static char *key_text(const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || ev->data.scalar.tag)
		return xstrndup(s, ev->data.scalar.length);
	json_t *v = resolve_plain(s);
	char *r;
	switch (json_typeof(v)) {
	case JSON_TRUE: r = xstrdup("true"); break;
	case JSON_FALSE: r = xstrdup("false"); break;
	case JSON_NULL: r = xstrdup("null"); break;
	case JSON_INTEGER: r = xasprintf("%lld", (long long)json_integer_value(v)); break;
	case JSON_REAL: r = xasprintf("%.17g", json_real_value(v)); break;
	default: r = xstrdup(s); break;
	}
	json_decref(v);
	return r;
}

/* ---- nodes ------------------------------------------------------------------------------------- */

/* Adds v's node count and string bytes (keys included) to *nodes and *bytes. */
static void measure(json_t *v, size_t *nodes, size_t *bytes)
{
	(*nodes)++;
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach(v, k, c) {
			*bytes += strlen(k);
			measure(c, nodes, bytes);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach(v, i, c)
			measure(c, nodes, bytes);
	} else if (json_is_string(v)) {
		*bytes += json_string_length(v);
	}
}

static json_t *parse_node(struct yctx *x, yaml_event_t *ev, int depth);

static void set_anchor(struct yctx *x, const yaml_char_t *anchor, json_t *v)
{
	if (!anchor)
		return;
	struct anchor *a = xcalloc(1, sizeof *a);
	a->v = json_incref(v);
	struct anchor *old = map_put(&x->anchors, (const char *)anchor, a);
	if (old)
		anchor_free(old);
}

/* Merges the mapping `src` into `dst` without overriding keys dst already has. */
static void merge_into(json_t *dst, json_t *src)
{
	const char *k;
	json_t *v;
	json_object_foreach(src, k, v)
		if (!json_object_get(dst, k))
			json_object_set(dst, k, v);
}

static int apply_merge(struct yctx *x, json_t *obj, json_t *val, const yaml_mark_t *mark)
{
	if (json_is_object(val)) {
		merge_into(obj, val);
		return 0;
	}
	if (json_is_array(val)) {
		size_t i;
		json_t *m;
		json_array_foreach(val, i, m) {
			if (!json_is_object(m)) {
				yerr_at(x, mark, "merge key (<<) list items must be mappings");
				return -1;
			}
			merge_into(obj, m);
		}
		return 0;
	}
	yerr_at(x, mark, "merge key (<<) value must be a mapping or a list of mappings");
	return -1;
}

static json_t *parse_mapping(struct yctx *x, yaml_event_t *start, int depth)
{
	json_t *obj = json_object();
	const yaml_char_t *anchor = start->data.mapping_start.anchor; /* start lives until parse_node returns */
	yaml_event_t kev, vev;
	for (;;) {
		if (next_event(x, &kev) < 0)
			goto fail;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			break;
		}
		char *key;
		int merge = 0;
		if (kev.type == YAML_SCALAR_EVENT) {
			key = key_text(&kev);
			merge = kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !strcmp(key, "<<");
		} else if (kev.type == YAML_ALIAS_EVENT) {
			json_t *a = anchor_get(x, kev.data.alias.anchor);
			if (!a || !json_is_string(a)) {
				yerr_at(x, &kev.start_mark, a ? "alias used as a mapping key must name a string"
							     : "unknown alias used as a mapping key");
				yaml_event_delete(&kev);
				goto fail;
			}
			key = xstrdup(json_string_value(a));
		} else {
			yerr_at(x, &kev.start_mark, "mapping keys must be scalars (complex keys are not supported)");
			yaml_event_delete(&kev);
			goto fail;
		}
		yaml_mark_t kmark = kev.start_mark;
		yaml_event_delete(&kev);
		if (next_event(x, &vev) < 0) {
			free(key);
			goto fail;
		}
		json_t *val = parse_node(x, &vev, depth + 1);
		if (!val) {
			free(key);
			goto fail;
		}
		if (merge) {
			int rc = apply_merge(x, obj, val, &kmark);
			json_decref(val);
			free(key);
			if (rc < 0)
				goto fail;
		} else {
			json_object_set_new(obj, key, val);
			free(key);
		}
	}
	set_anchor(x, anchor, obj);
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

static json_t *parse_sequence(struct yctx *x, yaml_event_t *start, int depth)
{
	json_t *arr = json_array();
	const yaml_char_t *anchor = start->data.sequence_start.anchor;
	yaml_event_t ev;
	for (;;) {
		if (next_event(x, &ev) < 0)
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		json_t *v = parse_node(x, &ev, depth + 1);
		if (!v)
			goto fail;
		json_array_append_new(arr, v);
	}
	set_anchor(x, anchor, arr);
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

/* Consumes *ev (and the events of its children). Returns a new reference or NULL with x->err set. */
static json_t *parse_node(struct yctx *x, yaml_event_t *ev, int depth)
{
	json_t *v = NULL;
	if (depth > YAML_MAX_DEPTH) {
		yerr_at(x, &ev->start_mark, "nesting too deep");
		yaml_event_delete(ev);
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		v = scalar_value(x, ev);
		if (v)
			set_anchor(x, ev->data.scalar.anchor, v);
		break;
	case YAML_ALIAS_EVENT: {
		struct anchor *a = map_get(&x->anchors, (const char *)ev->data.alias.anchor);
		if (!a) {
			char *m = xasprintf("unknown alias *%s", (const char *)ev->data.alias.anchor);
			yerr_at(x, &ev->start_mark, m);
			free(m);
			break;
		}
		if (!a->measured) { /* an anchor is complete (immutable) once it can be aliased */
			measure(a->v, &a->nodes, &a->bytes);
			a->measured = 1;
		}
		x->alias_nodes += a->nodes;
		x->alias_bytes += a->bytes;
		if (x->alias_nodes > YAML_ALIAS_NODES || x->alias_bytes > YAML_ALIAS_BYTES) {
			char *m = xasprintf("document contains excessive aliasing (alias *%s: more than %d nodes or %u MiB "
					    "copied through aliases)", (const char *)ev->data.alias.anchor, YAML_ALIAS_NODES,
					    YAML_ALIAS_BYTES >> 20);
			yerr_at(x, &ev->start_mark, m);
			free(m);
			break;
		}
		v = json_deep_copy(a->v);
		break;
	}
	case YAML_MAPPING_START_EVENT:
		v = parse_mapping(x, ev, depth);
		break;
	case YAML_SEQUENCE_START_EVENT:
		v = parse_sequence(x, ev, depth);
		break;
	default:
		yerr_at(x, &ev->start_mark, "unexpected YAML event");
		break;
	}
	yaml_event_delete(ev);
	return v;
}

/* Parses the stream; each document's root goes to out (array) when non-null, or only the first document
 * when first_only. Returns 0 or -1. */
static int parse_stream(const char *text, size_t len, json_t *out, int first_only, struct strbuf *err)
{
	struct yctx x = { .anchors = MAP_INIT, .err = err };
	yaml_event_t ev;
	int rc = -1;
	if (!yaml_parser_initialize(&x.parser)) {
		sb_adds(err, "cannot initialize the YAML parser");
		return -1;
	}
	yaml_parser_set_input_string(&x.parser, (const unsigned char *)text, len);
	for (;;) {
		if (next_event(&x, &ev) < 0)
			goto out;
		yaml_event_type_t t = ev.type;
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_END_EVENT)
			break;
		if (t != YAML_DOCUMENT_START_EVENT)
			continue; /* STREAM_START */
		if (next_event(&x, &ev) < 0)
			goto out;
		json_t *root = parse_node(&x, &ev, 0);
		if (!root)
			goto out;
		if (next_event(&x, &ev) < 0) { /* DOCUMENT_END */
			json_decref(root);
			goto out;
		}
		yaml_event_delete(&ev);
		map_free(&x.anchors, anchor_free);
		x.anchors = (struct map)MAP_INIT;
		x.alias_nodes = x.alias_bytes = 0;
		if (first_only) {
			json_array_append_new(out, root);
			break;
		}
		if (json_is_null(root))
			json_decref(root);
		else
			json_array_append_new(out, root);
	}
	rc = 0;
out:
	map_free(&x.anchors, anchor_free);
	yaml_parser_delete(&x.parser);
	return rc;
}

json_t *kube_yaml_load(const char *text, size_t len, struct strbuf *err)
{
	json_t *docs = json_array();
	json_t *r = NULL;
	if (parse_stream(text, len, docs, 1, err) == 0)
		r = json_array_size(docs) ? json_incref(json_array_get(docs, 0)) : json_null();
	json_decref(docs);
	return r;
}

json_t *kube_yaml_load_all(const char *text, size_t len, struct strbuf *err)
{
	json_t *docs = json_array();
	if (parse_stream(text, len, docs, 0, err) < 0) {
		json_decref(docs);
		return NULL;
	}
	return docs;
}
