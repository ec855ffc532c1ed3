/* op_values.c - Helm's value merge and the Go-template semantics the chart's templates rely on
 * (op_values.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube_yaml.h"
#include "op_values.h"
#include "util/util.h"

/* Merges the defaults d into the user's map u (a deep copy the caller owns), as Helm's coalesceTables. */
static void coalesce(json_t *u, json_t *d)
{
	const char *k;
	json_t *dv;
	json_object_foreach(d, k, dv) {
		json_t *uv = json_object_get(u, k);
		if (!uv)
			json_object_set_new(u, k, json_deep_copy(dv));
		else if (json_is_null(uv))
			json_object_del(u, k); /* a user's null removes the default */
		else if (json_is_object(uv) && json_is_object(dv))
			coalesce(uv, dv);
		/* else the user's value stands, whatever the default's type */
	}
}

json_t *op_values_merge(json_t *defaults, json_t *user)
{
	json_t *out = json_is_object(user) ? json_deep_copy(user) : json_object();
	if (json_is_object(defaults))
		coalesce(out, defaults);
	return out;
}

json_t *op_value_at(json_t *values, const char *path)
{
	json_t *v = values;
	const char *p = path;
	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!json_is_object(v))
			return NULL;
		char key[128];
		if (n >= sizeof key)
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		v = json_object_get(v, key);
		p += n + (dot ? 1 : 0);
	}
	return json_is_null(v) ? NULL : v;
}

int op_truthy(const json_t *v)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_TRUE:
		return 1;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_OBJECT:
		return json_object_size(v) > 0;
	default:
		return 0;
	}
}

/* Go's strconv.FormatFloat(d, 'g', -1, 64) as fmt's %v uses it: the shortest digits that read back as d,
 * in exponent form when the exponent is below -4 or at least 6 (never 21, as JSON encoders do). */
static void fmt_real(double d, struct strbuf *out)
{
	char e[40];
	for (int p = 0; p < 17; p++) {
		snprintf(e, sizeof e, "%.*e", p, d);
		if (strtod(e, NULL) == d)
			break;
	}
	/* e = "-1.2345e+06": digits and exponent */
	char *x = strchr(e, 'e');
	int exp = atoi(x + 1);
	*x = '\0';
	char digits[40];
	size_t nd = 0;
	int neg = e[0] == '-';
	for (const char *s = e + neg; *s; s++)
		if (*s != '.')
			digits[nd++] = *s;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	if (neg)
		sb_addc(out, '-');
	if (exp < -4 || exp >= 6) {
		sb_addc(out, digits[0]);
		if (nd > 1)
			sb_addf(out, ".%s", digits + 1);
		sb_addf(out, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
	} else if (exp < 0) {
		sb_adds(out, "0.");
		for (int i = -1; i > exp; i--)
			sb_addc(out, '0');
		sb_adds(out, digits);
	} else {
		for (int i = 0; i <= exp; i++)
			sb_addc(out, (size_t)i < nd ? digits[i] : '0');
		if ((size_t)exp + 1 < nd)
			sb_addf(out, ".%s", digits + exp + 1);
	}
}

int op_value_text(const json_t *v, struct strbuf *out)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_NULL:
		return 0;
	case JSON_TRUE:
		sb_adds(out, "true");
		return 0;
	case JSON_FALSE:
		sb_adds(out, "false");
		return 0;
	case JSON_INTEGER:
		sb_addf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return 0;
	case JSON_REAL:
		fmt_real(json_real_value(v), out);
		return 0;
	case JSON_STRING:
		sb_add(out, json_string_value(v), json_string_length(v));
		return 0;
	default:
		return -1;
	}
}

json_t *op_yaml_scalar(const char *text)
{
	if (strchr(text, '\n') || strchr(text, '\r'))
		return NULL;
	struct strbuf doc = STRBUF_INIT, err = STRBUF_INIT;
	sb_addf(&doc, "v: %s\n", text);
	json_t *root = kube_yaml_load(doc.buf, doc.len, &err);
	json_t *v = NULL;
	if (json_is_object(root) && json_object_size(root) == 1) {
		v = json_object_get(root, "v");
		if (v && (json_is_object(v) || json_is_array(v)))
			v = NULL;
		json_incref(v);
	}
	json_decref(root);
	sb_release(&doc);
	sb_release(&err);
	return v;
}
