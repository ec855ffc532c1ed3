/* cri_detect.c - runtime and socket detection (see cri_detect.h). */
#include "cri_detect.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util.h"

void cri_runtime_detect(const char *runtime_version, const char *annotation, const char *flag_socket,
			const char **runtime, char **socket)
{
	const char *ver = runtime_version ? runtime_version : "";
	const char *rt = "docker", *def = "/var/run/docker.sock";
	int detected = 0;
	if (strstr(ver, "containerd")) {
		rt = "containerd";
		def = "/run/containerd/containerd.sock";
		detected = 1;
	}
	if (strstr(ver, "crio") || strstr(ver, "cri-o")) {
		rt = "crio";
		def = "/var/run/crio/crio.sock";
		detected = 1;
	}
	if (strstr(ver, "docker")) {
		rt = "docker";
		def = "/var/run/docker.sock";
		detected = 1;
	}
	const char *ann = annotation;
	if (ann && !strncmp(ann, "unix://", 7))
		ann += 7;
	*runtime = rt;
	if (detected && flag_socket && *flag_socket)
		*socket = xstrdup(flag_socket);
	else if (detected && ann && ann[0] == '/')
		*socket = xstrdup(ann);
	else
		*socket = xstrdup(def);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

int cri_socket_find(const char *host_root, const char *flag_socket, const char *annotation, char **socket,
		    int *docker, struct strbuf *err)
{
	static const char *usual[] = { "/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock",
				       "/run/crio/crio.sock", "/var/run/crio/crio.sock", "/var/run/docker.sock",
				       "/run/docker.sock" };
	const char *cand[ARRAY_SIZE(usual) + 1];
	size_t n = 0;
	const char *root = host_root ? host_root : "";
	size_t rl = strlen(root);
	while (rl && root[rl - 1] == '/')
		rl--;
	if (flag_socket && *flag_socket) {
		cand[n++] = flag_socket;
	} else {
		if (annotation && *annotation)
			cand[n++] = annotation;
		for (size_t i = 0; i < ARRAY_SIZE(usual); i++)
			cand[n++] = usual[i];
	}
	*socket = NULL;
	*docker = 0;
	struct strbuf tried = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const char *p = cand[i];
		if (!strncmp(p, "unix://", 7))
			p += 7;
		if (ends_with(p, "/dockershim.sock"))
			p = "/var/run/docker.sock";
		if (p[0] != '/') {
			sb_addf(&tried, "%s\"%s\" (not an absolute path)", tried.len ? ", " : "", cand[i]);
			continue;
		}
		char *full = xasprintf("%.*s%s", (int)rl, root, p);
		struct stat st;
		if (stat(full, &st) == 0 && S_ISSOCK(st.st_mode)) {
			*socket = full;
			*docker = ends_with(p, "docker.sock");
			sb_release(&tried);
			return 0;
		}
		sb_addf(&tried, "%s%s", tried.len ? ", " : "", full);
		free(full);
	}
	sb_addf(err, "no container runtime socket found (tried %s)", tried.buf);
	sb_release(&tried);
	return -1;
}
