/* kf_static_helper.c - a tiny statically linked multi-call program installed as /bin/echo and /bin/cp in
 * the kubefledged helper image.
 *
 * Why: a pull Job runs the image being cached with a command that must exist in *any* image, including
 * scratch and distroless ones. As upstream does, the Job's init container copies a static `echo` into a
 * shared emptyDir (`cp /bin/echo /tmp/bin`), and the main container runs `/tmp/bin/echo ...`. Keeping the
 * exact upstream commands means BUSYBOX_IMAGE may still point at any static busybox. No shell anywhere.
 *
 *   echo ARGS...        prints ARGS separated by spaces and a newline
 *   cp SRC DEST         copies one file; DEST may be a directory (then DEST/basename(SRC)); keeps mode */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int do_echo(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		fputs(argv[i], stdout);
		if (i + 1 < argc)
			fputc(' ', stdout);
	}
	fputc('\n', stdout);
	return fflush(stdout) ? 1 : 0;
}

static int do_cp(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cp SRC DEST\n");
		return 2;
	}
	char dest[4096];
	struct stat st;
	if (stat(argv[2], &st) == 0 && S_ISDIR(st.st_mode)) {
		char src[4096];
		snprintf(src, sizeof src, "%s", argv[1]);
		snprintf(dest, sizeof dest, "%s/%s", argv[2], basename(src));
	} else {
		snprintf(dest, sizeof dest, "%s", argv[2]);
	}
	int in = open(argv[1], O_RDONLY);
	if (in < 0 || fstat(in, &st) < 0) {
		fprintf(stderr, "cp: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	int out = open(dest, O_WRONLY | O_CREAT | O_TRUNC, st.st_mode & 07777);
	if (out < 0) {
		fprintf(stderr, "cp: %s: %s\n", dest, strerror(errno));
		return 1;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				fprintf(stderr, "cp: %s: %s\n", dest, strerror(errno));
				return 1;
			}
			off += w;
		}
	}
	if (n < 0 || fchmod(out, st.st_mode & 07777) < 0 || close(out) < 0) {
		fprintf(stderr, "cp: %s\n", strerror(errno));
		return 1;
	}
	close(in);
	return 0;
}

int main(int argc, char **argv)
{
	const char *me = strrchr(argv[0], '/');
	me = me ? me + 1 : argv[0];
	if (!strcmp(me, "cp"))
		return do_cp(argc, argv);
	if (!strcmp(me, "echo"))
		return do_echo(argc, argv);
	/* called by its own name: first argument selects the applet */
	if (argc > 1 && !strcmp(argv[1], "cp"))
		return do_cp(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "echo"))
		return do_echo(argc - 1, argv + 1);
	fprintf(stderr, "usage: echo ARGS... | cp SRC DEST\n");
	return 2;
}
