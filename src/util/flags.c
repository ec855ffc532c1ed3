/* flags.c - Go-style flag parsing; see flags.h. */
#include "flags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static int g_logtostderr = 1, g_alsologtostderr, g_addheader;
static char *g_threshold, *g_logdir, *g_vmodule, *g_backtrace;

/* Accepted for compatibility with glog/klog command lines; only -v and --stderrthreshold change anything,
 * since we always log to stderr (never to files in /tmp, an upstream defect). */
static struct flag glog_flags[] = {
	{ "v", FLAG_INT, &log_verbosity, "0", "log verbosity (glog -v)" },
	{ "stderrthreshold", FLAG_STRING, &g_threshold, "INFO", "lowest level logged: INFO, WARNING, ERROR" },
	{ "logtostderr", FLAG_BOOL, &g_logtostderr, "true", "accepted for compatibility; logs always go to stderr" },
	{ "alsologtostderr", FLAG_BOOL, &g_alsologtostderr, "false", "accepted for compatibility" },
	{ "log_dir", FLAG_STRING, &g_logdir, "", "accepted for compatibility; no log files are written" },
	{ "vmodule", FLAG_STRING, &g_vmodule, "", "accepted for compatibility" },
	{ "log_backtrace_at", FLAG_STRING, &g_backtrace, "", "accepted for compatibility" },
	{ "add_dir_header", FLAG_BOOL, &g_addheader, "false", "accepted for compatibility" },
	{ NULL },
};

static struct flag *find(struct flag *tab, const char *name, size_t len)
{
	for (struct flag *f = tab; f->name; f++)
		if (strlen(f->name) == len && !strncmp(f->name, name, len))
			return f;
	return NULL;
}

const struct flag *flags_find(const struct flag *tab, const char *name)
{
	return find((struct flag *)tab, name, strlen(name));
}

static int parse_bool(const char *v, int *out)
{
	static const char *t[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *f[] = { "0", "f", "F", "false", "FALSE", "False" };
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		if (!strcmp(v, t[i])) {
			*out = 1;
			return 0;
		}
		if (!strcmp(v, f[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int set_value(struct flag *f, const char *v, struct strbuf *err)
{
	switch (f->type) {
	case FLAG_BOOL:
		if (parse_bool(v, f->target) < 0)
			goto bad;
		return 0;
	case FLAG_STRING: {
		char **s = f->target;
		if (f->set && *s)
			free(*s);
		*s = xstrdup(v);
		return 0;
	}
	case FLAG_INT: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 0);
		if (!*v || *end || errno || n < -2147483647L || n > 2147483647L)
			goto bad;
		*(int *)f->target = (int)n;
		return 0;
	}
	case FLAG_DOUBLE: {
		char *end;
		errno = 0;
		double d = strtod(v, &end);
		if (!*v || *end || errno)
			goto bad;
		*(double *)f->target = d;
		return 0;
	}
	case FLAG_DURATION:
		if (kf_parse_duration(v, f->target) < 0)
			goto bad;
		return 0;
	}
bad:
	sb_addf(err, "invalid value \"%s\" for flag --%s: %s", v, f->name,
		f->type == FLAG_DURATION ? "want a duration such as 30s, 5m or 1h30m" :
		f->type == FLAG_BOOL ? "want true or false" : "want a number");
	return -1;
}

static void set_defaults(struct flag *tab)
{
	for (struct flag *f = tab; f->name; f++) {
		struct strbuf ignored = STRBUF_INIT;
		if (f->type == FLAG_STRING)
			*(char **)f->target = (char *)f->def; /* borrowed literal until set */
		else
			set_value(f, f->def, &ignored);
		f->set = 0;
		sb_release(&ignored);
	}
}

int flags_parse(struct flag *tab, int argc, char **argv, struct strbuf *err)
{
	set_defaults(tab);
	set_defaults(glog_flags);
	int npos = 0;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (!strcmp(a, "--")) {
			for (i++; i < argc; i++)
				argv[npos++] = argv[i];
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			argv[npos++] = a;
			continue;
		}
		const char *name = a + (a[1] == '-' ? 2 : 1);
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		struct flag *f = find(tab, name, nlen);
		if (!f)
			f = find(glog_flags, name, nlen);
		if (!f) {
			sb_addf(err, "unknown flag: --%.*s", (int)nlen, name);
			return -1;
		}
		const char *v;
		if (eq) {
			v = eq + 1;
		} else if (f->type == FLAG_BOOL) {
			v = "true";
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			sb_addf(err, "flag needs an argument: --%s", f->name);
			return -1;
		}
		if (set_value(f, v, err) < 0)
			return -1;
		f->set = 1;
	}
	if (g_threshold && log_set_threshold(g_threshold) < 0) {
		sb_addf(err, "invalid value \"%s\" for flag --stderrthreshold: want INFO, WARNING, ERROR or FATAL",
			g_threshold);
		return -1;
	}
	return npos;
}

void flags_usage(FILE *out, const char *cmd, const char *summary, const struct flag *tab)
{
	fprintf(out, "Usage: kubefledged %s [flags]\n\n%s\n\nFlags:\n", cmd, summary);
	for (const struct flag *f = tab; f->name; f++) {
		const char *t = f->type == FLAG_STRING ? "string" : f->type == FLAG_DURATION ? "duration" :
				f->type == FLAG_INT ? "int" : f->type == FLAG_DOUBLE ? "float" : "";
		fprintf(out, "  --%s%s%s\n        %s", f->name, *t ? " " : "", t, f->help);
		if (f->type == FLAG_BOOL && f->def && !strcmp(f->def, "true"))
			fprintf(out, " (default true)");
		else if (f->type != FLAG_BOOL && f->def && *f->def)
			fprintf(out, " (default \"%s\")", f->def);
		fputc('\n', out);
	}
	fprintf(out, "\nLogging flags (glog compatible): -v, --stderrthreshold; --logtostderr, --alsologtostderr,\n"
		     "--log_dir, --vmodule, --log_backtrace_at, --add_dir_header are accepted and ignored.\n");
}

static void free_tab(struct flag *tab)
{
	for (struct flag *f = tab; f->name; f++) {
		if (f->type == FLAG_STRING && f->set) {
			free(*(char **)f->target);
			*(char **)f->target = (char *)f->def;
			f->set = 0;
		}
	}
}

void flags_free(struct flag *tab)
{
	free_tab(tab);
	free_tab(glog_flags);
}
