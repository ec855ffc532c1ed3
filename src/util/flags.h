/* flags.h - command-line flags in Go's `flag` style, so upstream manifests and Helm values keep working:
 *   --name=value, --name value, -name=value, -name value; booleans as --name, --name=true|false.
 * Each subcommand declares one table (name, type, target, default, help); the table is the single place
 * where options and defaults are written down, and flags_usage() prints it.
 *
 * The glog/klog flags every upstream manifest passes (--stderrthreshold, -v, --logtostderr, ...) are
 * appended to every table by flags_parse() and act on log.h. */
#ifndef KF_FLAGS_H
#define KF_FLAGS_H

#include <stdint.h>
#include <stdio.h>

#include "strbuf.h"

enum flag_type { FLAG_BOOL, FLAG_STRING, FLAG_INT, FLAG_DURATION, FLAG_DOUBLE };

struct flag {
	const char *name;      /* without dashes */
	enum flag_type type;
	void *target;          /* bool*: int*; string: char** (default must be a literal, parsed values are
	                        * malloc'd and owned by flags; see flags_free); int: int*; duration: int64_t*
	                        * milliseconds; double: double* */
	const char *def;       /* default, as text (also what usage prints) */
	const char *help;
	int set;               /* out: 1 if given on the command line */
};

/* Sets every default, then parses argv[0..argc). Positional arguments are moved to the front of argv and
 * their count returned (>= 0). On a bad flag returns -1 with a message naming the flag and the value. */
int flags_parse(struct flag *tab, int argc, char **argv, struct strbuf *err);
void flags_usage(FILE *out, const char *cmd, const char *summary, const struct flag *tab);
/* Frees strings allocated for FLAG_STRING targets. */
void flags_free(struct flag *tab);
const struct flag *flags_find(const struct flag *tab, const char *name);

#endif
